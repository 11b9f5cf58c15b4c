/*
 * association.h
 *		Interactions and automatic association (SQL layer; the window
 *		arithmetic is assoc_window.h).
 */
#ifndef PAYEXT_ASSOCIATION_H
#define PAYEXT_ASSOCIATION_H

/*
 * Records the interaction a charge ('payment') or a refund ('refund') left:
 * consumer the wallet's owner, merchant the account's public-service id,
 * amount and time the transfer's.  Requires SPI.
 */
extern void AssocRecordTransfer(int64 transfer_id, int64 wallet, int64 merchant,
								const char *kind);

#endif							/* PAYEXT_ASSOCIATION_H */
