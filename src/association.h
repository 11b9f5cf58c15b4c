/*
 * association.h
 *		Interactions and automatic association (SQL layer; the window
 *		arithmetic is assoc_window.h).
 */
#ifndef PAYEXT_ASSOCIATION_H
#define PAYEXT_ASSOCIATION_H

#include "ledger.h"

/*
 * Records the interaction a charge or parking payment ('payment') or a
 * refund ('refund') left: consumer the wallet's owner, merchant the
 * account's public-service id, the transfer's amount, currency and time.
 * The accounts are as LedgerTransfer() found them.  Requires SPI.
 */
extern void AssocRecordTransfer(int64 transfer_id, const char *kind,
								const LedgerAccount *wallet,
								const LedgerAccount *merchant,
								int64 amount_minor);

#endif							/* PAYEXT_ASSOCIATION_H */
