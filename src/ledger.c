/*
 * ledger.c
 *		The transfer primitive and the ledger's SQL functions.
 *
 * Every movement of money is LedgerTransfer(): lock the user accounts in
 * ascending id order, check states, currency, funds and overflow, append one
 * journal row, set the balances.  The row locks are taken with SELECT ...
 * FOR NO KEY UPDATE, so that under READ COMMITTED a waiting transfer sees
 * the balance its predecessor committed, and under REPEATABLE READ and
 * SERIALIZABLE PostgreSQL itself reports the conflict as 40001.
 *
 * System accounts (one per currency, the other side of every top-up and
 * withdrawal) are never locked and keep no stored balance: theirs is the
 * journal's sum.  Locking them would serialise every top-up of a currency
 * and make any two concurrent ones conflict under REPEATABLE READ.
 *
 * Merchants are paid through buckets.  A charge or a parking
 * payment takes its merchant's row FOR SHARE, not FOR NO KEY UPDATE, and
 * adds the amount to one of PAYEXT_MERCHANT_BUCKETS rows of
 * payext.merchant_credit, picked by backend, so payments to one merchant
 * from different sessions do not queue on one row lock.  A merchant's
 * balance is its row's balance plus its buckets.  Everything that takes
 * money from a merchant, or credits it otherwise, or closes it, locks the
 * row FOR NO KEY UPDATE, which waits for the payments holding it shared,
 * and first folds the buckets into the row (LedgerFoldCredits), so that its
 * checks see the whole balance: a refund never overdraws a merchant.
 * Overflow stays exact: while a payment holds the row shared, its stored
 * balance cannot change, and each bucket is kept within an equal share of
 * the headroom above it; a payment that would pass its share takes the row
 * exclusively and folds first.
 */
#include "postgres.h"

#include <openssl/sha.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "direct.h"
#include "errors.h"
#include "ledger.h"
#include "payext_limits.h"
#include "money.h"
#include "roles.h"
#include "spi_util.h"

/*
 * A reference's scope, as transfer_reference_key computes it: a top-up's or
 * withdrawal's account, otherwise idem_scope.  Word for word the index's
 * expression, so that ON CONFLICT infers the index and lookups use it.
 */
#define LEDGER_REFERENCE_SCOPE \
	"(CASE kind WHEN 'top_up' THEN credit_account" \
	" WHEN 'withdraw' THEN debit_account" \
	" ELSE idem_scope END)"

/*
 * Whether a wallet's holds may still hold something: held_until is the
 * latest expiry any of its holds had when made (authorize() sets it), so
 * a wallet without a hold, or whose holds are all past, is judged by its
 * balance alone, without a look at payext.hold_entry.
 */
#define LEDGER_MAY_HOLD "coalesce(held_until > now(), false)"

/* What a wallet's live holds hold: their remainders (src/holds.c). */
static PayextPlan held_plan = {
	"SELECT coalesce(sum(amount - captured), 0)::bigint FROM payext.hold_entry"
	" WHERE wallet = $1 AND state = 'open' AND expires_at > now()",
	1, {INT8OID}
};

static PayextPlan find_by_reference_plan = {
	"SELECT id, debit_account, credit_account, amount"
	"  FROM payext.transfer"
	" WHERE kind = $1 AND " LEDGER_REFERENCE_SCOPE " = $2 AND reference = $3"
	"   AND reference IS NOT NULL",
	3, {TEXTOID, INT8OID, TEXTOID}
};

static PayextPlan lock_accounts_plan = {
	"SELECT id, kind, currency, balance, status, owner, public_service_id, " LEDGER_MAY_HOLD
	"  FROM payext.account"
	" WHERE (id = $1 OR id = $2) AND balance IS NOT NULL"
	" ORDER BY id"
	"   FOR NO KEY UPDATE",
	2, {INT8OID, INT8OID}
};

static PayextPlan read_account_plan = {
	"SELECT id, kind, currency, coalesce(balance, 0), status, owner, public_service_id, " LEDGER_MAY_HOLD
	"  FROM payext.account"
	" WHERE id = $1",
	1, {INT8OID}
};

static PayextPlan read_system_plan = {
	"SELECT id, kind, currency, 0::bigint, status, owner, public_service_id, false"
	"  FROM payext.account"
	" WHERE id = $1 AND balance IS NULL",
	1, {INT8OID}
};

static PayextPlan insert_transfer_plan = {
	"INSERT INTO payext.transfer"
	" (id, debit_account, credit_account, amount, currency, kind,"
	"  idem_scope, reference, created_at, checksum)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	" ON CONFLICT (kind, " LEDGER_REFERENCE_SCOPE ", reference)"
	" WHERE reference IS NOT NULL DO NOTHING",
	10, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID,
	INT8OID, TEXTOID, TIMESTAMPTZOID, BYTEAOID}
};

static PayextPlan set_balances_plan = {
	"UPDATE payext.account"
	"   SET balance = CASE WHEN id = $1 THEN $2 ELSE $4 END"
	" WHERE (id = $1 OR id = $3) AND balance IS NOT NULL",
	4, {INT8OID, INT8OID, INT8OID, INT8OID}
};

static PayextPlan account_info_plan = {
	"SELECT a.kind, a.currency, s.id"
	"  FROM payext.account a"
	"  LEFT JOIN payext.account s"
	"    ON s.kind = 'system' AND s.currency = a.currency"
	" WHERE a.id = $1",
	1, {INT8OID}
};

static PayextPlan find_system_plan = {
	"SELECT id FROM payext.account WHERE kind = 'system' AND currency = $1",
	1, {TEXTOID}
};

static PayextPlan find_clearing_plan = {
	"SELECT id FROM payext.account WHERE kind = 'clearing' AND currency = $1",
	1, {TEXTOID}
};

