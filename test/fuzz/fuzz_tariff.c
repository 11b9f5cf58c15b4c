/*
 * fuzz_tariff.c
 *		libFuzzer target for the parking tariff (src/tariff.c).
 *
 * The input chooses a tariff, a zone with up to three offset changes, an
 * entry, a stay and a later exit.  Whatever it chooses: the fee is not
 * negative, never falls when the exit is later (the same tariff, the same
 * entry), stays within cap_stay, and within cap_24h per started 24-hour
 * block.
 */
#include <stdlib.h>
#include <string.h>

#include "tariff.h"

typedef struct FuzzZone
{
	int			n;
	int64_t		at[3];
	int32_t		offset[4];
} FuzzZone;

static bool
fuzz_offset_at(void *ctx, int64_t utc_us, int32_t *offset_s, int64_t *next_change_us)
{
	FuzzZone   *z = ctx;
	int			i = 0;

	while (i < z->n && z->at[i] <= utc_us)
		i++;
	*offset_s = z->offset[i];
	*next_change_us = i < z->n ? z->at[i] : INT64_MAX;
	return true;
}

static uint64_t
take(const uint8_t **data, size_t *size, int bytes)
{
	uint64_t	v = 0;

	for (int i = 0; i < bytes; i++)
	{
		v <<= 8;
		if (*size > 0)
		{
			v |= **data;
			(*data)++;
			(*size)--;
		}
	}
	return v;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Tariff		t;
	FuzzZone	z;
	TariffZone	zone = {fuzz_offset_at, &z};
	int64_t		day = TARIFF_USECS_PER_DAY;
	int64_t		in;
	int64_t		stay;
	int64_t		extra;
	int64_t		fee1;
	int64_t		fee2;
	TariffResult r1;
	TariffResult r2;

	t.free_minutes = (int32_t) (take(&data, &size, 2) % 2000);
	t.unit_minutes = 1 + (int32_t) (take(&data, &size, 2) % 1440);
	t.day_price = (int64_t) take(&data, &size, 4);
	t.night_price = take(&data, &size, 1) % 4 == 0 ? TARIFF_NO_PRICE : (int64_t) take(&data, &size, 4);
	t.day_start_min = (int32_t) (take(&data, &size, 2) % 1440);
	t.night_start_min = (int32_t) (take(&data, &size, 2) % 1440);
	if (t.night_price != TARIFF_NO_PRICE && t.day_start_min == t.night_start_min)
		t.night_start_min = (t.night_start_min + 1) % 1440;
	t.cap_24h = take(&data, &size, 1) % 2 ? (int64_t) take(&data, &size, 5) : TARIFF_NO_PRICE;
	t.cap_stay = take(&data, &size, 1) % 2 ? (int64_t) take(&data, &size, 6) : TARIFF_NO_PRICE;

	in = (int64_t) (take(&data, &size, 5) % (int64_t) (40000 * day)) - 20000 * day;
	stay = (int64_t) (take(&data, &size, 5) % (400 * day));
	extra = (int64_t) (take(&data, &size, 4) % (3 * day));
	z.n = (int) (take(&data, &size, 1) % 4);
	for (int i = 0; i <= 3; i++)
		z.offset[i] = (int32_t) (take(&data, &size, 2) % (28 * 3600)) - 14 * 3600;
	for (int i = 0; i < z.n; i++)
		z.at[i] = in + (int64_t) (take(&data, &size, 4) % (50 * day)) - day;
	for (int i = 1; i < z.n; i++)
		if (z.at[i] < z.at[i - 1])
			z.at[i] = z.at[i - 1];

	r1 = TariffPriceStay(&t, &zone, in, in + stay, &fee1);
	r2 = TariffPriceStay(&t, &zone, in, in + stay + extra, &fee2);
	if (r1 == TARIFF_OK && fee1 < 0)
		abort();
	if (r1 == TARIFF_OK && r2 == TARIFF_OK && fee2 < fee1)
		abort();				/* a later exit never costs less */
	if (r1 == TARIFF_OVERFLOW && r2 == TARIFF_OK)
		abort();				/* nor does it fit when the shorter did not */
	if (r1 == TARIFF_OK && t.cap_stay != TARIFF_NO_PRICE && fee1 > t.cap_stay)
		abort();
	if (r1 == TARIFF_OK && t.cap_24h != TARIFF_NO_PRICE &&
		(__int128) fee1 > (__int128) t.cap_24h * ((stay + day - 1) / day))
		abort();
	if (r1 != TARIFF_OK && r1 != TARIFF_OVERFLOW)
		abort();				/* a valid tariff and exit >= entry always
								 * price */
	return 0;
}
