/*
 * throttle.c
 *		Failed payment-code guesses per merchant (see throttle.h).
 *
 * A till guessing codes catches each refusal and rolls its charge back, so
 * nothing it leaves in a table survives.  The count lives in shared memory
 * instead: a fixed-size hash of merchant accounts (payext.code_failure_slots,
 * set at server start) under one LWLock.  It does not survive a restart,
 * which lets a blocked merchant in again at worst one window early.  When
 * the hash is full, the merchant whose last failure is oldest and that is
 * not blocked makes room.
 *
 * Only guesses count: a code whose check digit is wrong is a typo, and a
 * code that was issued once (used, expired, cancelled) is a real code seen
 * twice.  Charges of a blocked merchant are refused before its code is
 * looked at, so that blocking also stops the guessing.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "funcapi.h"

#include "errors.h"
#include "payext_limits.h"
#include "spi_util.h"
#include "throttle.h"

/*
 * Whose failures: a merchant account of the payext of one database.  The
 * hash is the server's, and account ids are per database (and start again
 * when the extension is made again), so the database and payext's schema
 * are part of the key: another database's merchant 2 is another merchant.
 */
typedef struct ThrottleKey
{
	Oid			database;
	Oid			schema;			/* of this payext: new after DROP/CREATE */
	int64		merchant;
}			ThrottleKey;

typedef struct ThrottleEntry
{
	ThrottleKey key;			/* hash key */
	int32		failures;		/* within the window that began at first_at */
	TimestampTz first_at;
	TimestampTz last_at;
	TimestampTz blocked_until;	/* 0: not blocked */
	char		last_code[24];	/* the last code refused, as submitted */
} ThrottleEntry;

typedef struct ThrottleShared
{
	LWLock	   *lock;
} ThrottleShared;

static int	payext_code_failure_limit = PAYEXT_DEFAULT_CODE_FAILURE_LIMIT;
static int	payext_code_failure_window_s = PAYEXT_DEFAULT_CODE_FAILURE_WINDOW_S;
static int	payext_code_failure_slots = PAYEXT_DEFAULT_CODE_FAILURE_SLOTS;
static int	payext_code_failure_log_level = LOG;

static const struct config_enum_entry log_level_options[] = {
	{"debug1", DEBUG1, false},
	{"log", LOG, false},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{NULL, 0, false}
};

static ThrottleShared *throttle_shared = NULL;
static HTAB *throttle_hash = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
ThrottleShmemSize(void)
{
	return add_size(MAXALIGN(sizeof(ThrottleShared)),
					hash_estimate_size(payext_code_failure_slots, sizeof(ThrottleEntry)));
}

static void
ThrottleShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ThrottleShmemSize());
	RequestNamedLWLockTranche("payext", 1);
}

