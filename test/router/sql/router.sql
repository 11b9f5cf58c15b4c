--
-- The router (payext_router over PL/Proxy), with two partitions
-- (scripts/with_partitions.sh 2): each call lands on the partition its
-- arguments name, and answers as a single node would, SQLSTATEs included.
-- test/router/run.sh runs it.
--
\set VERBOSITY default
SELECT payext.router_partitions();
-- Each partition is the number the router sends its ids to.
SELECT p, payext.router_partition_number(p) FROM generate_series(0, 1) p;

-- Wallets open on the partition of their owner's hash, and the router
-- computes the hash as payext does (the partition's own owner_partition).
SELECT o, payext.route_owner(o) AS routed, payext.owner_partition(o, 2) AS payext_says,
       payext.partition_of(payext.open_wallet(o)) AS wallet_on
  FROM unnest(ARRAY['ann', 'ben', 'cat', 'dan', '用户一']) AS o;
-- Again: the same wallet, not a second one elsewhere.
SELECT payext.open_wallet('ann') = payext.open_wallet('ann') AS same_wallet;

-- Money moves on the wallet's partition; retries are idempotent there.
SELECT payext.open_wallet('ann') AS ann, payext.open_wallet('ben') AS ben \gset
SELECT payext.partition_of(payext.top_up(:ann, 10000, 'in-1')) AS ann_topup_on,
       payext.partition_of(payext.top_up(:ben, 5000, 'in-1')) AS ben_topup_on;
SELECT payext.top_up(:ann, 10000, 'in-1') = payext.top_up(:ann, 10000, 'in-1') AS replay_same;
SELECT payext.balance(:ann) AS ann_balance, payext.balance(:ben) AS ben_balance;
SELECT payext.partition_of(payext.withdraw(:ann, 2500, 'out-1')) AS withdraw_on;
SELECT payext.balance(:ann) AS ann_balance;

-- Codes carry their partition: issued by the wallet's, cancelled there.
SELECT payext.request_payment(:ann) AS ann_code, payext.request_payment(:ben) AS ben_code \gset
SELECT payext.code_partition(:'ann_code') = payext.partition_of(:ann) AS ann_code_home,
       payext.code_partition(:'ben_code') = payext.partition_of(:ben) AS ben_code_home;
SELECT payext.cancel_payment_code(:'ann_code');

-- After a remote error PL/Proxy drops that connection and makes a new one
-- at the next call; its NOTICE is hidden from here on.
SET client_min_messages = warning;

-- A merchant has an account on every partition; its id at the router is
-- partition 0's.  Again: the same ids.
SELECT payext.open_merchant('gh_tea', 'Tea House') AS shop \gset
SELECT payext.partition_of(:shop) AS shop_on,
       payext.open_merchant('gh_tea', 'Tea House') = :shop AS same_again;
SELECT partition_number, payext.partition_of(account) AS account_on, public_service_id, currency
  FROM payext.merchant_account WHERE merchant = :shop ORDER BY partition_number;

-- Charges run on the payer's partition, to the merchant's account there.
SELECT payext.request_payment(:ann) AS ann_code2, payext.request_payment(:ben) AS ben_code2 \gset
SELECT payext.partition_of(payext.charge(:shop, :'ann_code2', 1200, 'T-1')) AS ann_paid_on,
       payext.partition_of(payext.charge(:shop, :'ben_code2', 800, 'T-2')) AS ben_paid_on;
-- Replays return the first transfer and move nothing.
SELECT payext.charge(:shop, :'ann_code2', 1200, 'T-1') = payext.charge(:shop, :'ann_code2', 1200, 'T-1') AS replay_same;
SELECT payext.balance(:ann) AS ann_balance, payext.balance(:ben) AS ben_balance,
       payext.balance(:shop) AS shop_balance;
SELECT a.partition_number, payext.balance_on(a.partition_number, a.account) AS account_balance
  FROM payext.merchant_account a WHERE a.merchant = :shop ORDER BY a.partition_number;
SELECT transfer_id > 0 AS paid, amount, refunded_amount, state
  FROM payext.payment_status(:shop, 'T-1');
-- One order is charged on one partition only: a code of the other
-- partition under T-1 is refused, even by a wallet with money.
SELECT payext.request_payment(:ben) AS ben_code3 \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, :'ben_code3', 1200, 'T-1');
\set VERBOSITY default
SELECT payext.charge(:shop, :'ben_code3', 1200, 'T-1');
-- Refunds run where the order was charged; a refund_ref is the merchant's
-- across partitions.
SELECT payext.partition_of(payext.refund(:shop, 'T-1', 200, 'R-1')) AS refunded_on;
SELECT payext.refund(:shop, 'T-1', 200, 'R-1') = payext.refund(:shop, 'T-1', 200, 'R-1') AS refund_replay_same;
SELECT amount, refunded_amount, state FROM payext.payment_status(:shop, 'T-1');
\set VERBOSITY sqlstate
SELECT payext.refund(:shop, 'T-2', 100, 'R-1');
SELECT payext.refund(:shop, 'T-9', 100, 'R-9');
SELECT * FROM payext.payment_status(:shop, 'T-9');
SELECT payext.refund(:shop, 'T-1', 5000, 'R-2');
SELECT payext.charge(:shop, :'ben_code3', 100, NULL);
SELECT payext.charge(:ben, :'ben_code3', 100, 'T-wallet');
SELECT payext.refund(NULL, 'T-1', 100, 'R-3');
-- A merchant is paid out whole (merchant_settle), not from one partition.
SELECT payext.withdraw(:shop, 100, 'W-1');
SELECT payext.withdraw((SELECT account FROM payext.merchant_account
                         WHERE merchant = :shop AND partition_number = 1), 100, 'W-1');
