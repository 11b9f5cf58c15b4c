/*
 * plate.c
 *		Licence plate normalisation (see plate.h).
 */
#include <stdint.h>

#include "plate.h"

/* Decodes one UTF-8 character; returns its length, or 0 when malformed. */
static size_t
DecodeUtf8(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t		n;
	uint32_t	c;

	if (s[0] < 0x80)
	{
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0)
	{
		n = 2;
		c = s[0] & 0x1F;
	}
	else if ((s[0] & 0xF0) == 0xE0)
	{
		n = 3;
		c = s[0] & 0x0F;
	}
	else if ((s[0] & 0xF8) == 0xF0)
	{
		n = 4;
		c = s[0] & 0x07;
	}
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are malformed. */
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
		(c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
		return 0;
	*cp = c;
	return n;
}

static size_t
EncodeUtf8(uint32_t cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (char) (0xE0 | (cp >> 12));
	out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[2] = (char) (0x80 | (cp & 0x3F));
	return 3;
}

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
		size_t		n = DecodeUtf8(s + pos, len - pos, &cp);

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
		written += EncodeUtf8(folded, out + written);
	}
	out[written] = '\0';
	return chars < 2 ? PLATE_TOO_SHORT : PLATE_OK;
}
