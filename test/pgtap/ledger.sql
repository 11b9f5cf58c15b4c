-- ledger.sql: the ledger functions' behaviour (DESIGN.md, "Accounts and
-- ledger" and the invariants).
--
-- Proves the happy paths (accounts opened once per natural key, top-up,
-- withdrawal and transfer moving money and replaying idempotently, freeze,
-- unfreeze, close, formatting, verify_ledger) and that every error a caller
-- can cause is refused with its own SQLSTATE and message and moves nothing:
--   PY001 null argument        PY002 non-positive amount  PY003 unknown currency
--   PY004 bad identifier       PY101 missing account      PY102 frozen
--   PY103 closed               PY104 insufficient funds   PY105 currency mismatch
--   PY106 overflow             PY107 idempotency conflict PY108 close non-empty
--   PY109 journal is append-only                          PY110 transfer to self
--   PY111 system account
-- Finally, that verify_ledger() notices a journal altered behind its back.
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(113);

SELECT payext.open_wallet('tap-alice') AS alice,
       payext.open_wallet('tap-bob') AS bob,
       payext.open_wallet('tap-usd', 'USD') AS usd,
       payext.open_merchant('tap-shop', 'TAP Shop') AS shop,
       payext.open_wallet('tap-frozen') AS frozen,
       payext.open_wallet('tap-closed') AS closed,
       payext.open_wallet('tap-krw-a', 'KRW') AS krw_a,
       payext.open_wallet('tap-krw-b', 'KRW') AS krw_b
\gset

---------------------------------------------------------------------------
-- Accounts
---------------------------------------------------------------------------
SELECT is(payext.open_wallet('tap-alice'), :alice::bigint, 'open_wallet again returns the same wallet');
SELECT is(payext.open_wallet(owner => 'tap-usd', currency => 'usd'), :usd::bigint,
          'open_wallet by named arguments; a lower-case currency code is the same currency');
SELECT isnt(payext.open_wallet('tap-alice', 'USD'), :alice::bigint,
            'a wallet in another currency is another account');
SELECT isnt(:alice::bigint, :bob::bigint, 'two owners, two wallets');
SELECT is(payext.open_merchant(public_service_id => 'tap-shop', display_name => 'Renamed Shop'),
          :shop::bigint, 'open_merchant again returns the same account');
SELECT results_eq(
  format('SELECT kind, owner, public_service_id, currency, balance, status FROM payext.account WHERE id IN (%s, %s) ORDER BY id', :alice, :shop),
  $$VALUES ('wallet', 'tap-alice', NULL, 'CNY', 0::bigint, 'active'),
           ('merchant', NULL, 'tap-shop', 'CNY', 0::bigint, 'active')$$,
  'a new wallet and merchant account: active, empty, CNY by default');

---------------------------------------------------------------------------
-- Top-up, withdrawal, transfer, replays
---------------------------------------------------------------------------
SELECT payext.top_up(wallet => :alice, amount => 10000, external_ref => 'tap-bank-1') AS t_top \gset
SELECT id AS cny_system FROM payext.account WHERE kind = 'system' AND currency = 'CNY' \gset
SELECT is(payext.balance(:alice), 10000::bigint, 'top_up credits the wallet');
SELECT is(payext.top_up(:alice, 10000, 'tap-bank-1'), :t_top::bigint,
          'a repeated top_up returns the first transfer id');
SELECT is(payext.balance(:alice), 10000::bigint, '... and credits nothing more');
SELECT results_eq(
  format('SELECT debit_account, credit_account, amount, currency, kind, reference FROM payext.transfer WHERE id = %s', :t_top),
  format('VALUES (%s::bigint, %s::bigint, 10000::bigint, %L, %L, %L)', :cny_system, :alice, 'CNY', 'top_up', 'tap-bank-1'),
  'the top-up is one journal row from the CNY system account to the wallet');
SELECT is(payext.balance(:cny_system), -10000::bigint, 'the system account holds the money that came in, negated');

SELECT payext.withdraw(account => :alice, amount => 2500, external_ref => 'tap-cash-1') AS t_wd \gset
SELECT is(payext.balance(:alice), 7500::bigint, 'withdraw debits the wallet');
SELECT is(payext.withdraw(:alice, 2500, 'tap-cash-1'), :t_wd::bigint,
          'a repeated withdraw returns the first transfer id');
SELECT is(payext.balance(:alice), 7500::bigint, '... and debits nothing more');

