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
 *
 * Then up to four passes, some empty or reversed, most meeting the stay
 * [entry, entry + stay) (TariffPriceStayWithPasses()): the stay prices with
 * them whenever it prices without, at 0 up to its fee without, and never
 * above cap_stay; with no pass, or every pass moved outside the stay, the
 * result is TariffPriceStay()'s; a pass over the whole stay makes it free;
 * the passes' order does not matter, nor does cutting a pass in two
 * touching or overlapping ones; and one pass over the start (the end) of a
 * stay longer than the free minutes leaves the fee of the rest, from the
 * pass's end (up to its start), or the fee without, whichever is less.
 * Inputs written before the passes were read as no passes.
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

/* The fee with passes; aborts on a result other than OK or OVERFLOW. */
static TariffResult
with_passes(const Tariff *t, const TariffZone *zone, int64_t in, int64_t out,
			const struct TariffPass *passes, int n, int64_t *fee)
{
	TariffResult r = TariffPriceStayWithPasses(t, zone, in, out, passes, n, fee);

	if (r != TARIFF_OK && r != TARIFF_OVERFLOW)
		abort();
	if (r == TARIFF_OK && (*fee < 0 ||
						   (t->cap_stay != TARIFF_NO_PRICE && *fee > t->cap_stay)))
		abort();
	return r;
}

/* Aborts unless both results, and their fees when OK, are the same. */
static void
same(TariffResult r1, int64_t fee1, TariffResult r2, int64_t fee2)
{
	if (r1 != r2 || (r1 == TARIFF_OK && fee1 != fee2))
		abort();
}

/*
 * The pass properties for the stay [in, out), whose fee without passes is
 * r_without/fee_without.  The rest of the input chooses the passes.
 */
static void
check_passes(const Tariff *t, const TariffZone *zone, int64_t in, int64_t out,
			 TariffResult r_without, int64_t fee_without,
			 const uint8_t **data, size_t *size)
{
	int64_t		day = TARIFF_USECS_PER_DAY;
	int64_t		span = out - in + 2 * day;
	int64_t		free_us = t->free_minutes * TARIFF_USECS_PER_MINUTE;
	struct TariffPass p[5];
	struct TariffPass q[6];
	int			n = (int) (take(data, size, 1) % 5);
	int			k;
	int64_t		cut;
	int64_t		fee;
	int64_t		fee2;
	int64_t		rest;
	TariffResult r;
	TariffResult r2;
	TariffResult r_rest;

	/* From a day before entry to a day after exit; up to a day reversed. */
	for (int i = 0; i < n; i++)
	{
		p[i].from_us = in - day + (int64_t) (take(data, size, 6) % span);
		p[i].until_us = p[i].from_us - day + (int64_t) (take(data, size, 6) % span);
	}

	r = with_passes(t, zone, in, out, p, n, &fee);
	if (r_without == TARIFF_OK && (r != TARIFF_OK || fee > fee_without))
		abort();				/* a pass never makes a stay dearer */
	if (n == 0)
		same(r, fee, r_without, fee_without);

	/* Every pass moved to touch the stay from outside: no pass at all. */
	for (int i = 0; i < n; i++)
	{
		int64_t		len = p[i].until_us > p[i].from_us ? p[i].until_us - p[i].from_us : 0;

		q[i].from_us = i % 2 ? in - len : out;
		q[i].until_us = i % 2 ? in : out + len;
	}
	r2 = with_passes(t, zone, in, out, q, n, &fee2);
	same(r2, fee2, r_without, fee_without);

	/* Plus a pass over the whole stay: free. */
	memcpy(q, p, n * sizeof(struct TariffPass));
	q[n].from_us = in - (int64_t) (take(data, size, 2) % 3) * day;
	q[n].until_us = out + (int64_t) (take(data, size, 2) % 3) * day;
	r2 = with_passes(t, zone, in, out, q, n + 1, &fee2);
	same(r2, fee2, TARIFF_OK, 0);

	if (n == 0)
		return;

	/* Rotated and reversed: the same. */
	k = (int) (take(data, size, 1) % n);
	for (int i = 0; i < n; i++)
		q[i] = p[(n - 1 - i + k) % n];
	r2 = with_passes(t, zone, in, out, q, n, &fee2);
	same(r2, fee2, r, fee);

	/*
	 * Pass k cut in two at a point inside it, touching or overlapping by a
	 * bit, the second half at the end: the same.
	 */
	if (p[k].until_us > p[k].from_us)
	{
		memcpy(q, p, n * sizeof(struct TariffPass));
		cut = p[k].from_us + (int64_t) (take(data, size, 6) % (p[k].until_us - p[k].from_us + 1));
		q[k].until_us = cut + (int64_t) (take(data, size, 1) % 3);
		if (q[k].until_us > p[k].until_us)
			q[k].until_us = p[k].until_us;
		q[n].from_us = cut;
		q[n].until_us = p[k].until_us;
		r2 = with_passes(t, zone, in, out, q, n + 1, &fee2);
		same(r2, fee2, r, fee);
	}

	/*
	 * One pass over the start, up to some cut inside the stay: the rest
	 * priced from the cut (TariffPriceStay caps it at cap_stay), or the fee
	 * without, whichever is less.  Likewise one pass over the end from the
	 * cut.
	 */
	if (out - in <= free_us)
		return;
	cut = in + (int64_t) (take(data, size, 6) % (out - in + 1));
	for (int end = 0; end <= 1; end++)
	{
		q[0].from_us = end ? cut : in - (int64_t) (take(data, size, 4) % day);
		q[0].until_us = end ? out + (int64_t) (take(data, size, 4) % day) : cut;
		r2 = with_passes(t, zone, in, out, q, 1, &fee2);
		r_rest = end ? TariffPriceStay(t, zone, in, cut, &rest) :
			TariffPriceStay(t, zone, cut, out, &rest);
		if (r_rest != TARIFF_OK && r_rest != TARIFF_OVERFLOW)
			abort();
		if (r_rest == TARIFF_OK && r_without == TARIFF_OK)
			same(r2, fee2, TARIFF_OK, rest < fee_without ? rest : fee_without);
		else if (r_rest == TARIFF_OK)
			same(r2, fee2, TARIFF_OK, rest);
		else
			same(r2, fee2, r_without, fee_without);
	}
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
	check_passes(&t, &zone, in, in + stay, r1, fee1, &data, &size);
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
