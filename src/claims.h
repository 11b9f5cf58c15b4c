/*
 * claims.h
 *		Behind a router: which partition holds a merchant's order_ref,
 *		refund_ref or capture_ref (payext.reference_claim; docs/partitions.md).
 */
#ifndef PAYEXT_CLAIMS_H
#define PAYEXT_CLAIMS_H

/*
 * Claims (merchant, kind, reference) for partition_number, under the
 * merchant's account on this partition, which the calling role must act
 * for; returns the partition that holds it: the first claim's.  A claim
 * another transaction is making is waited for.  Requires SPI.
 */
extern int	ClaimsClaim(int64 merchant, const char *kind, const char *reference,
						int partition_number);

/* Claims order_ref for this partition, or raises PY208.  Requires SPI. */
extern void ClaimsRequireHere(int64 merchant, const char *order_ref);

#endif							/* PAYEXT_CLAIMS_H */
