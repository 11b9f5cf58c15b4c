/*
 * tariff.c
 *		The parking tariff (see tariff.h).
 */
#include <stddef.h>

#include "tariff.h"

/* Largest multiple-of-unit count: ceil(a / b) for a >= 0, b > 0. */
static int64_t
CeilDiv(int64_t a, int64_t b)
{
	return a / b + (a % b != 0);
}

bool
TariffIsValid(const Tariff *t)
{
	if (t->free_minutes < 0 || t->unit_minutes < 1 || t->unit_minutes > 1440)
		return false;
	if (t->day_price < 0 || (t->night_price < 0 && t->night_price != TARIFF_NO_PRICE))
		return false;
	if (t->day_start_min < 0 || t->day_start_min >= 1440 ||
		t->night_start_min < 0 || t->night_start_min >= 1440)
		return false;
	if (t->night_price != TARIFF_NO_PRICE && t->day_start_min == t->night_start_min)
		return false;
	if ((t->cap_24h < 0 && t->cap_24h != TARIFF_NO_PRICE) ||
		(t->cap_stay < 0 && t->cap_stay != TARIFF_NO_PRICE))
		return false;
	return true;
}

/*
 * Units of the block starting at block_us (n_units of them) whose start
 * lies in [from_us, to_us).
 */
static int64_t
UnitsStartingIn(int64_t block_us, int64_t unit_us, int64_t n_units,
				int64_t from_us, int64_t to_us)
{
	int64_t		first = from_us <= block_us ? 0 : CeilDiv(from_us - block_us, unit_us);
	int64_t		last = to_us <= block_us ? 0 : CeilDiv(to_us - block_us, unit_us);

	if (first > n_units)
		first = n_units;
	if (last > n_units)
		last = n_units;
	return last > first ? last - first : 0;
}

/*
 * Units of the block starting in the day period, for the part [a, b) of the
 * block during which the zone's offset is offset_s.  [a, b) spans at most a
 * day, so at most three local days' day periods can meet it.
 */
static int64_t
DayUnitsAtOffset(const Tariff *t, int64_t block_us, int64_t unit_us,
				 int64_t n_units, int64_t a, int64_t b, int32_t offset_s)
{
	int64_t		offset_us = (int64_t) offset_s * 1000000;
	int64_t		local_a = a + offset_us;

	/* Local midnight at or before local_a (floor division). */
	int64_t		midnight = local_a - (((local_a % TARIFF_USECS_PER_DAY) + TARIFF_USECS_PER_DAY) % TARIFF_USECS_PER_DAY);
	int64_t		day_from = t->day_start_min * TARIFF_USECS_PER_MINUTE;
	int64_t		day_to = t->night_start_min * TARIFF_USECS_PER_MINUTE;
	int64_t		count = 0;

	/* Local days from the one before (for a day period past midnight). */
	for (int d = -1; d <= 2; d++)
	{
		int64_t		base = midnight + d * TARIFF_USECS_PER_DAY;
		int64_t		from = base + day_from;
		int64_t		to = day_to > day_from ? base + day_to : base + TARIFF_USECS_PER_DAY + day_to;

		/* Back to UTC, clipped to [a, b). */
		int64_t		utc_from = from - offset_us;
		int64_t		utc_to = to - offset_us;

		if (utc_from < a)
			utc_from = a;
		if (utc_to > b)
			utc_to = b;
		if (utc_to > utc_from)
			count += UnitsStartingIn(block_us, unit_us, n_units, utc_from, utc_to);
	}
	return count;
}

/*
 * The sum of one block [block_us, end_us), end_us <= block_us + 24 h, before
 * its cap.  Splits the block where the zone's offset changes.
 */
static TariffResult
BlockSum(const Tariff *t, const TariffZone *zone, int64_t block_us,
		 int64_t end_us, __int128 *sum)
{
	int64_t		unit_us = t->unit_minutes * TARIFF_USECS_PER_MINUTE;
	int64_t		n_units = CeilDiv(end_us - block_us, unit_us);
	int64_t		day_units = 0;
	int64_t		a = block_us;

	if (t->night_price == TARIFF_NO_PRICE)
	{
		*sum = (__int128) n_units * t->day_price;
		return TARIFF_OK;
	}
	/* Units start anywhere in [block_us, block_us + n_units * unit). */
	end_us = block_us + n_units * unit_us;
	for (int guard = 0; a < end_us; guard++)
	{
		int32_t		offset_s;
		int64_t		next_change;
		int64_t		b;

		if (guard > 64 || !zone->offset_at(zone->ctx, a, &offset_s, &next_change) ||
			next_change <= a)
			return TARIFF_ZONE_FAILED;
		b = next_change < end_us ? next_change : end_us;
		day_units += DayUnitsAtOffset(t, block_us, unit_us, n_units, a, b, offset_s);
		a = b;
	}
	*sum = (__int128) day_units * t->day_price +
		(__int128) (n_units - day_units) * t->night_price;
	return TARIFF_OK;
}