static PayextPlan find_wallet_plan = {
	"SELECT id FROM payext.account"
	" WHERE kind = 'wallet' AND owner = $1 AND currency = $2",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan find_merchant_plan = {
	"SELECT id FROM payext.account"
	" WHERE kind = 'merchant' AND public_service_id = $1 AND currency = $2",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan insert_account_plan = {
	"INSERT INTO payext.account"
	" (id, kind, owner, public_service_id, display_name, currency, created_at,"
	"  balance)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $2 IN ('system', 'clearing') THEN NULL ELSE 0 END)"
	" ON CONFLICT DO NOTHING",
	7, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/* A system account's balance: the journal's sum, as numeric. */
static PayextPlan system_balance_plan = {
	"SELECT coalesce(sum(CASE WHEN t.credit_account = $1 THEN t.amount::numeric"
	"                         ELSE -t.amount::numeric END), 0)::text"
	"  FROM payext.transfer t"
	" WHERE t.debit_account = $1 OR t.credit_account = $1",
	1, {INT8OID}
};

/* Merchant buckets */
static PayextPlan lock_user_account_plan = {
	"SELECT id, kind, currency, balance, status, owner, public_service_id, " LEDGER_MAY_HOLD
	"  FROM payext.account"
	" WHERE id = $1 AND balance IS NOT NULL"
	"   FOR NO KEY UPDATE",
	1, {INT8OID}
};

static PayextPlan share_merchant_plan = {
	"SELECT id, kind, currency, balance, status, owner, public_service_id, " LEDGER_MAY_HOLD
	"  FROM payext.account"
	" WHERE id = $1 AND kind = 'merchant'"
	"   FOR SHARE",
	1, {INT8OID}
};

/* Wallets in currency $2 among $1, in id order (charge_many's locks). */
static PayextPlan lock_wallets_plan = {
	"SELECT id FROM payext.account"
	" WHERE id = ANY ($1) AND kind = 'wallet' AND currency = $2"
	" ORDER BY id"
	"   FOR NO KEY UPDATE",
	2, {INT8ARRAYOID, TEXTOID}
};

/* The same for one wallet, by the primary key. */
static PayextPlan lock_wallet_plan = {
	"SELECT id FROM payext.account"
	" WHERE id = $1 AND kind = 'wallet' AND currency = $2"
	"   FOR NO KEY UPDATE",
	2, {INT8OID, TEXTOID}
};

/*
 * Adds $3 to bucket $2 unless that would take it above $4; no row when the
 * bucket is not there yet or would pass $4.  Tried before the upsert below
 * because INSERT ... ON CONFLICT DO UPDATE locks the row it updates first,
 * a row lock written to the WAL, which a plain UPDATE does not write.  Not
 * under SERIALIZABLE: its search of the buckets' index leaves a read lock
 * on the index page, and a payment from another backend that makes its
 * bucket there would then conflict with this one (the upsert's search
 * leaves none; charge_many_isolation.spec).
 */
static PayextPlan add_to_bucket_plan = {
	"UPDATE payext.merchant_credit SET amount = amount + $3"
	" WHERE account = $1 AND bucket = $2 AND amount <= $4 - $3",
	4, {INT8OID, INT4OID, INT8OID, INT8OID}
};

/* Adds $3 to bucket $2 unless that would take it above $4. */
static PayextPlan credit_bucket_plan = {
	"INSERT INTO payext.merchant_credit AS c (account, bucket, amount)"
	" VALUES ($1, $2, $3)"
	" ON CONFLICT (account, bucket) DO UPDATE SET amount = c.amount + excluded.amount"
	"  WHERE c.amount <= $4 - excluded.amount"
	" RETURNING c.amount",
	4, {INT8OID, INT4OID, INT8OID, INT8OID}
};

/* Moves the buckets into the row; returns the new balance, or no row. */
static PayextPlan fold_credits_plan = {
	"WITH gone AS (DELETE FROM payext.merchant_credit WHERE account = $1 RETURNING amount),"
	"     total AS (SELECT sum(amount) AS amount FROM gone)"
	" UPDATE payext.account a SET balance = a.balance + total.amount::bigint"
	"   FROM total"
	"  WHERE a.id = $1 AND total.amount IS NOT NULL"
	" RETURNING a.balance",
	1, {INT8OID}
};

static PayextPlan set_one_balance_plan = {
	"UPDATE payext.account SET balance = $2 WHERE id = $1 AND balance IS NOT NULL",
	2, {INT8OID, INT8OID}
};

/*
 * An account's balance: its row's, plus a merchant's buckets.  Only a
 * merchant's: under SERIALIZABLE, reading the buckets' index for a wallet
 * would lock a page of it, and two transactions that each read a wallet and
 * pay a merchant would then be refused as if they depended on each other.
 */
static PayextPlan balance_plan = {
	"SELECT a.balance + CASE WHEN a.kind = 'merchant'"
	"                        THEN coalesce((SELECT sum(c.amount) FROM payext.merchant_credit c"
	"                                        WHERE c.account = a.id), 0)::bigint"
	"                        ELSE 0 END,"
	"       a.balance IS NULL, a.kind = 'merchant'"
	"  FROM payext.account a WHERE a.id = $1",
	1, {INT8OID}
};

static PayextPlan lock_one_account_plan = {
	"SELECT kind, status, balance FROM payext.account WHERE id = $1"
	"   FOR NO KEY UPDATE",
	1, {INT8OID}
};

/* Sagas whose money left the account and may still come back to it. */
static PayextPlan open_sagas_plan = {
	"SELECT count(*) FROM payext.saga WHERE account = $1 AND state = 'open'",
	1, {INT8OID}
};

static PayextPlan set_status_plan = {
	"UPDATE payext.account SET status = $2 WHERE id = $1",
	2, {INT8OID, TEXTOID}
};

static void LedgerRefuseSystemAccount(int64 account_id, LedgerAccountKind kind,
									  const char *what);

/* ---------------------------------------------------------------------
 * Journal checksum
 * ---------------------------------------------------------------------
 */

static void
ChecksumAppendText(StringInfo buf, const char *value)
{
	if (value == NULL)
	{
		pq_sendint8(buf, 0);
		return;
	}
	pq_sendint8(buf, 1);
	pq_sendint32(buf, (uint32) strlen(value));
	pq_sendbytes(buf, value, strlen(value));
}

bytea *
LedgerChecksum(int64 id, int64 debit_account, int64 credit_account,
			   int64 amount_minor, const char *currency, const char *kind,
			   int64 idem_scope, const char *reference, TimestampTz created_at)
{
	StringInfoData buf;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	bytea	   *result;

	/* A versioned, unambiguous encoding: fixed-width integers, sized text. */
	initStringInfo(&buf);
	pq_sendbytes(&buf, "payext.transfer.v1", 18);
	pq_sendint64(&buf, id);
	pq_sendint64(&buf, debit_account);
	pq_sendint64(&buf, credit_account);
	pq_sendint64(&buf, amount_minor);
	ChecksumAppendText(&buf, currency);
	ChecksumAppendText(&buf, kind);
	pq_sendint64(&buf, idem_scope);
	ChecksumAppendText(&buf, reference);
	pq_sendint64(&buf, created_at);

	SHA256((const unsigned char *) buf.data, buf.len, digest);
	pfree(buf.data);

	result = palloc(VARHDRSZ + PAYEXT_CHECKSUM_LEN);
	SET_VARSIZE(result, VARHDRSZ + PAYEXT_CHECKSUM_LEN);
	memcpy(VARDATA(result), digest, PAYEXT_CHECKSUM_LEN);
	return result;
}

/* ---------------------------------------------------------------------
 * The transfer primitive
 * ---------------------------------------------------------------------
 */

/* The words of payext.account.kind, in LedgerAccountKind's order. */
static const char *const account_kind_names[] = {
	[LEDGER_WALLET] = "wallet",
	[LEDGER_MERCHANT] = "merchant",
	[LEDGER_SYSTEM] = "system",
	[LEDGER_CLEARING] = "clearing",
};

static const char *const account_status_names[] = {
	[LEDGER_ACTIVE] = "active",
	[LEDGER_FROZEN] = "frozen",
	[LEDGER_CLOSED] = "closed",
};

/* payext.transfer.kind, and the same as a noun for messages. */
static const char *const transfer_kind_names[] = {
	[LEDGER_KIND_UNSET] = NULL,
	[LEDGER_TOP_UP] = "top_up",
	[LEDGER_WITHDRAW] = "withdraw",
	[LEDGER_TRANSFER] = "transfer",
	[LEDGER_CHARGE] = "charge",
	[LEDGER_REFUND] = "refund",
	[LEDGER_PARKING] = "parking",
	[LEDGER_CLEARING_OUT] = "clearing_out",
	[LEDGER_CLEARING_IN] = "clearing_in",
	[LEDGER_CLEARING_BACK] = "clearing_back",
	[LEDGER_CAPTURE] = "capture",
};
static const char *const transfer_kind_nouns[] = {
	[LEDGER_KIND_UNSET] = NULL,
	[LEDGER_TOP_UP] = "top-up",
	[LEDGER_WITHDRAW] = "withdrawal",
	[LEDGER_TRANSFER] = "transfer",
	[LEDGER_CHARGE] = "charge",
	[LEDGER_REFUND] = "refund",
	[LEDGER_PARKING] = "parking",
	[LEDGER_CLEARING_OUT] = "transfer to another partition",
	[LEDGER_CLEARING_IN] = "transfer from another partition",
	[LEDGER_CLEARING_BACK] = "return of a transfer to another partition",
	[LEDGER_CAPTURE] = "capture",
};

LedgerAccountKind
LedgerParseAccountKind(const char *kind)
{
	return (LedgerAccountKind) PayextParseWord(kind, account_kind_names,
											   lengthof(account_kind_names),
											   "account kind");
}

const char *
LedgerAccountKindName(LedgerAccountKind kind)
{
	Assert(kind >= 0 && kind < lengthof(account_kind_names));
	return account_kind_names[kind];
}

const char *
LedgerTransferKindName(LedgerTransferKind kind)
{
	Assert(kind > LEDGER_KIND_UNSET && kind < lengthof(transfer_kind_names));
	return transfer_kind_names[kind];
}

static LedgerAccountStatus
LedgerParseAccountStatus(const char *status)
{
	return (LedgerAccountStatus) PayextParseWord(status, account_status_names,
												 lengthof(account_status_names),
												 "account status");
}

/* The journal kind as a noun for messages: 'top_up' reads "top-up". */
static const char *
LedgerKindNoun(LedgerTransferKind kind)
{
	Assert(kind > LEDGER_KIND_UNSET && kind < lengthof(transfer_kind_nouns));
	return transfer_kind_nouns[kind];
}

/* The scope of req's reference, as LEDGER_REFERENCE_SCOPE computes it. */
static int64
LedgerReferenceScope(const LedgerTransferRequest *req)
{
	if (req->kind == LEDGER_TOP_UP)
		return req->credit_account;
	if (req->kind == LEDGER_WITHDRAW)
		return req->debit_account;
	return req->idem_scope;
}

/*
 * A replay of an idempotent request: returns the first transfer's id when
 * the request is the same, raises when the reference was used for another,
 * returns 0 when the reference is new.
 */
static int64
LedgerFindReplay(const LedgerTransferRequest *req)
{
	Datum		values[3];
	int64		id;
	bool		same_accounts;

	values[0] = CStringGetTextDatum(LedgerTransferKindName(req->kind));
	values[1] = Int64GetDatum(LedgerReferenceScope(req));
	values[2] = CStringGetTextDatum(req->reference);
	if (PayextExecute(&find_by_reference_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		return 0;

	id = DatumGetInt64(PayextResultDatum(0, 1));
	same_accounts = DatumGetInt64(PayextResultDatum(0, 2)) == req->debit_account &&
		DatumGetInt64(PayextResultDatum(0, 3)) == req->credit_account;
	if (req->caller_checks_replay ||
		(same_accounts && DatumGetInt64(PayextResultDatum(0, 4)) == req->amount_minor))
		return id;

	/*
	 * Say what the reference moved only to a caller who names the same
	 * accounts.
	 */
	ereport(ERROR,
			(errcode(req->conflict_errcode != 0 ? req->conflict_errcode :
					 PAYEXT_ERRCODE_IDEMPOTENCY_CONFLICT),
			 errmsg("reference \"%s\" was already used for a different %s",
					req->reference, LedgerKindNoun(req->kind)),
			 same_accounts ?
			 errdetail("Transfer " INT64_FORMAT " moved " INT64_FORMAT " between the same accounts under this reference.",
					   id, DatumGetInt64(PayextResultDatum(0, 4))) :
			 errdetail("The reference belongs to a transfer between other accounts."),
			 errhint("A retry must repeat the original arguments; a new request needs a new reference.")));
	return id;
}

static void
LedgerReadLockedAccount(uint64 row, LedgerAccount *account)
{
	account->id = DatumGetInt64(PayextResultDatum(row, 1));
	account->kind = LedgerParseAccountKind(PayextResultCString(row, 2));
	strlcpy(account->currency, PayextResultCString(row, 3), sizeof(account->currency));
	account->balance_minor = DatumGetInt64(PayextResultDatum(row, 4));
	account->status = LedgerParseAccountStatus(PayextResultCString(row, 5));
	account->owner = PayextResultCString(row, 6);
	account->public_service_id = PayextResultCString(row, 7);
	account->may_hold = DatumGetBool(PayextResultDatum(row, 8));
}

int64
LedgerHeld(const LedgerAccount *account)
{
	Datum		values[1];

	if (account->kind != LEDGER_WALLET || !account->may_hold)
		return 0;
	values[0] = Int64GetDatum(account->id);
	PayextExecute(&held_plan, values, NULL, false, 1, SPI_OK_SELECT);
	return DatumGetInt64(PayextResultDatum(0, 1));
}

bool
LedgerLockWallet(int64 account_id, LedgerAccount *account)
{
	Datum		values[1];

	values[0] = Int64GetDatum(account_id);
	if (PayextExecute(&lock_user_account_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		return false;
	LedgerReadLockedAccount(0, account);
	if (account->kind != LEDGER_WALLET)
		return false;
	account->held_minor = LedgerHeld(account);
	return true;
}

int64
LedgerWholeBalance(int64 account_id)
{
	Datum		values[1];
	bool		isnull;
	Datum		balance;

	values[0] = Int64GetDatum(account_id);
	if (PayextExecute(&balance_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	balance = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(balance);
}

void
LedgerLockAccounts(int64 *ids, int n)
{
	qsort(ids, n, sizeof(int64), PayextCompareInt64);
	for (int i = 0; i < n; i++)
	{
		PayextAccountRow row;

		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		/* lock_user_account_plan, without SPI, as LedgerTransfer's locks */
		(void) PayextDirectLockAccount(ids[i], PAYEXT_ACCOUNT_STORES_BALANCE,
									   LockTupleNoKeyExclusive, &row);
	}
}

int64
LedgerFindReference(LedgerTransferKind kind, int64 scope, const char *reference)
{
	Datum		values[3];

	values[0] = CStringGetTextDatum(LedgerTransferKindName(kind));
	values[1] = Int64GetDatum(scope);
	values[2] = CStringGetTextDatum(reference);
	if (PayextExecute(&find_by_reference_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		return 0;
	return DatumGetInt64(PayextResultDatum(0, 1));
}

bool
LedgerFindAccount(int64 account_id, LedgerAccount *account)
{
	Datum		values[1];

	values[0] = Int64GetDatum(account_id);
	if (PayextExecute(&read_account_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		return false;
	LedgerReadLockedAccount(0, account);
	return true;
}

/* An account as direct.c read it. */
static void
LedgerAccountFromRow(const PayextAccountRow *row, LedgerAccount *account)
{
	account->id = row->id;
	account->kind = LedgerParseAccountKind(row->kind);
	strlcpy(account->currency, row->currency, sizeof(account->currency));
	account->balance_minor = row->balance;
	account->status = LedgerParseAccountStatus(row->status);
	account->owner = row->owner;
	account->public_service_id = row->public_service_id;
	/* LEDGER_MAY_HOLD */
	account->may_hold = !row->held_until_null &&
		row->held_until > GetCurrentTransactionStartTimestamp();
	account->locked_tid = row->tid;
}

void
LedgerReadAccount(int64 account_id, LedgerAccount *account)
{
	PayextAccountRow row;

	if (!PayextDirectReadAccount(account_id, &row))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist", account_id)));
	LedgerAccountFromRow(&row, account);
	/* Read, not locked: no direct update of it (LedgerSetLockedBalance). */
	ItemPointerSetInvalid(&account->locked_tid);
}

void
LedgerRequireKind(const LedgerAccount *account, LedgerAccountKind kind,
				  const char *role)
{
	if (account->kind != kind)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_WRONG_ACCOUNT_KIND),
				 errmsg("account " INT64_FORMAT " is not a %s account", account->id,
						LedgerAccountKindName(kind)),
				 errdetail("The %s must be a %s account; account " INT64_FORMAT " is a %s account.",
						   role, LedgerAccountKindName(kind), account->id,
						   LedgerAccountKindName(account->kind))));
}

/*
 * How errors name an account: by its id, or, for a customer's wallet that
 * a merchant is charging, without one.
 */
static const char *
LedgerAccountName(const LedgerAccount *account, bool conceal)
{
	return conceal ? "the customer's wallet" :
		psprintf("account " INT64_FORMAT, account->id);
}

void
LedgerCheckActiveAs(const LedgerAccount *account, bool conceal)
{
	if (account->status == LEDGER_FROZEN)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_FROZEN),
				 errmsg("%s is frozen", LedgerAccountName(account, conceal)),
				 errdetail("A frozen account can neither pay nor be paid."),
				 conceal ? 0 :
				 errhint("An administrator can lift this with payext.unfreeze().")));
	if (account->status == LEDGER_CLOSED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_CLOSED),
				 errmsg("%s is closed", LedgerAccountName(account, conceal)),
				 errdetail("A closed account can neither pay nor be paid.")));
}

void
LedgerCheckActive(const LedgerAccount *account)
{
	LedgerCheckActiveAs(account, false);
}

/*
 * Locks the user accounts of the pair, lower id first, reads the system
 * account (if one side is) without a lock, and fills debit and credit.
 */
static void
LedgerLockPair(const LedgerTransferRequest *req, LedgerAccount *debit,
			   LedgerAccount *credit)
{
	Datum		values[2];
	uint64		rows;
	bool		have_debit = false;
	bool		have_credit = false;

	values[0] = Int64GetDatum(req->debit_account);
	values[1] = Int64GetDatum(req->credit_account);
	rows = PayextExecute(&lock_accounts_plan, values, NULL, false, 0,
						 SPI_OK_SELECT);
	for (int pass = 0; pass < 2; pass++)
	{
		for (uint64 row = 0; row < rows; row++)
		{
			LedgerAccount account;

			LedgerReadLockedAccount(row, &account);
			/* Lock order: the statement locked the rows in id order. */
			Assert(pass == 1 || row == 0 ||
				   DatumGetInt64(PayextResultDatum(row - 1, 1)) < account.id);
			if (account.id == req->debit_account)
			{
				*debit = account;
				have_debit = true;
			}
			else
			{
				*credit = account;
				have_credit = true;
			}
		}
		if ((have_debit && have_credit) || pass == 1)
			break;
		/* One side is a system account, or does not exist. */
		values[0] = Int64GetDatum(have_debit ? req->credit_account : req->debit_account);
		rows = PayextExecute(&read_system_plan, values, NULL, false, 1,
							 SPI_OK_SELECT);
	}
	if (!have_debit || !have_credit)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist",
						have_debit ? req->credit_account : req->debit_account)));
}

/*
 * Folds a merchant's buckets into its row, which the caller holds FOR NO
 * KEY UPDATE (so no payment is adding to them), and sets balance_minor to
 * the whole balance.  Anything else is left alone.  The fold reads the
 * newest buckets: under REPEATABLE READ a payment that committed after the
 * snapshot (it only share-locked the row, so locking the row raised
 * nothing) must not be passed over, or a close would strand its money and
 * a refund see too little; such a bucket raises 40001 instead.
 */
static void
LedgerFoldCredits(LedgerAccount *account)
{
	Datum		values[1];

	if (account->kind != LEDGER_MERCHANT)
		return;
	values[0] = Int64GetDatum(account->id);
	if (PayextExecuteLatest(&fold_credits_plan, values, NULL,
							SPI_OK_UPDATE_RETURNING) == 1)
		account->balance_minor = DatumGetInt64(PayextResultDatum(0, 1));
}

static void
LedgerRaiseOverflow(const LedgerTransferRequest *req)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_BALANCE_OVERFLOW),
			 errmsg("the %s would overflow a balance", LedgerKindNoun(req->kind)),
			 errdetail("Balances are 64-bit integers of the minor unit.")));
}

