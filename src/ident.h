/*
 * ident.h
 *		What an identifier may contain: no control characters (Unicode Cc),
 *		no invisible format characters (Cf, such as U+200B and U+202E), no
 *		line or paragraph separators, and no space at either end, so that
 *		no two identities look alike.  Pure C: unit tests and a fuzzer
 *		drive it alone.
 */
#ifndef PAYEXT_IDENT_H
#define PAYEXT_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum IdentResult
{
	IDENT_OK = 0,
	IDENT_BAD_UTF8,				/* not valid UTF-8 */
	IDENT_CONTROL,				/* a Cc character, or U+2028/U+2029 */
	IDENT_FORMAT,				/* a Cf character */
	IDENT_EDGE_SPACE			/* a space separator (Zs) first or last */
} IdentResult;

/*
 * Checks len bytes of UTF-8.  On a refusal, *offset is the byte offset and
 * *codepoint the character at fault (0 for bad UTF-8).
 */
extern IdentResult IdentCheck(const char *s, size_t len, size_t *offset,
							  uint32_t *codepoint);

/* The same for a single-byte encoding: ASCII controls and edge spaces. */
extern IdentResult IdentCheckAscii(const char *s, size_t len, size_t *offset,
								   uint32_t *codepoint);

/* Unicode general categories, as far as identifiers care. */
extern bool IdentIsControl(uint32_t cp);
extern bool IdentIsFormat(uint32_t cp);
extern bool IdentIsSpace(uint32_t cp);

#endif							/* PAYEXT_IDENT_H */
