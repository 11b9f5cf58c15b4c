-- holds.sql: the arithmetic of holds and their captures, and who may use
-- them (DESIGN.md, "Holds (pre-authorisation)"; src/holds.c).
--
-- Proves:
--   - partial captures against one hold: after each step the hold's
--     captured, holding and state (payext.hold), the wallet's balance and
--     available_balance, and the merchant's balance are exactly what the
--     captures so far say; a capture retried with its capture_ref answers
--     its transfer and moves nothing; a refused one moves nothing;
--   - a capture equal to the remainder closes the hold even with
--     final => false; final => true with less than the remainder releases
--     the rest; each capture is a 'capture' transfer from the wallet to the
--     merchant and a row of hold_capture, adding up to captured;
--   - two holds on one wallet: available_balance is the balance less both
--     remainders (the holding column adds up to the difference), a capture
--     of one and a void of the other move it as they should; a void answers
--     what it released, again 0;
--   - available_balance of a wallet without holds, and of a merchant
--     account, is its balance; new holds, charges and withdrawals are
--     checked against the available balance (PY104);
--   - an expired hold holds nothing and cannot be captured (PY602); every
--     other refusal has its SQLSTATE: PY601 another merchant's or an
--     unknown hold, PY603 voided, PY604 captured, PY605 above the
--     remainder, PY606 expires_in out of bounds, PY607 a capture_ref again
--     for another capture;
--   - verify_ledger() has its holds' checks, and they pass;
--   - an app role reads available_balance() exactly where it may read
--     balance() (its users' wallets; 42501 for merchants' and system
--     accounts) and cannot authorize, capture or void (42501);
--   - a merchant role mapped to one merchant authorizes, captures, voids
--     and lists holds for it through merchant_authorize, merchant_capture,
--     merchant_void and merchant_holds, gets 42501 for another merchant
--     (PY601 for another's hold under its own), and cannot call authorize,
--     capture_hold or void_hold directly (42501).
-- Expiry is shown by moving a hold's expires_at into the past (as
-- superuser): inside one transaction now() does not advance.
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(78);
SET LOCAL client_min_messages = warning;

