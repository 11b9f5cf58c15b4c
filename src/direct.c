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
 *	  - a plain insert (the payment; the interaction, whose own trigger
 *	    interaction_recorded the caller then does the work of, where the
 *	    INSERT would have fired it): heap_insert;
 *	  - a read by the primary key (the merchant): an index scan;
 *	  - a read through a btree index (the association trigger's: the
 *	    pair's state, the merchant's rule, the pair's payments in the
 *	    rule's window): an index scan in a statement's snapshot, unless
 *	    row-level security applies or SELECT is not granted (then SPI);
 *	  - a lock of one row by a unique int8 key (the code, the wallet, the
 *	    merchant; a parking lot, FOR KEY SHARE, as a foreign key's check)
 *	    or through a unique index (a plate's open stay): table_tuple_lock
 *	    as ExecLockRows calls it, the newest version after a concurrent
 *	    update under READ COMMITTED (its conditions checked again), 40001
 *	    under REPEATABLE READ and SERIALIZABLE.
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
 *	    that is not set; for an insert, any INSERT trigger but the table's
 *	    own as payext made it, enabled and outside a replica's session;
 *	  - a rule, row-level security that applies to the function's owner,
 *	    or a missing privilege (SPI raises 42501);
 *	  - a column of a domain type or a stored generated column;
 *	  - for an insert, columns of the table the caller does not give (a
 *	    DBA's column with a default);
 *	  - for an update, a row version this transaction has updated since
 *	    the lock (a DBA's trigger elsewhere, say): SPI finds the newest.
 *	  A publication without a replica identity refuses the update with the
 *	  executor's own check (CheckCmdReplicaIdentity).  The caller holds the
 *	  row's lock, so no other transaction changed it; the values the lock
 *	  read are compared with the row before it is written.
 *
 *	  test/pgtap/direct.sql shows each of these; the isolation specs show
 *	  the locks (charge_isolation_levels, charge_drain, reverse_charge_race
 *	  among them), DDL during a charge (direct_ddl), and the association
 *	  rule's reads after the pair's lock (assoc_concurrent_payments).
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
#include "catalog/pg_constraint.h"
#include "catalog/pg_type_d.h"
#include "catalog/pg_trigger_d.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "direct.h"
#include "spi_util.h"

/*
 * A single-column foreign key of one of payext's tables to the primary key
 * id of payext.<references>.
 */
typedef struct DirectLockedRef
{
	const char *column;
	const char *references;
} DirectLockedRef;

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
	bool		plain;			/* no domain-typed or generated column */
	const char *own_trigger;	/* its trigger function in payext, or NULL */
	Oid			own_trigger_fn; /* InvalidOid: look it up */
	/* foreign keys whose referenced rows a caller's locks give */
	const DirectLockedRef *locked_refs;
	int			nlocked_ri;		/* the insert checks of those foreign keys */
	Oid			locked_ri[4];
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
static PayextDirectTable direct_interaction =
{
	.name = "interaction",
	.own_trigger = "interaction_recorded"
};
static PayextDirectTable direct_interaction_pair =
{
	.name = "interaction_pair"
};
static PayextDirectTable direct_merchant_credit =
{
	.name = "merchant_credit"
};
static const DirectLockedRef transfer_refs[] = {
	{"debit_account", "account"}, {"credit_account", "account"}, {NULL, NULL}
};
static PayextDirectTable direct_transfer =
{
	.name = "transfer",
	.locked_refs = transfer_refs
};
static const DirectLockedRef parking_stay_refs[] = {
	{"lot", "parking_lot"}, {NULL, NULL}
};
static PayextDirectTable direct_parking_stay =
{
	.name = "parking_stay",
	.locked_refs = parking_stay_refs
};
static const DirectLockedRef parking_payment_refs[] = {
	{"transfer_id", "transfer"}, {"stay", "parking_stay"}, {"wallet", "account"},
	{NULL, NULL}
};
static PayextDirectTable direct_parking_payment =
{
	.name = "parking_payment",
	.locked_refs = parking_payment_refs
};

static PayextDirectTable direct_parking_plate_events =
{
	.name = "parking_plate_events",
	.locked_refs = parking_stay_refs	/* its lot, as a stay's */
};

static const DirectLockedRef association_state_refs[] = {
	{"rule_id", "association_rule"}, {NULL, NULL}
};
static PayextDirectTable direct_association_state =
{
	.name = "association_state",
	.locked_refs = association_state_refs
};

static PayextDirectTable direct_reference_claim =
{
	.name = "reference_claim"
};

PayextDirectTable *const PayextDirectAccount = &direct_account;
PayextDirectTable *const PayextDirectPaymentCode = &direct_payment_code;
PayextDirectTable *const PayextDirectPayment = &direct_payment;
PayextDirectTable *const PayextDirectInteraction = &direct_interaction;
PayextDirectTable *const PayextDirectInteractionPair = &direct_interaction_pair;
PayextDirectTable *const PayextDirectTransfer = &direct_transfer;
PayextDirectTable *const PayextDirectParkingStay = &direct_parking_stay;
PayextDirectTable *const PayextDirectParkingPayment = &direct_parking_payment;
PayextDirectTable *const PayextDirectParkingPlateEvents = &direct_parking_plate_events;
PayextDirectTable *const PayextDirectAssociationState = &direct_association_state;
PayextDirectTable *const PayextDirectReferenceClaim = &direct_reference_claim;

static PayextDirectTable *const direct_tables[] = {
	&direct_account, &direct_payment_code, &direct_payment, &direct_interaction,
	&direct_interaction_pair, &direct_transfer, &direct_merchant_credit,
	&direct_parking_stay, &direct_parking_payment, &direct_parking_plate_events,
	&direct_association_state, &direct_reference_claim
};

static bool callback_registered = false;

static int	DirectFindAttnum(TupleDesc desc, const char *name);

static void
DirectRelcacheCallback(Datum arg, Oid relid)
{
	for (size_t i = 0; i < lengthof(direct_tables); i++)
		if (relid == InvalidOid || relid == direct_tables[i]->relid)
			direct_tables[i]->stale = true;
}

/*
 * Whether every column of rel is one the direct path can write as the
 * executor would: no domain (its constraints) and no stored generated
 * column (its expression).
 */
static bool
DirectPlainColumns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && get_typtype(att->atttypid) == TYPTYPE_DOMAIN)
			return false;
	}
	return true;
}

/*
 * Whether the foreign key `conoid` of rel is one of t->locked_refs: a
 * single column of rel referencing the id of the payext table it names.
 */
static bool
DirectLockedReference(PayextDirectTable *t, Relation rel, Oid conoid)
{
	HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Form_pg_constraint con;
	bool		isnull;
	bool		covered = false;

	if (!HeapTupleIsValid(tup))
		return false;
	con = (Form_pg_constraint) GETSTRUCT(tup);
	if (con->contype == CONSTRAINT_FOREIGN && con->conrelid == RelationGetRelid(rel))
	{
		Datum	   *conkey;
		Datum	   *confkey;
		int			nconkey;
		int			nconfkey;

		deconstruct_array(DatumGetArrayTypeP(SysCacheGetAttr(CONSTROID, tup,
															 Anum_pg_constraint_conkey,
															 &isnull)),
						  INT2OID, sizeof(int16), true, TYPALIGN_SHORT,
						  &conkey, NULL, &nconkey);
		deconstruct_array(DatumGetArrayTypeP(SysCacheGetAttr(CONSTROID, tup,
															 Anum_pg_constraint_confkey,
															 &isnull)),
						  INT2OID, sizeof(int16), true, TYPALIGN_SHORT,
						  &confkey, NULL, &nconfkey);
		for (int i = 0; nconkey == 1 && nconfkey == 1 &&
			 t->locked_refs[i].column != NULL && !covered; i++)
		{
			Oid			references = PayextRelid(t->locked_refs[i].references);

			covered = OidIsValid(references) && con->confrelid == references &&
				DatumGetInt16(confkey[0]) == get_attnum(references, "id") &&
				DirectFindAttnum(RelationGetDescr(rel), t->locked_refs[i].column) + 1 ==
				DatumGetInt16(conkey[0]);
		}
	}
	ReleaseSysCache(tup);
	return covered;
}

/*
 * The insert checks of the foreign keys that t->locked_refs names, among
 * rel's triggers, into t->locked_ri.
 */
static void
DirectFindLockedReferences(PayextDirectTable *t, Relation rel)
{
	t->nlocked_ri = 0;
	if (t->locked_refs == NULL || rel->trigdesc == NULL)
		return;
	for (int i = 0; i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];

		if (t->nlocked_ri < (int) lengthof(t->locked_ri) &&
			trig->tgfoid == F_RI_FKEY_CHECK_INS &&
			DirectLockedReference(t, rel, trig->tgconstraint))
			t->locked_ri[t->nlocked_ri++] = trig->tgoid;
	}
}

/*
 * Opens the table with the lock `lockmode`, and makes sure its executor
 * state is current: built again after any invalidation of the table.  The
 * invalidations that taking the lock brings in (DDL that committed while
 * we waited) are seen before the state is used.
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
		t->relid = PayextRelid(t->name);
		if (!OidIsValid(t->relid))
			elog(ERROR, "payext: relation payext.%s is missing", t->name);
		t->stale = true;
	}
	rel = table_open(t->relid, lockmode);
	if (t->stale || t->estate == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
		EState	   *estate;
		ResultRelInfo *rri;

		if (t->estate != NULL)
			FreeExecutorState(t->estate);
		t->estate = NULL;
		t->rri = NULL;
		estate = CreateExecutorState();
		MemoryContextSwitchTo(estate->es_query_cxt);
		rri = makeNode(ResultRelInfo);
		/* No range table: the relation is not a query's result. */
		InitResultRelInfo(rri, rel, 0, NULL, 0);
		MemoryContextSwitchTo(old);
		t->plain = DirectPlainColumns(rel);
		t->own_trigger_fn = InvalidOid;
		if (t->own_trigger != NULL)
			t->own_trigger_fn =
				LookupFuncName(list_make2(makeString("payext"),
										  makeString(unconstify(char *, t->own_trigger))),
							   0, NULL, true);
		DirectFindLockedReferences(t, rel);
		t->estate = estate;
		t->rri = rri;
		t->stale = false;
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
DirectFindAttnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/* The attribute number (0-based) of a column payext's tables have. */
static int
DirectAttnum(TupleDesc desc, const char *name)
{
	int			att = DirectFindAttnum(desc, name);

	if (att < 0)
		elog(ERROR, "payext: a table of payext has no column %s", name);
	return att;
}

/*
 * Whether trig is the table's own trigger as payext made it, and would
 * fire for a row inserted now: an AFTER ... FOR EACH ROW trigger of the
 * function payext.<own_trigger>, without arguments, WHEN clause or
 * transition tables, enabled, and not in a replica's session
 * (session_replication_role = replica fires only ENABLE REPLICA triggers).
 */
static bool
DirectOwnTrigger(PayextDirectTable *t, Trigger *trig)
{
	return OidIsValid(t->own_trigger_fn) &&
		trig->tgfoid == t->own_trigger_fn &&
		TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_AFTER(trig->tgtype) &&
		!OidIsValid(trig->tgconstraint) && !trig->tgdeferrable &&
		trig->tgnargs == 0 && trig->tgqual == NULL &&
		trig->tgoldtable == NULL && trig->tgnewtable == NULL &&
		trig->tgenabled == TRIGGER_FIRES_ON_ORIGIN &&
		SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA;
}

/*
 * Whether trig is the insert check of a foreign key that the caller's row
 * locks give (the referenced rows exist and are locked until commit), and
 * would fire as the executor fires it: enabled, not in a replica's
 * session (where the executor skips it too, so nothing is lost).
 */
static bool
DirectLockedCheck(PayextDirectTable *t, Trigger *trig)
{
	for (int i = 0; i < t->nlocked_ri; i++)
		if (trig->tgoid == t->locked_ri[i])
			return true;
	return false;
}

/*
 * The referencing columns of foreign key conoid, as attribute numbers
 * offset by FirstLowInvalidHeapAttributeNumber.
 */
static Bitmapset *
DirectForeignKeyColumns(Oid conoid)
{
	HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Bitmapset  *cols = NULL;
	Datum	   *conkey;
	int			n;
	bool		isnull;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "payext: cache lookup failed for constraint %u", conoid);
	deconstruct_array(DatumGetArrayTypeP(SysCacheGetAttr(CONSTROID, tup,
														 Anum_pg_constraint_conkey,
														 &isnull)),
					  INT2OID, sizeof(int16), true, TYPALIGN_SHORT, &conkey, NULL, &n);
	for (int i = 0; i < n; i++)
		cols = bms_add_member(cols, DatumGetInt16(conkey[i]) - FirstLowInvalidHeapAttributeNumber);
	ReleaseSysCache(tup);
	return cols;
}

