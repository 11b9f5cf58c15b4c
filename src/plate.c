/*
 * plate.c
 *		Licence plate normalisation (see plate.h).
 */
#include <stdint.h>

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
