/*
 * test_assoc_window.c
 *		Unit tests of the association window (src/assoc_window.c), against
 *		a brute-force reading of DESIGN.md's rule.  Prints
 *		"unit: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>

#include "assoc_window.h"
#include "unit.h"


#define DAY (INT64_C(86400) * 1000000)


/* The rule read literally: for each anchor t, count and add up (t - w, t]. */
static int
brute_force(const AssocPayment *p, int n, const AssocRule *rule, int64_t from_us)
{
	for (int i = 0; i < n; i++)
	{
		int64_t		count = 0;
		__int128	total = 0;

		if (p[i].occurred_at_us < from_us || (i + 1 < n && p[i + 1].occurred_at_us == p[i].occurred_at_us))
			continue;
		for (int k = 0; k < n; k++)
		{
			if (p[k].occurred_at_us > p[i].occurred_at_us - rule->within_us &&
				p[k].occurred_at_us <= p[i].occurred_at_us)
			{
				count++;
				total += p[k].amount_minor;
			}
		}
		if (count >= rule->min_interactions && total >= rule->min_total_minor)
			return i;
	}
	return -1;
}

static void
test_boundaries(void)
{
	AssocRule	rule = {3, 30 * DAY, 0};
	AssocRule	two_in_30_days = {2, 30 * DAY, 0};

	/*
	 * Three payments: days 0, 10, 30.  Day 0 is exactly 30 days before day
	 * 30: out.
	 */
	AssocPayment edge[] = {{0, 100}, {10 * DAY, 100}, {30 * DAY, 100}};
	AssocPayment inside[] = {{1, 100}, {10 * DAY, 100}, {30 * DAY, 100}};
	AssocPayment ties[] = {{5 * DAY, 1}, {5 * DAY, 1}, {5 * DAY, 1}};

	CHECK(AssocFindAnchor(edge, 3, &rule, INT64_MIN) == -1, "a payment exactly `within` before t is out");
	CHECK(AssocFindAnchor(inside, 3, &rule, INT64_MIN) == 2, "a payment 1 us later is in");
	CHECK(AssocFindAnchor(ties, 3, &rule, INT64_MIN) == 2, "payments at one time count together");
	CHECK(AssocFindAnchor(ties, 2, &rule, INT64_MIN) == -1, "two are not three");

	rule.min_interactions = 1;
	rule.min_total_minor = 300;
	CHECK(AssocFindAnchor(inside, 3, &rule, INT64_MIN) == 2, "amount exactly at the bound");
	rule.min_total_minor = 301;
	CHECK(AssocFindAnchor(inside, 3, &rule, INT64_MIN) == -1, "amount just below the bound");

	/* from_us: only anchors at or after it count. */
	rule = two_in_30_days;
	CHECK(AssocFindAnchor(inside, 3, &rule, INT64_MIN) == 1, "earliest anchor");
	CHECK(AssocFindAnchor(inside, 3, &rule, 20 * DAY) == 2, "first anchor from day 20");
	CHECK(AssocFindAnchor(inside, 3, &rule, 31 * DAY) == -1, "no anchor after the last payment");
	CHECK(AssocFindAnchor(inside, 0, &rule, INT64_MIN) == -1, "no payments");
}

static void
test_extremes(void)
{
	AssocRule	rule = {2, INT64_MAX, INT64_MAX};
	AssocRule	two_in_10_us = {2, 10, 2};
	AssocPayment big[] = {{1, INT64_MAX}, {INT64_MAX, INT64_MAX}};
	AssocPayment early[] = {{INT64_MIN, 1}, {INT64_MIN + 1, 1}};

	/* The sum of two largest amounts does not wrap; (0, max] holds both. */
	CHECK(AssocFindAnchor(big, 2, &rule, INT64_MIN) == 1, "extreme times and amounts");
	big[0].occurred_at_us = 0;
	CHECK(AssocFindAnchor(big, 2, &rule, INT64_MIN) == -1, "0 is outside (0, max]");
	/* t - within below the clock's start: the window has no left edge. */
	rule = two_in_10_us;
	CHECK(AssocFindAnchor(early, 2, &rule, INT64_MIN) == 1, "window reaching before the clock");
}

static void
test_random_against_brute_force(void)
{
	AssocPayment p[64];

	for (int round = 0; round < 20000; round++)
	{
		int			n = (int) (next_random() % 64);
		AssocRule	rule;
		int64_t		t = 0;
		int64_t		from_us;
		int			got;
		int			want;

		for (int i = 0; i < n; i++)
		{
			/* Often equal times, sometimes far apart. */
			t += (int64_t) (next_random() % 4) * (int64_t) (next_random() % (3 * DAY));
			p[i].occurred_at_us = t;
			p[i].amount_minor = (int64_t) (next_random() % 1000);
		}
		rule.min_interactions = 1 + (int32_t) (next_random() % 6);
		rule.within_us = 1 + (int64_t) (next_random() % (10 * DAY));
		rule.min_total_minor = (int64_t) (next_random() % 3000);
		from_us = n > 0 && next_random() % 2 ? p[next_random() % n].occurred_at_us : INT64_MIN;
		got = AssocFindAnchor(p, n, &rule, from_us);
		want = brute_force(p, n, &rule, from_us);
		CHECK(got == want, "round %d: got %d, want %d", round, got, want);
	}
}

int
main(void)
{
	test_boundaries();
	test_extremes();
	test_random_against_brute_force();
	return unit_finish();
}
