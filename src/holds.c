/*
 * holds.c
 *		Holds (pre-authorisation): authorize(), capture_hold(), void_hold().
 *
 * A hold reserves part of a wallet for one merchant.  What it reserves is
 * its amount less what was captured, while it is open and not expired:
 * expiry is a comparison with the transaction's time wherever a hold is
 * read (LedgerHeld(), the payext.hold view), so an expired hold holds
 * nothing without any job having run.
 *
 * The invariant, a wallet's balance less its live holds never below zero,
 * rests on one rule: whatever takes money from a wallet, or reserves it,
 * holds the wallet's row FOR NO KEY UPDATE and checks against the
 * available balance (ledger.c, LedgerCheckTransfer()).  A new hold also
 * updates the wallet's row (held_until), so that under REPEATABLE READ and
 * SERIALIZABLE a payment whose snapshot predates it meets a changed row and
 * fails with 40001 rather than missing it.  A capture lowers the hold's
 * remainder before its transfer is checked, so that it takes from what the
 * hold reserved, not from what is left around it.
 *
 * Locks, in order: the merchant's row (FOR UPDATE for authorize(), as a
 * reversal takes it; FOR KEY SHARE for a capture, as a charge does), the
 * payment code or the hold, then the accounts in id order.  void_hold()
 * locks the hold alone: it only ever frees money.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "association.h"
#include "codes.h"
#include "errors.h"
#include "events.h"
#include "holds.h"
#include "ledger.h"
#include "money.h"
#include "payext_limits.h"
#include "spi_util.h"

/* payext.hold_entry.state */
typedef enum HoldState
{
	HOLD_OPEN,
	HOLD_CAPTURED,
	HOLD_VOIDED
} HoldState;

static const char *const hold_state_names[] = {
	[HOLD_OPEN] = "open",
	[HOLD_CAPTURED] = "captured",
	[HOLD_VOIDED] = "voided",
};

/* A hold's row, locked. */
typedef struct HoldRow
{
	int64		id;
	int64		wallet;
	int64		merchant;
	char	   *order_ref;
	int64		amount;
	int64		captured;
	HoldState	state;
	bool		expired;
	bool		for_stay;		/* a parking lot's entry hold */
} HoldRow;

static PayextPlan insert_hold_plan = {
	"INSERT INTO payext.hold_entry"
	" (id, wallet, merchant, order_ref, code_serial, stay, amount, expires_at, created_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	" ON CONFLICT ON CONSTRAINT hold_order_key DO NOTHING",
	9, {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static PayextPlan extend_held_until_plan = {
	"UPDATE payext.account SET held_until = greatest(held_until, $2) WHERE id = $1",
	2, {INT8OID, TIMESTAMPTZOID}
};

/* Another merchant's hold is neither locked nor waited for. */
/*
 * A merchant's first hold marks its row (held_until), so that its charges
 * look for holds under their orders; a merchant that never made one
 * spares its charges that look (CodesRequireOpenOrder()).  Once: later
 * holds write nothing to the merchant's row.
 */
static PayextPlan mark_merchant_holds_plan = {
	"UPDATE payext.account SET held_until = $2 WHERE id = $1 AND held_until IS NULL",
	2, {INT8OID, TIMESTAMPTZOID}
};

static PayextPlan lock_hold_plan = {
	"SELECT id, wallet, merchant, order_ref, amount, captured, state,"
	"       expires_at <= now(), stay IS NOT NULL"
	"  FROM payext.hold_entry WHERE id = $1 AND merchant = $2"
	"   FOR NO KEY UPDATE",
	2, {INT8OID, INT8OID}
};

static PayextPlan find_hold_plan = {
	"SELECT 1 FROM payext.hold_entry WHERE id = $1 AND merchant = $2",
	2, {INT8OID, INT8OID}
};

static PayextPlan set_hold_plan = {
	"UPDATE payext.hold_entry SET captured = $2, state = $3,"
	"       closed_at = CASE WHEN $3 = 'open' THEN NULL ELSE now() END"
	" WHERE id = $1",
	3, {INT8OID, INT8OID, TEXTOID}
};

static PayextPlan find_capture_plan = {
	"SELECT hold, amount FROM payext.hold_capture WHERE transfer_id = $1",
	1, {INT8OID}
};

static PayextPlan insert_capture_plan = {
	"INSERT INTO payext.hold_capture (transfer_id, hold, amount, created_at)"
	" VALUES ($1, $2, $3, $4)",
	4, {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}
};

static void
HoldsRaiseUnknown(int64 hold_id)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_UNKNOWN_HOLD),
			 errmsg("hold " INT64_FORMAT " is not this merchant's", hold_id),
			 errdetail("There is no such hold of the merchant account.")));
}

