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

int
main(void)
{
	test_examples();
	test_dst();
	test_random_against_brute_force();
	test_worst_case_examples();
	test_worst_case_bounds_stays();
	return unit_finish();
}
