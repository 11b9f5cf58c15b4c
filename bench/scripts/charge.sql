-- The app asks for a code, the till charges it: two transactions, as in
-- life.  Uniform: any of 100 000 wallets at any of the 800 merchants
-- without a rule.
\set w random(1, 100000)
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(:m, ':code', 100, 'o' || :client_id || '-' || :r);
