/*-------------------------------------------------------------------------
 *
 * partition.c
 *	  The partition this database is, and what a router routes by.
 *
 * A partition is a database with payext whose number (0-99) is fixed for
 * life: every id it hands out carries the number in its high bits, and
 * every payment code in its first two digits, so that any id or code
 * routes itself (DESIGN.md, "More than one node").  Several partitions may
 * share an instance and move to their own later: the number belongs to the
 * database (payext.partition_info), not to the server.
 *
 * The number is read once per backend and kept.  set_partition() may set it
 * only while no id has been handed out, under an ACCESS EXCLUSIVE lock on
 * payext.partition_info; whoever makes an id holds an ACCESS SHARE lock on
 * it first (PayextPartition()), so that the two exclude each other, and
 * taking that lock reads the invalidation set_partition() sends, which
 * empties the kept number.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"

#include <openssl/sha.h>

#include "errors.h"
#include "partition.h"
#include "payext_limits.h"
#include "spi_util.h"

/* The kept number (-1: not read), and the table it was read from. */
static int	partition_number = -1;
static Oid	partition_relid = InvalidOid;

static void
PartitionInvalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == partition_relid)
	{
		partition_number = -1;
		partition_relid = InvalidOid;
	}
}

void
PartitionInit(void)
{
	CacheRegisterRelcacheCallback(PartitionInvalidate, (Datum) 0);
}

/*
 * The number in payext.partition_info as the latest snapshot sees it, or -1
 * when the table has no row.  The caller holds a lock on the table that
 * keeps set_partition() out.
 */
static int
PartitionRead(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int			number = -1;

	/* Column 1 is "number" (src/sql/ledger.sql). */
	Assert(strcmp(NameStr(TupleDescAttr(RelationGetDescr(rel), 0)->attname), "number") == 0);
	if (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		number = DatumGetInt32(slot_getattr(slot, 1, &isnull));
		Assert(!isnull);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	if (number < -1 || number > PAYEXT_MAX_PARTITION)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("payext.partition_info holds partition %d", number),
				 errdetail("Partitions are numbered 0 to %d.", PAYEXT_MAX_PARTITION)));
	return number;
}

static Oid
PartitionRelid(void)
{
	Oid			relid = PayextRelid("partition_info");

	if (!OidIsValid(relid))
		elog(ERROR, "payext: table payext.partition_info is missing");
	return relid;
}

int
PayextPartition(void)
{
	Oid			relid;
	int			number;

	/*
	 * Taking the lock for the first time in this transaction reads pending
	 * invalidations: a set_partition() committed since, or the extension
	 * dropped, empties the cache.
	 */
	if (partition_number >= 0)
	{
		LockRelationOid(partition_relid, AccessShareLock);
		if (partition_number >= 0)
			return partition_number;
	}
	relid = PartitionRelid();
	LockRelationOid(relid, AccessShareLock);
	number = PartitionRead(relid);
	partition_number = number < 0 ? 0 : number;
	partition_relid = relid;
	return partition_number;
}

static void
PartitionCheckNumber(int number, const char *what)
{
	if (number < PAYEXT_MIN_PARTITION || number > PAYEXT_MAX_PARTITION)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PARTITION),
				 errmsg("partition %d is out of range", number),
				 errdetail("%s must be %d to %d.", what, PAYEXT_MIN_PARTITION,
						   PAYEXT_MAX_PARTITION)));
}

/*
 * The names of payext's sequences that have handed out a value, as one
 * string, or NULL when none has.  SPI is connected.
 */
static char *
PartitionUsedSequences(void)
{
	int			rc = SPI_execute("SELECT string_agg(c.relname, ', ' ORDER BY c.relname)"
								 "  FROM pg_catalog.pg_class c"
								 " WHERE c.relnamespace = 'payext'::pg_catalog.regnamespace"
								 "   AND CASE WHEN c.relkind = 'S'"
								 "            THEN pg_catalog.pg_sequence_last_value(c.oid) END"
								 "       IS NOT NULL",
								 true, 0);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "payext: could not read payext's sequences: %s",
			 SPI_result_code_string(rc));
	return PayextResultCString(0, 1);
}

