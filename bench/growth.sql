-- The growth benchmark's small start: 2 000 wallets (1 .. 2 000), 100
-- merchants (2 001 .. 2 100), their top-ups and 8 000 charges, about
-- 10 000 journal rows in all.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS payext CASCADE;
CREATE EXTENSION payext;
SELECT count(payext.open_wallet('gw' || g)) FROM generate_series(1, 2000) g;
SELECT count(payext.open_merchant('gh_g' || g, 'Growth shop ' || g)) FROM generate_series(1, 100) g;
SELECT count(payext.top_up(g, 1000000000, 'growth-seed-' || g)) FROM generate_series(1, 2000) g;
SELECT count(payext.charge(2001 + g % 100, payext.request_payment(1 + g % 2000), 100, 'warm-' || g))
  FROM generate_series(1, 8000) g;
VACUUM ANALYZE;
