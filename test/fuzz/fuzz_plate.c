/*
 * fuzz_plate.c
 *		libFuzzer target for plates (src/plate.c).  Normalisation: any bytes
 *		are refused or give a plate of 2 to 12 allowed characters that is its
 *		own normal form.
 *
 *		Misread matching, on the plates the input gives: the whole input, and
 *		a pair, the text before and after its first newline (without one, its
 *		two halves).  Each plate's confusion key is a plate and its own key;
 *		its match keys are the key and exactly the distinct strings made from
 *		the key by deleting one character.  For the pair, PlateDistance is
 *		symmetric, equals a full Levenshtein distance over the code points of
 *		the confusion keys (at most 2), is 0 exactly when the keys are equal,
 *		and when it is at most 1 the plates share a match key (what the index
 *		relies on); sharing one means a distance of at most 2.  Random single
 *		edits of each plate (seeded by a hash of the input) are at the
 *		distance the edit makes, 0 or 1, and share a match key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plate.h"
#include "utf8.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Characters for edits: every confusable, others, and CJK sharing bytes. */
static const uint32_t edit_chars[] = {
	'0', 'O', 'D', 'Q', '1', 'I', '2', 'Z', '5', 'S', '8', 'B', 'A', 'C', '7',
	0x7CA4, 0x7CA5, 0x7DA4, 0x4EAC, 0xAC00, 0xB098
};
#define EDIT_CHARS ((int) (sizeof(edit_chars) / sizeof(edit_chars[0])))

static uint64_t rng_state;

static uint64_t
next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Decodes well-formed UTF-8 s to cps; the number of code points. */
static int
decode(const char *s, uint32_t *cps, int max)
{
	size_t		len = strlen(s);
	size_t		pos = 0;
	int			n = 0;

	while (pos < len)
	{
		size_t		step;

		if (n == max)
			abort();
		step = Utf8Decode((const unsigned char *) s + pos, len - pos, &cps[n++]);
		if (step == 0)
			abort();
		pos += step;
	}
	return n;
}

static void
encode(const uint32_t *cps, int n, char *out)
{
	size_t		len = 0;

	for (int i = 0; i < n; i++)
		len += Utf8Encode(cps[i], out + len);
	out[len] = '\0';
}

/* The confusion class of a character, written apart from plate.c's. */
static uint32_t
reference_class(uint32_t c)
{
	static const char *const classes[] = {"0ODQ", "1I", "2Z", "5S", "8B"};

	for (int i = 0; i < 5; i++)
		if (c < 0x80 && c != 0 && strchr(classes[i], (int) c) != NULL)
			return (uint32_t) classes[i][0];
	return c;
}

/*
 * Levenshtein over code points, each read as its confusion class, the whole
 * table; at most 2.
 */