/*
 * The locks of a payment through a bucket, lower id first: the payer's
 * row FOR NO KEY UPDATE, the merchant's FOR SHARE.  Payments to one
 * merchant share its row; what takes money from it waits for them.
 */
static void
LedgerLockForBucketCredit(const LedgerTransferRequest *req, LedgerAccount *debit,
						  LedgerAccount *credit)
{
	bool		debit_first = req->debit_account < req->credit_account;
	int64		locked_before PG_USED_FOR_ASSERTS_ONLY = PG_INT64_MIN;

	for (int i = 0; i < 2; i++)
	{
		bool		is_debit = (i == 0) == debit_first;
		int64		id = is_debit ? req->debit_account : req->credit_account;
		PayextAccountRow row;

		/* Lock order: lower id first, so two payments cannot deadlock. */
		Assert(id > locked_before);
		locked_before = id;

		/* lock_user_account_plan and share_merchant_plan, without SPI */
		if (!PayextDirectLockAccount(id,
									 is_debit ? PAYEXT_ACCOUNT_STORES_BALANCE : PAYEXT_ACCOUNT_MERCHANT,
									 is_debit ? LockTupleNoKeyExclusive : LockTupleShare,
									 &row))
		{
			LedgerAccount found;

			/* Missing (PY101), or of the wrong kind (PY111). */
			LedgerReadAccount(id, &found);
			if (is_debit)
				LedgerRefuseSystemAccount(id, found.kind, "a payment");
			LedgerRequireKind(&found, LEDGER_MERCHANT, "payee");
			elog(ERROR, "payext: account " INT64_FORMAT " could not be locked", id);
		}
		LedgerAccountFromRow(&row, is_debit ? debit : credit);
	}
}

