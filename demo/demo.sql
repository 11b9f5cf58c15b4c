-- payext demo: a user, a merchant and the ledger under them.
-- Run with `make demo` against a server, or scripts/quickstart.sh demo.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
DROP DATABASE IF EXISTS payext_demo;
CREATE DATABASE payext_demo;
\c payext_demo
SET client_min_messages = warning;
CREATE EXTENSION payext;

\echo
\echo '== Alice opens a wallet in the social app; a tea house opens a merchant account.'
SELECT payext.open_wallet(owner => 'wx_alice') AS alice \gset
SELECT payext.open_merchant(public_service_id => 'gh_teahouse', display_name => 'Lotus Tea House') AS teahouse \gset
SELECT id, kind, coalesce(owner, public_service_id) AS who, display_name, currency
  FROM payext.account ORDER BY id;

\echo '== Alice tops up 100.00 CNY from her bank card.  The bank retries the call: nothing moves twice.'
SELECT payext.top_up(wallet => :alice, amount => 10000, external_ref => 'card-7781-0001') AS topup;
SELECT payext.top_up(wallet => :alice, amount => 10000, external_ref => 'card-7781-0001') AS same_topup_again;

\echo '== 23.50 CNY moves from Alice to the tea house (the payment-code flow arrives in 0.2).'
SELECT payext.transfer(debit_account => :alice, credit_account => :teahouse,
                       amount => 2350, reference => 'demo-tea-1') AS transfer;

\echo '== Alice tries to withdraw more than she has: refused, and nothing changes.'
\set ON_ERROR_STOP 0
SELECT payext.withdraw(account => :alice, amount => 99999, external_ref => 'cashout-1');
\set ON_ERROR_STOP 1

\echo '== The tea house is paid out 20.00 CNY to its bank.'
SELECT payext.withdraw(account => :teahouse, amount => 2000, external_ref => 'payout-2026-11-25') AS payout;

\echo '== Balances (the system account is where money enters and leaves: it mirrors the rest).'
SELECT a.id, a.kind, coalesce(a.owner, a.public_service_id, '(bank)') AS who,
       payext.format_amount(payext.balance(a.id), a.currency) AS balance
  FROM payext.account a ORDER BY a.id;

\echo '== The journal: one row per movement, append-only.'
SELECT t.id, t.kind, t.debit_account AS debit, t.credit_account AS credit,
       payext.format_amount(t.amount, t.currency) AS amount, t.reference
  FROM payext.transfer t ORDER BY t.id;

\set ON_ERROR_STOP 0
UPDATE payext.transfer SET amount = 1;
\set ON_ERROR_STOP 1

\echo '== verify_ledger(): balances equal the journal, money is conserved.'
SELECT * FROM payext.verify_ledger();

\c postgres
DROP DATABASE payext_demo;
