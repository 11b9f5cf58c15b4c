/*-------------------------------------------------------------------------
 *
 * payext_floor.c
 *	  The floor without the executor: bench/floor.sql's two functions
 *	  (payext's rows for an issue and a charge, and nothing else) written
 *	  in C straight into the heap and the indexes, as an executor-free
 *	  payext would write them: index scans to find a row, table_tuple_update
 *	  with a retry on a concurrent update (READ COMMITTED), table_tuple_insert
 *	  and ExecInsertIndexTuples (unique checks that wait for the other
 *	  inserter; no index entries for a HOT update).  No plan, no SPI, no
 *	  CHECK constraint read back from its text: the C checks what payext's
 *	  C would check (the code unused, the balance enough).
 *
 *	  A measurement only, for bench/run.sh's "floorc" script: it is not
 *	  part of payext, skips what a real path must give (row-level security,
 *	  pgstat's per-table counters, every CHECK), and is installed only by
 *	  the benchmark into its throwaway cluster.  bench/NOTES.md says what
 *	  it measured.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

/* One table of the floor, opened for one call. */
typedef struct FloorRel
{
	Relation	rel;
	ResultRelInfo *rri;
	TupleTableSlot *scan;		/* a row found by an index scan */
	TupleTableSlot *row;		/* the row to write (virtual) */
} FloorRel;

/* The schema of the function called: its tables are written. */
static Oid	floor_schema = InvalidOid;

static Oid
floor_relid(const char *name)
{
	Oid			relid = get_relname_relid(name, floor_schema);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation %s.%s does not exist",
						get_namespace_name(floor_schema), name),
				 errhint("Load bench/floor.sql first.")));
	return relid;
}

static void
floor_open(FloorRel *fr, const char *name)
{
	fr->rel = table_open(floor_relid(name), RowExclusiveLock);
	fr->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(fr->rri, fr->rel, 1, NULL, 0);
	ExecOpenIndices(fr->rri, true);
	fr->scan = table_slot_create(fr->rel, NULL);
	fr->row = MakeSingleTupleTableSlot(RelationGetDescr(fr->rel), &TTSOpsVirtual);
}

static void
floor_close(FloorRel *fr)
{
	ExecDropSingleTupleTableSlot(fr->scan);
	ExecDropSingleTupleTableSlot(fr->row);
	ExecCloseIndices(fr->rri);
	table_close(fr->rel, NoLock);
}

/* The attribute number (0-based) of a column, or an error. */
static int
floor_att(FloorRel *fr, const char *name)
{
	TupleDesc	desc = RelationGetDescr(fr->rel);

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i;
	elog(ERROR, "%s has no column %s", RelationGetRelationName(fr->rel), name);
	return -1;					/* not reached */
}

static void
floor_set(FloorRel *fr, const char *name, Datum value)
{
	int			i = floor_att(fr, name);

	fr->row->tts_values[i] = value;
	fr->row->tts_isnull[i] = false;
}

/* An empty row (all NULL), to be filled by floor_set. */
static void
floor_new_row(FloorRel *fr)
{
	ExecClearTuple(fr->row);
	for (int i = 0; i < fr->row->tts_tupleDescriptor->natts; i++)
	{
		fr->row->tts_values[i] = (Datum) 0;
		fr->row->tts_isnull[i] = true;
	}
}

/* The row found last, as a new row to be changed by floor_set. */
static void
floor_copy_found(FloorRel *fr)
{
	int			natts = fr->row->tts_tupleDescriptor->natts;

	slot_getallattrs(fr->scan);
	ExecClearTuple(fr->row);
	memcpy(fr->row->tts_values, fr->scan->tts_values, natts * sizeof(Datum));
	memcpy(fr->row->tts_isnull, fr->scan->tts_isnull, natts * sizeof(bool));
}

static void
floor_insert(FloorRel *fr, EState *estate)
{
	ExecStoreVirtualTuple(fr->row);
	table_tuple_insert(fr->rel, fr->row, GetCurrentCommandId(true), 0, NULL);
	ExecInsertIndexTuples(fr->rri, fr->row, estate, false, false, NULL, NIL);
}

/*
 * Inserts fr->row unless a unique index already has its key (after waiting
 * for the inserter of that key): a speculative insertion, as INSERT ... ON
 * CONFLICT makes one.  false when the key was taken: the caller finds the
 * row and updates it.
 */
