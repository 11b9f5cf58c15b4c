/*
 * ledger.h
 *		The double-entry ledger: accounts, the journal, and the one transfer
 *		primitive every flow moves money with.
 */
#ifndef PAYEXT_LEDGER_H
#define PAYEXT_LEDGER_H

#include "datatype/timestamp.h"
#include "storage/itemptr.h"

/* payext.account.kind, parsed once when a row is read */
typedef enum LedgerAccountKind
{
	LEDGER_WALLET,
	LEDGER_MERCHANT,
	LEDGER_SYSTEM,
	LEDGER_CLEARING				/* money in flight between partitions */
} LedgerAccountKind;

/*
 * Wallets and merchants store their balance and never go below zero; a
 * system account (money outside) and a clearing account (money on its way
 * to or from another partition) store none, are never locked, and their
 * balance is the journal's sum, of either sign.
 */
static inline bool
LedgerStoresBalance(LedgerAccountKind kind)
{
	return kind == LEDGER_WALLET || kind == LEDGER_MERCHANT;
}

/* payext.account.status */
typedef enum LedgerAccountStatus
{
	LEDGER_ACTIVE,
	LEDGER_FROZEN,
	LEDGER_CLOSED
} LedgerAccountStatus;

/* payext.transfer.kind: what moved the money */
typedef enum LedgerTransferKind
{
	LEDGER_KIND_UNSET,			/* 0: a request that forgot its kind */
	LEDGER_TOP_UP,
	LEDGER_WITHDRAW,
	LEDGER_TRANSFER,
	LEDGER_CHARGE,
	LEDGER_REFUND,
	LEDGER_PARKING,
	LEDGER_CLEARING_OUT,		/* a saga's first leg: account -> clearing */
	LEDGER_CLEARING_IN,			/* its second, elsewhere: clearing -> account */
	LEDGER_CLEARING_BACK,		/* the first leg undone: clearing -> account */
	LEDGER_CAPTURE				/* a hold's money taken (src/holds.c) */
} LedgerTransferKind;

/* An account as the ledger sees it. */
typedef struct LedgerAccount
{
	int64		id;
	LedgerAccountKind kind;
	char		currency[4];
	int64		balance_minor;	/* 0 for system and clearing accounts */
	LedgerAccountStatus status;
	char	   *owner;			/* a wallet's owner; NULL when none */
	char	   *public_service_id;	/* a merchant's official account */
	bool		may_hold;		/* a wallet whose holds may not all be over */
	int64		held_minor;		/* what its live holds hold (LedgerTransfer) */
	ItemPointerData locked_tid; /* the row version locked, when known */
} LedgerAccount;

typedef struct LedgerTransferRequest
{
	int64		debit_account;
	int64		credit_account;
	int64		amount_minor;	/* > 0 */
	LedgerTransferKind kind;

	/*
	 * Idempotency: a non-NULL reference is unique within (kind, idem_scope).
	 * idem_scope is 0 for references unique across the ledger (a bank's
	 * reference) and an account id for those unique per account (a merchant's
	 * order reference).
	 */
	int64		idem_scope;
	const char *reference;
	/* SQLSTATE for a reference reused with other arguments; 0: PY107 */
	int			conflict_errcode;

	/*
	 * true: a replay returns the first transfer's id whatever its arguments,
	 * and the caller (which keeps more about the request than the journal
	 * does) decides whether it was the same request.
	 */
	bool		caller_checks_replay;

	/*
	 * true: when an account is frozen, closed or short of funds, or the
	 * currencies differ, return 0 and move nothing instead of raising (an
	 * automatic payment that may simply not happen).
	 */
	bool		refuse_softly;

	/*
	 * true: the credit account is a merchant, to be credited through one of
	 * its buckets under a shared lock of its row, so that payments to one
	 * merchant do not wait for each other (charges, parking payments).
	 */
	bool		credit_via_bucket;

	/*
	 * true: the debit (a charge) or credit (a refund) account is a customer's
	 * wallet and the caller a merchant: errors about the wallet name neither
	 * its id nor its balance.
	 */
	bool		conceal_debit;
	bool		conceal_credit;

	/*
	 * When not NULL, set to the accounts as the transfer locked them (not on
	 * a replay), so that the caller need not read them again.
	 */
	LedgerAccount *debit_found;
	LedgerAccount *credit_found;
} LedgerTransferRequest;