int64
HoldsCreate(int64 wallet_id, const LedgerAccount *merchant, const char *order_ref,
			int64 code_serial, int64 stay, int64 amount_minor,
			TimestampTz expires_at, bool soft)
{
	LedgerAccount wallet;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		values[9];
	char		nulls[9];
	int64		hold_id;

	Assert(amount_minor > 0);
	if (!LedgerLockWallet(wallet_id, &wallet))
		elog(ERROR, "payext: wallet " INT64_FORMAT " went away", wallet_id);
	if (soft && (wallet.status != LEDGER_ACTIVE || merchant->status != LEDGER_ACTIVE ||
				 strcmp(wallet.currency, merchant->currency) != 0 ||
				 wallet.balance_minor - wallet.held_minor < amount_minor))
		return 0;
	LedgerCheckActiveAs(&wallet, true);
	LedgerCheckActiveAs(merchant, false);
	if (strcmp(wallet.currency, merchant->currency) != 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CURRENCY_MISMATCH),
				 errmsg("the customer's wallet holds another currency than account " INT64_FORMAT,
						merchant->id),
				 errdetail("Account " INT64_FORMAT " holds %s.", merchant->id, merchant->currency),
				 errhint("Ask the customer for a code of a wallet in %s.", merchant->currency)));
	if (wallet.balance_minor - wallet.held_minor < amount_minor)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in the customer's wallet"),
				 errdetail("The hold needs %s.", PayextFormatAmount(amount_minor, merchant->currency)),
				 errhint("Ask the customer to top up, or to pay another way.")));

	memset(nulls, ' ', sizeof(nulls));
	hold_id = PayextNextId("hold_id_seq");
	values[0] = Int64GetDatum(hold_id);
	values[1] = Int64GetDatum(wallet_id);
	values[2] = Int64GetDatum(merchant->id);
	values[3] = CStringGetTextDatum(order_ref);
	values[4] = Int64GetDatum(code_serial);
	nulls[4] = code_serial != 0 ? ' ' : 'n';
	values[5] = Int64GetDatum(stay);
	nulls[5] = stay != 0 ? ' ' : 'n';
	values[6] = Int64GetDatum(amount_minor);
	values[7] = TimestampTzGetDatum(expires_at);
	values[8] = TimestampTzGetDatum(now);
	if (PayextExecute(&insert_hold_plan, values, nulls, false, 0, SPI_OK_INSERT) != 1)
	{
		/* authorize() looked first, under the merchant's lock. */
		if (soft)
			return 0;
		elog(ERROR, "payext: order \"%s\" has a hold already", order_ref);
	}
	values[1] = TimestampTzGetDatum(expires_at);
	values[0] = Int64GetDatum(wallet_id);
	PayextExecute(&extend_held_until_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	values[0] = Int64GetDatum(merchant->id);
	PayextExecute(&mark_merchant_holds_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	return hold_id;
}

/*
 * Locks the hold; PY601 unless it is the merchant's, PY609 for a parking
 * stay's entry hold (its exit takes it).  Under REPEATABLE READ and
 * SERIALIZABLE a hold made after the snapshot is 40001.
 */
static void
HoldsLock(int64 merchant_id, int64 hold_id, HoldRow *hold)
{
	Datum		values[2];

	values[0] = Int64GetDatum(hold_id);
	values[1] = Int64GetDatum(merchant_id);
	if (PayextExecute(&lock_hold_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
	{
		if (IsolationUsesXactSnapshot() &&
			PayextExecuteLatestRead(&find_hold_plan, values, NULL) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access: the hold was made after this transaction's snapshot"),
					 errhint("Retry the transaction.")));
		HoldsRaiseUnknown(hold_id);
	}
	hold->id = hold_id;
	hold->wallet = DatumGetInt64(PayextResultDatum(0, 2));
	hold->merchant = DatumGetInt64(PayextResultDatum(0, 3));
	hold->order_ref = PayextResultCString(0, 4);
	hold->amount = DatumGetInt64(PayextResultDatum(0, 5));
	hold->captured = DatumGetInt64(PayextResultDatum(0, 6));
	hold->state = (HoldState) PayextParseWord(PayextResultCString(0, 7), hold_state_names,
											  lengthof(hold_state_names), "hold state");
	hold->expired = DatumGetBool(PayextResultDatum(0, 8));
	hold->for_stay = DatumGetBool(PayextResultDatum(0, 9));
	if (hold->merchant != merchant_id)
		HoldsRaiseUnknown(hold_id);
	if (hold->for_stay)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_FOR_STAY),
				 errmsg("hold " INT64_FORMAT " is a parking stay's entry hold", hold_id),
				 errdetail("The stay's exit takes what it costs from the hold and releases the rest."),
				 errhint("The stay's payment is the exit's, or pay_parking's.")));
}

