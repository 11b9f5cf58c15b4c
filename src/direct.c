/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  Writes and reads of the charge path without the executor (issue 15).
 *
 *	  Through SPI every statement pays an executor start, and every write
 *	  its table's CHECK constraints read back from their text and planned
 *	  again (ExecConstraints was 11 % of a charging backend's time, most of
 *	  it stringToNode).  The charge's simplest statements are done here
 *	  instead, with heapam and the executor's own helpers:
 *	  - an update of a row the caller holds locked, where its lock found
 *	    it (the wallet's balance, the code's state): heap_update;
 *	  - a plain insert (the payment): heap_insert;
 *	  - a read by the primary key (the merchant): an index scan.
 *	  heapam writes the WAL (logical decoding included), counts the rows
 *	  for pgstat, toasts long values and checks SERIALIZABLE conflicts;
 *	  ExecInsertIndexTuples makes the index entries (none for a HOT
 *	  update), with unique checks that wait for the other inserter and
 *	  raise 23505 as the executor does; ExecConstraints checks NOT NULL and
 *	  every CHECK of the table, a DBA's too, from expressions compiled once
 *	  per backend and table (dropped when the table's relcache entry is
 *	  invalidated, by DDL or otherwise).
 *
 *	  What the executor would do and this file cannot, sends the write back
 *	  to the caller's SPI statement (the functions return false, having
 *	  written nothing):
 *	  - a trigger that the statement would fire: for an update, any UPDATE
 *	    trigger except those limited to columns not set (payext's guard of
 *	    account.status) and the foreign keys' checks of a referenced key
 *	    that is not set; for an insert, any INSERT trigger;
 *	  - a rule, or row-level security forced on the table's owner;
 *	  - for an insert, columns of the table the caller does not give (a
 *	    DBA's column with a default).
 *	  A publication without a replica identity refuses the update with the
 *	  executor's own check (CheckCmdReplicaIdentity).  The caller holds the
 *	  row's lock, so no other transaction changed it; the values the lock
 *	  read are compared with the row before it is written.
 *
 *	  test/pgtap/direct.sql shows each of these.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_trigger_d.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "direct.h"
#include "spi_util.h"

/*
 * One of payext's tables, as this backend writes it: its relation id and
 * an executor state whose ResultRelInfo keeps the table's compiled CHECK
 * expressions from one call to the next.
 */
struct PayextDirectTable
{
	const char *name;			/* in schema payext */
	Oid			relid;			/* InvalidOid: look it up */
	bool		stale;			/* relcache invalidated: rebuild */
	EState	   *estate;			/* long-lived; NULL until first use */
	ResultRelInfo *rri;
};

static PayextDirectTable direct_account =
{
	.name = "account"
};
static PayextDirectTable direct_payment_code =
{
	.name = "payment_code"
};
static PayextDirectTable direct_payment =
{
	.name = "payment"
};

PayextDirectTable *const PayextDirectAccount = &direct_account;
PayextDirectTable *const PayextDirectPaymentCode = &direct_payment_code;
PayextDirectTable *const PayextDirectPayment = &direct_payment;

static PayextDirectTable *const direct_tables[] = {
	&direct_account, &direct_payment_code, &direct_payment
};

static bool callback_registered = false;

static void
DirectRelcacheCallback(Datum arg, Oid relid)
{
	for (size_t i = 0; i < lengthof(direct_tables); i++)
		if (relid == InvalidOid || relid == direct_tables[i]->relid)
			direct_tables[i]->stale = true;
}

/*
 * Opens the table with the lock `lockmode`, and makes sure its executor
 * state is current: built again after any invalidation of the table.
 */
static Relation
DirectOpen(PayextDirectTable *t, LOCKMODE lockmode)
{
	Relation	rel;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(DirectRelcacheCallback, (Datum) 0);
		callback_registered = true;
	}
	if (t->stale || !OidIsValid(t->relid))
	{
		if (t->estate != NULL)
			FreeExecutorState(t->estate);
		t->estate = NULL;
		t->rri = NULL;
		t->relid = PayextRelid(t->name);
		t->stale = false;
		if (!OidIsValid(t->relid))
			elog(ERROR, "payext: relation payext.%s is missing", t->name);
	}
	rel = table_open(t->relid, lockmode);
	if (t->estate == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

		t->estate = CreateExecutorState();
		MemoryContextSwitchTo(t->estate->es_query_cxt);
		t->rri = makeNode(ResultRelInfo);
		/* No range table: the relation is not a query's result. */
		InitResultRelInfo(t->rri, rel, 0, NULL, 0);
		MemoryContextSwitchTo(old);
	}
	t->rri->ri_RelationDesc = rel;
	return rel;
}