\set VERBOSITY default
SELECT payext.balance(:ann) AS ann_balance, payext.balance(:shop) AS shop_balance;

-- Errors come back with the partition's SQLSTATE, detail and hint; the
-- message is PL/Proxy's, naming the function and the partition.
SELECT payext.top_up(:ann, -5, 'bad');
\set VERBOSITY sqlstate
SELECT payext.withdraw(:ben, 999999, 'too-much');
SELECT payext.open_wallet(' ann');
SELECT payext.open_wallet('ann', 'XXX');
SELECT payext.cancel_payment_code('000000000000000001');
SELECT payext.cancel_payment_code(:'ann_code');
-- The router's own refusals, before any partition: nulls, ids of
-- partitions it does not have (no such account, as a single node would
-- say), codes of partitions it does not have, malformed codes.
SELECT payext.open_wallet(NULL);
SELECT payext.balance(NULL);
SELECT payext.balance(0);
SELECT payext.balance((5::bigint << 56) | 1);
-- (a well-formed code of partition 05: its check digit made to hold)
SELECT '05' || substr(:'ann_code', 3, 15) || d AS code05 FROM generate_series(0, 9) d
 WHERE payext.code_check_digit_ok('05' || substr(:'ann_code', 3, 15) || d) \gset
SELECT payext.cancel_payment_code(:'code05');
SELECT payext.cancel_payment_code('12345');
\set VERBOSITY default
SELECT payext.balance((5::bigint << 56) | 1);
-- A partition's refusal leaves the router usable: the next call works.
SELECT payext.balance(:ann) AS ann_balance;

-- Every partition verifies; verify_ledger() answers for each, and on each
-- that every id carries the partition and every wallet's owner hashes there.
SELECT check_name, count(*) AS partitions, bool_and(ok) AS ok
  FROM payext.verify_ledger() GROUP BY check_name ORDER BY check_name;

-- Configuring: a list out of order is refused (each partition is asked its
-- number) and the router keeps its partitions; so is a count that is not
-- a power of two, or nothing.
\set VERBOSITY sqlstate
SELECT payext.configure_partitions(ARRAY(
  SELECT substr(o, 4) FROM pg_foreign_server s, unnest(s.srvoptions) AS o
   WHERE s.srvname = 'payext_partitions' AND o ~ '^p[0-9]+=' ORDER BY o DESC));
