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
 *
 * Misread plates (suggest_plates): a camera confuses 0/O/D/Q, 1/I, 2/Z, 5/S
 * and 8/B, so plates are compared by their confusion keys, where each class
 * reads as one character ('0', '1', '2', '5', '8').  Two plates are near when
 * their keys are within one edit: one character (a code point, so a province
 * such as 粤 is one character like any other) inserted, deleted or replaced.
 * An index finds the near ones by match keys: the confusion key and each
 * string made from it by deleting one character.  Plates whose keys are
 * within one edit share a match key (a replacement at i: both keys less
 * their i-th character; an insertion: the longer key less the inserted
 * character is the shorter key).  Sharing a match key means within two edits
 * (a transposition, say), so PlateDistance filters what the index finds.
 */
#ifndef PAYEXT_PLATE_H
#define PAYEXT_PLATE_H

#include <stddef.h>

#define PLATE_MAX_CHARS 12
/* Worst case: 12 characters of 3 UTF-8 bytes, and a NUL. */
#define PLATE_MAX_BYTES (PLATE_MAX_CHARS * 3 + 1)
/* Match keys of one plate: its confusion key and one per character deleted. */
#define PLATE_MAX_KEYS (PLATE_MAX_CHARS + 1)

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

/*
 * Writes the confusion key of plate to out (as many bytes as plate, so
 * PLATE_MAX_BYTES for a normal plate; out may be plate itself).  Only the
 * confusable ASCII letters change: the key of a plate is a plate.
 */
extern void PlateConfusionKey(const char *plate, char *out);

/*
 * Writes the match keys of a plate (PlateNormalize's output) to keys and
 * returns how many: the confusion key first, then the key less one character
 * for each character in order, skipping a character that repeats the one
 * before it (deleting either gives one string), so no key appears twice.  A
 * plate of n characters has 2 to n + 1 keys (at most PLATE_MAX_KEYS).
 * Returns -1, writing nothing, for text that is not well-formed UTF-8 or is
 * longer than a plate (PLATE_MAX_CHARS characters, PLATE_MAX_BYTES bytes).
 */
extern int	PlateMatchKeys(const char *plate,
						   char keys[PLATE_MAX_KEYS][PLATE_MAX_BYTES]);

/*
 * The edit distance (Levenshtein, over code points) between the confusion
 * keys of two plates, exact up to 1: 0 when the keys are equal, 1 for one
 * character inserted, deleted or replaced, 2 for anything further.  Linear
 * time, nothing allocated; symmetric.  Any NUL-terminated text is safe; the
 * answer is the one described for well-formed UTF-8.
 */
extern int	PlateDistance(const char *a, const char *b);

#endif							/* PAYEXT_PLATE_H */