SELECT payext.transfer(debit_account => :alice, credit_account => :bob, amount => 1000,
                       reference => 'tap-t-1') AS t_tr \gset
SELECT is(payext.transfer(:alice, :bob, 1000, 'tap-t-1'), :t_tr::bigint,
          'a repeated transfer with a reference returns the first transfer id');
SELECT isnt(payext.transfer(:alice, :bob, 100), payext.transfer(:alice, :bob, 100),
            'transfers without a reference are never replays');
SELECT results_eq(
  format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :bob),
  $$VALUES (6300::bigint, 1200::bigint)$$,
  'transfers move money between the two wallets');
SELECT lives_ok(format('SELECT payext.transfer(%s, %s, 300)', :alice, :shop), 'a wallet pays a merchant');
SELECT lives_ok(format('SELECT payext.withdraw(%s, 300, %L)', :shop, 'tap-payout-1'), 'a merchant is paid out');
SELECT is(payext.balance(:shop), 0::bigint, 'the merchant is back at zero');
SELECT lives_ok(format('SELECT payext.withdraw(%s, 6000, %L)', :alice, 'tap-cash-all'),
                'a wallet can be emptied to exactly zero');
SELECT is(payext.balance(:alice), 0::bigint, 'the wallet is at zero');
SELECT lives_ok(format('SELECT payext.top_up(%s, 5000, %L)', :alice, 'tap-bank-2'), 'and topped up again');

---------------------------------------------------------------------------
-- Freeze, unfreeze, close
---------------------------------------------------------------------------
SELECT lives_ok(format('SELECT payext.freeze(%s)', :bob), 'freeze');
SELECT lives_ok(format('SELECT payext.freeze(%s)', :bob), 'freeze again is harmless');
SELECT is((SELECT status FROM payext.account WHERE id = :bob), 'frozen', 'the account is frozen');
SELECT is(payext.balance(:bob), 1200::bigint, 'a frozen account''s balance can be read');
SELECT lives_ok(format('SELECT payext.unfreeze(%s)', :bob), 'unfreeze');
SELECT is((SELECT status FROM payext.account WHERE id = :bob), 'active', 'the account is active again');
SELECT lives_ok(format('SELECT payext.top_up(%s, 100, %L)', :bob, 'tap-bank-bob'), 'an unfrozen account can be paid');
SELECT lives_ok(format('SELECT payext.close_account(%s)', :closed), 'an empty account can be closed');
SELECT is((SELECT status FROM payext.account WHERE id = :closed), 'closed', 'the account is closed');
SELECT lives_ok(format('SELECT payext.freeze(%s)', :frozen), 'freeze another account for the error tests');

---------------------------------------------------------------------------
-- Formatting and currencies
---------------------------------------------------------------------------
SELECT is(payext.format_amount(1234, 'CNY'), '12.34 CNY', 'format_amount: two decimals');
SELECT is(payext.format_amount(-5, 'usd'), '-0.05 USD', 'format_amount: negative, lower-case code');
SELECT is(payext.format_amount(1500, 'JPY'), '1500 JPY', 'format_amount: no minor unit');
SELECT is(payext.format_amount(1, 'BHD'), '0.001 BHD', 'format_amount: three decimals');
SELECT is(payext.format_amount(-9223372036854775808, 'CNY'), '-92233720368547758.08 CNY',
          'format_amount: the smallest bigint');
SELECT results_eq($$SELECT code, exponent FROM payext.currencies() WHERE code IN ('CNY', 'JPY', 'KWD') ORDER BY code$$,
                  $$VALUES ('CNY', 2), ('JPY', 0), ('KWD', 3)$$, 'currencies() lists codes with their exponents');

