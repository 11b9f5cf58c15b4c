/*
 * code_format.c
 *		Payment code layout, MAC and check digit (see code_format.h).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "code_format.h"

/*
 * Damm's quasigroup of order 10: a check digit from it detects all
 * single-digit errors and all transpositions of adjacent digits.
 */
static const uint8_t damm_table[10][10] = {
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
};

int
CodeCheckDigit(const char *digits, size_t n)
{
	int			interim = 0;

	for (size_t i = 0; i < n; i++)
		interim = damm_table[interim][digits[i] - '0'];
	return interim;
}

static void
WriteDigits(char *out, uint64_t value, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		out[i] = (char) ('0' + value % 10);
		value /= 10;
	}
}

/* The MAC of (shard, key_id, serial) as CODE_MAC_DIGITS digits. */
static void
ComputeMac(int shard, int32_t key_id, uint32_t serial,
		   const uint8_t key[CODE_KEY_BYTES], char mac[CODE_MAC_DIGITS])
{
	static const char tag[] = "payext.code.v1";
	uint8_t		message[sizeof(tag) - 1 + 1 + 4 + 4];
	uint8_t		digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	uint64_t	head = 0;
	size_t		pos = sizeof(tag) - 1;
	uint64_t	modulus = 1;

	memcpy(message, tag, pos);
	message[pos++] = (uint8_t) shard;
	for (int shift = 24; shift >= 0; shift -= 8)
		message[pos++] = (uint8_t) ((uint32_t) key_id >> shift);
	for (int shift = 24; shift >= 0; shift -= 8)
		message[pos++] = (uint8_t) (serial >> shift);

	HMAC(EVP_sha256(), key, CODE_KEY_BYTES, message, pos, digest, &digest_len);
	/* The first 8 bytes, reduced: the bias of 2^64 mod 10^7 is negligible. */
	for (int i = 0; i < 8; i++)
		head = (head << 8) | digest[i];
	for (int i = 0; i < CODE_MAC_DIGITS; i++)
		modulus *= 10;
	WriteDigits(mac, head % modulus, CODE_MAC_DIGITS);
	OPENSSL_cleanse(digest, sizeof(digest));
}

CodeParseResult
CodeParse(const char *digits, size_t len, CodeFields *out)
{
	uint32_t	serial = 0;

	if (len != CODE_DIGITS)
		return CODE_BAD_LENGTH;
	for (size_t i = 0; i < len; i++)
	{
		if (digits[i] < '0' || digits[i] > '9')
			return CODE_NOT_DIGITS;
	}
	if (CodeCheckDigit(digits, CODE_DIGITS - 1) != digits[CODE_DIGITS - 1] - '0')
		return CODE_BAD_CHECK_DIGIT;

	out->shard = digits[0] - '0';
	out->key_slot = digits[1] - '0';
	for (int i = 2; i < 10; i++)
		serial = serial * 10 + (uint32_t) (digits[i] - '0');
	out->serial = serial;
	memcpy(out->mac, digits + 10, CODE_MAC_DIGITS);
	return CODE_OK;
}

void
CodeCompose(int shard, int32_t key_id, uint64_t serial,
			const uint8_t key[CODE_KEY_BYTES], char out[CODE_DIGITS + 1])
{
	uint32_t	short_serial = (uint32_t) (serial % CODE_SERIAL_MODULUS);

	out[0] = (char) ('0' + shard);
	out[1] = (char) ('0' + key_id % CODE_KEY_SLOTS);
	WriteDigits(out + 2, short_serial, 8);
	ComputeMac(shard, key_id, short_serial, key, out + 10);
	out[CODE_DIGITS - 1] = (char) ('0' + CodeCheckDigit(out, CODE_DIGITS - 1));
	out[CODE_DIGITS] = '\0';
}

bool
CodeMacIsValid(const CodeFields *fields, int32_t key_id,
			   const uint8_t key[CODE_KEY_BYTES])
{
	char		expected[CODE_MAC_DIGITS];
	bool		valid;

	if (key_id < 0 || key_id % CODE_KEY_SLOTS != fields->key_slot)
		return false;
	ComputeMac(fields->shard, key_id, fields->serial, key, expected);
	valid = CRYPTO_memcmp(expected, fields->mac, CODE_MAC_DIGITS) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return valid;
}
