/*
 * codes.c
 *		Payment codes, merchant charges and refunds.
 *
 * A user's app asks request_payment() for a code; the merchant's till
 * submits it with charge().  A code is checked in this order, each step
 * before anything of the next is touched:
 *
 *	1. shape and check digit (code_format.c): a typo is PY201;
 *	2. partition digits: PY202;
 *	3. the merchant may charge codes (throttle.c): PY213 when it guessed
 *	   too often;
 *	4. the code's live row, by its 15 digits, locked.  With none: 40001 when
 *	   it was issued after the transaction's snapshot; PY206 or PY204 when a
 *	   recent key issued it once (used, expired, cancelled, lost in a
 *	   restart); otherwise a guess, counted against the merchant, PY203;
 *	5. the row: cancelled PY205, used PY206 (or the same request's
 *	   transfer), expired PY204, over its cap PY207;
 *	6. the ledger's transfer: funds, states, currency, and (merchant,
 *	   order_ref) charged once (PY208).
 *
 * Live codes are kept in an unlogged table and purged a few minutes after
 * they expire; what is durable is a code's use, payment.code_serial.
 *
 * Lock order: the code's row (or, for a refund, the payment's row), then the
 * accounts in id order inside LedgerTransfer().  charge_many() takes all its
 * codes' rows, then all its accounts, before its first item.  No path locks
 * the rows the other way round, so charges, batches, refunds and
 * cancellations cannot deadlock.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/stratnum.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "utils/snapmgr.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "port.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "association.h"
#include "claims.h"
#include "code_format.h"
#include "codes.h"
#include "direct.h"
#include "errors.h"
#include "events.h"
#include "holds.h"
#include "partition.h"
#include "ledger.h"
#include "money.h"
#include "payext_limits.h"
#include "spi_util.h"
#include "throttle.h"

static int	payext_code_ttl_s = PAYEXT_DEFAULT_CODE_TTL_S;
static int	payext_max_code_ttl_s = PAYEXT_DEFAULT_MAX_CODE_TTL_S;

/* A signing key, copied out of SPI memory; wiped after use. */
typedef struct CodeKey
{
	int32		id;
	uint8		secret[CODE_KEY_BYTES];
} CodeKey;

/* A payment code's row, locked. */
/* payext.payment_code.state */
typedef enum CodeState
{
	CODE_ISSUED,
	CODE_USED,
	CODE_CANCELLED
} CodeState;

static const char *const code_state_names[] = {
	[CODE_ISSUED] = "issued",
	[CODE_USED] = "used",
	[CODE_CANCELLED] = "cancelled",
};

typedef struct CodeRow
{
	int64		serial;
	int64		body;			/* the code's 15 digits */
	int32		key_id;
	int64		wallet;
	int64		max_amount_minor;	/* 0: no cap */
	TimestampTz expires_at;
	CodeState	state;
	ItemPointerData tid;		/* the version locked (direct.c) */
} CodeRow;

static PayextPlan current_key_plan = {
	"SELECT id, secret, created_at, coalesce(timeline, 0) FROM payext.signing_key"
	" ORDER BY id DESC LIMIT 1",
	0, {0}
};

/* The keys whose codes may still be shown: not superseded before $1. */
static PayextPlan recent_keys_plan = {
	"SELECT k.id, k.secret FROM payext.signing_key k"
	" WHERE NOT EXISTS (SELECT 1 FROM payext.signing_key n"
	"                    WHERE n.id > k.id AND n.created_at < $1)"
	" ORDER BY k.id DESC LIMIT " CppAsString2(PAYEXT_CODE_KEYS_TRIED),
	1, {TIMESTAMPTZOID}
};

static PayextPlan last_serial_plan = {
	"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM payext.code_serial_seq",
	0, {0}
};

static PayextPlan insert_key_plan = {
	"INSERT INTO payext.signing_key (id, secret, created_at, timeline)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
	4, {INT4OID, BYTEAOID, TIMESTAMPTZOID, INT4OID}
};

static PayextPlan lock_keys_plan = {
	"LOCK TABLE payext.signing_key IN EXCLUSIVE MODE",
	0, {0}
};

