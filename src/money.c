/*
 * money.c
 *		SQL functions over the ISO 4217 table: format_amount(), currencies().
 */
#include "postgres.h"

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "errors.h"
#include "money.h"
#include "spi_util.h"

const PayextCurrency *
PayextArgCurrency(FunctionCallInfo fcinfo, int argno, const char *name)
{
	text	   *arg;
	char		code[3];
	int			len;
	const PayextCurrency *currency;

	PayextRequireArg(fcinfo, argno, name);
	arg = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(arg);
	currency = NULL;
	if (len == 3)
	{
		/* ISO codes are upper case; accept 'cny' for 'CNY'. */
		for (int i = 0; i < 3; i++)
			code[i] = pg_ascii_toupper(VARDATA_ANY(arg)[i]);
		currency = CurrencyLookup(code, 3);
	}
	if (currency == NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_CURRENCY),
				 errmsg("unknown currency \"%.*s\"",
						pg_mbcliplen(VARDATA_ANY(arg), len, 8), VARDATA_ANY(arg)),
				 errhint("Use an ISO 4217 code listed by payext.currencies().")));
	return currency;
}

char *
PayextFormatAmount(int64 amount_minor, const char *currency_code)
{
	const PayextCurrency *currency = CurrencyLookup(currency_code,
													strlen(currency_code));
	char		buf[PAYEXT_FORMAT_BUF_LEN];

	if (currency == NULL)
		elog(ERROR, "payext: unknown currency \"%s\" in the ledger", currency_code);
	if (CurrencyFormat(amount_minor, currency, buf, sizeof(buf)) < 0)
		elog(ERROR, "payext: amount does not fit its format buffer");
	return pstrdup(buf);
}

/* format_amount(amount bigint, currency text) RETURNS text */
PG_FUNCTION_INFO_V1(payext_format_amount);
Datum
payext_format_amount(PG_FUNCTION_ARGS)
{
	const PayextCurrency *currency;

	PayextRequireArg(fcinfo, 0, "amount");
	currency = PayextArgCurrency(fcinfo, 1, "currency");
	PG_RETURN_TEXT_P(cstring_to_text(PayextFormatAmount(PG_GETARG_INT64(0),
														currency->code)));
}

/*
 * currencies() RETURNS TABLE(code text, exponent integer, name text)
 */
PG_FUNCTION_INFO_V1(payext_currencies);
Datum
payext_currencies(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (size_t i = 0; i < PayextCurrencyCount; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(PayextCurrencies[i].code);
		values[1] = Int32GetDatum(PayextCurrencies[i].exponent);
		values[2] = CStringGetTextDatum(PayextCurrencies[i].name);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
