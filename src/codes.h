/*
 * codes.h
 *		Payment codes, charges and refunds (SQL layer; see code_format.h for
 *		the code itself).
 */
#ifndef PAYEXT_CODES_H
#define PAYEXT_CODES_H

/* Defines the payext.code_ttl and payext.max_code_ttl settings. */
extern void CodesInit(void);

#endif							/* PAYEXT_CODES_H */
