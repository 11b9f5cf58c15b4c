/*
 * claims.c
 *		Behind a router: which partition holds a merchant's order_ref,
 *		refund_ref or capture_ref (payext.reference_claim; docs/partitions.md).
 *
 * Every routed charge claims its order first, on the payer's partition
 * (charge_claimed), so the claim is C and its row is written without the
 * executor where src/direct.c can.  As PL/pgSQL it was four nested
 * functions, each with its own search_path, and two statements through
 * SPI, per charge (bench/NOTES.md, "Issue 16: the claim in C").
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "claims.h"
#include "direct.h"
#include "errors.h"
#include "partition.h"
#include "roles.h"
#include "spi_util.h"

/* The highest partition number (DESIGN.md, "More than one node"). */
#define CLAIMS_MAX_PARTITION 99

/* The claim's insert when src/direct.c declines it (a DBA's trigger) */
static PayextPlan insert_claim_plan = {
	"INSERT INTO payext.reference_claim"
	" (merchant, kind, reference, partition_number, claimed_at)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT ON CONSTRAINT reference_claim_pkey DO NOTHING",
	5, {INT8OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID}
};

/* The claim that won, after a conflict, when the direct scan declines */
static PayextPlan find_claim_plan = {
	"SELECT partition_number FROM payext.reference_claim"
	" WHERE merchant = $1 AND kind = $2 AND reference = $3",
	3, {INT8OID, TEXTOID, TEXTOID}
};

/*
 * The partition that holds the claim values[0 .. 2] (merchant, kind,
 * reference), in a new statement's snapshot; false when there is none.
 * By the primary key without the executor, as the direct scan can: a
 * plan kept from when the table was small reads it all (the PL/pgSQL claim
 * did so, bench/NOTES.md).
 */
static bool
ClaimsFindHolder(const Datum *values, int *holder)
{
	static const char *const cols[] = {"partition_number"};
	PayextDirectScan *scan = PayextDirectBeginScan("reference_claim_pkey",
												   "merchant,kind,reference");
	bool		found;

	if (scan != NULL)
	{
		PayextScanKey keys[3] = {
			PayextKey(1, BTEqualStrategyNumber, values[0]),
			PayextKey(2, BTEqualStrategyNumber, values[1]),
			PayextKey(3, BTEqualStrategyNumber, values[2])
		};
		Datum		number;
		bool		isnull;

		PayextDirectRescan(scan, lengthof(keys), keys);
		found = PayextDirectNext(scan, lengthof(cols), cols, &number, &isnull);
		if (found)
			*holder = DatumGetInt32(number);
		PayextDirectEndScan(scan);
		return found;
	}
	found = PayextExecute(&find_claim_plan, (Datum *) values, NULL, false, 1,
						  SPI_OK_SELECT) == 1;
	if (found)
		*holder = DatumGetInt32(PayextResultDatum(0, 1));
	return found;
}

int
ClaimsClaim(int64 merchant, const char *kind, const char *reference,
			int partition_number)
{
	static const char *const cols[] = {
		"merchant", "kind", "reference", "partition_number", "claimed_at"
	};
	static const bool nulls[lengthof(cols)] = {false};
	int			here = PayextPartition();
	Datum		values[lengthof(cols)];
	ItemPointerData conflict;
	int			holder;

	if (partition_number < 0 || partition_number > CLAIMS_MAX_PARTITION)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PARTITION),
				 errmsg("partition %d is out of range", partition_number),
				 errdetail("A partition's number must be 0 to %d.", CLAIMS_MAX_PARTITION)));
	/* The merchant's account on this partition, which the caller acts for. */
	if (merchant < 1 || (merchant >> 56) != here)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PARTITION),
				 errmsg("account " INT64_FORMAT " is not of this partition", merchant),
				 errdetail("This database is partition %d.", here),
				 errhint("Claim with the merchant's account on the partition the claim goes to.")));
	RolesRequireMerchant(merchant);

	values[0] = Int64GetDatum(merchant);
	values[1] = CStringGetTextDatum(kind);
	values[2] = CStringGetTextDatum(reference);
	values[3] = Int32GetDatum(partition_number);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	/*
	 * The first claim wins: ON CONFLICT's check waits for a claim in flight
	 * and, under REPEATABLE READ and SERIALIZABLE, raises 40001 for one the
	 * snapshot cannot see.  Then the winner is read (under READ COMMITTED in
	 * a new snapshot, which sees it).  A winner that is gone by then (a DBA's
	 * DELETE) leaves the reference free: claim once more.  Neither written
	 * nor found twice is a DBA's trigger that drops the row or a policy that
	 * hides it: an error, not a claim nobody holds, nor a loop.
	 */
	for (int attempt = 0; attempt < 2; attempt++)
	{
		int			inserted;

		inserted = PayextDirectInsertOrNothing(PayextDirectReferenceClaim,
											   "reference_claim_pkey", lengthof(cols),
											   cols, values, nulls, false, &conflict);
		if (inserted < 0)
			inserted = (int) PayextExecute(&insert_claim_plan, values, NULL, false, 0,
										   SPI_OK_INSERT);
		if (inserted == 1)
			return partition_number;
		if (ClaimsFindHolder(values, &holder))
			return holder;
	}
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
			 errmsg("the claim of %s \"%s\" of account " INT64_FORMAT " was neither written nor found",
					kind, reference, merchant),
			 errdetail("Its insert wrote no row and found no conflicting one."),
			 errhint("A trigger, rule or row-level security policy on payext.reference_claim keeps claims from being written or read.")));
	pg_unreachable();
}

void
ClaimsRequireHere(int64 merchant, const char *order_ref)
{
	int			here = PayextPartition();
	int			holder = ClaimsClaim(merchant, "order", order_ref, here);

	if (holder != here)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_ORDER_CONFLICT),
				 errmsg("order \"%s\" was already charged differently", order_ref),
				 errdetail("It was charged, or a charge was tried, with a code of partition %02d; only such codes may charge it.",
						   holder),
				 errhint("Use a new order_ref for a new order.")));
}

/*
 * claim_reference(merchant bigint, kind text, reference text,
 *				   partition_number integer) RETURNS integer
 */
PG_FUNCTION_INFO_V1(payext_claim_reference);
Datum
payext_claim_reference(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "kind", "reference", "partition_number"};
	int			holder;

	PayextRequireArgs(fcinfo, lengthof(names), names);
	PayextSpiConnect();
	holder = ClaimsClaim(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
						 text_to_cstring(PG_GETARG_TEXT_PP(2)), PG_GETARG_INT32(3));
	PayextSpiFinish();
	PG_RETURN_INT32(holder);
}

/* require_claim_here(merchant bigint, order_ref text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_require_claim_here);
Datum
payext_require_claim_here(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"merchant", "order_ref"};

	PayextRequireArgs(fcinfo, lengthof(names), names);
	PayextSpiConnect();
	ClaimsRequireHere(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PayextSpiFinish();
	PG_RETURN_VOID();
}
