/*
 * fuzz_code_format.c
 *		libFuzzer target for the payment code parser (src/code_format.c).
 *
 * Any input: CodeParse() must not crash or read out of bounds, and must
 * accept only 18 digits whose check digit matches.  An accepted code,
 * signed again from its own fields, must parse back to the same fields, and
 * its MAC check must be a clean yes or no.
 */
#include <stdlib.h>
#include <string.h>

#include "code_format.h"

static const uint8_t fuzz_key[CODE_KEY_BYTES] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CodeFields	fields;
	CodeFields	again;
	char		code[CODE_DIGITS + 1];

	/* A copy of exactly `size` bytes, so that ASan sees any overread. */
	char	   *text = malloc(size > 0 ? size : 1);

	memcpy(text, data, size);
	if (CodeParse(text, size, &fields) == CODE_OK)
	{
		if (size != CODE_DIGITS)
			abort();
		for (size_t i = 0; i < size; i++)
			if (text[i] < '0' || text[i] > '9')
				abort();
		if (CodeCheckDigit(text, CODE_DIGITS) != 0)
			abort();
		(void) CodeMacIsValid(&fields, fields.key_slot, fuzz_key);

		CodeCompose(fields.shard, fields.key_slot, fields.serial, fuzz_key, code);
		if (CodeParse(code, CODE_DIGITS, &again) != CODE_OK ||
			again.shard != fields.shard || again.key_slot != fields.key_slot ||
			again.serial != fields.serial ||
			!CodeMacIsValid(&again, fields.key_slot, fuzz_key))
			abort();
	}
	free(text);
	return 0;
}
