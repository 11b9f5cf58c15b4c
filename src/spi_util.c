/*
 * spi_util.c
 *		Prepared-once SPI plans, argument checks and ids (see spi_util.h).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "common/int.h"
#include "mb/pg_wchar.h"
#include "storage/proc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "errors.h"
#include "partition.h"
#include "ident.h"
#include "payext_limits.h"
#include "spi_util.h"


/* The extversion of payext in this database, palloc'd; NULL if none. */
static char *
PayextInstalledVersion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("payext"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		datum = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(datum);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * The library serves the SQL of its own version only: between `make
 * install` of a new release and ALTER EXTENSION payext UPDATE, every call
 * is refused (PY008) rather than run against tables and indexes it does
 * not know.  Checked once per transaction, not during CREATE or ALTER
 * EXTENSION.
 */
static void
PayextCheckSqlVersion(void)
{
	static LocalTransactionId checked_lxid = InvalidLocalTransactionId;
	char	   *installed;

	if (checked_lxid == MyProc->lxid || creating_extension)
		return;
	installed = PayextInstalledVersion();
	if (installed == NULL || strcmp(installed, PAYEXT_VERSION) != 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_VERSION_MISMATCH),
				 errmsg("payext's SQL in this database is version %s, its library %s",
						installed ? installed : "(none)", PAYEXT_VERSION),
				 errdetail("The library serves the SQL of its own version only."),
				 errhint("Run ALTER EXTENSION payext UPDATE in this database.")));
	checked_lxid = MyProc->lxid;
}

void
PayextSpiConnect(void)
{
	int			rc;

	PayextCheckSqlVersion();
	rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "payext: SPI_connect failed: %s", SPI_result_code_string(rc));
}

void
PayextSpiFinish(void)
{
	int			rc = SPI_finish();

	if (rc != SPI_OK_FINISH)
		elog(ERROR, "payext: SPI_finish failed: %s", SPI_result_code_string(rc));
}

static SPIPlanPtr
PayextPreparedPlan(PayextPlan *plan)
{
	SPIPlanPtr	prepared;

	if (plan->plan != NULL)
		return plan->plan;

	Assert(plan->nargs >= 0 && plan->nargs <= PAYEXT_MAX_PLAN_ARGS);
	prepared = SPI_prepare_cursor(plan->sql, plan->nargs, plan->argtypes,
								  plan->cursor_options);
	if (prepared == NULL)
		elog(ERROR, "payext: SPI_prepare failed for \"%s\": %s",
			 plan->sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(prepared) != 0)
		elog(ERROR, "payext: SPI_keepplan failed");
	plan->plan = prepared;
	return prepared;
}

/* SPI_processed, once rc is what the statement had to return. */
static uint64
PayextProcessed(const PayextPlan *plan, int rc, int expected_rc)
{
	if (rc != expected_rc)
		elog(ERROR, "payext: \"%s\" returned %s, expected %s",
			 plan->sql, SPI_result_code_string(rc),
			 SPI_result_code_string(expected_rc));
	return SPI_processed;
}

uint64
PayextExecute(PayextPlan *plan, Datum *values, const char *nulls,
			  bool read_only, long max_rows, int expected_rc)
{
	int			rc;

	rc = SPI_execute_plan(PayextPreparedPlan(plan), values, nulls,
						  read_only, max_rows);
	return PayextProcessed(plan, rc, expected_rc);
}

uint64
PayextExecuteLatest(PayextPlan *plan, Datum *values, const char *nulls,
					int expected_rc)
{
	int			rc;

	if (!IsolationUsesXactSnapshot())
		return PayextExecute(plan, values, nulls, false, 0, expected_rc);

	/*
	 * Under REPEATABLE READ and SERIALIZABLE: the newest committed rows, with
	 * the transaction's snapshot as the crosscheck, so that changing a row
	 * the snapshot cannot see raises 40001 (what the foreign-key triggers do
	 * for the same reason).
	 */
	CommandCounterIncrement();
	rc = SPI_execute_snapshot(PayextPreparedPlan(plan), values, nulls,
							  GetLatestSnapshot(), GetTransactionSnapshot(),
							  false, true, 0);
	return PayextProcessed(plan, rc, expected_rc);
}

uint64
PayextExecuteLatestRead(PayextPlan *plan, Datum *values, const char *nulls)
{
	int			rc;

	/* The newest committed rows, whatever the transaction's snapshot. */
	rc = SPI_execute_snapshot(PayextPreparedPlan(plan), values, nulls,
							  GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
	return PayextProcessed(plan, rc, SPI_OK_SELECT);
}

Portal
PayextOpenCursor(PayextPlan *plan, Datum *values, const char *nulls)
{
	Portal		portal = SPI_cursor_open(NULL, PayextPreparedPlan(plan), values,
										 nulls, false);

	if (portal == NULL)
		elog(ERROR, "payext: could not open a cursor for \"%s\": %s",
			 plan->sql, SPI_result_code_string(SPI_result));
	return portal;
}

Datum
PayextResultDatum(uint64 row, int col)
{
	bool		isnull;
	Datum		value;

	Assert(row < SPI_processed);
	value = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						  col, &isnull);
	if (isnull)
		elog(ERROR, "payext: unexpected null in column %d", col);
	return value;
}