TariffResult
TariffPriceStay(const Tariff *t, const TariffZone *zone, int64_t entered_us,
				int64_t exited_us, int64_t *fee_minor)
{
	__int128	total = 0;
	int64_t		block = entered_us;
	int64_t		span;

	if (!TariffIsValid(t))
		return TARIFF_BAD_TARIFF;
	if (exited_us < entered_us)
		return TARIFF_EXIT_BEFORE_ENTRY;
	*fee_minor = 0;
	/* The whole range of timestamps is wider than 63 bits. */
	if (__builtin_sub_overflow(exited_us, entered_us, &span))
		return TARIFF_OVERFLOW;
	if (span <= t->free_minutes * TARIFF_USECS_PER_MINUTE)
		return TARIFF_OK;

	while (block < exited_us)
	{
		int32_t		offset_s;
		int64_t		next_change;
		int64_t		full_blocks;
		int64_t		same_blocks;
		__int128	sum;
		TariffResult r;

		if (!zone->offset_at(zone->ctx, block, &offset_s, &next_change) ||
			next_change <= block)
			return TARIFF_ZONE_FAILED;
		full_blocks = (exited_us - block) / TARIFF_USECS_PER_DAY;
		/* Full blocks that see one offset throughout price alike. */
		same_blocks = next_change == INT64_MAX ? full_blocks :
			(next_change - block) / TARIFF_USECS_PER_DAY;
		if (same_blocks > full_blocks)
			same_blocks = full_blocks;
		if (same_blocks < 1)
			same_blocks = 1;	/* a partial block, or one with a change */

		r = BlockSum(t, zone, block,
					 exited_us - block < TARIFF_USECS_PER_DAY ? exited_us :
					 block + TARIFF_USECS_PER_DAY, &sum);
		if (r != TARIFF_OK)
			return r;
		if (t->cap_24h != TARIFF_NO_PRICE && sum > t->cap_24h)
			sum = t->cap_24h;
		total += sum * same_blocks;
		if (t->cap_stay != TARIFF_NO_PRICE && total >= t->cap_stay)
		{
			*fee_minor = t->cap_stay;
			return TARIFF_OK;
		}
		if (total > INT64_MAX)
			return TARIFF_OVERFLOW;
		if (exited_us - block <= same_blocks * TARIFF_USECS_PER_DAY)
			break;
		block += same_blocks * TARIFF_USECS_PER_DAY;
	}
	*fee_minor = (int64_t) total;
	return TARIFF_OK;
}

/*
 * The passes met by the stay [entered_us, exited_us), clipped to it, in
 * merged[] by their start (insertion sort: npasses is small).  Returns how
 * many; they may still overlap or touch.
 */
static int
ClipPasses(int64_t entered_us, int64_t exited_us, const struct TariffPass *passes,
		   int npasses, struct TariffPass *merged)
{
	int			n = 0;

	for (int i = 0; i < npasses; i++)
	{
		int64_t		from = passes[i].from_us > entered_us ? passes[i].from_us : entered_us;
		int64_t		until = passes[i].until_us < exited_us ? passes[i].until_us : exited_us;
		int			k;

		if (from >= until)
			continue;
		for (k = n; k > 0 && merged[k - 1].from_us > from; k--)
			merged[k] = merged[k - 1];
		merged[k].from_us = from;
		merged[k].until_us = until;
		n++;
	}
	return n;
}

