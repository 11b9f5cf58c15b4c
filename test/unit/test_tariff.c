/*
 * test_tariff.c
 *		Unit tests of the parking tariff (src/tariff.c): worked examples of
 *		DESIGN.md's arithmetic, a zone with daylight saving, and random
 *		stays against a unit-by-unit reading of the rules; the worst case
 *		over a longest stay (TariffWorstCase) against the stays it bounds.
 *		Prints "unit: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>

#include "tariff.h"
#include "unit.h"


#define MIN (INT64_C(60) * 1000000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* A zone of fixed offsets that change at given instants. */
typedef struct FakeZone
{
	int			n_changes;
	int64_t		change_at[8];	/* ascending */
	int32_t		offset_after[8];
	int32_t		offset_before;	/* before the first change */
} FakeZone;

static bool
fake_offset_at(void *ctx, int64_t utc_us, int32_t *offset_s, int64_t *next_change_us)
{
	FakeZone   *z = ctx;
	int			i = 0;

	while (i < z->n_changes && z->change_at[i] <= utc_us)
		i++;
	*offset_s = i == 0 ? z->offset_before : z->offset_after[i - 1];
	*next_change_us = i < z->n_changes ? z->change_at[i] : INT64_MAX;
	return true;
}

/* DESIGN.md read unit by unit. */
static int64_t
brute_force(const Tariff *t, FakeZone *z, int64_t in, int64_t out)
{
	__int128	total = 0;

	if (out - in <= t->free_minutes * MIN)
		return 0;
	for (int64_t block = in; block < out; block += DAY)
	{
		int64_t		end = out - block < DAY ? out : block + DAY;
		__int128	sum = 0;

		for (int64_t s = block; s < end; s += t->unit_minutes * MIN)
		{
			int32_t		off;
			int64_t		next;
			int64_t		local;
			int64_t		tod;
			bool		day;

			fake_offset_at(z, s, &off, &next);
			local = s + (int64_t) off * 1000000;
			tod = ((local % DAY) + DAY) % DAY;
			if (t->day_start_min < t->night_start_min)
				day = tod >= t->day_start_min * MIN && tod < t->night_start_min * MIN;
			else
				day = tod >= t->day_start_min * MIN || tod < t->night_start_min * MIN;
			sum += (t->night_price == TARIFF_NO_PRICE || day) ? t->day_price : t->night_price;
		}
		if (t->cap_24h != TARIFF_NO_PRICE && sum > t->cap_24h)
			sum = t->cap_24h;
		total += sum;
	}
	if (t->cap_stay != TARIFF_NO_PRICE && total > t->cap_stay)
		total = t->cap_stay;
	return (int64_t) total;
}

static FakeZone utc = {0, {0}, {0}, 0};
static FakeZone shanghai = {0, {0}, {0}, 8 * 3600};

static int64_t
fee(const Tariff *t, FakeZone *z, int64_t in, int64_t out)
{
	TariffZone	zone = {fake_offset_at, z};
	int64_t		f = -1;
	TariffResult r = TariffPriceStay(t, &zone, in, out, &f);

	return r == TARIFF_OK ? f : -100 - (int64_t) r;
}