static PayextPlan insert_code_plan = {
	"INSERT INTO payext.payment_code"
	" (serial, code, key_id, wallet, max_amount, created_at, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)"
	" ON CONFLICT (code) DO NOTHING",
	7, {INT8OID, INT8OID, INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/*
 * A generic plan: the plan cache kept planning it again for each value of
 * $1 (a custom plan costs less for a cutoff older than every row), 44 % of
 * the purge's time; the generic plan is the same index scans.
 */
static PayextPlan purge_codes_plan = {
	"DELETE FROM payext.payment_code"
	" WHERE serial IN (SELECT serial FROM payext.payment_code"
	"                   WHERE expires_at < $1 ORDER BY expires_at"
	"                   LIMIT " CppAsString2(PAYEXT_CODE_PURGE_ROWS)
	"                     FOR UPDATE SKIP LOCKED)",
	1, {TIMESTAMPTZOID}, CURSOR_OPT_GENERIC_PLAN
};

/*
 * A code's lock is PayextDirectLockCode() (src/direct.c), which does
 * without the executor what this statement did:
 *   SELECT serial, key_id, wallet, coalesce(max_amount, 0), expires_at, state
 *     FROM payext.payment_code WHERE code = $1 FOR NO KEY UPDATE
 */

/*
 * The codes among $1 that could still pay (issued, not expired at $2),
 * locked in code order (charge_many), and the same for one code.
 */
static PayextPlan lock_codes_plan = {
	"SELECT wallet FROM payext.payment_code"
	" WHERE code = ANY ($1) AND state = 'issued' AND expires_at > $2"
	" ORDER BY code"
	"   FOR NO KEY UPDATE",
	2, {INT8ARRAYOID, TIMESTAMPTZOID}
};

static PayextPlan lock_usable_code_plan = {
	"SELECT wallet FROM payext.payment_code"
	" WHERE code = $1 AND state = 'issued' AND expires_at > $2"
	"   FOR NO KEY UPDATE",
	2, {INT8OID, TIMESTAMPTZOID}
};

static PayextPlan find_code_plan = {
	"SELECT 1 FROM payext.payment_code WHERE code = $1",
	1, {INT8OID}
};

static PayextPlan close_code_plan = {
	"UPDATE payext.payment_code SET state = $2, closed_at = $3 WHERE serial = $1",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
};

static PayextPlan find_payment_plan = {
	"SELECT transfer_id, code_serial, amount"
	"  FROM payext.payment WHERE merchant = $1 AND order_ref = $2",
	2, {INT8OID, TEXTOID}
};

static PayextPlan find_payment_by_code_plan = {
	"SELECT transfer_id, merchant, order_ref, amount"
	"  FROM payext.payment WHERE code_serial = $1",
	1, {INT8OID}
};

static PayextPlan lock_payment_exists_plan = {
	"SELECT 1 FROM payext.payment WHERE merchant = $1 AND order_ref = $2",
	2, {INT8OID, TEXTOID}
};

static PayextPlan insert_payment_plan = {
	"INSERT INTO payext.payment"
	" (transfer_id, merchant, order_ref, wallet, code_serial, amount,"
	"  created_at, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
	7, {INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan lock_payment_plan = {
	"SELECT p.transfer_id, p.wallet, p.amount, p.refunded, a.currency"
	"  FROM payext.payment p JOIN payext.account a ON a.id = p.merchant"
	" WHERE p.merchant = $1 AND p.order_ref = $2"
	"   FOR NO KEY UPDATE OF p",
	2, {INT8OID, TEXTOID}
};

/*
 * The refund reference of a reversal's refund: "reversal:" and the order's
 * reference, a prefix refund() refuses to anyone else (PY004), so that no
 * refund of the merchant's own can pass for a reversal's.
 */
#define CODES_REVERSAL_REF_PREFIX "reversal:"

/*
 * A charge's and a reversal's locks of the merchant (CodesLockMerchant())
 * are PayextDirectLockAccount() and PayextDirectExists() (src/direct.c),
 * which do without the executor what these statements did:
 *   SELECT EXISTS (SELECT 1 FROM payext.event_subscription s
 *                   WHERE s.merchant = a.id),
 *          a.held_until IS NOT NULL
 *     FROM payext.account a WHERE a.id = $1 FOR KEY SHARE OF a
 *   SELECT 1 FROM payext.account WHERE id = $1 FOR UPDATE
 * A charge's lock also says whether its merchant listens, and whether it
 * has ever made a hold (held_until: authorize() sets it under its FOR
 * UPDATE, so a charge that waited reads the row it wrote).
 */

/* An order's reversal (reverse_charge()); transfer_id NULL: none moved. */
static PayextPlan find_reversal_plan = {
	"SELECT transfer_id FROM payext.order_reversal WHERE merchant = $1 AND order_ref = $2",
	2, {INT8OID, TEXTOID}
};

/*
 * What closes an order to charges: its reversal (transfer id, 0 when none
 * moved; false), or a hold under it (the hold's id; true).
 */
static PayextPlan find_order_use_plan = {
	"SELECT coalesce(transfer_id, 0), false FROM payext.order_reversal"
	" WHERE merchant = $1 AND order_ref = $2"
	" UNION ALL"
	" SELECT id, true FROM payext.hold_entry WHERE merchant = $1 AND order_ref = $2",
	2, {INT8OID, TEXTOID}
};

/* The hold under an order, the code it used (-1: none) and its amount. */
static PayextPlan find_hold_by_order_plan = {
	"SELECT id, coalesce(code_serial, -1), amount FROM payext.hold_entry"
	" WHERE merchant = $1 AND order_ref = $2",
	2, {INT8OID, TEXTOID}
};

static PayextPlan insert_reversal_plan = {
	"INSERT INTO payext.order_reversal (merchant, order_ref, transfer_id, reversed_at)"
	" VALUES ($1, $2, $3, $4)",
	4, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan find_refund_plan = {
	"SELECT r.transfer_id, p.order_ref, r.amount"
	"  FROM payext.refund r JOIN payext.payment p ON p.transfer_id = r.payment"
	" WHERE r.merchant = $1 AND r.refund_ref = $2",
	2, {INT8OID, TEXTOID}
};

static PayextPlan add_refund_plan = {
	"UPDATE payext.payment SET refunded = refunded + $2, updated_at = $3"
	" WHERE transfer_id = $1",
	3, {INT8OID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan insert_refund_plan = {
	"INSERT INTO payext.refund"
	" (transfer_id, payment, merchant, refund_ref, amount, created_at)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID}
};

void
CodesInit(void)
{
	DefineCustomIntVariable("payext.code_ttl",
							"How long a new payment code stays valid when the app does not say.",
							"Capped by payext.max_code_ttl.",
							&payext_code_ttl_s,
							PAYEXT_DEFAULT_CODE_TTL_S,
							PAYEXT_MIN_CODE_TTL_S,
							PAYEXT_MAX_CODE_TTL_S,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("payext.max_code_ttl",
							"The longest validity a payment code may be given.",
							NULL,
							&payext_max_code_ttl_s,
							PAYEXT_DEFAULT_MAX_CODE_TTL_S,
							PAYEXT_MIN_CODE_TTL_S,
							PAYEXT_MAX_CODE_TTL_S,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Signing keys
 * ---------------------------------------------------------------------
 */

/* Copies row 0 of the last result into key and wipes the tuple's copy. */
static void
CodesTakeKey(CodeKey *key)
{
	bytea	   *secret = DatumGetByteaP(PayextResultDatum(0, 2));

	key->id = DatumGetInt32(PayextResultDatum(0, 1));
	if (VARSIZE(secret) - VARHDRSZ != CODE_KEY_BYTES)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("signing key %d has the wrong length", key->id)));
	memcpy(key->secret, VARDATA(secret), CODE_KEY_BYTES);
	explicit_bzero(VARDATA(secret), CODE_KEY_BYTES);
}

/* Stores a new random key under key_id; false when that id already exists. */
static bool
CodesCreateKey(int32 key_id)
{
	bytea	   *secret = palloc(VARHDRSZ + CODE_KEY_BYTES);
	Datum		values[4];
	bool		created;

	SET_VARSIZE(secret, VARHDRSZ + CODE_KEY_BYTES);
	if (!pg_strong_random(VARDATA(secret), CODE_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a signing key"),
				 errdetail("The system's strong random source failed.")));
	values[0] = Int32GetDatum(key_id);
	values[1] = PointerGetDatum(secret);
	values[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[3] = Int32GetDatum((int32) GetWALInsertionTimeLine());
	created = PayextExecute(&insert_key_plan, values, NULL, false, 0,
							SPI_OK_INSERT) == 1;
	explicit_bzero(VARDATA(secret), CODE_KEY_BYTES);
	return created;
}

/*
 * Whether the key in row 0 of the last result predates this server's start
 * or belongs to another timeline of the WAL (columns 3 and 4 of
 * current_key_plan).
 */
static bool
CodesKeyIsStale(void)
{
	TimestampTz created_at = DatumGetTimestampTz(PayextResultDatum(0, 3));
	int32		timeline = DatumGetInt32(PayextResultDatum(0, 4));

	/* A standby issues no code (it is read-only): nothing to judge there. */
	if (RecoveryInProgress())
		return false;
	return created_at < PgStartTime || timeline != (int32) GetWALInsertionTimeLine();
}

/*
 * Makes a new key the current one, one rotation at a time (codes are still
 * issued and checked meanwhile); returns its id.  With `only_if_stale`, a
 * rotation another backend made while this one waited is taken instead.
 */
static int32
CodesRotate(bool only_if_stale)
{
	CodeKey		key;
	int32		new_id = 1;

	PayextExecute(&lock_keys_plan, NULL, NULL, false, 0, SPI_OK_UTILITY);
	if (PayextExecute(&current_key_plan, NULL, NULL, false, 1, SPI_OK_SELECT) == 1)
	{
		bool		stale = CodesKeyIsStale();

		CodesTakeKey(&key);
		new_id = key.id;
		explicit_bzero(&key, sizeof(key));
		if (only_if_stale && !stale)
			return new_id;
		if (new_id == PG_INT32_MAX)
			elog(ERROR, "payext: signing key ids are exhausted");
		new_id++;
	}
	if (!CodesCreateKey(new_id))
		elog(ERROR, "payext: signing key %d exists already", new_id);
	return new_id;
}

/*
 * The newest key, made on first use, and made anew by the first code after
 * the server started or was promoted: a code string is a function of key,
 * partition and serial, and after a crash with asynchronous commit or a
 * failover to a standby that lagged, the serial sequence may hand out again
 * serials whose codes customers still hold.  Under a new key those serials
 * give other strings, so an old code never pays from another wallet.
 */
static void
CodesCurrentKey(CodeKey *key)
{
	if (PayextExecute(&current_key_plan, NULL, NULL, false, 1, SPI_OK_SELECT) == 0 ||
		CodesKeyIsStale())
	{
		CodesRotate(true);
		if (PayextExecute(&current_key_plan, NULL, NULL, false, 1,
						  SPI_OK_SELECT) == 0)
			elog(ERROR, "payext: the new signing key is not visible");
	}
	CodesTakeKey(key);
}

/* ---------------------------------------------------------------------
 * Verifying a code
 * ---------------------------------------------------------------------
 */

static void
CodesRaiseMalformed(CodeParseResult result)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CODE_MALFORMED),
			 errmsg("payment code is malformed"),
			 result == CODE_BAD_CHECK_DIGIT ?
			 errdetail("Its check digit does not match: a digit was probably mistyped or misread.") :
			 errdetail("A payment code is %d decimal digits.", CODE_DIGITS),
			 errhint("Scan the code again.")));
}

static void
CodesRaiseForged(void)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CODE_FORGED),
			 errmsg("payment code is not valid"),
			 errdetail("It was not issued by this server."),
			 errhint("Ask the customer to show a fresh code.")));
}

static void
CodesRaiseUsed(void)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CODE_USED),
			 errmsg("payment code has already been used"),
			 errdetail("A payment code pays once."),
			 errhint("Ask the customer to show a fresh code.")));
}

/* Parses the code and checks its partition: PY201, PY202.  No table. */
static void
CodesParse(const char *code, size_t code_len, CodeFields *fields)
{
	CodeParseResult result = CodeParse(code, code_len, fields);
	int			partition;

	if (result != CODE_OK)
		CodesRaiseMalformed(result);
	partition = PayextPartition();
	if (fields->partition != partition)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CODE_WRONG_SHARD),
				 errmsg("payment code belongs to partition %02d", fields->partition),
				 errdetail("This database is partition %02d.", partition),
				 errhint("Route a charge to the partition named by the code's first two digits.")));
}

/*
 * The serial of a code that has no live row but was issued once, by one of
 * the keys whose codes may still be shown, or -1 when none issued it.  A
 * key's permutation is undone and the serial must be one the sequence has
 * handed out: a made-up code passes that with probability (codes issued) /
 * 10^15 per key tried.
 */
static int64
CodesIssuedSerial(const CodeFields *fields)
{
	Datum		values[1];
	uint64		keys;
	int64		last_serial;
	int64		serial = -1;

	PayextExecute(&last_serial_plan, NULL, NULL, true, 1, SPI_OK_SELECT);
	last_serial = DatumGetInt64(PayextResultDatum(0, 1));
	values[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
									(int64) PAYEXT_CODE_KEY_MEMORY_S * USECS_PER_SEC);
	keys = PayextExecute(&recent_keys_plan, values, NULL, true, 0, SPI_OK_SELECT);
	for (uint64 i = 0; i < keys && serial < 0; i++)
	{
		bytea	   *secret = DatumGetByteaP(PayextResultDatum(i, 2));
		uint64		candidate;

		if (VARSIZE(secret) - VARHDRSZ != CODE_KEY_BYTES)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
					 errmsg("signing key %d has the wrong length",
							DatumGetInt32(PayextResultDatum(i, 1)))));
		candidate = CodeDecrypt((const uint8 *) VARDATA(secret), fields->partition,
								fields->body);
		explicit_bzero(VARDATA(secret), CODE_KEY_BYTES);
		if (candidate >= 1 && candidate <= (uint64) last_serial)
			serial = (int64) candidate;
	}
	return serial;
}