---------------------------------------------------------------------------
-- PY001: null arguments
---------------------------------------------------------------------------
SELECT throws_ok('SELECT payext.open_wallet(NULL)', 'PY001', 'argument "owner" must not be null', 'open_wallet(NULL)');
SELECT throws_ok($$SELECT payext.open_wallet('tap-x', NULL)$$, 'PY001', 'argument "currency" must not be null', 'open_wallet(owner, NULL)');
SELECT throws_ok($$SELECT payext.open_merchant(NULL, 'Shop')$$, 'PY001', 'argument "public_service_id" must not be null', 'open_merchant(NULL, ...)');
SELECT throws_ok($$SELECT payext.open_merchant('tap-x', NULL)$$, 'PY001', 'argument "display_name" must not be null', 'open_merchant(..., NULL)');
SELECT throws_ok($$SELECT payext.top_up(NULL, 100, 'tap-r')$$, 'PY001', 'argument "wallet" must not be null', 'top_up(NULL, ...)');
SELECT throws_ok(format('SELECT payext.top_up(%s, NULL, %L)', :alice, 'tap-r'), 'PY001', 'argument "amount" must not be null', 'top_up(..., NULL, ...)');
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, NULL)', :alice), 'PY001', 'argument "external_ref" must not be null', 'top_up(..., NULL)');
SELECT throws_ok($$SELECT payext.withdraw(NULL, 100, 'tap-r')$$, 'PY001', 'argument "account" must not be null', 'withdraw(NULL, ...)');
SELECT throws_ok(format('SELECT payext.transfer(NULL, %s, 100)', :bob), 'PY001', 'argument "debit_account" must not be null', 'transfer(NULL, ...)');
SELECT throws_ok(format('SELECT payext.transfer(%s, NULL, 100)', :alice), 'PY001', 'argument "credit_account" must not be null', 'transfer(..., NULL, ...)');
SELECT throws_ok('SELECT payext.balance(NULL)', 'PY001', 'argument "account" must not be null', 'balance(NULL)');
SELECT throws_ok('SELECT payext.freeze(NULL)', 'PY001', 'argument "account" must not be null', 'freeze(NULL)');
SELECT throws_ok('SELECT payext.close_account(NULL)', 'PY001', 'argument "account" must not be null', 'close_account(NULL)');
SELECT throws_ok($$SELECT payext.format_amount(NULL, 'CNY')$$, 'PY001', 'argument "amount" must not be null', 'format_amount(NULL, ...)');

---------------------------------------------------------------------------
-- PY002: amounts must be positive
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.top_up(%s, 0, %L)', :alice, 'tap-zero'), 'PY002', 'amount must be positive', 'top_up of 0');
SELECT throws_ok(format('SELECT payext.top_up(%s, -100, %L)', :alice, 'tap-neg'), 'PY002', 'amount must be positive', 'top_up of -100');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 0, %L)', :alice, 'tap-zero'), 'PY002', 'amount must be positive', 'withdraw of 0');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, -1)', :alice, :bob), 'PY002', 'amount must be positive', 'transfer of -1');

