/*
 * plate.h
 *		Licence plate normalisation.  Pure C over UTF-8 (the SQL layer applies
 *		Unicode NFC first), so that unit tests and fuzzers can drive it.
 *
 * Spaces (U+0020, U+3000), dashes (U+002D, U+2010..U+2015, U+2212, U+FF0D)
 * and middle dots (U+00B7, U+30FB) are dropped; a-z and the full-width
 * Latin letters and digits fold to A-Z and 0-9.  What remains must be 2 to
 * PLATE_MAX_CHARS characters, each A-Z, 0-9, a CJK ideograph (a Chinese
 * province: 粤, 京, ...) or a Hangul syllable.  So '粤b-12345', '粤B 12345'
 * and '粤Ｂ１２３４５' are one plate, '粤B12345'.
 */
#ifndef PAYEXT_PLATE_H
#define PAYEXT_PLATE_H

#include <stddef.h>

#define PLATE_MAX_CHARS 12
/* Worst case: 12 characters of 3 UTF-8 bytes, and a NUL. */
#define PLATE_MAX_BYTES (PLATE_MAX_CHARS * 3 + 1)

typedef enum PlateResult
{
	PLATE_OK = 0,
	PLATE_BAD_UTF8,
	PLATE_BAD_CHARACTER,
	PLATE_TOO_SHORT,
	PLATE_TOO_LONG
} PlateResult;

/* Writes the normal form of in[0..len) to out (PLATE_MAX_BYTES bytes). */
extern PlateResult PlateNormalize(const char *in, size_t len, char *out);

#endif							/* PAYEXT_PLATE_H */