/*
 * Finds and locks the live row of a parsed code.  Without one: 40001 when
 * the code was issued after the snapshot of a REPEATABLE READ or
 * SERIALIZABLE transaction; a code issued once and paid returns false with
 * row->serial set (a retry may be asking for its own transfer); a code
 * issued once and not paid is PY204; anything else is a guess, counted
 * against `merchant` (0: against nobody) before PY203.  Requires SPI.
 */
static bool
CodesLockRow(const CodeFields *fields, const char *code_text, int64 merchant,
			 CodeRow *row)
{
	Datum		values[1];
	PayextCodeRow locked;

	memset(row, 0, sizeof(*row));
	row->body = (int64) fields->body;
	values[0] = Int64GetDatum(row->body);
	/* lock_code_plan, without the executor (src/direct.c) */
	if (PayextDirectLockCode(row->body, &locked))
	{
		row->serial = locked.serial;
		row->key_id = locked.key_id;
		row->wallet = locked.wallet;
		row->max_amount_minor = locked.max_amount;
		row->expires_at = locked.expires_at;
		row->state = (CodeState) PayextParseWord(locked.state, code_state_names,
												 lengthof(code_state_names),
												 "payment code state");
		row->tid = locked.tid;
		return true;
	}
	if (IsolationUsesXactSnapshot() &&
		PayextExecuteLatestRead(&find_code_plan, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: the payment code was issued after this transaction's snapshot"),
				 errhint("Retry the transaction.")));

	row->serial = CodesIssuedSerial(fields);
	if (row->serial < 0)
	{
		if (merchant != 0)
			ThrottleRecordFailure(merchant, code_text);
		CodesRaiseForged();
	}
	values[0] = Int64GetDatum(row->serial);
	if (PayextExecute(&find_payment_by_code_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 1)
	{
		row->state = CODE_USED;
		return false;
	}
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CODE_EXPIRED),
			 errmsg("payment code has expired"),
			 errdetail("It expired, was cancelled, or was lost when the server restarted."),
			 errhint("Ask the customer to show a fresh code.")));
	return false;				/* not reached */
}

static void
CodesCheckUsable(const CodeRow *row)
{
	if (row->state == CODE_USED)
		CodesRaiseUsed();
	if (row->state == CODE_CANCELLED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CODE_CANCELLED),
				 errmsg("payment code was cancelled"),
				 errdetail("The customer withdrew this code."),
				 errhint("Ask the customer to show a fresh code.")));

	if (row->expires_at <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CODE_EXPIRED),
				 errmsg("payment code has expired"),
				 errdetail("Payment codes are valid for a short time only."),
				 errhint("Ask the customer to show a fresh code.")));
}

/* Reads the ttl argument (NULL: the default) as whole microseconds. */
static int64
CodesTtlUsec(FunctionCallInfo fcinfo, int argno)
{
	int			max_s = payext_max_code_ttl_s;
	int64		usec;

	if (PG_ARGISNULL(argno))
		return (int64) Min(payext_code_ttl_s, max_s) * USECS_PER_SEC;

	if (!PayextIntervalUsec(PG_GETARG_INTERVAL_P(argno), &usec) ||
		usec < USECS_PER_SEC || usec > (int64) max_s * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CODE_BAD_TTL),
				 errmsg("ttl must be between 1 second and %d seconds", max_s),
				 errdetail("The limit is set by payext.max_code_ttl.")));
	return usec;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/*
 * Whether a code expired before `before` may be left to purge: the first
 * entry of payment_code_expires_idx, read without the executor (true, to
 * let the purge's DELETE see, where direct.c declines the read).
 */
static bool
CodesAnyExpired(Datum before)
{
	PayextDirectScan *scan = PayextDirectBeginScan("payment_code_expires_idx", "expires_at");
	PayextScanKey key = PayextKey(1, BTLessStrategyNumber, before);
	bool		found;

	if (scan == NULL)
		return true;
	PayextDirectRescan(scan, 1, &key);
	found = PayextDirectNext(scan, 0, NULL, NULL, NULL);
	PayextDirectEndScan(scan);
	return found;
}

/*
 * Every PAYEXT_CODE_PURGE_EVERY-th code a backend issues deletes live rows
 * expired more than PAYEXT_CODE_PURGE_AFTER_S ago, at most
 * PAYEXT_CODE_PURGE_ROWS: the unlogged table stays the size of a few
 * minutes of codes without any job running.
 */
static void
CodesPurgeExpired(TimestampTz now)
{
	static uint32 issued = 0;
	Datum		values[1];

	/*
	 * Not under REPEATABLE READ or SERIALIZABLE, where a row another backend
	 * purged first would fail the app's call with 40001; rows another purge
	 * holds are skipped, so purges neither wait nor deadlock.
	 */
	if (++issued % PAYEXT_CODE_PURGE_EVERY != 0 || IsolationUsesXactSnapshot())
		return;
	values[0] = TimestampTzGetDatum(now - (int64) PAYEXT_CODE_PURGE_AFTER_S * USECS_PER_SEC);
	if (!CodesAnyExpired(values[0]))
		return;
	PayextExecute(&purge_codes_plan, values, NULL, false, 0, SPI_OK_DELETE);
}

/*
 * insert_code_plan's row (values, nulls as SPI takes them): true when
 * inserted, false when a live code has the same digits.  Without the
 * executor where direct.c can.
 */
static bool
CodesInsert(Datum *values, const char *nulls)
{
	static const char *const cols[] = {"serial", "code", "key_id", "wallet",
	"max_amount", "created_at", "expires_at", "state", "closed_at"};
	Datum		row[lengthof(cols)];
	bool		isnull[lengthof(cols)];
	ItemPointerData conflict;
	int			inserted;

	for (int i = 0; i < 7; i++)
	{
		row[i] = values[i];
		isnull[i] = nulls[i] == 'n';
	}
	row[7] = CStringGetTextDatum("issued");
	isnull[7] = false;
	row[8] = (Datum) 0;
	isnull[8] = true;
	inserted = PayextDirectInsertOrNothing(PayextDirectPaymentCode, "payment_code_code_key",
										   lengthof(cols), cols, row, isnull, false,
										   &conflict);
	if (inserted >= 0)
		return inserted == 1;
	return PayextExecute(&insert_code_plan, values, nulls, false, 0, SPI_OK_INSERT) == 1;
}

/*
 * request_payment(wallet bigint, max_amount bigint DEFAULT NULL,
 *				   ttl interval DEFAULT NULL) RETURNS text
 */
PG_FUNCTION_INFO_V1(payext_request_payment);
Datum
payext_request_payment(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"wallet"};
	int64		wallet_id;
	int64		max_amount = 0;
	int64		ttl_usec;
	LedgerAccount wallet;
	CodeKey		key;
	int64		serial;
	int			partition;
	uint64		body = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		values[7];
	char		nulls[7];
	char		code[CODE_DIGITS + 1];

	PayextRequireArgs(fcinfo, 1, names);
	wallet_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(1))
		max_amount = PayextArgAmount(fcinfo, 1, "max_amount");
	ttl_usec = CodesTtlUsec(fcinfo, 2);

	PayextSpiConnect();
	LedgerReadAccount(wallet_id, &wallet);
	LedgerRequireKind(&wallet, LEDGER_WALLET, "account a payment code draws on");
	LedgerCheckActive(&wallet);
	CodesCurrentKey(&key);

	memset(nulls, ' ', sizeof(nulls));
	values[2] = Int32GetDatum(key.id);
	values[3] = Int64GetDatum(wallet_id);
	values[4] = Int64GetDatum(max_amount);
	nulls[4] = max_amount > 0 ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(now);
	values[6] = TimestampTzGetDatum(now + ttl_usec);

	/*
	 * Under one key distinct serials give distinct codes; a live code of the
	 * previous key may still hold the same 15 digits (a chance of one in
	 * 10^15 a code), and then the next serial is taken.
	 */
	/* Before the serial: set_partition() waits for this transaction. */
	partition = PayextPartition();
	for (int attempt = 0;; attempt++)
	{
		serial = PayextNextSerial("code_serial_seq");
		if (serial < 1 || (uint64) serial >= CODE_BODY_MODULUS)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_CODES_EXHAUSTED),
					 errmsg("payment code serials are exhausted"),
					 errdetail("The sequence payext.code_serial_seq returned " INT64_FORMAT ".", serial)));
		body = CodeEncrypt(key.secret, partition, (uint64) serial);
		values[0] = Int64GetDatum(serial);
		values[1] = Int64GetDatum((int64) body);
		if (CodesInsert(values, nulls))
			break;
		if (attempt >= 3)
			elog(ERROR, "payext: four payment codes in a row collided with live ones");
	}
	explicit_bzero(&key, sizeof(key));
	CodeCompose(partition, body, code);
	CodesPurgeExpired(now);
	PayextSpiFinish();
	PG_RETURN_TEXT_P(cstring_to_text(code));
}