-- Runs q as role r and throws its effects away: 'ok' or the SQLSTATE.
CREATE FUNCTION pg_temp.state_as(r text, q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    EXECUTE q;
    RAISE EXCEPTION USING ERRCODE = 'TAPOK', MESSAGE = 'undo';
  EXCEPTION WHEN OTHERS THEN
    RETURN CASE WHEN SQLSTATE = 'TAPOK' THEN 'ok' ELSE SQLSTATE END;
  END;
END
$$;

-- One step of a hold's story: the hold (payext.hold), its wallet and its
-- merchant.
CREATE FUNCTION pg_temp.step(p_hold bigint)
RETURNS TABLE (captured bigint, holding bigint, state text, balance bigint, available bigint,
               merchant_balance bigint)
LANGUAGE sql AS $$
  SELECT h.captured, h.holding, h.state, payext.balance(h.wallet),
         payext.available_balance(h.wallet), payext.balance(h.merchant)
    FROM payext.hold h WHERE h.id = p_hold
$$;

-- The merchant procedures, returning their INOUT results.
CREATE FUNCTION pg_temp.m_authorize(m bigint, code text, amount bigint, ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE h bigint;
BEGIN
  CALL payext.merchant_authorize(m, code, amount, ref, '1 day', h);
  RETURN h;
END
$$;
CREATE FUNCTION pg_temp.m_capture(m bigint, h bigint, amount bigint, ref text, final boolean)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE t bigint;
BEGIN
  CALL payext.merchant_capture(m, h, amount, ref, final, t);
  RETURN t;
END
$$;
CREATE FUNCTION pg_temp.m_void(m bigint, h bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
  CALL payext.merchant_void(m, h, r);
  RETURN r;
END
$$;

SELECT payext.open_wallet('tap_h_guest') AS w,
       payext.open_wallet('tap_h_other') AS w2,
       payext.open_merchant('gh_tap_h_hotel', 'TAP Hotel') AS hotel,
       payext.open_merchant('gh_tap_h_cars', 'TAP Car Hire') AS cars
\gset
SELECT payext.top_up(:w, 100000, 'tap-h-bank-1') > 0 AS t1,
       payext.top_up(:w2, 5000, 'tap-h-bank-2') > 0 AS t2
\gset
SELECT id AS sys_cny FROM payext.account WHERE kind = 'system' AND currency = 'CNY' \gset

---------------------------------------------------------------------------
-- One hold, captured in parts; the last part is the remainder
---------------------------------------------------------------------------
SELECT payext.request_payment(:w) AS c1 \gset
SELECT payext.authorize(:hotel, :'c1', 10000, 'tap-h-room-1') AS h1 \gset
SELECT cmp_ok(:h1::bigint, '>', 0::bigint, 'authorize returns the hold''s id');
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (0::bigint, 10000::bigint, 'open', 100000::bigint, 90000::bigint, 0::bigint)$$,
                  'a hold of 10000: the balance stays, the available balance drops, the merchant has nothing');
SELECT is(payext.authorize(:hotel, :'c1', 10000, 'tap-h-room-1'), :h1::bigint,
          'the same code, amount and order again: the same hold');

SELECT payext.capture_hold(:hotel, :h1, 2500, 'tap-h-cap-1', final => false) AS t_c1 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (2500::bigint, 7500::bigint, 'open', 97500::bigint, 90000::bigint, 2500::bigint)$$,
                  'a partial capture of 2500: captured 2500, holding 7500, the money at the merchant, available unchanged');
SELECT results_eq(format('SELECT kind, debit_account, credit_account, amount, reference FROM payext.transfer WHERE id = %s', :t_c1),
                  format('VALUES (''capture''::text, %s::bigint, %s::bigint, 2500::bigint, ''tap-h-cap-1''::text)', :w, :hotel),
                  'the capture is a ''capture'' transfer from the wallet to the merchant under its capture_ref');

SELECT payext.capture_hold(:hotel, :h1, 1000, 'tap-h-cap-2', final => false) AS t_c2 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (3500::bigint, 6500::bigint, 'open', 96500::bigint, 90000::bigint, 3500::bigint)$$,
                  'another partial capture of 1000: captured 3500, holding 6500');
SELECT is(payext.capture_hold(:hotel, :h1, 1000, 'tap-h-cap-2', final => false), :t_c2::bigint,
          'the capture again with its capture_ref: its transfer');
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (3500::bigint, 6500::bigint, 'open', 96500::bigint, 90000::bigint, 3500::bigint)$$,
                  '... and nothing moved');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 6501, ''tap-h-cap-3'', false)', :hotel, :h1),
                 'PY605', NULL, 'a capture above the remainder is PY605');
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (3500::bigint, 6500::bigint, 'open', 96500::bigint, 90000::bigint, 3500::bigint)$$,
                  '... and moves nothing');

SELECT payext.capture_hold(:hotel, :h1, 6500, 'tap-h-cap-3', final => false) AS t_c3 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h1),
                  $$VALUES (10000::bigint, 0::bigint, 'captured', 90000::bigint, 90000::bigint, 10000::bigint)$$,
                  'a capture of exactly the remainder, final => false: the hold is captured and holds nothing');
SELECT ok((SELECT closed_at IS NOT NULL FROM payext.hold WHERE id = :h1), '... and closed');
SELECT results_eq(format('SELECT count(*), sum(amount) FROM payext.hold_capture WHERE hold = %s', :h1),
                  $$VALUES (3::bigint, 10000::numeric)$$,
                  'its three captures are rows of hold_capture adding up to its captured');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-4'')', :hotel, :h1),
                 'PY604', NULL, 'a capture of a captured hold is PY604');
SELECT throws_ok(format('SELECT payext.void_hold(%s, %s)', :hotel, :h1),
                 'PY604', NULL, 'a void of a captured hold is PY604');

