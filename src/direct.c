/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  Writes of the charge path without the executor (issue 15).
 *
 *	  A payment sets its wallet's balance in a row it has just locked FOR
 *	  NO KEY UPDATE.  Through SPI that one UPDATE costs an executor start,
 *	  an index scan for a row we already hold, and the account's seven
 *	  CHECK constraints read back from their text and planned, every time
 *	  (ExecConstraints was 11 % of a charging backend's time).  Here the
 *	  row is changed where the lock found it: heap_update, which writes the
 *	  WAL (logical decoding included), counts the update for pgstat and
 *	  keeps the predicate locks; new index entries only when the update is
 *	  not HOT, as the executor would make them.
 *
 *	  What the executor would check, the caller and this file give:
 *	  - CHECK constraints: only the balance changes, to a value the caller
 *	    has checked (not negative, and stored, since the row had one); the
 *	    other columns keep values that passed.  A CHECK this file does not
 *	    know (a DBA's) sends the update through SPI.
 *	  - Triggers and rules: any UPDATE trigger but payext's own guard of
 *	    the status column (which a balance update never fires) and the
 *	    foreign keys' checks of the referenced id (which never changes),
 *	    or any rule, sends the update through SPI.
 *	  - Row-level security forced on the table owner: SPI.
 *	  - A publication without a replica identity: the executor's own
 *	    check (CheckCmdReplicaIdentity).
 *	  - No other transaction can have changed the row: the caller holds
 *	    its lock, and gives the tuple id the lock returned.  The id and the
 *	    balance found there are compared with the caller's before writing.
 *
 *	  A charge also reads its merchant's row before it locks anything
 *	  (LedgerReadAccount): here by the primary key's index, with the
 *	  snapshot a SELECT through SPI would take, which keeps what the
 *	  executor would keep for a read (SERIALIZABLE's predicate locks are
 *	  the index's and the heap's).  Row-level security on payext.account
 *	  applies to payext's readers, not to the owner its functions run as.
 *
 *	  test/sql/direct.sql (pgTAP) shows each of these.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_trigger_d.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "direct.h"
#include "spi_util.h"

/* payext.account's CHECK constraints, as src/sql/ledger.sql names them. */
static const char *const account_checks[] = {
	"account_kind_check",
	"account_currency_check",
	"account_status_check",
	"account_balance_not_negative",
	"account_balance_stored",
	"account_wallet_has_owner",
	"account_merchant_has_psid",
};

/* The only UPDATE trigger payext puts on payext.account (status only). */
#define ACCOUNT_STATUS_GUARD "account_status_guard"

static bool
KnownAccountCheck(const char *name)
{
	for (size_t i = 0; i < lengthof(account_checks); i++)
		if (strcmp(name, account_checks[i]) == 0)
			return true;
	return false;
}

/*
 * Whether an UPDATE of the balance through the executor would do nothing
 * that heap_update does not: no trigger or rule to run, no CHECK this file
 * does not know, no policy on the owner.
 */
static bool
DirectUpdateAllowed(Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rules != NULL ||
		(rel->rd_rel->relrowsecurity && rel->rd_rel->relforcerowsecurity))
		return false;
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *trig = &rel->trigdesc->triggers[i];

			/*
			 * The foreign keys that reference an account act only when its id
			 * changes, which a balance update never does.
			 */
			if (TRIGGER_FOR_UPDATE(trig->tgtype) &&
				strcmp(trig->tgname, ACCOUNT_STATUS_GUARD) != 0 &&
				RI_FKey_trigger_type(trig->tgfoid) != RI_TRIGGER_PK)
				return false;
		}
	}
	if (constr != NULL)
	{
		for (int i = 0; i < constr->num_check; i++)
			if (!KnownAccountCheck(constr->check[i].ccname))
				return false;
	}
	return true;
}

static int
AccountAttnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	elog(ERROR, "payext: payext.account has no column %s", name);
	return -1;					/* keep the compiler quiet */
}

