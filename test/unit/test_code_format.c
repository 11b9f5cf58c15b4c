/*
 * test_code_format.c
 *		Unit tests of the payment code layout (src/code_format.c), linked
 *		without the server.  Prints "unit: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "code_format.h"
#include "unit.h"

/*
 * CodeCompose(0, 1, 1, key 00..1f), computed independently with Python:
 *   mac = int.from_bytes(hmac.new(bytes(range(32)), b"payext.code.v1"
 *         + bytes([0]) + (1).to_bytes(4, "big") + (1).to_bytes(4, "big"),
 *         "sha256").digest()[:8], "big") % 10**7
 * then Damm's check digit over "0" "1" "00000001" mac.
 */
#define EXPECTED_KAT "010000000130680503"


static uint8_t key_a[CODE_KEY_BYTES];
static uint8_t key_b[CODE_KEY_BYTES];


static void
test_damm(void)
{
	/* The worked example of Damm's algorithm: 572 -> 4, and 5724 -> 0. */
	CHECK(CodeCheckDigit("572", 3) == 4, "check digit of 572");
	CHECK(CodeCheckDigit("5724", 4) == 0, "a number with its check digit checks to 0");
}

static void
test_known_answer(void)
{
	char		code[CODE_DIGITS + 1];

	CodeCompose(0, 1, 1, key_a, code);
	CHECK(strcmp(code, EXPECTED_KAT) == 0, "known answer: got %s, want %s", code, EXPECTED_KAT);
}

static void
test_round_trip(void)
{
	for (int i = 0; i < 1000; i++)
	{
		int			shard = (int) (next_random() % 10);
		int32_t		key_id = (int32_t) (next_random() % 100000) + 1;
		uint64_t	serial = next_random() % 100000000000ULL;
		char		code[CODE_DIGITS + 1];
		CodeFields	fields;

		CodeCompose(shard, key_id, serial, key_a, code);
		CHECK(strlen(code) == CODE_DIGITS, "length of %s", code);
		CHECK(CodeParse(code, CODE_DIGITS, &fields) == CODE_OK, "parse %s", code);
		CHECK(fields.shard == shard && fields.key_slot == key_id % 10 &&
			  fields.serial == serial % CODE_SERIAL_MODULUS,
			  "fields of %s", code);
		CHECK(CodeMacIsValid(&fields, key_id, key_a), "MAC of %s", code);
		/* The same slot, another key id; another key; another slot. */
		CHECK(!CodeMacIsValid(&fields, key_id + 10, key_a), "key id %d accepted", key_id + 10);
		CHECK(!CodeMacIsValid(&fields, key_id, key_b), "other key accepted for %s", code);
		CHECK(!CodeMacIsValid(&fields, key_id + 1, key_a), "other slot accepted for %s", code);
	}
}

/* Every single-digit change and every swap of neighbours is a typo. */
static void
test_typos(void)
{
	char		code[CODE_DIGITS + 1];
	CodeFields	fields;

	for (int round = 0; round < 50; round++)
	{
		CodeCompose(0, 3, next_random(), key_a, code);
		for (int pos = 0; pos < CODE_DIGITS; pos++)
		{
			for (char d = '0'; d <= '9'; d++)
			{
				char		typo[CODE_DIGITS + 1];

				if (d == code[pos])
					continue;
				memcpy(typo, code, sizeof(typo));
				typo[pos] = d;
				CHECK(CodeParse(typo, CODE_DIGITS, &fields) == CODE_BAD_CHECK_DIGIT,
					  "typo %s of %s accepted", typo, code);
			}
			if (pos + 1 < CODE_DIGITS && code[pos] != code[pos + 1])
			{
				char		swapped[CODE_DIGITS + 1];

				memcpy(swapped, code, sizeof(swapped));
				swapped[pos] = code[pos + 1];
				swapped[pos + 1] = code[pos];
				CHECK(CodeParse(swapped, CODE_DIGITS, &fields) == CODE_BAD_CHECK_DIGIT,
					  "swap %s of %s accepted", swapped, code);
			}
		}
	}
}

/* Codes made up without the key: right shape, wrong MAC. */
static void
test_forgeries(void)
{
	int			accepted = 0;

	for (int i = 0; i < 100000; i++)
	{
		char		forged[CODE_DIGITS + 1];
		CodeFields	fields;

		for (int pos = 0; pos < CODE_DIGITS - 1; pos++)
			forged[pos] = (char) ('0' + next_random() % 10);
		forged[1] = '3';
		forged[CODE_DIGITS - 1] = (char) ('0' + CodeCheckDigit(forged, CODE_DIGITS - 1));
		forged[CODE_DIGITS] = '\0';
		if (CodeParse(forged, CODE_DIGITS, &fields) == CODE_OK &&
			CodeMacIsValid(&fields, 3, key_a))
			accepted++;
	}
	/* 10^5 tries against a 10^-7 MAC: expect none. */
	CHECK(accepted == 0, "%d forged codes accepted", accepted);
}

static void
test_malformed(void)
{
	CodeFields	fields;

	CHECK(CodeParse("", 0, &fields) == CODE_BAD_LENGTH, "empty");
	CHECK(CodeParse("12345678901234567", 17, &fields) == CODE_BAD_LENGTH, "17 digits");
	CHECK(CodeParse("1234567890123456789", 19, &fields) == CODE_BAD_LENGTH, "19 digits");
	CHECK(CodeParse("12345678901234567a", 18, &fields) == CODE_NOT_DIGITS, "letter");
	CHECK(CodeParse("1234567890123456 7", 18, &fields) == CODE_NOT_DIGITS, "space");
	CHECK(CodeParse("-12345678901234567", 18, &fields) == CODE_NOT_DIGITS, "sign");
	CHECK(CodeParse("12345678\0001234567", 18, &fields) == CODE_NOT_DIGITS, "NUL inside");
}

int
main(void)
{
	for (int i = 0; i < CODE_KEY_BYTES; i++)
	{
		key_a[i] = (uint8_t) i;
		key_b[i] = (uint8_t) (0xff - i);
	}
	test_damm();
	test_known_answer();
	test_round_trip();
	test_typos();
	test_forgeries();
	test_malformed();
	return unit_finish();
}