/*
 * Whether a write of kind `cmd` (setting the columns `set`, for an update)
 * through the executor would do nothing that this file does not, but for
 * the table's own trigger: *fire_own (for an insert) says whether it fires;
 * and for an update, the checks of foreign keys it does not set, which
 * fire only for a row this transaction inserted (*fk_own_row: there are
 * such checks).
 */
static bool
DirectAllowed(PayextDirectTable *t, Relation rel, CmdType cmd, Bitmapset *set,
			  bool refs_locked, bool *fire_own, bool *fk_own_row)
{
	Bitmapset  *keys = NULL;
	bool		allowed = true;

	if (!t->plain ||
		rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rules != NULL ||
		(rel->rd_rel->relrowsecurity &&
		 check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED) ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(),
						  cmd == CMD_INSERT ? ACL_INSERT : ACL_UPDATE) != ACLCHECK_OK ||
	/* one privilege a check: a mask passes with any of its bits */
		(cmd == CMD_UPDATE &&
		 pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK))
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
			if (!TRIGGER_FOR_INSERT(trig->tgtype))
				continue;
			if (refs_locked && DirectLockedCheck(t, trig))
				continue;
			if (fire_own != NULL && !*fire_own && DirectOwnTrigger(t, trig))
				*fire_own = true;
			else
				allowed = false;
			continue;
		}
		if (!TRIGGER_FOR_UPDATE(trig->tgtype))
			continue;
		/* The foreign keys act when a referenced key changes. */
		if (RI_FKey_trigger_type(trig->tgfoid) == RI_TRIGGER_PK &&
			!bms_overlap(keys, set))
			continue;

		/*
		 * And their checks when a referencing key changes, or the row was
		 * inserted by this transaction (RI_FKey_fk_upd_check_required): the
		 * caller declines such a row (*fk_own_row).
		 */
		if (RI_FKey_trigger_type(trig->tgfoid) == RI_TRIGGER_FK &&
			fk_own_row != NULL && !bms_overlap(DirectForeignKeyColumns(trig->tgconstraint), set))
		{
			*fk_own_row = true;
			continue;
		}
		/* UPDATE OF columns: fires when one of them is set. */
		for (int c = 0; c < trig->tgnattr; c++)
			cols = bms_add_member(cols, trig->tgattr[c] - FirstLowInvalidHeapAttributeNumber);
		if (TRIGGER_FOR_ROW(trig->tgtype) && trig->tgnattr > 0 && !bms_overlap(cols, set))
			continue;
		allowed = false;
	}
	return allowed;
}