static void
ThrottleShmemStartup(void)
{
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	throttle_shared = ShmemInitStruct("payext code failures", sizeof(ThrottleShared), &found);
	if (!found)
		throttle_shared->lock = &(GetNamedLWLockTranche("payext"))->lock;
	info.keysize = sizeof(ThrottleKey);
	info.entrysize = sizeof(ThrottleEntry);
	/* Fixed size: never more than the slots, never the server's spare memory. */
	throttle_hash = ShmemInitHash("payext code failures by merchant",
								  payext_code_failure_slots, payext_code_failure_slots,
								  &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

void
ThrottleInit(void)
{
	DefineCustomIntVariable("payext.code_failure_limit",
							"Codes that were never issued a merchant may submit within payext.code_failure_window before it is blocked.",
							"0 turns throttling off.",
							&payext_code_failure_limit,
							PAYEXT_DEFAULT_CODE_FAILURE_LIMIT, 0, PAYEXT_MAX_CODE_FAILURE_LIMIT,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("payext.code_failure_window",
							"The window in which a merchant's failed codes count, and how long a block lasts.",
							NULL,
							&payext_code_failure_window_s,
							PAYEXT_DEFAULT_CODE_FAILURE_WINDOW_S, 1, PAYEXT_MAX_CODE_FAILURE_WINDOW_S,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomEnumVariable("payext.code_failure_log_level",
							 "The level at which each failed code is written to the server log.",
							 NULL,
							 &payext_code_failure_log_level,
							 LOG, log_level_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	/*
	 * The slots are shared memory, sized once as the server starts: a setting
	 * of PGC_POSTMASTER, which PostgreSQL lets a library define only while it
	 * is preloaded (elsewhere it ends the session with FATAL).  Loaded by a
	 * session alone, payext has no slots and no such setting, and charges are
	 * PY007 while the limit is above 0 (ThrottleOn).
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("payext.code_failure_slots",
							"Merchants whose failed codes shared memory keeps at once.",
							"Set at server start; needs payext in shared_preload_libraries.",
							&payext_code_failure_slots,
							PAYEXT_DEFAULT_CODE_FAILURE_SLOTS, PAYEXT_MIN_CODE_FAILURE_SLOTS,
							PAYEXT_MAX_CODE_FAILURE_SLOTS,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ThrottleShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ThrottleShmemStartup;
}

/* false when throttling is off; raises PY007 when it is on but unavailable. */
static bool
ThrottleOn(void)
{
	if (payext_code_failure_limit == 0)
		return false;
	if (throttle_hash == NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOT_PRELOADED),
				 errmsg("payment codes cannot be charged: their guessing cannot be throttled"),
				 errdetail("payext keeps failed codes in shared memory, which needs it in shared_preload_libraries."),
				 errhint("Add payext to shared_preload_libraries and restart the server (or set payext.code_failure_limit = 0 to charge without throttling).")));
	return true;
}

static void
ThrottleRaiseBlocked(int64 merchant, const ThrottleEntry *entry)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CHARGING_BLOCKED),
			 errmsg("merchant account " INT64_FORMAT " may not charge payment codes now", merchant),
			 errdetail("It submitted %d codes that were never issued within %d seconds; it may charge codes again at %s.",
					   entry->failures, payext_code_failure_window_s,
					   timestamptz_to_str(entry->blocked_until)),
			 errhint("An administrator can lift this with payext.unblock_charging(); customers' codes are not affected.")));
}

/* The key of a merchant of this database's payext. */
static ThrottleKey
ThrottleKeyOf(int64 merchant)
{
	ThrottleKey key;

	memset(&key, 0, sizeof(key));	/* HASH_BLOBS compares every byte */
	key.database = MyDatabaseId;
	key.schema = get_namespace_oid("payext", true);
	key.merchant = merchant;
	return key;
}

void
ThrottleCheck(int64 merchant)
{
	ThrottleKey key = ThrottleKeyOf(merchant);
	ThrottleEntry *entry;
	ThrottleEntry copy;
	bool		blocked = false;
	TimestampTz now = GetCurrentTimestamp();

	if (!ThrottleOn())
		return;
	LWLockAcquire(throttle_shared->lock, LW_SHARED);
	entry = hash_search(throttle_hash, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->blocked_until > now)
	{
		copy = *entry;
		blocked = true;
	}
	LWLockRelease(throttle_shared->lock);
	if (blocked)
		ThrottleRaiseBlocked(merchant, &copy);
}

bool
ThrottleIsBlocked(int64 merchant)
{
	ThrottleKey key;
	ThrottleEntry *entry;
	bool		blocked;

	if (!ThrottleOn())
		return false;
	key = ThrottleKeyOf(merchant);
	LWLockAcquire(throttle_shared->lock, LW_SHARED);
	entry = hash_search(throttle_hash, &key, HASH_FIND, NULL);
	blocked = entry != NULL && entry->blocked_until > GetCurrentTimestamp();
	LWLockRelease(throttle_shared->lock);
	return blocked;
}

/*
 * Makes room in a full hash: entries whose window has passed, unblocked, go
 * first; then the oldest entry that is not blocked.
 */
static void
ThrottleEvict(TimestampTz now, int64 window_us)
{
	HASH_SEQ_STATUS status;
	ThrottleEntry *entry;
	ThrottleEntry *oldest = NULL;
	ThrottleKey oldest_key = {0};
	long		removed = 0;

	hash_seq_init(&status, throttle_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->blocked_until > now)
			continue;
		if (entry->blocked_until != 0 || now - entry->first_at > window_us)
		{
			/* Removing the entry just returned is allowed during a scan. */
			hash_search(throttle_hash, &entry->key, HASH_REMOVE, NULL);
			removed++;
			continue;
		}
		if (oldest == NULL || entry->last_at < oldest->last_at)
		{
			oldest = entry;
			oldest_key = entry->key;
		}
	}
	if (removed == 0 && oldest != NULL)
		hash_search(throttle_hash, &oldest_key, HASH_REMOVE, NULL);
}

