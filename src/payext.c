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
#include "partition.h"
#include "payext_limits.h"
#include "spi_util.h"
#include "throttle.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static int	payext_shard_id = PAYEXT_DEFAULT_SHARD_ID;

void
_PG_init(void)
{
	/*
	 * 0.7.0's partition number.  A database's partition is
	 * payext.partition_info now; ALTER EXTENSION payext UPDATE from 0.7.0
	 * reads this once and moves it there.
	 */
	DefineCustomIntVariable("payext.shard_id",
							"Deprecated: 0.7.0's partition number, read only by the update from 0.7.0.",
							"A database's partition is set by payext.set_partition().",
							&payext_shard_id,
							PAYEXT_DEFAULT_SHARD_ID,
							PAYEXT_MIN_SHARD_ID,
							PAYEXT_MAX_SHARD_ID,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	PartitionInit();
	LedgerInit();
	CodesInit();
	ParkingInit();
	ThrottleInit();
	MarkGUCPrefixReserved("payext");
}
