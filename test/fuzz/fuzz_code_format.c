/*
 * fuzz_code_format.c
 *		libFuzzer target for the payment code (src/code_format.c).
 *
 * Any input: CodeParse() must not crash or read out of bounds, and must
 * accept only 18 digits whose check digit matches; an accepted code,
 * composed again from its fields, is the same code.  The input's first 8
 * bytes, as a serial, and the key made from the rest: the body is below
 * 10^15 and decrypts to the serial, so no two serials share a body.
 */
#include <stdlib.h>
#include <string.h>

#include "code_format.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CodeFields	fields;
	char		code[CODE_DIGITS + 1];
	uint8_t		key[CODE_KEY_BYTES] = {0};
	uint64_t	serial = 0;

	/* A copy of exactly `size` bytes, so that ASan sees any overread. */
	char	   *text = malloc(size > 0 ? size : 1);

	memcpy(text, data, size);
	if (CodeParse(text, size, &fields) == CODE_OK)
	{
		if (size != CODE_DIGITS || CodeCheckDigit(text, CODE_DIGITS) != 0)
			abort();
		for (size_t i = 0; i < size; i++)
			if (text[i] < '0' || text[i] > '9')
				abort();
		CodeCompose(fields.partition, fields.body, code);
		if (memcmp(code, text, CODE_DIGITS) != 0)
			abort();
	}

	for (size_t i = 0; i < size && i < 8; i++)
		serial = (serial << 8) | data[i];
	for (size_t i = 8; i < size && i < 8 + CODE_KEY_BYTES; i++)
		key[i - 8] = data[i];
	serial %= CODE_BODY_MODULUS;
	{
		int			partition = size > 0 ? data[size - 1] % 100 : 0;
		uint64_t	body = CodeEncrypt(key, partition, serial);

		if (body >= CODE_BODY_MODULUS || CodeDecrypt(key, partition, body) != serial)
			abort();
	}
	free(text);
	return 0;
}
