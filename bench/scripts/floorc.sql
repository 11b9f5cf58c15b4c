-- The floor of charge.sql without the executor (bench/floorc/): payext's
-- rows written by C straight into the heap and the indexes.
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT floorc.request_payment(:w) AS code \gset
SELECT floorc.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
