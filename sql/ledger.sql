-- The ledger: top_up, withdraw, transfer, balance; idempotency on external
-- references; every refusal leaves the ledger as it was; the journal is
-- append-only and verify_ledger() notices what was changed behind its back.

-- Ids in this file's messages start after 2000, whatever ran before it.
SELECT setval('payext.account_id_seq', 2000), setval('payext.transfer_id_seq', 2000);

-- Euros: no other test file uses them, so the EUR system account is made
-- here and its id in the messages below does not depend on other files.
SELECT payext.open_wallet('ledger_wendy', 'EUR') AS w \gset
SELECT payext.open_merchant('gh_ledger_mart', 'Ledger Mart', 'EUR') AS m \gset
SELECT payext.open_wallet('ledger_wilma', 'EUR') AS w2 \gset
SELECT payext.open_wallet('ledger_wendy', 'USD') AS w_usd \gset

-- Money in.  A retry with the same arguments returns the same transfer.
SELECT payext.top_up(wallet => :w, amount => 10000, external_ref => 'ledger-bank-1') AS t1 \gset
SELECT payext.top_up(:w, 10000, 'ledger-bank-1') = :t1 AS replay_same_id;
SELECT payext.balance(:w) AS w_balance;
SELECT count(*) AS journal_rows FROM payext.transfer WHERE reference = 'ledger-bank-1';

