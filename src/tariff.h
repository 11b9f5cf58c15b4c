/*
 * tariff.h
 *		The parking tariff of DESIGN.md, exactly.  Pure C: the caller passes
 *		the lot's time zone as a callback, so that unit tests and fuzzers can
 *		drive it with zones of their own.
 *
 *	1. A stay of at most free_minutes costs 0; otherwise the whole stay is
 *	   charged from entry.
 *	2. The stay is cut into consecutive 24-hour blocks from entry, each
 *	   block into unit_minutes units from its start; every started unit
 *	   costs the price of the period (day or night, in the lot's local time)
 *	   in which it starts.  Day runs from day_start up to night_start, past
 *	   midnight when day_start is the later; the rest is night.  Without a
 *	   night price every unit costs the day price.  Units and blocks are
 *	   spans of real (UTC) time.
 *	3. Each block's sum is capped at cap_24h, the stay's at cap_stay.
 *
 * The stay is priced per run of identical 24-hour blocks (blocks that see
 * the same UTC offset throughout), not unit by unit: the cost grows with the
 * number of offset changes in the stay, not with its length.
 */
#ifndef PAYEXT_TARIFF_H
#define PAYEXT_TARIFF_H

#include <stdbool.h>
#include <stdint.h>

#define TARIFF_USECS_PER_MINUTE INT64_C(60000000)
#define TARIFF_USECS_PER_DAY	(INT64_C(1440) * TARIFF_USECS_PER_MINUTE)
/* A night price or a cap that is not set. */
#define TARIFF_NO_PRICE			(-1)

/*
 * The lot's time zone: the UTC offset in effect at utc_us (seconds east of
 * UTC), and the first instant after utc_us at which the offset changes
 * (INT64_MAX when it never does).  Returns false when the zone cannot say.
 */
typedef bool (*TariffOffsetFn) (void *ctx, int64_t utc_us, int32_t *offset_s,
								int64_t *next_change_us);

typedef struct TariffZone
{
	TariffOffsetFn offset_at;
	void	   *ctx;
} TariffZone;

typedef struct Tariff
{
	int32_t		free_minutes;	/* >= 0 */
	int32_t		unit_minutes;	/* 1 .. 1440 */
	int64_t		day_price;		/* >= 0, minor units per unit */
	int64_t		night_price;	/* >= 0, or TARIFF_NO_PRICE */
	int32_t		day_start_min;	/* minutes after local midnight, 0 .. 1439 */
	int32_t		night_start_min;	/* idem; differs with a night price */
	int64_t		cap_24h;		/* >= 0, or TARIFF_NO_PRICE */
	int64_t		cap_stay;		/* >= 0, or TARIFF_NO_PRICE */
} Tariff;

typedef enum TariffResult
{
	TARIFF_OK = 0,
	TARIFF_BAD_TARIFF,			/* fields out of their ranges */
	TARIFF_EXIT_BEFORE_ENTRY,
	TARIFF_OVERFLOW,			/* the fee does not fit in 64 bits */
	TARIFF_ZONE_FAILED			/* the zone callback failed */
} TariffResult;

/* Checks the tariff's fields (see Tariff). */
extern bool TariffIsValid(const Tariff *tariff);

/* The fee of a stay from entered_us to exited_us (UTC microseconds). */
extern TariffResult TariffPriceStay(const Tariff *tariff, const TariffZone *zone,
									int64_t entered_us, int64_t exited_us,
									int64_t *fee_minor);

/*
 * The most a stay of at most max_stay_us can cost, whatever its entry and
 * zone: every unit at the dearer price, each started 24-hour block capped
 * at cap_24h, the whole at cap_stay.  TARIFF_OVERFLOW when that does not fit
 * in 64 bits; then some such stay may not be priceable.  When it fits, no
 * such stay's TariffPriceStay() overflows, and without a night price the
 * longest stay costs exactly *worst_minor.
 */
extern TariffResult TariffWorstCase(const Tariff *tariff, int64_t max_stay_us,
									int64_t *worst_minor);

/*
 * Parking passes: the part of a stay inside a pass costs nothing, the rest
 * is priced by the tariff as if it were the whole stay's remainder.  Read
 * exactly:
 *
 *	1. A plate may hold several passes at a lot: an array of intervals
 *	   [from_us, until_us) in UTC microseconds, in any order, possibly
 *	   overlapping or touching; an empty one (from_us >= until_us) or one
 *	   outside the stay changes nothing.  They are merged.
 *	2. The parts of the stay [entered_us, exited_us) that no pass covers
 *	   are its pieces (0 .. npasses + 1 of them, in time order).
 *	3. A stay of at most free_minutes costs 0: rule 1 of the tariff applies
 *	   to the stay as a whole first.
 *	4. Otherwise each piece is priced by TariffPriceStay() as a stay of its
 *	   own, from its own start: free minutes apply to each piece, its units
 *	   and 24-hour blocks count from its start (cap_24h per block of the
 *	   piece), day or night by the lot's local time at each unit's start.
 *	5. The pieces' sum is capped at cap_stay, and then at the fee of the
 *	   whole stay without any pass: a pass never makes a stay dearer.
 *	6. Without passes (none given, or none meeting the stay) the fee is
 *	   TariffPriceStay()'s for the whole stay, result included.
 *
 * So a stay the passes split may cost more than a stay they split less
 * (each piece starts its units afresh), never more than without passes.
 * TARIFF_OVERFLOW only when neither the whole stay's fee nor the pieces'
 * sum fits in 64 bits (some stays too dear to price without a pass price
 * with one).  At most TARIFF_MAX_PASSES passes (a fixed local array sorts
 * them); more, or a negative npasses, is TARIFF_BAD_TARIFF.  passes may be
 * NULL when npasses is 0.
 */
#define TARIFF_MAX_PASSES		64

struct TariffPass
{
	int64_t		from_us;		/* the first instant the pass covers */
	int64_t		until_us;		/* the first instant it no longer covers */
};

/* The fee of a stay from entered_us to exited_us under the given passes. */
extern TariffResult TariffPriceStayWithPasses(const Tariff *tariff,
											  const TariffZone *zone,
											  int64_t entered_us,
											  int64_t exited_us,
											  const struct TariffPass *passes,
											  int npasses,
											  int64_t *fee_minor);

#endif							/* PAYEXT_TARIFF_H */