static int
reference_distance(const char *a, const char *b)
{
	uint32_t	x[PLATE_MAX_CHARS];
	uint32_t	y[PLATE_MAX_CHARS];
	int			d[PLATE_MAX_CHARS + 1][PLATE_MAX_CHARS + 1];
	int			m = decode(a, x, PLATE_MAX_CHARS);
	int			n = decode(b, y, PLATE_MAX_CHARS);

	for (int i = 0; i < m; i++)
		x[i] = reference_class(x[i]);
	for (int j = 0; j < n; j++)
		y[j] = reference_class(y[j]);
	for (int i = 0; i <= m; i++)
		d[i][0] = i;
	for (int j = 0; j <= n; j++)
		d[0][j] = j;
	for (int i = 1; i <= m; i++)
		for (int j = 1; j <= n; j++)
		{
			int			best = d[i - 1][j - 1] + (x[i - 1] != y[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			d[i][j] = best;
		}
	return d[m][n] < 2 ? d[m][n] : 2;
}

/* Whether two plates have a match key in common. */
static int
share_key(const char *a, const char *b)
{
	char		akeys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	char		bkeys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	int			na = PlateMatchKeys(a, akeys);
	int			nb = PlateMatchKeys(b, bkeys);

	if (na < 2 || nb < 2)
		abort();
	for (int i = 0; i < na; i++)
		for (int j = 0; j < nb; j++)
			if (strcmp(akeys[i], bkeys[j]) == 0)
				return 1;
	return 0;
}

/* The normal form of in[0..len) to out; whether it is a plate. */
static int
normal_plate(const char *in, size_t len, char *out)
{
	char		again[PLATE_MAX_BYTES];
	size_t		outlen;

	if (PlateNormalize(in, len, out) != PLATE_OK)
		return 0;
	outlen = strlen(out);
	if (outlen < 2 || outlen >= PLATE_MAX_BYTES)
		abort();
	/* Normalising a normal form changes nothing. */
	if (PlateNormalize(out, outlen, again) != PLATE_OK || strcmp(out, again) != 0)
		abort();
	for (size_t i = 0; i < outlen; i++)
		if (out[i] == ' ' || out[i] == '-' || (out[i] >= 'a' && out[i] <= 'z'))
			abort();
	return 1;
}

/* The confusion key and the match keys of one plate. */
static void
check_keys(const char *plate)
{
	char		key[PLATE_MAX_BYTES];
	char		again[PLATE_MAX_BYTES];
	char		keys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	uint32_t	cps[PLATE_MAX_CHARS];
	uint32_t	shorter[PLATE_MAX_CHARS];
	int			chars;
	int			nkeys;

	/* The key is a plate of as many bytes, its own key, at distance 0. */
	PlateConfusionKey(plate, key);
	if (strlen(key) != strlen(plate) || !normal_plate(key, strlen(key), again) ||
		strcmp(again, key) != 0)
		abort();
	PlateConfusionKey(key, again);
	if (strcmp(again, key) != 0 || PlateDistance(plate, key) != 0 ||
		PlateDistance(key, plate) != 0)
		abort();

	nkeys = PlateMatchKeys(plate, keys);
	chars = decode(key, cps, PLATE_MAX_CHARS);
	if (nkeys < 2 || nkeys > chars + 1 || nkeys > PLATE_MAX_KEYS ||
		strcmp(keys[0], key) != 0)
		abort();
	/* No key twice, and each after the first one character less. */
	for (int i = 0; i < nkeys; i++)
	{
		for (int j = i + 1; j < nkeys; j++)
			if (strcmp(keys[i], keys[j]) == 0)
				abort();
		if (i > 0 && (reference_distance(key, keys[i]) != 1 ||
					  decode(keys[i], shorter, PLATE_MAX_CHARS) != chars - 1))
			abort();
	}
	/* Each deletion is a key. */
	for (int del = 0; del < chars; del++)
	{
		uint32_t	rest[PLATE_MAX_CHARS];
		char		deleted[PLATE_MAX_BYTES];
		int			found = 0;

		for (int i = 0, k = 0; i < chars; i++)
			if (i != del)
				rest[k++] = cps[i];
		encode(rest, chars - 1, deleted);
		for (int i = 1; i < nkeys && !found; i++)
			found = strcmp(keys[i], deleted) == 0;
		if (!found)
			abort();
	}
}

static void
check_pair(const char *a, const char *b)
{
	char		akey[PLATE_MAX_BYTES];
	char		bkey[PLATE_MAX_BYTES];
	int			d = PlateDistance(a, b);
	int			shared = share_key(a, b);
	int			ref = reference_distance(a, b);

	PlateConfusionKey(a, akey);
	PlateConfusionKey(b, bkey);
	if (d != PlateDistance(b, a) || d != ref)
		abort();
	if ((d == 0) != (strcmp(akey, bkey) == 0))
		abort();
	/* The index finds every plate within one edit... */
	if (d <= 1 && !shared)
		abort();
	/* ... and nothing beyond two. */
	if (shared && ref > 2)
		abort();
}

/* Random single edits of plate: distance 1, or 0 for a confusable. */
static void
check_edits(const char *plate)
{
	uint32_t	cps[PLATE_MAX_CHARS + 1];
	int			n = decode(plate, cps, PLATE_MAX_CHARS);

	for (int round = 0; round < 8; round++)
	{
		uint32_t	edited[PLATE_MAX_CHARS + 1];
		char text[	PLATE_MAX_BYTES + 4];
		char		normal[PLATE_MAX_BYTES];
		int			kind = (int) (next_random() % 3);
		int			m = n;
		int			want = 1;
		int			at;
		uint32_t	c;

		/* A character of the plate itself half the time. */
		if (next_random() % 2)
			c = cps[next_random() % n];
		else
			c = edit_chars[next_random() % EDIT_CHARS];
		if ((kind == 0 && n == PLATE_MAX_CHARS) || (kind == 1 && n == 2))
			kind = 2;
		at = (int) (next_random() % (kind == 0 ? n + 1 : n));
		memcpy(edited, cps, n * sizeof(cps[0]));
		if (kind == 0)
		{
			memmove(edited + at + 1, edited + at, (n - at) * sizeof(cps[0]));
			edited[at] = c;
			m++;
		}
		else if (kind == 1)
		{
			memmove(edited + at, edited + at + 1, (n - at - 1) * sizeof(cps[0]));
			m--;
		}
		else
		{
			char		was[8];
			char		now[8];
			char		wkey[8];
			char		nkey[8];

			was[Utf8Encode(edited[at], was)] = '\0';
			now[Utf8Encode(c, now)] = '\0';
			PlateConfusionKey(was, wkey);
			PlateConfusionKey(now, nkey);
			want = strcmp(wkey, nkey) != 0;
			edited[at] = c;
		}
		encode(edited, m, text);
		if (!normal_plate(text, strlen(text), normal) || strcmp(normal, text) != 0)
			abort();
		if (PlateDistance(plate, text) != want || PlateDistance(text, plate) != want ||
			!share_key(plate, text))
			abort();
		check_pair(plate, text);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size > 0 ? size : 1);
	char		whole[PLATE_MAX_BYTES];
	char		a[PLATE_MAX_BYTES];
	char		b[PLATE_MAX_BYTES];
	const char *newline;
	size_t		split;
	size_t		skip = 1;
	uint64_t	hash = 0xCBF29CE484222325u;

	memcpy(text, data, size);
	/* FNV-1a: the edits depend on every byte, and repeat. */
	for (size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 0x100000001B3u;
	rng_state = hash | 1;

	if (normal_plate(text, size, whole))
	{
		check_keys(whole);
		check_edits(whole);
	}

	newline = size > 0 ? memchr(text, '\n', size) : NULL;
	if (newline != NULL)
		split = newline - text;

	else
	{
		split = size / 2;
		skip = 0;
	}
	if (normal_plate(text, split, a) &&
		normal_plate(text +split + skip, size - split - skip, b))
	{
		check_keys(a);
		check_keys(b);
		check_pair(a, b);
		check_edits(a);
		check_edits(b);
	}
	free(text);
	return 0;
}
