/*
 * test_code_format.c
 *		Unit tests of the payment code (src/code_format.c), linked without
 *		the server: the keyed permutation is one (exhaustively on small
 *		domains, by its inverse on the real one), consecutive serials give
 *		distinct and unrelated bodies, known answers computed independently,
 *		and the check digit.  Prints "unit: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "code_format.h"
#include "unit.h"

/*
 * Known answers under the key 00 01 .. 1f, computed independently with
 * Python's hmac module from the construction in code_format.h:
 *   F(i, B) = int(HMAC-SHA256(key, b"payext.code.v2" + bytes([partition,
 *             15, i]) + B.to_bytes(8, "big"))[:8]) mod 10^m
 * ten FF1-style rounds over halves of 7 and 8 digits, then Damm's digit.
 */
static const struct
{
	int			partition;
	uint64_t	serial;
	const char *code;
}			known[] = {
	{0, 1, "000105169673145004"},
	{0, 0, "000565252973380579"},
	{7, UINT64_C(999999999999999), "077374799818033336"},
	{42, UINT64_C(123456789012345), "424574776779927443"},
};

static uint8_t key_a[CODE_KEY_BYTES];
static uint8_t key_b[CODE_KEY_BYTES];

static void
test_damm(void)
{
	char		code[CODE_DIGITS + 1];

	/* The worked example of Damm's algorithm: 572 -> 4, and 5724 -> 0. */
	CHECK(CodeCheckDigit("572", 3) == 4, "check digit of 572");
	CHECK(CodeCheckDigit("5724", 4) == 0, "a number with its check digit checks to 0");

	/* Every single-digit error and every swap of neighbours, on real codes. */
	for (int n = 0; n < 200; n++)
	{
		CodeFields	fields;

		CodeCompose((int) (next_random() % 100), next_random() % CODE_BODY_MODULUS, code);
		for (int i = 0; i < CODE_DIGITS; i++)
		{
			for (char d = '0'; d <= '9'; d++)
			{
				char		typo[CODE_DIGITS + 1];

				if (d == code[i])
					continue;
				memcpy(typo, code, sizeof(typo));
				typo[i] = d;
				CHECK(CodeParse(typo, CODE_DIGITS, &fields) == CODE_BAD_CHECK_DIGIT,
					  "typo at %d of %s", i, code);
			}
			if (i + 1 < CODE_DIGITS && code[i] != code[i + 1])
			{
				char		swap[CODE_DIGITS + 1];

				memcpy(swap, code, sizeof(swap));
				swap[i] = code[i + 1];
				swap[i + 1] = code[i];
				CHECK(CodeParse(swap, CODE_DIGITS, &fields) == CODE_BAD_CHECK_DIGIT,
					  "swap at %d of %s", i, code);
			}
		}
	}
}

static void
test_known_answers(void)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
	{
		char		code[CODE_DIGITS + 1];
		CodeFields	fields;

		CodeCompose(known[i].partition, CodeEncrypt(key_a, known[i].partition, known[i].serial), code);
		CHECK(strcmp(code, known[i].code) == 0, "known answer %zu: got %s, want %s", i, code, known[i].code);
		CHECK(CodeParse(known[i].code, CODE_DIGITS, &fields) == CODE_OK &&
			  fields.partition == known[i].partition &&
			  CodeDecrypt(key_a, fields.partition, fields.body) == known[i].serial,
			  "known answer %zu decrypts to its serial", i);
	}
}

/* The network is a permutation: every value of a small domain, once. */
static void
test_permutation_small(int digits)
{
	uint64_t	n = 1;
	uint8_t    *seen;
	uint64_t	hits = 0;
	uint64_t	round_trips = 0;

	for (int i = 0; i < digits; i++)
		n *= 10;
	seen = calloc(n, 1);
	for (uint64_t x = 0; x < n; x++)
	{
		uint64_t	y = CodeFeistel(key_a, 3, digits, x, false);

		if (y < n && !seen[y])
		{
			seen[y] = 1;
			hits++;
		}
		if (CodeFeistel(key_a, 3, digits, y, true) == x)
			round_trips++;
	}
	CHECK(hits == n, "%d digits: %llu distinct images of %llu values", digits,
		  (unsigned long long) hits, (unsigned long long) n);
	CHECK(round_trips == n, "%d digits: every value comes back", digits);
	free(seen);
}