static void
test_examples(void)
{
	/* 15 free minutes, 30-minute units; day 08:00-20:00 at 5.00, night 2.00. */
	Tariff		t = {15, 30, 500, 200, 8 * 60, 20 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		night_shift = {0, 60, 300, 100, 20 * 60, 8 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		one_price = {0, 60, 300, TARIFF_NO_PRICE, 8 * 60, 8 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		seven_minutes = {0, 7, 10, TARIFF_NO_PRICE, 0, 0, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		huge_price = {0, 1, INT64_MAX, TARIFF_NO_PRICE, 0, 0, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	int64_t		d0 = 20000 * DAY;	/* a UTC midnight */

	CHECK(fee(&t, &utc, d0 + 10 * HOUR, d0 + 10 * HOUR) == 0, "no time");
	CHECK(fee(&t, &utc, d0 + 10 * HOUR, d0 + 10 * HOUR + 15 * MIN) == 0, "exactly the free minutes");
	CHECK(fee(&t, &utc, d0 + 10 * HOUR, d0 + 10 * HOUR + 15 * MIN + 1) == 500,
		  "one microsecond more: the whole stay from entry, one started unit");
	CHECK(fee(&t, &utc, d0 + 10 * HOUR, d0 + 11 * HOUR) == 1000, "two units");
	CHECK(fee(&t, &utc, d0 + 10 * HOUR, d0 + 11 * HOUR + 1) == 1500, "a third unit started");
	/* 19:30-20:30: one day unit (19:30) and one night unit (20:00). */
	CHECK(fee(&t, &utc, d0 + 19 * HOUR + 30 * MIN, d0 + 20 * HOUR + 30 * MIN) == 700, "across 20:00");
	/* A unit starting at 19:59 is a day unit, whatever it overlaps. */
	CHECK(fee(&t, &utc, d0 + 19 * HOUR + 59 * MIN, d0 + 20 * HOUR + 29 * MIN) == 500, "the start decides");
	/* In Shanghai (UTC+8) 10:00 UTC is 18:00 local. */
	CHECK(fee(&t, &shanghai, d0 + 10 * HOUR, d0 + 13 * HOUR) == 4 * 500 + 2 * 200, "local time");
	/* A full day: 24 day units, 24 night units. */
	CHECK(fee(&t, &utc, d0, d0 + DAY) == 24 * 500 + 24 * 200, "a day");
	t.cap_24h = 10000;
	CHECK(fee(&t, &utc, d0, d0 + DAY) == 10000, "capped day");
	CHECK(fee(&t, &utc, d0, d0 + DAY + 1) == 10000 + 200, "next block starts at entry + 24 h");
	CHECK(fee(&t, &utc, d0, d0 + 30 * DAY) == 300000, "thirty capped days");
	t.cap_stay = 25000;
	CHECK(fee(&t, &utc, d0, d0 + 30 * DAY) == 25000, "stay cap");
	/* Day past midnight: day 20:00-08:00 (a night-shift lot). */
	t = night_shift;
	CHECK(fee(&t, &utc, d0 + 7 * HOUR, d0 + 9 * HOUR) == 300 + 100, "day past midnight");
	/* No night price: every unit at the day price. */
	t = one_price;
	CHECK(fee(&t, &utc, d0, d0 + 5 * HOUR) == 1500, "one price");

	/*
	 * Units that do not divide the day: 7 minutes; the block's last is
	 * partial.
	 */
	t = seven_minutes;
	CHECK(fee(&t, &utc, d0, d0 + DAY) == 206 * 10, "1440 / 7 -> 206 started units");
	CHECK(fee(&t, &utc, d0, d0 + DAY + MIN) == 207 * 10, "a new block restarts the units");
	/* Refusals. */
	CHECK(fee(&t, &utc, d0 + 1, d0) == -100 - TARIFF_EXIT_BEFORE_ENTRY, "exit before entry");
	t.unit_minutes = 0;
	CHECK(fee(&t, &utc, d0, d0 + DAY) == -100 - TARIFF_BAD_TARIFF, "bad tariff");
	t = huge_price;
	CHECK(fee(&t, &utc, d0, d0 + 2 * MIN) == -100 - TARIFF_OVERFLOW, "overflow");
	t.cap_stay = 7;
	CHECK(fee(&t, &utc, d0, d0 + 365 * DAY) == 7, "a cap keeps it in range");
}

/* Daylight saving: the day/night boundary moves, units do not. */
static void
test_dst(void)
{
	int64_t		d0 = 20000 * DAY;

	/*
	 * Offset +1 h, then +2 h from d0 + 1 h UTC (a spring change at 02:00
	 * local).
	 */
	FakeZone	spring = {1, {d0 + HOUR}, {7200}, 3600};
	Tariff		t = {0, 60, 500, 200, 8 * 60, 20 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};

	/*
	 * 05:00-07:00 UTC is 07:00-09:00 local after the change: one night, one
	 * day unit.
	 */
	CHECK(fee(&t, &spring, d0 + 5 * HOUR, d0 + 7 * HOUR) == 200 + 500, "after the change");
	/* Before it, 05:00 UTC would have been 06:00 local: both night. */
	spring.change_at[0] = d0 + 10 * DAY;
	CHECK(fee(&t, &spring, d0 + 5 * HOUR, d0 + 7 * HOUR) == 200 + 200, "before the change");
	CHECK(fee(&t, &spring, d0, d0 + 30 * DAY) == brute_force(&t, &spring, d0, d0 + 30 * DAY),
		  "thirty days across a change");
}


static void
test_random_against_brute_force(void)
{
	for (int round = 0; round < 3000; round++)
	{
		Tariff		t;
		FakeZone	z;
		int64_t		in = 20000 * DAY + (int64_t) (next_random() % (3 * DAY));
		int64_t		out = in + (int64_t) (next_random() % (4 * DAY));
		int64_t		got;
		int64_t		want;

		t.free_minutes = (int32_t) (next_random() % 30);
		t.unit_minutes = 1 + (int32_t) (next_random() % 120);
		t.day_price = (int64_t) (next_random() % 1000);
		t.night_price = next_random() % 4 == 0 ? TARIFF_NO_PRICE : (int64_t) (next_random() % 1000);
		t.day_start_min = (int32_t) (next_random() % 1440);
		t.night_start_min = (int32_t) (next_random() % 1440);
		if (t.night_price != TARIFF_NO_PRICE && t.night_start_min == t.day_start_min)
			t.night_start_min = (t.day_start_min + 1) % 1440;
		t.cap_24h = next_random() % 3 == 0 ? (int64_t) (next_random() % 20000) : TARIFF_NO_PRICE;
		t.cap_stay = next_random() % 3 == 0 ? (int64_t) (next_random() % 50000) : TARIFF_NO_PRICE;

		z.offset_before = (int32_t) (next_random() % (26 * 3600)) - 12 * 3600;
		z.n_changes = (int) (next_random() % 4);
		for (int i = 0; i < z.n_changes; i++)
		{
			z.change_at[i] = in - DAY + (int64_t) (next_random() % (6 * DAY));
			z.offset_after[i] = (int32_t) (next_random() % (26 * 3600)) - 12 * 3600;
		}
		/* Sort the changes. */
		for (int i = 1; i < z.n_changes; i++)
			for (int k = i; k > 0 && z.change_at[k - 1] > z.change_at[k]; k--)
			{
				int64_t		c = z.change_at[k];
				int32_t		o = z.offset_after[k];

				z.change_at[k] = z.change_at[k - 1];
				z.offset_after[k] = z.offset_after[k - 1];
				z.change_at[k - 1] = c;
				z.offset_after[k - 1] = o;
			}
		got = fee(&t, &z, in, out);
		want = brute_force(&t, &z, in, out);
		CHECK(got == want, "round %d: got %lld, want %lld (unit %d, in %lld, out %lld)", round,
			  (long long) got, (long long) want, t.unit_minutes, (long long) in, (long long) out);
	}
}

static int64_t
worst(const Tariff *t, int64_t max_stay_us)
{
	int64_t		w = -1;
	TariffResult r = TariffWorstCase(t, max_stay_us, &w);

	return r == TARIFF_OK ? w : -100 - (int64_t) r;
}

/* The worst case over a longest stay, worked out by hand. */
static void
test_worst_case_examples(void)
{
	int64_t		max64 = INT64_MAX;
	int64_t		thirty_days = 30 * DAY;
	Tariff		flat = {0, 1, 0, TARIFF_NO_PRICE, 0, 0, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		t;

	/* 30 days of 1-minute units: 43,200 units. */
	flat.day_price = max64 / 43200;
	CHECK(worst(&flat, thirty_days) == flat.day_price * 43200, "the largest 1-minute price over 30 days");
	flat.day_price++;
	CHECK(worst(&flat, thirty_days) == -100 - TARIFF_OVERFLOW, "one more overflows");
	/* 36 hours: a full block and a half one, 2,160 units. */
	flat.day_price = max64 / 2160;
	CHECK(worst(&flat, 36 * HOUR) == flat.day_price * 2160, "36 hours: 2160 units");
	flat.day_price++;
	CHECK(worst(&flat, 36 * HOUR) == -100 - TARIFF_OVERFLOW, "36 hours: one more overflows");

	/* Less than a block: its units only, though a full block would overflow. */
	flat.day_price = max64 / 60;
	CHECK(worst(&flat, HOUR) == flat.day_price * 60, "an hour: 60 units, no full block");
	flat.day_price++;
	CHECK(worst(&flat, HOUR) == -100 - TARIFF_OVERFLOW, "an hour: one more overflows");

	/*
	 * 7-minute units: 206 a block (the last 5 minutes long), 30 days 6,180.
	 */
	t = flat;
	t.unit_minutes = 7;
	t.day_price = 10;
	CHECK(worst(&t, thirty_days) == 61800, "7-minute units: 206 a block");
	/* 1 day + 8 minutes: 206 + 2 units (the second block restarts them). */
	CHECK(worst(&t, DAY + 8 * MIN) == 2080, "a partial block's units start from its own start");
	/* The dearer price counts, day or night. */
	t.night_price = 30;
	t.day_start_min = 8 * 60;
	t.night_start_min = 20 * 60;
	CHECK(worst(&t, thirty_days) == 6180 * 30, "the night price when it is the dearer");
	t.day_price = 40;
	CHECK(worst(&t, thirty_days) == 6180 * 40, "the day price when it is the dearer");
	/* cap_24h bounds each block, cap_stay the whole. */
	t = flat;
	t.day_price = max64;
	t.cap_24h = max64 / 30;
	CHECK(worst(&t, thirty_days) == (max64 / 30) * 30, "any price with cap_24h: 30 capped blocks");
	t.cap_24h++;
	CHECK(worst(&t, thirty_days) == -100 - TARIFF_OVERFLOW, "a cap_24h too high for 30 blocks");
	CHECK(worst(&t, 36 * HOUR) == 2 * t.cap_24h, "36 hours: a capped block and a capped half block");
	t.cap_stay = 5;
	CHECK(worst(&t, thirty_days) == 5, "cap_stay bounds everything");
	t.cap_24h = TARIFF_NO_PRICE;
	CHECK(worst(&t, 3660 * DAY) == 5, "... whatever the stay and the price");
	t.cap_stay = max64;
	CHECK(worst(&t, 3660 * DAY) == max64, "a cap_stay of INT64_MAX fits");
	/* A stay within the free minutes costs nothing. */
	t = flat;
	t.day_price = max64;
	t.free_minutes = 60;
	CHECK(worst(&t, HOUR) == 0, "every stay up to max_stay is free");
	CHECK(worst(&t, HOUR + 1) == -100 - TARIFF_OVERFLOW, "one microsecond more is 61 units at INT64_MAX");
	/* Free prices never overflow; nonsense is refused. */
	t.day_price = 0;
	CHECK(worst(&t, 3660 * DAY) == 0, "free parking");
	CHECK(worst(&t, -1) == -100 - TARIFF_BAD_TARIFF, "a negative max_stay");
	t.unit_minutes = 0;
	CHECK(worst(&t, DAY) == -100 - TARIFF_BAD_TARIFF, "a bad tariff");
}

/*
 * Random tariffs: no stay up to max_stay costs more than the worst case
 * (nor fails to price when it fits), and without a night price the bound is
 * exact: the longest stay costs the worst case, or overflows when refused.
 */
static void
test_worst_case_bounds_stays(void)
{
	for (int round = 0; round < 3000; round++)
	{
		Tariff		t;
		FakeZone	z = {0, {0}, {0}, 0};
		int64_t		max_stay = HOUR + (int64_t) (next_random() % (4 * DAY));
		int64_t		in = 20000 * DAY + (int64_t) (next_random() % DAY);
		int64_t		w;
		int64_t		f;

		t.free_minutes = (int32_t) (next_random() % 120);
		t.unit_minutes = 1 + (int32_t) (next_random() % 1440);
		/* Prices of every magnitude, up to INT64_MAX. */
		t.day_price = (int64_t) (next_random() >> (1 + next_random() % 63));
		t.night_price = next_random() % 3 == 0 ? TARIFF_NO_PRICE :
			(int64_t) (next_random() >> (1 + next_random() % 63));
		t.day_start_min = (int32_t) (next_random() % 1440);
		t.night_start_min = (t.day_start_min + 1 + (int32_t) (next_random() % 1439)) % 1440;
		t.cap_24h = next_random() % 3 == 0 ? (int64_t) (next_random() >> (1 + next_random() % 63)) : TARIFF_NO_PRICE;
		t.cap_stay = next_random() % 4 == 0 ? (int64_t) (next_random() >> (1 + next_random() % 63)) : TARIFF_NO_PRICE;
		z.offset_before = (int32_t) (next_random() % (26 * 3600)) - 12 * 3600;

		if (TariffWorstCase(&t, max_stay, &w) != TARIFF_OK)
		{
			/* With one price the bound is exact: the longest stay overflows. */
			if (t.night_price == TARIFF_NO_PRICE)
				CHECK(fee(&t, &z, in, in + max_stay) == -100 - TARIFF_OVERFLOW,
					  "round %d: refused, yet the longest stay prices", round);
			continue;
		}
		CHECK(w >= 0, "round %d: a negative worst case", round);
		for (int k = 0; k < 4; k++)
		{
			int64_t		stay = k == 0 ? max_stay : (int64_t) (next_random() % (max_stay + 1));

			f = fee(&t, &z, in, in + stay);
			CHECK(f >= 0 && f <= w, "round %d: a stay of %lld us costs %lld, the worst case is %lld",
				  round, (long long) stay, (long long) f, (long long) w);
			if (k == 0 && t.night_price == TARIFF_NO_PRICE)
				CHECK(f == w, "round %d: one price: the longest stay costs %lld, the worst case is %lld",
					  round, (long long) f, (long long) w);
		}
	}
}

/* The fee with passes, or -100 - the result when it does not price. */
static int64_t
pfee(const Tariff *t, FakeZone *z, int64_t in, int64_t out, const struct TariffPass *passes,
	 int npasses)
{
	TariffZone	zone = {fake_offset_at, z};
	int64_t		f = -1;
	TariffResult r = TariffPriceStayWithPasses(t, &zone, in, out, passes, npasses, &f);

	return r == TARIFF_OK ? f : -100 - (int64_t) r;
}

/* One pass, [from, until). */
static int64_t
pfee1(const Tariff *t, FakeZone *z, int64_t in, int64_t out, int64_t from, int64_t until)
{
	struct TariffPass p = {from, until};

	return pfee(t, z, in, out, &p, 1);
}

/* Passes, worked out by hand. */
static void
test_pass_examples(void)
{
	/*
	 * t: 15 free minutes, 30-minute units, day 08:00-20:00 at 5.00, night
	 * 2.00; hourly: no free minutes, hour units at 5.00.
	 */
	Tariff		t = {15, 30, 500, 200, 8 * 60, 20 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		hourly = {0, 60, 500, TARIFF_NO_PRICE, 0, 0, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		huge_price = {0, 1, INT64_MAX, TARIFF_NO_PRICE, 0, 0, TARIFF_NO_PRICE, TARIFF_NO_PRICE};
	Tariff		h;
	int64_t		d0 = 20000 * DAY;	/* a UTC midnight */
	int64_t		in = d0 + 10 * HOUR;
	int64_t		out = d0 + 14 * HOUR;
	struct TariffPass two[2];
	struct TariffPass many[TARIFF_MAX_PASSES + 1];

	/* 10:00-14:00 without a pass: 8 day units. */
	CHECK(fee(&t, &utc, in, out) == 4000, "the stay without a pass");
	CHECK(pfee(&t, &utc, in, out, NULL, 0) == 4000, "no passes");
	CHECK(pfee1(&t, &utc, in, out, d0 + 9 * HOUR, d0 + 15 * HOUR) == 0, "a pass over the whole stay");
	CHECK(pfee1(&t, &utc, in, out, in, out) == 0, "a pass exactly the stay");
	CHECK(pfee1(&t, &utc, in, out, d0 + 15 * HOUR, d0 + 16 * HOUR) == 4000, "a pass after the stay");
	CHECK(pfee1(&t, &utc, in, out, out, d0 + 16 * HOUR) == 4000, "a pass from the exit on");
	CHECK(pfee1(&t, &utc, in, out, d0, in) == 4000, "a pass up to the entry");
	CHECK(pfee1(&t, &utc, in, out, d0 + 11 * HOUR, d0 + 11 * HOUR) == 4000, "an empty pass");
	CHECK(pfee1(&t, &utc, in, out, d0 + 12 * HOUR, d0 + 11 * HOUR) == 4000, "a reversed pass");

	/* Covering the start: the rest priced from the pass's end. */
	CHECK(pfee1(&t, &utc, in, out, d0 + 9 * HOUR, d0 + 12 * HOUR) == 2000, "12:00-14:00 remains: 4 units");

	/*
	 * 12:20-13:40 remains: 3 units from 12:20, where units from the entry
	 * would meet 4 (12:00, 12:30, 13:00, 13:30).
	 */
	CHECK(pfee1(&t, &utc, in, d0 + 13 * HOUR + 40 * MIN, d0 + 9 * HOUR, d0 + 12 * HOUR + 20 * MIN) == 1500,
		  "the remainder's units count from the pass's end");
	CHECK(pfee1(&t, &utc, in, out, d0 + 9 * HOUR, out - 15 * MIN) == 0,
		  "a remainder of exactly the free minutes is free");
	CHECK(pfee1(&t, &utc, in, out, d0 + 9 * HOUR, out - 15 * MIN - 1) == 500,
		  "a remainder just over the free minutes: one unit from the pass's end");

	/* Covering the end: 10:00-12:20 remains, 140 minutes, 5 units. */
	CHECK(pfee1(&t, &utc, in, out, d0 + 12 * HOUR + 20 * MIN, d0 + 15 * HOUR) == 2500, "a pass over the end");
	CHECK(pfee1(&t, &utc, in, out, in + 10 * MIN, d0 + 15 * HOUR) == 0,
		  "10 minutes before a pass over the end: within the free minutes");

	/* In the middle: 10:00-11:00 (2 units) and 12:00-14:00 (4 units). */
	CHECK(pfee1(&t, &utc, in, out, d0 + 11 * HOUR, d0 + 12 * HOUR) == 3000, "a pass in the middle");
	/* 10:00-10:50 (2 units) and 12:10-14:00 (110 minutes, 4 units). */
	CHECK(pfee1(&t, &utc, in, out, d0 + 10 * HOUR + 50 * MIN, d0 + 12 * HOUR + 10 * MIN) == 3000,
		  "each piece its own units");
	/* Both pieces within their free minutes: 10:00-10:10 and 10:30-10:40. */
	CHECK(fee(&t, &utc, in, in + 40 * MIN) == 1000, "40 minutes without a pass: 2 units");
	CHECK(pfee1(&t, &utc, in, in + 40 * MIN, in + 10 * MIN, in + 30 * MIN) == 0,
		  "each piece has its own free minutes");

	/*
	 * Hour units: 10:00-11:00 is one unit; a pass 10:20-10:40 leaves two
	 * pieces of one started unit each, 1000, capped at the 500 of the stay
	 * without a pass.
	 */
	CHECK(pfee1(&hourly, &utc, in, in + HOUR, in + 20 * MIN, in + 40 * MIN) == 500,
		  "never dearer than without a pass");
	CHECK(pfee1(&hourly, &utc, in, in + 2 * HOUR, in + 20 * MIN, in + 40 * MIN) == 1000,
		  "... and no cheaper than the pieces when they cost less: 1 + 1 units of 2");

	/*
	 * Starting and ending inside a unit: 10:00-13:30 is 4 units; a pass
	 * 10:30-12:45 leaves 10:00-10:30 (1 unit) and 12:45-13:30 (45 minutes, 1
	 * unit), where units from the entry would meet 3 (10:00, 12:00, 13:00).
	 */
	CHECK(fee(&hourly, &utc, in, d0 + 13 * HOUR + 30 * MIN) == 2000, "3.5 hours: 4 units");
	CHECK(pfee1(&hourly, &utc, in, d0 + 13 * HOUR + 30 * MIN, in + 30 * MIN, d0 + 12 * HOUR + 45 * MIN) == 1000,
		  "a pass from inside a unit to inside a unit");

	/*
	 * Starting inside the stay's free minutes: 10:00-10:10 is free,
	 * 12:50-14:00 is 70 minutes, 3 units.
	 */
	CHECK(pfee1(&t, &utc, in, out, in + 10 * MIN, d0 + 12 * HOUR + 50 * MIN) == 1500,
		  "a pass starting inside the free minutes");
	CHECK(pfee1(&t, &utc, in, in + 15 * MIN, in + 5 * MIN, in + 6 * MIN) == 0,
		  "a stay within the free minutes is free, pass or not");

	/* Overlapping passes merge: 11:00-12:30 covered, 1000 + 1500. */
	two[0] = (struct TariffPass)
	{
		d0 + 11 * HOUR + 30 * MIN, d0 + 12 * HOUR + 30 * MIN
	};
	two[1] = (struct TariffPass)
	{
		d0 + 11 * HOUR, d0 + 12 * HOUR
	};
	CHECK(pfee(&t, &utc, in, out, two, 2) == 2500, "two overlapping passes");
	two[1] = (struct TariffPass)
	{
		d0 + 11 * HOUR + 40 * MIN, d0 + 11 * HOUR + 50 * MIN
	};
	CHECK(pfee(&t, &utc, in, out, two, 2) == 1000 + 1500 + 500,
		  "a pass inside another: 10:00-11:30 (3 units), 12:30-14:00 (3 units)");

	/* Touching passes: 10:30-12:00 covered; 10:00-10:30 and 12:00-13:00. */
	two[0] = (struct TariffPass)
	{
		d0 + 11 * HOUR + 30 * MIN, d0 + 12 * HOUR
	};
	two[1] = (struct TariffPass)
	{
		d0 + 10 * HOUR + 30 * MIN, d0 + 11 * HOUR + 30 * MIN
	};
	CHECK(pfee(&hourly, &utc, in, d0 + 13 * HOUR, two, 2) == 1000, "two touching passes");
	two[0].from_us++;
	CHECK(pfee(&hourly, &utc, in, d0 + 13 * HOUR, two, 2) == 1500,
		  "a microsecond between them is a piece of one unit");

	/*
	 * Day and night: 18:00-21:40; a pass to 20:10 leaves 90 minutes of night,
	 * 3 units.
	 */
	CHECK(pfee1(&t, &utc, d0 + 18 * HOUR, d0 + 21 * HOUR + 40 * MIN, d0 + 17 * HOUR, d0 + 20 * HOUR + 10 * MIN) == 600,
		  "the remainder starts at night");

	/*
	 * A pass to 19:50 leaves units at 19:50 (day), 20:20, 20:50, 21:20
	 * (night).
	 */
	CHECK(pfee1(&t, &utc, d0 + 18 * HOUR, d0 + 21 * HOUR + 40 * MIN, d0 + 17 * HOUR, d0 + 19 * HOUR + 50 * MIN) == 500 + 600,
		  "the remainder's first unit starts in the day");

	/*
	 * 04:00-09:00; a pass to 07:40 leaves units at 07:40 (night), 08:10 and
	 * 08:40 (day).
	 */
	CHECK(pfee1(&t, &utc, d0 + 4 * HOUR, d0 + 9 * HOUR, d0 + 3 * HOUR, d0 + 7 * HOUR + 40 * MIN) == 200 + 1000,
		  "a remainder from night into day");

	/*
	 * cap_24h per block of each piece: 0:00-52:00 with a pass 10:00-26:00.
	 * The pieces 0-10 h (10 units, capped at 3000) and 26-52 h (a block
	 * capped at 3000 and 2 units) cost 7000; blocks from the entry would cost
	 * 3000 + 3000 + 2000.
	 */
	h = hourly;
	h.cap_24h = 3000;
	CHECK(fee(&h, &utc, d0, d0 + 52 * HOUR) == 8000, "52 hours without a pass");
	CHECK(pfee1(&h, &utc, d0, d0 + 52 * HOUR, d0 + 10 * HOUR, d0 + 26 * HOUR) == 7000,
		  "the remainder's 24-hour blocks count from the pass's end");

	/*
	 * cap_stay caps the sum: 10:00-14:00 with a pass 11:00-11:30 leaves 1 and
	 * 3 units, 2000, capped at 1600.
	 */
	h = hourly;
	h.cap_stay = 1600;
	CHECK(pfee1(&h, &utc, in, out, d0 + 11 * HOUR, d0 + 11 * HOUR + 30 * MIN) == 1600, "cap_stay caps the sum");
	h.cap_stay = 1800;
	CHECK(pfee1(&h, &utc, in, out, d0 + 11 * HOUR, d0 + 11 * HOUR + 30 * MIN) == 1800, "... whichever");
	h.cap_stay = 2500;
	CHECK(pfee1(&h, &utc, in, out, d0 + 11 * HOUR, d0 + 11 * HOUR + 30 * MIN) == 2000, "... only above the sum");

	/*
	 * Overflow: two 1-minute units at INT64_MAX do not fit, nor do two pieces
	 * of one unit; one piece of one unit does.
	 */
	t = huge_price;
	CHECK(fee(&t, &utc, d0, d0 + 2 * MIN) == -100 - TARIFF_OVERFLOW, "the stay overflows without a pass");
	CHECK(pfee1(&t, &utc, d0, d0 + 2 * MIN, d0 + 30 * 1000000, d0 + 90 * 1000000) == -100 - TARIFF_OVERFLOW,
		  "two pieces of a unit at INT64_MAX overflow");
	CHECK(pfee1(&t, &utc, d0, d0 + 2 * MIN, d0, d0 + MIN) == INT64_MAX,
		  "one piece of a unit at INT64_MAX fits, though the stay does not");
	CHECK(pfee1(&t, &utc, d0, d0 + 2 * MIN, d0, d0 + 2 * MIN) == 0, "a pass over a stay too dear to price");
	t.cap_stay = 7;
	CHECK(pfee1(&t, &utc, d0, d0 + 2 * MIN, d0 + 30 * 1000000, d0 + 90 * 1000000) == 7, "a cap keeps it in range");

	/* Refusals. */
	t = hourly;
	CHECK(pfee1(&t, &utc, out, in, in, out) == -100 - TARIFF_EXIT_BEFORE_ENTRY, "exit before entry");
	CHECK(pfee(&t, &utc, in, out, two, -1) == -100 - TARIFF_BAD_TARIFF, "a negative number of passes");
	CHECK(pfee(&t, &utc, in, out, NULL, 1) == -100 - TARIFF_BAD_TARIFF, "no array for a pass");
	for (int i = 0; i <= TARIFF_MAX_PASSES; i++)
		many[i] = (struct TariffPass)
	{
		in + i * MIN, in + (i + 1) * MIN
	};
	/* 64 touching one-minute passes from 10:00: 11:04-14:00 remains, 3 units. */
	CHECK(pfee(&t, &utc, in, out, many, TARIFF_MAX_PASSES) == 1500, "TARIFF_MAX_PASSES passes");
	CHECK(pfee(&t, &utc, in, out, many, TARIFF_MAX_PASSES + 1) == -100 - TARIFF_BAD_TARIFF, "one pass too many");
	t.unit_minutes = 0;
	CHECK(pfee1(&t, &utc, in, out, in, out) == -100 - TARIFF_BAD_TARIFF, "a bad tariff");
}

/* Passes and daylight saving. */
static void
test_pass_dst(void)
{
	int64_t		d0 = 20000 * DAY;

	/*
	 * Offset +1 h, then +2 h from 06:30 UTC (07:30 local becomes 08:30). No
	 * free minutes, 30-minute units, day 08:00-20:00 at 5.00, night 2.00.
	 */
	FakeZone	spring = {1, {d0 + 6 * HOUR + 30 * MIN}, {7200}, 3600};
	FakeZone	plus_one = {0, {0}, {0}, 3600};
	Tariff		t = {0, 30, 500, 200, 8 * 60, 20 * 60, TARIFF_NO_PRICE, TARIFF_NO_PRICE};

	/*
	 * 03:00-07:30 UTC with a pass 02:00-06:00: 06:00-07:30 remains, units at
	 * 06:00 (07:00 local, night), 06:30 (08:30, day), 07:00 (09:00, day).
	 */
	CHECK(pfee1(&t, &spring, d0 + 3 * HOUR, d0 + 7 * HOUR + 30 * MIN, d0 + 2 * HOUR, d0 + 6 * HOUR) == 200 + 1000,
		  "a remainder across the change");
	/* Without the change: 07:00 and 07:30 local at night, 08:00 by day. */
	CHECK(pfee1(&t, &plus_one, d0 + 3 * HOUR, d0 + 7 * HOUR + 30 * MIN, d0 + 2 * HOUR, d0 + 6 * HOUR) == 400 + 500,
		  "the same without the change");

	/*
	 * A pass over the change: 03:00-04:00 UTC (04:00-05:00 local, night) and
	 * 06:45-07:30 UTC (08:45, 09:15 local, day).
	 */
	CHECK(pfee1(&t, &spring, d0 + 3 * HOUR, d0 + 7 * HOUR + 30 * MIN, d0 + 4 * HOUR, d0 + 6 * HOUR + 45 * MIN) == 400 + 1000,
		  "a pass across the change");
	/* The pieces' units start at the pass's end, not at the change. */
	CHECK(pfee1(&t, &spring, d0 + 3 * HOUR, d0 + 7 * HOUR + 30 * MIN, d0 + 2 * HOUR, d0 + 6 * HOUR + 20 * MIN) == 200 + 1000,
		  "units at 06:20 (07:20 local), 06:50 and 07:20 (08:50, 09:20)");
}

/*
 * The pieces of [in, out) outside the passes, found without merging: cut
 * at every pass end inside the stay, keep the elementary spans no pass
 * covers, join the neighbours.
 */
static int
reference_pieces(int64_t in, int64_t out, const struct TariffPass *p, int n, int64_t *from, int64_t *to)
{
	int64_t		cut[2 * 8 + 2];
	int			ncut = 0;
	int			npieces = 0;

	cut[ncut++] = in;
	cut[ncut++] = out;
	for (int i = 0; i < n; i++)
	{
		if (p[i].from_us > in && p[i].from_us < out)
			cut[ncut++] = p[i].from_us;
		if (p[i].until_us > in && p[i].until_us < out)
			cut[ncut++] = p[i].until_us;
	}
	for (int i = 1; i < ncut; i++)
		for (int k = i; k > 0 && cut[k - 1] > cut[k]; k--)
		{
			int64_t		c = cut[k];

			cut[k] = cut[k - 1];
			cut[k - 1] = c;
		}
	for (int i = 0; i + 1 < ncut; i++)
	{
		bool		covered = false;

		if (cut[i] == cut[i + 1])
			continue;
		for (int k = 0; k < n; k++)
			covered |= p[k].from_us <= cut[i] && cut[i] < p[k].until_us;
		if (covered)
			continue;
		if (npieces > 0 && to[npieces - 1] == cut[i])
			to[npieces - 1] = cut[i + 1];
		else
		{
			from[npieces] = cut[i];
			to[npieces] = cut[i + 1];
			npieces++;
		}
	}
	return npieces;
}

/* Random stays and passes against the rules read unit by unit. */
static void
test_passes_against_brute_force(void)
{
	for (int round = 0; round < 3000; round++)
	{
		Tariff		t;
		FakeZone	z = {0, {0}, {0}, 0};
		int64_t		in = 20000 * DAY + (int64_t) (next_random() % DAY);
		int64_t		out = in + (int64_t) (next_random() % (3 * DAY));
		struct TariffPass p[8];
		int			n = (int) (next_random() % 5);
		int64_t		from[8 + 1];
		int64_t		to[8 + 1];
		int			npieces;
		int64_t		whole;
		__int128	want = 0;
		int64_t		got;

		t.free_minutes = (int32_t) (next_random() % 30);
		t.unit_minutes = 1 + (int32_t) (next_random() % 120);
		t.day_price = (int64_t) (next_random() % 1000);
		t.night_price = next_random() % 4 == 0 ? TARIFF_NO_PRICE : (int64_t) (next_random() % 1000);
		t.day_start_min = (int32_t) (next_random() % 1440);
		t.night_start_min = (t.day_start_min + 1 + (int32_t) (next_random() % 1439)) % 1440;
		t.cap_24h = next_random() % 3 == 0 ? (int64_t) (next_random() % 20000) : TARIFF_NO_PRICE;
		t.cap_stay = next_random() % 3 == 0 ? (int64_t) (next_random() % 50000) : TARIFF_NO_PRICE;
		z.offset_before = (int32_t) (next_random() % (26 * 3600)) - 12 * 3600;
		z.n_changes = (int) (next_random() % 2);
		z.change_at[0] = in + (int64_t) (next_random() % (3 * DAY));
		z.offset_after[0] = z.offset_before + 3600;
		for (int i = 0; i < n; i++)
		{
			/* Whole minutes now and then, to meet unit boundaries. */
			int64_t		grain = next_random() % 2 ? MIN : 1;

			p[i].from_us = in - HOUR + (int64_t) (next_random() % (4 * DAY / grain)) * grain;
			p[i].until_us = p[i].from_us - HOUR + (int64_t) (next_random() % (DAY / grain)) * grain;
		}

		whole = brute_force(&t, &z, in, out);
		npieces = reference_pieces(in, out, p, n, from, to);
		for (int i = 0; i < npieces; i++)
			want += brute_force(&t, &z, from[i], to[i]);
		if (t.cap_stay != TARIFF_NO_PRICE && want > t.cap_stay)
			want = t.cap_stay;
		if (want > whole || out - in <= t.free_minutes * MIN)
			want = whole;
		got = pfee(&t, &z, in, out, p, n);
		CHECK(got == (int64_t) want, "round %d: got %lld, want %lld (%d passes, %d pieces)", round,
			  (long long) got, (long long) want, n, npieces);
		if (n == 0)
			CHECK(got == fee(&t, &z, in, out), "round %d: no passes, not the fee of the stay", round);
	}
}

int
main(void)
{
	test_examples();
	test_dst();
	test_random_against_brute_force();
	test_worst_case_examples();
	test_worst_case_bounds_stays();
	test_pass_examples();
	test_pass_dst();
	test_passes_against_brute_force();
	return unit_finish();
}