static void
DirectClose(PayextDirectTable *t, Relation rel)
{
	ResetPerTupleExprContext(t->estate);
	t->rri->ri_RelationDesc = NULL;
	table_close(rel, NoLock);
}

/* The attribute number (0-based) of a column, or -1. */
static int
DirectAttnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/*
 * Whether a write of kind `cmd` (setting the columns `set`, for an update)
 * through the executor would do nothing that this file does not.
 */
static bool
DirectAllowed(Relation rel, CmdType cmd, Bitmapset *set)
{
	Bitmapset  *keys = NULL;
	bool		allowed = true;

	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rules != NULL ||
		(rel->rd_rel->relrowsecurity && rel->rd_rel->relforcerowsecurity))
		return false;
	if (rel->trigdesc == NULL)
		return true;
	if (cmd == CMD_UPDATE)
		keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	for (int i = 0; i < rel->trigdesc->numtriggers && allowed; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];
		Bitmapset  *cols = NULL;

		if (cmd == CMD_INSERT)
		{
			if (TRIGGER_FOR_INSERT(trig->tgtype))
				allowed = false;
			continue;
		}
		if (!TRIGGER_FOR_UPDATE(trig->tgtype))
			continue;
		/* The foreign keys act when a referenced key changes. */
		if (RI_FKey_trigger_type(trig->tgfoid) == RI_TRIGGER_PK &&
			!bms_overlap(keys, set))
			continue;
		/* UPDATE OF columns: fires when one of them is set. */
		for (int c = 0; c < trig->tgnattr; c++)
			cols = bms_add_member(cols, trig->tgattr[c] - FirstLowInvalidHeapAttributeNumber);
		if (TRIGGER_FOR_ROW(trig->tgtype) && trig->tgnattr > 0 && !bms_overlap(cols, set))
			continue;
		allowed = false;
	}
	return allowed;
}

/*
 * Index entries for a new row version, as the executor makes them: unique
 * checks that wait for another inserter and raise 23505.
 */
static void
DirectInsertIndexes(PayextDirectTable *t, TupleTableSlot *slot)
{
	/*
	 * An executor state of this call's: index predicates and expressions are
	 * compiled into it, per call, as the executor does per statement.
	 */
	EState	   *estate = CreateExecutorState();

	ExecOpenIndices(t->rri, false);
	/* Not "update = true": that hint reads a range table we do not have. */
	ExecInsertIndexTuples(t->rri, slot, estate, false, false, NULL, NIL);
	ExecCloseIndices(t->rri);
	t->rri->ri_NumIndices = 0;
	FreeExecutorState(estate);
}