/* cancel_payment_code(code text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_cancel_payment_code);
Datum
payext_cancel_payment_code(PG_FUNCTION_ARGS)
{
	text	   *code;
	CodeFields	fields;
	CodeRow		row;
	Datum		values[3];

	PayextRequireArg(fcinfo, 0, "code");
	code = PG_GETARG_TEXT_PP(0);

	PayextSpiConnect();
	CodesParse(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code), &fields);
	if (!CodesLockRow(&fields, text_to_cstring(code), 0, &row) ||
		row.state == CODE_USED)
		CodesRaiseUsed();

	/*
	 * Cancelling twice, or after expiry, changes nothing more: an expired
	 * code stays expired (a charge of it is PY204, not PY205).
	 */
	if (row.state == CODE_ISSUED &&
		row.expires_at > GetCurrentTransactionStartTimestamp())
	{
		values[0] = Int64GetDatum(row.serial);
		values[1] = CStringGetTextDatum(code_state_names[CODE_CANCELLED]);
		values[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		PayextExecute(&close_code_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	}
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/*
 * An earlier charge of (merchant, order_ref): returns its transfer id when
 * it was this request (same code, same amount), raises PY208 when it was
 * another, returns 0 when there is none.
 */
static int64
CodesFindCharge(int64 merchant, const char *order_ref, int64 code_serial_wanted,
				int64 amount_minor)
{
	Datum		values[2];
	int64		transfer_id;
	int64		code_serial;
	int64		charged;

	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(order_ref);
	if (PayextExecute(&find_payment_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	transfer_id = DatumGetInt64(PayextResultDatum(0, 1));
	code_serial = DatumGetInt64(PayextResultDatum(0, 2));
	charged = DatumGetInt64(PayextResultDatum(0, 3));
	if (code_serial != code_serial_wanted || charged != amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ORDER_CONFLICT),
				 errmsg("order \"%s\" was already charged differently", order_ref),
				 errdetail("Transfer " INT64_FORMAT " charged " INT64_FORMAT " for this order with %s.",
						   transfer_id, charged,
						   code_serial != code_serial_wanted ?
						   "another payment code" : "this payment code"),
				 errhint("A retry must repeat the original code and amount; a new order needs a new order reference.")));
	return transfer_id;
}

/*
 * A used code: when it paid this very request (a retry that waited for the
 * first attempt's lock), its transfer id; otherwise PY206.
 */
static int64
CodesReplayOfUsed(const CodeRow *row, int64 merchant, const char *order_ref,
				  int64 amount_minor)
{
	Datum		values[1];

	values[0] = Int64GetDatum(row->serial);
	if (PayextExecute(&find_payment_by_code_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 1 &&
		DatumGetInt64(PayextResultDatum(0, 2)) == merchant &&
		strcmp(PayextResultCString(0, 3), order_ref) == 0)
	{
		/*
		 * This order, this code: a retry, or the same order at another
		 * amount.
		 */
		return CodesFindCharge(merchant, order_ref, row->serial, amount_minor);
	}
	CodesRaiseUsed();
	return 0;					/* not reached */
}

static void
CodesCheckCap(const CodeRow *row, int64 amount_minor, const char *currency)
{
	if (row->max_amount_minor > 0 && amount_minor > row->max_amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CODE_OVER_CAP),
				 errmsg("amount exceeds the payment code's limit"),
				 errdetail("The code allows at most %s; the charge is %s.",
						   PayextFormatAmount(row->max_amount_minor, currency),
						   PayextFormatAmount(amount_minor, currency)),
				 errhint("Charge at most the limit, or ask the customer for a code without one.")));
}

/* Marks the code used and records which code paid which order. */
static void
CodesRecordCharge(const CodeRow *row, int64 transfer_id, int64 merchant,
				  const char *order_ref, int64 amount_minor,
				  const LedgerAccount *wallet_found,
				  const LedgerAccount *merchant_found)
{
	static const char *const code_key[] = {"serial"};
	static const char *const code_set[] = {"state", "closed_at"};
	static const char *const payment_cols[] = {
		"transfer_id", "merchant", "order_ref", "wallet", "code_serial",
		"amount", "created_at", "updated_at", "refunded"
	};
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		values[9];

	/* Without the executor where direct.c can (src/direct.c). */
	values[0] = CStringGetTextDatum(code_state_names[CODE_USED]);
	values[1] = TimestampTzGetDatum(now);
	if (!PayextDirectUpdate(PayextDirectPaymentCode, (ItemPointer) &row->tid,
							1, code_key, &row->serial, 2, code_set, values, NULL))
	{
		values[0] = Int64GetDatum(row->serial);
		values[1] = CStringGetTextDatum(code_state_names[CODE_USED]);
		values[2] = TimestampTzGetDatum(now);
		PayextExecute(&close_code_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	}

	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(merchant);
	values[2] = CStringGetTextDatum(order_ref);
	values[3] = Int64GetDatum(row->wallet);
	values[4] = Int64GetDatum(row->serial);
	values[5] = Int64GetDatum(amount_minor);
	values[6] = TimestampTzGetDatum(now);
	values[7] = TimestampTzGetDatum(now);
	values[8] = Int64GetDatum(0);
	if (!PayextDirectInsert(PayextDirectPayment, lengthof(payment_cols), payment_cols,
							values, NULL, false, NULL))
		PayextExecute(&insert_payment_plan, values, NULL, false, 0, SPI_OK_INSERT);
	AssocRecordTransfer(transfer_id, "payment", wallet_found, merchant_found,
						amount_minor);
}

/*
 * What orders a charge and a reversal of one merchant's orders: a charge
 * holds the merchant's row FOR KEY SHARE (as its journal row's foreign key
 * check does anyway, later), a reversal FOR UPDATE, until their
 * transactions end.  Row locks live in the tuple, not in the lock table,
 * so a transaction may charge any number of orders; and FOR KEY SHARE
 * conflicts with no charge, refund or settlement (they update the row FOR
 * NO KEY UPDATE), only with a reversal, which waits for the charges in
 * flight and holds new ones back until it ends.
 */
static bool
CodesLockMerchant(int64 merchant, bool for_reversal, bool *takes_holds)
{
	PayextAccountRow row;

	/*
	 * lock_merchant_for_charge_plan and lock_merchant_for_reversal_plan,
	 * without the executor (src/direct.c).
	 */
	if (!PayextDirectLockAccount(merchant, PAYEXT_ACCOUNT_ANY,
								 for_reversal ? LockTupleExclusive : LockTupleKeyShare,
								 &row))
		elog(ERROR, "payext: merchant account " INT64_FORMAT " went away", merchant);
	if (takes_holds != NULL)
		*takes_holds = !for_reversal && !row.held_until_null;
	/* Whether its charges are announced (event_channel()). */
	return !for_reversal && PayextDirectExists("event_subscription", merchant);
}

/*
 * Whether (merchant, order_ref) was reversed: its reversal's transfer id
 * (0: none moved), or -1.  Under REPEATABLE READ and SERIALIZABLE a
 * reversal committed after the snapshot is 40001.
 */
static int64
CodesFindReversal(int64 merchant, const char *order_ref)
{
	static const char *const cols[] = {"transfer_id"};
	Datum		values[2];
	bool		isnull;
	Datum		tid;
	PayextDirectScan *scan;

	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(order_ref);
	scan = PayextDirectBeginScan("order_reversal_pkey", "merchant,order_ref");
	if (scan != NULL)
	{
		/* find_reversal_plan without the executor: a probe of the key */
		PayextScanKey keys[2] = {
			PayextKey(1, BTEqualStrategyNumber, values[0]),
			PayextKey(2, BTEqualStrategyNumber, values[1])
		};
		int64		reversal = -1;

		PayextDirectRescan(scan, 2, keys);
		if (PayextDirectNext(scan, 1, cols, &tid, &isnull))
			reversal = isnull ? 0 : DatumGetInt64(tid);
		PayextDirectEndScan(scan);
		if (reversal >= 0)
			return reversal;
	}
	else if (PayextExecute(&find_reversal_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
	{
		tid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		return isnull ? 0 : DatumGetInt64(tid);
	}
	if (IsolationUsesXactSnapshot() &&
		PayextExecuteLatestRead(&find_reversal_plan, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: the order was reversed after this transaction's snapshot"),
				 errhint("Retry the transaction.")));
	return -1;
}

/*
 * A charge under an order reverse_charge() reversed is refused (PY215): a
 * retry of the charge that did happen answered before this (its code is
 * used), with its transfer.  Returns whether the merchant's events are
 * announced (event_channel()).
 */
static void
CodesRaiseOrderIsHold(const char *order_ref, int64 hold)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_ORDER_IS_HOLD),
			 errmsg("order \"%s\" belongs to a hold", order_ref),
			 errdetail("Hold " INT64_FORMAT " was authorized under this order reference; charges and holds share the merchant's order references.",
					   hold),
			 errhint("capture_hold() takes a hold's money and void_hold() releases it; a new order needs a new order reference.")));
}

