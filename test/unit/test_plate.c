/*
 * test_plate.c
 *		Unit tests of plate normalisation and misread matching (src/plate.c).
 *		Prints "unit: N passed, M failed".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plate.h"
#include "unit.h"

static void
expect(const char *in, PlateResult want_result, const char *want)
{
	char		out[PLATE_MAX_BYTES];
	PlateResult r = PlateNormalize(in, strlen(in), out);

	CHECK(r == want_result && (r != PLATE_OK || strcmp(out, want) == 0),
		  "'%s' -> %d '%s', want %d '%s'", in, r, r == PLATE_OK ? out : "",
		  want_result, want ? want : "");
}

static void
expect_key(const char *plate, const char *want)
{
	char		key[PLATE_MAX_BYTES];

	PlateConfusionKey(plate, key);
	CHECK(strcmp(key, want) == 0, "key of '%s' is '%s', want '%s'", plate, key, want);
}

/* The keys wanted follow plate, in order, then NULL; NULL alone for -1. */
static void
expect_keys(const char *plate,...)
{
	char		keys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	const char *want[PLATE_MAX_KEYS + 1];
	int			n = PlateMatchKeys(plate, keys);
	int			nwant = 0;
	int			same;
	va_list		args;

	va_start(args, plate);
	while (nwant <= PLATE_MAX_KEYS &&
		   (want[nwant] = va_arg(args, const char *)) != NULL)
		nwant++;
	va_end(args);
	if (nwant == 0)
	{
		CHECK(n == -1, "'%s' has %d match keys, want -1", plate, n);
		return;
	}
	same = n == nwant;
	for (int i = 0; same && i < n; i++)
		same = strcmp(keys[i], want[i]) == 0;
	CHECK(same, "'%s' has %d match keys (first '%s', last '%s'), want %d",
		  plate, n, n > 0 ? keys[0] : "", n > 0 ? keys[n - 1] : "", nwant);
}

/* Whether two plates have a match key in common. */
static int
share_key(const char *a, const char *b)
{
	char		akeys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	char		bkeys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	int			na = PlateMatchKeys(a, akeys);
	int			nb = PlateMatchKeys(b, bkeys);

	for (int i = 0; i < na; i++)
		for (int j = 0; j < nb; j++)
			if (strcmp(akeys[i], bkeys[j]) == 0)
				return 1;
	return 0;
}

/* The distance both ways round, and whether the plates share a match key. */
static void
expect_distance(const char *a, const char *b, int want, int want_shared)
{
	int			ab = PlateDistance(a, b);
	int			ba = PlateDistance(b, a);
	int			shared = share_key(a, b);

	CHECK(ab == want && ba == want && shared == want_shared,
		  "'%s' vs '%s': distance %d (%d reversed), shared key %d; want %d, %d",
		  a, b, ab, ba, shared, want, want_shared);
}

/* Characters of random plates: confusables, others, CJK and Hangul. */
static const char *const alphabet[] = {
	"0", "O", "D", "Q", "1", "I", "2", "Z", "5", "S", "8", "B", "A", "C", "7",
	"粤", "粥", "綤", "京", "\xEA\xB0\x80", "\xEB\x82\x98"
};
#define ALPHABET_SIZE ((int) (sizeof(alphabet) / sizeof(alphabet[0])))

/*
 * Random plates and one random edit each: an insertion or a deletion is
 * distance 1, a replacement 0 or 1 as the two characters confuse or not,
 * and in every case the two share a match key.
 */
