/*
 * direct.h
 *		Writes and reads of the charge path without the executor (direct.c).
 */
#ifndef PAYEXT_DIRECT_H
#define PAYEXT_DIRECT_H

#include "datatype/timestamp.h"
#include "access/stratnum.h"
#include "nodes/lockoptions.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

/* One of payext's tables, as direct.c writes it. */
typedef struct PayextDirectTable PayextDirectTable;

extern PayextDirectTable *const PayextDirectAccount;
extern PayextDirectTable *const PayextDirectPaymentCode;
extern PayextDirectTable *const PayextDirectPayment;
extern PayextDirectTable *const PayextDirectInteraction;
extern PayextDirectTable *const PayextDirectInteractionPair;
extern PayextDirectTable *const PayextDirectTransfer;
extern PayextDirectTable *const PayextDirectParkingStay;
extern PayextDirectTable *const PayextDirectParkingPayment;
extern PayextDirectTable *const PayextDirectParkingPlateEvents;
extern PayextDirectTable *const PayextDirectAssociationState;
extern PayextDirectTable *const PayextDirectReferenceClaim;

/*
 * Sets the columns set_cols to set (NULL where set_null says so; set_null
 * may be NULL) in the row version at *tid, which this transaction holds
 * locked and has not changed since.  The row's int8 columns expect_cols
 * must hold expect (what the lock read), or it is an internal error.
 * false, having written nothing, when an UPDATE through the executor would
 * do more than this (a trigger, a rule): the caller then runs its UPDATE.
 */
extern bool PayextDirectUpdate(PayextDirectTable *t, ItemPointer tid,
							   int nexpect, const char *const *expect_cols,
							   const int64 *expect,
							   int nset, const char *const *set_cols,
							   const Datum *set, const bool *set_null);

/*
 * PayextDirectUpdate, and when it updated, *tid then the version it wrote
 * (which this transaction then holds, for an update of it again).
 */
extern bool PayextDirectUpdateTracked(PayextDirectTable *t, ItemPointer tid,
									  int nexpect, const char *const *expect_cols,
									  const int64 *expect, int nset,
									  const char *const *set_cols, const Datum *set,
									  const bool *set_null);

/*
 * Inserts a row with every column of the table given (cols, values,
 * nulls); false, having written nothing, when an INSERT through the
 * executor would do more (a trigger, a rule, a column not given).
 * A table's own trigger (payext.interaction's interaction_recorded) is no
 * reason to refuse: *fire_own (which may be NULL for other tables) says
 * whether the INSERT would have fired it, and the caller then does what
 * it does.  refs_locked: as for PayextDirectInsertOrNothing.
 */
extern bool PayextDirectInsert(PayextDirectTable *t, int ncols,
							   const char *const *cols, const Datum *values,
							   const bool *nulls, bool refs_locked, bool *fire_own);

/*
 * INSERT ... ON CONFLICT ON payext.<arbiter> DO NOTHING (arbiter NULL: ON
 * CONFLICT DO NOTHING, every unique index an arbiter), as the executor
 * runs it: 1 inserted; 0 not, a conflicting row at *conflict (under
 * REPEATABLE READ and SERIALIZABLE one the transaction's snapshot cannot
 * see is 40001); -1 declined, nothing written, as PayextDirectInsert.
 * refs_locked: the caller holds a lock (FOR KEY SHARE or stronger) on, or
 * has inserted in this transaction, every row that payext's own foreign
 * keys of the table reference for the new row (payext.transfer's debit and
 * credit accounts; payext.parking_payment's transfer, stay and wallet;
 * payext.parking_stay's and payext.parking_plate_events' lot;
 * payext.association_state's rule), so those keys' checks are given and
 * not run again; any other foreign key is checked by the executor.
 */
extern int	PayextDirectInsertOrNothing(PayextDirectTable *t, const char *arbiter,
										int ncols, const char *const *cols,
										const Datum *values, const bool *nulls,
										bool refs_locked, ItemPointer conflict);