static bool
CodesRequireOpenOrder(int64 merchant, const char *order_ref)
{
	bool		takes_holds;
	bool		subscribed = CodesLockMerchant(merchant, false, &takes_holds);
	Datum		values[2];

	/*
	 * A merchant that never made a hold has no order of a hold's: its charges
	 * look for a reversal alone, as before holds (one index probe).
	 */
	if (!takes_holds)
	{
		if (CodesFindReversal(merchant, order_ref) >= 0)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_ORDER_REVERSED),
					 errmsg("order \"%s\" was reversed", order_ref),
					 errdetail("reverse_charge() reversed it: a reversed order takes no charge, and this one moved no money."),
					 errhint("A new order needs a new order reference.")));
		return subscribed;
	}
	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(order_ref);
	if (PayextExecute(&find_order_use_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
	{
		if (IsolationUsesXactSnapshot() &&
			PayextExecuteLatestRead(&find_order_use_plan, values, NULL) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 DatumGetBool(PayextResultDatum(0, 2)) ?
					 errmsg("could not serialize access: the order was held after this transaction's snapshot") :
					 errmsg("could not serialize access: the order was reversed after this transaction's snapshot"),
					 errhint("Retry the transaction.")));
		return subscribed;
	}
	if (DatumGetBool(PayextResultDatum(0, 2)))
		CodesRaiseOrderIsHold(order_ref, DatumGetInt64(PayextResultDatum(0, 1)));
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_ORDER_REVERSED),
			 errmsg("order \"%s\" was reversed", order_ref),
			 errdetail("reverse_charge() reversed it: a reversed order takes no charge, and this one moved no money."),
			 errhint("A new order needs a new order reference.")));
	return subscribed;
}

bool
CodesLockMerchantForPayment(int64 merchant)
{
	return CodesLockMerchant(merchant, false, NULL);
}

/*
 * The hold under (merchant, order_ref), or 0; when the snapshot cannot see
 * one that exists, 40001.  Sets *code_serial (-1: none) and *amount.
 */
static int64
CodesFindHold(int64 merchant, const char *order_ref, int64 *code_serial,
			  int64 *amount)
{
	Datum		values[2];

	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(order_ref);
	if (PayextExecute(&find_hold_by_order_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
	{
		*code_serial = DatumGetInt64(PayextResultDatum(0, 2));
		*amount = DatumGetInt64(PayextResultDatum(0, 3));
		return DatumGetInt64(PayextResultDatum(0, 1));
	}
	if (IsolationUsesXactSnapshot() &&
		PayextExecuteLatestRead(&find_hold_by_order_plan, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: the order was held after this transaction's snapshot"),
				 errhint("Retry the transaction.")));
	return 0;
}

/*
 * authorize(): a hold under a payment code.  The code is checked as a
 * charge checks it (the throttle, its state, expiry and cap) and used up;
 * the wallet's available balance must cover the amount.  The order is the
 * merchant's, shared with charges: the merchant's row FOR UPDATE, taken
 * first and holding nothing else (as a reversal takes it), waits for the
 * charges in flight and holds new ones back, so that an order is either a
 * charge's or a hold's.  Again with the same code and amount: the same
 * hold.
 */
int64
CodesAuthorize(int64 merchant_id, const char *code, size_t code_len,
			   int64 amount_minor, const char *order_ref, TimestampTz expires_at)
{
	CodeFields	fields;
	LedgerAccount merchant;
	CodeRow		row;
	Datum		values[2];
	Datum		close_values[3];
	int64		hold;
	int64		held_serial;
	int64		held_amount;
	int64		serial;
	int64		hold_id;

	CodesParse(code, code_len, &fields);
	LedgerReadAccount(merchant_id, &merchant);
	LedgerRequireKind(&merchant, LEDGER_MERCHANT, "account a hold is for");
	ThrottleCheck(merchant_id);
	CodesLockMerchant(merchant_id, true, NULL);

	/* A retry: the same code (live or purged) and amount. */
	hold = CodesFindHold(merchant_id, order_ref, &held_serial, &held_amount);
	if (hold != 0)
	{
		serial = CodesIssuedSerial(&fields);
		if (serial >= 0 && serial == held_serial && held_amount == amount_minor)
			return hold;
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ORDER_CONFLICT),
				 errmsg("order \"%s\" was already held differently", order_ref),
				 errdetail("Hold " INT64_FORMAT " holds " INT64_FORMAT " for this order with %s.",
						   hold, held_amount,
						   serial == held_serial ? "this payment code" : "another payment code"),
				 errhint("A retry must repeat the original code and amount; a new order needs a new order reference.")));
	}
	values[0] = Int64GetDatum(merchant_id);
	values[1] = CStringGetTextDatum(order_ref);
	if (PayextExecute(&find_payment_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1 ||
		(IsolationUsesXactSnapshot() &&
		 PayextExecuteLatestRead(&find_payment_plan, values, NULL) > 0))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ORDER_CONFLICT),
				 errmsg("order \"%s\" was already charged", order_ref),
				 errdetail("Charges and holds share the merchant's order references."),
				 errhint("A new order needs a new order reference.")));
	if (CodesFindReversal(merchant_id, order_ref) >= 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ORDER_REVERSED),
				 errmsg("order \"%s\" was reversed", order_ref),
				 errdetail("reverse_charge() closed it: a reversed order takes no charge and no hold."),
				 errhint("A new order needs a new order reference.")));

	if (!CodesLockRow(&fields, pnstrdup(code, code_len), merchant_id, &row) ||
		row.state == CODE_USED)
		CodesRaiseUsed();
	CodesCheckUsable(&row);
	CodesCheckCap(&row, amount_minor, merchant.currency);

	hold_id = HoldsCreate(row.wallet, &merchant, order_ref, row.serial, 0,
						  amount_minor, expires_at, false);
	close_values[0] = Int64GetDatum(row.serial);
	close_values[1] = CStringGetTextDatum(code_state_names[CODE_USED]);
	close_values[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&close_code_plan, close_values, NULL, false, 0, SPI_OK_UPDATE);
	return hold_id;
}

/*
 * A charge.  check_throttle is false only when charge_many() charges again
 * an item that passed the throttle before (see CodesChargeItems()).
 */
static int64
CodesCharge(int64 merchant_id, const char *code, size_t code_len,
			int64 amount_minor, const char *order_ref, bool check_throttle)
{
	CodeFields	fields;
	LedgerAccount merchant;
	CodeRow		row;
	LedgerTransferRequest req = {0};
	LedgerAccount wallet_found = {0};
	LedgerAccount merchant_found = {0};
	int64		transfer_id;
	bool		replayed;
	bool		subscribed;

	CodesParse(code, code_len, &fields);
	LedgerReadAccount(merchant_id, &merchant);
	LedgerRequireKind(&merchant, LEDGER_MERCHANT, "account a charge pays");
	if (check_throttle)
		ThrottleCheck(merchant_id);

	/*
	 * No lookup of (merchant, order_ref) first: under SERIALIZABLE its read
	 * lock on the index page would make concurrent charges of one merchant
	 * conflict.  A replay finds its code used (below), or meets the first
	 * charge at the journal's unique index in LedgerTransfer().
	 */
	if (!CodesLockRow(&fields, pnstrdup(code, code_len), merchant_id, &row) ||
		row.state == CODE_USED)
		return CodesReplayOfUsed(&row, merchant_id, order_ref, amount_minor);
	CodesCheckUsable(&row);
	CodesCheckCap(&row, amount_minor, merchant.currency);
	subscribed = CodesRequireOpenOrder(merchant_id, order_ref);

	req.debit_account = row.wallet;
	req.credit_account = merchant_id;
	req.amount_minor = amount_minor;
	req.kind = LEDGER_CHARGE;
	req.idem_scope = merchant_id;
	req.reference = order_ref;
	req.caller_checks_replay = true;
	/* Concurrent charges of one merchant share its row (ledger.c). */
	req.credit_via_bucket = true;
	/* The merchant learns nothing of the wallet from a refusal. */
	req.conceal_debit = true;
	req.debit_found = &wallet_found;
	req.credit_found = &merchant_found;
	transfer_id = LedgerTransfer(&req, &replayed);
	if (replayed)
	{
		/* The order was paid already, with another code: PY208. */
		if (CodesFindCharge(merchant_id, order_ref, row.serial, amount_minor) != transfer_id)
			elog(ERROR, "payext: order \"%s\" has a transfer but no payment", order_ref);
		return transfer_id;
	}
	CodesRecordCharge(&row, transfer_id, merchant_id, order_ref, amount_minor,
					  &wallet_found, &merchant_found);
	if (subscribed)
		EventsNotify(merchant_id, "charge", transfer_id, order_ref, amount_minor,
					 merchant.currency, GetCurrentTransactionStartTimestamp());
	return transfer_id;
}

/*
 * code_partition(code text) RETURNS integer: the partition a code names, for
 * a router (PY001, PY201).  Reads no table.
 */
PG_FUNCTION_INFO_V1(payext_code_partition);
Datum
payext_code_partition(PG_FUNCTION_ARGS)
{
	text	   *code;
	CodeFields	fields;
	CodeParseResult result;

	PayextRequireArg(fcinfo, 0, "code");
	code = PG_GETARG_TEXT_PP(0);
	result = CodeParse(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code), &fields);
	if (result != CODE_OK)
		CodesRaiseMalformed(result);
	PG_RETURN_INT32(fields.partition);
}

