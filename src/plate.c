/*
 * plate.c
 *		Licence plate normalisation and misread matching (see plate.h).
 */
#include <stdint.h>
#include <string.h>

#include "plate.h"
#include "utf8.h"

static int
IsDropped(uint32_t cp)
{
	return cp == 0x20 || cp == 0x3000 || cp == 0x2D || (cp >= 0x2010 && cp <= 0x2015) ||
		cp == 0x2212 || cp == 0xFF0D || cp == 0xB7 || cp == 0x30FB;
}

/* The folded character, or 0 when it has no place in a plate. */
static uint32_t
Fold(uint32_t cp)
{
	if (cp >= 'a' && cp <= 'z')
		return cp - 'a' + 'A';
	if ((cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9'))
		return cp;
	if (cp >= 0xFF21 && cp <= 0xFF3A)	/* full-width A-Z */
		return cp - 0xFF21 + 'A';
	if (cp >= 0xFF41 && cp <= 0xFF5A)	/* full-width a-z */
		return cp - 0xFF41 + 'A';
	if (cp >= 0xFF10 && cp <= 0xFF19)	/* full-width 0-9 */
		return cp - 0xFF10 + '0';
	if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
		(cp >= 0xAC00 && cp <= 0xD7A3))
		return cp;
	return 0;
}

PlateResult
PlateNormalize(const char *in, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *) in;
	size_t		pos = 0;
	size_t		written = 0;
	int			chars = 0;

	while (pos < len)
	{
		uint32_t	cp;
		uint32_t	folded;
		size_t		n = Utf8Decode(s + pos, len - pos, &cp);

		if (n == 0)
			return PLATE_BAD_UTF8;
		pos += n;
		if (IsDropped(cp))
			continue;
		folded = Fold(cp);
		if (folded == 0)
			return PLATE_BAD_CHARACTER;
		if (++chars > PLATE_MAX_CHARS)
			return PLATE_TOO_LONG;
		written += Utf8Encode(folded, out + written);
	}
	out[written] = '\0';
	return chars < 2 ? PLATE_TOO_SHORT : PLATE_OK;
}

/*
 * The confusion key of one byte.  Bytes of multi-byte characters (0x80 and
 * up) stay as they are, so a key has the characters, and the byte lengths,
 * of its plate.
 */
static char
Confuse(char c)
{
	switch (c)
	{
		case 'O':
		case 'D':
		case 'Q':
			return '0';
		case 'I':
			return '1';
		case 'Z':
			return '2';
		case 'S':
			return '5';
		case 'B':
			return '8';
		default:
			return c;
	}
}

void
PlateConfusionKey(const char *plate, char *out)
{
	size_t		i = 0;

	do
		out[i] = Confuse(plate[i]);
	while (plate[i++] != '\0');
}

int
PlateMatchKeys(const char *plate, char keys[PLATE_MAX_KEYS][PLATE_MAX_BYTES])
{
	const unsigned char *s = (const unsigned char *) plate;
	size_t		len = strlen(plate);
	size_t		start[PLATE_MAX_CHARS + 1];
	int			chars = 0;
	int			nkeys = 1;

	if (len >= PLATE_MAX_BYTES)
		return -1;
	/* Where each character starts, and one past the last. */
	for (size_t pos = 0; pos < len;)
	{
		uint32_t	cp;
		size_t		n = Utf8Decode(s + pos, len - pos, &cp);

		if (n == 0 || chars == PLATE_MAX_CHARS)
			return -1;
		start[chars++] = pos;
		pos += n;
	}
	start[chars] = len;

	PlateConfusionKey(plate, keys[0]);
	for (int i = 0; i < chars; i++)
	{
		size_t		n = start[i + 1] - start[i];

		/* Deleting either of two equal neighbours gives the same string. */
		if (i > 0 && n == start[i] - start[i - 1] &&
			memcmp(keys[0] + start[i - 1], keys[0] + start[i], n) == 0)
			continue;
		memcpy(keys[nkeys], keys[0], start[i]);
		memcpy(keys[nkeys] + start[i], keys[0] + start[i + 1], len - start[i + 1] + 1);
		nkeys++;
	}
	return nkeys;
}

/* A byte inside a multi-byte character, not its first. */
static int
IsContinuation(char c)
{
	return ((unsigned char) c & 0xC0) == 0x80;
}

/*
 * Strips from both keys the longest common prefix, then the longest common
 * suffix of what is left (not overlapping the prefix); the keys are within
 * one edit exactly when each is left with at most one character (a
 * replacement: one each; an insertion or deletion: one and none).  Bytes can
 * stand for characters because Confuse maps ASCII to ASCII and keeps other
 * bytes, and two characters that differ differ in a byte.  A common prefix
 * that ends inside a character moves back to where the character starts (so
 * it is counted as left).  A common suffix may start inside a character: it
 * holds only continuation bytes of it, and what is left is counted by the
 * bytes that start a character.  Checking both keys for a continuation byte
 * keeps the answer symmetric on text that is not UTF-8.
 */
int
PlateDistance(const char *a, const char *b)
{
	size_t		alen = strlen(a);
	size_t		blen = strlen(b);
	size_t		prefix = 0;
	size_t		suffix = 0;
	int			achars = 0;
	int			bchars = 0;

	while (prefix < alen && prefix < blen &&
		   Confuse(a[prefix]) == Confuse(b[prefix]))
		prefix++;
	while (prefix > 0 && (IsContinuation(a[prefix]) || IsContinuation(b[prefix])))
		prefix--;
	if (prefix == alen && prefix == blen)
		return 0;

	while (suffix < alen - prefix && suffix < blen - prefix &&
		   Confuse(a[alen - 1 - suffix]) == Confuse(b[blen - 1 - suffix]))
		suffix++;

	/* Characters left between: bytes that start one. */
	for (size_t i = prefix; i < alen - suffix && achars < 2; i++)
		achars += !IsContinuation(a[i]);
	for (size_t i = prefix; i < blen - suffix && bchars < 2; i++)
		bchars += !IsContinuation(b[i]);
	return achars < 2 && bchars < 2 ? 1 : 2;
}
