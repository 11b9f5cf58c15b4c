/*
 * currency.h
 *		ISO 4217 currencies and their minor units.  Pure C: no backend calls,
 *		so that unit tests and fuzzers can link it alone.
 */
#ifndef PAYEXT_CURRENCY_H
#define PAYEXT_CURRENCY_H

#include <stddef.h>
#include <stdint.h>

typedef struct PayextCurrency
{
	char		code[4];		/* ISO 4217 alphabetic code, NUL-terminated */
	int			exponent;		/* minor unit's digits: 2 CNY, 0 JPY */
	const char *name;
} PayextCurrency;

/* The table, sorted by code. */
extern const PayextCurrency PayextCurrencies[];
extern const size_t PayextCurrencyCount;

/* The currency with this exact (upper-case) code, or NULL. */
extern const PayextCurrency *CurrencyLookup(const char *code, size_t len);

/*
 * Writes amount_minor as a decimal in the major unit followed by the code
 * ("-12.34 CNY") into buf; returns the length written, or -1 when buf (of
 * buf_len bytes) is too small.  32 bytes always suffice.
 */
extern int	CurrencyFormat(int64_t amount_minor, const PayextCurrency *currency,
						   char *buf, size_t buf_len);

#define PAYEXT_FORMAT_BUF_LEN 32

#endif							/* PAYEXT_CURRENCY_H */