/*
 * Locks the wallets among ids[from .. to), which are in id order.  Under
 * SERIALIZABLE one row at a time, by the primary key: for the one
 * statement over the array the planner may choose a sequential scan of the
 * table, which under SERIALIZABLE reads every row of it, and then any
 * concurrent payment seems to depend on this transaction
 * (charge_many_serializable.spec).
 */
static void
LedgerLockWallets(const int64 *ids, int from, int to, const char *currency)
{
	Datum		values[2];

	if (from >= to)
		return;
	values[1] = CStringGetTextDatum(currency);
	if (IsolationIsSerializable())
	{
		for (int i = from; i < to; i++)
		{
			values[0] = Int64GetDatum(ids[i]);
			PayextExecute(&lock_wallet_plan, values, NULL, false, 1, SPI_OK_SELECT);
		}
		return;
	}
	values[0] = PayextInt64Array(ids + from, to - from);
	PayextExecute(&lock_wallets_plan, values, NULL, false, 0, SPI_OK_SELECT);
}

void
LedgerLockForPayments(int64 merchant, const char *currency, int64 *wallets, int n)
{
	int			below = 0;
	int			distinct = 0;
	Datum		values[1];

	qsort(wallets, n, sizeof(int64), PayextCompareInt64);
	for (int i = 0; i < n; i++)
		if (distinct == 0 || wallets[distinct - 1] != wallets[i])
			wallets[distinct++] = wallets[i];
	while (below < distinct && wallets[below] < merchant)
		below++;
	LedgerLockWallets(wallets, 0, below, currency);
	values[0] = Int64GetDatum(merchant);
	PayextExecute(&share_merchant_plan, values, NULL, false, 1, SPI_OK_SELECT);
	LedgerLockWallets(wallets, below, distinct, currency);
}

/*
 * Credits a merchant whose row we hold FOR SHARE through this backend's
 * bucket.  Its stored balance cannot change while we hold the row, so
 * keeping every bucket within 1/PAYEXT_MERCHANT_BUCKETS of the headroom
 * above it keeps the whole balance within bigint.  A payment that would
 * pass that share takes the row exclusively, folds, and checks exactly.
 */
static void
LedgerCreditBucket(const LedgerTransferRequest *req, LedgerAccount *credit)
{
	int64		share = (PG_INT64_MAX - credit->balance_minor) / PAYEXT_MERCHANT_BUCKETS;
	Datum		values[4];
	int64		after;

	Assert(credit->balance_minor >= 0);
	if (req->amount_minor <= share)
	{
		int			added = 0;

		values[0] = Int64GetDatum(credit->id);
		values[1] = Int32GetDatum(MyBackendId % PAYEXT_MERCHANT_BUCKETS);
		values[2] = Int64GetDatum(req->amount_minor);
		values[3] = Int64GetDatum(share);
		/* The bucket's UPDATE without the executor where direct.c can. */
		if (!IsolationIsSerializable())
		{
			added = PayextDirectAddToBucket(credit->id, MyBackendId % PAYEXT_MERCHANT_BUCKETS,
											req->amount_minor, share);
			if (added < 0)
				added = (int) PayextExecute(&add_to_bucket_plan, values, NULL, false, 0,
											SPI_OK_UPDATE);
		}
		if (added == 1 ||
			PayextExecute(&credit_bucket_plan, values, NULL, false, 0,
						  SPI_OK_INSERT_RETURNING) == 1)
			return;
	}
	/* Near the limit: the row exclusively (an upgrade of our share lock). */
	values[0] = Int64GetDatum(credit->id);
	if (PayextExecute(&lock_user_account_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) != 1)
		elog(ERROR, "payext: merchant " INT64_FORMAT " could not be locked", credit->id);
	LedgerReadLockedAccount(0, credit);
	LedgerFoldCredits(credit);
	if (pg_add_s64_overflow(credit->balance_minor, req->amount_minor, &after))
		LedgerRaiseOverflow(req);
	values[1] = Int64GetDatum(after);
	PayextExecute(&set_one_balance_plan, values, NULL, false, 0, SPI_OK_UPDATE);
}

