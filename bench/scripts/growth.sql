-- charge.sql on the growth database (bench/growth.sql): 2 000 wallets,
-- 100 merchants.
\set w random(1, 2000)
\set m random(2001, 2100)
\set r random(1, 1000000000000)
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
