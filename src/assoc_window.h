/*
 * assoc_window.h
 *		The association rule's window arithmetic.  Pure C, so that unit tests
 *		can drive it alone.
 *
 * DESIGN.md: the rule is met when, counting the consumer's payment
 * interactions with the merchant whose occurred_at lies in (t - within, t],
 * t being the newest one's occurred_at, there are at least min_interactions
 * of them and their amounts add up to at least min_total_amount.  payext
 * reads "the newest one" as the newest payment counted: every payment is a
 * candidate t (an anchor), so that a payment imported out of order is judged
 * by the windows it falls in, and re-evaluating history finds the moment the
 * rule was first met.
 */
#ifndef PAYEXT_ASSOC_WINDOW_H
#define PAYEXT_ASSOC_WINDOW_H

#include <stdint.h>

typedef struct AssocPayment
{
	int64_t		occurred_at_us; /* any monotone microsecond clock */
	int64_t		amount_minor;	/* >= 0 */
} AssocPayment;

typedef struct AssocRule
{
	int32_t		min_interactions;	/* >= 1 */
	int64_t		within_us;		/* > 0 */
	int64_t		min_total_minor;	/* >= 0 */
} AssocRule;

/*
 * payments[0..n) sorted by occurred_at_us ascending.  Returns the index of
 * the earliest anchor t with t >= from_us whose window (t - within, t] meets
 * the rule, or -1.  Payments sharing a time are all in each other's window,
 * so an anchor is always the last of its time.  O(n).
 */
extern int	AssocFindAnchor(const AssocPayment *payments, int n,
							const AssocRule *rule, int64_t from_us);

#endif							/* PAYEXT_ASSOC_WINDOW_H */