TariffResult
TariffPriceStayWithPasses(const Tariff *t, const TariffZone *zone,
						  int64_t entered_us, int64_t exited_us,
						  const struct TariffPass *passes, int npasses,
						  int64_t *fee_minor)
{
	struct TariffPass merged[TARIFF_MAX_PASSES];
	int			n;
	int64_t		whole = 0;
	bool		whole_fits = true;
	int64_t		sum = 0;
	bool		sum_fits = true;
	int64_t		piece_from = entered_us;
	TariffResult r;

	if (!TariffIsValid(t))
		return TARIFF_BAD_TARIFF;
	if (exited_us < entered_us)
		return TARIFF_EXIT_BEFORE_ENTRY;
	if (npasses < 0 || npasses > TARIFF_MAX_PASSES || (npasses > 0 && passes == NULL))
		return TARIFF_BAD_TARIFF;
	*fee_minor = 0;

	/*
	 * The whole stay without passes: the bound of rule 5, and 0 for a stay
	 * within the free minutes (rule 3).  When it overflows, the pieces may
	 * still fit.
	 */
	r = TariffPriceStay(t, zone, entered_us, exited_us, &whole);
	if (r == TARIFF_OVERFLOW)
		whole_fits = false;
	else if (r != TARIFF_OK)
		return r;
	else if (whole == 0)
		return TARIFF_OK;

	/* The gaps before the merged passes, and after the last, are the pieces. */
	n = ClipPasses(entered_us, exited_us, passes, npasses, merged);
	for (int i = 0; i <= n && sum_fits; i++)
	{
		int64_t		piece_to = i < n ? merged[i].from_us : exited_us;
		int64_t		piece;

		if (piece_to > piece_from)
		{
			r = TariffPriceStay(t, zone, piece_from, piece_to, &piece);
			if (r == TARIFF_OVERFLOW ||
				(r == TARIFF_OK && __builtin_add_overflow(sum, piece, &sum)))
				sum_fits = false;
			else if (r != TARIFF_OK)
				return r;
		}
		if (i < n && merged[i].until_us > piece_from)
			piece_from = merged[i].until_us;
	}

	/* Rule 5: cap_stay, then never dearer than without a pass. */
	if (t->cap_stay != TARIFF_NO_PRICE && (!sum_fits || sum > t->cap_stay))
	{
		sum = t->cap_stay;
		sum_fits = true;
	}
	if (whole_fits && (!sum_fits || sum > whole))
	{
		sum = whole;
		sum_fits = true;
	}
	if (!sum_fits)
		return TARIFF_OVERFLOW;
	*fee_minor = sum;
	return TARIFF_OK;
}

/*
 * The most one block of `units` units can cost: at `price` each, capped at
 * cap_24h.  False when it does not fit in 64 bits.
 */
static bool
BlockWorstCase(const Tariff *t, int64_t units, int64_t price, int64_t *worst)
{
	int64_t		sum;

	if (__builtin_mul_overflow(units, price, &sum))
	{
		if (t->cap_24h == TARIFF_NO_PRICE)
			return false;
		sum = t->cap_24h;
	}
	if (t->cap_24h != TARIFF_NO_PRICE && sum > t->cap_24h)
		sum = t->cap_24h;
	*worst = sum;
	return true;
}

TariffResult
TariffWorstCase(const Tariff *t, int64_t max_stay_us, int64_t *worst_minor)
{
	int64_t		unit_us = t->unit_minutes * TARIFF_USECS_PER_MINUTE;
	int64_t		price;
	int64_t		full_blocks;
	int64_t		rest_us;
	int64_t		full_worst = 0;
	int64_t		rest_worst = 0;
	int64_t		total;
	bool		fits;

	*worst_minor = 0;
	if (!TariffIsValid(t) || max_stay_us < 0)
		return TARIFF_BAD_TARIFF;
	/* Every stay that long at most is free. */
	if (max_stay_us <= t->free_minutes * TARIFF_USECS_PER_MINUTE)
		return TARIFF_OK;
	price = t->night_price > t->day_price ? t->night_price : t->day_price;

	/*
	 * A shorter stay has fewer full blocks, or as many and a shorter last
	 * one: the longest stay's blocks bound every other stay's.
	 */
	full_blocks = max_stay_us / TARIFF_USECS_PER_DAY;
	rest_us = max_stay_us % TARIFF_USECS_PER_DAY;
	fits = (full_blocks == 0 || BlockWorstCase(t, CeilDiv(TARIFF_USECS_PER_DAY, unit_us), price, &full_worst)) &&
		(rest_us == 0 || BlockWorstCase(t, CeilDiv(rest_us, unit_us), price, &rest_worst)) &&
		!__builtin_mul_overflow(full_blocks, full_worst, &total) &&
		!__builtin_add_overflow(total, rest_worst, &total);
	if (t->cap_stay != TARIFF_NO_PRICE && (!fits || total > t->cap_stay))
	{
		/* TariffPriceStay sums in 128 bits and stops at cap_stay. */
		*worst_minor = t->cap_stay;
		return TARIFF_OK;
	}
	if (!fits)
		return TARIFF_OVERFLOW;
	*worst_minor = total;
	return TARIFF_OK;
}
