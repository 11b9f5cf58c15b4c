/*
 * holds.h
 *		Holds (pre-authorisation): money of a wallet reserved for a merchant
 *		until the merchant captures it, voids it, or it expires.
 */
#ifndef PAYEXT_HOLDS_H
#define PAYEXT_HOLDS_H

#include "datatype/timestamp.h"

#include "ledger.h"

/* The order references of parking lots' entry holds: "parking:<stay id>". */
#define HOLDS_STAY_ORDER_PREFIX "parking:"

/*
 * Makes a hold of amount_minor on the wallet for the merchant: locks the
 * wallet, checks it (active, the merchant's currency, an available balance
 * that covers the amount; errors name no wallet id) and records the hold,
 * made by a payment code (code_serial) or for a parking stay (stay).  With
 * soft, a wallet that cannot hold the amount (or a merchant that cannot be
 * paid) returns 0 instead of raising.
 */
extern int64 HoldsCreate(int64 wallet_id, const LedgerAccount *merchant,
						 const char *order_ref, int64 code_serial, int64 stay,
						 int64 amount_minor, TimestampTz expires_at, bool soft);

/*
 * Captures amount_minor of a hold for its merchant under capture_ref (a
 * journal transfer of kind 'capture', an interaction like a payment, an
 * event); final releases the rest.  lock_merchant: take the merchant's row
 * FOR KEY SHARE first, as a charge does (not needed for a parking lot's
 * entry hold, whose order no till can name).  Returns the transfer id.
 */
extern int64 HoldsCapture(int64 merchant_id, int64 hold_id, int64 amount_minor,
						  const char *capture_ref, bool final, bool lock_merchant);

/* Releases what the hold still reserves; returns it (0 when nothing). */
extern int64 HoldsVoid(int64 merchant_id, int64 hold_id);

#endif							/* PAYEXT_HOLDS_H */