/* The table's columns, dropped ones left out. */
static int
DirectLiveColumns(TupleDesc desc)
{
	int			live = 0;

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	return live;
}

/* What DirectInsertRow asks before it inserts ncols columns. */
static bool
DirectInsertAllowed(PayextDirectTable *t, Relation rel, int ncols, bool refs_locked,
					bool *fire_own)
{
	if (fire_own != NULL)
		*fire_own = false;
	if (DirectLiveColumns(RelationGetDescr(rel)) == ncols &&
		DirectAllowed(t, rel, CMD_INSERT, NULL, refs_locked, fire_own, NULL))
		return true;
	if (fire_own != NULL)
		*fire_own = false;
	return false;
}

bool
PayextDirectInsertAllowed(PayextDirectTable *t, int ncols, bool refs_locked)
{
	Relation	rel = DirectOpen(t, RowExclusiveLock);
	bool		allowed = DirectInsertAllowed(t, rel, ncols, refs_locked, NULL);

	DirectClose(t, rel);
	return allowed;
}

bool
PayextDirectUpsertAllowed(PayextDirectTable *t, int ncols, int nset,
						  const char *const *set_cols)
{
	Relation	rel = DirectOpen(t, RowExclusiveLock);
	Bitmapset  *set_atts = NULL;
	bool		fk_own_row = false;
	bool		allowed;

	for (int i = 0; i < nset; i++)
		set_atts = bms_add_member(set_atts, DirectAttnum(RelationGetDescr(rel), set_cols[i]) +
								  1 - FirstLowInvalidHeapAttributeNumber);

	/*
	 * The INSERT's checks with payext's own foreign keys given (the caller
	 * locks what they reference before it inserts), and the UPDATE's.
	 */
	allowed = DirectInsertAllowed(t, rel, ncols, true, NULL) &&
		DirectAllowed(t, rel, CMD_UPDATE, set_atts, false, NULL, &fk_own_row);
	bms_free(set_atts);
	DirectClose(t, rel);
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

/*
 * A row another transaction changed after this one's snapshot, under
 * REPEATABLE READ or SERIALIZABLE: the executor's words.
 */
static void DirectRaiseConcurrentUpdate(void) pg_attribute_noreturn();

static void
DirectRaiseConcurrentUpdate(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update")));
}

/*
 * PayextDirectUpdate, of a row version this transaction holds locked
 * (locked), or of one a statement's snapshot found, as the executor's
 * UPDATE writes it without a lock first: then 0 when another transaction
 * updated or deleted it since (under READ COMMITTED; 40001 under the other
 * levels), for the caller to lock its newest version.  1: updated; -1:
 * declined, nothing written.
 */
static int
DirectUpdate(PayextDirectTable *t, ItemPointer tid, bool locked,
			 int nexpect, const char *const *expect_cols, const int64 *expect,
			 int nset, const char *const *set_cols, const Datum *set,
			 const bool *set_null, ItemPointer written)
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
	bool		latest;
	bool		fk_own_row = false;

	if (!ItemPointerIsValid(tid))
		return -1;
	rel = DirectOpen(t, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	replace = palloc0(desc->natts * sizeof(bool));
	for (int i = 0; i < nset; i++)
	{
		int			att = DirectAttnum(desc, set_cols[i]);

		replace[att] = true;
		set_atts = bms_add_member(set_atts, att + 1 - FirstLowInvalidHeapAttributeNumber);
	}
	if (!DirectAllowed(t, rel, CMD_UPDATE, set_atts, false, NULL, &fk_own_row))
	{
		DirectClose(t, rel);
		return -1;
	}
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);

	/* The row, as the lock or the scan read it, and a copy with new values. */
	oldtup.t_self = *tid;
	if (!heap_fetch(rel, SnapshotAny, &oldtup, &buffer, false))
		elog(ERROR, "payext: the row read of payext.%s is gone", t->name);

	/*
	 * The version we locked, not updated since.  Another transaction cannot
	 * have (we hold the lock), but this one may have, between the lock and
	 * now, through a DBA's trigger, say: then the UPDATE through SPI finds
	 * the newest version.
	 */
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	latest = !locked ||
		(ItemPointerEquals(&oldtup.t_data->t_ctid, tid) &&
		 ((oldtup.t_data->t_infomask & HEAP_XMAX_INVALID) ||
		  HEAP_XMAX_IS_LOCKED_ONLY(oldtup.t_data->t_infomask)));

	/*
	 * A foreign key's check would fire: the executor's to do.  It fires for a
	 * row version this transaction wrote, with its key unchanged, because the
	 * update makes the insert's own check, if still queued, do nothing
	 * (RI_FKey_fk_upd_check_required); when no check of the table is queued
	 * (a key not deferred has been checked at the end of its statement) it
	 * finds what that check found and locked.
	 */
	if (fk_own_row &&
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(oldtup.t_data)) &&
		AfterTriggerPendingOnRel(RelationGetRelid(rel)))
		latest = false;
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (!latest)
	{
		ReleaseBuffer(buffer);
		pfree(replace);
		DirectClose(t, rel);
		return -1;
	}
	values = palloc(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	heap_deform_tuple(&oldtup, desc, values, nulls);
	for (int i = 0; i < nexpect; i++)
	{
		int			att = DirectAttnum(desc, expect_cols[i]);

		if (nulls[att] || DatumGetInt64(values[att]) != expect[i])
			elog(ERROR, "payext: the row of payext.%s is not the one read", t->name);
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
	slot->tts_tableOid = RelationGetRelid(rel);
	if (desc->constr != NULL)
		ExecConstraints(t->rri, slot, t->estate);

	/*
	 * Locked: no other transaction has updated or deleted it, nor have we
	 * since the lock (the caller's contract), so anything but TM_Ok is a bug.
	 * Not locked: another transaction may have, and then we wait for it as
	 * the executor's UPDATE does; if it committed, the caller locks the
	 * newest version (READ COMMITTED) or it is 40001, as ExecUpdate says.
	 */
	result = heap_update(rel, tid, newtup, GetCurrentCommandId(true),
						 InvalidSnapshot, true, &tmfd, &lockmode);
	if (result != TM_Ok)
	{
		if (locked || (result != TM_Updated && result != TM_Deleted))
			elog(ERROR, "payext: a row of payext.%s could not be updated (%d)",
				 t->name, (int) result);
		if (IsolationUsesXactSnapshot())
			DirectRaiseConcurrentUpdate();
	}
	else
	{
		if (!HeapTupleIsHeapOnly(newtup))
		{
			slot->tts_tid = newtup->t_self;
			DirectInsertIndexes(t, slot);
		}
		if (written != NULL)
			*written = newtup->t_self;
	}
	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(newtup);
	pfree(values);
	pfree(nulls);
	pfree(replace);
	DirectClose(t, rel);
	if (result != TM_Ok)
		return 0;

	/* Later statements of this transaction see the new values. */
	CommandCounterIncrement();
	return 1;
}

bool
PayextDirectUpdate(PayextDirectTable *t, ItemPointer tid,
				   int nexpect, const char *const *expect_cols, const int64 *expect,
				   int nset, const char *const *set_cols, const Datum *set,
				   const bool *set_null)
{
	return DirectUpdate(t, tid, true, nexpect, expect_cols, expect, nset, set_cols,
						set, set_null, NULL) == 1;
}

bool
PayextDirectUpdateTracked(PayextDirectTable *t, ItemPointer tid,
						  int nexpect, const char *const *expect_cols,
						  const int64 *expect, int nset, const char *const *set_cols,
						  const Datum *set, const bool *set_null)
{
	return DirectUpdate(t, tid, true, nexpect, expect_cols, expect, nset, set_cols,
						set, set_null, tid) == 1;
}

/*
 * Under REPEATABLE READ and SERIALIZABLE, a conflicting row that the
 * transaction's snapshot cannot see (and that it did not insert itself)
 * is 40001, as the executor's ON CONFLICT says (ExecCheckTupleVisible).
 */
static void
DirectCheckVisible(Relation rel, TupleTableSlot *slot)
{
	bool		isnull;
	TransactionId xmin;

	if (!IsolationUsesXactSnapshot() ||
		table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot()))
		return;
	xmin = DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber,
												 &isnull));
	if (!TransactionIdIsCurrentTransactionId(xmin))
		DirectRaiseConcurrentUpdate();
}

