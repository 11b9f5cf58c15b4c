-- Sagas through the router: money between two partitions in two legs, the
-- partitions keeping the saga (docs/partitions.md, "Sagas").
SET client_min_messages = warning;
SELECT o AS own0 FROM generate_series(1, 100) g, format('saga-a%s', g) o
 WHERE payext.owner_partition(o, 2) = 0 LIMIT 1 \gset
SELECT o AS own1 FROM generate_series(1, 100) g, format('saga-b%s', g) o
 WHERE payext.owner_partition(o, 2) = 1 LIMIT 1 \gset
SELECT payext.open_wallet(:'own0') AS w0, payext.open_wallet(:'own1') AS w1 \gset
SELECT payext.partition_of(:w0) AS w0_on, payext.partition_of(:w1) AS w1_on;
SELECT payext.top_up(:w1, 1000, 'saga-top-up') > 0 AS topped_up;

-- Across partitions: both legs run in the call, which returns the first
-- leg's transfer (on the payer's partition).  Again with the same
-- reference: the same transfer, nothing moves twice.
SELECT payext.transfer(:w1, :w0, 300, 'move-1') AS t1 \gset
SELECT payext.partition_of(:t1) AS taken_on, payext.balance(:w1) AS w1_after,
       payext.balance(:w0) AS w0_after;
SELECT payext.transfer(:w1, :w0, 300, 'move-1') = :t1 AS same_transfer,
       payext.balance(:w1) AS w1_again, payext.balance(:w0) AS w0_again;
-- The same reference for another amount, as on a single node.
\set VERBOSITY sqlstate
SELECT payext.transfer(:w1, :w0, 301, 'move-1');
-- Short of funds: refused on the payer's partition before anything moves.
SELECT payext.transfer(:w0, :w1, 5000, 'move-2');
\set VERBOSITY default
SELECT count(*) AS sagas, count(*) FILTER (WHERE state = 'done') AS done
  FROM payext.sagas() WHERE account IN (:w0, :w1);

-- Refused by the receiving partition (a frozen wallet): the money leaves,
-- comes back, and the refusal is raised with its own SQLSTATE.  A retry
-- gets the same answer and moves nothing.
SELECT payext.freeze(:w0);
\set VERBOSITY sqlstate
SELECT payext.transfer(:w1, :w0, 50, 'move-3');
SELECT payext.transfer(:w1, :w0, 50, 'move-3');
\set VERBOSITY default
SELECT payext.balance(:w1) AS w1_unchanged;
SELECT payext.unfreeze(:w0);
SELECT state, refused_sqlstate FROM payext.sagas() WHERE account = :w1 AND amount = 50;

-- The router lost after the first leg (only leg 1 ran): the money is in
-- flight, visible in the clearing accounts and as an open saga.  A retry
-- with the same reference finishes that saga, not a new one.
SELECT payext.saga_send_on(1, payext.saga_id('transfer', 'move-4'), :w1, 40, 0, :w0) AS t4 \gset
SELECT payext.balance(:w1) AS w1_sent, payext.balance(:w0) AS w0_not_yet;
SELECT * FROM payext.verify_clearing();
SELECT p, currency, balance FROM generate_series(0, 1) p, payext.clearing_on(p) ORDER BY p;
SELECT payext.transfer(:w1, :w0, 40, 'move-4') = :t4 AS resumed_first_leg,
       payext.balance(:w1) AS w1_now, payext.balance(:w0) AS w0_now;

-- The worker: resume_sagas() finishes what nobody retries, once the saga
-- is older than its argument; run twice, it finds nothing the second time.
SELECT payext.saga_send_on(1, payext.saga_id('transfer', 'move-5'), :w1, 30, 0, :w0) > 0 AS sent;
SELECT payext.resume_sagas('1 hour') AS too_young;
SELECT payext.resume_sagas('0') AS finished;
SELECT payext.resume_sagas('0') AS finished_again;
SELECT payext.balance(:w1) AS w1_final, payext.balance(:w0) AS w0_final;
SELECT p, currency, balance FROM generate_series(0, 1) p, payext.clearing_on(p) ORDER BY p;

