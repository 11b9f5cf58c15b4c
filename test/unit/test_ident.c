/*
 * test_ident.c
 *		Unit tests of src/ident.c: every Cc and Cf character is refused
 *		wherever it stands and its neighbours are not; spaces only at the
 *		edges; malformed UTF-8 refused; the look-alike identities of the
 *		adversarial review refused.
 */
#include <string.h>

#include "ident.h"
#include "utf8.h"
#include "unit.h"

/* "ab" + cp + "cd": what IdentCheck says of it. */
static IdentResult
check_inside(uint32_t cp, size_t *offset)
{
	char		buf[16] = "ab";
	size_t		len = 2;
	uint32_t	at_cp;

	len += Utf8Encode(cp, buf + len);
	memcpy(buf + len, "cd", 2);
	len += 2;
	return IdentCheck(buf, len, offset, &at_cp);
}

static IdentResult
check(const char *s)
{
	size_t		offset;
	uint32_t	cp;

	return IdentCheck(s, strlen(s), &offset, &cp);
}

static void
test_categories(void)
{
	/* Every code point: refused inside an identifier iff Cc/Zl/Zp or Cf. */
	for (uint32_t cp = 1; cp <= 0x10FFFF; cp++)
	{
		size_t		offset = 99;
		IdentResult r;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		r = check_inside(cp, &offset);
		if (IdentIsControl(cp))
			CHECK(r == IDENT_CONTROL && offset == 2, "U+%04X is a control character", cp);
		else if (IdentIsFormat(cp))
			CHECK(r == IDENT_FORMAT && offset == 2, "U+%04X is a format character", cp);
		else if (cp > 0xFFFF && cp % 4096 != 0)
			continue;			/* the astral planes by sample */
		else
			CHECK(r == IDENT_OK, "U+%04X inside an identifier is fine (got %d)", cp, r);
	}
}

static void
test_tables(void)
{
	/* Each range of Cf and Zs, its ends and what lies just outside. */
	static const uint32_t format_first[] = {0x00AD, 0x0600, 0x061C, 0x06DD, 0x070F,
		0x0890, 0x08E2, 0x180E, 0x200B, 0x202A, 0x2060, 0x2066, 0xFEFF, 0xFFF9,
	0x110BD, 0x110CD, 0x13430, 0x1BCA0, 0x1D173, 0xE0001, 0xE0020};
	static const uint32_t format_last[] = {0x00AD, 0x0605, 0x061C, 0x06DD, 0x070F,
		0x0891, 0x08E2, 0x180E, 0x200F, 0x202E, 0x2064, 0x206F, 0xFEFF, 0xFFFB,
	0x110BD, 0x110CD, 0x1343F, 0x1BCA3, 0x1D17A, 0xE0001, 0xE007F};
	static const uint32_t spaces[] = {0x0020, 0x00A0, 0x1680, 0x2000, 0x2005,
	0x200A, 0x202F, 0x205F, 0x3000};

	for (size_t i = 0; i < sizeof(format_first) / sizeof(format_first[0]); i++)
	{
		CHECK(IdentIsFormat(format_first[i]), "U+%04X is Cf", format_first[i]);
		CHECK(IdentIsFormat(format_last[i]), "U+%04X is Cf", format_last[i]);
		CHECK(!IdentIsFormat(format_first[i] - 1) || (i > 0 && format_last[i - 1] == format_first[i] - 1),
			  "U+%04X is not Cf", format_first[i] - 1);
		CHECK(!IdentIsFormat(format_last[i] + 1), "U+%04X is not Cf", format_last[i] + 1);
	}
	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
		CHECK(IdentIsSpace(spaces[i]), "U+%04X is a space", spaces[i]);
	CHECK(!IdentIsSpace('a') && !IdentIsSpace(0x200B), "letters and ZWSP are not spaces");
	CHECK(IdentIsControl(0x0085) && IdentIsControl(0x2028) && IdentIsControl(0x2029),
		  "NEL, LS and PS are refused as controls");
}

static void
test_examples(void)
{
	/* The review's look-alike identities. */
	CHECK(check("gh_tea\xE2\x80\x8Bhouse") == IDENT_FORMAT, "U+200B ZERO WIDTH SPACE");
	CHECK(check("wx_\xE2\x80\xAE" "ecila") == IDENT_FORMAT, "U+202E RIGHT-TO-LEFT OVERRIDE");
	CHECK(check("wx_alice\xC2\x85") == IDENT_CONTROL, "U+0085 NEXT LINE");
	CHECK(check("\xEF\xBB\xBFwx_alice") == IDENT_FORMAT, "U+FEFF BOM");
	CHECK(check("wx_alice\t") == IDENT_CONTROL, "a tab");
	/* Spaces: inside yes, at the edges no. */
	CHECK(check("Lotus Tea House") == IDENT_OK, "inner spaces");
	CHECK(check(" wx_alice") == IDENT_EDGE_SPACE, "a leading space");
	CHECK(check("wx_alice ") == IDENT_EDGE_SPACE, "a trailing space");
	CHECK(check("wx_alice\xE3\x80\x80") == IDENT_EDGE_SPACE, "a trailing ideographic space");
	CHECK(check("\xC2\xA0wx") == IDENT_EDGE_SPACE, "a leading no-break space");
	CHECK(check(" ") == IDENT_EDGE_SPACE, "a space alone");
	/* Scripts people are named in. */
	CHECK(check("\xE8\x8C\xB6\xE9\xA6\x86") == IDENT_OK, "Chinese");
	CHECK(check("caf\xC3\xA9") == IDENT_OK, "a precomposed accent");
	CHECK(check("\xF0\x9F\x8D\xB5 tea") == IDENT_OK, "an emoji");
	CHECK(check("") == IDENT_OK, "empty (length is checked elsewhere)");
	/* Malformed UTF-8. */
	CHECK(check("ab\xC0\x80") == IDENT_BAD_UTF8, "an overlong NUL");
	CHECK(check("ab\xED\xA0\x80") == IDENT_BAD_UTF8, "a surrogate");
	CHECK(check("ab\xF4\x90\x80\x80") == IDENT_BAD_UTF8, "past U+10FFFF");
	CHECK(check("ab\xE8\x8C") == IDENT_BAD_UTF8, "a truncated character");
	CHECK(check("ab\x80") == IDENT_BAD_UTF8, "a stray continuation byte");
}

static void
test_ascii(void)
{
	size_t		offset;
	uint32_t	cp;

	CHECK(IdentCheckAscii("abc", 3, &offset, &cp) == IDENT_OK, "plain ASCII");
	CHECK(IdentCheckAscii("a\x01" "c", 3, &offset, &cp) == IDENT_CONTROL && offset == 1, "a control byte");
	CHECK(IdentCheckAscii("abc ", 4, &offset, &cp) == IDENT_EDGE_SPACE && offset == 3, "a trailing space");
	CHECK(IdentCheckAscii("a\x7f", 2, &offset, &cp) == IDENT_CONTROL, "DEL");
}

int
main(void)
{
	test_categories();
	test_tables();
	test_examples();
	test_ascii();
	return unit_finish();
}
