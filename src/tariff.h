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

#endif							/* PAYEXT_TARIFF_H */
