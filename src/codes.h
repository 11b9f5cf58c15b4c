/*
 * codes.h
 *		Payment codes, charges and refunds (SQL layer; see code_format.h for
 *		the code itself).
 */
#ifndef PAYEXT_CODES_H
#define PAYEXT_CODES_H

#include "datatype/timestamp.h"

/* Defines the payext.code_ttl and payext.max_code_ttl settings. */
extern void CodesInit(void);

/*
 * authorize()'s part that is a payment code's: checks and uses up the code,
 * then makes the hold (HoldsCreate()); returns the hold's id.
 */
extern int64 CodesAuthorize(int64 merchant_id, const char *code, size_t code_len,
							int64 amount_minor, const char *order_ref,
							TimestampTz expires_at);

/*
 * A payment's lock of its merchant (FOR KEY SHARE, against reversals and
 * holds of its orders); returns whether the merchant's events are
 * announced.
 */
extern bool CodesLockMerchantForPayment(int64 merchant);

#endif							/* PAYEXT_CODES_H */
