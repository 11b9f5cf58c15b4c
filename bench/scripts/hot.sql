-- As charge.sql, every charge at the one hot merchant 100 001.
\set w random(1, 100000)
\set r random(1, 1000000000000)
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(100001, ':code', 100, 'o' || :client_id || '-' || :r);