/* Checks states, currency, funds and overflow; returns the new balances. */
static void
LedgerCheckTransfer(const LedgerTransferRequest *req, const LedgerAccount *debit,
					const LedgerAccount *credit, int64 *debit_after,
					int64 *credit_after)
{
	LedgerCheckActiveAs(debit, req->conceal_debit);
	/* Money coming back to where it left is not a payment to it. */
	if (!(req->kind == LEDGER_CLEARING_BACK && credit->status == LEDGER_FROZEN))
		LedgerCheckActiveAs(credit, req->conceal_credit);
	if (strcmp(debit->currency, credit->currency) != 0 && req->conceal_debit)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CURRENCY_MISMATCH),
				 errmsg("the customer's wallet holds another currency than account " INT64_FORMAT,
						credit->id),
				 errdetail("Account " INT64_FORMAT " holds %s.", credit->id, credit->currency),
				 errhint("Ask the customer for a code of a wallet in %s.", credit->currency)));
	if (strcmp(debit->currency, credit->currency) != 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CURRENCY_MISMATCH),
				 errmsg("accounts " INT64_FORMAT " and " INT64_FORMAT " hold different currencies",
						debit->id, credit->id),
				 errdetail("Account " INT64_FORMAT " holds %s, account " INT64_FORMAT " holds %s.",
						   debit->id, debit->currency, credit->id, credit->currency),
				 errhint("payext does not convert currencies; use accounts of one currency.")));
	/* A wallet pays from what its live holds leave (available_balance()). */
	if (LedgerStoresBalance(debit->kind) &&
		debit->balance_minor - debit->held_minor < req->amount_minor &&
		req->conceal_debit)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in the customer's wallet"),
				 errdetail("The %s needs %s.", LedgerKindNoun(req->kind),
						   PayextFormatAmount(req->amount_minor, debit->currency)),
				 errhint("Ask the customer to top up, or to pay another way.")));
	if (LedgerStoresBalance(debit->kind) && debit->held_minor > 0 &&
		debit->balance_minor - debit->held_minor < req->amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in account " INT64_FORMAT, debit->id),
				 errdetail("The account holds %s, of which live holds reserve %s; the %s needs %s.",
						   PayextFormatAmount(debit->balance_minor, debit->currency),
						   PayextFormatAmount(debit->held_minor, debit->currency),
						   LedgerKindNoun(req->kind),
						   PayextFormatAmount(req->amount_minor, debit->currency)),
				 errhint("A hold ends when the merchant captures or voids it, or when it expires.")));
	if (LedgerStoresBalance(debit->kind) && debit->balance_minor < req->amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in account " INT64_FORMAT, debit->id),
				 errdetail("The account holds %s; the %s needs %s.",
						   PayextFormatAmount(debit->balance_minor, debit->currency),
						   LedgerKindNoun(req->kind),
						   PayextFormatAmount(req->amount_minor, debit->currency))));

	/*
	 * A system account is read with balance 0 (it stores none), so only the
	 * user side can overflow; its new value is not stored.
	 */
	if (pg_sub_s64_overflow(debit->balance_minor, req->amount_minor, debit_after) ||
		pg_add_s64_overflow(credit->balance_minor, req->amount_minor, credit_after))
		LedgerRaiseOverflow(req);

	/* Conservation: what leaves one side is what reaches the other. */
	Assert(debit->balance_minor - *debit_after == req->amount_minor);
	Assert(*credit_after - credit->balance_minor == req->amount_minor);
	/* No user account below zero, before or after. */
	Assert(!LedgerStoresBalance(debit->kind) || debit->balance_minor >= 0);
	/* Nor below what its live holds reserve. */
	Assert(!LedgerStoresBalance(debit->kind) || *debit_after >= debit->held_minor);
	Assert(!LedgerStoresBalance(credit->kind) ||
		   (credit->balance_minor >= 0 && *credit_after >= 0));

	/* Release-build check: a wallet or merchant below zero costs money. */
	if (LedgerStoresBalance(debit->kind) && *debit_after < 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("transfer would leave account " INT64_FORMAT " negative", debit->id)));
}

/* LedgerCheckTransfer() as a question: would the transfer pass? */
static bool
LedgerTransferPossible(const LedgerTransferRequest *req, const LedgerAccount *debit,
					   const LedgerAccount *credit)
{
	int64		after;

	return debit->status == LEDGER_ACTIVE &&
		credit->status == LEDGER_ACTIVE &&
		strcmp(debit->currency, credit->currency) == 0 &&
		(!LedgerStoresBalance(debit->kind) ||
		 debit->balance_minor - debit->held_minor >= req->amount_minor) &&
		!pg_add_s64_overflow(credit->balance_minor, req->amount_minor, &after);
}

/*
 * insert_transfer_plan's row (values, nulls as SPI takes them): true when
 * inserted, false when its reference was taken.  Without the executor
 * where direct.c can: LedgerTransfer() holds both accounts' rows locked,
 * which is what the journal's foreign keys would check.
 */
static bool
LedgerInsertJournal(Datum *values, const char *nulls)
{
	static const char *const cols[] = {"id", "debit_account", "credit_account",
		"amount", "currency", "kind", "idem_scope", "reference", "created_at",
	"checksum"};
	bool		isnull[lengthof(cols)];
	ItemPointerData conflict;
	int			inserted;

	for (int i = 0; i < (int) lengthof(cols); i++)
		isnull[i] = nulls[i] == 'n';
	inserted = PayextDirectInsertOrNothing(PayextDirectTransfer, "transfer_reference_key",
										   lengthof(cols), cols, values, isnull, true,
										   &conflict);
	if (inserted >= 0)
		return inserted == 1;
	return PayextExecute(&insert_transfer_plan, values, nulls, false, 0,
						 SPI_OK_INSERT) == 1;
}

static bool
LedgerAppendJournal(const LedgerTransferRequest *req, int64 transfer_id,
					const char *currency)
{
	TimestampTz created_at = GetCurrentTransactionStartTimestamp();
	Datum		values[10];
	char		nulls[10];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(req->debit_account);
	values[2] = Int64GetDatum(req->credit_account);
	values[3] = Int64GetDatum(req->amount_minor);
	values[4] = CStringGetTextDatum(currency);
	values[5] = CStringGetTextDatum(LedgerTransferKindName(req->kind));
	values[6] = Int64GetDatum(req->idem_scope);
	if (req->reference != NULL)
		values[7] = CStringGetTextDatum(req->reference);
	else
	{
		values[7] = (Datum) 0;
		nulls[7] = 'n';
	}
	values[8] = TimestampTzGetDatum(created_at);
	values[9] = PointerGetDatum(LedgerChecksum(transfer_id, req->debit_account,
											   req->credit_account,
											   req->amount_minor, currency,
											   LedgerTransferKindName(req->kind),
											   req->idem_scope,
											   req->reference, created_at));
	return LedgerInsertJournal(values, nulls);
}

/*
 * Sets the balance of an account whose row we locked (and whose tuple id
 * the lock gave), without the executor; false when direct.c declines.
 */
static bool
LedgerSetLockedBalance(const LedgerAccount *account, int64 after)
{
	static const char *const expect_cols[] = {"id", "balance"};
	static const char *const set_cols[] = {"balance"};
	int64		expect[2];
	Datum		set[1];

	expect[0] = account->id;
	expect[1] = account->balance_minor;
	set[0] = Int64GetDatum(after);
	return PayextDirectUpdate(PayextDirectAccount, (ItemPointer) &account->locked_tid,
							  2, expect_cols, expect, 1, set_cols, set, NULL);
}

