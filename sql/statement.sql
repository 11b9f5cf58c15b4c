-- A merchant's day: every movement of its money in a time range, oldest
-- first, with the balance after each; balances at an instant from the
-- journal; and totals that reconcile: the opening balance and the
-- movements add up to the closing balance, and a settlement pays out what
-- the lines before it brought in.  (Times come from the transactions that
-- made the transfers, so this story marks instants between them.)

-- Ids in this file's messages start after 12000, whatever ran before it.
SELECT setval('payext.account_id_seq', 12000), setval('payext.transfer_id_seq', 12000);

SELECT payext.open_wallet('st_amy') AS w \gset
SELECT payext.open_wallet('st_bo') AS w2 \gset
SELECT payext.open_merchant('gh_st_noodles', 'Noodle Bar') AS m \gset
SELECT payext.top_up(:w, 20000, 'st-bank-1') > 0 AS topped_up,
       payext.top_up(:w2, 20000, 'st-bank-2') > 0 AS topped_up_too;

-- Yesterday, as far as this story is concerned: one charge.
SELECT payext.charge(:m, payext.request_payment(:w), 1000, 'st-0') > 0 AS charged;
SELECT clock_timestamp() AS t0 \gset
-- The day: charges, a partial refund, a charge of another customer.
SELECT payext.charge(:m, payext.request_payment(:w), 2500, 'st-1') > 0 AS charged;
SELECT payext.charge(:m, payext.request_payment(:w2), 1800, 'st-2') > 0 AS charged;
SELECT payext.refund(:m, 'st-1', 500, 'st-1-r1') > 0 AS refunded;
SELECT clock_timestamp() AS t1 \gset
-- The evening: the settlement pays everything out, then one more charge.
CALL payext.merchant_settle(:m, 'st-bank-payout-1');
SELECT payext.charge(:m, payext.request_payment(:w2), 700, 'st-3') > 0 AS charged;
SELECT clock_timestamp() AS t2 \gset

-- Balances at instants, from the journal.
SELECT payext.balance_at(:m, :'t0') AS at_t0, payext.balance_at(:m, :'t1') AS at_t1,
       payext.balance_at(:m, :'t2') AS at_t2, payext.balance(:m) AS now;
SELECT payext.balance_at(:w, :'t0') AS amy_at_t0, payext.balance_at(:w, '-infinity') AS amy_at_the_start;

-- The day's statement, every movement with the balance after it.
SELECT kind, order_ref, refund_ref, amount, balance_after
  FROM payext.merchant_statement(:m, :'t0', :'t1');
-- It reconciles: opening + movements = closing.
SELECT payext.balance_at(:m, :'t0') + sum(amount) = payext.balance_at(:m, :'t1') AS reconciles,
       count(*) AS lines
  FROM payext.merchant_statement(:m, :'t0', :'t1');
-- The whole story, and its filters; balance_after counts every movement.
SELECT kind, order_ref, reference, amount, balance_after
  FROM payext.merchant_statement(:m, '-infinity', :'t2');
SELECT kind, order_ref, amount, balance_after
  FROM payext.merchant_statement(:m, :'t0', :'t2', 'charge');
SELECT kind, refund_ref, amount, balance_after
  FROM payext.merchant_statement(:m, :'t0', :'t2', 'refund');
-- The settlement paid out what the lines before it brought in.
SELECT s.amount = -(SELECT sum(l.amount) FROM payext.merchant_statement(:m, '-infinity', :'t2') l
                     WHERE l.transfer_id < s.transfer_id) AS payout_adds_up,
       s.balance_after AS after_payout
  FROM payext.merchant_statement(:m, '-infinity', :'t2', 'settlement') s;
-- Each line is its journal row.
SELECT count(*) AS lines_off_journal
  FROM payext.merchant_statement(:m, '-infinity', :'t2') l
  JOIN payext.transfer t ON t.id = l.transfer_id
 WHERE abs(l.amount) <> t.amount OR l.created_at <> t.created_at
    OR (l.amount > 0) <> (t.credit_account = :m);