/* Refuses a capture of a hold that can take none. */
static void
HoldsRequireCapturable(const HoldRow *hold)
{
	if (hold->state == HOLD_VOIDED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_VOIDED),
				 errmsg("hold " INT64_FORMAT " was voided", hold->id),
				 errdetail("A voided hold holds nothing.")));
	if (hold->state == HOLD_CAPTURED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_CAPTURED),
				 errmsg("hold " INT64_FORMAT " is captured", hold->id),
				 errdetail("It was captured in full, or by a final capture that released the rest.")));
	if (hold->expired)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_EXPIRED),
				 errmsg("hold " INT64_FORMAT " has expired", hold->id),
				 errdetail("An expired hold holds nothing and can no longer be captured."),
				 errhint("Charge the customer with a new payment code.")));
}

/*
 * A capture_ref used before: its transfer when it was this capture (this
 * hold, this amount), PY607 when it was another, 0 when it is new.
 */
static int64
HoldsFindCapture(int64 merchant_id, int64 hold_id, int64 amount_minor,
				 const char *capture_ref)
{
	int64		transfer_id = LedgerFindReference(LEDGER_CAPTURE, merchant_id, capture_ref);
	Datum		values[1];

	if (transfer_id == 0)
		return 0;
	values[0] = Int64GetDatum(transfer_id);
	if (PayextExecute(&find_capture_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1 &&
		DatumGetInt64(PayextResultDatum(0, 1)) == hold_id &&
		DatumGetInt64(PayextResultDatum(0, 2)) == amount_minor)
		return transfer_id;
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_CAPTURE_CONFLICT),
			 errmsg("capture reference \"%s\" was already used for another capture", capture_ref),
			 errdetail("Transfer " INT64_FORMAT " captured under it.", transfer_id),
			 errhint("A retry must repeat the original hold and amount; a new capture needs a new reference.")));
	return 0;					/* not reached */
}

int64
HoldsCapture(int64 merchant_id, int64 hold_id, int64 amount_minor,
			 const char *capture_ref, bool final, bool lock_merchant)
{
	LedgerAccount merchant;
	LedgerAccount wallet_found = {0};
	LedgerAccount merchant_found = {0};
	LedgerTransferRequest req = {0};
	HoldRow		hold;
	Datum		values[4];
	int64		transfer_id;
	int64		captured;
	bool		subscribed = false;
	bool		replayed;
	HoldState	state;

	LedgerReadAccount(merchant_id, &merchant);
	LedgerRequireKind(&merchant, LEDGER_MERCHANT, "account a capture pays");
	if (lock_merchant)
		subscribed = CodesLockMerchantForPayment(merchant_id);
	HoldsLock(merchant_id, hold_id, &hold);
	transfer_id = HoldsFindCapture(merchant_id, hold_id, amount_minor, capture_ref);
	if (transfer_id != 0)
		return transfer_id;
	HoldsRequireCapturable(&hold);
	if (amount_minor > hold.amount - hold.captured)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CAPTURE_EXCEEDS),
				 errmsg("capture exceeds what hold " INT64_FORMAT " reserves", hold_id),
				 errdetail("The hold reserves %s; the capture is %s.",
						   PayextFormatAmount(hold.amount - hold.captured, merchant.currency),
						   PayextFormatAmount(amount_minor, merchant.currency))));

	/* The hold gives up what the transfer takes, before it is checked. */
	captured = hold.captured + amount_minor;
	state = (final || captured == hold.amount) ? HOLD_CAPTURED : HOLD_OPEN;
	values[0] = Int64GetDatum(hold_id);
	values[1] = Int64GetDatum(captured);
	values[2] = CStringGetTextDatum(hold_state_names[state]);
	PayextExecute(&set_hold_plan, values, NULL, false, 0, SPI_OK_UPDATE);

	req.debit_account = hold.wallet;
	req.credit_account = merchant_id;
	req.amount_minor = amount_minor;
	req.kind = LEDGER_CAPTURE;
	req.idem_scope = merchant_id;
	req.reference = capture_ref;
	req.caller_checks_replay = true;
	req.credit_via_bucket = true;
	req.conceal_debit = true;
	req.debit_found = &wallet_found;
	req.credit_found = &merchant_found;
	transfer_id = LedgerTransfer(&req, &replayed);
	if (replayed)
	{
		/*
		 * The reference came to another hold's capture while we waited
		 * (PY607).  This hold's own cannot have: its row is locked.
		 */
		HoldsFindCapture(merchant_id, hold_id, amount_minor, capture_ref);
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("capture \"%s\" of hold " INT64_FORMAT " was made twice", capture_ref, hold_id)));
	}

	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(hold_id);
	values[2] = Int64GetDatum(amount_minor);
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&insert_capture_plan, values, NULL, false, 0, SPI_OK_INSERT);
	AssocRecordTransfer(transfer_id, "payment", &wallet_found, &merchant_found,
						amount_minor);
	if (!lock_merchant)
		subscribed = EventsSubscribed(merchant_id);
	if (subscribed)
		EventsNotify(merchant_id, "capture", transfer_id, hold.order_ref, amount_minor,
					 merchant.currency, GetCurrentTransactionStartTimestamp());
	return transfer_id;
}

