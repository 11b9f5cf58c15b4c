/*
 * code_format.c
 *		Payment code layout, keyed permutation and check digit (see
 *		code_format.h).
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

static uint64_t
PowerOfTen(int n)
{
	uint64_t	p = 1;

	for (int i = 0; i < n; i++)
		p *= 10;
	return p;
}

/*
 * The round function: HMAC-SHA256(key, tag || partition || digits || round
 * || half), its first 8 bytes reduced mod 10^m.  The reduction's bias
 * (2^64 mod 10^m over 2^64) is below 10^-10: no use to anyone.
 */
static uint64_t
RoundValue(const uint8_t key[CODE_KEY_BYTES], int partition, int digits,
		   int round, uint64_t half, uint64_t modulus)
{
	static const char tag[] = "payext.code.v2";
	uint8_t		message[sizeof(tag) - 1 + 3 + 8];
	uint8_t		digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	uint64_t	head = 0;
	size_t		pos = sizeof(tag) - 1;

	memcpy(message, tag, pos);
	message[pos++] = (uint8_t) partition;
	message[pos++] = (uint8_t) digits;
	message[pos++] = (uint8_t) round;
	for (int shift = 56; shift >= 0; shift -= 8)
		message[pos++] = (uint8_t) (half >> shift);
	HMAC(EVP_sha256(), key, CODE_KEY_BYTES, message, pos, digest, &digest_len);
	for (int i = 0; i < 8; i++)
		head = (head << 8) | digest[i];
	OPENSSL_cleanse(digest, sizeof(digest));
	return head % modulus;
}

/*
 * FF1's shape: A holds the first u = digits / 2 digits, B the other v;
 * round i adds F(i, B) to A modulo 10^m (m = u in even rounds, v in odd
 * ones) and swaps the halves.  Each round can be undone given B, so the
 * whole is a permutation of the values below 10^digits whatever F is.
 */
uint64_t
CodeFeistel(const uint8_t key[CODE_KEY_BYTES], int partition, int digits,
			uint64_t value, bool decrypt)
{
	int			u = digits / 2;
	int			v = digits - u;
	uint64_t	pu = PowerOfTen(u);
	uint64_t	pv = PowerOfTen(v);
	uint64_t	a = value / pv;
	uint64_t	b = value % pv;

	if (!decrypt)
	{
		for (int i = 0; i < CODE_ROUNDS; i++)
		{
			uint64_t	m = (i % 2 == 0) ? pu : pv;
			uint64_t	c = (a + RoundValue(key, partition, digits, i, b, m)) % m;

			a = b;
			b = c;
		}
	}
	else
	{
		for (int i = CODE_ROUNDS - 1; i >= 0; i--)
		{
			uint64_t	m = (i % 2 == 0) ? pu : pv;
			uint64_t	c = b;

			b = a;
			/* a + F = c (mod m), a < m: a = c - F (mod m) without underflow */
			a = (c + m - RoundValue(key, partition, digits, i, b, m)) % m;
		}
	}
	/* After an even number of rounds A has u digits again and B v. */
	return a * pv + b;
}

uint64_t
CodeEncrypt(const uint8_t key[CODE_KEY_BYTES], int partition, uint64_t serial)
{
	return CodeFeistel(key, partition, CODE_BODY_DIGITS, serial % CODE_BODY_MODULUS, false);
}

uint64_t
CodeDecrypt(const uint8_t key[CODE_KEY_BYTES], int partition, uint64_t body)
{
	return CodeFeistel(key, partition, CODE_BODY_DIGITS, body % CODE_BODY_MODULUS, true);
}

CodeParseResult
CodeParse(const char *digits, size_t len, CodeFields *out)
{
	uint64_t	body = 0;

	if (len != CODE_DIGITS)
		return CODE_BAD_LENGTH;
	for (size_t i = 0; i < len; i++)
	{
		if (digits[i] < '0' || digits[i] > '9')
			return CODE_NOT_DIGITS;
	}
	if (CodeCheckDigit(digits, CODE_DIGITS - 1) != digits[CODE_DIGITS - 1] - '0')
		return CODE_BAD_CHECK_DIGIT;

	out->partition = (digits[0] - '0') * 10 + (digits[1] - '0');
	for (int i = CODE_PARTITION_DIGITS; i < CODE_PARTITION_DIGITS + CODE_BODY_DIGITS; i++)
		body = body * 10 + (uint64_t) (digits[i] - '0');
	out->body = body;
	return CODE_OK;
}

void
CodeCompose(int partition, uint64_t body, char out[CODE_DIGITS + 1])
{
	WriteDigits(out, (uint64_t) partition % 100, CODE_PARTITION_DIGITS);
	WriteDigits(out + CODE_PARTITION_DIGITS, body % CODE_BODY_MODULUS, CODE_BODY_DIGITS);
	out[CODE_DIGITS - 1] = (char) ('0' + CodeCheckDigit(out, CODE_DIGITS - 1));
	out[CODE_DIGITS] = '\0';
}