static int
compare_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

static void
test_real_domain(void)
{
	enum
	{
		N = 200000
	};
	uint64_t   *bodies = malloc(N * sizeof(uint64_t));
	uint64_t	repeats = 0;
	uint64_t	same_digits = 0;
	uint64_t	same_under_other_key = 0;

	/* Edges and random serials: decryption undoes encryption. */
	static const uint64_t edges[] = {0, 1, 9999999, 10000000, 99999999,
	UINT64_C(999999999999998), UINT64_C(999999999999999)};

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
	{
		uint64_t	body = CodeEncrypt(key_a, 0, edges[i]);

		CHECK(body < CODE_BODY_MODULUS && CodeDecrypt(key_a, 0, body) == edges[i],
			  "serial %llu round trip", (unsigned long long) edges[i]);
	}
	for (int i = 0; i < 20000; i++)
	{
		uint64_t	serial = next_random() % CODE_BODY_MODULUS;
		int			partition = (int) (next_random() % 100);
		uint64_t	body = CodeEncrypt(key_b, partition, serial);

		CHECK(body < CODE_BODY_MODULUS && CodeDecrypt(key_b, partition, body) == serial,
			  "random serial %llu round trip", (unsigned long long) serial);
	}

	/*
	 * N consecutive serials: no two bodies equal, and neighbours share a
	 * digit position as often as random numbers do (1.5 of 15 on average).
	 */
	for (uint64_t s = 0; s < N; s++)
	{
		bodies[s] = CodeEncrypt(key_a, 0, s);
		if (bodies[s] == CodeEncrypt(key_b, 0, s))
			same_under_other_key++;
		if (s > 0)
		{
			uint64_t	x = bodies[s];
			uint64_t	y = bodies[s - 1];

			for (int d = 0; d < CODE_BODY_DIGITS; d++, x /= 10, y /= 10)
				same_digits += (x % 10 == y % 10);
		}
	}
	CHECK(same_digits > 1.4 * (N - 1) && same_digits < 1.6 * (N - 1),
		  "consecutive bodies share %.3f digits on average, random ones 1.5",
		  (double) same_digits / (N - 1));
	CHECK(same_under_other_key == 0, "another key gives other bodies");
	qsort(bodies, N, sizeof(uint64_t), compare_u64);
	for (int i = 1; i < N; i++)
		repeats += bodies[i] == bodies[i - 1];
	CHECK(repeats == 0, "%d consecutive serials, %llu repeated bodies", N,
		  (unsigned long long) repeats);
	free(bodies);
}

static void
test_parse(void)
{
	CodeFields	fields;
	char		code[CODE_DIGITS + 1];

	CHECK(CodeParse("12345", 5, &fields) == CODE_BAD_LENGTH, "too short");
	CHECK(CodeParse("0001051696731450041", 19, &fields) == CODE_BAD_LENGTH, "too long");
	CHECK(CodeParse("00010516967314500x", 18, &fields) == CODE_NOT_DIGITS, "a letter");
	CHECK(CodeParse("000105169673145004", 18, &fields) == CODE_OK &&
		  fields.partition == 0 && fields.body == UINT64_C(10516967314500), "fields");
	CodeCompose(99, CODE_BODY_MODULUS - 1, code);
	CHECK(CodeParse(code, CODE_DIGITS, &fields) == CODE_OK && fields.partition == 99 &&
		  fields.body == CODE_BODY_MODULUS - 1, "the largest partition and body");
}

int
main(void)
{
	for (int i = 0; i < CODE_KEY_BYTES; i++)
	{
		key_a[i] = (uint8_t) i;
		key_b[i] = (uint8_t) (255 - i);
	}
	test_damm();
	test_known_answers();
	test_permutation_small(4);
	test_permutation_small(5);
	test_real_domain();
	test_parse();
	return unit_finish();
}
