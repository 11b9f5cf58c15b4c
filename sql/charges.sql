-- Charges and refunds: a till charges a code; the same request again
-- returns the same transfer; every refusal leaves codes and balances as they
-- were; refunds are partial or full and never exceed the charge.

-- Ids in this file's messages start after 4000, whatever ran before it.
-- HKD is used by no other file, so its system account is made here.
SELECT setval('payext.account_id_seq', 4000), setval('payext.transfer_id_seq', 4000);

SELECT payext.open_wallet('charges_dan', 'HKD') AS w \gset
SELECT payext.open_merchant('gh_charges_bakery', 'Bakery', 'HKD') AS m \gset
SELECT payext.open_merchant('gh_charges_florist', 'Florist', 'HKD') AS m2 \gset
SELECT payext.open_merchant('gh_charges_usd', 'Dollar Shop', 'USD') AS m_usd \gset
SELECT payext.top_up(:w, 10000, 'charges-bank-1') > 0 AS topped_up;

-- A purchase: the app shows a code, the till charges 23.50.
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(merchant => :m, code => :'code', amount => 2350,
                     order_ref => 'bakery-0001') AS t1 \gset
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS bakery;
SELECT kind, amount, debit_account = :w AS from_wallet, credit_account = :m AS to_bakery,
       idem_scope = :m AS scoped_to_merchant, reference
  FROM payext.transfer WHERE id = :t1;
SELECT state FROM payext.payment_code WHERE code = substr(:'code', 3, 15)::bigint;
SELECT transfer_id = :t1 AS same_transfer, amount, refunded_amount, state,
       created_at = updated_at AS not_updated_since
  FROM payext.payment_status(merchant => :m, order_ref => 'bakery-0001');

-- The till retries (a timeout): the same transfer, nothing moves.
SELECT payext.charge(:m, :'code', 2350, 'bakery-0001') = :t1 AS same_transfer;
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS bakery;

-- The code cannot pay again: not for another order, not at another merchant.
SELECT payext.charge(:m, :'code', 2350, 'bakery-0002');
\echo :SQLSTATE
SELECT payext.charge(:m2, :'code', 2350, 'florist-0001');
\echo :SQLSTATE
-- The order cannot be charged again with something else.
SELECT payext.request_payment(:w) AS code2 \gset
SELECT payext.charge(:m, :'code2', 2350, 'bakery-0001');
\echo :SQLSTATE
SELECT payext.charge(:m, :'code', 2000, 'bakery-0001');
\echo :SQLSTATE
-- The refused code2 was not burnt: it still pays.
SELECT state FROM payext.payment_code WHERE code = substr(:'code2', 3, 15)::bigint;
-- Order references are per merchant: the florist may use the same one.
SELECT payext.charge(:m2, :'code2', 500, 'bakery-0001') > 0 AS florist_charged;

