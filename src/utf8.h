/*
 * utf8.h
 *		Decoding and encoding one UTF-8 character.  Pure C, shared by the
 *		pure units that read text (plate.c, ident.c).
 */
#ifndef PAYEXT_UTF8_H
#define PAYEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the character at s[0..len): its length in bytes, or 0 when it is
 * not well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF
 * included).  len must be at least 1.
 */
extern size_t Utf8Decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Writes cp (at most U+10FFFF, not a surrogate) to out; returns its length. */
extern size_t Utf8Encode(uint32_t cp, char *out);

#endif							/* PAYEXT_UTF8_H */