-- An empty range: no lines.
SELECT count(*) AS no_lines FROM payext.merchant_statement(:m, :'t1', :'t1');
-- A day's bill as CSV (from psql, \copy writes it to a file: docs/statements.md).
COPY (SELECT kind, order_ref, refund_ref, amount, balance_after
        FROM payext.merchant_statement(:m, :'t0', :'t1')) TO STDOUT WITH (FORMAT csv, HEADER);

-- Checkpoints: a day's opening kept, so that later questions sum from
-- there.  balance_at() kept today's (UTC) above, unless today is younger
-- than a minute (a transaction that started before midnight might still
-- add to it).  A wrong one is what verify_ledger() catches.
SELECT count(*) = CASE WHEN now() - date_trunc('day', now(), 'UTC') > interval '1 minute'
                       THEN 1 ELSE 0 END AS todays_opening_kept
  FROM payext.balance_checkpoint WHERE account = :m AND at = date_trunc('day', now(), 'UTC');
INSERT INTO payext.balance_checkpoint VALUES (:m, '2000-01-01 00:00+00', 0);
SELECT payext.balance_at(:m, :'t2') AS at_t2_from_a_checkpoint;
UPDATE payext.balance_checkpoint SET balance = 5 WHERE account = :m AND at = '2000-01-01 00:00+00';
SELECT check_name, ok, detail FROM payext.verify_ledger()
 WHERE check_name = 'balance_checkpoints_match' AND NOT ok;
DELETE FROM payext.balance_checkpoint WHERE account = :m AND at = '2000-01-01 00:00+00';

-- Refusals.
SELECT * FROM payext.merchant_statement(:m, :'t1', :'t0');
\echo :SQLSTATE
SELECT * FROM payext.merchant_statement(:m, :'t0', :'t1', 'payouts');
\echo :SQLSTATE
SELECT * FROM payext.merchant_statement(:m, NULL, :'t1');
\echo :SQLSTATE
SELECT * FROM payext.merchant_statement(:w, :'t0', :'t1');
\echo :SQLSTATE
SELECT payext.balance_at(-1, now());
\echo :SQLSTATE
SELECT payext.balance_at(:m, NULL);
\echo :SQLSTATE

-- Who reads what: a till its own merchants' statements and balances, the
-- app its users' wallets, and no one else's.
SELECT payext.open_merchant('gh_st_other', 'Other Bar') AS m_other \gset
CREATE ROLE st_till;
CREATE ROLE st_app;
SELECT payext.grant_capability('merchant', 'st_till');
SELECT payext.grant_capability('app', 'st_app');
SELECT payext.map_merchant_role('st_till', :m);
SET ROLE st_till;
SELECT count(*) AS till_reads_its_statement FROM payext.merchant_statement(:m, :'t0', :'t1');
SELECT payext.balance_at(:m, :'t1') AS till_reads_its_balance;
SELECT payext.balance_at(:w, :'t1');
\echo :SQLSTATE
-- Refused alike for a wallet and another merchant: which ids are
-- merchants' is not told.
SELECT payext.balance_at(:m_other, :'t1');
\echo :SQLSTATE
RESET ROLE;
SET ROLE st_app;
SELECT payext.balance_at(:w, :'t0') AS app_reads_a_wallet;
SELECT * FROM payext.merchant_statement(:m, :'t0', :'t1');
\echo :SQLSTATE
SELECT payext.balance_at(:m, :'t1');
\echo :SQLSTATE
RESET ROLE;
SELECT payext.unmap_merchant_role('st_till', :m);
SELECT payext.revoke_capability('merchant', 'st_till');
SELECT payext.revoke_capability('app', 'st_app');
DROP ROLE st_till;
DROP ROLE st_app;

SELECT check_name, detail FROM payext.verify_ledger() WHERE NOT ok;
-- (The checkpoints go: the stories after this one list verify_ledger()'s
-- rows, which would otherwise depend on the time of day.)
DELETE FROM payext.balance_checkpoint;