-- What the partitions refuse: a saga to the partition itself, or to an
-- account the other partition does not have (PY501); a saga sent or
-- received again with other arguments (PY107); the last step of a saga
-- that did not start there (PY506).
\set VERBOSITY sqlstate
SELECT payext.saga_send_on(1, gen_random_uuid(), :w1, 10, 1, :w1);
SELECT payext.saga_send_on(1, gen_random_uuid(), :w1, 10, 0, :w1);
SELECT payext.saga_send_on(1, payext.saga_id('transfer', 'move-5'), :w1, 31, 0, :w0);
SELECT payext.saga_finish_on(0, gen_random_uuid(), 1);
SELECT * FROM payext.saga_receive_on(0, payext.saga_id_of(1, 'transfer', :w1, payext.saga_id('transfer', 'move-5')),
                                     1, :w0, 99, 'CNY', NULL, NULL, NULL);
-- The router: a transfer across partitions needs a reference (a retry
-- without one would move the money again); resume_saga, anyone's, takes
-- only the router's partition numbers (PL/Proxy would wrap others).
SELECT payext.transfer(:w1, :w0, 5);
SELECT * FROM payext.resume_saga(3, payext.saga_id('transfer', 'move-5'));
\set VERBOSITY default
SELECT state, in_transfer IS NOT NULL AS delivered, refused_sqlstate
  FROM payext.resume_saga(1, payext.saga_id_of(1, 'transfer', :w1, payext.saga_id('transfer', 'move-5')));
SELECT count(*) AS not_there FROM payext.resume_saga(0, payext.saga_id('transfer', 'move-5'));

-- A refund larger than the merchant's account on the order's partition:
-- the merchant's money on the other partition covers it first (a saga of
-- purpose 'cover', named by the refund), then the refund is made.
SELECT payext.open_merchant('gh_cover', 'Cover Shop') AS shop \gset
SELECT payext.top_up(:w0, 1000, 'saga-top-up-0') > 0 AS topped_up;
SELECT payext.charge(:shop, payext.request_payment(:w0), 500, 'cover-1') AS c1 \gset
CALL payext.merchant_settle(:shop, 'cover-bank-1') \gset settled_
SELECT payext.partition_of(:c1) AS charged_on, :settled_amount AS settled,
       payext.balance(:shop) AS shop_after_settling;
SELECT payext.charge(:shop, payext.request_payment(:w1), 300, 'cover-2') AS c2 \gset
-- (balance() at the router adds a merchant's accounts up; balance_on()
-- asks one partition.)
SELECT payext.partition_of(:c2) AS charged_on, a.partition_number,
       payext.balance_on(a.partition_number, a.account)
  FROM payext.merchant_accounts(:shop) a ORDER BY a.partition_number;
SELECT payext.refund(:shop, 'cover-1', 200, 'cover-1-r1') AS r1 \gset
SELECT payext.partition_of(:r1) AS refunded_on, a.partition_number,
       payext.balance_on(a.partition_number, a.account)
  FROM payext.merchant_accounts(:shop) a ORDER BY a.partition_number;
SELECT from_partition, to_partition, amount, state FROM payext.sagas()
 WHERE account IN (SELECT account FROM payext.merchant_accounts(:shop));
-- Again: the same refund, no second cover.
SELECT payext.refund(:shop, 'cover-1', 200, 'cover-1-r1') = :r1 AS same_refund,
       (SELECT count(*) FROM payext.sagas()
         WHERE account IN (SELECT account FROM payext.merchant_accounts(:shop))) AS covers;
-- More than the merchant holds anywhere: PY104; what was brought over
-- stays the merchant's, on the order's partition.
\set VERBOSITY sqlstate
SELECT payext.refund(:shop, 'cover-1', 300, 'cover-1-r2');
\set VERBOSITY default
SELECT a.partition_number, payext.balance_on(a.partition_number, a.account)
  FROM payext.merchant_accounts(:shop) a ORDER BY a.partition_number;
SELECT payext.balance(:shop) AS shop_total, payext.balance(:w0) AS w0_refunded;

-- Every partition's legs match its journal, money is conserved on each,
-- and the clearing accounts hold exactly the money in flight (none now).
SELECT check_name, bool_and(ok) AS ok, count(*) AS partitions
  FROM payext.verify_ledger()
 WHERE check_name IN ('money_conserved', 'sagas_match_journal', 'clearing_matches_sagas')
 GROUP BY check_name ORDER BY check_name;