---------------------------------------------------------------------------
-- final => true with less than the remainder releases the rest
---------------------------------------------------------------------------
SELECT payext.authorize(:hotel, payext.request_payment(:w), 8000, 'tap-h-room-2') AS h2 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h2),
                  $$VALUES (0::bigint, 8000::bigint, 'open', 90000::bigint, 82000::bigint, 10000::bigint)$$,
                  'a second hold of 8000');
SELECT payext.capture_hold(:hotel, :h2, 3000, 'tap-h-cap-5', final => true) AS t_c5 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h2),
                  $$VALUES (3000::bigint, 0::bigint, 'captured', 87000::bigint, 87000::bigint, 13000::bigint)$$,
                  'a final capture of 3000: captured, the other 5000 released');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-6'')', :hotel, :h2),
                 'PY604', NULL, 'after a final capture nothing more can be captured (PY604)');
SELECT is(payext.capture_hold(:hotel, :h2, 3000, 'tap-h-cap-5', final => true), :t_c5::bigint,
          'the final capture again with its capture_ref: its transfer, though the hold is closed');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 2999, ''tap-h-cap-5'')', :hotel, :h2),
                 'PY607', NULL, 'a capture_ref again for another amount is PY607');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 3000, ''tap-h-cap-5'')', :hotel, :h1),
                 'PY607', NULL, 'a capture_ref again for another hold is PY607');
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s), payext.balance(%s)', :w, :w, :hotel),
                  $$VALUES (87000::bigint, 87000::bigint, 13000::bigint)$$,
                  '... and the refusals moved nothing');

---------------------------------------------------------------------------
-- Two holds on one wallet
---------------------------------------------------------------------------
SELECT payext.authorize(:hotel, payext.request_payment(:w), 5000, 'tap-h-room-3') AS h3 \gset
SELECT payext.authorize(:cars, payext.request_payment(:w), 7000, 'tap-h-hire-1') AS h4 \gset
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s)', :w, :w),
                  $$VALUES (87000::bigint, 75000::bigint)$$,
                  'two holds, of 5000 and 7000, at two merchants: available is the balance less both');
SELECT is((SELECT sum(holding) FROM payext.hold WHERE wallet = :w),
          payext.balance(:w) - payext.available_balance(:w)::numeric,
          'the holds'' holding adds up to the balance less the available balance');
SELECT payext.capture_hold(:hotel, :h3, 2000, 'tap-h-cap-7', final => false) AS t_c7 \gset
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s), '
                         '(SELECT holding FROM payext.hold WHERE id = %s), (SELECT holding FROM payext.hold WHERE id = %s)',
                         :w, :w, :h3, :h4),
                  $$VALUES (85000::bigint, 75000::bigint, 3000::bigint, 7000::bigint)$$,
                  'a partial capture of 2000 from the first: the balance drops, the available balance does not');
SELECT is(payext.void_hold(:cars, :h4), 7000::bigint, 'a void of the second answers what it released, 7000');
SELECT is(payext.void_hold(:cars, :h4), 0::bigint, 'a void again releases nothing, 0');
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s), h.state, h.holding, h.captured '
                         'FROM payext.hold h WHERE h.id = %s', :w, :w, :h4),
                  $$VALUES (85000::bigint, 82000::bigint, 'voided', 0::bigint, 0::bigint)$$,
                  'after the void only the first hold''s 3000 is held');
SELECT is(payext.balance(:cars), 0::bigint, 'the voided hold paid its merchant nothing');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-8'')', :cars, :h4),
                 'PY603', NULL, 'a capture of a voided hold is PY603');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-9'')', :cars, :h3),
                 'PY601', NULL, 'a capture of another merchant''s hold is PY601');
SELECT throws_ok(format('SELECT payext.void_hold(%s, %s)', :cars, :h3),
                 'PY601', NULL, 'a void of another merchant''s hold is PY601');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-10'')', :hotel, :h3::bigint + 1000000),
                 'PY601', NULL, 'a capture of a hold that does not exist is PY601 too');
