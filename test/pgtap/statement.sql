-- statement.sql: the arithmetic of merchant_statement and balance_at
-- (DESIGN.md, "Merchants' reconciliation and events").
--
-- Proves, over 60 charges of amounts from a fixed pseudo-random sequence,
-- 20 partial refunds, a reversal, a settlement and 10 charges after it:
--   - each line's balance_after is the one before plus its amount, the
--     first the opening balance plus its amount, the last the merchant's
--     balance now (balance() and balance_at(infinity) alike);
--   - a kind's filter keeps exactly that kind's lines, with the same
--     amounts and balances as in the whole statement;
--   - the settlement pays out exactly what the lines before it brought in;
--   - every line is a journal row of the merchant, once, and every journal
--     row of the merchant is a line;
--   - balance_at counts the transfers of transactions that started before
--     the instant: in this one transaction, at now() none, after it all.
-- Everything runs in one transaction that is rolled back (so every
-- transfer has the same created_at, and lines are ordered by id).
BEGIN;
SELECT plan(12);

SELECT payext.open_merchant('gh_tap_stmt', 'Statement Shop') AS m \gset
CREATE TEMP TABLE tap_wallet AS
SELECT k, payext.open_wallet('tap_stmt_' || k) AS id FROM generate_series(1, 6) k;
SELECT count(payext.top_up(id, 1000000, 'tap-stmt-' || k)) FROM tap_wallet;
-- 60 charges, amounts 1..9 999 from a fixed sequence.
SELECT count(payext.charge(:m, payext.request_payment(w.id), 1 + (g * 7919) % 9999, 'tap-o-' || g))
  FROM generate_series(1, 60) g JOIN tap_wallet w ON w.k = 1 + g % 6;
-- 20 partial refunds, and one order reversed.
SELECT count(payext.refund(:m, 'tap-o-' || g, 1 + (g * 7919) % 9999 / 3, 'tap-r-' || g))
  FROM generate_series(1, 20) g;
SELECT payext.reverse_charge(:m, 'tap-o-30') IS NOT NULL AS reversed;
CALL payext.merchant_settle(:m, 'tap-payout');
SELECT count(payext.charge(:m, payext.request_payment(w.id), 100 * g, 'tap-late-' || g))
  FROM generate_series(1, 10) g JOIN tap_wallet w ON w.k = 1 + g % 6;

CREATE TEMP TABLE tap_lines AS
SELECT row_number() OVER (ORDER BY created_at, transfer_id) AS n, *
  FROM payext.merchant_statement(:m, '-infinity', 'infinity');

SELECT is((SELECT count(*) FROM tap_lines WHERE n > 1 AND balance_after <>
             (SELECT p.balance_after FROM tap_lines p WHERE p.n = tap_lines.n - 1) + amount),
          0::bigint, 'each line''s balance is the one before plus its amount');
SELECT is((SELECT balance_after - amount FROM tap_lines WHERE n = 1),
          payext.balance_at(:m, '-infinity'), 'the first line starts from the opening balance');
SELECT is((SELECT balance_after FROM tap_lines ORDER BY n DESC LIMIT 1), payext.balance(:m),
          'the last line''s balance is the merchant''s balance');
SELECT is(payext.balance_at(:m, 'infinity'), payext.balance(:m),
          'balance_at(infinity) is the balance');
SELECT is((SELECT count(*) FROM tap_lines), 60 + 20 + 1 + 1 + 10::bigint,
          'a line per charge, refund (the reversal''s included) and settlement');

SELECT set_eq(
  $$SELECT transfer_id, amount, balance_after FROM payext.merchant_statement(
      (SELECT id FROM payext.account WHERE public_service_id = 'gh_tap_stmt'), '-infinity', 'infinity', 'charge')$$,
  $$SELECT transfer_id, amount, balance_after FROM tap_lines WHERE kind = 'charge'$$,
  'the charge filter keeps the charges, with their balances');
SELECT set_eq(
  $$SELECT transfer_id, amount, balance_after FROM payext.merchant_statement(
      (SELECT id FROM payext.account WHERE public_service_id = 'gh_tap_stmt'), '-infinity', 'infinity', 'refund')$$,
  $$SELECT transfer_id, amount, balance_after FROM tap_lines WHERE kind = 'refund'$$,
  'the refund filter keeps the refunds, the reversal''s included');
SELECT is((SELECT refund_ref FROM tap_lines WHERE kind = 'refund' AND order_ref = 'tap-o-30'
            ORDER BY n DESC LIMIT 1), 'reversal:tap-o-30', 'the reversal is a refund of what was left');

SELECT is((SELECT -amount FROM tap_lines WHERE kind = 'settlement'),
          (SELECT sum(l.amount) FROM tap_lines l
            WHERE l.n < (SELECT s.n FROM tap_lines s WHERE s.kind = 'settlement'))::bigint,
          'the settlement pays out what the lines before it brought in');

SELECT set_eq(
  $$SELECT transfer_id FROM tap_lines$$,
  format($$SELECT id FROM payext.transfer WHERE %s IN (debit_account, credit_account)$$, :m),
  'the lines are the merchant''s journal rows, each once');

SELECT is(payext.balance_at(:m, now()), 0::bigint,
          'at this transaction''s start, none of its transfers counts');
SELECT is(payext.balance_at(:m, now() + interval '1 microsecond'), payext.balance(:m),
          'just after it, all of them');

SELECT * FROM finish();
ROLLBACK;
