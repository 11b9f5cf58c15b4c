-- floorc.sql without the payment row (bench/floorc/): the lower bound of
-- a payment and its journal row written as one row.
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT floorlean.request_payment(:w) AS code \gset
SELECT floorlean.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
