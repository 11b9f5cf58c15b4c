/*
 * spi_util.h
 *		Shared plumbing of payext's SQL layer: prepared-once SPI plans,
 *		argument checks that report payext's own SQLSTATEs, and ids.
 */
#ifndef PAYEXT_SPI_UTIL_H
#define PAYEXT_SPI_UTIL_H

#include "executor/spi.h"
#include "datatype/timestamp.h"
#include "fmgr.h"

#define PAYEXT_MAX_PLAN_ARGS 16

/*
 * A statement prepared on first use and kept for the backend's life
 * (SPI_keepplan).  The plan cache re-plans it by itself when a relation it
 * reads is altered or dropped and created again.
 */
typedef struct PayextPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PAYEXT_MAX_PLAN_ARGS];
	/* SPI_prepare_cursor's: CURSOR_OPT_GENERIC_PLAN, or 0 for the default */
	int			cursor_options;
	SPIPlanPtr	plan;
} PayextPlan;

/* Runs the plan; checks SPI's return code against the one expected. */
extern uint64 PayextExecute(PayextPlan *plan, Datum *values, const char *nulls,
							bool read_only, long max_rows, int expected_rc);

/*
 * PayextExecute() of a statement that changes rows, reading the newest
 * committed ones: under REPEATABLE READ and SERIALIZABLE, a row that the
 * transaction's snapshot cannot see makes it raise 40001 rather than be
 * passed over.
 */
extern uint64 PayextExecuteLatest(PayextPlan *plan, Datum *values,
								  const char *nulls, int expected_rc);

/*
 * A read of the newest committed rows (at most one), whatever the
 * transaction's snapshot: under REPEATABLE READ and SERIALIZABLE, tells a
 * row that exists but is newer than the snapshot (40001 for the caller to
 * raise) from one that does not exist.
 */
extern uint64 PayextExecuteLatestRead(PayextPlan *plan, Datum *values,
									  const char *nulls);

/* Opens a cursor on the plan (read-write snapshot semantics). */
extern Portal PayextOpenCursor(PayextPlan *plan, Datum *values, const char *nulls);

/* Column `col` (1-based) of row `row` of the last result, which must be non-null. */
extern Datum PayextResultDatum(uint64 row, int col);

/* The same, or NULL when the column is null (text columns only). */
extern char *PayextResultCString(uint64 row, int col);

/* The oid of relation payext.<name>, or InvalidOid when it does not exist. */
extern Oid	PayextRelid(const char *name);

/* A new id from sequence payext.<seq_name>, carrying the partition. */
extern int64 PayextNextId(const char *seq_name);

/* The next value of sequence payext.<seq_name>, as it is. */
extern int64 PayextNextSerial(const char *seq_name);

/*
 * Argument checks; each raises PY0xx with the argument's name.  A null
 * argument is PY001 (PayextRequireArg), whatever the function.
 */
extern void PayextRequireArg(FunctionCallInfo fcinfo, int argno, const char *name);
extern void PayextRequireArgs(FunctionCallInfo fcinfo, int nargs,
							  const char *const *names);
extern char *PayextArgIdentifier(FunctionCallInfo fcinfo, int argno,
								 const char *name, int max_len);
extern int64 PayextArgAmount(FunctionCallInfo fcinfo, int argno, const char *name);

/* The same checks of a value that is not an argument (an array's element). */
extern char *PayextCheckIdentifierText(text *arg, const char *name, int max_len);
extern int64 PayextCheckAmount(int64 amount, const char *name);

/*
 * An interval as microseconds, months counted as 30 days and days as 24
 * hours; false when it does not fit in 64 bits.
 */
extern bool PayextIntervalUsec(const Interval *interval, int64 *usec);

/* Whether a timestamptz is finite: false for -infinity and infinity. */
extern bool PayextTimestampIsFinite(TimestampTz t);

/* Connects to SPI, raising on failure; PayextSpiFinish() the same. */
extern void PayextSpiConnect(void);
extern void PayextSpiFinish(void);

/*
 * The index of `word` in names[0 .. n), a word a table's CHECK constraint
 * lets in; PY901 (a broken invariant) for any other.  `what` names it.
 */
extern int	PayextParseWord(const char *word, const char *const *names, int n,
							const char *what);

/* qsort() comparison of int64s. */
extern int	PayextCompareInt64(const void *a, const void *b);

/* ids[0 .. n) as a bigint[] Datum, for a plan's `= ANY ($1)`. */
extern Datum PayextInt64Array(const int64 *ids, int n);

#endif							/* PAYEXT_SPI_UTIL_H */