static void
check_random_edits(int rounds)
{
	for (int round = 0; round < rounds; round++)
	{
		const char *chars[PLATE_MAX_CHARS + 1];
		int			n = 2 + (int) (next_random() % (PLATE_MAX_CHARS - 1));
		int			at;
		int			kind;
		int			want;
		char		plate[PLATE_MAX_BYTES] = "";
		char		edited[PLATE_MAX_BYTES] = "";
		char		normal[PLATE_MAX_BYTES];

		for (int i = 0; i < n; i++)
			chars[i] = alphabet[next_random() % ALPHABET_SIZE];
		for (int i = 0; i < n; i++)
			strcat(plate, chars[i]);

		kind = (int) (next_random() % 3);
		if ((kind == 0 && n == PLATE_MAX_CHARS) || (kind == 1 && n == 2))
			kind = 2;
		at = (int) (next_random() % (kind == 0 ? n + 1 : n));
		if (kind == 0)			/* insert at at */
		{
			memmove(chars + at + 1, chars + at, (n - at) * sizeof(chars[0]));
			chars[at] = alphabet[next_random() % ALPHABET_SIZE];
			n++;
			want = 1;
		}
		else if (kind == 1)		/* delete at */
		{
			memmove(chars + at, chars + at + 1, (n - at - 1) * sizeof(chars[0]));
			n--;
			want = 1;
		}
		else					/* replace at */
		{
			char		was[PLATE_MAX_BYTES];
			char		now[PLATE_MAX_BYTES];

			PlateConfusionKey(chars[at], was);
			chars[at] = alphabet[next_random() % ALPHABET_SIZE];
			PlateConfusionKey(chars[at], now);
			want = strcmp(was, now) == 0 ? 0 : 1;
		}
		for (int i = 0; i < n; i++)
			strcat(edited, chars[i]);

		CHECK(PlateNormalize(edited, strlen(edited), normal) == PLATE_OK &&
			  strcmp(normal, edited) == 0, "'%s' is not a normal plate", edited);
		expect_distance(plate, edited, want, 1);
	}
}