SELECT payext.configure_partitions(ARRAY['host=a', 'host=b', 'host=c']);
SELECT payext.configure_partitions(ARRAY[]::text[]);
SELECT payext.configure_partitions(NULL);
-- A connection string that names a user would run every routed call as
-- that user, whatever role called the router.
SELECT payext.configure_partitions(ARRAY['host=127.0.0.1 dbname=x user=postgres']);
SELECT payext.configure_partitions(ARRAY['postgresql://127.0.0.1/x?user=postgres']);
\set VERBOSITY default
SELECT payext.router_partitions(), payext.balance(:ann) AS ann_balance;
-- Only the owner points the router elsewhere or records merchants.
SELECT has_function_privilege('public', 'payext.configure_partitions(text[])', 'EXECUTE') AS public_configures,
       has_table_privilege('public', 'payext.merchant_account', 'INSERT') AS public_maps_merchants;

-- Association through the router: interactions live on the consumer's
-- partition, rules and merchants on every partition.
SELECT payext.set_association_rule('gh_tea', 2, '30 days', 0);
SELECT payext.partition_of(payext.record_interaction('ann', 'gh_tea', 'visit')) = payext.route_owner('ann') AS ann_visit_home,
       payext.partition_of(payext.record_interaction('ben', 'gh_tea', 'visit')) = payext.route_owner('ben') AS ben_visit_home;
SELECT payext.opt_out('cat', 'gh_tea');
SELECT payext.evaluate_associations('gh_tea') >= 0 AS evaluated;
SELECT consumer, state FROM payext.merchant_associations(:shop) ORDER BY consumer;
SELECT kind, count(*) FROM payext.merchant_interactions(:shop) GROUP BY kind ORDER BY kind;
SELECT payext.drop_association_rule('gh_tea') AS dropped, payext.drop_association_rule('gh_tea') AS again;
-- The merchant's statement gathers its accounts on both partitions.
SELECT kind, count(*), sum(amount) FROM payext.merchant_transfers(:shop) GROUP BY kind ORDER BY kind;
-- Freezing a merchant freezes it everywhere; unfreezing, likewise.
SELECT payext.freeze(:shop);
SELECT payext.request_payment(:ann) AS ann_code4, payext.request_payment(:ben) AS ben_code4 \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, :'ann_code4', 100, 'F-1');
SELECT payext.charge(:shop, :'ben_code4', 100, 'F-2');
\set VERBOSITY default
SELECT payext.unfreeze(:shop);
SELECT payext.charge(:shop, :'ann_code4', 100, 'F-1') > 0 AS ann_paid,
       payext.charge(:shop, :'ben_code4', 100, 'F-2') > 0 AS ben_paid;
-- Keys are rotated on every partition; guesses are gathered from all.
SELECT payext.rotate_signing_key() > 0 AS rotated;
SELECT count(*) AS merchants_with_guesses FROM payext.code_failures();
SELECT payext.unblock_charging(:shop);
\set VERBOSITY sqlstate
SELECT payext.record_interaction(NULL, 'gh_tea', 'visit');
SELECT payext.unblock_charging(:ann);
SELECT * FROM payext.merchant_transfers(:ann);
\set VERBOSITY default

-- charge_many through the router: each item on its code's partition, after
-- its order_ref's claim; an order claimed for the other partition is
-- PY208, a code of a partition the router lacks PY202, a malformed one
-- the partition's PY201; the rest as a single node answers.
SELECT payext.request_payment(:ann) AS a1, payext.request_payment(:ann) AS a2,
       payext.request_payment(:ben) AS b1, payext.request_payment(:ben) AS b2 \gset
