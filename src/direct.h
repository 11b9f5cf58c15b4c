/*
 * direct.h
 *		Writes of the charge path without the executor (direct.c).
 */
#ifndef PAYEXT_DIRECT_H
#define PAYEXT_DIRECT_H

#include "datatype/timestamp.h"
#include "storage/itemptr.h"

/* A row of payext.account as read; strings palloc'd, NULL for NULL. */
typedef struct PayextAccountRow
{
	int64		id;
	char	   *kind;
	char	   *currency;
	bool		balance_null;
	int64		balance;
	char	   *status;
	char	   *owner;
	char	   *public_service_id;
	bool		held_until_null;
	TimestampTz held_until;
} PayextAccountRow;

/*
 * Sets the balance of payext.account's row at *tid, which this transaction
 * holds locked and has not changed since, from `before` to `after` (≥ 0).
 * false, having written nothing, when an UPDATE through the executor would
 * do more than heap_update does (a trigger, a rule, a CHECK payext does not
 * know): the caller then runs its UPDATE through SPI.
 */
extern bool PayextDirectSetBalance(ItemPointer tid, int64 id, int64 before,
								   int64 after);

/*
 * Reads payext.account's row `id` by its primary key, as a SELECT through
 * SPI would see it; false when there is none.
 */
extern bool PayextDirectReadAccount(int64 id, PayextAccountRow *row);

#endif							/* PAYEXT_DIRECT_H */
