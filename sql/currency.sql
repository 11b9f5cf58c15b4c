-- Currencies: the ISO 4217 table compiled into payext, and format_amount().

-- At least the thirty most used currencies, the region's included.
SELECT count(*) >= 30 AS enough FROM payext.currencies();
SELECT code, exponent, name FROM payext.currencies()
 WHERE code IN ('CNY', 'USD', 'EUR', 'JPY', 'GBP', 'HKD', 'KWD', 'KRW')
 ORDER BY code;
-- Codes are unique and well formed.
SELECT count(*) = count(DISTINCT code) AS unique_codes,
       bool_and(code ~ '^[A-Z]{3}$') AS well_formed,
       bool_and(exponent BETWEEN 0 AND 3) AS sane_exponents
  FROM payext.currencies();

-- format_amount() writes the major unit with the currency's own decimals.
SELECT payext.format_amount(1234, 'CNY');
SELECT payext.format_amount(5, 'CNY');
SELECT payext.format_amount(0, 'USD');
SELECT payext.format_amount(-1234, 'EUR');
SELECT payext.format_amount(1234, 'JPY');
SELECT payext.format_amount(1234, 'KWD');
-- Lower-case codes are read as upper case.
SELECT payext.format_amount(100, 'hkd');
-- The extremes of bigint.
SELECT payext.format_amount(9223372036854775807, 'CNY');
SELECT payext.format_amount(-9223372036854775808, 'CNY');

-- Refusals.
SELECT payext.format_amount(100, 'XXX');
\echo :SQLSTATE
SELECT payext.format_amount(100, 'CN');
\echo :SQLSTATE
SELECT payext.format_amount(100, '');
\echo :SQLSTATE
SELECT payext.format_amount(100, NULL);
\echo :SQLSTATE
SELECT payext.format_amount(NULL, 'CNY');
\echo :SQLSTATE