SELECT item, transfer_id IS NOT NULL AS charged,
       CASE WHEN transfer_id IS NOT NULL THEN payext.partition_of(transfer_id) END AS charged_on,
       sqlstate
  FROM payext.charge_many(:shop, ARRAY[:'a1', :'b1', :'code05', '12345', :'b2', :'a2'],
                          ARRAY[100, 200, 100, 100, 50000000, 300]::bigint[],
                          ARRAY['M-1', 'M-2', 'M-3', 'M-4', 'M-5', 'T-2']);
-- Sent again: the charged items answer with their first transfers.
SELECT count(*) FILTER (WHERE transfer_id IS NOT NULL) AS charged
  FROM payext.charge_many(:shop, ARRAY[:'a1', :'b1'], ARRAY[100, 200]::bigint[], ARRAY['M-1', 'M-2']);
SELECT order_ref, amount FROM (VALUES ('M-1'), ('M-2')) o(order_ref),
       LATERAL payext.payment_status(:shop, o.order_ref) ORDER BY 1;
\set VERBOSITY sqlstate
SELECT * FROM payext.charge_many(:shop, ARRAY['x'], ARRAY[1, 2]::bigint[], ARRAY['y']);
SELECT * FROM payext.charge_many(:shop, NULL, ARRAY[1]::bigint[], ARRAY['y']);
-- A batch for no merchant's account: each item refused on its own, as a
-- single node answers; and an item without a code is refused (PY001), not
-- left neither charged nor refused.
SELECT * FROM payext.charge_many(:ann, ARRAY['x'], ARRAY[1]::bigint[], ARRAY['y']);
SELECT item, transfer_id, sqlstate FROM payext.charge_many(:shop, ARRAY[NULL], ARRAY[1]::bigint[], ARRAY['y']);
\set VERBOSITY default
SELECT count(*) FROM payext.charge_many(:shop, '{}', '{}', '{}');

-- Settlement through the router: every account of the merchant paid out
-- under one bank_ref, the day's sums added up; again, nothing more.
SELECT payext.balance(:shop) AS before_settle \gset
CALL payext.merchant_settle(:shop, 'BANK-1') \gset s_
SELECT :s_amount = :before_settle AS paid_all, payext.partition_of(:s_transfer_id) AS first_payout_on,
       :s_charges AS charges_today, :s_charged_amount AS charged_today,
       :s_refunds AS refunds_today, payext.balance(:shop) AS after_settle;
CALL payext.merchant_settle(:shop, 'BANK-1') \gset t_
SELECT :t_amount = :s_amount AS same_amount, :t_transfer_id = :s_transfer_id AS same_transfer,
       payext.balance(:shop) AS after_again;
SELECT count(*) AS payouts, sum(amount) = -:s_amount AS sum_paid
  FROM payext.merchant_transfers(:shop) WHERE kind = 'withdraw';

-- A correction within one partition is routed there; across two it is a
-- saga (sql/saga.sql).
SELECT payext.open_wallet('dan') AS dan \gset
SELECT payext.partition_of(:ann) = payext.partition_of(:dan) AS ann_dan_together;
SELECT payext.partition_of(payext.transfer(:ann, :dan, 100, 'fix-1')) = payext.partition_of(:ann) AS moved_home;
SELECT payext.balance(:dan) AS dan_balance;
\set VERBOSITY sqlstate
SELECT payext.transfer(:ann, NULL, 100, 'fix-3');
\set VERBOSITY default
-- Pure helpers answer from any partition.
SELECT count(*) AS currencies FROM payext.currencies();
SELECT payext.normalize_plate('粤b-12345') AS plate;

-- A typo (a wrong check digit) is refused before anything is claimed: the
-- customer's right code then charges the order, as on a single node.
SELECT payext.request_payment(:ann) AS ta, payext.request_payment(:ben) AS tb \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, substr(:'ta', 1, 17) || ((substr(:'ta', 18, 1)::integer + 1) % 10)::text,
                     100, 'typo');
