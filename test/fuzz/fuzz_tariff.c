/*
 * fuzz_tariff.c
 *		libFuzzer target for the parking tariff (src/tariff.c).
 *
 * The input chooses a tariff (prices and caps of every magnitude up to
 * INT64_MAX), a zone with up to three offset changes, an entry, a stay, a
 * later exit and a longest stay (max_stay, up to ten years).  Whatever it
 * chooses: the fee is not negative, never falls when the exit is later (the
 * same tariff, the same entry), stays within cap_stay, and within cap_24h
 * per started 24-hour block.  And when TariffWorstCase() accepts the tariff
 * for max_stay, every stay of at most max_stay prices (no overflow) at no
 * more than the worst case; with one price (no night price) the bound is
 * exact: the longest stay costs the worst case, or overflows when the
 * tariff is refused.
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

/* A non-negative amount of any magnitude: 8 bytes shifted right 1 to 63 bits. */
static int64_t
take_amount(const uint8_t **data, size_t *size)
{
	int			shift = 1 + (int) (take(data, size, 1) % 63);

	return (int64_t) (take(data, size, 8) >> shift);
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
	int64_t		max_stay;
	int64_t		fee1;
	int64_t		fee2;
	int64_t		fee3;
	int64_t		worst;
	TariffResult r1;
	TariffResult r2;
	TariffResult r3;
	TariffResult w;

	t.free_minutes = (int32_t) (take(&data, &size, 2) % 2000);
	t.unit_minutes = 1 + (int32_t) (take(&data, &size, 2) % 1440);
	t.day_price = take_amount(&data, &size);
	t.night_price = take(&data, &size, 1) % 4 == 0 ? TARIFF_NO_PRICE : take_amount(&data, &size);
	t.day_start_min = (int32_t) (take(&data, &size, 2) % 1440);
	t.night_start_min = (int32_t) (take(&data, &size, 2) % 1440);
	if (t.night_price != TARIFF_NO_PRICE && t.day_start_min == t.night_start_min)
		t.night_start_min = (t.night_start_min + 1) % 1440;
	t.cap_24h = take(&data, &size, 1) % 2 ? take_amount(&data, &size) : TARIFF_NO_PRICE;
	t.cap_stay = take(&data, &size, 1) % 2 ? take_amount(&data, &size) : TARIFF_NO_PRICE;
	max_stay = (int64_t) (take(&data, &size, 5) % (3660 * day + 1));

	in = (int64_t) (take(&data, &size, 5) % (int64_t) (40000 * day)) - 20000 * day;
	stay = (int64_t) (take(&data, &size, 5) % (400 * day));
	extra = (int64_t) (take(&data, &size, 4) % (3 * day));
	z.n = (int) (take(&data, &size, 1) % 4);
	for (int i = 0; i <= 3; i++)
		z.offset[i] = (int32_t) (take(&data, &size, 2) % (28 * 3600)) - 14 * 3600;
	/* Six bytes: four would reach only 72 minutes past entry - 1 day. */
	for (int i = 0; i < z.n; i++)
		z.at[i] = in + (int64_t) (take(&data, &size, 6) % (50 * day)) - day;
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

	/* The worst case over max_stay bounds every stay up to it. */
	w = TariffWorstCase(&t, max_stay, &worst);
	if (w != TARIFF_OK && w != TARIFF_OVERFLOW)
		abort();
	r3 = TariffPriceStay(&t, &zone, in, in + max_stay, &fee3);
	if (w != TARIFF_OK)
	{
		/* With one price the bound is exact: refused only if it overflows. */
		if (t.night_price == TARIFF_NO_PRICE && r3 != TARIFF_OVERFLOW)
			abort();
		return 0;
	}
	if (worst < 0)
		abort();
	if (stay <= max_stay && (r1 != TARIFF_OK || fee1 > worst))
		abort();
	if (stay + extra <= max_stay && (r2 != TARIFF_OK || fee2 > worst))
		abort();
	if (r3 != TARIFF_OK || fee3 > worst)
		abort();
	if (t.night_price == TARIFF_NO_PRICE && fee3 != worst)
		abort();				/* one price: the bound is exact */
	return 0;
}
