-- Population for the load and crash tests (test/load/driver.c finds it by
-- reading the tables): 200 wallets with money, 20 merchants, two parking
-- lots, two bound cars per user (one with auto-pay, one without), and a
-- default association rule that charges and parking payments fire.
-- With -v router=on, through a router (test/load/run.sh's router mode):
-- the partitions are fresh, and a router has no extension to drop.
\if :{?router}
\else
\set router off
\endif
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS load CASCADE;
\if :router
\else
DROP EXTENSION IF EXISTS payext CASCADE;
CREATE EXTENSION payext;
\endif
CREATE SCHEMA load;

SELECT payext.open_wallet('load_user_' || g) FROM generate_series(1, 200) AS g;
SELECT payext.open_merchant('gh_load_' || g, 'Shop ' || g) FROM generate_series(1, 20) AS g;
SELECT payext.top_up(w.id, 100000, 'load-seed-' || w.id)
  FROM payext.account w WHERE w.kind = 'wallet' ORDER BY w.id;

-- Two lots of two operators: 15-minute units day and night; and 30-minute
-- units after 10 free minutes with a daily cap.  (Behind a router a
-- merchant has an account on every partition; its id there is partition
-- 0's, "id >> 56 = 0", which on a single node is every id.)
SELECT payext.create_parking_lot(m.id, 'Load Lot', 'Asia/Shanghai', 0, 15, 100, 50)
  FROM payext.account m WHERE m.public_service_id = 'gh_load_1' AND m.id >> 56 = 0;
SELECT payext.create_parking_lot(m.id, 'Load Garage', 'Europe/Berlin', 10, 30, 300, 120,
                                 cap_24h => 2500)
  FROM payext.account m WHERE m.public_service_id = 'gh_load_2' AND m.id >> 56 = 0;
SELECT payext.bind_vehicle('load_user_' || g, 'LA' || g, auto_pay => true),
       payext.bind_vehicle('load_user_' || g, 'LM' || g, auto_pay => false)
  FROM generate_series(1, 200) AS g;

-- Three payments within 30 days associate a consumer with a merchant.
SELECT payext.set_association_rule(NULL, 3, '30 days');

-- The balances before any client runs: the checker's starting point when
-- it recomputes every balance from the acknowledged calls (verify.sql):
-- each account's own, with a merchant's credit buckets (behind a router
-- balance() of a merchant's id adds up its accounts on every partition).
CREATE TABLE load.opening AS
SELECT a.id AS account, a.balance + coalesce(c.amount, 0) AS balance
  FROM payext.account a
  LEFT JOIN (SELECT account, sum(amount) AS amount FROM payext.merchant_credit GROUP BY account) c
    ON c.account = a.id
 WHERE a.kind NOT IN ('system', 'clearing');