static bool
floor_insert_unless_taken(FloorRel *fr, EState *estate)
{
	ItemPointerData conflict;
	uint32		token;
	bool		taken = false;

	ExecStoreVirtualTuple(fr->row);
	if (!ExecCheckIndexConstraints(fr->rri, fr->row, estate, &conflict, NIL))
		return false;
	token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
	table_tuple_insert_speculative(fr->rel, fr->row, GetCurrentCommandId(true),
								   0, NULL, token);
	ExecInsertIndexTuples(fr->rri, fr->row, estate, false, true, &taken, NIL);
	table_tuple_complete_speculative(fr->rel, fr->row, token, !taken);
	SpeculativeInsertionLockRelease(GetCurrentTransactionId());
	return !taken;
}

/*
 * Finds the row whose index `index` (by name) has the keys given, as the
 * latest snapshot sees it, into fr->scan.  Keys are int8 or text.
 */
static bool
floor_find(FloorRel *fr, const char *index, int nkeys, const Datum *keys,
		   const Oid *types)
{
	Relation	idx = index_open(get_relname_relid(index, RelationGetNamespace(fr->rel)),
								 AccessShareLock);
	ScanKeyData sk[4];
	IndexScanDesc scan;
	bool		found;

	Assert(nkeys <= 4);
	for (int i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&sk[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, idx->rd_indcollation[i],
							   types[i] == TEXTOID ? F_TEXTEQ :
							   types[i] == INT4OID ? F_INT4EQ : F_INT8EQ,
							   keys[i]);
	scan = index_beginscan(fr->rel, idx, GetLatestSnapshot(), nkeys, 0);
	index_rescan(scan, sk, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, fr->scan);
	index_endscan(scan);
	index_close(idx, NoLock);
	return found;
}

/*
 * Writes fr->row over fr->scan's row.  false when another transaction
 * updated the row first (after waiting for it to commit): the caller finds
 * the row again and retries, as EvalPlanQual would.
 */
static bool
floor_update(FloorRel *fr, EState *estate)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	res;

	ExecStoreVirtualTuple(fr->row);
	res = table_tuple_update(fr->rel, &fr->scan->tts_tid, fr->row,
							 GetCurrentCommandId(true), GetLatestSnapshot(),
							 InvalidSnapshot, true, &tmfd, &lockmode,
							 &update_indexes);
	if (res == TM_Updated || res == TM_Deleted)
	{
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
		return false;
	}
	if (res != TM_Ok)
		elog(ERROR, "unexpected table_tuple_update result %d", (int) res);

	/*
	 * Not "update = true": that hint (bottom-up deletion) reads the updated
	 * columns from a range table this path does not have.
	 */
	if (update_indexes)
		ExecInsertIndexTuples(fr->rri, fr->row, estate, false, false, NULL, NIL);
	return true;
}

static Datum
floor_int8(FloorRel *fr, const char *name)
{
	bool		isnull;
	Datum		d = slot_getattr(fr->scan, floor_att(fr, name) + 1, &isnull);

	return isnull ? (Datum) 0 : d;
}

PG_FUNCTION_INFO_V1(floor_c_request_payment);
Datum
floor_c_request_payment(PG_FUNCTION_ARGS)
{
	int64		wallet = PG_GETARG_INT64(0);
	int64		s;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	EState	   *estate = CreateExecutorState();
	FloorRel	code;

	floor_schema = get_func_namespace(fcinfo->flinfo->fn_oid);
	s = nextval_internal(floor_relid("id_seq"), true);
	floor_open(&code, "payment_code");
	floor_new_row(&code);
	floor_set(&code, "serial", Int64GetDatum(s));
	floor_set(&code, "code", Int64GetDatum(s));
	floor_set(&code, "key_id", Int32GetDatum(1));
	floor_set(&code, "wallet", Int64GetDatum(wallet));
	floor_set(&code, "created_at", TimestampTzGetDatum(now));
	floor_set(&code, "expires_at", TimestampTzGetDatum(now + 60 * USECS_PER_SEC));
	floor_set(&code, "state", CStringGetTextDatum("issued"));
	floor_insert(&code, estate);
	floor_close(&code);
	FreeExecutorState(estate);
	CommandCounterIncrement();
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, s)));
}

