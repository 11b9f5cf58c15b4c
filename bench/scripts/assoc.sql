-- As charge.sql, at the 100 merchants whose rule links a consumer on the
-- first payment: nearly every charge creates an association.
\set w random(1, 100000)
\set m random(100901, 101000)
\set r random(1, 1000000000000)
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