/*
 * Whether an insert of ncols columns would be done here
 * (PayextDirectInsert, PayextDirectInsertOrNothing with refs_locked): for
 * a caller that locks what the foreign keys reference only when it will
 * insert.  (An INSERT trigger of the table's own, which the insert does
 * not decline, declines here.)
 */
extern bool PayextDirectInsertAllowed(PayextDirectTable *t, int ncols, bool refs_locked);

/*
 * Whether INSERT ... ON CONFLICT DO UPDATE SET set_cols, of ncols columns,
 * can be done here (PayextDirectInsertOrNothing with refs_locked,
 * PayextDirectLockRow, PayextDirectUpdate), conflict or not: what the
 * statement checks and fires either way, the INSERT's privilege and
 * triggers and the UPDATE's, would not send it back, nor would a column
 * not given.  false: the caller runs the statement.
 */
extern bool PayextDirectUpsertAllowed(PayextDirectTable *t, int ncols, int nset,
									  const char *const *set_cols);

/*
 * Locks the row version at *tid in `mode`, as INSERT ... ON CONFLICT DO
 * UPDATE locks the conflicting row (ExecOnConflictUpdate): 1 locked, its
 * columns cols copied into values and nulls; 0 when another transaction
 * updated or deleted it first, under READ COMMITTED (the caller starts
 * again from its insert); under REPEATABLE READ and SERIALIZABLE that, or
 * a row the transaction's snapshot cannot see, is 40001.
 */
extern int	PayextDirectLockRow(PayextDirectTable *t, ItemPointer tid,
								LockTupleMode mode, int ncols, const char *const *cols,
								Datum *values, bool *nulls);

/*
 * UPDATE payext.merchant_credit SET amount = amount + add WHERE account =
 * $1 AND bucket = $2 AND amount <= limit - add, as the executor runs it
 * (the row locked, under READ COMMITTED its newest version checked again):
 * 1 updated, 0 no such row, -1 declined with the row locked (the caller
 * runs its UPDATE).  0 < add <= limit.
 */
extern int	PayextDirectAddToBucket(int64 account, int32 bucket, int64 add, int64 limit);

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
	ItemPointerData tid;		/* the version read or locked */
} PayextAccountRow;

/*
 * Reads payext.account's row `id` by its primary key, as a SELECT through
 * SPI would see it; false when there is none.  The page is not pruned: a
 * prune writes WAL, which a transaction that writes none of its own
 * (issuing a code) would then wait for at commit.
 */
extern bool PayextDirectReadAccount(int64 id, PayextAccountRow *row);

/* Which accounts a lock is for. */
typedef enum PayextAccountNeed
{
	PAYEXT_ACCOUNT_ANY,
	PAYEXT_ACCOUNT_STORES_BALANCE,	/* balance IS NOT NULL */
	PAYEXT_ACCOUNT_MERCHANT		/* kind = 'merchant' */
} PayextAccountNeed;

/*
 * SELECT ... FROM payext.account WHERE id = $1 AND <need> FOR <mode>, as
 * the executor would run it; false when there is no such row.
 */
extern bool PayextDirectLockAccount(int64 id, PayextAccountNeed need,
									LockTupleMode mode, PayextAccountRow *row);

/* A live code as its lock read it; state palloc'd. */
typedef struct PayextCodeRow
{
	int64		serial;
	int32		key_id;
	int64		wallet;
	int64		max_amount;		/* 0: none */
	TimestampTz expires_at;
	char	   *state;
	ItemPointerData tid;		/* the version locked */
} PayextCodeRow;

/*
 * SELECT ... FROM payext.payment_code WHERE code = $1 FOR NO KEY UPDATE, as
 * the executor would run it; false when there is no such row.
 */
extern bool PayextDirectLockCode(int64 code, PayextCodeRow *row);

/*
 * SELECT 1 FROM ONLY payext.<table> WHERE id = $1 FOR <mode>, as a foreign
 * key's check of a new row runs it (FOR KEY SHARE): as the table's owner,
 * with no privilege or row-level security check, for a caller that then
 * inserts with refs_locked.  false when there is no such row, or when
 * the table's primary key is not on id (the caller's SPI statement then
 * checks the key).
 */