/*
 * The charge's rows.  Without `payment_row` it skips the payment (a heap
 * tuple and its three unique entries): the lower bound of a payment and its
 * journal row made one row, which would keep at least the code's unique
 * entry on the journal.
 */
static Datum
floor_charge(FunctionCallInfo fcinfo, bool payment_row)
{
	int64		merchant = PG_GETARG_INT64(0);
	int64		code_value = pg_strtoint64(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	int64		amount = PG_GETARG_INT64(2);
	Datum		order_ref = PointerGetDatum(PG_GETARG_TEXT_PP(3));
	int64		t;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		now_d = TimestampTzGetDatum(now);
	EState	   *estate = CreateExecutorState();
	FloorRel	code,
				account,
				credit,
				transfer,
				payment,
				interaction,
				pair;
	Oid			int8_1[1] = {INT8OID};
	Oid			int8_int4[2] = {INT8OID, INT4OID};
	Oid			text_2[2] = {TEXTOID, TEXTOID};
	Datum		key[2];
	int64		serial,
				wallet;
	Datum		owner,
				psid;
	bytea	   *checksum = palloc(VARHDRSZ + 16);

	floor_schema = get_func_namespace(fcinfo->flinfo->fn_oid);
	t = nextval_internal(floor_relid("id_seq"), true);
	floor_open(&code, "payment_code");
	floor_open(&account, "account");
	floor_open(&credit, "merchant_credit");
	floor_open(&transfer, "transfer");
	floor_open(&payment, "payment");
	floor_open(&interaction, "interaction");
	floor_open(&pair, "interaction_pair");

	/* the code: issued, now used */
	key[0] = Int64GetDatum(code_value);
	for (;;)
	{
		bool		isnull;
		text	   *state;

		if (!floor_find(&code, "payment_code_code_idx", 1, key, int8_1))
			ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no such code")));
		state = DatumGetTextPP(slot_getattr(code.scan, floor_att(&code, "state") + 1, &isnull));
		if (strcmp(text_to_cstring(state), "issued") != 0)
			ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION), errmsg("code not issued")));
		floor_copy_found(&code);
		floor_set(&code, "state", CStringGetTextDatum("used"));
		floor_set(&code, "closed_at", now_d);
		if (floor_update(&code, estate))
			break;
	}
	serial = DatumGetInt64(floor_int8(&code, "serial"));
	wallet = DatumGetInt64(floor_int8(&code, "wallet"));

	/* the wallet: balance - amount, never below zero */
	key[0] = Int64GetDatum(wallet);
	for (;;)
	{
		int64		balance;

		if (!floor_find(&account, "account_pkey", 1, key, int8_1))
			ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no such wallet")));
		balance = DatumGetInt64(floor_int8(&account, "balance"));
		if (balance < amount)
			ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION), errmsg("insufficient funds")));
		floor_copy_found(&account);
		floor_set(&account, "balance", Int64GetDatum(balance - amount));
		if (floor_update(&account, estate))
			break;
	}
	owner = PointerGetDatum(PG_DETOAST_DATUM_COPY(floor_int8(&account, "owner")));

	/* the merchant: its public-service id */
	key[0] = Int64GetDatum(merchant);
	if (!floor_find(&account, "account_pkey", 1, key, int8_1))
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no such merchant")));
	psid = PointerGetDatum(PG_DETOAST_DATUM_COPY(floor_int8(&account, "public_service_id")));

	/* the merchant's bucket: amount + amount, or a new bucket */
	key[0] = Int64GetDatum(merchant);
	key[1] = Int32GetDatum(MyProcPid % 16);
	for (;;)
	{
		if (!floor_find(&credit, "merchant_credit_pkey", 2, key, int8_int4))
		{
			floor_new_row(&credit);
			floor_set(&credit, "account", key[0]);
			floor_set(&credit, "bucket", key[1]);
			floor_set(&credit, "amount", Int64GetDatum(amount));
			if (floor_insert_unless_taken(&credit, estate))
				break;
			continue;
		}
		floor_copy_found(&credit);
		floor_set(&credit, "amount",
				  Int64GetDatum(DatumGetInt64(floor_int8(&credit, "amount")) + amount));
		if (floor_update(&credit, estate))
			break;
	}

	/* the journal */
	SET_VARSIZE(checksum, VARHDRSZ + 16);
	for (int i = 0; i < 16; i++)
		VARDATA(checksum)[i] = (char) (i * 17);
	floor_new_row(&transfer);
	floor_set(&transfer, "id", Int64GetDatum(t));
	floor_set(&transfer, "debit_account", Int64GetDatum(wallet));
	floor_set(&transfer, "credit_account", Int64GetDatum(merchant));
	floor_set(&transfer, "amount", Int64GetDatum(amount));
	floor_set(&transfer, "currency", CStringGetTextDatum("CNY"));
	floor_set(&transfer, "kind", CStringGetTextDatum("charge"));
	floor_set(&transfer, "idem_scope", Int64GetDatum(merchant));
	floor_set(&transfer, "reference", order_ref);
	floor_set(&transfer, "created_at", now_d);
	floor_set(&transfer, "checksum", PointerGetDatum(checksum));
	floor_insert(&transfer, estate);

	/* the payment */
	if (payment_row)
	{
		floor_new_row(&payment);
		floor_set(&payment, "transfer_id", Int64GetDatum(t));
		floor_set(&payment, "merchant", Int64GetDatum(merchant));
		floor_set(&payment, "order_ref", order_ref);
		floor_set(&payment, "wallet", Int64GetDatum(wallet));
		floor_set(&payment, "code_serial", Int64GetDatum(serial));
		floor_set(&payment, "amount", Int64GetDatum(amount));
		floor_set(&payment, "refunded", Int64GetDatum(0));
		floor_set(&payment, "created_at", now_d);
		floor_set(&payment, "updated_at", now_d);
		floor_insert(&payment, estate);
	}

	/* the interaction */
	floor_new_row(&interaction);
	floor_set(&interaction, "id", Int64GetDatum(t));
	floor_set(&interaction, "consumer", owner);
	floor_set(&interaction, "public_service_id", psid);
	floor_set(&interaction, "kind", CStringGetTextDatum("payment"));
	floor_set(&interaction, "amount", Int64GetDatum(amount));
	floor_set(&interaction, "currency", CStringGetTextDatum("CNY"));
	floor_set(&interaction, "occurred_at", now_d);
	floor_set(&interaction, "transfer_id", Int64GetDatum(t));
	floor_set(&interaction, "recorded_at", now_d);
	floor_insert(&interaction, estate);

	/* the pair's summary: counts and amounts + this payment, or a new row */
	key[0] = owner;
	key[1] = psid;
	for (;;)
	{
		Datum		amount_n = NumericGetDatum(int64_to_numeric(amount));

		if (!floor_find(&pair, "interaction_pair_pkey", 2, key, text_2))
		{
			floor_new_row(&pair);
			floor_set(&pair, "consumer", owner);
			floor_set(&pair, "public_service_id", psid);
			floor_set(&pair, "interactions", Int64GetDatum(1));
			floor_set(&pair, "payments", Int64GetDatum(1));
			floor_set(&pair, "payment_amount", amount_n);
			floor_set(&pair, "refund_amount", NumericGetDatum(int64_to_numeric(0)));
			floor_set(&pair, "first_at", now_d);
			floor_set(&pair, "last_at", now_d);
			if (floor_insert_unless_taken(&pair, estate))
				break;
			continue;
		}
		floor_copy_found(&pair);
		floor_set(&pair, "interactions",
				  Int64GetDatum(DatumGetInt64(floor_int8(&pair, "interactions")) + 1));
		floor_set(&pair, "payments",
				  Int64GetDatum(DatumGetInt64(floor_int8(&pair, "payments")) + 1));
		floor_set(&pair, "payment_amount",
				  DirectFunctionCall2(numeric_add, floor_int8(&pair, "payment_amount"), amount_n));
		floor_set(&pair, "last_at", now_d);
		if (floor_update(&pair, estate))
			break;
	}

	floor_close(&pair);
	floor_close(&interaction);
	floor_close(&payment);
	floor_close(&transfer);
	floor_close(&credit);
	floor_close(&account);
	floor_close(&code);
	FreeExecutorState(estate);
	CommandCounterIncrement();
	PG_RETURN_INT64(t);
}

PG_FUNCTION_INFO_V1(floor_c_charge);
Datum
floor_c_charge(PG_FUNCTION_ARGS)
{
	return floor_charge(fcinfo, true);
}

PG_FUNCTION_INFO_V1(floor_c_charge_lean);
Datum
floor_c_charge_lean(PG_FUNCTION_ARGS)
{
	return floor_charge(fcinfo, false);
}
