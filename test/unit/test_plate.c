/*
 * test_plate.c
 *		Unit tests of plate normalisation (src/plate.c).  Prints
 *		"unit: N passed, M failed".
 */
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
	return unit_finish();
}
