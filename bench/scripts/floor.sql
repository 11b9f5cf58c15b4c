-- The floor of charge.sql (bench/floor.sql): payext's rows, written by
-- plain PL/pgSQL with nothing else.
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT floor.request_payment(:w) AS code \gset
SELECT floor.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