-- The same reference with other arguments is refused.
SELECT payext.top_up(:w, 9999, 'ledger-bank-1');
\echo :SQLSTATE
-- References belong to their account: another wallet may use the same one
-- (its own bank's), gets its own transfer, and so learns nothing of the
-- first; a retry of each still finds its own.
SELECT payext.top_up(:w2, 10000, 'ledger-bank-1') AS t1_w2 \gset
SELECT :t1_w2 <> :t1 AS own_transfer,
       payext.top_up(:w2, 10000, 'ledger-bank-1') = :t1_w2 AS w2_replay,
       payext.top_up(:w, 10000, 'ledger-bank-1') = :t1 AS w_replay;
SELECT payext.withdraw(:w2, 10000, 'ledger-bank-2') > 0 AS w2_emptied;

-- Money out.
SELECT payext.withdraw(account => :w, amount => 2500, external_ref => 'ledger-payout-1') AS t2 \gset
SELECT payext.withdraw(:w, 2500, 'ledger-payout-1') = :t2 AS replay_same_id;
SELECT payext.balance(:w) AS w_balance;
-- Top-up and withdrawal references are separate namespaces.
SELECT payext.withdraw(:w, 500, 'ledger-bank-1') <> :t1 AS separate_namespace;
SELECT payext.balance(:w) AS w_balance;

-- A direct (administrative) transfer; idempotent when it has a reference.
SELECT payext.transfer(:w, :m, 1000, 'ledger-adj-1') AS t3 \gset
SELECT payext.transfer(:w, :m, 1000, 'ledger-adj-1') = :t3 AS replay_same_id;
SELECT payext.transfer(:w, :m, 1) <> payext.transfer(:w, :m, 1) AS unreferenced_are_distinct;
SELECT payext.balance(:w) AS w_balance, payext.balance(:m) AS m_balance;

-- Money from outside enters wallets only: merchants are paid by charges.
SELECT payext.top_up(:m, 300, 'ledger-bank-m');
\echo :SQLSTATE

-- Refusals.  Each has its own SQLSTATE; the ledger is unchanged afterwards.
SELECT count(*) AS journal_before, sum(amount) AS journal_sum_before
  FROM payext.transfer \gset
SELECT payext.withdraw(:w, 6999, 'ledger-payout-2');
\echo :SQLSTATE
SELECT payext.transfer(:w, :m, 7000);
\echo :SQLSTATE
SELECT payext.top_up(:w, 0, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.top_up(:w, -5, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.top_up(:w, NULL, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.top_up(NULL, 100, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.top_up(:w, 100, NULL);
\echo :SQLSTATE
SELECT payext.top_up(:w, 100, '');
\echo :SQLSTATE
SELECT payext.top_up(:w, 100, repeat('r', 129));
\echo :SQLSTATE
SELECT payext.top_up(-42, 100, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.withdraw(-42, 100, 'ledger-payout-2');
\echo :SQLSTATE
SELECT payext.transfer(:w, -42, 100);
\echo :SQLSTATE
SELECT payext.transfer(:w, :w_usd, 100);
\echo :SQLSTATE
SELECT payext.transfer(:w, :w, 100);
\echo :SQLSTATE
SELECT id AS eur_system FROM payext.account WHERE kind = 'system' AND currency = 'EUR' \gset
SELECT payext.top_up(:eur_system, 100, 'ledger-bank-2');
\echo :SQLSTATE
SELECT payext.transfer(:eur_system, :w, 100);
\echo :SQLSTATE
SELECT payext.transfer(:w, :eur_system, 100);
\echo :SQLSTATE
SELECT count(*) = :journal_before AS journal_unchanged,
       sum(amount) = :journal_sum_before AS amounts_unchanged
  FROM payext.transfer;
SELECT payext.balance(:w) AS w_balance, payext.balance(:m) AS m_balance;

-- A frozen account can neither pay nor be paid, but a replay of what it
-- already did still answers with the original transfer.
SELECT payext.freeze(:w);
SELECT payext.top_up(:w, 100, 'ledger-bank-3');
\echo :SQLSTATE
SELECT payext.withdraw(:w, 100, 'ledger-payout-3');
\echo :SQLSTATE
SELECT payext.transfer(:m, :w, 100);
\echo :SQLSTATE
SELECT payext.top_up(:w, 10000, 'ledger-bank-1') = :t1 AS replay_while_frozen;
SELECT payext.unfreeze(:w);
SELECT payext.top_up(:w, 100, 'ledger-bank-3') > 0 AS paid_after_unfreeze;

-- Overflow of a wallet or merchant balance is refused.  System accounts
-- store no balance (theirs is the journal's sum), so they never overflow.
-- (ISK is used by no other test.)
SELECT payext.open_wallet('ledger_rich', 'ISK') AS rich \gset
SELECT payext.top_up(:rich, 9223372036854775807, 'ledger-isk-1') > 0 AS topped_up_to_max;
SELECT payext.top_up(:rich, 1, 'ledger-isk-2');
\echo :SQLSTATE
SELECT payext.open_wallet('ledger_richer', 'ISK') AS richer \gset
SELECT payext.top_up(:richer, 2, 'ledger-isk-3') > 0 AS second_wallet_topped_up;
SELECT payext.transfer(:richer, :rich, 1);
\echo :SQLSTATE
SELECT id AS isk_system FROM payext.account WHERE kind = 'system' AND currency = 'ISK' \gset
-- The system account's balance lies beyond bigint: numeric's range error.
SELECT payext.balance(:isk_system);
\echo :SQLSTATE
SELECT payext.withdraw(:rich, 9223372036854775807, 'ledger-isk-4') > 0 AS withdrawn_all;
SELECT payext.balance(:rich) AS rich, payext.balance(:richer) AS richer,
       payext.balance(:isk_system) AS isk_system;
SELECT balance IS NULL AS system_balance_not_stored FROM payext.account WHERE id = :isk_system;

-- The journal of one wallet, oldest first.
SELECT kind, amount, reference, debit_account = :w AS debit, credit_account = :w AS credit,
       currency, length(checksum) AS checksum_bytes
  FROM payext.transfer WHERE :w IN (debit_account, credit_account) ORDER BY id;

-- The journal is append-only.
UPDATE payext.transfer SET amount = 1 WHERE id = :t1;
\echo :SQLSTATE
DELETE FROM payext.transfer WHERE id = :t1;
\echo :SQLSTATE
-- TRUNCATE is refused by the payments' foreign keys, and with CASCADE by
-- the journal's own trigger (nothing is truncated either way).
TRUNCATE payext.transfer;
\echo :SQLSTATE
TRUNCATE payext.transfer CASCADE;
\echo :SQLSTATE

SELECT check_name, ok FROM payext.verify_ledger();

-- verify_ledger() reports, rather than raises, what was changed behind the
-- extension's back (here by a superuser, inside a transaction rolled back).
BEGIN;
ALTER TABLE payext.transfer DISABLE TRIGGER transfer_append_only;
UPDATE payext.transfer SET reference = 'forged' WHERE id = :t3;
UPDATE payext.account SET balance = balance + 1 WHERE id = :m;
SELECT check_name, ok, CASE WHEN ok THEN '' ELSE detail END AS detail
  FROM payext.verify_ledger();
ROLLBACK;
BEGIN;
ALTER TABLE payext.account DROP CONSTRAINT account_balance_not_negative;
UPDATE payext.account SET balance = -1 WHERE id = :w_usd;
SELECT check_name, ok, CASE WHEN ok THEN '' ELSE detail END AS detail
  FROM payext.verify_ledger();
ROLLBACK;
SELECT check_name, ok FROM payext.verify_ledger();
