/*
 * ident.c
 *		Unicode checks for identifiers (see ident.h).  Pure C.
 *
 * The Cf ranges are Unicode 15.1's; a character assigned to Cf later is let
 * through until the table learns it, which the unit test's list of every
 * range makes a one-line change.
 */
#include "ident.h"
#include "utf8.h"

typedef struct IdentRange
{
	uint32_t	first;
	uint32_t	last;
} IdentRange;

/* General category Cf, Unicode 15.1, in code point order. */
static const IdentRange format_ranges[] = {
	{0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C}, {0x06DD, 0x06DD},
	{0x070F, 0x070F}, {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x180E, 0x180E},
	{0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F},
	{0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
	{0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
	{0xE0001, 0xE0001}, {0xE0020, 0xE007F},
};

/* General category Zs. */
static const IdentRange space_ranges[] = {
	{0x0020, 0x0020}, {0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200A},
	{0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

static bool
IdentInRanges(uint32_t cp, const IdentRange *ranges, size_t n)
{
	for (size_t i = 0; i < n && ranges[i].first <= cp; i++)
	{
		if (cp <= ranges[i].last)
			return true;
	}
	return false;
}

bool
IdentIsControl(uint32_t cp)
{
	/* Cc, and the line and paragraph separators (Zl, Zp). */
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

bool
IdentIsFormat(uint32_t cp)
{
	return IdentInRanges(cp, format_ranges,
						 sizeof(format_ranges) / sizeof(format_ranges[0]));
}

bool
IdentIsSpace(uint32_t cp)
{
	return IdentInRanges(cp, space_ranges,
						 sizeof(space_ranges) / sizeof(space_ranges[0]));
}

static IdentResult
IdentRefuse(IdentResult result, size_t at, uint32_t cp, size_t *offset,
			uint32_t *codepoint)
{
	*offset = at;
	*codepoint = cp;
	return result;
}

IdentResult
IdentCheck(const char *s, size_t len, size_t *offset, uint32_t *codepoint)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t		at = 0;
	size_t		last_at = 0;
	uint32_t	cp = 0;

	while (at < len)
	{
		size_t		n = Utf8Decode(u + at, len - at, &cp);

		if (n == 0)
			return IdentRefuse(IDENT_BAD_UTF8, at, 0, offset, codepoint);
		if (IdentIsControl(cp))
			return IdentRefuse(IDENT_CONTROL, at, cp, offset, codepoint);
		if (IdentIsFormat(cp))
			return IdentRefuse(IDENT_FORMAT, at, cp, offset, codepoint);
		if (at == 0 && IdentIsSpace(cp))
			return IdentRefuse(IDENT_EDGE_SPACE, at, cp, offset, codepoint);
		last_at = at;
		at += n;
	}
	if (len > 0 && IdentIsSpace(cp))
		return IdentRefuse(IDENT_EDGE_SPACE, last_at, cp, offset, codepoint);
	return IDENT_OK;
}

IdentResult
IdentCheckAscii(const char *s, size_t len, size_t *offset, uint32_t *codepoint)
{
	const unsigned char *u = (const unsigned char *) s;

	for (size_t at = 0; at < len; at++)
	{
		if (u[at] < 0x20 || u[at] == 0x7F)
			return IdentRefuse(IDENT_CONTROL, at, u[at], offset, codepoint);
	}
	if (len > 0 && u[0] == ' ')
		return IdentRefuse(IDENT_EDGE_SPACE, 0, ' ', offset, codepoint);
	if (len > 0 && u[len - 1] == ' ')
		return IdentRefuse(IDENT_EDGE_SPACE, len - 1, ' ', offset, codepoint);
	return IDENT_OK;
}