int64
LedgerTransfer(const LedgerTransferRequest *req, bool *replayed)
{
	LedgerAccount debit = {0};
	LedgerAccount credit = {0};
	int64		debit_after;
	int64		credit_after;
	int64		transfer_id;
	Datum		values[4];
	uint64		user_sides;
	bool		replay_ignored;
	bool		via_bucket;

	Assert(req->kind != LEDGER_KIND_UNSET);
	if (replayed == NULL)
		replayed = &replay_ignored;
	*replayed = false;
	if (req->amount_minor <= 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_AMOUNT),
				 errmsg("amount must be positive")));
	if (req->debit_account == req->credit_account)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_SAME_ACCOUNT),
				 errmsg("cannot transfer from account " INT64_FORMAT " to itself",
						req->debit_account)));

	via_bucket = req->credit_via_bucket;
	if (via_bucket)
		LedgerLockForBucketCredit(req, &debit, &credit);
	else
	{
		LedgerLockPair(req, &debit, &credit);
		LedgerFoldCredits(&credit);
	}
	LedgerFoldCredits(&debit);
	debit.held_minor = LedgerHeld(&debit);
	/* A soft request asks first, before anything is written. */
	if (req->refuse_softly && !LedgerTransferPossible(req, &debit, &credit))
		return 0;

	/*----------
	 * The journal row goes in before any check, and its unique index on the
	 * reference is the only duplicate test: a plain lookup would leave
	 * SERIALIZABLE read locks on the index page that make unrelated
	 * transfers conflict, while ON CONFLICT's check leaves none.
	 *   - A replay of a committed request (also one that committed while we
	 *     waited for the account locks) conflicts here, and returns the first
	 *     transfer rather than, say, the "insufficient funds" the first one
	 *     caused.
	 *   - Two first attempts that share no account (one reference on two
	 *     wallets) meet at the index: the second waits for the first.
	 * Under REPEATABLE READ and SERIALIZABLE a conflicting row the snapshot
	 * cannot see raises 40001.  A refused transfer takes its journal row
	 * with it when the error rolls the statement back.
	 *----------
	 */
	transfer_id = PayextNextId("transfer_id_seq");
	if (!LedgerAppendJournal(req, transfer_id, debit.currency))
	{
		transfer_id = LedgerFindReplay(req);
		if (transfer_id == 0)
			elog(ERROR, "payext: conflicting transfer for reference \"%s\" is not visible",
				 req->reference);
		*replayed = true;
		return transfer_id;
	}
	LedgerCheckTransfer(req, &debit, &credit, &debit_after, &credit_after);
	if (req->debit_found != NULL)
		*req->debit_found = debit;
	if (req->credit_found != NULL)
		*req->credit_found = credit;

	if (via_bucket)
	{
		values[0] = Int64GetDatum(debit.id);
		values[1] = Int64GetDatum(debit_after);

		/*
		 * A wallet's row is as we locked it (wallets have no buckets to
		 * fold): set where the lock found it, without the executor.
		 */
		if (!(debit.kind == LEDGER_WALLET &&
			  LedgerSetLockedBalance(&debit, debit_after)) &&
			PayextExecute(&set_one_balance_plan, values, NULL, false, 0,
						  SPI_OK_UPDATE) != 1)
			elog(ERROR, "payext: balance of account " INT64_FORMAT " was not set", debit.id);
		LedgerCreditBucket(req, &credit);
		return transfer_id;
	}
	values[0] = Int64GetDatum(debit.id);
	values[1] = Int64GetDatum(debit_after);
	values[2] = Int64GetDatum(credit.id);
	values[3] = Int64GetDatum(credit_after);
	user_sides = LedgerStoresBalance(debit.kind) + LedgerStoresBalance(credit.kind);
	if (PayextExecute(&set_balances_plan, values, NULL, false, 0,
					  SPI_OK_UPDATE) != user_sides)
		elog(ERROR, "payext: balances of accounts " INT64_FORMAT " and " INT64_FORMAT " were not set",
			 debit.id, credit.id);
	return transfer_id;
}

/* ---------------------------------------------------------------------
 * Accounts
 * ---------------------------------------------------------------------
 */

/* Runs a lookup plan that yields one id, or returns 0. */
static int64
LedgerFindId(PayextPlan *plan, Datum *values)
{
	if (PayextExecute(plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	return DatumGetInt64(PayextResultDatum(0, 1));
}

/*
 * Finds the account by its natural key with find_plan, creating it when
 * missing.  Two sessions creating the same account at once are resolved by
 * the unique index: the second finds the first's row.
 */
static int64
LedgerGetOrCreateAccount(PayextPlan *find_plan, Datum *find_values,
						 const char *kind, const char *owner,
						 const char *public_service_id,
						 const char *display_name, const char *currency)
{
	int64		id = LedgerFindId(find_plan, find_values);
	Datum		values[7];
	char		nulls[7];

	if (id != 0)
		return id;

	memset(nulls, ' ', sizeof(nulls));
	id = PayextNextId("account_id_seq");
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(kind);
	values[2] = owner ? CStringGetTextDatum(owner) : (Datum) 0;
	nulls[2] = owner ? ' ' : 'n';
	values[3] = public_service_id ? CStringGetTextDatum(public_service_id) : (Datum) 0;
	nulls[3] = public_service_id ? ' ' : 'n';
	values[4] = display_name ? CStringGetTextDatum(display_name) : (Datum) 0;
	nulls[4] = display_name ? ' ' : 'n';
	values[5] = CStringGetTextDatum(currency);
	values[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (PayextExecute(&insert_account_plan, values, nulls, false, 0,
					  SPI_OK_INSERT) == 1)
		return id;

	id = LedgerFindId(find_plan, find_values);
	if (id == 0)
		elog(ERROR, "payext: concurrently created %s account is not visible", kind);
	return id;
}

int64
LedgerSystemAccount(const char *currency)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(currency);
	return LedgerGetOrCreateAccount(&find_system_plan, values, "system",
									NULL, NULL, NULL, currency);
}

/* The partition's clearing account of a currency, made on first use. */
int64
LedgerClearingAccount(const char *currency)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(currency);
	return LedgerGetOrCreateAccount(&find_clearing_plan, values, "clearing",
									NULL, NULL, NULL, currency);
}

/*
 * The kind and currency of an account, and its currency's system account
 * id (0 when not yet created).  Raises when the account does not exist.
 */
static void
LedgerAccountInfo(int64 account_id, LedgerAccountKind *kind,
				  char *currency, int64 *system_id)
{
	Datum		values[1];
	bool		isnull;

	values[0] = Int64GetDatum(account_id);
	if (PayextExecute(&account_info_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist", account_id)));
	*kind = LedgerParseAccountKind(PayextResultCString(0, 1));
	strlcpy(currency, PayextResultCString(0, 2), 4);
	*system_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		*system_id = 0;
}

static void
LedgerRefuseSystemAccount(int64 account_id, LedgerAccountKind kind, const char *what)
{
	if (kind == LEDGER_SYSTEM)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_WRONG_ACCOUNT_KIND),
				 errmsg("account " INT64_FORMAT " is a system account", account_id),
				 errdetail("System accounts are where external money enters and leaves; they cannot be used for %s.", what)));
	if (kind == LEDGER_CLEARING)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_WRONG_ACCOUNT_KIND),
				 errmsg("account " INT64_FORMAT " is a clearing account", account_id),
				 errdetail("A clearing account holds money on its way between partitions; only a saga's legs move it, never %s.", what)));
}

/* top_up and withdraw: money crossing the ledger's edge. */
static int64
LedgerExternalTransfer(int64 account_id, int64 amount_minor,
					   const char *external_ref, bool inbound, Oid invoker)
{
	LedgerAccountKind kind;
	char		currency[4];
	int64		system_id;
	LedgerTransferRequest req = {0};

	LedgerAccountInfo(account_id, &kind, currency, &system_id);
	LedgerRefuseSystemAccount(account_id, kind, inbound ? "a top-up" : "a withdrawal");

	/*
	 * A merchant's money leaves only at the hands of that merchant or an
	 * admin.
	 */
	if (!inbound && OidIsValid(invoker))
		RolesRequireAccountAccess(invoker, account_id, RolesAccountKindOf(kind));
	if (inbound && kind != LEDGER_WALLET)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_WRONG_ACCOUNT_KIND),
				 errmsg("account " INT64_FORMAT " is not a wallet account", account_id),
				 errdetail("Money from outside enters wallets only; merchants are paid by charges.")));
	if (system_id == 0)
		system_id = LedgerSystemAccount(currency);

	req.debit_account = inbound ? system_id : account_id;
	req.credit_account = inbound ? account_id : system_id;
	req.amount_minor = amount_minor;
	req.kind = inbound ? LEDGER_TOP_UP : LEDGER_WITHDRAW;
	req.idem_scope = 0;
	req.reference = external_ref;
	return LedgerTransfer(&req, NULL);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* open_wallet(owner text, currency text DEFAULT 'CNY') RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_open_wallet);