extern bool PayextDirectLockById(const char *table, int64 id, LockTupleMode mode);

/*
 * Whether payext.<table> has a row of primary key `key`, as a statement's
 * snapshot sees it.
 */
extern bool PayextDirectExists(const char *table, int64 key);

/*
 * A read of one of payext's tables through one of its btree indexes, as a
 * SELECT through SPI would see it (a statement's snapshot): the rows whose
 * leading index columns match the keys, in the index's order.
 */
typedef struct PayextDirectScan PayextDirectScan;

/* A condition on an index column (1-based): =, <, <=, > or >=; IS NULL. */
typedef struct PayextScanKey
{
	int16		column;
	StrategyNumber strategy;	/* BTEqualStrategyNumber, ... */
	bool		isnull;			/* IS NULL (then strategy is ignored) */
	Datum		value;
} PayextScanKey;

/* column <strategy> value */
static inline PayextScanKey
PayextKey(int16 column, StrategyNumber strategy, Datum value)
{
	PayextScanKey key = {column, strategy, false, value};

	return key;
}

/* column IS NULL */
static inline PayextScanKey
PayextKeyNull(int16 column)
{
	PayextScanKey key = {column, InvalidStrategy, true, (Datum) 0};

	return key;
}

/*
 * SELECT cols FROM payext.<t> WHERE <the unique btree index's leading
 * columns> = keys AND <equal_cols> = equal_values FOR <mode>, as the
 * executor runs it: 1 locked, the row's columns cols copied into values
 * and nulls, the version locked at *tid; 0 no such row (or, under READ
 * COMMITTED, it no longer passes once the lock followed an update; under
 * REPEATABLE READ and SERIALIZABLE such an update is 40001); -1 declined,
 * nothing locked, when SPI must run it (no such valid unique btree index
 * of the table, row-level security that applies, or the privileges that
 * SELECT ... FOR UPDATE asks for missing).  equal_cols must name the key
 * columns too, first and in the index's order (else -1): they are what a
 * newer version is checked against.  A partial index answers only what
 * implies its predicate.
 */
extern int	PayextDirectLockByIndex(PayextDirectTable *t, const char *index, int nkeys,
									const PayextScanKey *keys, int nequal,
									const char *const *equal_cols, const Datum *equal_values,
									LockTupleMode mode, int ncols, const char *const *cols,
									Datum *values, bool *nulls, ItemPointer tid);

/*
 * Begins a scan of payext.<index>, whose first key columns must be the
 * table's columns the comma-separated list columns names, in its order
 * ("plate,lot": what the caller's keys are for);
 * NULL when the SELECT through SPI would do more or otherwise (the index
 * missing, not a valid btree or not of those columns, row-level
 * security that applies, no SELECT privilege): the caller then runs it.
 * A partial index answers only for rows its predicate admits: the caller
 * asks it only what implies the predicate (and may check it again).
 */
extern PayextDirectScan *PayextDirectBeginScan(const char *index, const char *columns);

/*
 * payext.<index> when it is a valid btree of rel whose first key columns
 * are those the comma-separated list columns names, else InvalidOid: for
 * a caller that scans rel itself (systable_beginscan).
 */
extern Oid	PayextDirectIndexOf(Relation rel, const char *index, const char *columns);

/* (Re)starts the scan with keys, in the scan's snapshot. */
extern void PayextDirectRescan(PayextDirectScan *scan, int nkeys,
							   const PayextScanKey *keys);

/*
 * The next row: its columns cols into values and nulls (valid until the
 * next call or the end of the scan); false when there are no more.
 */
extern bool PayextDirectNext(PayextDirectScan *scan, int ncols,
							 const char *const *cols, Datum *values, bool *nulls);

/* The row version that PayextDirectNext returned last. */
extern ItemPointer PayextDirectScanTid(PayextDirectScan *scan);

extern void PayextDirectEndScan(PayextDirectScan *scan);

#endif							/* PAYEXT_DIRECT_H */