/*
 * INSERT, or with an arbiter INSERT ... ON CONFLICT ON that index DO
 * NOTHING, as ExecInsert does it: a check of the arbiter first (waiting
 * for another inserter), then a speculative insertion whose index entries
 * check again, and on a conflict found then, the insertion taken back and
 * the check made again.  1: inserted; 0: a conflicting row at *conflict;
 * -1: declined, nothing written.
 */
static int
DirectInsertRow(PayextDirectTable *t, bool on_conflict, Oid arbiter, int ncols,
				const char *const *cols,
				const Datum *given, const bool *given_null, bool refs_locked,
				bool *fire_own, ItemPointer conflict)
{
	Relation	rel;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tup;
	TupleTableSlot *slot;
	int			result = 1;

	rel = DirectOpen(t, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	/* Every column given, so that no default is needed. */
	if (!DirectInsertAllowed(t, rel, ncols, refs_locked, fire_own))
	{
		DirectClose(t, rel);
		return -1;
	}
	values = palloc0(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	memset(nulls, true, desc->natts * sizeof(bool));
	for (int i = 0; i < ncols; i++)
	{
		int			att = DirectAttnum(desc, cols[i]);

		values[att] = given[i];
		nulls[att] = given_null != NULL && given_null[i];
	}
	tup = heap_form_tuple(desc, values, nulls);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tup, slot, false);
	slot->tts_tableOid = RelationGetRelid(rel);
	if (desc->constr != NULL)
		ExecConstraints(t->rri, slot, t->estate);

	if (!on_conflict)
	{
		heap_insert(rel, tup, GetCurrentCommandId(true), 0, NULL);
		slot->tts_tid = tup->t_self;
		DirectInsertIndexes(t, slot);
	}
	else
	{
		/* As DirectInsertIndexes: the indexes' state is this call's. */
		EState	   *estate = CreateExecutorState();

		/* NIL: every unique index, as ON CONFLICT without a target */
		List	   *arbiters = OidIsValid(arbiter) ? list_make1_oid(arbiter) : NIL;

		ExecOpenIndices(t->rri, true);
		for (;;)
		{
			uint32		token;
			bool		spec_conflict = false;

			if (!ExecCheckIndexConstraints(t->rri, slot, estate, conflict, arbiters))
			{
				TupleTableSlot *existing = table_slot_create(rel, NULL);

				if (!table_tuple_fetch_row_version(rel, conflict, SnapshotAny, existing))
					elog(ERROR, "payext: a conflicting row of payext.%s is gone", t->name);
				DirectCheckVisible(rel, existing);
				ExecDropSingleTupleTableSlot(existing);
				result = 0;
				break;
			}
			token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
			table_tuple_insert_speculative(rel, slot, GetCurrentCommandId(true), 0,
										   NULL, token);
			list_free(ExecInsertIndexTuples(t->rri, slot, estate, false, true,
											&spec_conflict, arbiters));
			table_tuple_complete_speculative(rel, slot, token, !spec_conflict);
			SpeculativeInsertionLockRelease(GetCurrentTransactionId());
			if (!spec_conflict)
				break;
			/* Another inserter got in between: check again. */
			CHECK_FOR_INTERRUPTS();
		}
		ExecCloseIndices(t->rri);
		t->rri->ri_NumIndices = 0;
		FreeExecutorState(estate);
		list_free(arbiters);
	}

	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(tup);
	pfree(values);
	pfree(nulls);
	DirectClose(t, rel);
	CommandCounterIncrement();
	return result;
}

bool
PayextDirectInsert(PayextDirectTable *t, int ncols, const char *const *cols,
				   const Datum *given, const bool *given_null, bool refs_locked,
				   bool *fire_own)
{
	return DirectInsertRow(t, false, InvalidOid, ncols, cols, given, given_null, refs_locked,
						   fire_own, NULL) == 1;
}

int
PayextDirectInsertOrNothing(PayextDirectTable *t, const char *arbiter, int ncols,
							const char *const *cols, const Datum *values,
							const bool *nulls, bool refs_locked, ItemPointer conflict)
{
	Oid			index = InvalidOid;

	if (arbiter != NULL && !OidIsValid(index = PayextRelid(arbiter)))
		return -1;
	return DirectInsertRow(t, true, index, ncols, cols, values, nulls, refs_locked, NULL,
						   conflict);
}

/*
 * The columns cols of the row in slot into values and nulls, copied into
 * the current memory context (they outlive the slot).
 */
static void
DirectCopyColumns(TupleTableSlot *slot, int ncols, const char *const *cols, Datum *values,
				  bool *nulls)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;

	for (int i = 0; i < ncols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, DirectAttnum(desc, cols[i]));

		values[i] = slot_getattr(slot, att->attnum, &nulls[i]);
		if (!nulls[i])
			values[i] = datumCopy(values[i], att->attbyval, att->attlen);
	}
}

