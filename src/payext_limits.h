/*
 * payext_limits.h
 *		Every bound payext enforces, as MIN/MAX/DEFAULT triads where a
 *		setting is involved.  A limit that is not here does not exist.
 */
#ifndef PAYEXT_PAYEXT_LIMITS_H
#define PAYEXT_PAYEXT_LIMITS_H

/*
 * A partition's number (payext.partition_info, set_partition()): a payment
 * code's first two digits, and ids carry it in their high bits.
 */
#define PAYEXT_MIN_PARTITION		0
#define PAYEXT_MAX_PARTITION		99

/*
 * payext.shard_id, 0.7.0's partition number: read only by the update from
 * 0.7.0, which moves it into payext.partition_info.
 */
#define PAYEXT_MIN_SHARD_ID			0
#define PAYEXT_MAX_SHARD_ID			9
#define PAYEXT_DEFAULT_SHARD_ID		0

/* Ids are (partition << PAYEXT_ID_SHARD_SHIFT) | serial; 99 << 56 < 2^63. */
#define PAYEXT_ID_SHARD_SHIFT		56
#define PAYEXT_MAX_ID_SERIAL		((INT64CONST(1) << PAYEXT_ID_SHARD_SHIFT) - 1)

/* Owners (social-app ids) and public-service ids, in bytes. */
#define PAYEXT_MAX_IDENTIFIER_LEN	128
/* Display names, in bytes. */
#define PAYEXT_MAX_DISPLAY_NAME_LEN 256
/* External references, order and refund references, in bytes. */
#define PAYEXT_MAX_REFERENCE_LEN	128

/*
 * Payment code validity, in seconds: payext.code_ttl (the default) and
 * payext.max_code_ttl (the cap an app cannot exceed) share these bounds.
 */
#define PAYEXT_MIN_CODE_TTL_S		1
#define PAYEXT_MAX_CODE_TTL_S		3600
#define PAYEXT_DEFAULT_CODE_TTL_S	60
#define PAYEXT_DEFAULT_MAX_CODE_TTL_S 300

/*
 * Payment code guesses (codes that were never issued) a merchant may submit
 * within the window before it may charge no code until the window has
 * passed: payext.code_failure_limit (0: no throttling) and
 * payext.code_failure_window, in seconds; payext.code_failure_slots, the
 * merchants shared memory keeps at once.
 */
#define PAYEXT_DEFAULT_CODE_FAILURE_LIMIT	20
#define PAYEXT_MAX_CODE_FAILURE_LIMIT		100000
#define PAYEXT_DEFAULT_CODE_FAILURE_WINDOW_S 600
#define PAYEXT_MAX_CODE_FAILURE_WINDOW_S	86400
#define PAYEXT_MIN_CODE_FAILURE_SLOTS		100
#define PAYEXT_DEFAULT_CODE_FAILURE_SLOTS	10000
#define PAYEXT_MAX_CODE_FAILURE_SLOTS		1000000

/*
 * Payment codes: live rows expired this long ago are purged, at most this
 * many by every PAYEXT_CODE_PURGE_EVERY-th code a backend issues.
 */
#define PAYEXT_CODE_PURGE_AFTER_S	300
#define PAYEXT_CODE_PURGE_EVERY		64
#define PAYEXT_CODE_PURGE_ROWS		512
/* How long a retired signing key still recognises its codes, in seconds. */
#define PAYEXT_CODE_KEY_MEMORY_S	86400
/* Keys tried when recognising a code that has no live row. */
#define PAYEXT_CODE_KEYS_TRIED		8

/* Association rules: the longest window, in days. */
#define PAYEXT_MAX_RULE_WINDOW_DAYS 3660
/* Payments of one consumer at one merchant evaluated at once. */
#define PAYEXT_MAX_PAIR_PAYMENTS	1000000
/* Pairs fetched per batch by evaluate_associations(). */
#define PAYEXT_EVALUATE_BATCH		1000
/* How far ahead of the server's clock an interaction may be, in seconds. */
#define PAYEXT_MAX_CLOCK_SKEW_S		300

/* Vehicles per user (payext.max_vehicles). */
#define PAYEXT_MIN_MAX_VEHICLES		1
#define PAYEXT_MAX_MAX_VEHICLES		100
#define PAYEXT_DEFAULT_MAX_VEHICLES 3
/*
 * payext.max_stay, in minutes: camera events older than this are refused,
 * no longer stay is priced at exit, and no lot's tariff may charge more than
 * 64 bits over it.  An hour to ten years; 30 days by default.
 */
#define PAYEXT_MIN_MAX_STAY_MIN		60
#define PAYEXT_MAX_MAX_STAY_MIN		(3660 * 1440)
#define PAYEXT_DEFAULT_MAX_STAY_MIN (30 * 1440)
/* payext.max_clock_skew: how far ahead of the server a camera may be, in seconds. */
#define PAYEXT_MIN_MAX_CLOCK_SKEW_S 0
#define PAYEXT_MAX_MAX_CLOCK_SKEW_S 3600
#define PAYEXT_DEFAULT_MAX_CLOCK_SKEW_S 300
/*
 * payext.max_auto_pay, in minor units of the lot's currency: the most an
 * exit pays by itself from a wallet with auto-pay; 0 turns it off.
 */
#define PAYEXT_MIN_MAX_AUTO_PAY		0
#define PAYEXT_MAX_MAX_AUTO_PAY		PG_INT32_MAX
#define PAYEXT_DEFAULT_MAX_AUTO_PAY 20000
/* A lot's free minutes at most (a week). */
#define PAYEXT_MAX_FREE_MINUTES		10080
/* Exit events of one plate at one lot this close, in seconds, are one event. */
#define PAYEXT_EXIT_REPEAT_S		60

/*
 * Credits to a merchant (charges, parking payments) go to one of this many
 * buckets, chosen by backend, so that concurrent payments to one merchant
 * do not queue on its row (see ledger.c).
 */
#define PAYEXT_MERCHANT_BUCKETS		16

/* Items in one charge_many() call: one transaction, kept short. */
#define PAYEXT_MAX_BATCH_ITEMS		1000

/* Length of the journal row checksum kept in transfer.checksum, in bytes. */
#define PAYEXT_CHECKSUM_LEN			16

/* A hold's expires_in: 1 second .. 30 days (authorize()) */
#define PAYEXT_MIN_HOLD_S			1
#define PAYEXT_MAX_HOLD_S			(30 * 86400)

#endif							/* PAYEXT_PAYEXT_LIMITS_H */