SELECT results_eq(format('SELECT captured, holding, state FROM payext.hold WHERE id = %s', :h3),
                  $$VALUES (2000::bigint, 3000::bigint, 'open')$$,
                  '... and the first hold is as it was');

-- What may be taken is the available balance, 82000.
SELECT throws_ok(format('SELECT payext.authorize(%s, payext.request_payment(%s), 82001, ''tap-h-room-4'')', :hotel, :w),
                 'PY104', NULL, 'a new hold above the available balance is PY104');
SELECT throws_ok(format('SELECT payext.charge(%s, payext.request_payment(%s), 82001, ''tap-h-order-1'')', :cars, :w),
                 'PY104', NULL, 'a charge above the available balance is PY104');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 82001, ''tap-h-cashout-1'')', :w),
                 'PY104', NULL, 'a withdrawal above the available balance is PY104');
SELECT cmp_ok(payext.withdraw(:w, 82000, 'tap-h-cashout-2'), '>', 0::bigint,
              'a withdrawal of exactly the available balance goes through');
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s)', :w, :w),
                  $$VALUES (3000::bigint, 0::bigint)$$,
                  '... leaving the wallet exactly what the open hold reserves');
SELECT payext.capture_hold(:hotel, :h3, 3000, 'tap-h-cap-11', final => false) AS t_c11 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h3),
                  $$VALUES (5000::bigint, 0::bigint, 'captured', 0::bigint, 0::bigint, 18000::bigint)$$,
                  'and the hold still takes all it reserved');

---------------------------------------------------------------------------
-- Expiry
---------------------------------------------------------------------------
SELECT payext.top_up(:w, 10000, 'tap-h-bank-3') > 0 AS t3 \gset
SELECT payext.authorize(:hotel, payext.request_payment(:w), 4000, 'tap-h-room-5', '1 second') AS h5 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h5),
                  $$VALUES (0::bigint, 4000::bigint, 'open', 10000::bigint, 6000::bigint, 18000::bigint)$$,
                  'a hold of one second holds until it expires');
UPDATE payext.hold_entry SET expires_at = now() - interval '1 second' WHERE id = :h5;
SELECT results_eq(format('SELECT * FROM pg_temp.step(%s)', :h5),
                  $$VALUES (0::bigint, 0::bigint, 'expired', 10000::bigint, 10000::bigint, 18000::bigint)$$,
                  'past its expiry it holds nothing and shows as expired');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 1, ''tap-h-cap-12'')', :hotel, :h5),
                 'PY602', NULL, 'a capture of an expired hold is PY602');
SELECT is(payext.void_hold(:hotel, :h5), 0::bigint, 'a void of an expired hold releases nothing');

---------------------------------------------------------------------------
-- Without holds, and bad expiries
---------------------------------------------------------------------------
SELECT results_eq(format('SELECT payext.available_balance(%s), payext.balance(%s)', :w2, :w2),
                  $$VALUES (5000::bigint, 5000::bigint)$$,
                  'a wallet without holds: available_balance is its balance');
SELECT is(payext.available_balance(:hotel), payext.balance(:hotel),
          'a merchant account: available_balance is its balance');
SELECT is(payext.available_balance(:hotel), 18000::bigint, '... which is what it captured');
SELECT throws_ok(format('SELECT payext.authorize(%s, payext.request_payment(%s), 100, ''tap-h-x1'', ''0 seconds'')', :hotel, :w2),
                 'PY606', NULL, 'expires_in of 0 seconds is PY606');
SELECT throws_ok(format('SELECT payext.authorize(%s, payext.request_payment(%s), 100, ''tap-h-x2'', ''31 days'')', :hotel, :w2),
                 'PY606', NULL, 'expires_in of 31 days is PY606');
SELECT throws_ok(format('SELECT payext.authorize(%s, payext.request_payment(%s), 100, ''tap-h-x3'', ''-1 hour'')', :hotel, :w2),
                 'PY606', NULL, 'a negative expires_in is PY606');