int
PayextDirectLockRow(PayextDirectTable *t, ItemPointer tid, LockTupleMode mode,
					int ncols, const char *const *cols, Datum *values, bool *nulls)
{
	Relation	rel = DirectOpen(t, RowExclusiveLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TM_FailureData tmfd;
	TM_Result	result;
	int			locked = 1;

	result = table_tuple_lock(rel, tid, GetTransactionSnapshot(), slot,
							  GetCurrentCommandId(true), mode, LockWaitBlock, 0, &tmfd);
	switch (result)
	{
		case TM_Ok:
			break;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				DirectRaiseConcurrentUpdate();
			locked = 0;
			break;
		default:
			/* inserted or changed by this command: not a caller of ours */
			elog(ERROR, "payext: unexpected result %d of locking a row of payext.%s",
				 (int) result, t->name);
	}
	if (locked)
	{
		DirectCheckVisible(rel, slot);
		DirectCopyColumns(slot, ncols, cols, values, nulls);
	}
	ExecDropSingleTupleTableSlot(slot);
	DirectClose(t, rel);
	return locked;
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
 * The row whose key in the unique index `indexoid` is scankeys, as
 * snapshot sees it, in slot.
 */
static bool
DirectFindByScanKeys(Relation rel, Oid indexoid, int nkeys, ScanKey scankeys,
					 Snapshot snapshot, TupleTableSlot *slot)
{
	Relation	index = index_open(indexoid, AccessShareLock);
	IndexScanDesc scan;
	bool		found;

	scan = index_beginscan(rel, index, snapshot, nkeys, 0);
	index_rescan(scan, scankeys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

/*
 * The row of an int8 key, without pruning the heap page read.  An index
 * fetch prunes a page whose free space runs low (heap_page_prune_opt), and
 * the prune's WAL record makes the reader's commit wait for the disk under
 * synchronous_commit; issuing a code, whose row is unlogged, writes no WAL
 * of its own, and pruned the wallet's page in 35 % of a benchmark's issues
 * (bench/NOTES.md, "An issue that prunes waits for the disk").  The page's
 * writers (a charge locking the wallet) prune it instead.  The rest is
 * index_fetch_heap's: the HOT chain followed in the snapshot, SERIALIZABLE
 * read locks and conflicts (heap_hot_search_buffer), the fetch counted.
 */
static bool
DirectFindByKey(Relation rel, Oid indexoid, int64 key, Snapshot snapshot,
				TupleTableSlot *slot)
{
	Relation	index = index_open(indexoid, AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData scankey;
	ItemPointer tid;
	HeapTuple	tuple;
	bool		found = false;

	ScanKeyInit(&scankey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(key));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &scankey, 1, NULL, 0);

	/*
	 * The slot keeps a pointer to the tuple's header, not a copy: the header
	 * is the slot's own, as index_fetch_heap has it.
	 */
	Assert(TTS_IS_BUFFERTUPLE(slot));
	ExecClearTuple(slot);
	tuple = &((BufferHeapTupleTableSlot *) slot)->base.tupdata;
	while (!found && (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		Buffer		buf = ReadBuffer(rel, ItemPointerGetBlockNumber(tid));
		ItemPointerData chain = *tid;
		bool		all_dead;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		found = heap_hot_search_buffer(&chain, rel, buf, snapshot, tuple, &all_dead, true);
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (found)
		{
			pgstat_count_heap_fetch(index);
			/* the slot's own pin keeps the tuple; ours goes */
			ExecStoreBufferHeapTuple(tuple, slot, buf);
		}
		ReleaseBuffer(buf);
	}
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

/* The snapshot SPI takes for a statement that may write. */
static Snapshot
DirectStatementSnapshot(void)
{
	/* Our own earlier writes are seen. */
	CommandCounterIncrement();
	return RegisterSnapshot(GetTransactionSnapshot());
}

bool
PayextDirectReadAccount(int64 id, PayextAccountRow *row)
{
	Relation	rel = DirectOpen(PayextDirectAccount, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot;
	bool		found;

	snapshot = DirectStatementSnapshot();
	found = DirectFindByKey(rel, RelationGetPrimaryKeyIndex(rel), id, snapshot, slot);
	if (found)
		DirectAccountFromSlot(RelationGetDescr(rel), slot, row);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	DirectClose(PayextDirectAccount, rel);
	return found;
}

/* A condition on a row a lock found, checked again on a newer version. */
typedef bool (*DirectQual) (TupleDesc desc, TupleTableSlot *slot, const void *arg);

/*
 * SELECT ... FROM rel WHERE <key of indexoid> = scankeys AND <qual> FOR <mode>,
 * as the executor runs it (ExecLockRows): the row the statement's snapshot
 * sees, locked, in `locked`.  Under READ COMMITTED, when another
 * transaction updated it first, its newest version once that transaction
 * ends, qual checked again (EvalPlanQual's lock and retry); under
 * REPEATABLE READ and SERIALIZABLE such a row is 40001.  false when there
 * is no row, it does not pass qual, or it was deleted meanwhile.
 */
static bool
DirectLockByKey(Relation rel, Oid indexoid, int nkeys, ScanKey scankeys, DirectQual qual,
				const void *qual_arg, LockTupleMode mode, TupleTableSlot *locked)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot = DirectStatementSnapshot();
	TM_FailureData tmfd;
	TM_Result	result;
	ItemPointerData tid;
	uint8		flags = TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS;
	bool		found;

	if (!IsolationUsesXactSnapshot())
		flags |= TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
	found = DirectFindByScanKeys(rel, indexoid, nkeys, scankeys, snapshot, slot) &&
		(qual == NULL || qual(desc, slot, qual_arg));
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
				found = !tmfd.traversed || qual == NULL || qual(desc, locked, qual_arg);
				break;
			case TM_SelfModified:
				/* Changed by this command: the executor skips it too. */
				found = false;
				break;
			case TM_Updated:
			case TM_Deleted:
				/* ExecLockRows' words for both. */
				if (IsolationUsesXactSnapshot())
					DirectRaiseConcurrentUpdate();
				/* Under READ COMMITTED the lock follows updates. */
				if (result == TM_Updated)
					elog(ERROR, "payext: unexpected result of locking a row of payext.%s",
						 RelationGetRelationName(rel));
				found = false;
				break;
			default:
				elog(ERROR, "payext: unexpected result %d of locking a row of payext.%s",
					 (int) result, RelationGetRelationName(rel));
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	return found;
}

/* Whether the account in slot is of the kind *arg (PayextAccountNeed) asks. */
static bool
DirectAccountQual(TupleDesc desc, TupleTableSlot *slot, const void *arg)
{
	bool		isnull;
	Datum		value;

	switch (*(const PayextAccountNeed *) arg)
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
	TupleTableSlot *locked = table_slot_create(rel, NULL);
	ScanKeyData scankey;
	bool		found;

	ScanKeyInit(&scankey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	found = DirectLockByKey(rel, RelationGetPrimaryKeyIndex(rel), 1, &scankey,
							DirectAccountQual, &need, mode, locked);
	if (found)
		DirectAccountFromSlot(RelationGetDescr(rel), locked, row);
	ExecDropSingleTupleTableSlot(locked);
	DirectClose(PayextDirectAccount, rel);
	return found;
}

bool
PayextDirectLockCode(int64 code, PayextCodeRow *row)
{
	Relation	rel = DirectOpen(PayextDirectPaymentCode, RowShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *locked = table_slot_create(rel, NULL);
	Oid			index = PayextRelid("payment_code_code_key");
	ScanKeyData scankey;
	bool		found;

	if (!OidIsValid(index))
		elog(ERROR, "payext: index payext.payment_code_code_key is missing");
	ScanKeyInit(&scankey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(code));
	found = DirectLockByKey(rel, index, 1, &scankey, NULL, NULL, LockTupleNoKeyExclusive,
							locked);
	if (found)
	{
		Datum	   *values;
		bool	   *nulls;
		int			max_amount = DirectAttnum(desc, "max_amount");

		slot_getallattrs(locked);
		values = locked->tts_values;
		nulls = locked->tts_isnull;
		row->serial = DatumGetInt64(values[DirectAttnum(desc, "serial")]);
		row->key_id = DatumGetInt32(values[DirectAttnum(desc, "key_id")]);
		row->wallet = DatumGetInt64(values[DirectAttnum(desc, "wallet")]);
		row->max_amount = nulls[max_amount] ? 0 : DatumGetInt64(values[max_amount]);
		row->expires_at = DatumGetTimestampTz(values[DirectAttnum(desc, "expires_at")]);
		row->state = DirectText(values, nulls, DirectAttnum(desc, "state"));
		row->tid = locked->tts_tid;
	}
	ExecDropSingleTupleTableSlot(locked);
	DirectClose(PayextDirectPaymentCode, rel);
	return found;
}

/* Whether the row in slot has the int8 column id equal to *arg. */
static bool
DirectIdQual(TupleDesc desc, TupleTableSlot *slot, const void *arg)
{
	bool		isnull;
	Datum		value = slot_getattr(slot, DirectAttnum(desc, "id") + 1, &isnull);

	return !isnull && DatumGetInt64(value) == *(const int64 *) arg;
}

static bool DirectIndexLeads(Relation rel, Relation index, int ncols,
							 const char *const *columns);

/* payext.<table>, opened with lockmode. */
static Relation
DirectOpenNamed(const char *table, LOCKMODE lockmode)
{
	Oid			relid = PayextRelid(table);

	if (!OidIsValid(relid))
		elog(ERROR, "payext: relation payext.%s is missing", table);
	return table_open(relid, lockmode);
}

bool
PayextDirectLockById(const char *table, int64 id, LockTupleMode mode)
{
	static const char *const id_column[] = {"id"};
	Relation	rel = DirectOpenNamed(table, RowShareLock);
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	Relation	index;
	bool		on_id;
	TupleTableSlot *locked;
	ScanKeyData scankey;
	bool		found;

	/* A primary key on id, as the scan key assumes; else SPI's check. */
	if (!OidIsValid(pkey))
	{
		table_close(rel, RowShareLock);
		return false;
	}
	index = index_open(pkey, AccessShareLock);
	on_id = DirectIndexLeads(rel, index, 1, id_column);
	index_close(index, AccessShareLock);
	if (!on_id)
	{
		table_close(rel, RowShareLock);
		return false;
	}
	locked = table_slot_create(rel, NULL);
	ScanKeyInit(&scankey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));

	/*
	 * The key is checked again on a newer version the lock follows under READ
	 * COMMITTED, as EvalPlanQual checks the statement's WHERE.
	 */
	found = DirectLockByKey(rel, pkey, 1, &scankey, DirectIdQual, &id, mode, locked);
	ExecDropSingleTupleTableSlot(locked);
	table_close(rel, NoLock);
	return found;
}

/* Columns that must equal values: DirectEqualsQual's argument. */
typedef struct DirectEquals
{
	int			n;
	const char *const *cols;
	const Datum *values;
}			DirectEquals;

/* Whether the row in slot has every column of *arg equal to its value. */
static bool
DirectEqualsQual(TupleDesc desc, TupleTableSlot *slot, const void *arg)
{
	const		DirectEquals *eq = arg;

	for (int i = 0; i < eq->n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, DirectAttnum(desc, eq->cols[i]));
		bool		isnull;
		Datum		value = slot_getattr(slot, att->attnum, &isnull);

		if (isnull || !datum_image_eq(value, eq->values[i], att->attbyval, att->attlen))
			return false;
	}
	return true;
}

static void DirectBuildScanKeys(Relation index, int nkeys, const PayextScanKey *keys,
								ScanKey out);

int
PayextDirectLockByIndex(PayextDirectTable *t, const char *index_name, int nkeys,
						const PayextScanKey *keys, int nequal, const char *const *equal_cols,
						const Datum *equal_values, LockTupleMode mode, int ncols,
						const char *const *cols, Datum *values, bool *nulls, ItemPointer tid)
{
	Oid			indexoid = PayextRelid(index_name);
	Relation	rel;
	Relation	index;
	TupleTableSlot *locked;
	ScanKeyData scankeys[INDEX_MAX_KEYS];
	DirectEquals eq = {nequal, equal_cols, equal_values};
	bool		found;

	Assert(nkeys <= INDEX_MAX_KEYS);
	if (!OidIsValid(indexoid))
		return -1;
	rel = DirectOpen(t, RowShareLock);
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != BTREE_AM_OID ||
		!index->rd_index->indisvalid || !index->rd_index->indisunique ||
		index->rd_index->indrelid != RelationGetRelid(rel) ||
		nkeys > nequal || !DirectIndexLeads(rel, index, nkeys, equal_cols) ||
		(rel->rd_rel->relrowsecurity &&
		 check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED) ||
	/* SELECT ... FOR <mode> asks for SELECT and UPDATE, one check each */
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
	{
		index_close(index, AccessShareLock);
		DirectClose(t, rel);
		return -1;
	}
	DirectBuildScanKeys(index, nkeys, keys, scankeys);
	index_close(index, NoLock);
	locked = table_slot_create(rel, NULL);

	/*
	 * Every condition is checked again on a newer version that the lock
	 * follows under READ COMMITTED, as EvalPlanQual checks the WHERE: the
	 * caller names the key columns among equal_cols.
	 */
	found = DirectLockByKey(rel, indexoid, nkeys, scankeys, DirectEqualsQual, &eq, mode,
							locked);
	if (found)
	{
		DirectCopyColumns(locked, ncols, cols, values, nulls);
		*tid = locked->tts_tid;
	}
	ExecDropSingleTupleTableSlot(locked);
	DirectClose(t, rel);
	return found ? 1 : 0;
}

bool
PayextDirectExists(const char *table, int64 key)
{
	Relation	rel = DirectOpenNamed(table, AccessShareLock);
	TupleTableSlot *slot;
	Snapshot	snapshot;
	bool		found;

	slot = table_slot_create(rel, NULL);
	snapshot = DirectStatementSnapshot();
	found = DirectFindByKey(rel, RelationGetPrimaryKeyIndex(rel), key, snapshot, slot);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	return found;
}

/* ---------------------------------------------------------------------
 * Reads through an index
 * ---------------------------------------------------------------------
 */

struct PayextDirectScan
{
	Relation	rel;
	Relation	index;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	int			nkeys;			/* of the scan as begun, 0 before the first */
	ScanKeyData keys[INDEX_MAX_KEYS * 2];
};

/*
 * Whether the index's first ncols key columns are the table's plain
 * columns named columns, in that order: what a caller's scan keys assume
 * of an index it names (a DBA may have built it again otherwise).
 */
static bool
DirectIndexLeads(Relation rel, Relation index, int ncols, const char *const *columns)
{
	if (ncols > IndexRelationGetNumberOfKeyAttributes(index))
		return false;
	for (int i = 0; i < ncols; i++)
	{
		int			att = DirectFindAttnum(RelationGetDescr(rel), columns[i]);

		if (att < 0 || index->rd_index->indkey.values[i] != att + 1)
			return false;
	}
	return true;
}

/* DirectIndexLeads with the columns as one comma-separated list. */
static bool
DirectIndexLeadsList(Relation rel, Relation index, const char *list)
{
	char		buf[INDEX_MAX_KEYS * NAMEDATALEN];
	const char *columns[INDEX_MAX_KEYS];
	int			ncols = 0;
	char	   *next = buf;

	if (strlcpy(buf, list, sizeof(buf)) >= sizeof(buf))
		elog(ERROR, "payext: index columns \"%s\" too long", list);
	while (next != NULL && ncols < INDEX_MAX_KEYS)
	{
		columns[ncols++] = next;
		next = strchr(next, ',');
		if (next != NULL)
			*next++ = '\0';
	}
	if (next != NULL)
		elog(ERROR, "payext: too many index columns in \"%s\"", list);
	return DirectIndexLeads(rel, index, ncols, columns);
}

Oid
PayextDirectIndexOf(Relation rel, const char *index_name, const char *columns)
{
	Oid			indexoid = PayextRelid(index_name);
	Relation	index;
	bool		usable;

	if (!OidIsValid(indexoid))
		return InvalidOid;
	index = relation_open(indexoid, AccessShareLock);
	usable = index->rd_rel->relkind == RELKIND_INDEX &&
		index->rd_rel->relam == BTREE_AM_OID &&
		index->rd_index->indrelid == RelationGetRelid(rel) &&
		index->rd_index->indisvalid &&
		DirectIndexLeadsList(rel, index, columns);
	relation_close(index, AccessShareLock);
	return usable ? indexoid : InvalidOid;
}

PayextDirectScan *
PayextDirectBeginScan(const char *index_name, const char *columns)
{
	Oid			indexoid = PayextRelid(index_name);
	Relation	index;
	Relation	rel;
	PayextDirectScan *scan;

	if (!OidIsValid(indexoid))
		return NULL;
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_rel->relkind != RELKIND_INDEX ||
		index->rd_rel->relam != BTREE_AM_OID || !index->rd_index->indisvalid)
	{
		index_close(index, AccessShareLock);
		return NULL;
	}
	rel = table_open(index->rd_index->indrelid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		!DirectIndexLeadsList(rel, index, columns) ||
		(rel->rd_rel->relrowsecurity &&
		 check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED) ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
	{
		table_close(rel, AccessShareLock);
		index_close(index, AccessShareLock);
		return NULL;
	}
	scan = palloc0(sizeof(PayextDirectScan));
	scan->rel = rel;
	scan->index = index;
	scan->snapshot = DirectStatementSnapshot();
	scan->slot = table_slot_create(rel, NULL);
	return scan;
}

/* keys as btree scan keys of index, in out (nkeys of them). */
static void
DirectBuildScanKeys(Relation index, int nkeys, const PayextScanKey *keys, ScanKey out)
{
	for (int i = 0; i < nkeys; i++)
	{
		int			col = keys[i].column;
		Oid			opno;

		/* btree wants the keys in column order */
		if (col < 1 || col > IndexRelationGetNumberOfKeyAttributes(index) ||
			(i > 0 && col < keys[i - 1].column))
			elog(ERROR, "payext: bad key column %d for index %s", col,
				 RelationGetRelationName(index));
		if (keys[i].isnull)
		{
			ScanKeyEntryInitialize(&out[i], SK_ISNULL | SK_SEARCHNULL, col,
								   InvalidStrategy, InvalidOid, InvalidOid,
								   InvalidOid, (Datum) 0);
			continue;
		}
		opno = get_opfamily_member(index->rd_opfamily[col - 1],
								   index->rd_opcintype[col - 1],
								   index->rd_opcintype[col - 1], keys[i].strategy);
		if (!OidIsValid(opno))
			elog(ERROR, "payext: no operator of strategy %d for column %d of index %s",
				 keys[i].strategy, col, RelationGetRelationName(index));
		ScanKeyEntryInitialize(&out[i], 0, col, keys[i].strategy, InvalidOid,
							   index->rd_indcollation[col - 1], get_opcode(opno),
							   keys[i].value);
	}
}

void
PayextDirectRescan(PayextDirectScan *scan, int nkeys, const PayextScanKey *keys)
{
	Relation	index = scan->index;

	if (nkeys < 1 || nkeys > (int) lengthof(scan->keys))
		elog(ERROR, "payext: %d keys for a scan of index %s", nkeys,
			 RelationGetRelationName(index));
	DirectBuildScanKeys(index, nkeys, keys, scan->keys);
	if (scan->scan == NULL || scan->nkeys != nkeys)
	{
		if (scan->scan != NULL)
			index_endscan(scan->scan);
		scan->scan = index_beginscan(scan->rel, index, scan->snapshot, nkeys, 0);
		scan->nkeys = nkeys;
	}
	index_rescan(scan->scan, scan->keys, nkeys, NULL, 0);
}

bool
PayextDirectNext(PayextDirectScan *scan, int ncols, const char *const *cols,
				 Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(scan->rel);

	Assert(scan->scan != NULL);
	if (!index_getnext_slot(scan->scan, ForwardScanDirection, scan->slot))
		return false;
	for (int i = 0; i < ncols; i++)
		values[i] = slot_getattr(scan->slot, DirectAttnum(desc, cols[i]) + 1, &nulls[i]);
	return true;
}

ItemPointer
PayextDirectScanTid(PayextDirectScan *scan)
{
	return &scan->slot->tts_tid;
}

void
PayextDirectEndScan(PayextDirectScan *scan)
{
	if (scan->scan != NULL)
		index_endscan(scan->scan);
	ExecDropSingleTupleTableSlot(scan->slot);
	UnregisterSnapshot(scan->snapshot);
	index_close(scan->index, NoLock);
	table_close(scan->rel, NoLock);
	pfree(scan);
}

/* ---------------------------------------------------------------------
 * A merchant's credit bucket
 * ---------------------------------------------------------------------
 */

/* Whether the bucket in slot has room for `add` below `limit` (*arg). */
static bool
DirectBucketQual(TupleDesc desc, TupleTableSlot *slot, const void *arg)
{
	const int64 *room = arg;	/* limit - add */
	bool		isnull;
	Datum		amount = slot_getattr(slot, DirectAttnum(desc, "amount") + 1, &isnull);

	return !isnull && DatumGetInt64(amount) <= *room;
}

int
PayextDirectAddToBucket(int64 account, int32 bucket, int64 add, int64 limit)
{
	static const char *const amount_col[] = {"amount"};
	PayextDirectTable *t = &direct_merchant_credit;
	Relation	rel = DirectOpen(t, RowShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	PayextScanKey keys[2];
	ScanKeyData scankeys[2];
	Relation	index;
	Oid			indexoid = RelationGetPrimaryKeyIndex(rel);
	int64		room = limit - add;
	int64		before = 0;
	ItemPointerData tid;
	Snapshot	snapshot;
	bool		found;
	Datum		value;
	bool		isnull;
	int			updated;

	Assert(add > 0 && add <= limit);
	if (!OidIsValid(indexoid))
		elog(ERROR, "payext: payext.merchant_credit has no primary key");
	keys[0] = PayextKey(1, BTEqualStrategyNumber, Int64GetDatum(account));
	keys[1] = PayextKey(2, BTEqualStrategyNumber, Int32GetDatum(bucket));
	index = index_open(indexoid, AccessShareLock);
	DirectBuildScanKeys(index, 2, keys, scankeys);
	index_close(index, NoLock);

	/*
	 * As the executor's UPDATE: the row the statement's snapshot sees,
	 * updated without a lock first (a lock would be one more WAL record per
	 * payment); only when another transaction updated it meanwhile, its
	 * newest version locked and its room checked again (EvalPlanQual).
	 */
	snapshot = DirectStatementSnapshot();
	found = DirectFindByScanKeys(rel, indexoid, 2, scankeys, snapshot, slot) &&
		DirectBucketQual(desc, slot, &room);
	UnregisterSnapshot(snapshot);
	for (int attempt = 0; found; attempt++)
	{
		value = slot_getattr(slot, DirectAttnum(desc, "amount") + 1, &isnull);
		before = DatumGetInt64(value);
		tid = slot->tts_tid;
		/* The room checked on this version: no overflow. */
		value = Int64GetDatum(before + add);
		updated = DirectUpdate(t, &tid, attempt > 0, 1, amount_col, &before, 1, amount_col,
							   &value, NULL, NULL);
		if (updated != 0)
		{
			ExecDropSingleTupleTableSlot(slot);
			DirectClose(t, rel);
			/* declined: the UPDATE through SPI finds the row */
			return updated;
		}
		if (attempt > 0)
			elog(ERROR, "payext: a locked bucket of payext.merchant_credit changed");
		found = DirectLockByKey(rel, indexoid, 2, scankeys, DirectBucketQual, &room,
								LockTupleNoKeyExclusive, slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	DirectClose(t, rel);
	return 0;
}