int64
HoldsVoid(int64 merchant_id, int64 hold_id)
{
	HoldRow		hold;
	Datum		values[3];
	int64		released;

	HoldsLock(merchant_id, hold_id, &hold);
	if (hold.state == HOLD_VOIDED)
		return 0;
	if (hold.state == HOLD_CAPTURED)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_CAPTURED),
				 errmsg("hold " INT64_FORMAT " is captured", hold_id),
				 errdetail("It was captured in full, or by a final capture that released the rest; it reserves nothing to void.")));
	released = hold.expired ? 0 : hold.amount - hold.captured;
	values[0] = Int64GetDatum(hold_id);
	values[1] = Int64GetDatum(hold.captured);
	values[2] = CStringGetTextDatum(hold_state_names[HOLD_VOIDED]);
	PayextExecute(&set_hold_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	return released;
}

/* The expires_in argument as a moment (NULL: 7 days from now). */
static TimestampTz
HoldsExpiry(FunctionCallInfo fcinfo, int argno)
{
	int64		usec = INT64CONST(7) * USECS_PER_DAY;

	if (!PG_ARGISNULL(argno) &&
		(!PayextIntervalUsec(PG_GETARG_INTERVAL_P(argno), &usec) ||
		 usec < PAYEXT_MIN_HOLD_S * USECS_PER_SEC ||
		 usec > (int64) PAYEXT_MAX_HOLD_S * USECS_PER_SEC))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_HOLD_BAD_EXPIRY),
				 errmsg("expires_in must be between 1 second and 30 days"),
				 errdetail("A hold lasts at most 30 days; capture it, or ask for a new one.")));
	return GetCurrentTransactionStartTimestamp() + usec;
}

/*
 * authorize(merchant bigint, code text, amount bigint, order_ref text,
 *			 expires_in interval) RETURNS bigint
 */
PG_FUNCTION_INFO_V1(payext_authorize);
Datum
payext_authorize(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "code", "amount", "order_ref"};
	text	   *code;
	int64		amount;
	char	   *order_ref;
	TimestampTz expires_at;
	int64		hold_id;

	PayextRequireArgs(fcinfo, 4, names);
	code = PG_GETARG_TEXT_PP(1);
	amount = PayextArgAmount(fcinfo, 2, "amount");
	order_ref = PayextArgIdentifier(fcinfo, 3, "order_ref", PAYEXT_MAX_REFERENCE_LEN);
	if (strncmp(order_ref, HOLDS_STAY_ORDER_PREFIX, strlen(HOLDS_STAY_ORDER_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_IDENTIFIER),
				 errmsg("argument \"order_ref\" of a hold may not start with \"%s\"",
						HOLDS_STAY_ORDER_PREFIX),
				 errdetail("Those order references are parking lots' entry holds."),
				 errhint("Choose another order reference.")));
	expires_at = HoldsExpiry(fcinfo, 4);

	PayextSpiConnect();
	hold_id = CodesAuthorize(PG_GETARG_INT64(0), VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code),
							 amount, order_ref, expires_at);
	PayextSpiFinish();
	PG_RETURN_INT64(hold_id);
}

/*
 * capture_hold(merchant bigint, hold bigint, amount bigint, capture_ref text,
 *				final boolean) RETURNS bigint
 */
PG_FUNCTION_INFO_V1(payext_capture_hold);
Datum
payext_capture_hold(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "hold", "amount", "capture_ref", "final"};
	int64		amount;
	char	   *capture_ref;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 5, names);
	amount = PayextArgAmount(fcinfo, 2, "amount");
	capture_ref = PayextArgIdentifier(fcinfo, 3, "capture_ref", PAYEXT_MAX_REFERENCE_LEN);

	PayextSpiConnect();
	transfer_id = HoldsCapture(PG_GETARG_INT64(0), PG_GETARG_INT64(1), amount, capture_ref,
							   PG_GETARG_BOOL(4), true);
	PayextSpiFinish();
	PG_RETURN_INT64(transfer_id);
}

/* void_hold(merchant bigint, hold bigint) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_void_hold);
Datum
payext_void_hold(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "hold"};
	int64		released;

	PayextRequireArgs(fcinfo, 2, names);
	PayextSpiConnect();
	released = HoldsVoid(PG_GETARG_INT64(0), PG_GETARG_INT64(1));
	PayextSpiFinish();
	PG_RETURN_INT64(released);
}