/* set_partition(number integer) RETURNS integer */
PG_FUNCTION_INFO_V1(payext_set_partition);
Datum
payext_set_partition(PG_FUNCTION_ARGS)
{
	int			number;
	Oid			relid;
	int			current;
	char	   *used;
	Datum		values[1];
	Oid			types[1] = {INT4OID};
	int			rc;

	PayextRequireArg(fcinfo, 0, "number");
	number = PG_GETARG_INT32(0);
	PartitionCheckNumber(number, "A partition's number");

	PayextSpiConnect();
	relid = PartitionRelid();
	/* Waits for every transaction that made an id under the old number. */
	LockRelationOid(relid, AccessExclusiveLock);
	current = PartitionRead(relid);
	if (current == number)
	{
		PayextSpiFinish();
		PG_RETURN_INT32(number);
	}
	if (current >= 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_PARTITION_FIXED),
				 errmsg("this database is partition %d for life", current),
				 errdetail("Its ids and payment codes carry %d.", current),
				 errhint("Set a partition's number before its first account, code or stay.")));
	/* No row: partition 0 so far.  0 may be fixed at any time. */
	used = number == 0 ? NULL : PartitionUsedSequences();
	if (used != NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_PARTITION_FIXED),
				 errmsg("this database has handed out ids of partition 0"),
				 errdetail("Sequences used: %s.", used),
				 errhint("Set a partition's number before its first account, code or stay.")));

	values[0] = Int32GetDatum(number);
	rc = SPI_execute_with_args("INSERT INTO payext.partition_info (number, set_at)"
							   " VALUES ($1, pg_catalog.now())",
							   1, types, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "payext: could not record the partition: %s", SPI_result_code_string(rc));
	/* partition_guard() sends the invalidation that empties every cache. */
	PayextSpiFinish();
	PG_RETURN_INT32(number);
}

/* current_partition() RETURNS integer */
PG_FUNCTION_INFO_V1(payext_current_partition);
Datum
payext_current_partition(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PayextPartition());
}

/* partition_of(id bigint) RETURNS integer: the partition an id names. */
PG_FUNCTION_INFO_V1(payext_partition_of);
Datum
payext_partition_of(PG_FUNCTION_ARGS)
{
	int64		id;

	PayextRequireArg(fcinfo, 0, "id");
	id = PG_GETARG_INT64(0);
	if (id < 1 || (id >> PAYEXT_ID_SHARD_SHIFT) > PAYEXT_MAX_PARTITION)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PARTITION),
				 errmsg("id " INT64_FORMAT " names no partition", id),
				 errdetail("Ids are positive, with a partition of %d to %d in their high bits.",
						   PAYEXT_MIN_PARTITION, PAYEXT_MAX_PARTITION)));
	PG_RETURN_INT32((int32) (id >> PAYEXT_ID_SHARD_SHIFT));
}

/* The first four bytes of SHA-256 over an owner's bytes, big-endian. */
static uint32
PartitionOwnerHash(const char *owner)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *) owner, strlen(owner), digest);
	return ((uint32) digest[0] << 24) | ((uint32) digest[1] << 16) |
		((uint32) digest[2] << 8) | (uint32) digest[3];
}

/*
 * owner_hash(owner text) RETURNS integer: what a router hashes a user's id
 * to, the same on every node and in every release (not hashtext(), which
 * PostgreSQL may change).
 */
PG_FUNCTION_INFO_V1(payext_owner_hash);
Datum
payext_owner_hash(PG_FUNCTION_ARGS)
{
	char	   *owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);

	PG_RETURN_INT32((int32) PartitionOwnerHash(owner));
}

/*
 * owner_partition(owner text, partitions integer) RETURNS integer: the
 * partition of a user's wallets among `partitions`; for a power of two the
 * partition PL/Proxy's RUN ON owner_hash(owner) picks.
 */
PG_FUNCTION_INFO_V1(payext_owner_partition);
Datum
payext_owner_partition(PG_FUNCTION_ARGS)
{
	char	   *owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);
	int			partitions;

	PayextRequireArg(fcinfo, 1, "partitions");
	partitions = PG_GETARG_INT32(1);
	if (partitions < 1 || partitions > PAYEXT_MAX_PARTITION + 1)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PARTITION),
				 errmsg("%d partitions are out of range", partitions),
				 errdetail("A router has 1 to %d partitions.", PAYEXT_MAX_PARTITION + 1)));
	PG_RETURN_INT32((int32) (PartitionOwnerHash(owner) % (uint32) partitions));
}

/*
 * partition_guard(): the trigger of payext.partition_info.  An INSERT (by
 * set_partition(), or a restore's COPY into a fresh database) sends the
 * invalidation that empties every backend's kept number; UPDATE, DELETE
 * and TRUNCATE are refused (PY502): the number is fixed for life, and a
 * backend that kept the old one would go on making its ids.
 */
PG_FUNCTION_INFO_V1(payext_partition_guard);
Datum
payext_partition_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payext: partition_guard() must be called as a trigger");
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
		TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
	{
		CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
		partition_number = -1;
		partition_relid = InvalidOid;
		return PointerGetDatum(trigdata->tg_trigtuple);
	}
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_PARTITION_FIXED),
			 errmsg("this database's partition number is fixed for life"),
			 errdetail("%s on %s is refused.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE",
					   RelationGetRelationName(trigdata->tg_relation)),
			 errhint("Ids and payment codes carry the number; a partition keeps it when it moves.")));
	PG_RETURN_NULL();			/* not reached */
}