/*
 * charge()'s arguments, checked, then the charge; first the order's claim
 * for this partition (PY208 when another holds it) when `claim`.
 */
static int64
CodesChargeCall(FunctionCallInfo fcinfo, bool claim)
{
	static const char *const names[] = {"merchant", "code", "amount", "order_ref"};
	text	   *code;
	int64		amount;
	char	   *order_ref;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 4, names);
	code = PG_GETARG_TEXT_PP(1);
	amount = PayextArgAmount(fcinfo, 2, "amount");
	order_ref = PayextArgIdentifier(fcinfo, 3, "order_ref", PAYEXT_MAX_REFERENCE_LEN);

	PayextSpiConnect();
	if (claim)
		ClaimsRequireHere(PG_GETARG_INT64(0), order_ref);
	transfer_id = CodesCharge(PG_GETARG_INT64(0), VARDATA_ANY(code),
							  VARSIZE_ANY_EXHDR(code), amount, order_ref, true);
	PayextSpiFinish();
	return transfer_id;
}

/* charge(merchant bigint, code text, amount bigint, order_ref text) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_charge);
Datum
payext_charge(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(CodesChargeCall(fcinfo, false));
}

/*
 * charge_claimed(merchant bigint, code text, amount bigint, order_ref text)
 * RETURNS bigint: a router's charge whose order's claim belongs on this
 * partition (the payer's), the claim and the charge in one transaction.
 */
PG_FUNCTION_INFO_V1(payext_charge_claimed);
Datum
payext_charge_claimed(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(CodesChargeCall(fcinfo, true));
}

/* One item of charge_many(), and what became of it. */
typedef struct ChargeItem
{
	text	   *code;			/* NULL: the element was null */
	int64		amount;
	bool		amount_null;
	text	   *order_ref;		/* NULL: the element was null */
	bool		attempted;		/* has been through the throttle once */
	bool		refused;
	int64		transfer_id;	/* when charged */
	int			sqlerrcode;		/* when refused */
	char	   *message;		/* when refused */
} ChargeItem;

/*
 * charge()'s checks of an item that need no row, raising as charge() does:
 * its arguments, then the code's shape and partition.
 */
static void
CodesCheckItem(const ChargeItem *item, int64 *amount, char **order_ref)
{
	CodeFields	fields;

	if (item->code == NULL || item->amount_null || item->order_ref == NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NULL_ARGUMENT),
				 errmsg("argument \"%s\" must not be null",
						item->code == NULL ? "code" :
						item->amount_null ? "amount" : "order_ref")));
	*amount = PayextCheckAmount(item->amount, "amount");
	*order_ref = PayextCheckIdentifierText(item->order_ref, "order_ref",
										   PAYEXT_MAX_REFERENCE_LEN);
	CodesParse(VARDATA_ANY(item->code), VARSIZE_ANY_EXHDR(item->code), &fields);
}

/*
 * Whether CodesCheckItem() might refuse the item: false only when it
 * certainly passes (so that the common item needs no subtransaction to
 * find out).  An order reference that is not printable ASCII is left to
 * the real check.
 */
static bool
CodesItemSuspect(const ChargeItem *item)
{
	CodeFields	fields;
	const char *ref;
	int			len;

	if (item->code == NULL || item->amount_null || item->order_ref == NULL ||
		item->amount <= 0)
		return true;
	if (CodeParse(VARDATA_ANY(item->code), VARSIZE_ANY_EXHDR(item->code),
				  &fields) != CODE_OK || fields.partition != PayextPartition())
		return true;
	ref = VARDATA_ANY(item->order_ref);
	len = VARSIZE_ANY_EXHDR(item->order_ref);
	if (len == 0 || len > PAYEXT_MAX_REFERENCE_LEN || ref[0] == ' ' || ref[len - 1] == ' ')
		return true;
	for (int i = 0; i < len; i++)
		if ((unsigned char) ref[i] < 0x20 || (unsigned char) ref[i] >= 0x7f)
			return true;
	return false;
}

/* An item, checked and charged as charge() checks and charges its arguments. */
static int64
CodesChargeItem(int64 merchant_id, const ChargeItem *item, bool check_throttle)
{
	int64		amount;
	char	   *order_ref;

	CodesCheckItem(item, &amount, &order_ref);
	return CodesCharge(merchant_id, VARDATA_ANY(item->code),
					   VARSIZE_ANY_EXHDR(item->code), amount, order_ref,
					   check_throttle);
}

/*
 * Whether an error refuses one item of charge_many() (the caller's own
 * doing: class PY, but not a broken invariant, a missing preload or a
 * pending update) or ends the whole call (everything else: a serialization
 * failure or deadlock to retry, a cancel, a missing privilege, a bug).
 */
static bool
CodesItemRefusal(const ErrorData *edata)
{
	return edata->elevel == ERROR &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == PAYEXT_SQLSTATE('0', '0', '0') &&
		PGUNSIXBIT(edata->sqlerrcode >> 12) != '9' &&
		edata->sqlerrcode != PAYEXT_ERRCODE_NOT_PRELOADED &&
		edata->sqlerrcode != PAYEXT_ERRCODE_VERSION_MISMATCH;
}

/*
 * After an error in an item's subtransaction, rolled back by the caller:
 * records it as the item's refusal, or rethrows it when it is not one.
 */
static void
CodesRefuseItem(ChargeItem *item, ErrorData *edata)
{
	if (!CodesItemRefusal(edata))
		ReThrowError(edata);
	item->attempted = true;
	item->refused = true;
	item->transfer_id = 0;
	item->sqlerrcode = edata->sqlerrcode;
	item->message = edata->message;
}

/* Keeps the current (an item's) subtransaction and returns to the caller's state. */
static void
CodesSubxactKeep(MemoryContext caller_cxt, ResourceOwner caller_owner)
{
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(caller_cxt);
	CurrentResourceOwner = caller_owner;
}

/*
 * In PG_CATCH(): the error, copied into the caller's memory, and the
 * current (an item's) subtransaction rolled back.
 */
static ErrorData *
CodesSubxactAbort(MemoryContext caller_cxt, ResourceOwner caller_owner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(caller_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(caller_cxt);
	CurrentResourceOwner = caller_owner;
	return edata;
}

/*
 * Refuses, before any item is charged, the items whose arguments or code
 * charge() would refuse before reading a row (a null, an amount, an order
 * reference, a malformed code, another partition): these refusals depend on
 * nothing else, so they come out as in input order.  Only a suspect item
 * gets a subtransaction, which writes nothing and so takes no transaction
 * id.  The optimistic charging below then rolls back only for refusals
 * that need the rows.
 */
static void
CodesPrecheckItems(ChargeItem *items, int n)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;

	for (int i = 0; i < n; i++)
	{
		ChargeItem *volatile item = &items[i];
		int64		amount;
		char	   *order_ref;

		if (!CodesItemSuspect(item))
			continue;
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(caller_cxt);
		PG_TRY();
		{
			CodesCheckItem(item, &amount, &order_ref);
			CodesSubxactKeep(caller_cxt, caller_owner);
		}
		PG_CATCH();
		{
			CodesRefuseItem(item, CodesSubxactAbort(caller_cxt, caller_owner));
		}
		PG_END_TRY();
	}
}

/*
 * Charges items[from .. to), skipping the refused ones, in one
 * subtransaction.  Returns `to` when all were charged, and the subtransaction
 * is kept; otherwise the index of the item that was refused, with the
 * subtransaction rolled back (the items before it are charged no more).
 * Each item has an SPI connection of its own, so that what its statements
 * leave in SPI's memory goes when it is done; a rolled-back
 * subtransaction takes the connections it opened with it.
 */
static int
CodesChargeRange(int64 merchant_id, ChargeItem *items, int from, int to,
				 MemoryContext work_cxt)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	volatile int current = from;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(work_cxt);
	PG_TRY();
	{
		for (; current < to; current++)
		{
			ChargeItem *item = &items[current];

			if (item->refused)
				continue;
			PayextSpiConnect();
			item->transfer_id = CodesChargeItem(merchant_id, item, !item->attempted);
			PayextSpiFinish();
			item->attempted = true;
			MemoryContextReset(work_cxt);
		}
		CodesSubxactKeep(caller_cxt, caller_owner);
	}
	PG_CATCH();
	{
		ErrorData  *edata = CodesSubxactAbort(caller_cxt, caller_owner);

		MemoryContextReset(work_cxt);
		CodesRefuseItem(&items[current], edata);
		return current;
	}
	PG_END_TRY();
	return to;
}

/*
 * Charges the items in input order, each refused on its own.
 *
 * One subtransaction an item would give a batch of a hundred a hundred
 * subtransaction ids; beyond 64 a backend's cache of them overflows, and
 * every other backend's snapshot checks then look them up in pg_subtrans.
 * So the refusals that need no row are found first (CodesPrecheckItems(),
 * no transaction id), and the other items run optimistically in one
 * subtransaction.  A refusal there rolls it back; the items before the
 * refused one are charged again, now to be kept (as before, unless a
 * concurrent transaction changed their rows in between, and then they are
 * refused as charge() would refuse them), and the items after it go on in a
 * new subtransaction.  Each such refusal costs a rolled-back range and its
 * redo: a batch with r of them uses up to 2r + 1 subtransaction ids (past
 * 32 refusals that need a row, the cache overflows).  An item charged again
 * skips the throttle: it passed it once, in input order, before any later
 * item's guess was counted.
 */
