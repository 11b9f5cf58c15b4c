-- bench/till.sh only (run as bench_till, not by bench/run.sh): the pair
-- of charge.sql as the platform's roles make it, not as the superuser:
-- the app's role asks for a code, the till's charges it with the
-- merchants' procedure.  bench_till holds both capabilities and is
-- mapped to the 800 merchants.
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT payext.request_payment(:w) AS code \gset
CALL payext.merchant_charge(:m, ':code', 100, 't' || :client_id || '-' || :r);