SELECT lives_ok(format('SELECT payext.authorize(%s, payext.request_payment(%s), 100, ''tap-h-x4'', ''30 days'')', :hotel, :w2),
                'expires_in of exactly 30 days is a hold');

SELECT results_eq($$SELECT check_name, ok FROM payext.verify_ledger()
                     WHERE check_name IN ('holds_match_journal', 'available_not_negative') ORDER BY check_name$$,
                  $$VALUES ('available_not_negative', true), ('holds_match_journal', true)$$,
                  'verify_ledger() has the holds'' checks, and they pass');

---------------------------------------------------------------------------
-- An app role
---------------------------------------------------------------------------
CREATE ROLE tap_h_app NOLOGIN;
CREATE ROLE tap_h_shop NOLOGIN;
SELECT payext.grant_capability('app', 'tap_h_app') IS NULL AS x \gset
SELECT payext.grant_capability('merchant', 'tap_h_shop') IS NULL AS x \gset
SELECT payext.map_merchant_role('tap_h_shop', :hotel) IS NULL AS x \gset
SELECT payext.request_payment(:w) AS c_app \gset
SELECT payext.authorize(:hotel, payext.request_payment(:w), 1000, 'tap-h-room-6') AS h6 \gset
SELECT payext.available_balance(:w) AS avail_w \gset

SET LOCAL ROLE tap_h_app;
SELECT is(payext.available_balance(:w), :avail_w::bigint, 'app: available_balance of a wallet');
-- A review found available_balance() SECURITY DEFINER: the access check it
-- shares with balance() judged the extension's owner, and every role that
-- could call it read any account's.  These four failed until it was made
-- SECURITY INVOKER, as balance() is.
SELECT throws_ok(format('SELECT payext.available_balance(%s)', :hotel), '42501', NULL,
                 'app: available_balance of a merchant account is 42501');
SELECT throws_ok(format('SELECT payext.available_balance(%s)', :sys_cny), '42501', NULL,
                 'app: available_balance of a system account is 42501');
SELECT throws_ok(format('SELECT payext.authorize(%s, %L, 100, ''tap-h-app-1'')', :hotel, :'c_app'), '42501', NULL,
                 'app: authorize is 42501');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 100, ''tap-h-app-2'')', :hotel, :h6), '42501', NULL,
                 'app: capture_hold is 42501');
SELECT throws_ok(format('SELECT payext.void_hold(%s, %s)', :hotel, :h6), '42501', NULL,
                 'app: void_hold is 42501');
SELECT throws_ok(format('CALL payext.merchant_authorize(%s, %L, 100, ''tap-h-app-3'')', :hotel, :'c_app'), '42501', NULL,
                 'app: merchant_authorize is 42501');
RESET ROLE;
SELECT is_empty(format($$
  SELECT a.id, a.kind, pg_temp.state_as('tap_h_app', 'SELECT payext.balance(' || a.id || ')') AS balance,
         pg_temp.state_as('tap_h_app', 'SELECT payext.available_balance(' || a.id || ')') AS available
    FROM payext.account a
   WHERE a.id IN (%s, %s, %s, %s, %s, -1)
     AND pg_temp.state_as('tap_h_app', 'SELECT payext.balance(' || a.id || ')')
         <> pg_temp.state_as('tap_h_app', 'SELECT payext.available_balance(' || a.id || ')')
$$, :w, :w2, :hotel, :cars, :sys_cny), 'app: available_balance is refused exactly where balance is');
SELECT results_eq(format('SELECT captured, holding, state FROM payext.hold WHERE id = %s', :h6),
                  $$VALUES (0::bigint, 1000::bigint, 'open')$$,
                  '(the app''s attempts left the hold as it was)');

---------------------------------------------------------------------------
-- A merchant role, mapped to the hotel
---------------------------------------------------------------------------
SELECT payext.request_payment(:w) AS c_m1 \gset
SELECT payext.request_payment(:w) AS c_m2 \gset
SELECT payext.balance(:w) AS bal_w0 \gset

