-- Reversals: the till's way out of an unknown outcome.  A charge timed out
-- and the till does not know whether it went through: reverse_charge()
-- refunds the order in full if it was charged, and closes it if it was
-- not, so that the charge arriving late is refused (PY215) and moves no
-- money.  Once per order; a till reverses only its own merchants' orders.

-- Ids in this file's messages start after 10000, whatever ran before it.
SELECT setval('payext.account_id_seq', 10000), setval('payext.transfer_id_seq', 10000);

SELECT payext.open_wallet('rev_eve') AS w \gset
SELECT payext.open_merchant('gh_rev_cafe', 'Reversal Cafe') AS m \gset
SELECT payext.open_merchant('gh_rev_other', 'Other Shop') AS m2 \gset
SELECT payext.top_up(:w, 10000, 'rev-bank-1') > 0 AS topped_up;

-- 1. The charge went through, then timed out at the till: the reversal
-- refunds it in full, and again returns the same transfer.
SELECT payext.request_payment(:w) AS c1 \gset
SELECT payext.charge(:m, :'c1', 1200, 'rev-order-1') AS t1 \gset
SELECT payext.reverse_charge(:m, 'rev-order-1') AS r1 \gset
SELECT kind, amount, debit_account = :m AS from_cafe, credit_account = :w AS to_eve, reference
  FROM payext.transfer WHERE id = :r1;
SELECT payext.reverse_charge(:m, 'rev-order-1') = :r1 AS same_reversal;
SELECT amount, refunded_amount, state FROM payext.payment_status(:m, 'rev-order-1');
SELECT payext.balance(:w) AS eve, payext.balance(:m) AS cafe;
-- The charge's retry still answers with its transfer (it did happen); a
-- new code under the reversed order is refused (PY215).
SELECT payext.charge(:m, :'c1', 1200, 'rev-order-1') = :t1 AS charge_replayed;
SELECT payext.request_payment(:w) AS c1b \gset
SELECT payext.charge(:m, :'c1b', 1200, 'rev-order-1');
\echo :SQLSTATE

-- 2. The charge never arrived: the order is closed, nothing moves, and
-- the charge arriving late is refused, its code still live.
SELECT payext.reverse_charge(:m, 'rev-order-2') IS NULL AS closed_without_money;
SELECT payext.reverse_charge(:m, 'rev-order-2') IS NULL AS closed_again;
SELECT payext.request_payment(:w) AS c2 \gset
SELECT payext.charge(:m, :'c2', 800, 'rev-order-2');
\echo :SQLSTATE
SELECT state FROM payext.payment_code WHERE code = substr(:'c2', 3, 15)::bigint;
SELECT count(*) AS order_2_transfers FROM payext.transfer WHERE idem_scope = :m AND reference = 'rev-order-2';
-- In a batch too: that item is refused, the next is charged.
SELECT item, transfer_id IS NOT NULL AS charged, sqlstate
  FROM payext.charge_many(:m, ARRAY[:'c2', :'c2'], ARRAY[800, 800]::bigint[],
                          ARRAY['rev-order-2', 'rev-order-3'])
 ORDER BY item;
-- The order is the merchant's: another merchant's order of that name is open.
SELECT payext.request_payment(:w) AS c2b \gset
SELECT payext.charge(:m2, :'c2b', 300, 'rev-order-2') > 0 AS other_merchant_charged;

-- 3. Partly refunded before: the reversal refunds what is left; refunded
-- in full before: it moves nothing.
SELECT payext.request_payment(:w) AS c4 \gset
SELECT payext.charge(:m, :'c4', 1000, 'rev-order-4') > 0 AS charged;
SELECT payext.refund(:m, 'rev-order-4', 300, 'rev-refund-4a') > 0 AS partly_refunded;
SELECT payext.reverse_charge(:m, 'rev-order-4') AS r4 \gset
SELECT amount, reference FROM payext.transfer WHERE id = :r4;
SELECT refunded_amount, state FROM payext.payment_status(:m, 'rev-order-4');
SELECT payext.request_payment(:w) AS c5 \gset
SELECT payext.charge(:m, :'c5', 500, 'rev-order-5') > 0 AS charged;
SELECT payext.refund(:m, 'rev-order-5', 500, 'rev-refund-5') > 0 AS refunded_in_full;
SELECT payext.reverse_charge(:m, 'rev-order-5') IS NULL AS nothing_left_to_reverse;
SELECT order_ref, transfer_id IS NOT NULL AS moved_money FROM payext.order_reversal
 WHERE merchant = :m ORDER BY order_ref;

-- 4. The merchant must hold the money to give back (PY104), and nothing is
-- recorded then: the reversal can be tried again.
SELECT payext.request_payment(:w) AS c6 \gset
SELECT payext.charge(:m2, :'c6', 400, 'rev-order-6') > 0 AS charged;
SELECT payext.withdraw(:m2, payext.balance(:m2), 'rev-payout-1') > 0 AS paid_out;
SELECT payext.reverse_charge(:m2, 'rev-order-6');
\echo :SQLSTATE
SELECT count(*) AS recorded FROM payext.order_reversal WHERE merchant = :m2;

-- A reversal's refund reference is reverse_charge()'s own: a refund of the
-- merchant's may not take one (it would pass for the reversal's refund and
-- let the reversal move nothing).
SELECT payext.request_payment(:w) AS c8 \gset
SELECT payext.charge(:m, :'c8', 900, 'rev-order-8') > 0 AS charged;
SELECT payext.refund(:m, 'rev-order-8', 400, 'reversal:rev-order-8');
\echo :SQLSTATE
SELECT payext.reverse_charge(:m, 'rev-order-8') AS r8 \gset
SELECT amount, reference FROM payext.transfer WHERE id = :r8;
SELECT refunded_amount, state FROM payext.payment_status(:m, 'rev-order-8');

-- Bad arguments.
SELECT payext.reverse_charge(NULL, 'x');
\echo :SQLSTATE
SELECT payext.reverse_charge(:m, NULL);
\echo :SQLSTATE
SELECT payext.reverse_charge(:m, '');
\echo :SQLSTATE
SELECT payext.reverse_charge(:w, 'rev-order-1');
\echo :SQLSTATE
SELECT payext.reverse_charge(-1, 'rev-order-1');
\echo :SQLSTATE

-- A till reverses only for the merchants it is mapped to.
CREATE ROLE rev_till;
SELECT payext.grant_capability('merchant', 'rev_till');
SELECT payext.map_merchant_role('rev_till', :m);
SET ROLE rev_till;
SELECT payext.reverse_charge(:m2, 'rev-order-7');
\echo :SQLSTATE
SELECT payext.reverse_charge(:m, 'rev-order-7') IS NULL AS till_closed_its_order;
SELECT count(*) FROM payext.order_reversal;
\echo :SQLSTATE
RESET ROLE;
SELECT payext.unmap_merchant_role('rev_till', :m);
SELECT payext.revoke_capability('merchant', 'rev_till');
DROP ROLE rev_till;

-- The books balance.
SELECT payext.balance(:w) AS eve, payext.balance(:m) AS cafe, payext.balance(:m2) AS other;
SELECT check_name, detail FROM payext.verify_ledger() WHERE NOT ok;