-- Refusals; after each, the balances and the code are as they were.
SELECT payext.request_payment(:w, max_amount => 1000) AS capped \gset
SELECT payext.balance(:w) AS w_before, payext.balance(:m) AS m_before \gset
SELECT payext.charge(:m, :'capped', 1001, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:m, :'capped', 7151, 'bakery-0003');
\echo :SQLSTATE
-- More than the wallet holds: the merchant learns neither the wallet's id
-- nor its balance from the refusal.
SELECT payext.request_payment(:w) AS uncapped \gset
SELECT payext.charge(:m, :'uncapped', 999999, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:m, :'capped', 0, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:m, :'capped', 100, NULL);
\echo :SQLSTATE
SELECT payext.charge(:m, NULL, 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:m, :'capped', 100, '');
\echo :SQLSTATE
SELECT payext.charge(-1, :'capped', 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:w, :'capped', 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.charge(:m_usd, :'capped', 100, 'dollar-0001');
\echo :SQLSTATE
SELECT payext.freeze(:m);
SELECT payext.charge(:m, :'capped', 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.unfreeze(:m);
SELECT payext.freeze(:w);
SELECT payext.charge(:m, :'capped', 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.unfreeze(:w);
SELECT payext.charge(:m, '000000000000000000', 100, 'bakery-0003');
\echo :SQLSTATE
SELECT payext.balance(:w) = :w_before AS wallet_unchanged,
       payext.balance(:m) = :m_before AS bakery_unchanged;
SELECT state FROM payext.payment_code WHERE code = substr(:'capped', 3, 15)::bigint;
SELECT count(*) AS payments_for_0003 FROM payext.payment WHERE order_ref = 'bakery-0003';
-- ...and the capped code still pays within its cap.
SELECT payext.charge(:m, :'capped', 1000, 'bakery-0003') > 0 AS charged_at_cap;

-- Refunds: partial, idempotent, never beyond the charge.
SELECT payext.refund(merchant => :m, order_ref => 'bakery-0001', amount => 350,
                     refund_ref => 'bakery-refund-1') AS r1 \gset
SELECT payext.refund(:m, 'bakery-0001', 350, 'bakery-refund-1') = :r1 AS same_refund;
SELECT kind, amount, debit_account = :m AS from_bakery, credit_account = :w AS to_wallet
  FROM payext.transfer WHERE id = :r1;
SELECT transfer_id = :t1 AS same_charge, amount, refunded_amount, state
  FROM payext.payment_status(:m, 'bakery-0001');
-- A refund to a frozen wallet: refused, and the merchant is not told the
-- wallet's id.
SELECT payext.freeze(:w);
SELECT payext.refund(:m, 'bakery-0001', 100, 'bakery-refund-frozen');
\echo :SQLSTATE
SELECT payext.unfreeze(:w);
SELECT payext.refund(:m, 'bakery-0001', 2001, 'bakery-refund-2');
\echo :SQLSTATE
SELECT payext.refund(:m, 'bakery-0001', 351, 'bakery-refund-1');
\echo :SQLSTATE
SELECT payext.refund(:m, 'bakery-0003', 350, 'bakery-refund-1');
\echo :SQLSTATE
SELECT payext.refund(:m, 'bakery-9999', 100, 'bakery-refund-3');
\echo :SQLSTATE
SELECT payext.refund(:m2, 'bakery-0003', 100, 'bakery-refund-3');
\echo :SQLSTATE
SELECT payext.refund(:m, 'bakery-0001', 0, 'bakery-refund-3');
\echo :SQLSTATE
SELECT payext.refund(:m, 'bakery-0001', 100, NULL);
\echo :SQLSTATE
-- The rest of the charge, exactly: refunded in full.
SELECT payext.refund(:m, 'bakery-0001', 2000, 'bakery-refund-2') > 0 AS refunded_rest;
SELECT amount, refunded_amount, state FROM payext.payment_status(:m, 'bakery-0001');
-- A replay of the last refund still answers after the charge is used up.
SELECT payext.refund(:m, 'bakery-0001', 2000, 'bakery-refund-2') > 0 AS replay_after_full;
SELECT payext.refund(:m, 'bakery-0001', 1, 'bakery-refund-4');
\echo :SQLSTATE

-- A refund needs the merchant's own money: the florist has paid out.
SELECT payext.withdraw(:m2, payext.balance(:m2), 'florist-payout-1') > 0 AS paid_out;
SELECT payext.refund(:m2, 'bakery-0001', 500, 'florist-refund-1');
\echo :SQLSTATE
SELECT amount, refunded_amount, state FROM payext.payment_status(:m2, 'bakery-0001');

-- payment_status refusals.
SELECT * FROM payext.payment_status(:m, 'bakery-9999');
\echo :SQLSTATE
SELECT * FROM payext.payment_status(NULL, 'bakery-0001');
\echo :SQLSTATE

SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS bakery, payext.balance(:m2) AS florist;
SELECT p.order_ref, p.amount, p.refunded, p.merchant = :m AS bakery
  FROM payext.payment p WHERE p.wallet = :w ORDER BY p.transfer_id;
SELECT check_name, ok FROM payext.verify_ledger();
