/*
 * payext.c
 *		Module magic and settings.  Each concern keeps its own code; this file
 *		only registers what the whole extension shares.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "codes.h"
#include "ledger.h"
#include "parking.h"
#include "payext_limits.h"
#include "spi_util.h"
#include "throttle.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("payext.shard_id",
							"Shard number carried by ids and payment codes.",
							"0 on a single node.  Set in postgresql.conf on each shard, never changed afterwards.",
							&payext_shard_id,
							PAYEXT_DEFAULT_SHARD_ID,
							PAYEXT_MIN_SHARD_ID,
							PAYEXT_MAX_SHARD_ID,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	LedgerInit();
	CodesInit();
	ParkingInit();
	ThrottleInit();
	MarkGUCPrefixReserved("payext");
}