Datum
payext_open_wallet(PG_FUNCTION_ARGS)
{
	char	   *owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);
	const PayextCurrency *currency = PayextArgCurrency(fcinfo, 1, "currency");
	Datum		values[2];
	int64		id;

	PayextSpiConnect();
	values[0] = CStringGetTextDatum(owner);
	values[1] = CStringGetTextDatum(currency->code);
	id = LedgerGetOrCreateAccount(&find_wallet_plan, values, "wallet",
								  owner, NULL, NULL, currency->code);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/*
 * open_merchant(public_service_id text, display_name text,
 *				 currency text DEFAULT 'CNY') RETURNS bigint
 */
PG_FUNCTION_INFO_V1(payext_open_merchant);
Datum
payext_open_merchant(PG_FUNCTION_ARGS)
{
	char	   *psid = PayextArgIdentifier(fcinfo, 0, "public_service_id",
										   PAYEXT_MAX_IDENTIFIER_LEN);
	char	   *display_name = PayextArgIdentifier(fcinfo, 1, "display_name",
												   PAYEXT_MAX_DISPLAY_NAME_LEN);
	const PayextCurrency *currency = PayextArgCurrency(fcinfo, 2, "currency");
	Datum		values[2];
	int64		id;

	PayextSpiConnect();
	values[0] = CStringGetTextDatum(psid);
	values[1] = CStringGetTextDatum(currency->code);
	id = LedgerGetOrCreateAccount(&find_merchant_plan, values, "merchant",
								  NULL, psid, display_name, currency->code);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/* top_up(wallet bigint, amount bigint, external_ref text) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_top_up);
Datum
payext_top_up(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"wallet", "amount", "external_ref"};
	int64		wallet;
	int64		amount;
	char	   *external_ref;
	int64		id;

	PayextRequireArgs(fcinfo, 3, names);
	wallet = PG_GETARG_INT64(0);
	amount = PayextArgAmount(fcinfo, 1, "amount");
	external_ref = PayextArgIdentifier(fcinfo, 2, "external_ref",
									   PAYEXT_MAX_REFERENCE_LEN);
	PayextSpiConnect();
	id = LedgerExternalTransfer(wallet, amount, external_ref, true, InvalidOid);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/* withdraw(account bigint, amount bigint, external_ref text) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_withdraw);
Datum
payext_withdraw(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"account", "amount", "external_ref"};
	int64		account;
	int64		amount;
	char	   *external_ref;
	int64		id;
	RolesSwitch sw;

	PayextRequireArgs(fcinfo, 3, names);
	account = PG_GETARG_INT64(0);
	amount = PayextArgAmount(fcinfo, 1, "amount");
	external_ref = PayextArgIdentifier(fcinfo, 2, "external_ref",
									   PAYEXT_MAX_REFERENCE_LEN);
	RolesBecomeOwner(fcinfo, &sw);
	PayextSpiConnect();
	id = LedgerExternalTransfer(account, amount, external_ref, false, sw.invoker);
	PayextSpiFinish();
	RolesRestore(&sw);
	PG_RETURN_INT64(id);
}

/*
 * transfer(debit_account bigint, credit_account bigint, amount bigint,
 *			reference text DEFAULT NULL) RETURNS bigint
 *
 * A direct transfer between two user accounts, for administrators
 * (corrections, goodwill credits).  Flows use their own functions.
 */
PG_FUNCTION_INFO_V1(payext_transfer);
Datum
payext_transfer(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"debit_account", "credit_account", "amount"};
	LedgerTransferRequest req = {0};
	LedgerAccountKind kind;
	char		currency[4];
	int64		system_id;
	int64		id;

	PayextRequireArgs(fcinfo, 3, names);
	req.debit_account = PG_GETARG_INT64(0);
	req.credit_account = PG_GETARG_INT64(1);
	req.amount_minor = PayextArgAmount(fcinfo, 2, "amount");
	req.kind = LEDGER_TRANSFER;
	req.reference = PG_ARGISNULL(3) ? NULL :
		PayextArgIdentifier(fcinfo, 3, "reference", PAYEXT_MAX_REFERENCE_LEN);

	PayextSpiConnect();
	LedgerAccountInfo(req.debit_account, &kind, currency, &system_id);
	LedgerRefuseSystemAccount(req.debit_account, kind, "a direct transfer");
	LedgerAccountInfo(req.credit_account, &kind, currency, &system_id);
	LedgerRefuseSystemAccount(req.credit_account, kind, "a direct transfer");
	id = LedgerTransfer(&req, NULL);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/*
 * clearing_transfer(account bigint, amount bigint, kind text, saga uuid,
 * scope bigint DEFAULT 0) RETURNS bigint: one leg of a saga (src/sql/saga.sql), between a wallet or
 * merchant of this partition and the partition's clearing account of its
 * currency.  'clearing_out' takes the money from the account, 'clearing_in'
 * and 'clearing_back' give it; the saga's id is the reference, so a leg
 * repeated after a crash returns its first transfer.  Granted to nobody:
 * the saga functions, which run as payext's owner, decide when a leg runs.
 */
PG_FUNCTION_INFO_V1(payext_clearing_transfer);
Datum
payext_clearing_transfer(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"account", "amount", "kind", "saga"};
	static const char *const leg_names[] = {"clearing_out", "clearing_in", "clearing_back"};
	static const LedgerTransferKind leg_kinds[] = {
		LEDGER_CLEARING_OUT, LEDGER_CLEARING_IN, LEDGER_CLEARING_BACK
	};
	LedgerTransferRequest req = {0};
	LedgerAccountKind kind;
	char		currency[4];
	int64		system_id;
	int64		clearing_id;
	int			leg;
	int64		id;

	PayextRequireArgs(fcinfo, 4, names);
	leg = PayextParseWord(text_to_cstring(PG_GETARG_TEXT_PP(2)), leg_names,
						  lengthof(leg_names), "saga leg");
	req.amount_minor = PayextArgAmount(fcinfo, 1, "amount");
	req.kind = leg_kinds[leg];
	/* A received leg's reference is the saga's within its sender's. */
	req.idem_scope = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_INT64(4) : 0;
	req.reference = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(3)));

	PayextSpiConnect();
	LedgerAccountInfo(PG_GETARG_INT64(0), &kind, currency, &system_id);
	LedgerRefuseSystemAccount(PG_GETARG_INT64(0), kind, "a saga's leg");
	clearing_id = LedgerClearingAccount(currency);
	req.debit_account = req.kind == LEDGER_CLEARING_OUT ? PG_GETARG_INT64(0) : clearing_id;
	req.credit_account = req.kind == LEDGER_CLEARING_OUT ? clearing_id : PG_GETARG_INT64(0);
	id = LedgerTransfer(&req, NULL);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/*
 * The balance of a system account: the journal's sum.  It may lie outside
 * bigint (every wallet of a currency could hold near the maximum); then
 * numeric's own range error (22003) is raised.
 */
static int64
LedgerSystemBalance(int64 account_id)
{
	Datum		values[1];
	char	   *sum;

	values[0] = Int64GetDatum(account_id);
	PayextExecute(&system_balance_plan, values, NULL, true, 1, SPI_OK_SELECT);
	sum = PayextResultCString(0, 1);
	return DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(sum)));
}

/*
 * balance() and available_balance(): the balance, or the balance less what
 * a wallet's live holds reserve, for callers who may read the account.
 */