---------------------------------------------------------------------------
-- PY003: unknown currencies
---------------------------------------------------------------------------
SELECT throws_ok($$SELECT payext.open_wallet('tap-x', 'XXX')$$, 'PY003', 'unknown currency "XXX"', 'open_wallet in XXX');
SELECT throws_ok($$SELECT payext.open_merchant('tap-x', 'Shop', 'EURO')$$, 'PY003', 'unknown currency "EURO"', 'open_merchant in EURO');
SELECT throws_ok($$SELECT payext.format_amount(1, '')$$, 'PY003', 'unknown currency ""', 'format_amount in ''''');

---------------------------------------------------------------------------
-- PY004: identifiers and references
---------------------------------------------------------------------------
SELECT throws_ok($$SELECT payext.open_wallet('')$$, 'PY004', 'argument "owner" must be 1 to 128 bytes long', 'an empty owner');
SELECT throws_ok(format('SELECT payext.open_wallet(%L)', repeat('x', 129)), 'PY004', 'argument "owner" must be 1 to 128 bytes long', 'a 129-byte owner');
SELECT throws_ok($$SELECT payext.open_wallet(E'tap\nx')$$, 'PY004', 'argument "owner" contains a control character', 'an owner with a newline');
SELECT throws_ok(format('SELECT payext.open_merchant(%L, %L)', 'tap-x', repeat('x', 257)), 'PY004', 'argument "display_name" must be 1 to 256 bytes long', 'a 257-byte display name');
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, %L)', :alice, ''), 'PY004', 'argument "external_ref" must be 1 to 128 bytes long', 'an empty external_ref');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 100, %L)', :alice, repeat('r', 129)), 'PY004', 'argument "external_ref" must be 1 to 128 bytes long', 'a 129-byte external_ref');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100, %L)', :alice, :bob, E'a\tb'), 'PY004', 'argument "reference" contains a control character', 'a transfer reference with a tab');

---------------------------------------------------------------------------
-- PY101: missing accounts
---------------------------------------------------------------------------
SELECT throws_ok($$SELECT payext.top_up(999999999, 100, 'tap-r')$$, 'PY101', 'account 999999999 does not exist', 'top_up to a missing account');
SELECT throws_ok($$SELECT payext.withdraw(999999999, 100, 'tap-r')$$, 'PY101', 'account 999999999 does not exist', 'withdraw from a missing account');
SELECT throws_ok(format('SELECT payext.transfer(%s, 999999999, 100)', :alice), 'PY101', 'account 999999999 does not exist', 'transfer to a missing account');
SELECT throws_ok(format('SELECT payext.transfer(999999999, %s, 100)', :alice), 'PY101', 'account 999999999 does not exist', 'transfer from a missing account');
SELECT throws_ok('SELECT payext.balance(999999999)', 'PY101', 'account 999999999 does not exist', 'balance of a missing account');
SELECT throws_ok('SELECT payext.freeze(999999999)', 'PY101', 'account 999999999 does not exist', 'freeze a missing account');

---------------------------------------------------------------------------
-- PY102 frozen, PY103 closed
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, %L)', :frozen, 'tap-r-frozen'), 'PY102', format('account %s is frozen', :frozen), 'a frozen account cannot be topped up');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :alice, :frozen), 'PY102', format('account %s is frozen', :frozen), 'a frozen account cannot be paid');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :frozen, :alice), 'PY102', format('account %s is frozen', :frozen), 'a frozen account cannot pay');
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, %L)', :closed, 'tap-r-closed'), 'PY103', format('account %s is closed', :closed), 'a closed account cannot be topped up');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :alice, :closed), 'PY103', format('account %s is closed', :closed), 'a closed account cannot be paid');
SELECT throws_ok(format('SELECT payext.unfreeze(%s)', :closed), 'PY103', format('account %s is closed', :closed), 'closing is final: unfreeze');
SELECT throws_ok(format('SELECT payext.freeze(%s)', :closed), 'PY103', format('account %s is closed', :closed), 'closing is final: freeze');

---------------------------------------------------------------------------
-- PY104 insufficient funds, PY105 currency mismatch
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.withdraw(%s, 5001, %L)', :alice, 'tap-too-much'), 'PY104', format('insufficient funds in account %s', :alice), 'withdraw more than the balance');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 5001)', :alice, :bob), 'PY104', format('insufficient funds in account %s', :alice), 'transfer more than the balance');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, %L)', :shop, 'tap-empty-shop'), 'PY104', format('insufficient funds in account %s', :shop), 'a merchant cannot go below zero either');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :bob),
                  $$VALUES (5000::bigint, 1300::bigint)$$, 'refused transfers moved nothing');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :alice, :usd), 'PY105', format('accounts %s and %s hold different currencies', :alice, :usd), 'a CNY wallet cannot pay a USD wallet');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :usd, :alice), 'PY105', format('accounts %s and %s hold different currencies', :usd, :alice), 'a USD wallet cannot pay a CNY wallet');

---------------------------------------------------------------------------
-- PY106 overflow of a user balance (in KRW, used by no other test here).
-- System accounts store no balance, so they never overflow.
---------------------------------------------------------------------------
SELECT lives_ok(format('SELECT payext.top_up(%s, 9223372036854775807, %L)', :krw_a, 'tap-krw-max'), 'a top-up of the largest bigint');
SELECT throws_ok(format('SELECT payext.top_up(%s, 1, %L)', :krw_a, 'tap-krw-one-more'), 'PY106', 'the top-up would overflow a balance', 'one more won overflows the wallet');
SELECT lives_ok(format('SELECT payext.top_up(%s, 1, %L)', :krw_b, 'tap-krw-b'), 'another KRW wallet gets 1 (the system account''s journal sum reaches the smallest bigint)');
SELECT lives_ok(format('SELECT payext.top_up(%s, 1, %L)', :krw_b, 'tap-krw-b-2'), 'and one more: the system account stores no balance to overflow');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 1)', :krw_b, :krw_a), 'PY106', 'the transfer would overflow a balance', 'a transfer that would overflow the payee');
SELECT is(payext.balance(:krw_a), 9223372036854775807::bigint, 'the full wallet kept its balance');

---------------------------------------------------------------------------
-- PY107 idempotency conflicts
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.top_up(%s, 9999, %L)', :alice, 'tap-bank-1'), 'PY107', 'reference "tap-bank-1" was already used for a different top-up', 'same external_ref, other amount');
SELECT isnt(payext.top_up(:bob, 10000, 'tap-bank-1'), payext.top_up(:alice, 10000, 'tap-bank-1'),
            'same external_ref, other wallet: references belong to their account, each its own transfer');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 2000, %L)', :alice, 'tap-cash-1'), 'PY107', 'reference "tap-cash-1" was already used for a different withdrawal', 'same withdrawal ref, other amount');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 1000, %L)', :bob, :alice, 'tap-t-1'), 'PY107', 'reference "tap-t-1" was already used for a different transfer', 'same transfer reference, other direction');

---------------------------------------------------------------------------
-- PY108 close a non-empty account
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.close_account(%s)', :alice), 'PY108', format('account %s still holds money', :alice), 'an account with money cannot be closed');
SELECT is((SELECT status FROM payext.account WHERE id = :alice), 'active', 'and stays active');

---------------------------------------------------------------------------
-- PY109 the journal is append-only (even for a superuser)
---------------------------------------------------------------------------
SELECT throws_ok(format('UPDATE payext.transfer SET amount = amount + 1 WHERE id = %s', :t_top), 'PY109', 'the journal is append-only', 'UPDATE on the journal');
SELECT throws_ok(format('DELETE FROM payext.transfer WHERE id = %s', :t_top), 'PY109', 'the journal is append-only', 'DELETE on the journal');
SELECT throws_ok('TRUNCATE payext.transfer CASCADE', 'PY109', 'the journal is append-only', 'TRUNCATE on the journal');

---------------------------------------------------------------------------
-- PY110 transfer to self, PY111 system accounts
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :alice, :alice), 'PY110', format('cannot transfer from account %s to itself', :alice), 'a transfer to the same account');
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, %L)', :cny_system, 'tap-sys'), 'PY111', format('account %s is a system account', :cny_system), 'top_up into the system account');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 100, %L)', :cny_system, 'tap-sys'), 'PY111', format('account %s is a system account', :cny_system), 'withdraw from the system account');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :cny_system, :alice), 'PY111', format('account %s is a system account', :cny_system), 'transfer from the system account');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 100)', :alice, :cny_system), 'PY111', format('account %s is a system account', :cny_system), 'transfer to the system account');
SELECT throws_ok(format('SELECT payext.freeze(%s)', :cny_system), 'PY111', format('account %s is a system account', :cny_system), 'freeze the system account');
SELECT throws_ok(format('SELECT payext.close_account(%s)', :cny_system), 'PY111', format('account %s is a system account', :cny_system), 'close the system account');

---------------------------------------------------------------------------
-- The ledger is consistent after all of the above
---------------------------------------------------------------------------
SELECT results_eq('SELECT check_name, ok FROM payext.verify_ledger()',
  $$VALUES ('balances_match_journal', true), ('money_conserved', true),
           ('no_negative_balances', true), ('journal_intact', true),
           ('payments_match_journal', true), ('codes_paid_once', true),
           ('parking_matches_journal', true)$$,
  'verify_ledger: every check passes');
SELECT is((SELECT count(*)::int FROM payext.transfer WHERE reference LIKE 'tap-%' AND reference <> ALL (ARRAY['tap-bank-1', 'tap-cash-1', 'tap-t-1', 'tap-payout-1', 'tap-cash-all', 'tap-bank-2', 'tap-bank-bob', 'tap-krw-max', 'tap-krw-b', 'tap-krw-b-2'])),
          0, 'no refused call left a journal row');

-- The last line of defence below the C checks.
SELECT throws_ok(format('UPDATE payext.account SET balance = -1 WHERE id = %s', :bob), '23514', NULL,
                 'the table itself refuses a negative wallet balance');

-- verify_ledger() notices a journal altered behind the triggers' back.
ALTER TABLE payext.transfer DISABLE TRIGGER transfer_append_only;
UPDATE payext.transfer SET amount = amount + 1 WHERE id = :t_tr;
ALTER TABLE payext.transfer ENABLE TRIGGER transfer_append_only;
SELECT results_eq('SELECT check_name, ok FROM payext.verify_ledger()',
  $$VALUES ('balances_match_journal', false), ('money_conserved', true),
           ('no_negative_balances', true), ('journal_intact', false),
           ('payments_match_journal', true), ('codes_paid_once', true),
           ('parking_matches_journal', true)$$,
  'verify_ledger: an altered amount breaks balances_match_journal and journal_intact');
SELECT matches((SELECT detail FROM payext.verify_ledger() WHERE check_name = 'journal_intact'),
               format('^1 transfer\(s\) altered, e\.g\. %s$', :t_tr),
               'verify_ledger names the altered transfer');

SELECT * FROM finish();
ROLLBACK;