char *
PayextResultCString(uint64 row, int col)
{
	Assert(row < SPI_processed);
	/* SPI_getvalue returns NULL for a null column. */
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

Oid
PayextRelid(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("payext", false));
}

int64
PayextNextSerial(const char *seq_name)
{
	Oid			seq_oid = PayextRelid(seq_name);

	if (!OidIsValid(seq_oid))
		elog(ERROR, "payext: sequence payext.%s is missing", seq_name);
	return nextval_internal(seq_oid, true);
}

int64
PayextNextId(const char *seq_name)
{
	/* Before the serial: set_partition() waits for this transaction. */
	int			partition = PayextPartition();
	int64		serial = PayextNextSerial(seq_name);

	if (serial < 1 || serial > PAYEXT_MAX_ID_SERIAL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("id sequence payext.%s is out of range", seq_name),
				 errdetail("The sequence returned " INT64_FORMAT ", but ids hold serials from 1 to " INT64_FORMAT ".",
						   serial, PAYEXT_MAX_ID_SERIAL)));
	return ((int64) partition << PAYEXT_ID_SHARD_SHIFT) | serial;
}

void
PayextRequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Assert(argno < PG_NARGS());
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NULL_ARGUMENT),
				 errmsg("argument \"%s\" must not be null", name)));
}

void
PayextRequireArgs(FunctionCallInfo fcinfo, int nargs, const char *const *names)
{
	Assert(nargs <= PG_NARGS());
	for (int i = 0; i < nargs; i++)
		PayextRequireArg(fcinfo, i, names[i]);
}

/*
 * Raises PY004 when an identifier holds a control or invisible format
 * character, or a space at either end: two identities must not look alike.
 */
static void
PayextCheckIdentifier(const char *name, const char *data, int len)
{
	static const char *const what[] = {
		[IDENT_BAD_UTF8] = "a byte that is not UTF-8",
		[IDENT_CONTROL] = "a control character",
		[IDENT_FORMAT] = "an invisible formatting character",
		[IDENT_EDGE_SPACE] = "a space at its start or end",
	};
	size_t		offset;
	uint32_t	cp;
	IdentResult result;

	if (GetDatabaseEncoding() == PG_UTF8)
		result = IdentCheck(data, (size_t) len, &offset, &cp);
	else
		result = IdentCheckAscii(data, (size_t) len, &offset, &cp);
	if (result == IDENT_OK)
		return;
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_INVALID_IDENTIFIER),
			 errmsg("argument \"%s\" contains %s", name, what[result]),
			 errdetail("At byte %d: U+%04X.", (int) offset + 1, (unsigned int) cp),
			 errhint("Identifiers and references refuse control and format characters (Unicode Cc and Cf) and surrounding spaces, so that no two look alike.")));
}

char *
PayextCheckIdentifierText(text *arg, const char *name, int max_len)
{
	int			len = VARSIZE_ANY_EXHDR(arg);
	const char *data = VARDATA_ANY(arg);

	if (len == 0 || len > max_len)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_IDENTIFIER),
				 errmsg("argument \"%s\" must be 1 to %d bytes long", name, max_len),
				 errdetail("It is %d bytes long.", len)));
	PayextCheckIdentifier(name, data, len);
	return text_to_cstring(arg);
}

char *
PayextArgIdentifier(FunctionCallInfo fcinfo, int argno, const char *name,
					int max_len)
{
	PayextRequireArg(fcinfo, argno, name);
	return PayextCheckIdentifierText(PG_GETARG_TEXT_PP(argno), name, max_len);
}

int64
PayextCheckAmount(int64 amount, const char *name)
{
	if (amount <= 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVALID_AMOUNT),
				 errmsg("amount must be positive"),
				 errdetail("Argument \"%s\" is " INT64_FORMAT ".", name, amount),
				 errhint("Amounts are whole numbers of the currency's minor unit.")));
	return amount;
}

int64
PayextArgAmount(FunctionCallInfo fcinfo, int argno, const char *name)
{
	PayextRequireArg(fcinfo, argno, name);
	return PayextCheckAmount(PG_GETARG_INT64(argno), name);
}

bool
PayextIntervalUsec(const Interval *interval, int64 *usec)
{
	int64		month_usec;
	int64		day_usec;

	return !pg_mul_s64_overflow((int64) interval->month * DAYS_PER_MONTH,
								USECS_PER_DAY, &month_usec) &&
		!pg_mul_s64_overflow((int64) interval->day, USECS_PER_DAY, &day_usec) &&
		!pg_add_s64_overflow(interval->time, day_usec, usec) &&
		!pg_add_s64_overflow(*usec, month_usec, usec);
}

bool
PayextTimestampIsFinite(TimestampTz t)
{
	return !TIMESTAMP_NOT_FINITE(t);
}

int
PayextParseWord(const char *word, const char *const *names, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(word, names[i]) == 0)
			return i;
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
			 errmsg("payext: unknown %s \"%s\"", what, word)));
	return 0;					/* not reached */
}

int
PayextCompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

Datum
PayextInt64Array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
