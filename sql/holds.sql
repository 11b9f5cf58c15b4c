-- Holds (pre-authorisation): a hotel reserves a deposit with the guest's
-- payment code, takes the exact bill later, and releases the rest.  A
-- hold's money is the wallet's but not spendable; past its expiry it holds
-- nothing, without any job running.

-- Ids in this file's messages start after 20000, whatever ran before it.
SELECT setval('payext.account_id_seq', 20000), setval('payext.transfer_id_seq', 20000),
       setval('payext.hold_id_seq', 20000);

SELECT payext.open_wallet('hold_guest') AS w \gset
SELECT payext.open_merchant('gh_hotel', 'Harbour Hotel') AS hotel \gset
SELECT payext.open_merchant('gh_carhire', 'Car Hire') AS cars \gset
SELECT payext.top_up(:w, 100000, 'hold-bank-1') > 0 AS topped_up;

-- 1. Check-in: 800.00 held for three nights.  The balance stays; what can
-- be spent drops.  Again with the same code and amount: the same hold.
SELECT payext.request_payment(:w) AS c1 \gset
SELECT payext.authorize(:hotel, :'c1', 80000, 'room-101', '3 days') AS h1 \gset
SELECT :h1 = (20001 | (payext.current_partition()::bigint << 56)) AS first_hold_id;
SELECT payext.authorize(:hotel, :'c1', 80000, 'room-101', '3 days') = :h1 AS same_hold;
SELECT payext.balance(:w) AS balance, payext.available_balance(:w) AS available;
SELECT order_ref, amount, captured, state, holding, expires_at - created_at AS lasts
  FROM payext.hold WHERE id = :h1;
-- The same order at another amount, or with another code: refused.
SELECT payext.authorize(:hotel, :'c1', 90000, 'room-101');
\echo :SQLSTATE
-- The code is used up: no charge with it.
SELECT payext.charge(:hotel, :'c1', 100, 'minibar-1');
\echo :SQLSTATE

-- 2. The held money cannot be spent: a charge or a withdrawal beyond the
-- available balance is refused; within it, it goes through.
SELECT payext.request_payment(:w) AS c2 \gset
SELECT payext.charge(:cars, :'c2', 25000, 'hire-1');
\echo :SQLSTATE
SELECT payext.charge(:cars, :'c2', 20000, 'hire-1') > 0 AS charged_within;
SELECT payext.withdraw(:w, 1, 'hold-cashout-1');
\echo :SQLSTATE
SELECT payext.balance(:w) AS balance, payext.available_balance(:w) AS available;
-- A second hold needs available money too.
SELECT payext.request_payment(:w) AS c3 \gset
SELECT payext.authorize(:cars, :'c3', 1, 'hire-deposit');
\echo :SQLSTATE
SELECT state FROM payext.payment_code WHERE code = substr(:'c3', 3, 15)::bigint;

-- 3. Check-out: the first night was captured on the way (not final), the
-- bill is 612.00 in all; the final capture releases the rest.
SELECT payext.capture_hold(:hotel, :h1, 20000, 'room-101-night-1', final => false) AS t1 \gset
SELECT captured, state, holding FROM payext.hold WHERE id = :h1;
SELECT payext.capture_hold(:hotel, :h1, 41200, 'room-101-checkout') AS t2 \gset
SELECT captured, state, holding FROM payext.hold WHERE id = :h1;
SELECT payext.balance(:w) AS balance, payext.available_balance(:w) AS available,
       payext.balance(:hotel) AS hotel;
-- Each capture is a journal transfer and a payment interaction.
SELECT kind, amount, debit_account = :w AS from_guest, credit_account = :hotel AS to_hotel, reference
  FROM payext.transfer WHERE id IN (:t1, :t2) ORDER BY id;
SELECT kind, amount FROM payext.interaction WHERE transfer_id IN (:t1, :t2) ORDER BY transfer_id;
-- A retry of a capture returns its transfer; the reference again for
-- another amount is refused; and nothing more can be captured.
SELECT payext.capture_hold(:hotel, :h1, 41200, 'room-101-checkout') = :t2 AS same_capture;
SELECT payext.capture_hold(:hotel, :h1, 41000, 'room-101-checkout');
\echo :SQLSTATE
SELECT payext.capture_hold(:hotel, :h1, 100, 'room-101-late');
\echo :SQLSTATE
SELECT payext.void_hold(:hotel, :h1);
\echo :SQLSTATE
-- The statement shows captures with the hold's order.
SELECT kind, order_ref, reference, amount
  FROM payext.merchant_statement(:hotel, '-infinity', 'infinity', 'capture');

