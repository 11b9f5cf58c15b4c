/*
 * code_format.h
 *		The payment code: layout, MAC and check digit.  Pure C (libc and
 *		libcrypto only), so that unit tests and fuzzers can drive it alone.
 *
 * A code is 18 decimal digits:
 *
 *	 S K NNNNNNNN MMMMMMM C
 *	 | |    |        |    +-- Damm check digit over the 17 digits before it
 *	 | |    |        +------- MAC: HMAC-SHA256(key, S, key id, N) mod 10^7
 *	 | |    +---------------- serial of the code on its shard, mod 10^8
 *	 | +--------------------- key slot: the signing key's id mod 10
 *	 +----------------------- shard number (0 on a single node)
 *
 * The check digit catches every single-digit typo and every swap of two
 * neighbouring digits before any key is looked at; the MAC catches
 * everything else made up without the key.
 */
#ifndef PAYEXT_CODE_FORMAT_H
#define PAYEXT_CODE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODE_DIGITS				18
#define CODE_SERIAL_MODULUS		100000000u	/* 8 digits */
#define CODE_MAC_DIGITS			7
#define CODE_KEY_SLOTS			10
#define CODE_KEY_BYTES			32

typedef enum CodeParseResult
{
	CODE_OK = 0,
	CODE_BAD_LENGTH,			/* not exactly 18 characters */
	CODE_NOT_DIGITS,			/* a character that is not 0-9 */
	CODE_BAD_CHECK_DIGIT		/* a typo */
} CodeParseResult;

typedef struct CodeFields
{
	int			shard;			/* 0..9 */
	int			key_slot;		/* 0..9 */
	uint32_t	serial;			/* 0..99999999 */
	char		mac[CODE_MAC_DIGITS];	/* as digits, not NUL-terminated */
} CodeFields;

/* Splits a code into its fields; checks length, digits and check digit. */
extern CodeParseResult CodeParse(const char *digits, size_t len, CodeFields *out);

/*
 * Writes the code for (shard, key_id, serial) signed with key into out
 * (CODE_DIGITS + 1 bytes, NUL-terminated).  serial is reduced mod 10^8.
 */
extern void CodeCompose(int shard, int32_t key_id, uint64_t serial,
						const uint8_t key[CODE_KEY_BYTES],
						char out[CODE_DIGITS + 1]);

/* True when the parsed code's MAC is right for key_id and key; constant time. */
extern bool CodeMacIsValid(const CodeFields *fields, int32_t key_id,
						   const uint8_t key[CODE_KEY_BYTES]);

/* Damm check digit of n decimal digits (characters '0'..'9'). */
extern int	CodeCheckDigit(const char *digits, size_t n);

#endif							/* PAYEXT_CODE_FORMAT_H */
