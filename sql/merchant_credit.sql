-- Merchant credit buckets: payments to a merchant go to buckets,
-- everything that takes money from it folds them into its row first.  The
-- balance is exact, overflow is refused exactly at the bigint limit, and
-- closing counts the buckets.  (Concurrency: test/specs/charge_hot_merchant.)

-- Ids in this file's messages start after 6000, whatever ran before it.
-- CHF is used by no other file, so its system account is made here.
SELECT setval('payext.account_id_seq', 6000), setval('payext.transfer_id_seq', 6000);

SELECT payext.open_wallet('credit_ann', 'CHF') AS ann \gset
SELECT payext.open_wallet('credit_ben', 'CHF') AS ben \gset
SELECT payext.open_merchant('gh_credit_shop', 'Shop', 'CHF') AS shop \gset
SELECT payext.top_up(:ann, 10000, 'credit-bank-ann') > 0 AS topped_up;

-- A charge lands in a bucket; the row keeps its balance; balance() adds both.
SELECT payext.charge(:shop, payext.request_payment(:ann), 2500, 'credit-1') > 0 AS charged;
SELECT balance AS row_balance, payext.balance(id) AS balance
  FROM payext.account WHERE id = :shop;
SELECT count(*) AS buckets, sum(amount) AS in_buckets
  FROM payext.merchant_credit WHERE account = :shop;
SELECT check_name, ok FROM payext.verify_ledger() WHERE check_name IN ('balances_match_journal', 'money_conserved');

-- A refund takes from the merchant: the buckets are folded into the row
-- first, so the refund sees the whole balance.
SELECT payext.refund(:shop, 'credit-1', 1000, 'credit-refund-1') > 0 AS refunded;
SELECT balance AS row_balance, payext.balance(id) AS balance
  FROM payext.account WHERE id = :shop;
SELECT count(*) AS buckets FROM payext.merchant_credit WHERE account = :shop;

-- More than the merchant holds, buckets included, is refused (PY104).
SELECT payext.charge(:shop, payext.request_payment(:ann), 500, 'credit-2') > 0 AS charged;
SELECT payext.balance(:shop) AS balance;
SELECT payext.withdraw(:shop, 2001, 'credit-payout-too-much');
\echo :SQLSTATE
SELECT payext.balance(:shop) AS balance,
       (SELECT count(*) FROM payext.merchant_credit WHERE account = :shop) AS buckets;
SELECT payext.withdraw(:shop, 2000, 'credit-payout') > 0 AS paid_out;
SELECT payext.balance(:shop) AS balance;

-- Closing counts the buckets: 3.00 in a bucket is money still held (PY108).
SELECT payext.charge(:shop, payext.request_payment(:ann), 300, 'credit-3') > 0 AS charged;
SELECT balance AS row_balance FROM payext.account WHERE id = :shop;
SELECT payext.close_account(:shop);
\echo :SQLSTATE
SELECT payext.withdraw(:shop, 300, 'credit-payout-2') > 0 AS paid_out;
SELECT payext.close_account(:shop);
SELECT status, balance FROM payext.account WHERE id = :shop;

-- Overflow is refused exactly at the limit, buckets or not.  Two wallets
-- of 2^62 each; a merchant paid 2^62 by one (too much for a bucket's share:
-- stored in the row) and 100 by the other (a bucket).
SELECT payext.open_merchant('gh_credit_big', 'Big', 'CHF') AS big \gset
SELECT payext.top_up(:ann, 4611686018427387904 - payext.balance(:ann), 'credit-bank-ann-2') > 0 AS topped_up,
       payext.top_up(:ben, 4611686018427387904, 'credit-bank-ben') > 0 AS topped_up;
SELECT payext.balance(:ann) AS ann;
SELECT payext.charge(:big, payext.request_payment(:ann), 4611686018427387904, 'big-1') > 0 AS charged;
SELECT payext.charge(:big, payext.request_payment(:ben), 100, 'big-2') > 0 AS charged;
SELECT balance AS row_balance, payext.balance(id) AS balance
  FROM payext.account WHERE id = :big;
SELECT sum(amount) AS in_buckets FROM payext.merchant_credit WHERE account = :big;
-- 2^62 + 100 + (2^62 - 100) = 2^63: one past the limit.
SELECT payext.charge(:big, payext.request_payment(:ben), 4611686018427387804, 'big-3');
\echo :SQLSTATE
-- One less reaches 2^63 - 1 exactly: folded into the row.
SELECT payext.charge(:big, payext.request_payment(:ben), 4611686018427387803, 'big-4') > 0 AS charged;
SELECT balance AS row_balance, payext.balance(id) AS balance
  FROM payext.account WHERE id = :big;
SELECT count(*) AS buckets FROM payext.merchant_credit WHERE account = :big;
-- Nothing more fits, not even one cent in a bucket.
SELECT payext.top_up(:ann, 1, 'credit-bank-ann-3') > 0 AS topped_up;
SELECT payext.charge(:big, payext.request_payment(:ann), 1, 'big-5');
\echo :SQLSTATE
SELECT payext.balance(:big) AS balance;
SELECT check_name, ok FROM payext.verify_ledger() WHERE check_name IN ('balances_match_journal', 'no_negative_balances');

-- A frozen merchant can not be paid through a bucket either (PY102).
SELECT payext.open_merchant('gh_credit_frozen', 'Frozen', 'CHF') AS frozen \gset
SELECT payext.freeze(:frozen);
SELECT payext.charge(:frozen, payext.request_payment(:ann), 1, 'frozen-1');
\echo :SQLSTATE
SELECT payext.balance(:frozen) AS balance;
