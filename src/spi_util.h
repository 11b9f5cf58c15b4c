/*
 * spi_util.h
 *		Shared plumbing of payext's SQL layer: prepared-once SPI plans,
 *		argument checks that report payext's own SQLSTATEs, and ids.
 */
#ifndef PAYEXT_SPI_UTIL_H
#define PAYEXT_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"

#define PAYEXT_MAX_PLAN_ARGS 12

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
	SPIPlanPtr	plan;
} PayextPlan;

/* Runs the plan; checks SPI's return code against the one expected. */
extern uint64 PayextExecute(PayextPlan *plan, Datum *values, const char *nulls,
							bool read_only, long max_rows, int expected_rc);

/* Column `col` (1-based) of row `row` of the last result, which must be non-null. */
extern Datum PayextResultDatum(uint64 row, int col);
/* The same, or NULL when the column is null (text columns only). */
extern char *PayextResultCString(uint64 row, int col);

/* A new id from sequence payext.<seq_name>, carrying the shard number. */
extern int64 PayextNextId(const char *seq_name);
/* The next value of sequence payext.<seq_name>, as it is. */
extern int64 PayextNextSerial(const char *seq_name);

/* Argument checks; each raises PY0xx with the argument's name. */
extern void PayextRequireArgs(FunctionCallInfo fcinfo, int nargs,
							  const char *const *names);
extern char *PayextArgIdentifier(FunctionCallInfo fcinfo, int argno,
								 const char *name, int max_len);
extern int64 PayextArgAmount(FunctionCallInfo fcinfo, int argno, const char *name);

/* Connects to SPI, raising on failure; PayextSpiFinish() the same. */
extern void PayextSpiConnect(void);
extern void PayextSpiFinish(void);

/* payext.shard_id */
extern int	payext_shard_id;

#endif							/* PAYEXT_SPI_UTIL_H */