-- 4. A capture above the remainder, another merchant's hold, a void.
SELECT payext.request_payment(:w) AS c4 \gset
SELECT payext.authorize(:cars, :'c4', 5000, 'hire-2') AS h2 \gset
SELECT payext.capture_hold(:cars, :h2, 5001, 'hire-2-a');
\echo :SQLSTATE
SELECT payext.capture_hold(:hotel, :h2, 100, 'not-mine');
\echo :SQLSTATE
SELECT payext.void_hold(:hotel, :h2);
\echo :SQLSTATE
SELECT payext.capture_hold(:cars, :h2, 1000, 'hire-2-a', final => false) > 0 AS captured_part;
SELECT payext.void_hold(:cars, :h2) AS released;
SELECT payext.void_hold(:cars, :h2) AS released_again;
SELECT payext.capture_hold(:cars, :h2, 100, 'hire-2-b');
\echo :SQLSTATE
SELECT captured, state, holding FROM payext.hold WHERE id = :h2;
-- An unknown hold is the same refusal as another merchant's.
SELECT payext.void_hold(:cars, 424242);
\echo :SQLSTATE

-- 5. Orders are shared by charges and holds: a held order takes no
-- charge and no reversal, a charged or reversed one no hold.
SELECT payext.request_payment(:w) AS c5 \gset
SELECT payext.authorize(:cars, :'c5', 1000, 'hire-3') AS h3 \gset
SELECT payext.request_payment(:w) AS c6 \gset
SELECT payext.charge(:cars, :'c6', 1000, 'hire-3');
\echo :SQLSTATE
SELECT payext.reverse_charge(:cars, 'hire-3');
\echo :SQLSTATE
SELECT payext.authorize(:cars, :'c6', 1000, 'hire-1');
\echo :SQLSTATE
SELECT payext.reverse_charge(:cars, 'hire-4') IS NULL AS closed;
SELECT payext.authorize(:cars, :'c6', 1000, 'hire-4');
\echo :SQLSTATE
-- The code survived every refusal.
SELECT state FROM payext.payment_code WHERE code = substr(:'c6', 3, 15)::bigint;

-- 6. Expiry: a hold of one second holds nothing once it has passed, can
-- no longer be captured, and voids to nothing.
SELECT payext.available_balance(:w) AS available_before;
SELECT payext.authorize(:cars, :'c6', 3000, 'hire-5', '1 second') AS h5 \gset
SELECT payext.available_balance(:w) AS available_held;
SELECT pg_sleep(1.2);
SELECT state, holding FROM payext.hold WHERE id = :h5;
SELECT payext.available_balance(:w) AS available_after;
SELECT payext.capture_hold(:cars, :h5, 100, 'hire-5-a');
\echo :SQLSTATE
SELECT payext.void_hold(:cars, :h5) AS released;
SELECT state FROM payext.hold WHERE id = :h5;

-- 7. Bad input: expiry out of bounds, an entry hold's order name, a frozen
-- wallet (capture refused, naming no wallet).
SELECT payext.request_payment(:w) AS c7 \gset
SELECT payext.authorize(:cars, :'c7', 100, 'hire-6', '0 seconds');
\echo :SQLSTATE
SELECT payext.authorize(:cars, :'c7', 100, 'hire-6', '31 days');
\echo :SQLSTATE
SELECT payext.authorize(:cars, :'c7', 100, 'parking:1');
\echo :SQLSTATE
SELECT payext.authorize(:cars, :'c7', 100, 'hire-6', NULL) > 0 AS default_expiry;
SELECT expires_at - created_at AS lasts FROM payext.hold WHERE order_ref = 'hire-6';
SELECT payext.freeze(:w);
SELECT payext.capture_hold(:cars, :h3, 100, 'hire-3-a');
SELECT payext.unfreeze(:w);
SELECT payext.capture_hold(:cars, :h3, 100, 'hire-3-a') > 0 AS captured_after_unfreeze;

-- Every check holds, the holds' among them.
SELECT check_name, ok FROM payext.verify_ledger() WHERE check_name IN
  ('holds_match_journal', 'available_not_negative', 'payments_match_journal',
   'codes_paid_once', 'balances_match_journal');

-- verify_ledger() catches what would break them (rolled back): a capture
-- the hold does not count, and a live hold above what its wallet holds.
BEGIN;
UPDATE payext.hold_entry SET captured = captured - 100 WHERE id = :h3;
UPDATE payext.hold_entry SET amount = amount + 1000000 WHERE order_ref = 'hire-6';
SELECT check_name, ok, detail FROM payext.verify_holds();
ROLLBACK;
