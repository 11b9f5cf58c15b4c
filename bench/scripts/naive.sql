-- The PL/pgSQL + pgcrypto baseline of charge.sql (bench/naive.sql).
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT naive.request_payment(:w) AS code \gset
SELECT naive.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
