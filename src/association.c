/*
 * association.c
 *		Interactions, the association trigger, rules and consent.
 *
 * Every interaction goes through one AFTER INSERT trigger.  It first upserts
 * the pair's row in interaction_pair: besides the analysts' per-pair
 * figures, that row's lock serialises the evaluation for one consumer and
 * merchant, so two concurrent payments that together meet the rule see each
 * other (READ COMMITTED: the second waits and then reads the first's row;
 * REPEATABLE READ and SERIALIZABLE: the second gets 40001 and retries).
 * For a payment, it then evaluates the rule on the pair's payments within
 * `within` of the new one: an index range scan, O(log n + k).
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "assoc_window.h"
#include "association.h"
#include "direct.h"
#include "errors.h"
#include "payext_limits.h"
#include "spi_util.h"

/* The current rule for a merchant. */
typedef struct AssocCurrentRule
{
	int64		id;
	AssocRule	rule;
} AssocCurrentRule;

static PayextPlan insert_interaction_plan = {
	"INSERT INTO payext.interaction"
	" (id, consumer, public_service_id, kind, amount, currency, occurred_at,"
	"  transfer_id, recorded_at)"
	" VALUES ($1, $2, $3, $4, $5, NULL, $6, NULL, $7)",
	7, {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static PayextPlan known_merchant_plan = {
	"SELECT EXISTS (SELECT 1 FROM payext.account"
	"                WHERE public_service_id = $1 AND kind = 'merchant')",
	1, {TEXTOID}
};

/*
 * A transfer's interaction, from what the transfer knows: no read of the
 * journal or the accounts (each read of them was an index probe, and under
 * SERIALIZABLE a read lock that made concurrent payments conflict).
 */
static PayextPlan insert_transfer_interaction_plan = {
	"INSERT INTO payext.interaction"
	" (id, consumer, public_service_id, kind, amount, currency, occurred_at,"
	"  transfer_id, recorded_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)",
	8, {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT8OID}
};

static PayextPlan upsert_pair_plan = {
	"INSERT INTO payext.interaction_pair AS p"
	" (consumer, public_service_id, interactions, payments, payment_amount,"
	"  refund_amount, first_at, last_at)"
	" VALUES ($1, $2, 1, CASE WHEN $3 = 'payment' THEN 1 ELSE 0 END,"
	"         CASE WHEN $3 = 'payment' THEN $4 ELSE 0 END,"
	"         CASE WHEN $3 = 'refund' THEN $4 ELSE 0 END, $5, $5)"
	" ON CONFLICT (consumer, public_service_id) DO UPDATE"
	"   SET interactions = p.interactions + 1,"
	"       payments = p.payments + excluded.payments,"
	"       payment_amount = p.payment_amount + excluded.payment_amount,"
	"       refund_amount = p.refund_amount + excluded.refund_amount,"
	"       first_at = least(p.first_at, excluded.first_at),"
	"       last_at = greatest(p.last_at, excluded.last_at)",
	5, {TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan settled_plan = {
	"SELECT EXISTS (SELECT 1 FROM payext.association_state"
	"                WHERE consumer = $1 AND public_service_id = $2)",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan current_rule_plan = {
	"SELECT id, min_interactions, within, min_total_amount"
	"  FROM payext.association_rule"
	" WHERE superseded_at IS NULL"
	"   AND (public_service_id = $1 OR public_service_id IS NULL)"
	" ORDER BY public_service_id IS NULL"
	" LIMIT 1",
	1, {TEXTOID}
};

static PayextPlan window_payments_plan = {
	"SELECT occurred_at, amount FROM payext.interaction"
	" WHERE consumer = $1 AND public_service_id = $2 AND kind = 'payment'"
	"   AND occurred_at > $3 AND occurred_at < $4"
	" ORDER BY occurred_at",
	4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static PayextPlan all_payments_plan = {
	"SELECT occurred_at, amount FROM payext.interaction"
	" WHERE consumer = $1 AND public_service_id = $2 AND kind = 'payment'"
	" ORDER BY occurred_at",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan insert_association_plan = {
	"INSERT INTO payext.association_state"
	" (consumer, public_service_id, state, established_at, how, rule_id, changed_at)"
	" VALUES ($1, $2, 'associated', $3, $4, $5, $6)"
	" ON CONFLICT DO NOTHING",
	6, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan lock_pair_plan = {
	"SELECT 1 FROM payext.interaction_pair"
	" WHERE consumer = $1 AND public_service_id = $2 FOR UPDATE",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan candidate_pairs_plan = {
	"SELECT p.consumer, p.public_service_id FROM payext.interaction_pair p"
	" WHERE ($1::text IS NULL OR p.public_service_id = $1) AND p.payments > 0"
	"   AND NOT EXISTS (SELECT 1 FROM payext.association_state s"
	"                    WHERE s.consumer = p.consumer"
	"                      AND s.public_service_id = p.public_service_id)"
	" ORDER BY p.public_service_id, p.consumer",
	1, {TEXTOID}
};

static PayextPlan supersede_rule_plan = {
	"UPDATE payext.association_rule SET superseded_at = $2"
	" WHERE superseded_at IS NULL AND public_service_id IS NOT DISTINCT FROM $1",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static PayextPlan insert_rule_plan = {
	"INSERT INTO payext.association_rule"
	" (id, public_service_id, min_interactions, within, min_total_amount, created_at)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, TEXTOID, INT4OID, INTERVALOID, INT8OID, TIMESTAMPTZOID}
};

static PayextPlan lock_rules_plan = {
	"LOCK TABLE payext.association_rule IN SHARE ROW EXCLUSIVE MODE",
	0, {0}
};

static PayextPlan opt_out_plan = {
	"INSERT INTO payext.association_state AS s"
	" (consumer, public_service_id, state, changed_at)"
	" VALUES ($1, $2, 'opted_out', $3)"
	" ON CONFLICT (consumer, public_service_id) DO UPDATE"
	"   SET state = 'opted_out', established_at = NULL, how = NULL,"
	"       rule_id = NULL, changed_at = excluded.changed_at"
	" WHERE s.state <> 'opted_out'",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

static PayextPlan opt_in_plan = {
	"DELETE FROM payext.association_state"
	" WHERE consumer = $1 AND public_service_id = $2 AND state = 'opted_out'",
	2, {TEXTOID, TEXTOID}
};

static PayextPlan pair_state_plan = {
	"SELECT state FROM payext.association_state"
	" WHERE consumer = $1 AND public_service_id = $2",
	2, {TEXTOID, TEXTOID}
};

/* ---------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------
 */

/*
 * A rule's row (id, min_interactions, within, min_total_amount) into
 * current.
 */
static void
AssocRuleFromRow(const Datum *row, AssocCurrentRule *current)
{
	current->id = DatumGetInt64(row[0]);
	current->rule.min_interactions = DatumGetInt32(row[1]);
	if (!PayextIntervalUsec(DatumGetIntervalP(row[2]), &current->rule.within_us))
		elog(ERROR, "payext: association rule " INT64_FORMAT " has an unusable window",
			 current->id);
	current->rule.min_total_minor = DatumGetInt64(row[3]);
}

/*
 * current_rule_plan without the executor: the current rule of the
 * merchant, else the default, from association_rule_current_key (unique,
 * NULLS NOT DISTINCT, WHERE superseded_at IS NULL), both probes in one
 * snapshot.  -1 when the read must go through SPI (direct.c's reasons).
 */
static int
AssocLoadRuleDirect(Datum public_service_id, AssocCurrentRule *current)
{
	static const char *const cols[] = {"id", "min_interactions", "within",
	"min_total_amount", "superseded_at"};
	PayextDirectScan *scan = PayextDirectBeginScan("association_rule_current_key",
												   "public_service_id");
	PayextScanKey key;
	Datum		row[lengthof(cols)];
	bool		nulls[lengthof(cols)];
	bool		found = false;

	if (scan == NULL)
		return -1;
	for (int probe = 0; probe < 2 && !found; probe++)
	{
		/* the merchant's own, then the default (public_service_id NULL) */
		key = probe == 0 ? PayextKey(1, BTEqualStrategyNumber, public_service_id) :
			PayextKeyNull(1);
		PayextDirectRescan(scan, 1, &key);
		while (!found && PayextDirectNext(scan, lengthof(cols), cols, row, nulls))
			found = nulls[4];	/* the index's predicate, again */
	}
	if (found)
		AssocRuleFromRow(row, current);
	PayextDirectEndScan(scan);
	return found ? 1 : 0;
}

/* The merchant's rule, or the default; false when there is neither. */
static bool
AssocLoadRule(Datum public_service_id, AssocCurrentRule *current)
{
	Datum		values[1];
	Datum		row[4];
	int			direct = AssocLoadRuleDirect(public_service_id, current);

	if (direct >= 0)
		return direct == 1;
	values[0] = public_service_id;
	if (PayextExecute(&current_rule_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return false;
	for (int i = 0; i < 4; i++)
		row[i] = PayextResultDatum(0, i + 1);
	AssocRuleFromRow(row, current);
	return true;
}

/* True when the pair is associated already or the consumer opted out. */
static bool
AssocPairSettled(Datum consumer, Datum public_service_id)
{
	Datum		values[2];
	PayextDirectScan *scan = PayextDirectBeginScan("association_state_pkey",
												   "consumer,public_service_id");

	if (scan != NULL)
	{
		/* settled_plan without the executor: a probe of the primary key */
		PayextScanKey keys[2] = {
			PayextKey(1, BTEqualStrategyNumber, consumer),
			PayextKey(2, BTEqualStrategyNumber, public_service_id)
		};
		bool		found;

		PayextDirectRescan(scan, 2, keys);
		found = PayextDirectNext(scan, 0, NULL, NULL, NULL);
		PayextDirectEndScan(scan);
		return found;
	}
	values[0] = consumer;
	values[1] = public_service_id;
	PayextExecute(&settled_plan, values, NULL, false, 1, SPI_OK_SELECT);
	return DatumGetBool(PayextResultDatum(0, 1));
}

/* PY304: more of a pair's payments than one evaluation reads. */
static void
AssocRaiseTooManyPayments(uint64 rows, bool at_least)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_TOO_MANY_PAYMENTS),
			 errmsg("too many payments to evaluate for one consumer and merchant"),
			 at_least ?
			 errdetail("There are more than " UINT64_FORMAT "; the limit is %d.",
					   rows, PAYEXT_MAX_PAIR_PAYMENTS) :
			 errdetail("There are " UINT64_FORMAT "; the limit is %d.",
					   rows, PAYEXT_MAX_PAIR_PAYMENTS)));
}

/* The time of the payment that completes the rule at or after from, or DT_NOBEGIN. */
static TimestampTz
AssocAnchorTime(const AssocPayment *payments, int rows, const AssocRule *rule,
				TimestampTz from)
{
	int			anchor = rows == 0 ? -1 : AssocFindAnchor(payments, rows, rule, from);

	return anchor < 0 ? DT_NOBEGIN : payments[anchor].occurred_at_us;
}

/*
 * Runs a payments query (occurred_at, amount ordered by occurred_at) and
 * looks for an anchor at or after from_us; returns its time or DT_NOBEGIN.
 */
static TimestampTz
AssocFindInResult(PayextPlan *plan, Datum *values, const AssocRule *rule,
				  TimestampTz from)
{
	uint64		rows = PayextExecute(plan, values, NULL, false, 0, SPI_OK_SELECT);
	AssocPayment *payments;

	if (rows == 0)
		return DT_NOBEGIN;
	if (rows > (uint64) PAYEXT_MAX_PAIR_PAYMENTS)
		AssocRaiseTooManyPayments(rows, false);
	payments = palloc(sizeof(AssocPayment) * rows);
	for (uint64 i = 0; i < rows; i++)
	{
		payments[i].occurred_at_us = DatumGetTimestampTz(PayextResultDatum(i, 1));
		payments[i].amount_minor = DatumGetInt64(PayextResultDatum(i, 2));
	}
	return AssocAnchorTime(payments, (int) rows, rule, from);
}

/*
 * insert_association_plan without the executor: the rule's row (when there
 * is one) locked FOR KEY SHARE as the foreign key's check locks it, then
 * INSERT ... ON CONFLICT DO NOTHING as the executor runs it: 1 inserted,
 * 0 there already, -1 declined (a trigger, row-level security, a missing
 * privilege, a DBA's column: nothing locked; or the rule gone since it was
 * read): the caller runs the statement.
 * values: insert_association_plan's, in its order.
 */
static int
AssocCreateDirect(const Datum *values, int64 rule_id)
{
	static const char *const cols[] = {
		"consumer", "public_service_id", "state", "established_at", "how",
		"rule_id", "changed_at"
	};
	Datum		row[lengthof(cols)];
	bool		nulls[lengthof(cols)] = {false};
	ItemPointerData conflict;

	/*
	 * The lock before the insert, which asks whether it may first: the lock
	 * stays when the insert then meets a conflict (an association made
	 * meanwhile), where the statement's check would not have run.
	 */
	if (!PayextDirectInsertAllowed(PayextDirectAssociationState, lengthof(cols), true) ||
		(rule_id != 0 &&
		 !PayextDirectLockById("association_rule", rule_id, LockTupleKeyShare)))
		return -1;
	row[0] = values[0];
	row[1] = values[1];
	row[2] = CStringGetTextDatum("associated");
	row[3] = values[2];
	row[4] = values[3];
	row[5] = values[4];
	nulls[5] = rule_id == 0;
	row[6] = values[5];
	return PayextDirectInsertOrNothing(PayextDirectAssociationState, NULL, lengthof(cols),
									   cols, row, nulls, true, &conflict);
}

/* Records an automatic association; true when it is new. */
static bool
AssocCreate(Datum consumer, Datum public_service_id, TimestampTz established_at,
			const char *how, int64 rule_id)
{
	Datum		values[6];
	char		nulls[6];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = consumer;
	values[1] = public_service_id;
	values[2] = TimestampTzGetDatum(established_at);
	values[3] = CStringGetTextDatum(how);
	values[4] = Int64GetDatum(rule_id);
	nulls[4] = rule_id != 0 ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	switch (AssocCreateDirect(values, rule_id))
	{
		case 1:
			return true;
		case 0:
			return false;
		default:
			return PayextExecute(&insert_association_plan, values, nulls, false, 0,
								 SPI_OK_INSERT) == 1;
	}
}

/*
 * window_payments_plan without the executor: the pair's payments in
 * (lower, upper), by occurred_at, from interaction_pair_payments_idx
 * (WHERE kind = 'payment').  Looks for an anchor at or after from, as
 * AssocFindInResult; false when the read must go through SPI.
 */
static bool
AssocFindInWindowDirect(Datum consumer, Datum public_service_id,
						TimestampTz lower, TimestampTz upper,
						const AssocRule *rule, TimestampTz from, TimestampTz *anchor_at)
{
	static const char *const cols[] = {"occurred_at", "amount", "kind"};
	PayextDirectScan *scan = PayextDirectBeginScan("interaction_pair_payments_idx",
												   "consumer,public_service_id,occurred_at");
	PayextScanKey keys[4] = {
		PayextKey(1, BTEqualStrategyNumber, consumer),
		PayextKey(2, BTEqualStrategyNumber, public_service_id),
		PayextKey(3, BTGreaterStrategyNumber, TimestampTzGetDatum(lower)),
		PayextKey(3, BTLessStrategyNumber, TimestampTzGetDatum(upper))
	};
	Datum		row[lengthof(cols)];
	bool		nulls[lengthof(cols)];
	AssocPayment *payments;
	int			allocated = 16;
	int			rows = 0;

	if (scan == NULL)
		return false;
	payments = palloc(sizeof(AssocPayment) * allocated);
	PayextDirectRescan(scan, lengthof(keys), keys);
	while (PayextDirectNext(scan, lengthof(cols), cols, row, nulls))
	{
		/* the index's predicate, again */
		if (nulls[2] || strcmp(TextDatumGetCString(row[2]), "payment") != 0)
			continue;
		if (rows == PAYEXT_MAX_PAIR_PAYMENTS)
			AssocRaiseTooManyPayments(rows, true);
		if (rows == allocated)
		{
			allocated *= 2;
			payments = repalloc(payments, sizeof(AssocPayment) * allocated);
		}
		payments[rows].occurred_at_us = DatumGetTimestampTz(row[0]);
		payments[rows].amount_minor = DatumGetInt64(row[1]);
		rows++;
	}
	PayextDirectEndScan(scan);
	*anchor_at = AssocAnchorTime(payments, rows, rule, from);
	pfree(payments);
	return true;
}

/*
 * A new payment at `occurred_at`: the windows it can complete end at
 * payments in [occurred_at, occurred_at + within), and reach back no
 * further than occurred_at - within.
 */
static void
AssocEvaluatePayment(Datum consumer, Datum public_service_id,
					 TimestampTz occurred_at)
{
	AssocCurrentRule current;
	Datum		values[4];
	TimestampTz lower;
	TimestampTz upper;
	TimestampTz anchor;

	if (AssocPairSettled(consumer, public_service_id))
		return;
	if (!AssocLoadRule(public_service_id, &current))
		return;

	if (__builtin_sub_overflow(occurred_at, current.rule.within_us, &lower))
		lower = DT_NOBEGIN;
	if (__builtin_add_overflow(occurred_at, current.rule.within_us, &upper))
		upper = DT_NOEND;
	if (!AssocFindInWindowDirect(consumer, public_service_id, lower, upper,
								 &current.rule, occurred_at, &anchor))
	{
		values[0] = consumer;
		values[1] = public_service_id;
		values[2] = TimestampTzGetDatum(lower);
		values[3] = TimestampTzGetDatum(upper);
		anchor = AssocFindInResult(&window_payments_plan, values, &current.rule,
								   occurred_at);
	}
	if (anchor != DT_NOBEGIN)
		AssocCreate(consumer, public_service_id, anchor, "auto", current.id);
}

/*
 * upsert_pair_plan without the executor, as INSERT ... ON CONFLICT DO
 * UPDATE runs it: the pair's new row, or on a conflict its row locked (the
 * lock that serialises the rule's evaluation for the pair) and added to.
 * values: consumer, public_service_id, kind, amount, occurred_at.  false
 * when direct.c declines: the caller runs the upsert.
 */
static bool
AssocUpsertPairDirect(const Datum *values, bool payment, bool refund)
{
	static const char *const cols[] = {"consumer", "public_service_id", "interactions",
	"payments", "payment_amount", "refund_amount", "first_at", "last_at"};
	const char *const *sums = cols + 2;
	Datum		amount = DirectFunctionCall1(int8_numeric, values[3]);
	Datum		zero = DirectFunctionCall1(int8_numeric, Int64GetDatum(0));
	TimestampTz at = DatumGetTimestampTz(values[4]);
	Datum		row[lengthof(cols)];
	Datum		old[lengthof(cols) - 2];
	bool		old_null[lengthof(cols) - 2];

	/*
	 * ON CONFLICT DO UPDATE asks for UPDATE and SELECT too, conflict or not
	 * (one check each: a mask passes with any of its privileges).
	 */
	if (pg_class_aclcheck(PayextRelid("interaction_pair"), GetUserId(),
						  ACL_UPDATE) != ACLCHECK_OK ||
		pg_class_aclcheck(PayextRelid("interaction_pair"), GetUserId(),
						  ACL_SELECT) != ACLCHECK_OK)
		return false;
	row[0] = values[0];
	row[1] = values[1];
	row[2] = Int64GetDatum(1);
	row[3] = Int64GetDatum(payment ? 1 : 0);
	row[4] = payment ? amount : zero;
	row[5] = refund ? amount : zero;
	row[6] = values[4];
	row[7] = values[4];
	for (;;)
	{
		ItemPointerData conflict;
		int			inserted = PayextDirectInsertOrNothing(PayextDirectInteractionPair,
														   "interaction_pair_pkey",
														   lengthof(cols), cols, row,
														   NULL, false, &conflict);
		int64		count;

		if (inserted != 0)
			return inserted == 1;
		if (PayextDirectLockRow(PayextDirectInteractionPair, &conflict,
								LockTupleNoKeyExclusive, lengthof(old), sums,
								old, old_null) == 0)
			continue;			/* changed meanwhile: from the start, as ON
								 * CONFLICT */
		for (int i = 0; i < (int) lengthof(old); i++)
			if (old_null[i])
				elog(ERROR, "payext: a pair's row has a null %s", sums[i]);
		if (pg_add_s64_overflow(DatumGetInt64(old[0]), 1, &count))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		old[0] = Int64GetDatum(count);
		if (pg_add_s64_overflow(DatumGetInt64(old[1]), payment ? 1 : 0, &count))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		old[1] = Int64GetDatum(count);
		old[2] = DirectFunctionCall2(numeric_add, old[2], row[4]);
		old[3] = DirectFunctionCall2(numeric_add, old[3], row[5]);
		if (at < DatumGetTimestampTz(old[4]))
			old[4] = values[4];
		if (at > DatumGetTimestampTz(old[5]))
			old[5] = values[4];
		/* declined (a trigger, say): the upsert finds the row we hold */
		return PayextDirectUpdate(PayextDirectInteractionPair, &conflict, 0, NULL, NULL,
								  lengthof(old), sums, old, NULL);
	}
}

/*
 * What the trigger does for a new interaction (consumer, public_service_id,
 * kind, amount, occurred_at): the pair's row, and for a payment the rule.
 * Requires SPI.
 */
static void
AssocRecorded(Datum *values, const char *kind)
{
	bool		payment = strcmp(kind, "payment") == 0;

	if (!AssocUpsertPairDirect(values, payment, strcmp(kind, "refund") == 0))
		PayextExecute(&upsert_pair_plan, values, NULL, false, 0, SPI_OK_INSERT);
	if (payment)
		AssocEvaluatePayment(values[0], values[1], DatumGetTimestampTz(values[4]));
}

/* interaction_recorded() RETURNS trigger: AFTER INSERT FOR EACH ROW */
PG_FUNCTION_INFO_V1(payext_interaction_recorded);
Datum
payext_interaction_recorded(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	Datum		values[5];
	bool		isnull;
	char	   *kind;
	TimestampTz recorded_at;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "payext: interaction_recorded() must be an AFTER INSERT row trigger");

	tupdesc = trigdata->tg_relation->rd_att;
	tuple = trigdata->tg_trigtuple;
	values[0] = SPI_getbinval(tuple, tupdesc, SPI_fnumber(tupdesc, "consumer"), &isnull);
	values[1] = SPI_getbinval(tuple, tupdesc, SPI_fnumber(tupdesc, "public_service_id"), &isnull);
	values[2] = SPI_getbinval(tuple, tupdesc, SPI_fnumber(tupdesc, "kind"), &isnull);
	values[3] = SPI_getbinval(tuple, tupdesc, SPI_fnumber(tupdesc, "amount"), &isnull);
	values[4] = SPI_getbinval(tuple, tupdesc, SPI_fnumber(tupdesc, "occurred_at"), &isnull);
	recorded_at = DatumGetTimestampTz(SPI_getbinval(tuple, tupdesc,
													SPI_fnumber(tupdesc, "recorded_at"),
													&isnull));
	kind = TextDatumGetCString(values[2]);

	/*
	 * payext records every interaction at its transaction's time.  A row
	 * recorded earlier is history copied in by pg_restore, whose pair figures
	 * and associations are restored from the dump as they were.
	 */
	if (recorded_at != GetCurrentTransactionStartTimestamp())
		return PointerGetDatum(tuple);

	PayextSpiConnect();
	AssocRecorded(values, kind);
	PayextSpiFinish();
	return PointerGetDatum(tuple);
}

void
AssocRecordTransfer(int64 transfer_id, const char *kind,
					const LedgerAccount *wallet, const LedgerAccount *merchant,
					int64 amount_minor)
{
	static const char *const cols[] = {"id", "consumer", "public_service_id", "kind",
	"amount", "currency", "occurred_at", "transfer_id", "recorded_at"};
	Datum		values[lengthof(cols)];
	bool		fire_own;

	Assert(wallet->kind == LEDGER_WALLET && merchant->kind == LEDGER_MERCHANT);
	if (wallet->owner == NULL || merchant->public_service_id == NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("payext: transfer " INT64_FORMAT " is between accounts without owner or official account",
						transfer_id)));
	values[0] = Int64GetDatum(PayextNextId("interaction_id_seq"));
	values[1] = CStringGetTextDatum(wallet->owner);
	values[2] = CStringGetTextDatum(merchant->public_service_id);
	values[3] = CStringGetTextDatum(kind);
	values[4] = Int64GetDatum(amount_minor);
	values[5] = CStringGetTextDatum(wallet->currency);
	/* the journal row's created_at (LedgerTransfer()) */
	values[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[7] = Int64GetDatum(transfer_id);
	values[8] = values[6];

	/*
	 * Without the executor, the trigger's work done here, where the INSERT
	 * would have fired it (direct.c says when it would have).
	 */
	if (PayextDirectInsert(PayextDirectInteraction, lengthof(cols), cols, values,
						   NULL, false, &fire_own))
	{
		if (fire_own)
		{
			Datum		recorded[5] = {values[1], values[2], values[3], values[4], values[6]};

			AssocRecorded(recorded, kind);
		}
		return;
	}
	if (PayextExecute(&insert_transfer_interaction_plan, values, NULL, false, 0,
					  SPI_OK_INSERT) != 1)
		elog(ERROR, "payext: transfer " INT64_FORMAT " left no interaction", transfer_id);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

static char *
AssocArgKind(FunctionCallInfo fcinfo, int argno)
{
	text	   *arg = PG_GETARG_TEXT_PP(argno);
	int			len = VARSIZE_ANY_EXHDR(arg);
	const char *data = VARDATA_ANY(arg);
	bool		word = len >= 1 && len <= 32 && data[0] >= 'a' && data[0] <= 'z';

	for (int i = 1; word && i < len; i++)
		word = (data[i] >= 'a' && data[i] <= 'z') || (data[i] >= '0' && data[i] <= '9') ||
			data[i] == '_';
	if (!word)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_INTERACTION),
				 errmsg("interaction kind \"%.*s\" is not a lower-case word",
						pg_mbcliplen(data, len, 40), data),
				 errhint("Use a word of 1 to 32 characters such as 'visit' or 'coupon_redeemed': a-z, 0-9 and _, starting with a letter.")));
	return text_to_cstring(arg);
}

/*
 * record_interaction(consumer text, public_service_id text, kind text,
 *					  amount bigint DEFAULT 0,
 *					  occurred_at timestamptz DEFAULT now()) RETURNS bigint
 */
/*
 * Raises PY305 unless a merchant account has this public-service id:
 * interactions, rules and manual associations name real merchants, so that
 * no look-alike id collects history.  Requires SPI.
 */
static void
AssocRequireKnownMerchant(Datum psid)
{
	Datum		values[1];

	values[0] = psid;
	PayextExecute(&known_merchant_plan, values, NULL, true, 1, SPI_OK_SELECT);
	if (!DatumGetBool(PayextResultDatum(0, 1)))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_MERCHANT),
				 errmsg("no merchant has public-service id \"%s\"",
						TextDatumGetCString(psid)),
				 errhint("Open the merchant's account with payext.open_merchant() first.")));
}

PG_FUNCTION_INFO_V1(payext_record_interaction);
Datum
payext_record_interaction(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"consumer", "public_service_id", "kind",
	"amount", "occurred_at"};
	char	   *consumer;
	char	   *psid;
	char	   *kind;
	int64		amount;
	TimestampTz occurred_at;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		values[7];
	int64		id;

	PayextRequireArgs(fcinfo, 5, names);
	consumer = PayextArgIdentifier(fcinfo, 0, "consumer", PAYEXT_MAX_IDENTIFIER_LEN);
	psid = PayextArgIdentifier(fcinfo, 1, "public_service_id", PAYEXT_MAX_IDENTIFIER_LEN);
	kind = AssocArgKind(fcinfo, 2);
	amount = PG_GETARG_INT64(3);
	if (amount < 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_AMOUNT),
				 errmsg("amount must not be negative"),
				 errdetail("Argument \"amount\" is " INT64_FORMAT ".", amount)));
	occurred_at = PG_GETARG_TIMESTAMPTZ(4);
	if (!PayextTimestampIsFinite(occurred_at) ||
		occurred_at > now + (int64) PAYEXT_MAX_CLOCK_SKEW_S * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_INTERACTION),
				 errmsg("occurred_at must be a finite time not in the future"),
				 errdetail("Up to %d seconds ahead of the server's clock are accepted.",
						   PAYEXT_MAX_CLOCK_SKEW_S)));

	PayextSpiConnect();
	AssocRequireKnownMerchant(CStringGetTextDatum(psid));
	id = PayextNextId("interaction_id_seq");
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(consumer);
	values[2] = CStringGetTextDatum(psid);
	values[3] = CStringGetTextDatum(kind);
	values[4] = Int64GetDatum(amount);
	values[5] = TimestampTzGetDatum(occurred_at);
	values[6] = TimestampTzGetDatum(now);
	PayextExecute(&insert_interaction_plan, values, NULL, false, 0, SPI_OK_INSERT);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

