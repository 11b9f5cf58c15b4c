/*
 * code_format.h
 *		The payment code: layout, keyed permutation and check digit.  Pure C
 *		(libc and libcrypto only), so that unit tests and fuzzers can drive
 *		it alone.
 *
 * A code is 18 decimal digits:
 *
 *	 PP BBBBBBBBBBBBBBB C
 *	 |        |         +-- Damm check digit over the 17 digits before it
 *	 |        +------------ body: the code's serial under a keyed permutation
 *	 |                      of the 10^15 numbers of 15 digits
 *	 +--------------------- partition (00 on a single node)
 *
 * The permutation is a Feistel network over decimal digits in the manner
 * of NIST SP 800-38G's FF1: ten rounds over halves of 7 and 8 digits, each
 * round's function HMAC-SHA256 under the signing key, tweaked by the
 * partition.  Being a permutation, distinct serials give distinct bodies:
 * a code never repeats while its key lives (10^15 serials per key).
 * Without the key, a body says nothing of its serial, wallet or time, and
 * consecutive serials give unrelated bodies.
 *
 * The check digit catches every single-digit typo and every swap of two
 * neighbouring digits before anything else is looked at.
 */
#ifndef PAYEXT_CODE_FORMAT_H
#define PAYEXT_CODE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODE_DIGITS				18
#define CODE_PARTITION_DIGITS	2
#define CODE_BODY_DIGITS		15
/* Bodies, and so serials per key: 10^15. */
#define CODE_BODY_MODULUS		UINT64_C(1000000000000000)
#define CODE_KEY_BYTES			32
/* Feistel rounds (FF1 uses ten). */
#define CODE_ROUNDS				10

typedef enum CodeParseResult
{
	CODE_OK = 0,
	CODE_BAD_LENGTH,			/* not exactly 18 characters */
	CODE_NOT_DIGITS,			/* a character that is not 0-9 */
	CODE_BAD_CHECK_DIGIT		/* a typo */
} CodeParseResult;

typedef struct CodeFields
{
	int			partition;		/* 0..99 */
	uint64_t	body;			/* 0 .. 10^15 - 1 */
} CodeFields;

/* Splits a code into its fields; checks length, digits and check digit. */
extern CodeParseResult CodeParse(const char *digits, size_t len, CodeFields *out);

/*
 * Writes the code of (partition, body) into out (CODE_DIGITS + 1 bytes,
 * NUL-terminated).
 */
extern void CodeCompose(int partition, uint64_t body, char out[CODE_DIGITS + 1]);

/*
 * The keyed permutation of the bodies and its inverse: serial < 10^15 to
 * body < 10^15 and back, under key, tweaked by the partition.
 */
extern uint64_t CodeEncrypt(const uint8_t key[CODE_KEY_BYTES], int partition,
							uint64_t serial);
extern uint64_t CodeDecrypt(const uint8_t key[CODE_KEY_BYTES], int partition,
							uint64_t body);

/*
 * The Feistel network over any number of digits (2 to 18), for the tests:
 * a small domain can be checked to be a permutation exhaustively.
 */
extern uint64_t CodeFeistel(const uint8_t key[CODE_KEY_BYTES], int partition,
							int digits, uint64_t value, bool decrypt);

/* Damm check digit of n decimal digits (characters '0'..'9'). */
extern int	CodeCheckDigit(const char *digits, size_t n);

#endif							/* PAYEXT_CODE_FORMAT_H */
