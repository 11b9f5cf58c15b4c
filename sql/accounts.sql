-- Accounts: wallets per (owner, currency), merchants per (public-service id,
-- currency), their life cycle (freeze, unfreeze, close), and bad arguments.

-- Ids in this file's messages start after 1000, whatever ran before it.
SELECT setval('payext.account_id_seq', 1000);

SELECT payext.open_wallet('acct_alice') AS alice \gset
SELECT payext.open_wallet(owner => 'acct_alice', currency => 'CNY') = :alice AS same_wallet_again;
SELECT payext.open_wallet('acct_alice', 'usd') AS alice_usd \gset
SELECT :alice_usd <> :alice AS one_wallet_per_currency;
SELECT payext.open_merchant('gh_acct_shop', 'Corner Shop') AS shop \gset
SELECT payext.open_merchant(public_service_id => 'gh_acct_shop',
                            display_name => 'Renamed Shop', currency => 'CNY') = :shop
       AS same_merchant_again;
-- The same id can hold a wallet and a merchant account without clashing.
SELECT payext.open_merchant('acct_alice', 'Alice''s stall') NOT IN (:alice, :alice_usd)
       AS merchant_is_not_wallet;

SELECT kind, owner, public_service_id, display_name, currency, balance, status
  FROM payext.account WHERE id IN (:alice, :alice_usd, :shop) ORDER BY id;
SELECT payext.balance(:alice) AS alice_balance;

-- Bad arguments: each has its own SQLSTATE, and nothing is created.
SELECT count(*) AS accounts_before FROM payext.account \gset
SELECT payext.open_wallet(NULL);
\echo :SQLSTATE
SELECT payext.open_wallet('');
\echo :SQLSTATE
SELECT payext.open_wallet(repeat('x', 129));
\echo :SQLSTATE
SELECT payext.open_wallet(E'bad\nowner');
\echo :SQLSTATE
SELECT payext.open_wallet('acct_bob', 'ZZZ');
\echo :SQLSTATE
SELECT payext.open_wallet('acct_bob', NULL);
\echo :SQLSTATE
SELECT payext.open_merchant('gh_other', NULL);
\echo :SQLSTATE
SELECT payext.open_merchant('gh_other', '');
\echo :SQLSTATE
SELECT count(*) = :accounts_before AS nothing_created FROM payext.account;
-- The longest allowed owner is fine.
SELECT payext.open_wallet(repeat('y', 128)) > 0 AS longest_owner_ok;

-- Unknown accounts.
SELECT payext.balance(-1);
\echo :SQLSTATE
SELECT payext.freeze(-1);
\echo :SQLSTATE
SELECT payext.balance(NULL);
\echo :SQLSTATE

-- Freeze and unfreeze; both are idempotent.
SELECT payext.freeze(:alice);
SELECT payext.freeze(:alice);
SELECT status FROM payext.account WHERE id = :alice;
SELECT payext.unfreeze(:alice);
SELECT payext.unfreeze(:alice);
SELECT status FROM payext.account WHERE id = :alice;

-- Closing needs a zero balance and is final.
SELECT payext.top_up(:alice_usd, 100, 'acct-topup-1') > 0 AS topped_up;
SELECT payext.close_account(:alice_usd);
\echo :SQLSTATE
SELECT payext.withdraw(:alice_usd, 100, 'acct-withdraw-1') > 0 AS withdrawn;
SELECT payext.close_account(:alice_usd);
SELECT payext.close_account(:alice_usd);
SELECT status, balance FROM payext.account WHERE id = :alice_usd;
SELECT payext.unfreeze(:alice_usd);
\echo :SQLSTATE
SELECT payext.freeze(:alice_usd);
\echo :SQLSTATE
-- open_wallet() still names the closed wallet: one wallet per owner and currency.
SELECT payext.open_wallet('acct_alice', 'USD') = :alice_usd AS still_the_same_wallet;

-- System accounts are the ledger's own: no status changes.
SELECT id AS usd_system FROM payext.account WHERE kind = 'system' AND currency = 'USD' \gset
SELECT payext.freeze(:usd_system);
\echo :SQLSTATE
SELECT payext.close_account(:usd_system);
\echo :SQLSTATE

SELECT check_name, ok FROM payext.verify_ledger();
