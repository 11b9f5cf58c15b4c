/*
 * money.h
 *		The SQL side of currencies: argument parsing and formatting.
 */
#ifndef PAYEXT_MONEY_H
#define PAYEXT_MONEY_H

#include "fmgr.h"

#include "currency.h"

/* The currency named by a text argument; raises PY001/PY003. */
extern const PayextCurrency *PayextArgCurrency(FunctionCallInfo fcinfo, int argno,
											   const char *name);

/* "12.34 CNY", palloc'd; the code must be a known currency. */
extern char *PayextFormatAmount(int64 amount_minor, const char *currency_code);

#endif							/* PAYEXT_MONEY_H */