bool
PayextDirectUpdate(PayextDirectTable *t, ItemPointer tid,
				   int nexpect, const char *const *expect_cols, const int64 *expect,
				   int nset, const char *const *set_cols, const Datum *set,
				   const bool *set_null)
{
	Relation	rel;
	TupleDesc	desc;
	HeapTupleData oldtup;
	HeapTuple	newtup;
	Buffer		buffer;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	Bitmapset  *set_atts = NULL;
	TupleTableSlot *slot;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	result;

	if (!ItemPointerIsValid(tid))
		return false;
	rel = DirectOpen(t, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	replace = palloc0(desc->natts * sizeof(bool));
	for (int i = 0; i < nset; i++)
	{
		int			att = DirectAttnum(desc, set_cols[i]);

		if (att < 0)
			elog(ERROR, "payext: payext.%s has no column %s", t->name, set_cols[i]);
		replace[att] = true;
		set_atts = bms_add_member(set_atts, att + 1 - FirstLowInvalidHeapAttributeNumber);
	}
	if (!DirectAllowed(rel, CMD_UPDATE, set_atts))
	{
		DirectClose(t, rel);
		return false;
	}
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);

	/* The locked row, as the lock read it, and a copy with the new values. */
	oldtup.t_self = *tid;
	if (!heap_fetch(rel, SnapshotAny, &oldtup, &buffer, false))
		elog(ERROR, "payext: the locked row of payext.%s is gone", t->name);
	values = palloc(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	heap_deform_tuple(&oldtup, desc, values, nulls);
	for (int i = 0; i < nexpect; i++)
	{
		int			att = DirectAttnum(desc, expect_cols[i]);

		if (att < 0 || nulls[att] || DatumGetInt64(values[att]) != expect[i])
			elog(ERROR, "payext: the locked row of payext.%s is not the one read", t->name);
	}
	for (int i = 0; i < nset; i++)
	{
		int			att = DirectAttnum(desc, set_cols[i]);

		values[att] = set[i];
		nulls[att] = set_null != NULL && set_null[i];
	}
	newtup = heap_modify_tuple(&oldtup, desc, values, nulls, replace);
	ReleaseBuffer(buffer);

	slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(newtup, slot, false);
	if (desc->constr != NULL)
		ExecConstraints(t->rri, slot, t->estate);

	/*
	 * We hold the row's lock, so no other transaction has updated or deleted
	 * it, nor have we since the lock (the caller's contract): anything but
	 * TM_Ok is a bug.
	 */
	result = heap_update(rel, tid, newtup, GetCurrentCommandId(true),
						 InvalidSnapshot, true, &tmfd, &lockmode);
	if (result != TM_Ok)
		elog(ERROR, "payext: the locked row of payext.%s could not be updated (%d)",
			 t->name, (int) result);
	if (!HeapTupleIsHeapOnly(newtup))
	{
		slot->tts_tid = newtup->t_self;
		DirectInsertIndexes(t, slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(newtup);
	pfree(values);
	pfree(nulls);
	pfree(replace);
	DirectClose(t, rel);

	/* Later statements of this transaction see the new values. */
	CommandCounterIncrement();
	return true;
}

bool
PayextDirectInsert(PayextDirectTable *t, int ncols, const char *const *cols,
				   const Datum *given, const bool *given_null)
{
	Relation	rel;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			live = 0;
	HeapTuple	tup;
	TupleTableSlot *slot;

	rel = DirectOpen(t, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	/* Every column given, so that no default is needed. */
	if (live != ncols || !DirectAllowed(rel, CMD_INSERT, NULL))
	{
		DirectClose(t, rel);
		return false;
	}
	values = palloc0(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	memset(nulls, true, desc->natts * sizeof(bool));
	for (int i = 0; i < ncols; i++)
	{
		int			att = DirectAttnum(desc, cols[i]);

		if (att < 0)
			elog(ERROR, "payext: payext.%s has no column %s", t->name, cols[i]);
		values[att] = given[i];
		nulls[att] = given_null != NULL && given_null[i];
	}
	tup = heap_form_tuple(desc, values, nulls);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tup, slot, false);
	if (desc->constr != NULL)
		ExecConstraints(t->rri, slot, t->estate);

	heap_insert(rel, tup, GetCurrentCommandId(true), 0, NULL);
	slot->tts_tid = tup->t_self;
	DirectInsertIndexes(t, slot);

	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(tup);
	pfree(values);
	pfree(nulls);
	DirectClose(t, rel);
	CommandCounterIncrement();
	return true;
}

/* A text column as a C string in the current context; NULL for NULL. */
static char *
DirectText(Datum *values, bool *nulls, int att)
{
	return nulls[att] ? NULL : TextDatumGetCString(values[att]);
}

/* The account row in slot, into row. */
static void
DirectAccountFromSlot(TupleDesc desc, TupleTableSlot *slot, PayextAccountRow *row)
{
	Datum	   *values;
	bool	   *nulls;
	int			balance = DirectAttnum(desc, "balance");
	int			held_until = DirectAttnum(desc, "held_until");

	slot_getallattrs(slot);
	values = slot->tts_values;
	nulls = slot->tts_isnull;
	row->id = DatumGetInt64(values[DirectAttnum(desc, "id")]);
	row->kind = DirectText(values, nulls, DirectAttnum(desc, "kind"));
	row->currency = DirectText(values, nulls, DirectAttnum(desc, "currency"));
	row->balance_null = nulls[balance];
	row->balance = row->balance_null ? 0 : DatumGetInt64(values[balance]);
	row->status = DirectText(values, nulls, DirectAttnum(desc, "status"));
	row->owner = DirectText(values, nulls, DirectAttnum(desc, "owner"));
	row->public_service_id = DirectText(values, nulls,
										DirectAttnum(desc, "public_service_id"));
	row->held_until_null = nulls[held_until];
	row->held_until = row->held_until_null ? 0 :
		DatumGetTimestampTz(values[held_until]);
	row->tid = slot->tts_tid;
}

/*
 * The account `id` as the statement's snapshot sees it (a new one under
 * READ COMMITTED, after a command-counter increment, as SPI takes for a
 * statement that may write), found by the primary key's index, in slot.
 */
static bool
DirectFindAccount(Relation rel, int64 id, Snapshot snapshot, TupleTableSlot *slot)
{
	Relation	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

bool
PayextDirectReadAccount(int64 id, PayextAccountRow *row)
{
	Relation	rel = DirectOpen(PayextDirectAccount, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot;
	bool		found;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	found = DirectFindAccount(rel, id, snapshot, slot);
	if (found)
		DirectAccountFromSlot(RelationGetDescr(rel), slot, row);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	DirectClose(PayextDirectAccount, rel);
	return found;
}

/*
 * SELECT ... FROM payext.account WHERE id = $1 AND <need> FOR <mode>, as
 * the executor runs it (ExecLockRows): the row the snapshot sees, locked; under READ
 * COMMITTED, when another transaction updated it first, its newest version
 * after that transaction ends (EvalPlanQual's lock and retry; the caller
 * checks its own conditions on the row returned); under REPEATABLE READ and
 * SERIALIZABLE such a row is 40001.  false when there is no row (or it was
 * deleted meanwhile).
 */
/* Whether the account in slot is of the kind `need` asks for. */
static bool
DirectAccountQual(TupleDesc desc, TupleTableSlot *slot, PayextAccountNeed need)
{
	bool		isnull;
	Datum		value;

	switch (need)
	{
		case PAYEXT_ACCOUNT_ANY:
			return true;
		case PAYEXT_ACCOUNT_STORES_BALANCE:
			(void) slot_getattr(slot, DirectAttnum(desc, "balance") + 1, &isnull);
			return !isnull;
		case PAYEXT_ACCOUNT_MERCHANT:
			value = slot_getattr(slot, DirectAttnum(desc, "kind") + 1, &isnull);
			return !isnull && strcmp(TextDatumGetCString(value), "merchant") == 0;
	}
	return false;
}

bool
PayextDirectLockAccount(int64 id, PayextAccountNeed need, LockTupleMode mode,
						PayextAccountRow *row)
{
	Relation	rel = DirectOpen(PayextDirectAccount, RowShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TupleTableSlot *locked = table_slot_create(rel, NULL);
	Snapshot	snapshot;
	TM_FailureData tmfd;
	TM_Result	result;
	ItemPointerData tid;
	uint8		flags = TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS;
	bool		found;

	if (!IsolationUsesXactSnapshot())
		flags |= TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	found = DirectFindAccount(rel, id, snapshot, slot) &&
		DirectAccountQual(RelationGetDescr(rel), slot, need);
	if (found)
	{
		tid = slot->tts_tid;
		result = table_tuple_lock(rel, &tid, snapshot, locked,
								  GetCurrentCommandId(true), mode, LockWaitBlock,
								  flags, &tmfd);
		switch (result)
		{
			case TM_Ok:
				/* A newer version than the scan's: its conditions again. */
				found = !tmfd.traversed ||
					DirectAccountQual(RelationGetDescr(rel), locked, need);
				if (found)
					DirectAccountFromSlot(RelationGetDescr(rel), locked, row);
				break;
			case TM_SelfModified:
				/* Changed by this command: the executor skips it too. */
				found = false;
				break;
			case TM_Updated:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent update")));
				elog(ERROR, "payext: unexpected result of locking account " INT64_FORMAT, id);
				break;
			case TM_Deleted:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent delete")));
				found = false;
				break;
			default:
				elog(ERROR, "payext: unexpected result %d of locking account " INT64_FORMAT,
					 (int) result, id);
		}
	}
	ExecDropSingleTupleTableSlot(locked);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	DirectClose(PayextDirectAccount, rel);
	return found;
}