int
main(void)
{
	expect("粤B12345", PLATE_OK, "粤B12345");
	expect("粤b-12345", PLATE_OK, "粤B12345");
	expect("粤B 12345", PLATE_OK, "粤B12345");
	expect("粤Ｂ１２３４５", PLATE_OK, "粤B12345");
	expect("粤B\xE3\x80\x80" "12345", PLATE_OK, "粤B12345");	/* ideographic space */
	expect("京A·D1234", PLATE_OK, "京AD1234");
	expect("ab-123", PLATE_OK, "AB123");
	/* 서울12가3456: 가 in hex, as pg_bsd_indent mangles its byte 0x80. */
	expect("서울12\xEA\xB0\x80" "3456", PLATE_OK, "서울12\xEA\xB0\x80" "3456");
	expect("", PLATE_TOO_SHORT, NULL);
	expect(" - ", PLATE_TOO_SHORT, NULL);
	expect("A", PLATE_TOO_SHORT, NULL);
	expect("ABCDEFGHIJKL", PLATE_OK, "ABCDEFGHIJKL");
	expect("ABCDEFGHIJKLM", PLATE_TOO_LONG, NULL);
	expect("AB_12", PLATE_BAD_CHARACTER, NULL);
	expect("AB\t12", PLATE_BAD_CHARACTER, NULL);
	expect("AB12\xF0\x9F\x9A\x97", PLATE_BAD_CHARACTER, NULL);	/* a car emoji */
	expect("AB\xC3", PLATE_BAD_UTF8, NULL);
	expect("AB\xC0\x80", PLATE_BAD_UTF8, NULL); /* overlong NUL */
	expect("AB\xED\xA0\x80", PLATE_BAD_UTF8, NULL); /* a surrogate */

	/* Confusion keys: one character per class, nothing else changes. */
	expect_key("0ODQ1I2Z5S8B", "000011225588");
	expect_key("ACEFGHJKLMNP", "ACEFGHJKLMNP");
	expect_key("RTUVWXY34679", "RTUVWXY34679");
	expect_key("粤B12345", "粤812345");
	expect_key("京AD1234", "京A01234");
	expect_key("서울12\xEA\xB0\x80" "3456", "서울12\xEA\xB0\x80" "3456");
	{
		char		key[PLATE_MAX_BYTES] = "SOB";

		PlateConfusionKey(key, key);
		CHECK(strcmp(key, "508") == 0, "the key in place is '%s', want '508'", key);
	}

	/* Match keys: the confusion key, then one less each character. */
	expect_keys("粤B12345", "粤812345", "812345", "粤12345", "粤82345",
				"粤81345", "粤81245", "粤81235", "粤81234", NULL);
	/* 粤B00: deleting either 0 gives 粤80, once. */
	expect_keys("粤B00", "粤800", "800", "粤00", "粤80", NULL);
	/* B, 8 and 8 are one character three times. */
	expect_keys("B8B", "888", "88", NULL);
	expect_keys("OD", "00", "0", NULL);
	expect_keys("粤粤", "粤粤", "粤", NULL);
	expect_keys("A粤", "A粤", "粤", "A", NULL);
	expect_keys("ABCDEFGHIJKL", "A8C0EFGH1JKL", "8C0EFGH1JKL", "AC0EFGH1JKL",
				"A80EFGH1JKL", "A8CEFGH1JKL", "A8C0FGH1JKL", "A8C0EGH1JKL",
				"A8C0EFH1JKL", "A8C0EFG1JKL", "A8C0EFGHJKL", "A8C0EFGH1KL",
				"A8C0EFGH1JL", "A8C0EFGH1JK", NULL);
	/* Not plates: too many characters, too many bytes, bad UTF-8. */
	expect_keys("ABCDEFGHIJKLM", NULL);
	expect_keys("\xF0\xA0\x80\x80\xF0\xA0\x80\x80\xF0\xA0\x80\x80"
				"\xF0\xA0\x80\x80\xF0\xA0\x80\x80\xF0\xA0\x80\x80"
				"\xF0\xA0\x80\x80\xF0\xA0\x80\x80\xF0\xA0\x80\x80"
				"\xF0\xA0\x80\x80", NULL);
	expect_keys("AB\xC3", NULL);

	/* Distances: the usual confusions are no edit at all. */
	expect_distance("粤B12345", "粤B12345", 0, 1);
	expect_distance("粤B12345", "粤812345", 0, 1);
	expect_distance("AB1O2", "A8102", 0, 1);
	expect_distance("QDO", "000", 0, 1);
	expect_distance("SZIB", "5218", 0, 1);
	/* One replacement, of one byte or of a whole character. */
	expect_distance("粤B12345", "粤B12346", 1, 1);
	expect_distance("粤B12345", "粤B1A345", 1, 1);
	expect_distance("粤B12345", "京B12345", 1, 1);
	/* 粤 and 粥 share their first two bytes, 粤 and 綤 their last. */
	expect_distance("粤B12345", "粥B12345", 1, 1);
	expect_distance("AB粤", "AB綤", 1, 1);
	expect_distance("A粤B", "A綤B", 1, 1);
	expect_distance("서울12\xEA\xB0\x80" "3456", "서울12\xEB\x82\x98" "3456", 1, 1);
	/* One insertion or deletion, anywhere. */
	expect_distance("粤B12345", "粤B123456", 1, 1);
	expect_distance("粤B12345", "粤B1X2345", 1, 1);
	expect_distance("粤B12345", "X粤B12345", 1, 1);
	expect_distance("粤B12345", "粤B1345", 1, 1);
	expect_distance("粤B12345", "粤B1235", 1, 1);
	expect_distance("粤B12345", "B12345", 1, 1);
	expect_distance("粤B12345", "粤粤B12345", 1, 1);
	expect_distance("粤B12345", "粤B粥12345", 1, 1);
	/* A transposition: two edits, yet a shared key (so SQL filters). */
	expect_distance("粤B12345", "粤B13245", 2, 1);
	expect_distance("粤B12345", "B粤12345", 2, 1);
	/* Two replacements, two insertions: no key in common. */
	expect_distance("粤B12345", "粤B12367", 2, 0);
	expect_distance("粤B12345", "京B12346", 2, 0);
	expect_distance("粤B12345", "粤B1234567", 2, 0);
	expect_distance("粤B12345", "粤B123", 2, 0);
	/* Two replacements where the first characters share bytes. */
	expect_distance("A粤B", "A粥C", 2, 0);
	/* A suffix must not overlap the prefix: two insertions, not one. */
	expect_distance("粤B", "粤B粤B", 2, 0);
	/* Plates of two characters, the shortest there are. */
	expect_distance("AB", "A8", 0, 1);
	expect_distance("AB", "AC", 1, 1);
	expect_distance("AB", "ABC", 1, 1);
	expect_distance("粤B", "粤8B", 1, 1);
	expect_distance("AB", "BA", 2, 1);
	expect_distance("AB", "CE", 2, 0);
	expect_distance("AB", "ABCD", 2, 0);
	expect_distance("粤粤", "京京", 2, 0);
	expect_distance("粤粤", "粤粤粤", 1, 1);

	check_random_edits(20000);
	return unit_finish();
}