SET LOCAL ROLE tap_h_shop;
SELECT pg_temp.m_authorize(:hotel, :'c_m1', 4000, 'tap-h-till-1') AS hm \gset
SELECT cmp_ok(:hm::bigint, '>', 0::bigint, 'merchant: merchant_authorize for its merchant answers the hold');
SELECT is(pg_temp.m_authorize(:hotel, :'c_m1', 4000, 'tap-h-till-1'), :hm::bigint,
          'merchant: merchant_authorize again: the same hold');
SELECT cmp_ok(pg_temp.m_capture(:hotel, :hm, 1500, 'tap-h-till-cap-1', false), '>', 0::bigint,
              'merchant: merchant_capture of its hold answers the transfer');
SELECT is(pg_temp.m_void(:hotel, :hm), 2500::bigint, 'merchant: merchant_void releases the rest, 2500');
SELECT results_eq(format('SELECT order_ref, amount, captured, state, holding FROM payext.merchant_holds(%s) WHERE hold_id = %s', :hotel, :hm),
                  $$VALUES ('tap-h-till-1'::text, 4000::bigint, 1500::bigint, 'voided'::text, 0::bigint)$$,
                  'merchant: merchant_holds shows its hold as it left it');
SELECT array_agg(hold_id ORDER BY hold_id) AS shop_sees FROM payext.merchant_holds(:hotel) \gset
SELECT throws_ok(format('CALL payext.merchant_authorize(%s, %L, 100, ''tap-h-till-2'')', :cars, :'c_m2'), '42501', NULL,
                 'merchant: merchant_authorize for another merchant is 42501');
SELECT throws_ok(format('CALL payext.merchant_capture(%s, %s, 1, ''tap-h-till-cap-2'')', :cars, :h4), '42501', NULL,
                 'merchant: merchant_capture for another merchant is 42501');
SELECT throws_ok(format('CALL payext.merchant_void(%s, %s)', :cars, :h4), '42501', NULL,
                 'merchant: merchant_void for another merchant is 42501');
SELECT throws_ok(format('SELECT * FROM payext.merchant_holds(%s)', :cars), '42501', NULL,
                 'merchant: merchant_holds of another merchant is 42501');
SELECT throws_ok(format('CALL payext.merchant_capture(%s, %s, 1, ''tap-h-till-cap-3'')', :hotel, :h4), 'PY601', NULL,
                 'merchant: another merchant''s hold under its own merchant is PY601');
SELECT throws_ok(format('SELECT payext.authorize(%s, %L, 100, ''tap-h-till-3'')', :hotel, :'c_m2'), '42501', NULL,
                 'merchant: authorize directly is 42501');
SELECT throws_ok(format('SELECT payext.capture_hold(%s, %s, 100, ''tap-h-till-cap-4'')', :hotel, :h6), '42501', NULL,
                 'merchant: capture_hold directly is 42501');
SELECT throws_ok(format('SELECT payext.void_hold(%s, %s)', :hotel, :h6), '42501', NULL,
                 'merchant: void_hold directly is 42501');
SELECT throws_ok(format('SELECT payext.available_balance(%s)', :w), '42501', NULL,
                 'merchant: available_balance of a customer''s wallet is 42501');
SELECT is(payext.available_balance(:hotel), payext.balance(:hotel),
          'merchant: available_balance of its own account is its balance');
RESET ROLE;
SELECT is(:'shop_sees'::bigint[],
          (SELECT array_agg(id ORDER BY id) FROM payext.hold WHERE merchant = :hotel),
          'merchant: merchant_holds lists exactly its merchant''s holds');
SELECT results_eq(format('SELECT payext.balance(%s), payext.available_balance(%s)', :w, :w),
                  format('VALUES (%s::bigint, %s::bigint)', :bal_w0::bigint - 1500, :bal_w0::bigint - 1500 - 1000),
                  'the merchant''s capture took 1500, its void released the rest; the app''s hold of 1000 still holds');

SELECT * FROM finish();
ROLLBACK;