bool
PayextDirectSetBalance(ItemPointer tid, int64 id, int64 before, int64 after)
{
	Oid			relid = PayextRelid("account");
	Relation	rel;
	TupleDesc	desc;
	HeapTupleData oldtup;
	HeapTuple	newtup;
	Buffer		buffer;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	int			id_att;
	int			balance_att;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	result;

	/* The caller checked the new balance; the CHECK would refuse less. */
	if (!ItemPointerIsValid(tid) || after < 0 || !OidIsValid(relid))
		return false;
	rel = table_open(relid, RowExclusiveLock);
	if (!DirectUpdateAllowed(rel))
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);
	desc = RelationGetDescr(rel);
	id_att = AccountAttnum(desc, "id");
	balance_att = AccountAttnum(desc, "balance");

	/* The locked row, and a copy of it with the new balance. */
	oldtup.t_self = *tid;
	if (!heap_fetch(rel, SnapshotAny, &oldtup, &buffer, false))
		elog(ERROR, "payext: the locked row of account " INT64_FORMAT " is gone", id);
	values = palloc(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	replace = palloc0(desc->natts * sizeof(bool));
	heap_deform_tuple(&oldtup, desc, values, nulls);
	if (nulls[id_att] || DatumGetInt64(values[id_att]) != id ||
		nulls[balance_att] || DatumGetInt64(values[balance_att]) != before)
		elog(ERROR, "payext: the locked row of account " INT64_FORMAT " is not the one read", id);
	values[balance_att] = Int64GetDatum(after);
	replace[balance_att] = true;
	newtup = heap_modify_tuple(&oldtup, desc, values, nulls, replace);
	ReleaseBuffer(buffer);

	/*
	 * We hold the row's lock, so no other transaction has updated or deleted
	 * it; we have not either since the lock (the caller's contract), so
	 * anything but TM_Ok is a bug.
	 */
	result = heap_update(rel, tid, newtup, GetCurrentCommandId(true),
						 InvalidSnapshot, true, &tmfd, &lockmode);
	if (result != TM_Ok)
		elog(ERROR, "payext: the locked row of account " INT64_FORMAT " could not be updated (%d)",
			 id, (int) result);

	/* Not HOT: every index gets an entry for the new version. */
	if (!HeapTupleIsHeapOnly(newtup))
	{
		EState	   *estate = CreateExecutorState();
		ResultRelInfo *rri = makeNode(ResultRelInfo);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);

		/* No range table: "update" would ask it for the updated columns. */
		InitResultRelInfo(rri, rel, 0, NULL, 0);
		ExecOpenIndices(rri, false);
		ExecStoreHeapTuple(newtup, slot, false);
		ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		ExecCloseIndices(rri);
		ExecDropSingleTupleTableSlot(slot);
		FreeExecutorState(estate);
	}
	heap_freetuple(newtup);
	pfree(values);
	pfree(nulls);
	pfree(replace);
	table_close(rel, NoLock);

	/* Later statements of this transaction see the new balance. */
	CommandCounterIncrement();
	return true;
}

/* A text column as a C string in the current context; NULL for NULL. */
static char *
DirectText(Datum *values, bool *nulls, int att)
{
	return nulls[att] ? NULL : TextDatumGetCString(values[att]);
}

bool
PayextDirectReadAccount(int64 id, PayextAccountRow *row)
{
	Oid			relid = PayextRelid("account");
	Relation	rel;
	Relation	index;
	TupleDesc	desc;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	bool		found;

	if (!OidIsValid(relid))
		elog(ERROR, "payext: relation payext.account is missing");
	rel = table_open(relid, AccessShareLock);
	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	desc = RelationGetDescr(rel);

	/* What SPI does before a statement that may write: see our own rows. */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		Datum	   *values;
		bool	   *nulls;

		slot_getallattrs(slot);
		values = slot->tts_values;
		nulls = slot->tts_isnull;
		row->id = DatumGetInt64(values[AccountAttnum(desc, "id")]);
		row->kind = DirectText(values, nulls, AccountAttnum(desc, "kind"));
		row->currency = DirectText(values, nulls, AccountAttnum(desc, "currency"));
		row->balance_null = nulls[AccountAttnum(desc, "balance")];
		row->balance = row->balance_null ? 0 :
			DatumGetInt64(values[AccountAttnum(desc, "balance")]);
		row->status = DirectText(values, nulls, AccountAttnum(desc, "status"));
		row->owner = DirectText(values, nulls, AccountAttnum(desc, "owner"));
		row->public_service_id = DirectText(values, nulls,
											AccountAttnum(desc, "public_service_id"));
		row->held_until_null = nulls[AccountAttnum(desc, "held_until")];
		row->held_until = row->held_until_null ? 0 :
			DatumGetTimestampTz(values[AccountAttnum(desc, "held_until")]);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return found;
}
