/*
 * currency.c
 *		ISO 4217 table and amount formatting.  Pure C (see currency.h).
 */
#include <stdio.h>
#include <string.h>

#include "currency.h"

/*
 * The world's most traded currencies and the region's, with their ISO 4217
 * minor-unit exponents.  Sorted by code: CurrencyLookup() bisects.
 */
const PayextCurrency PayextCurrencies[] = {
	{"AED", 2, "UAE Dirham"},
	{"ARS", 2, "Argentine Peso"},
	{"AUD", 2, "Australian Dollar"},
	{"BHD", 3, "Bahraini Dinar"},
	{"BRL", 2, "Brazilian Real"},
	{"CAD", 2, "Canadian Dollar"},
	{"CHF", 2, "Swiss Franc"},
	{"CLP", 0, "Chilean Peso"},
	{"CNY", 2, "Yuan Renminbi"},
	{"COP", 2, "Colombian Peso"},
	{"CZK", 2, "Czech Koruna"},
	{"DKK", 2, "Danish Krone"},
	{"EGP", 2, "Egyptian Pound"},
	{"EUR", 2, "Euro"},
	{"GBP", 2, "Pound Sterling"},
	{"HKD", 2, "Hong Kong Dollar"},
	{"HUF", 2, "Forint"},
	{"IDR", 2, "Rupiah"},
	{"ILS", 2, "New Israeli Sheqel"},
	{"INR", 2, "Indian Rupee"},
	{"ISK", 0, "Iceland Krona"},
	{"JPY", 0, "Yen"},
	{"KRW", 0, "Won"},
	{"KWD", 3, "Kuwaiti Dinar"},
	{"MOP", 2, "Pataca"},
	{"MXN", 2, "Mexican Peso"},
	{"MYR", 2, "Malaysian Ringgit"},
	{"NOK", 2, "Norwegian Krone"},
	{"NZD", 2, "New Zealand Dollar"},
	{"PHP", 2, "Philippine Peso"},
	{"PKR", 2, "Pakistan Rupee"},
	{"PLN", 2, "Zloty"},
	{"QAR", 2, "Qatari Rial"},
	{"SAR", 2, "Saudi Riyal"},
	{"SEK", 2, "Swedish Krona"},
	{"SGD", 2, "Singapore Dollar"},
	{"THB", 2, "Baht"},
	{"TRY", 2, "Turkish Lira"},
	{"TWD", 2, "New Taiwan Dollar"},
	{"USD", 2, "US Dollar"},
	{"VND", 0, "Dong"},
	{"ZAR", 2, "Rand"},
};

const size_t PayextCurrencyCount = sizeof(PayextCurrencies) / sizeof(PayextCurrencies[0]);

const PayextCurrency *
CurrencyLookup(const char *code, size_t len)
{
	size_t		lo = 0;
	size_t		hi = PayextCurrencyCount;

	if (len != 3)
		return NULL;
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			cmp = memcmp(code, PayextCurrencies[mid].code, 3);

		if (cmp == 0)
			return &PayextCurrencies[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int
CurrencyFormat(int64_t amount_minor, const PayextCurrency *currency,
			   char *buf, size_t buf_len)
{
	uint64_t	magnitude;
	uint64_t	scale = 1;
	int			written;

	/* The magnitude as unsigned, so that INT64_MIN has one too. */
	if (amount_minor < 0)
		magnitude = (uint64_t) 0 - (uint64_t) amount_minor;
	else
		magnitude = (uint64_t) amount_minor;
	for (int i = 0; i < currency->exponent; i++)
		scale *= 10;

	if (currency->exponent == 0)
		written = snprintf(buf, buf_len, "%s%llu %s",
						   amount_minor < 0 ? "-" : "",
						   (unsigned long long) magnitude, currency->code);
	else
		written = snprintf(buf, buf_len, "%s%llu.%0*llu %s",
						   amount_minor < 0 ? "-" : "",
						   (unsigned long long) (magnitude / scale),
						   currency->exponent,
						   (unsigned long long) (magnitude % scale),
						   currency->code);
	if (written < 0 || (size_t) written >= buf_len)
		return -1;
	return written;
}
