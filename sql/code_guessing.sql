-- A till guessing payment codes: every code that passes its check digit
-- but was never issued counts against its merchant account, even when the
-- charge's transaction rolls back or the error is caught; past
-- payext.code_failure_limit within payext.code_failure_window that
-- merchant charges no code (PY213) until the window has passed or an admin
-- unblocks it.  Typos and real codes (used, expired, cancelled) do not
-- count; other merchants and the customers' codes are untouched.
SET payext.code_failure_limit = 3;
SET payext.code_failure_window = '10min';
-- Ids in this file's messages start after 8000, whatever ran before it.
SELECT setval('payext.account_id_seq', 8000) > 0 AS ids_set;

SELECT payext.open_wallet('guess_victim') AS w \gset
SELECT payext.open_merchant('gh_guess_till', 'Guessing Till') AS m \gset
SELECT payext.open_merchant('gh_guess_honest', 'Honest Till') AS h \gset
SELECT payext.top_up(:w, 10000, 'guess-bank-1') > 0 AS topped_up;
SELECT payext.request_payment(:w) AS victim_code \gset

-- A made-up code with a right check digit (15 digits next to a real one).
CREATE FUNCTION pg_temp.made_up(n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t int[] := '{{0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},
               {1,7,5,0,9,8,3,4,2,6},{6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},
               {5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},{9,4,3,8,6,1,7,2,0,5},
               {2,5,8,1,4,3,6,7,9,0}}';
  digits text := '00' || lpad((123456789012345 + n)::text, 15, '0');
  i int := 0;
BEGIN
  FOR k IN 1 .. 17 LOOP
    i := t[i + 1][substr(digits, k, 1)::int + 1];
  END LOOP;
  RETURN digits || i::text;
END $$;

-- Nothing counted yet.
SELECT count(*) AS merchants_with_failures FROM payext.code_failure WHERE merchant = :m;

-- Typos are not guesses: a wrong check digit is PY201 and counts nothing.
SELECT payext.charge(:m, left(:'victim_code', 17) || ((right(:'victim_code', 1)::int + 1) % 10), 100, 'g-typo');
\echo :SQLSTATE
SELECT count(*) AS after_a_typo FROM payext.code_failure WHERE merchant = :m;

-- Guess 1, in a transaction that rolls back: still counted.
BEGIN;
SELECT payext.charge(:m, pg_temp.made_up(1), 100, 'g-1');
ROLLBACK;
-- Guess 2, the error caught in a DO block, as an attacker would.
SELECT set_config('guess.till', :'m', false) IS NOT NULL AS till_named;
DO $$
BEGIN
  PERFORM payext.charge(current_setting('guess.till')::bigint, pg_temp.made_up(2), 100, 'g-2');
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'caught %', SQLSTATE;
END $$;
SELECT failures, blocked_until IS NULL AS not_blocked FROM payext.code_failure WHERE merchant = :m;

-- A used and a cancelled code are real codes shown twice: not counted.
SELECT payext.request_payment(:w) AS used_code \gset
SELECT payext.charge(:m, :'used_code', 100, 'g-real-1') > 0 AS paid;
SELECT payext.charge(:m, :'used_code', 100, 'g-real-2');
\echo :SQLSTATE
SELECT payext.request_payment(:w) AS cancelled_code \gset
SELECT payext.cancel_payment_code(:'cancelled_code');
SELECT payext.charge(:m, :'cancelled_code', 100, 'g-real-3');
\echo :SQLSTATE
SELECT failures FROM payext.code_failure WHERE merchant = :m;

-- Guesses 3 and 4: the fourth passes the limit of 3 and blocks the till.
SELECT payext.charge(:m, pg_temp.made_up(3), 100, 'g-3');
\echo :SQLSTATE
SELECT payext.charge(:m, pg_temp.made_up(4), 100, 'g-4');
\echo :SQLSTATE
SELECT failures, blocked_until > now() + interval '9 minutes' AS blocked_for_the_window,
       last_code = pg_temp.made_up(4) AS shows_the_last_guess
  FROM payext.code_failure WHERE merchant = :m;

-- Blocked: even the customer's real code is refused, before it is looked
-- at (no guess gets through, no code is burnt) ...
\set VERBOSITY terse
SELECT payext.charge(:m, :'victim_code', 100, 'g-victim');
\set VERBOSITY default
\echo :SQLSTATE
-- ... while another merchant charges the same code, unharmed.
SELECT payext.charge(:h, :'victim_code', 100, 'honest-1') > 0 AS honest_till_charges;

-- An admin lifts the block; the till charges again, its failures forgotten.
SELECT payext.unblock_charging(:m);
SELECT count(*) AS failures_left FROM payext.code_failure WHERE merchant = :m;
SELECT payext.charge(:m, payext.request_payment(:w), 100, 'g-after') > 0 AS charges_again;
SELECT payext.unblock_charging(NULL);
\echo :SQLSTATE

-- With throttling off (limit 0) guesses are refused as ever, not counted.
SET payext.code_failure_limit = 0;
SELECT payext.charge(:m, pg_temp.made_up(5), 100, 'g-5');
\echo :SQLSTATE
SELECT count(*) AS counted_while_off FROM payext.code_failure WHERE merchant = :m;
RESET payext.code_failure_limit;
RESET payext.code_failure_window;

-- Nothing but the three real charges moved money.
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS till, payext.balance(:h) AS honest;
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;

-- The counts are the server's, but each database's payext keeps its own:
-- the till blocked here is not blocked in another database, where another
-- merchant has the same account id (found by the differential test).
SET payext.code_failure_limit = 3;
\set VERBOSITY terse
SELECT payext.charge(:m, pg_temp.made_up(6), 100, 'g-6');
SELECT payext.charge(:m, pg_temp.made_up(7), 100, 'g-7');
SELECT payext.charge(:m, pg_temp.made_up(8), 100, 'g-8');
SELECT payext.charge(:m, pg_temp.made_up(9), 100, 'g-9');
\set VERBOSITY default
SELECT blocked_until IS NOT NULL AS blocked_here FROM payext.code_failure WHERE merchant = :m;
\set regress_db :DBNAME
CREATE DATABASE payext_guess_other;
\c payext_guess_other
SET client_min_messages = warning;
CREATE EXTENSION payext;
RESET client_min_messages;
SELECT setval('payext.account_id_seq', :m - 1) > 0 AS ids_set;
SELECT payext.open_merchant('gh_other_till', 'Another Till') = :m AS same_account_id;
SELECT payext.open_wallet('other_customer') AS w_other \gset
SELECT payext.top_up(:w_other, 1000, 'other-bank-1') > 0 AS topped_up;
SELECT payext.charge(:m, payext.request_payment(:w_other), 100, 'other-1') > 0 AS charges_in_its_database;
SELECT count(*) AS failures_seen_there FROM payext.code_failure;
\c :regress_db
DROP DATABASE payext_guess_other;
SELECT blocked_until IS NOT NULL AS still_blocked_here FROM payext.code_failure WHERE merchant = :m;
SELECT payext.unblock_charging(:m);