\set VERBOSITY default
SELECT payext.charge(:shop, :'tb', 100, 'typo') > 0 AS right_code_charged;
SELECT item, sqlstate FROM payext.charge_many(:shop,
         ARRAY[substr(:'ta', 1, 17) || ((substr(:'ta', 18, 1)::integer + 1) % 10)::text],
         ARRAY[100]::bigint[], ARRAY['typo-2']);
SELECT payext.charge(:shop, :'ta', 100, 'typo-2') > 0 AS right_code_charged;
-- The count of partitions is the router's for life: owners and orders are
-- placed by a hash modulo it.
\set VERBOSITY sqlstate
SELECT payext.configure_partitions(ARRAY(
  SELECT substr(o, 4) FROM pg_foreign_server s, unnest(s.srvoptions) AS o, generate_series(1, 2)
   WHERE s.srvname = 'payext_partitions' AND o ~ '^p[0-9]+=' ORDER BY o));
\set VERBOSITY default
SELECT payext.router_partitions();

-- An order whose claim belongs on the payer's own partition is claimed and
-- charged in one transaction there: a refused charge leaves no claim, and
-- a code of the other partition may then charge the order.
SELECT r AS fold_ref FROM generate_series(1, 200) g, format('fold-%s', g) r
 WHERE payext.route_reference(:shop, r) = payext.partition_of(:ben) LIMIT 1 \gset
SELECT payext.request_payment(:ben) AS fb, payext.request_payment(:ann) AS fa \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, :'fb', 99999999, :'fold_ref');
\set VERBOSITY default
SELECT payext.partition_of(payext.charge(:shop, :'fa', 100, :'fold_ref')) = payext.partition_of(:ann)
       AS other_partition_charged;

-- Reversals run where the order was claimed: a charged order is refunded
-- in full on the payer's partition, once.  An order nobody claimed is
-- claimed and closed on its claim partition: a late charge is refused
-- there (PY215), and by any other partition's code as claimed elsewhere
-- (PY208); neither moves money.
SELECT payext.request_payment(:ben) AS rb \gset
SELECT payext.charge(:shop, :'rb', 700, 'rev-1') AS rev_charge \gset
SELECT payext.reverse_charge(:shop, 'rev-1') AS rev_refund \gset
SELECT payext.partition_of(:rev_refund) = payext.partition_of(:ben) AS refunded_on_payers_partition,
       payext.reverse_charge(:shop, 'rev-1') = :rev_refund AS same_again,
       (SELECT state FROM payext.payment_status(:shop, 'rev-1')) AS state;
SELECT r AS closed_ref FROM generate_series(1, 200) g, format('rev-closed-%s', g) r
 WHERE payext.route_reference(:shop, r) = payext.partition_of(:ann) LIMIT 1 \gset
SELECT payext.reverse_charge(:shop, :'closed_ref') IS NULL AS closed_without_money;
SELECT payext.request_payment(:ann) AS ra, payext.request_payment(:ben) AS rb2 \gset
\set VERBOSITY sqlstate
SELECT payext.charge(:shop, :'ra', 100, :'closed_ref');
SELECT payext.charge(:shop, :'rb2', 100, :'closed_ref');
\set VERBOSITY default

-- Events: each partition announces what it moved, on its channel of the
-- merchant's account there; event_channels() names them all (and starts
-- them on every partition), event_channel() gives partition 0's.
SELECT partition_number, account = payext.merchant_on(:shop, partition_number) AS its_account,
       channel ~ '^payext_events_[0-9a-f]{32}$' AS keyed_name
  FROM payext.event_channels(:shop) ORDER BY 1;
SELECT payext.event_channel(:shop) = (SELECT channel FROM payext.event_channels(:shop)
                                       WHERE partition_number = 0) AS partition_0s,
       (SELECT count(DISTINCT channel) FROM payext.event_channels(:shop)) AS distinct_channels;

-- Statements and balances at an instant add up the merchant's accounts on
-- every partition, merged in time order: the lines reconcile with the
-- balances, and the last balance is the merchant's.
SELECT count(*) > 5 AS lines, count(DISTINCT payext.partition_of(transfer_id)) AS partitions,
       bool_and(balance_after IS NOT NULL) AS balances
  FROM payext.merchant_statement(:shop, '-infinity', 'infinity');
