-- payext on a server that does not preload it (a router's own server, a
-- database someone tried it in): CREATE EXTENSION works and so does all
-- but charging codes, which is PY007 while guesses are to be throttled
-- (their counts need shared memory) and works once the limit is 0.  Until
-- 0.8.0 loading the library here ended the session (FATAL: a setting of
-- PGC_POSTMASTER defined after the server's start).
SELECT current_setting('shared_preload_libraries') NOT LIKE '%payext%' AS not_preloaded;
SET client_min_messages = warning;
CREATE EXTENSION payext;
RESET client_min_messages;
-- The shared-memory setting exists only where the library is preloaded.
SELECT current_setting('payext.code_failure_slots', true) IS NULL AS no_slots_setting;
SELECT payext.open_wallet('np_ann') AS ann \gset
SELECT payext.open_merchant('gh_np_shop', 'Shop') AS shop \gset
SELECT payext.top_up(:ann, 1000, 'np-1') > 0 AS topped_up;
SELECT payext.request_payment(:ann) AS code \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, :'code', 100, 'np-order-1');
\set VERBOSITY default
SELECT payext.charge(:shop, :'code', 100, 'np-order-1');
-- Nothing moved, and the code is still live.
SELECT payext.balance(:ann) AS ann_balance;
SET payext.code_failure_limit = 0;
SELECT payext.charge(:shop, :'code', 100, 'np-order-1') > 0 AS charged_unthrottled;
SELECT payext.balance(:ann) AS ann_balance, payext.balance(:shop) AS shop_balance;
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