static void
CodesChargeItems(int64 merchant_id, ChargeItem *items, int n)
{
	MemoryContext work_cxt = AllocSetContextCreate(CurrentMemoryContext,
												   "payext charge_many item",
												   ALLOCSET_DEFAULT_SIZES);
	int			from = 0;

	while (from < n)
	{
		int			refused_at = CodesChargeRange(merchant_id, items, from, n, work_cxt);

		if (refused_at == n)
			break;
		while (from < refused_at &&
			   CodesChargeRange(merchant_id, items, from, refused_at, work_cxt) != refused_at)
			;					/* another item refused: once more without it */
		from = refused_at + 1;
	}
	MemoryContextDelete(work_cxt);
}

/*
 * Takes a batch's locks up front, in the order every charge takes them:
 * the live codes' rows (in code order), then the accounts (in id order).
 * Charged one by one in input order, two batches, or a batch and a single
 * charge, could otherwise each hold a row the other waits for: item 1's
 * wallet held while item 2 waits for a code that a single charge holds
 * while it waits for that wallet.  These locks belong to the call's
 * transaction, not to an item's subtransaction, so an item's refusal does
 * not release them.  So only what a charge could use is locked: codes
 * that are issued and not expired, wallets of the merchant's currency;
 * nothing at all when the merchant is no merchant account or may charge no
 * code now (every item will be refused).  Items refused already are passed
 * over.
 */
static void
CodesLockBatch(int64 merchant_id, const ChargeItem *items, int n)
{
	int64	   *bodies = palloc(sizeof(int64) * Max(n, 1));
	int			found = 0;
	Datum		values[2];
	uint64		rows;
	int64	   *wallets;
	LedgerAccount merchant;

	if (!LedgerFindAccount(merchant_id, &merchant) || merchant.kind != LEDGER_MERCHANT ||
		ThrottleIsBlocked(merchant_id))
		return;
	for (int i = 0; i < n; i++)
	{
		CodeFields	fields;

		if (!items[i].refused &&
			CodeParse(VARDATA_ANY(items[i].code), VARSIZE_ANY_EXHDR(items[i].code),
					  &fields) == CODE_OK)
			bodies[found++] = (int64) fields.body;
	}
	if (found == 0)
		return;
	values[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (IsolationIsSerializable())
	{
		/*
		 * One row at a time, by the unique index, in code order: a sequential
		 * scan (which the planner may choose for the array) would read the
		 * whole table under SERIALIZABLE (see LedgerLockWallets()).
		 */
		qsort(bodies, found, sizeof(int64), PayextCompareInt64);
		wallets = palloc(sizeof(int64) * found);
		rows = 0;
		for (int i = 0; i < found; i++)
		{
			values[0] = Int64GetDatum(bodies[i]);
			if (PayextExecute(&lock_usable_code_plan, values, NULL, false, 1,
							  SPI_OK_SELECT) == 1)
				wallets[rows++] = DatumGetInt64(PayextResultDatum(0, 1));
		}
	}
	else
	{
		values[0] = PayextInt64Array(bodies, found);
		rows = PayextExecute(&lock_codes_plan, values, NULL, false, 0, SPI_OK_SELECT);
		wallets = palloc(sizeof(int64) * Max(rows, 1));
		for (uint64 r = 0; r < rows; r++)
			wallets[r] = DatumGetInt64(PayextResultDatum(r, 1));
	}
	LedgerLockForPayments(merchant_id, merchant.currency, wallets, (int) rows);
}

/*
 * A batch's array argument, one-dimensional (or empty; PY009 else), and
 * its length.  Nothing of its elements is read yet: the sizes are checked
 * before deconstruct_array() allocates for them.
 */
static ArrayType *
CodesBatchArray(FunctionCallInfo fcinfo, int argno, const char *name, int *n)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(argno);

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_BATCH),
				 errmsg("argument \"%s\" must be a one-dimensional array", name),
				 errdetail("It has %d dimensions.", ARR_NDIM(array))));
	*n = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
	return array;
}

/* The elements of a batch's array (CodesBatchArray()). */
static void
CodesBatchElements(ArrayType *array, Oid elemtype, Datum **elems, bool **nulls)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, elems, nulls, &n);
}

/*
 * charge_many(merchant bigint, codes text[], amounts bigint[], order_refs text[])
 *   RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
 */
PG_FUNCTION_INFO_V1(payext_charge_many);
Datum
payext_charge_many(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "codes", "amounts", "order_refs"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *codes;
	bool	   *code_nulls;
	Datum	   *amounts;
	bool	   *amount_nulls;
	Datum	   *refs;
	bool	   *ref_nulls;
	int			n;
	int			n_amounts;
	int			n_refs;
	ArrayType  *code_array;
	ArrayType  *amount_array;
	ArrayType  *ref_array;
	ChargeItem *items;

	PayextRequireArgs(fcinfo, 4, names);
	InitMaterializedSRF(fcinfo, 0);
	code_array = CodesBatchArray(fcinfo, 1, "codes", &n);
	amount_array = CodesBatchArray(fcinfo, 2, "amounts", &n_amounts);
	ref_array = CodesBatchArray(fcinfo, 3, "order_refs", &n_refs);
	if (n_amounts != n || n_refs != n)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_BATCH),
				 errmsg("arguments \"codes\", \"amounts\" and \"order_refs\" must have the same length"),
				 errdetail("They have %d, %d and %d elements.", n, n_amounts, n_refs),
				 errhint("The n-th elements of the three arrays are the batch's n-th item.")));
	if (n > PAYEXT_MAX_BATCH_ITEMS)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BATCH_TOO_LARGE),
				 errmsg("a batch holds at most %d charges", PAYEXT_MAX_BATCH_ITEMS),
				 errdetail("This one holds %d.", n),
				 errhint("Split it; each batch is charged in one transaction.")));
	CodesBatchElements(code_array, TEXTOID, &codes, &code_nulls);
	CodesBatchElements(amount_array, INT8OID, &amounts, &amount_nulls);
	CodesBatchElements(ref_array, TEXTOID, &refs, &ref_nulls);

	items = palloc0(sizeof(ChargeItem) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		items[i].code = code_nulls[i] ? NULL : DatumGetTextPP(codes[i]);
		items[i].amount_null = amount_nulls[i];
		items[i].amount = amount_nulls[i] ? 0 : DatumGetInt64(amounts[i]);
		items[i].order_ref = ref_nulls[i] ? NULL : DatumGetTextPP(refs[i]);
	}

	CodesPrecheckItems(items, n);
	PayextSpiConnect();
	CodesLockBatch(PG_GETARG_INT64(0), items, n);
	CodesChargeItems(PG_GETARG_INT64(0), items, n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(i + 1);
		if (items[i].refused)
		{
			nulls[1] = true;
			values[2] = CStringGetTextDatum(unpack_sql_state(items[i].sqlerrcode));
			values[3] = CStringGetTextDatum(items[i].message);
		}
		else
		{
			values[1] = Int64GetDatum(items[i].transfer_id);
			nulls[2] = nulls[3] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PayextSpiFinish();
	return (Datum) 0;
}

/*
 * An earlier refund under (merchant, refund_ref): its transfer id when it
 * was this request, PY211 when another, 0 when none.
 */
static int64
CodesFindRefund(int64 merchant, const char *refund_ref, const char *order_ref,
				int64 amount_minor)
{
	Datum		values[2];
	int64		transfer_id;

	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(refund_ref);
	if (PayextExecute(&find_refund_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	transfer_id = DatumGetInt64(PayextResultDatum(0, 1));
	if (strcmp(PayextResultCString(0, 2), order_ref) != 0 ||
		DatumGetInt64(PayextResultDatum(0, 3)) != amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_REFUND_CONFLICT),
				 errmsg("refund reference \"%s\" was already used for a different refund", refund_ref),
				 errdetail("Transfer " INT64_FORMAT " refunded " INT64_FORMAT " of order \"%s\" under it.",
						   transfer_id, DatumGetInt64(PayextResultDatum(0, 3)),
						   PayextResultCString(0, 2)),
				 errhint("A retry must repeat the original order and amount; a new refund needs a new refund reference.")));
	return transfer_id;
}

/*
 * Locks the payment of (merchant, order_ref) in values[0..1] (its row is
 * then SPI's result: lock_payment_plan's columns); false when this snapshot
 * sees none.  Under REPEATABLE READ and SERIALIZABLE a payment committed
 * after the snapshot is 40001, the message saying what happened ("the
 * payment was made", "the order was charged").
 */
static bool
CodesLockPayment(Datum *values, const char *happened)
{
	if (PayextExecute(&lock_payment_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
		return true;
	if (IsolationUsesXactSnapshot() &&
		PayextExecuteLatestRead(&lock_payment_exists_plan, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: %s after this transaction's snapshot", happened),
				 errhint("Retry the transaction.")));
	return false;
}

static int64
CodesRefund(int64 merchant_id, const char *order_ref, int64 amount_minor,
			const char *refund_ref)
{
	Datum		values[6];
	int64		payment_id;
	int64		wallet;
	int64		charged;
	int64		refunded;
	char	   *currency;
	int64		transfer_id;
	bool		replayed;
	LedgerTransferRequest req = {0};
	LedgerAccount wallet_found = {0};
	LedgerAccount merchant_found = {0};

	values[0] = Int64GetDatum(merchant_id);
	values[1] = CStringGetTextDatum(order_ref);
	if (!CodesLockPayment(values, "the payment was made"))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_ORDER),
				 errmsg("merchant " INT64_FORMAT " has no payment for order \"%s\"",
						merchant_id, order_ref),
				 errhint("Check the merchant account and the order reference.")));
	payment_id = DatumGetInt64(PayextResultDatum(0, 1));
	wallet = DatumGetInt64(PayextResultDatum(0, 2));
	charged = DatumGetInt64(PayextResultDatum(0, 3));
	refunded = DatumGetInt64(PayextResultDatum(0, 4));
	currency = PayextResultCString(0, 5);

	/*
	 * A replay is recognised by the journal's unique index in
	 * LedgerTransfer() (a lookup here would leave SERIALIZABLE read locks);
	 * only a refund that looks too big is looked up first, since the replay
	 * of a full refund looks too big too.
	 */
	if (amount_minor > charged - refunded)
	{
		transfer_id = CodesFindRefund(merchant_id, refund_ref, order_ref, amount_minor);
		if (transfer_id != 0)
			return transfer_id;
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_REFUND_EXCEEDS),
				 errmsg("refund exceeds what is left of the charge"),
				 errdetail("Order \"%s\" was charged %s, of which %s is refunded already; this refund asks for %s.",
						   order_ref, PayextFormatAmount(charged, currency),
						   PayextFormatAmount(refunded, currency),
						   PayextFormatAmount(amount_minor, currency))));
	}

	req.debit_account = merchant_id;
	req.credit_account = wallet;
	req.amount_minor = amount_minor;
	req.kind = LEDGER_REFUND;
	req.idem_scope = merchant_id;
	req.reference = refund_ref;
	req.caller_checks_replay = true;
	/* The merchant learns nothing of the wallet from a refusal. */
	req.conceal_credit = true;
	req.debit_found = &merchant_found;
	req.credit_found = &wallet_found;
	transfer_id = LedgerTransfer(&req, &replayed);
	if (replayed)
	{
		/* A retry, or the same reference used for another order. */
		if (CodesFindRefund(merchant_id, refund_ref, order_ref, amount_minor) != transfer_id)
			elog(ERROR, "payext: refund \"%s\" has a transfer but no refund row", refund_ref);
		return transfer_id;
	}

	values[0] = Int64GetDatum(payment_id);
	values[1] = Int64GetDatum(amount_minor);
	values[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&add_refund_plan, values, NULL, false, 0, SPI_OK_UPDATE);

	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(payment_id);
	values[2] = Int64GetDatum(merchant_id);
	values[3] = CStringGetTextDatum(refund_ref);
	values[4] = Int64GetDatum(amount_minor);
	values[5] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&insert_refund_plan, values, NULL, false, 0, SPI_OK_INSERT);
	AssocRecordTransfer(transfer_id, "refund", &wallet_found, &merchant_found,
						amount_minor);
	if (EventsSubscribed(merchant_id))
		EventsNotify(merchant_id, "refund", transfer_id, order_ref, amount_minor, currency,
					 GetCurrentTransactionStartTimestamp());
	return transfer_id;
}

