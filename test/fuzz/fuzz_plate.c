/*
 * fuzz_plate.c
 *		libFuzzer target for plate normalisation (src/plate.c): any bytes are
 *		refused or give a plate of 2 to 12 allowed characters that is its own
 *		normal form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plate.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size > 0 ? size : 1);
	char		out[PLATE_MAX_BYTES];
	char		again[PLATE_MAX_BYTES];

	memcpy(text, data, size);
	if (PlateNormalize(text, size, out) == PLATE_OK)
	{
		size_t		len = strlen(out);

		if (len < 2 || len >= PLATE_MAX_BYTES)
			abort();
		/* Normalising a normal form changes nothing. */
		if (PlateNormalize(out, len, again) != PLATE_OK || strcmp(out, again) != 0)
			abort();
		for (size_t i = 0; i < len; i++)
			if (out[i] == ' ' || out[i] == '-' || (out[i] >= 'a' && out[i] <= 'z'))
				abort();
	}
	free(text);
	return 0;
}