static Datum
LedgerBalanceFunction(FunctionCallInfo fcinfo, bool available)
{
	static const char *const names[] = {"account"};
	Datum		values[1];
	int64		balance;
	RolesAccountKind kind;
	RolesSwitch sw;

	PayextRequireArgs(fcinfo, 1, names);
	values[0] = PG_GETARG_DATUM(0);
	RolesBecomeOwner(fcinfo, &sw);
	PayextSpiConnect();
	if (PayextExecute(&balance_plan, values, NULL, true, 1, SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist",
						PG_GETARG_INT64(0))));
	kind = DatumGetBool(PayextResultDatum(0, 3)) ? ROLES_ACCOUNT_MERCHANT :
		DatumGetBool(PayextResultDatum(0, 2)) ? ROLES_ACCOUNT_SYSTEM :
		ROLES_ACCOUNT_WALLET;
	/* A system account stores no balance: NULL, its sum computed after. */
	balance = kind == ROLES_ACCOUNT_SYSTEM ? 0 : DatumGetInt64(PayextResultDatum(0, 1));
	/* Judged before a system account's sum is computed, not after. */
	RolesRequireAccountAccess(sw.invoker, PG_GETARG_INT64(0), kind);
	if (kind == ROLES_ACCOUNT_SYSTEM)
		balance = LedgerSystemBalance(PG_GETARG_INT64(0));
	if (available && kind == ROLES_ACCOUNT_WALLET)
	{
		/* In the same snapshot as the balance (read-only, no new one). */
		PayextExecute(&held_plan, values, NULL, true, 1, SPI_OK_SELECT);
		balance -= DatumGetInt64(PayextResultDatum(0, 1));
	}
	PayextSpiFinish();
	RolesRestore(&sw);
	PG_RETURN_INT64(balance);
}

/* balance(account bigint) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_balance);
Datum
payext_balance(PG_FUNCTION_ARGS)
{
	return LedgerBalanceFunction(fcinfo, false);
}

/* available_balance(account bigint) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_available_balance);
Datum
payext_available_balance(PG_FUNCTION_ARGS)
{
	return LedgerBalanceFunction(fcinfo, true);
}

/*
 * payext.status_change: the merchant account whose status this function
 * call is changing, after it has folded the account's buckets.  The trigger
 * account_status_guard refuses any change of a merchant's status without
 * it, so that an UPDATE by hand (or any code that folds nothing) cannot
 * freeze or close a merchant over credits it has not seen.  Set with GUC_ACTION_LOCAL in the
 * superuser's context: it ends with the function call (its SET clause) and
 * no ordinary role can set it.
 */
static char *payext_status_change = NULL;

void
LedgerInit(void)
{
	DefineCustomStringVariable("payext.status_change",
							   "Merchant account whose status payext is changing (internal).",
							   "Set by freeze(), unfreeze() and close_account() after they fold the merchant's credit buckets.",
							   &payext_status_change,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
}

static void
LedgerMarkStatusChange(int64 account_id)
{
	char		id[MAXINT8LEN + 1];

	snprintf(id, sizeof(id), INT64_FORMAT, account_id);
	(void) set_config_option("payext.status_change", id, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * Moves an account to status `target`.
 * Closed is final; closing needs a zero balance.
 */
static void
LedgerSetStatus(int64 account_id, LedgerAccountStatus target)
{
	Datum		values[2];
	LedgerAccountKind kind;
	LedgerAccountStatus status;
	int64		balance;

	values[0] = Int64GetDatum(account_id);
	if (PayextExecute(&lock_one_account_plan, values, NULL, false, 1,
					  SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist", account_id)));
	kind = LedgerParseAccountKind(PayextResultCString(0, 1));
	LedgerRefuseSystemAccount(account_id, kind, "a change of status");
	status = LedgerParseAccountStatus(PayextResultCString(0, 2));
	balance = DatumGetInt64(PayextResultDatum(0, 3));
	if (kind == LEDGER_MERCHANT)
	{
		/* Its buckets count: fold them (we hold the row). */
		if (PayextExecuteLatest(&fold_credits_plan, values, NULL,
								SPI_OK_UPDATE_RETURNING) == 1)
			balance = DatumGetInt64(PayextResultDatum(0, 1));
	}

	if (status == target)
		return;
	if (status == LEDGER_CLOSED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_CLOSED),
				 errmsg("account " INT64_FORMAT " is closed", account_id),
				 errdetail("Closing an account is final.")));
	if (target == LEDGER_CLOSED && balance != 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_EMPTY),
				 errmsg("account " INT64_FORMAT " still holds money", account_id),
				 errdetail("Its balance is " INT64_FORMAT ".", balance),
				 errhint("Withdraw the balance first.")));
	/* Money on its way to another partition may have to come back here. */
	if (target == LEDGER_CLOSED)
	{
		int64		open_sagas;

		PayextExecute(&open_sagas_plan, values, NULL, false, 1, SPI_OK_SELECT);
		open_sagas = DatumGetInt64(PayextResultDatum(0, 1));
		if (open_sagas > 0)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_ACCOUNT_NOT_EMPTY),
					 errmsg("account " INT64_FORMAT " has money in flight to another partition",
							account_id),
					 errdetail(INT64_FORMAT " saga(s) that took money from it are still open.",
							   open_sagas),
					 errhint("Let them finish (payext_router's resume_sagas()), then close it.")));
	}

	if (kind == LEDGER_MERCHANT)
		LedgerMarkStatusChange(account_id);
	values[1] = CStringGetTextDatum(account_status_names[target]);
	PayextExecute(&set_status_plan, values, NULL, false, 0, SPI_OK_UPDATE);
}

static Datum
LedgerStatusFunction(FunctionCallInfo fcinfo, LedgerAccountStatus target)
{
	static const char *const names[] = {"account"};

	PayextRequireArgs(fcinfo, 1, names);
	PayextSpiConnect();
	LedgerSetStatus(PG_GETARG_INT64(0), target);
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/* freeze(account bigint) RETURNS void */
PG_FUNCTION_INFO_V1(payext_freeze);
Datum
payext_freeze(PG_FUNCTION_ARGS)
{
	return LedgerStatusFunction(fcinfo, LEDGER_FROZEN);
}

/* unfreeze(account bigint) RETURNS void */
PG_FUNCTION_INFO_V1(payext_unfreeze);
Datum
payext_unfreeze(PG_FUNCTION_ARGS)
{
	return LedgerStatusFunction(fcinfo, LEDGER_ACTIVE);
}

/* close_account(account bigint) RETURNS void */
PG_FUNCTION_INFO_V1(payext_close_account);
Datum
payext_close_account(PG_FUNCTION_ARGS)
{
	return LedgerStatusFunction(fcinfo, LEDGER_CLOSED);
}

/*
 * transfer_checksum(id bigint, debit_account bigint, credit_account bigint,
 *					 amount bigint, currency text, kind text, idem_scope bigint,
 *					 reference text, created_at timestamptz) RETURNS bytea
 */
PG_FUNCTION_INFO_V1(payext_transfer_checksum);
Datum
payext_transfer_checksum(PG_FUNCTION_ARGS)
{
	for (int i = 0; i < 9; i++)
	{
		/* Only the reference may be null. */
		if (i != 7 && PG_ARGISNULL(i))
			PG_RETURN_NULL();
	}
	PG_RETURN_BYTEA_P(LedgerChecksum(PG_GETARG_INT64(0), PG_GETARG_INT64(1),
									 PG_GETARG_INT64(2), PG_GETARG_INT64(3),
									 text_to_cstring(PG_GETARG_TEXT_PP(4)),
									 text_to_cstring(PG_GETARG_TEXT_PP(5)),
									 PG_GETARG_INT64(6),
									 PG_ARGISNULL(7) ? NULL :
									 text_to_cstring(PG_GETARG_TEXT_PP(7)),
									 PG_GETARG_TIMESTAMPTZ(8)));
}

/* journal_guard() RETURNS trigger: refuses UPDATE, DELETE and TRUNCATE. */
PG_FUNCTION_INFO_V1(payext_journal_guard);
Datum
payext_journal_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *operation;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payext: journal_guard() must be called as a trigger");

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		operation = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		operation = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		operation = "TRUNCATE";
	else
		operation = "this operation";

	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_JOURNAL_APPEND_ONLY),
			 errmsg("the journal is append-only"),
			 errdetail("%s on %s is refused.", operation,
					   RelationGetRelationName(trigdata->tg_relation)),
			 errhint("Correct a transfer with a new transfer in the opposite direction.")));
	PG_RETURN_NULL();			/* not reached */
}
