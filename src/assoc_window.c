/*
 * assoc_window.c
 *		Sliding-window evaluation of an association rule (assoc_window.h).
 */
#include "assoc_window.h"

int
AssocFindAnchor(const AssocPayment *payments, int n, const AssocRule *rule,
				int64_t from_us)
{
	int			lo = 0;
	int64_t		count = 0;

	/* At most 2^31 amounts below 2^63 each: 128 bits cannot overflow. */
	__int128	total = 0;

	for (int i = 0; i < n; i++)
	{
		int64_t		t = payments[i].occurred_at_us;
		int64_t		left;

		count++;
		total += payments[i].amount_minor;

		/*
		 * Drop what fell out of (t - within, t]; no left edge if t - within
		 * underflows.
		 */
		if (!__builtin_sub_overflow(t, rule->within_us, &left))
		{
			while (payments[lo].occurred_at_us <= left)
			{
				count--;
				total -= payments[lo].amount_minor;
				lo++;
			}
		}

		if (i + 1 < n && payments[i + 1].occurred_at_us == t)
			continue;			/* not the last payment of its time */
		if (t >= from_us && count >= rule->min_interactions &&
			total >= rule->min_total_minor)
			return i;
	}
	return -1;
}
