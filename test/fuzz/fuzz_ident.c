/*
 * fuzz_ident.c
 *		libFuzzer target for identifier checks (src/ident.c): any bytes are
 *		refused at an offset inside them, or are well-formed UTF-8 in which no
 *		character is a control or format character and neither end a space.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An independent decoder: the length of the character at s, or 0. */
static size_t
decode(const uint8_t *s, size_t len, uint32_t *cp)
{
	size_t		n = s[0] < 0x80 ? 1 : s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;

	if (n == 0 || n > len)
		return 0;
	*cp = n == 1 ? s[0] : (uint32_t) (s[0] & (0x7F >> n));
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && *cp < 0x800) || (n == 4 && *cp < 0x10000) || *cp > 0x10FFFF ||
		(*cp >= 0xD800 && *cp <= 0xDFFF))
		return 0;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size > 0 ? size : 1);
	size_t		offset = 0;
	uint32_t	cp = 0;
	uint32_t	first = 0;
	uint32_t	last = 0;

	memcpy(text, data, size);
	if (IdentCheck(text, size, &offset, &cp) != IDENT_OK)
	{
		if (offset >= size)
			abort();
	}
	else
	{
		for (size_t at = 0; at < size;)
		{
			size_t		n = decode(data + at, size - at, &cp);

			if (n == 0 || IdentIsControl(cp) || IdentIsFormat(cp))
				abort();
			if (at == 0)
				first = cp;
			last = cp;
			at += n;
		}
		if (size > 0 && (IdentIsSpace(first) || IdentIsSpace(last)))
			abort();
	}
	free(text);
	return 0;
}