/*
 * refund(merchant bigint, order_ref text, amount bigint, refund_ref text)
 *		RETURNS bigint
 */
PG_FUNCTION_INFO_V1(payext_refund);
Datum
payext_refund(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "order_ref", "amount", "refund_ref"};
	char	   *order_ref;
	int64		amount;
	char	   *refund_ref;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 4, names);
	order_ref = PayextArgIdentifier(fcinfo, 1, "order_ref", PAYEXT_MAX_REFERENCE_LEN);
	amount = PayextArgAmount(fcinfo, 2, "amount");
	refund_ref = PayextArgIdentifier(fcinfo, 3, "refund_ref", PAYEXT_MAX_REFERENCE_LEN);
	if (strncmp(refund_ref, CODES_REVERSAL_REF_PREFIX, strlen(CODES_REVERSAL_REF_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_IDENTIFIER),
				 errmsg("argument \"refund_ref\" may not start with \"%s\"", CODES_REVERSAL_REF_PREFIX),
				 errdetail("Those refund references are reverse_charge()'s own."),
				 errhint("Choose another refund reference.")));

	PayextSpiConnect();
	transfer_id = CodesRefund(PG_GETARG_INT64(0), order_ref, amount, refund_ref);
	PayextSpiFinish();
	PG_RETURN_INT64(transfer_id);
}

/*
 * The till's way out of an unknown outcome: a charged order is refunded in
 * full (what is left of it), an order never charged is closed so that a
 * late charge is refused (PY215).  Once per order: a reversal again returns
 * the first one's transfer id, or 0 when it moved no money.  The
 * merchant's row, locked FOR UPDATE, waits for its charges in flight and
 * keeps new ones from starting until this transaction ends.
 */
static int64
CodesReverse(int64 merchant_id, const char *order_ref)
{
	LedgerAccount merchant;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		transfer_id;
	int64		reversed = 0;
	bool		charged;

	LedgerReadAccount(merchant_id, &merchant);
	LedgerRequireKind(&merchant, LEDGER_MERCHANT, "account a reversal is for");
	values[0] = Int64GetDatum(merchant_id);
	values[1] = CStringGetTextDatum(order_ref);

	/*
	 * A charged order: its payment row, locked first as a refund locks it,
	 * puts reversals and refunds of it in turn, and no charge can come after
	 * it (the journal's unique index).  Holding nothing else, the refund then
	 * locks the accounts in their order.  An order not charged (that this
	 * snapshot sees): the merchant's row FOR UPDATE, taken holding nothing
	 * else, waits for its charges in flight and holds new ones back, then the
	 * payment is looked for again; a charge that committed meanwhile is
	 * refunded (the one case where the merchant's row is locked before the
	 * wallet's: a deadlock with a transaction that holds the wallet and
	 * charges the merchant is possible, and one of the two is 40P01).
	 */
	charged = CodesLockPayment(values, "the order was charged");
	if (!charged)
	{
		CodesLockMerchant(merchant_id, true, NULL);
		charged = CodesLockPayment(values, "the order was charged");
	}
	if (charged)
	{
		int64		amount = DatumGetInt64(PayextResultDatum(0, 3));
		int64		refunded = DatumGetInt64(PayextResultDatum(0, 4));

		transfer_id = CodesFindReversal(merchant_id, order_ref);
		if (transfer_id >= 0)
			return transfer_id;
		transfer_id = 0;
		if (refunded < amount)
		{
			reversed = amount - refunded;
			transfer_id = CodesRefund(merchant_id, order_ref, reversed,
									  psprintf(CODES_REVERSAL_REF_PREFIX "%s", order_ref));
		}
	}
	else
	{
		int64		held_serial;
		int64		held_amount;
		int64		hold;

		transfer_id = CodesFindReversal(merchant_id, order_ref);
		if (transfer_id >= 0)
			return transfer_id;
		transfer_id = 0;
		/* A hold's order is the hold's: void_hold() releases it. */
		hold = CodesFindHold(merchant_id, order_ref, &held_serial, &held_amount);
		if (hold != 0)
			CodesRaiseOrderIsHold(order_ref, hold);
	}

	values[2] = Int64GetDatum(transfer_id);
	if (transfer_id == 0)
		nulls[2] = 'n';
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&insert_reversal_plan, values, nulls, false, 0, SPI_OK_INSERT);
	if (EventsSubscribed(merchant_id))
		EventsNotify(merchant_id, "reversal", transfer_id, order_ref, reversed,
					 merchant.currency, GetCurrentTransactionStartTimestamp());
	return transfer_id;
}

/*
 * reverse_order(merchant bigint, order_ref text) RETURNS bigint: behind
 * reverse_charge(), which checks the caller; NULL when no money moved.
 */
PG_FUNCTION_INFO_V1(payext_reverse_order);
Datum
payext_reverse_order(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "order_ref"};
	char	   *order_ref;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 2, names);
	order_ref = PayextArgIdentifier(fcinfo, 1, "order_ref", PAYEXT_MAX_REFERENCE_LEN);

	PayextSpiConnect();
	transfer_id = CodesReverse(PG_GETARG_INT64(0), order_ref);
	PayextSpiFinish();
	if (transfer_id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(transfer_id);
}

/* rotate_signing_key() RETURNS integer */
PG_FUNCTION_INFO_V1(payext_rotate_signing_key);
Datum
payext_rotate_signing_key(PG_FUNCTION_ARGS)
{
	int32		new_id;

	PayextSpiConnect();
	new_id = CodesRotate(false);
	PayextSpiFinish();
	PG_RETURN_INT32(new_id);
}