/* Registers the ledger's settings; called from _PG_init(). */
extern void LedgerInit(void);

/*
 * Moves the money and returns the transfer id; on a replay of the same
 * request returns the first one's id, moves nothing and sets *replayed
 * (when not NULL).  The caller must be connected to SPI.
 */
extern int64 LedgerTransfer(const LedgerTransferRequest *req, bool *replayed);

/*
 * Takes, in the ledger's lock order (account id), the locks that payments
 * from these wallets to this merchant would take one at a time: each
 * wallet's row FOR NO KEY UPDATE, the merchant's FOR SHARE.  Ids that are
 * not wallets of the merchant's currency, or not there, are passed over
 * (their payments will be refused; they hold nothing).
 * Sorts `wallets` in place.  The caller must be connected to SPI.
 */
extern void LedgerLockForPayments(int64 merchant, const char *currency,
								  int64 *wallets, int n);

/*
 * What a wallet's live holds hold (0 for other accounts, and without a
 * query for a wallet whose holds are all over).  The caller holds the
 * wallet's row, so no hold can come or go meanwhile.
 */
extern int64 LedgerHeld(const LedgerAccount *account);

/*
 * Locks a wallet FOR NO KEY UPDATE and reads it, with what its live holds
 * reserve; false when there is no such wallet.
 */
extern bool LedgerLockWallet(int64 account_id, LedgerAccount *account);

/*
 * A user account's whole balance (a merchant's buckets included) in the
 * current snapshot, without a lock or an access check; 0 for none.
 */
extern int64 LedgerWholeBalance(int64 account_id);

/*
 * Locks user accounts FOR NO KEY UPDATE in id order (ids is sorted in
 * place; duplicates and system accounts pass), one by the primary key at a
 * time: what a payment of several debits locks before its transfers.
 */
extern void LedgerLockAccounts(int64 *ids, int n);

/* The transfer of this kind under (scope, reference), or 0. */
extern int64 LedgerFindReference(LedgerTransferKind kind, int64 scope,
								 const char *reference);

/* Raises PY102/PY103 unless active; conceal: name no wallet id. */
extern void LedgerCheckActiveAs(const LedgerAccount *account, bool conceal);

/* Reads an account without locking it; false when it does not exist. */
extern bool LedgerFindAccount(int64 account_id, LedgerAccount *account);

/* Reads an account without locking it; raises PY101 when it does not exist. */
extern void LedgerReadAccount(int64 account_id, LedgerAccount *account);

/* Raises PY102/PY103 unless the account is active. */
extern void LedgerCheckActive(const LedgerAccount *account);

/* Raises PY111 unless the account is of this kind; `role` names it in the message. */
extern void LedgerRequireKind(const LedgerAccount *account, LedgerAccountKind kind,
							  const char *role);

/*
 * The enums from and to the words payext's tables store.  Parsing raises
 * PY901 on a word the table's CHECK constraint would not have let in.
 */
extern LedgerAccountKind LedgerParseAccountKind(const char *kind);
extern const char *LedgerAccountKindName(LedgerAccountKind kind);
extern const char *LedgerTransferKindName(LedgerTransferKind kind);

/* The id of the system account of a currency, created on first use. */
extern int64 LedgerSystemAccount(const char *currency);

/* The partition's clearing account of a currency (sagas), made on first use. */
extern int64 LedgerClearingAccount(const char *currency);

/* The journal row checksum, as stored in transfer.checksum. */
extern bytea *LedgerChecksum(int64 id, int64 debit_account, int64 credit_account,
							 int64 amount_minor, const char *currency,
							 const char *kind, int64 idem_scope,
							 const char *reference, TimestampTz created_at);

#endif							/* PAYEXT_LEDGER_H */