SELECT (SELECT balance_after FROM payext.merchant_statement(:shop, '-infinity', 'infinity')
         ORDER BY created_at DESC, transfer_id DESC LIMIT 1) = payext.balance(:shop) AS last_is_balance,
       payext.balance_at(:shop, 'infinity') = payext.balance(:shop) AS at_infinity,
       payext.balance_at(:shop, '-infinity') AS at_the_start,
       payext.balance_at(:ann, 'infinity') = payext.balance(:ann) AS a_wallets_too;
SELECT count(*) AS charges_only_charges
  FROM payext.merchant_statement(:shop, '-infinity', 'infinity', 'charge') WHERE kind <> 'charge';

-- A wallet's state on its own partition.
SELECT payext.open_wallet('eve') AS eve \gset
SELECT payext.freeze(:eve);
\set VERBOSITY sqlstate
SELECT payext.top_up(:eve, 100, 'eve-1');
\set VERBOSITY default
SELECT payext.unfreeze(:eve);
SELECT payext.top_up(:eve, 100, 'eve-1') > 0 AS topped_up;
SELECT payext.close_account(payext.open_wallet('fay'));
\set VERBOSITY sqlstate
SELECT payext.top_up(payext.open_wallet('fay'), 100, 'fay-1');
SELECT payext.close_account(:eve);
\set VERBOSITY default

-- payext's readable relations, each partition's rows together: a wallet
-- once, on its owner's partition; the merchant's account once per
-- partition; the journal agreeing with every wallet's balance (a
-- merchant's also has its credit buckets); and the
-- analysts' per-merchant sums adding up what each partition counted.
SELECT kind, count(*) AS accounts, count(DISTINCT id >> 56) AS partitions
  FROM payext.account WHERE kind IN ('merchant', 'system') GROUP BY kind ORDER BY kind;
SELECT count(*) AS ann_rows, bool_and(id = :ann) AS ann_is_ann,
       bool_and(balance = payext.balance(:ann)) AS same_balance
  FROM payext.account WHERE owner = 'ann' AND kind = 'wallet' AND currency = 'CNY';
WITH moves AS (
  SELECT credit_account AS account, amount FROM payext.transfer
  UNION ALL
  SELECT debit_account, -amount FROM payext.transfer
), sums AS (SELECT account, sum(amount) AS total FROM moves GROUP BY account)
SELECT count(*) > 4 AS wallets_checked,
       count(DISTINCT a.id >> 56) AS partitions,
       count(*) FILTER (WHERE a.balance <> coalesce(s.total, 0)) AS balances_off_journal
  FROM payext.account a LEFT JOIN sums s ON s.account = a.id
 WHERE a.kind = 'wallet';
SELECT s.consumers = c.consumers AS consumers_add_up,
       s.payments = c.payments AS payments_add_up,
       s.payment_amount = c.payment_amount AS amounts_add_up,
       c.partitions AS consumers_on_partitions
  FROM payext.merchant_summary s,
       LATERAL (SELECT count(*) AS consumers, sum(payments) AS payments,
                       sum(payment_amount) AS payment_amount,
                       count(DISTINCT payext.owner_partition(consumer, 2)) AS partitions
                  FROM payext.consumer_merchant WHERE public_service_id = s.public_service_id) c
 WHERE s.public_service_id = 'gh_tea';
SELECT sum(payments) = (SELECT payments FROM payext.merchant_summary WHERE public_service_id = 'gh_tea')
       AS days_add_up
  FROM payext.merchant_daily WHERE public_service_id = 'gh_tea';
-- What is not payext's readable relation is not read through the router,
-- whatever the caller may read on the partitions.
\set VERBOSITY sqlstate
SELECT count(*) FROM payext.relation_rows('signing_key');
SELECT count(*) FROM payext.relation_rows(NULL);
\set VERBOSITY default