void
ThrottleRecordFailure(int64 merchant, const char *code)
{
	ThrottleKey key = ThrottleKeyOf(merchant);
	ThrottleEntry *entry;
	TimestampTz now = GetCurrentTimestamp();
	int64		window_us = (int64) payext_code_failure_window_s * USECS_PER_SEC;
	int32		failures = 0;
	bool		found;

	if (!ThrottleOn())
		return;
	LWLockAcquire(throttle_shared->lock, LW_EXCLUSIVE);
	if (hash_search(throttle_hash, &key, HASH_FIND, NULL) == NULL &&
		hash_get_num_entries(throttle_hash) >= payext_code_failure_slots)
		ThrottleEvict(now, window_us);
	entry = hash_search(throttle_hash, &key, HASH_ENTER_NULL, &found);
	if (entry != NULL)
	{
		if (!found || (entry->blocked_until == 0 && now - entry->first_at > window_us) ||
			(entry->blocked_until != 0 && entry->blocked_until <= now))
		{
			entry->failures = 0;
			entry->first_at = now;
			entry->blocked_until = 0;
		}
		if (entry->failures < PG_INT32_MAX)
			entry->failures++;
		entry->last_at = now;
		strlcpy(entry->last_code, code, sizeof(entry->last_code));
		if (entry->failures > payext_code_failure_limit && entry->blocked_until == 0)
			entry->blocked_until = now + window_us;
		failures = entry->failures;
	}
	LWLockRelease(throttle_shared->lock);

	ereport(payext_code_failure_log_level,
			(errmsg("payext: merchant account " INT64_FORMAT " submitted payment code %s, which was never issued",
					merchant, code),
			 entry == NULL ?
			 errdetail("Not counted: every slot holds a blocked merchant (payext.code_failure_slots).") :
			 errdetail("Failure %d of at most %d within %d seconds; role %s.",
					   failures, payext_code_failure_limit, payext_code_failure_window_s,
					   GetUserNameFromId(GetSessionUserId(), true))));
}

/*
 * code_failures() RETURNS SETOF (merchant bigint, failures integer,
 *		first_at timestamptz, last_at timestamptz, blocked_until timestamptz,
 *		last_code text)
 */
PG_FUNCTION_INFO_V1(payext_code_failures);
Datum
payext_code_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	ThrottleEntry *entry;
	TimestampTz now = GetCurrentTimestamp();
	int64		window_us = (int64) payext_code_failure_window_s * USECS_PER_SEC;
	ThrottleKey here = ThrottleKeyOf(0);

	InitMaterializedSRF(fcinfo, 0);
	if (throttle_hash == NULL)
		return (Datum) 0;
	LWLockAcquire(throttle_shared->lock, LW_SHARED);
	hash_seq_init(&status, throttle_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		/* Another database's, or another payext's: not ours to show. */
		if (entry->key.database != here.database || entry->key.schema != here.schema)
			continue;
		/* A window that has passed, unblocked, is history: not shown. */
		if (entry->blocked_until == 0 ? now - entry->first_at > window_us :
			entry->blocked_until <= now)
			continue;
		values[0] = Int64GetDatum(entry->key.merchant);
		values[1] = Int32GetDatum(entry->failures);
		values[2] = TimestampTzGetDatum(entry->first_at);
		values[3] = TimestampTzGetDatum(entry->last_at);
		values[4] = TimestampTzGetDatum(entry->blocked_until);
		nulls[4] = entry->blocked_until == 0;
		values[5] = CStringGetTextDatum(entry->last_code);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(throttle_shared->lock);
	return (Datum) 0;
}

/* unblock_charging(merchant bigint) RETURNS void */
PG_FUNCTION_INFO_V1(payext_unblock_charging);
Datum
payext_unblock_charging(PG_FUNCTION_ARGS)
{
	ThrottleKey key;

	PayextRequireArg(fcinfo, 0, "merchant");
	key = ThrottleKeyOf(PG_GETARG_INT64(0));
	/* Whatever this session's limit: the counts are the server's. */
	if (throttle_hash == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(throttle_shared->lock, LW_EXCLUSIVE);
	hash_search(throttle_hash, &key, HASH_REMOVE, NULL);
	LWLockRelease(throttle_shared->lock);
	PG_RETURN_VOID();
}