static void
AssocRaiseBadRule(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_BAD_RULE),
			 errmsg("%s", message),
			 errdetail("%s", detail),
			 errhint("A rule needs 1 to 100000 payments within 1 second to %d days, and a total of 0 or more.",
					 PAYEXT_MAX_RULE_WINDOW_DAYS)));
}

/*
 * set_association_rule(public_service_id text, min_interactions integer,
 *						within interval, min_total_amount bigint DEFAULT 0)
 *		RETURNS void
 */
PG_FUNCTION_INFO_V1(payext_set_association_rule);
Datum
payext_set_association_rule(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"public_service_id", "min_interactions",
	"within", "min_total_amount"};
	char	   *psid = NULL;
	int32		min_interactions;
	Interval   *within;
	int64		within_us;
	int64		min_total;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		values[6];
	char		nulls[6];

	/* public_service_id may be NULL (the default rule); the rest may not. */
	for (int i = 1; i < 4; i++)
		PayextRequireArg(fcinfo, i, names[i]);
	if (!PG_ARGISNULL(0))
		psid = PayextArgIdentifier(fcinfo, 0, "public_service_id", PAYEXT_MAX_IDENTIFIER_LEN);
	min_interactions = PG_GETARG_INT32(1);
	within = PG_GETARG_INTERVAL_P(2);
	min_total = PG_GETARG_INT64(3);
	if (min_interactions < 1 || min_interactions > 100000)
		AssocRaiseBadRule("min_interactions must be between 1 and 100000",
						  psprintf("It is %d.", min_interactions));
	if (within->month != 0)
		AssocRaiseBadRule("within must not be given in months",
						  "Months differ in length; give the window in days, hours, minutes or seconds (a day counts as 24 hours).");
	if (!PayextIntervalUsec(within, &within_us) || within_us < USECS_PER_SEC ||
		within_us > (int64) PAYEXT_MAX_RULE_WINDOW_DAYS * USECS_PER_DAY)
		AssocRaiseBadRule("within must be between 1 second and the rule window's limit",
						  psprintf("The limit is %d days.", PAYEXT_MAX_RULE_WINDOW_DAYS));
	if (min_total < 0)
		AssocRaiseBadRule("min_total_amount must not be negative",
						  psprintf("It is " INT64_FORMAT ".", min_total));

	PayextSpiConnect();
	if (psid)
		AssocRequireKnownMerchant(CStringGetTextDatum(psid));
	/* One writer of rules at a time: the current rule stays unique. */
	PayextExecute(&lock_rules_plan, NULL, NULL, false, 0, SPI_OK_UTILITY);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = psid ? CStringGetTextDatum(psid) : (Datum) 0;
	nulls[0] = psid ? ' ' : 'n';
	values[1] = TimestampTzGetDatum(now);
	PayextExecute(&supersede_rule_plan, values, nulls, false, 0, SPI_OK_UPDATE);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(PayextNextId("association_rule_id_seq"));
	values[1] = psid ? CStringGetTextDatum(psid) : (Datum) 0;
	nulls[1] = psid ? ' ' : 'n';
	values[2] = Int32GetDatum(min_interactions);
	values[3] = IntervalPGetDatum(within);
	values[4] = Int64GetDatum(min_total);
	values[5] = TimestampTzGetDatum(now);
	PayextExecute(&insert_rule_plan, values, nulls, false, 0, SPI_OK_INSERT);
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/* drop_association_rule(public_service_id text) RETURNS boolean */
PG_FUNCTION_INFO_V1(payext_drop_association_rule);
Datum
payext_drop_association_rule(PG_FUNCTION_ARGS)
{
	char	   *psid = NULL;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		dropped;

	if (!PG_ARGISNULL(0))
		psid = PayextArgIdentifier(fcinfo, 0, "public_service_id", PAYEXT_MAX_IDENTIFIER_LEN);
	PayextSpiConnect();
	PayextExecute(&lock_rules_plan, NULL, NULL, false, 0, SPI_OK_UTILITY);
	values[0] = psid ? CStringGetTextDatum(psid) : (Datum) 0;
	nulls[0] = psid ? ' ' : 'n';
	values[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	dropped = PayextExecute(&supersede_rule_plan, values, nulls, false, 0,
							SPI_OK_UPDATE) > 0;
	PayextSpiFinish();
	PG_RETURN_BOOL(dropped);
}

/*
 * One pair of evaluate_associations(): locks the pair's row (serialising
 * with the trigger), and finds the first moment in its history the rule
 * was met.  True when it created the association.
 */
static bool
AssocEvaluateHistory(Datum consumer, Datum public_service_id)
{
	AssocCurrentRule current;
	Datum		values[2];
	TimestampTz anchor;

	values[0] = consumer;
	values[1] = public_service_id;
	PayextExecute(&lock_pair_plan, values, NULL, false, 1, SPI_OK_SELECT);
	if (AssocPairSettled(consumer, public_service_id))
		return false;
	if (!AssocLoadRule(public_service_id, &current))
		return false;
	anchor = AssocFindInResult(&all_payments_plan, values, &current.rule, DT_NOBEGIN);
	return anchor != DT_NOBEGIN &&
		AssocCreate(consumer, public_service_id, anchor, "auto", current.id);
}

/* evaluate_associations(public_service_id text DEFAULT NULL) RETURNS integer */
PG_FUNCTION_INFO_V1(payext_evaluate_associations);
Datum
payext_evaluate_associations(PG_FUNCTION_ARGS)
{
	char	   *psid = NULL;
	Datum		values[1];
	char		nulls[1] = {' '};
	Portal		portal;
	int32		created = 0;

	if (!PG_ARGISNULL(0))
		psid = PayextArgIdentifier(fcinfo, 0, "public_service_id", PAYEXT_MAX_IDENTIFIER_LEN);
	PayextSpiConnect();
	values[0] = psid ? CStringGetTextDatum(psid) : (Datum) 0;
	nulls[0] = psid ? ' ' : 'n';
	portal = PayextOpenCursor(&candidate_pairs_plan, values, nulls);
	for (;;)
	{
		SPITupleTable *batch;
		uint64		rows;

		SPI_cursor_fetch(portal, true, PAYEXT_EVALUATE_BATCH);
		rows = SPI_processed;
		if (rows == 0)
			break;
		batch = SPI_tuptable;
		for (uint64 i = 0; i < rows; i++)
		{
			bool		isnull;
			Datum		consumer = SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull);
			Datum		pair_psid = SPI_getbinval(batch->vals[i], batch->tupdesc, 2, &isnull);

			/* A nested SPI level per pair frees its results as it goes. */
			PayextSpiConnect();
			if (AssocEvaluateHistory(consumer, pair_psid))
				created++;
			PayextSpiFinish();
		}
		SPI_freetuptable(batch);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	PayextSpiFinish();
	PG_RETURN_INT32(created);
}

/* The two identifiers of a consent call: consumer and public_service_id. */
static void
AssocPairArgs(FunctionCallInfo fcinfo, Datum *values)
{
	values[0] = CStringGetTextDatum(PayextArgIdentifier(fcinfo, 0, "consumer",
														PAYEXT_MAX_IDENTIFIER_LEN));
	values[1] = CStringGetTextDatum(PayextArgIdentifier(fcinfo, 1, "public_service_id",
														PAYEXT_MAX_IDENTIFIER_LEN));
}

/* opt_out(consumer text, public_service_id text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_opt_out);
Datum
payext_opt_out(PG_FUNCTION_ARGS)
{
	Datum		values[3];

	AssocPairArgs(fcinfo, values);
	values[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextSpiConnect();
	PayextExecute(&opt_out_plan, values, NULL, false, 0, SPI_OK_INSERT);
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/* opt_in(consumer text, public_service_id text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_opt_in);
Datum
payext_opt_in(PG_FUNCTION_ARGS)
{
	Datum		values[2];

	AssocPairArgs(fcinfo, values);
	PayextSpiConnect();
	PayextExecute(&opt_in_plan, values, NULL, false, 0, SPI_OK_DELETE);
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/* associate(consumer text, public_service_id text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_associate);
Datum
payext_associate(PG_FUNCTION_ARGS)
{
	Datum		values[2];

	AssocPairArgs(fcinfo, values);
	PayextSpiConnect();
	AssocRequireKnownMerchant(values[1]);
	/* Inserted unless a row exists; then whatever is there decides. */
	AssocCreate(values[0], values[1], GetCurrentTransactionStartTimestamp(), "manual", 0);
	if (PayextExecute(&pair_state_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1 &&
		strcmp(PayextResultCString(0, 1), "opted_out") == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_OPTED_OUT),
				 errmsg("consumer \"%s\" opted out of merchant \"%s\"",
						TextDatumGetCString(values[0]), TextDatumGetCString(values[1])),
				 errhint("Only the consumer can lift this, with payext.opt_in().")));
	PayextSpiFinish();
	PG_RETURN_VOID();
}
