-- charges.sql: payment codes, charges and refunds (DESIGN.md, "Payment
-- codes and charges", and the invariants).
--
-- Proves:
--   - a code is 18 decimal digits: partition digits 00, 15 digits that are
--     the code's serial under the signing key's permutation (not the serial
--     itself), and a Damm check digit (recomputed here in SQL from the
--     table in src/code_format.c);
--   - every refusal of request_payment, cancel_payment_code, charge, refund
--     and payment_status has its own SQLSTATE and message:
--       PY001 null argument     PY002 non-positive amount  PY101 no such account
--       PY102 frozen            PY103 closed               PY104 insufficient funds
--       PY105 currency mismatch PY111 wrong kind of account
--       PY201 malformed code    PY202 code of another partition PY203 forged code
--       PY204 expired           PY205 cancelled            PY206 already used
--       PY207 over the code's cap  PY208 order conflict    PY209 unknown order
--       PY210 refund over charge   PY211 refund_ref conflict  PY212 bad ttl
--   - a refused charge does not burn the code and moves nothing;
--   - charge is idempotent on (merchant, order_ref), refund on
--     (merchant, refund_ref); payment_status goes paid -> partially_refunded
--     -> refunded;
--   - rotate_signing_key returns increasing ids, new codes are made under
--     the new key, and a code made before the rotation still pays after it;
--   - signing keys are not readable by a non-superuser (42501) and are not
--     registered with pg_extension_config_dump (never dumped), nor are the
--     live codes (an unlogged table).
--
-- How the codes that cannot be obtained from request_payment are made:
--   - PY202: a real code with a partition digit changed AND its check digit
--     recomputed (otherwise the check digit refuses it first, PY201);
--   - PY203: a real code with one of its 15 digits changed and its check
--     digit recomputed: well-formed, but never issued;
--   - PY204: inside one transaction now() does not advance, so a code given
--     ttl 1 second is aged by moving its created_at and expires_at back one
--     second in payment_code (as superuser); expiry is judged against the
--     stored expires_at, which is shown to be created_at + ttl exactly.
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(118);

-- Damm check digit of a string of decimal digits (src/code_format.c).
CREATE FUNCTION pg_temp.damm(digits text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  t integer[] := ARRAY[
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]];
  interim integer := 0;
BEGIN
  FOR i IN 1 .. length(digits) LOOP
    interim := t[interim + 1][substr(digits, i, 1)::integer + 1];
  END LOOP;
  RETURN interim;
END
$$;

-- code with the digit at position pos (1-based) replaced by digit, and the
-- check digit recomputed: well-formed whatever the change.
CREATE FUNCTION pg_temp.respell(code text, pos integer, digit integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT body || pg_temp.damm(body)
    FROM (SELECT overlay(left(code, 17) PLACING digit::text FROM pos FOR 1) AS body) b
$$;

-- The same digit changed, the check digit kept: a typo.
CREATE FUNCTION pg_temp.typo(code text, pos integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT overlay(code PLACING ((substr(code, pos, 1)::integer + 1) % 10)::text FROM pos FOR 1)
$$;

CREATE FUNCTION pg_temp.code_state(c text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT state FROM payext.payment_code
   WHERE code = substr(c, 3, 15)::bigint
$$;

SELECT payext.open_wallet('tap-ch-alice') AS alice,
       payext.open_wallet('tap-ch-bob') AS bob,
       payext.open_wallet('tap-ch-usd', 'USD') AS usd,
       payext.open_wallet('tap-ch-frozen') AS frozen,
       payext.open_wallet('tap-ch-closed') AS closed,
       payext.open_wallet('tap-ch-closing') AS closing,
       payext.open_merchant('tap-ch-shop', 'TAP Shop') AS shop,
       payext.open_merchant('tap-ch-cafe', 'TAP Cafe') AS cafe
\gset
SELECT payext.top_up(:alice, 10000, 'tap-ch-bank-alice') > 0 AS t1,
       payext.top_up(:bob, 10000, 'tap-ch-bank-bob') > 0 AS t2,
       payext.top_up(:usd, 10000, 'tap-ch-bank-usd') > 0 AS t3
\gset
SELECT payext.freeze(:frozen);
SELECT payext.close_account(:closed);

---------------------------------------------------------------------------
-- The code's shape
---------------------------------------------------------------------------
SELECT payext.request_payment(wallet => :alice) AS c1 \gset
SELECT (SELECT max(id) FROM payext.signing_key) AS key1 \gset
SELECT matches(:'c1'::text, '^[0-9]{18}$', 'a payment code is 18 decimal digits');
SELECT is(left(:'c1', 2), '00', 'its first two digits are the partition, 00 on a single node');
SELECT isnt((SELECT code FROM payext.payment_code WHERE code = substr(:'c1', 3, 15)::bigint),
            (SELECT serial FROM payext.payment_code WHERE code = substr(:'c1', 3, 15)::bigint),
            'its next 15 digits are not its serial');
SELECT is(pg_temp.damm(left(:'c1', 17))::text, right(:'c1', 1),
          'its last digit is the Damm check digit of the 17 before it');
SELECT is(pg_temp.code_state(:'c1'), 'issued', 'a new code is issued');
SELECT is((SELECT expires_at - created_at FROM payext.payment_code
            WHERE code = substr(:'c1', 3, 15)::bigint),
          interval '60 seconds', 'by default a code is valid for payext.code_ttl, 60 s');
SELECT isnt(payext.request_payment(:alice), :'c1', 'every request gets a new code');

---------------------------------------------------------------------------
-- A charge, its replay, refunds and payment_status
---------------------------------------------------------------------------
SELECT payext.charge(merchant => :shop, code => :'c1', amount => 2000, order_ref => 'tap-o1') AS t_o1 \gset
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :shop),
                  $$VALUES (8000::bigint, 2000::bigint)$$, 'a charge moves the amount from the wallet to the merchant');
SELECT is(pg_temp.code_state(:'c1'), 'used', 'the code is used');
SELECT is(payext.charge(:shop, :'c1', 2000, 'tap-o1'), :t_o1::bigint,
          'the same charge again returns the same transfer');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :shop),
                  $$VALUES (8000::bigint, 2000::bigint)$$, '... and moves nothing');
SELECT results_eq($$SELECT transfer_id, amount, refunded_amount, state FROM payext.payment_status(merchant => $$ || :shop || $$, order_ref => 'tap-o1')$$,
                  format('VALUES (%s::bigint, 2000::bigint, 0::bigint, %L)', :t_o1, 'paid'),
                  'payment_status of a fresh charge: paid');
SELECT payext.refund(merchant => :shop, order_ref => 'tap-o1', amount => 500, refund_ref => 'tap-r1') AS t_r1 \gset
SELECT is(payext.refund(:shop, 'tap-o1', 500, 'tap-r1'), :t_r1::bigint,
          'the same refund again returns the same transfer');
SELECT results_eq(format('SELECT refunded_amount, state FROM payext.payment_status(%s, %L)', :shop, 'tap-o1'),
                  $$VALUES (500::bigint, 'partially_refunded')$$, 'after a partial refund: partially_refunded');
SELECT lives_ok(format('SELECT payext.refund(%s, %L, 1500, %L)', :shop, 'tap-o1', 'tap-r2'), 'the rest is refunded');
SELECT results_eq(format('SELECT refunded_amount, state FROM payext.payment_status(%s, %L)', :shop, 'tap-o1'),
                  $$VALUES (2000::bigint, 'refunded')$$, 'after refunds of the whole charge: refunded');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :shop),
                  $$VALUES (10000::bigint, 0::bigint)$$, 'the refunds moved the money back');

---------------------------------------------------------------------------
-- PY001: null arguments
---------------------------------------------------------------------------
SELECT payext.request_payment(:alice) AS c2 \gset
SELECT throws_ok('SELECT payext.request_payment(NULL)', 'PY001', 'argument "wallet" must not be null', 'request_payment(NULL)');
SELECT lives_ok(format('SELECT payext.request_payment(%s, NULL, NULL)', :alice), 'request_payment: max_amount and ttl may be NULL (defaults)');
SELECT throws_ok('SELECT payext.cancel_payment_code(NULL)', 'PY001', 'argument "code" must not be null', 'cancel_payment_code(NULL)');
SELECT throws_ok(format('SELECT payext.charge(NULL, %L, 100, %L)', :'c2', 'tap-n'), 'PY001', 'argument "merchant" must not be null', 'charge(NULL, ...)');
SELECT throws_ok(format('SELECT payext.charge(%s, NULL, 100, %L)', :shop, 'tap-n'), 'PY001', 'argument "code" must not be null', 'charge(..., NULL code, ...)');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, NULL, %L)', :shop, :'c2', 'tap-n'), 'PY001', 'argument "amount" must not be null', 'charge(..., NULL amount, ...)');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, NULL)', :shop, :'c2'), 'PY001', 'argument "order_ref" must not be null', 'charge(..., NULL order_ref)');
SELECT throws_ok($$SELECT payext.refund(NULL, 'tap-o1', 100, 'tap-rn')$$, 'PY001', 'argument "merchant" must not be null', 'refund(NULL, ...)');
SELECT throws_ok(format('SELECT payext.refund(%s, NULL, 100, %L)', :shop, 'tap-rn'), 'PY001', 'argument "order_ref" must not be null', 'refund(..., NULL order_ref, ...)');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, NULL, %L)', :shop, 'tap-o1', 'tap-rn'), 'PY001', 'argument "amount" must not be null', 'refund(..., NULL amount, ...)');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 100, NULL)', :shop, 'tap-o1'), 'PY001', 'argument "refund_ref" must not be null', 'refund(..., NULL refund_ref)');
SELECT throws_ok($$SELECT * FROM payext.payment_status(NULL, 'tap-o1')$$, 'PY001', 'argument "merchant" must not be null', 'payment_status(NULL, ...)');
SELECT throws_ok(format('SELECT * FROM payext.payment_status(%s, NULL)', :shop), 'PY001', 'argument "order_ref" must not be null', 'payment_status(..., NULL)');

---------------------------------------------------------------------------
-- PY002: amounts must be positive
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.request_payment(%s, 0)', :alice), 'PY002', 'amount must be positive', 'request_payment with max_amount 0');
SELECT throws_ok(format('SELECT payext.request_payment(%s, -100)', :alice), 'PY002', 'amount must be positive', 'request_payment with max_amount -100');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 0, %L)', :shop, :'c2', 'tap-z'), 'PY002', 'amount must be positive', 'a charge of 0');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, -1, %L)', :shop, :'c2', 'tap-z'), 'PY002', 'amount must be positive', 'a charge of -1');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 0, %L)', :shop, 'tap-o1', 'tap-rz'), 'PY002', 'amount must be positive', 'a refund of 0');

---------------------------------------------------------------------------
-- PY101 missing account, PY111 wrong kind of account
---------------------------------------------------------------------------
SELECT throws_ok('SELECT payext.request_payment(999999999)', 'PY101', 'account 999999999 does not exist', 'request_payment for a missing wallet');
SELECT throws_ok(format('SELECT payext.charge(999999999, %L, 100, %L)', :'c2', 'tap-x'), 'PY101', 'account 999999999 does not exist', 'a charge by a missing merchant');
SELECT throws_ok(format('SELECT payext.request_payment(%s)', :shop), 'PY111', format('account %s is not a wallet account', :shop), 'request_payment on a merchant account');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :bob, :'c2', 'tap-x'), 'PY111', format('account %s is not a merchant account', :bob), 'a charge with a wallet as the merchant');

---------------------------------------------------------------------------
-- PY212: ttl
---------------------------------------------------------------------------
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '0')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'ttl 0');
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '-10 seconds')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'a negative ttl');
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '0.5 seconds')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'a ttl under 1 second');
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '301 seconds')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'a ttl above payext.max_code_ttl');
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '1 month')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'a ttl of 1 month');
SELECT throws_ok(format($$SELECT payext.request_payment(%s, ttl => '1 day')$$, :alice), 'PY212', 'ttl must be between 1 second and 300 seconds', 'a ttl of 1 day');
SELECT lives_ok(format($$SELECT payext.request_payment(%s, ttl => '5 minutes')$$, :alice), 'a ttl of exactly payext.max_code_ttl');

---------------------------------------------------------------------------
-- PY102 frozen, PY103 closed
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.request_payment(%s)', :frozen), 'PY102', format('account %s is frozen', :frozen), 'request_payment for a frozen wallet');
SELECT throws_ok(format('SELECT payext.request_payment(%s)', :closed), 'PY103', format('account %s is closed', :closed), 'request_payment for a closed wallet');
SELECT payext.request_payment(:bob) AS c_bob \gset
SELECT payext.freeze(:bob);
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_bob', 'tap-fz'), 'PY102', 'the customer''s wallet is frozen', 'a charge of a code whose wallet was frozen since (the merchant is not told its id)');
SELECT payext.unfreeze(:bob);
SELECT payext.request_payment(:closing) AS c_closing \gset
SELECT payext.close_account(:closing);
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_closing', 'tap-cl'), 'PY103', 'the customer''s wallet is closed', 'a charge of a code whose wallet was closed since (the merchant is not told its id)');
SELECT payext.freeze(:cafe);
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :cafe, :'c_bob', 'tap-fz'), 'PY102', format('account %s is frozen', :cafe), 'a charge by a frozen merchant');
SELECT payext.unfreeze(:cafe);

---------------------------------------------------------------------------
-- PY104 insufficient funds, PY105 currency mismatch, PY207 over the cap
---------------------------------------------------------------------------
SELECT payext.request_payment(:alice, max_amount => 3000) AS c_cap \gset
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 3001, %L)', :shop, :'c_cap', 'tap-cap'), 'PY207', 'amount exceeds the payment code''s limit', 'a charge above the code''s cap');
SELECT payext.request_payment(:alice) AS c_big \gset
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 10001, %L)', :shop, :'c_big', 'tap-big'), 'PY104', 'insufficient funds in the customer''s wallet', 'a charge above the wallet''s balance (the merchant is not told its id)');
SELECT payext.request_payment(:usd) AS c_usd \gset
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_usd', 'tap-usd'), 'PY105', format('the customer''s wallet holds another currency than account %s', :shop), 'a USD wallet''s code charged by a CNY merchant (the merchant is not told its id)');
-- A refused charge does not burn the code and moves nothing.
SELECT is(pg_temp.code_state(:'c_cap'), 'issued', 'the code refused over its cap is still issued');
SELECT is(pg_temp.code_state(:'c_big'), 'issued', 'the code refused for lack of funds is still issued');
SELECT is(pg_temp.code_state(:'c_usd'), 'issued', 'the code refused for its currency is still issued');
SELECT is(pg_temp.code_state(:'c_bob'), 'issued', 'the code refused while its wallet was frozen is still issued');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s), payext.balance(%s), payext.balance(%s)', :alice, :bob, :usd, :shop),
                  $$VALUES (10000::bigint, 10000::bigint, 10000::bigint, 0::bigint)$$, 'the refused charges moved nothing');
SELECT is((SELECT count(*) FROM payext.payment WHERE order_ref IN ('tap-cap', 'tap-big', 'tap-usd', 'tap-fz', 'tap-cl')),
          0::bigint, 'the refused charges recorded no payment');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 3000, %L)', :shop, :'c_cap', 'tap-cap'), 'the capped code pays up to its cap');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 7000, %L)', :shop, :'c_big', 'tap-big'), 'the code refused for lack of funds pays what the wallet holds');
SELECT is(payext.balance(:alice), 0::bigint, 'the wallet is at zero, not below');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :cafe, :'c_bob', 'tap-fz'), 'the code refused while frozen pays after unfreeze');
-- A refund needs the merchant's own money.
SELECT lives_ok(format('SELECT payext.withdraw(%s, 100, %L)', :cafe, 'tap-ch-cafe-payout'), 'the cafe pays its money out');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 100, %L)', :cafe, 'tap-fz', 'tap-cafe-r1'), 'PY104', format('insufficient funds in account %s', :cafe), 'a refund by a merchant without funds');
SELECT results_eq(format('SELECT refunded_amount, state FROM payext.payment_status(%s, %L)', :cafe, 'tap-fz'),
                  $$VALUES (0::bigint, 'paid')$$, 'the refused refund changed nothing');

---------------------------------------------------------------------------
-- PY201 malformed, PY202 other shard, PY203 forged
---------------------------------------------------------------------------
SELECT payext.request_payment(:bob) AS c3 \gset
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, left(:'c3', 17), 'tap-f'), 'PY201', 'payment code is malformed', 'a code of 17 digits');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c3' || '0', 'tap-f'), 'PY201', 'payment code is malformed', 'a code of 19 digits');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, 'abcdefghijklmnopqr', 'tap-f'), 'PY201', 'payment code is malformed', 'a code of 18 letters');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, overlay(:'c3' PLACING 'x' FROM 9 FOR 1), 'tap-f'), 'PY201', 'payment code is malformed', 'a code with one letter');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.typo(:'c3', 7), 'tap-f'), 'PY201', 'payment code is malformed', 'a code with one digit mistyped');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.typo(:'c3', 1), 'tap-f'), 'PY201', 'payment code is malformed', 'a code with its shard digit changed but not its check digit');
SELECT throws_ok(format('SELECT payext.cancel_payment_code(%L)', pg_temp.typo(:'c3', 12)), 'PY201', 'payment code is malformed', 'cancel_payment_code of a mistyped code');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.respell(:'c3', 1, 1), 'tap-f'), 'PY202', 'payment code belongs to partition 10', 'a well-formed code of partition 10');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.respell(:'c3', 12, (substr(:'c3', 12, 1)::integer + 1) % 10), 'tap-f'), 'PY203', 'payment code is not valid', 'a well-formed code one digit away from a real one');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.respell(:'c3', 2, 9), 'tap-f'), 'PY202', 'payment code belongs to partition 09', 'a well-formed code of partition 09');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, pg_temp.respell(:'c3', 3, (substr(:'c3', 3, 1)::integer + 1) % 10), 'tap-f'), 'PY203', 'payment code is not valid', 'a well-formed code with another serial');
SELECT throws_ok(format('SELECT payext.cancel_payment_code(%L)', pg_temp.respell(:'c3', 17, (substr(:'c3', 17, 1)::integer + 1) % 10)), 'PY203', 'payment code is not valid', 'cancel_payment_code of a forged code');
SELECT is(pg_temp.code_state(:'c3'), 'issued', 'the real code behind the bad ones is still issued');

---------------------------------------------------------------------------
-- PY204 expired, PY205 cancelled, PY206 used
---------------------------------------------------------------------------
SELECT payext.request_payment(:bob, ttl => '1 second') AS c_exp,
       payext.request_payment(:bob, ttl => '1 second') AS c_edge \gset
SELECT is((SELECT expires_at - created_at FROM payext.payment_code WHERE code = substr(:'c_exp', 3, 15)::bigint),
          interval '1 second', 'a code requested with ttl 1 second expires 1 second after it was issued');
-- Age the codes (now() does not advance in this transaction): c_exp by its
-- whole ttl, c_edge by its ttl less a microsecond.
UPDATE payext.payment_code SET created_at = created_at - interval '1 second', expires_at = expires_at - interval '1 second'
 WHERE code = substr(:'c_exp', 3, 15)::bigint;
UPDATE payext.payment_code SET created_at = created_at - interval '999999 microseconds', expires_at = expires_at - interval '999999 microseconds'
 WHERE code = substr(:'c_edge', 3, 15)::bigint;
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_exp', 'tap-exp'), 'PY204', 'payment code has expired', 'a code charged when its ttl is over');
SELECT is(pg_temp.code_state(:'c_exp'), 'issued', 'an expired code is refused, not closed');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_edge', 'tap-edge'), 'a code charged a microsecond before it expires pays');

SELECT payext.request_payment(:bob) AS c_cancel \gset
SELECT lives_ok(format('SELECT payext.cancel_payment_code(code => %L)', :'c_cancel'), 'the user cancels an unused code');
SELECT is(pg_temp.code_state(:'c_cancel'), 'cancelled', 'the code is cancelled');
SELECT lives_ok(format('SELECT payext.cancel_payment_code(%L)', :'c_cancel'), 'cancelling it again changes nothing');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_cancel', 'tap-cancelled'), 'PY205', 'payment code was cancelled', 'a cancelled code cannot pay');

SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c1', 'tap-o1-again'), 'PY206', 'payment code has already been used', 'a used code cannot pay another order');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 2000, %L)', :cafe, :'c1', 'tap-o1'), 'PY206', 'payment code has already been used', 'a used code cannot pay another merchant, even under the same order_ref');
SELECT throws_ok(format('SELECT payext.cancel_payment_code(%L)', :'c1'), 'PY206', 'payment code has already been used', 'a used code cannot be cancelled');
SELECT is(pg_temp.code_state(:'c1'), 'used', 'the used code stays used');

---------------------------------------------------------------------------
-- PY208 order conflict, PY209 unknown order, PY210/PY211 refunds
---------------------------------------------------------------------------
SELECT payext.request_payment(:bob) AS c4 \gset
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 2000, %L)', :shop, :'c4', 'tap-o1'), 'PY208', 'order "tap-o1" was already charged differently', 'an order charged again with another code');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 1999, %L)', :shop, :'c1', 'tap-o1'), 'PY208', 'order "tap-o1" was already charged differently', 'an order charged again with the same code at another amount');
SELECT is(pg_temp.code_state(:'c4'), 'issued', 'the code refused for the used order is not burnt');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 2000, %L)', :cafe, :'c4', 'tap-o1'), '... and pays: order refs belong to their merchant');

SELECT throws_ok(format('SELECT payext.refund(%s, %L, 100, %L)', :shop, 'tap-nope', 'tap-r-nope'), 'PY209', format('merchant %s has no payment for order "tap-nope"', :shop), 'a refund of an unknown order');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 100, %L)', :bob, 'tap-o1', 'tap-r-nope'), 'PY209', format('merchant %s has no payment for order "tap-o1"', :bob), 'a refund of another merchant''s order');
SELECT throws_ok(format('SELECT * FROM payext.payment_status(%s, %L)', :shop, 'tap-nope'), 'PY209', format('merchant %s has no payment for order "tap-nope"', :shop), 'payment_status of an unknown order');

SELECT payext.balance(:bob) AS bob_before, payext.balance(:cafe) AS cafe_before \gset
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 2001, %L)', :cafe, 'tap-o1', 'tap-cafe-r2'), 'PY210', 'refund exceeds what is left of the charge', 'a refund above the charge');
SELECT lives_ok(format('SELECT payext.refund(%s, %L, 1500, %L)', :cafe, 'tap-o1', 'tap-cafe-r3'), 'a partial refund');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 501, %L)', :cafe, 'tap-o1', 'tap-cafe-r4'), 'PY210', 'refund exceeds what is left of the charge', 'a second refund beyond what is left');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 100, %L)', :cafe, 'tap-o1', 'tap-cafe-r3'), 'PY211', 'refund reference "tap-cafe-r3" was already used for a different refund', 'a refund_ref reused for another amount');
SELECT throws_ok(format('SELECT payext.refund(%s, %L, 1500, %L)', :cafe, 'tap-fz', 'tap-cafe-r3'), 'PY211', 'refund reference "tap-cafe-r3" was already used for a different refund', 'a refund_ref reused for another order');
SELECT results_eq(format('SELECT payext.balance(%s) - %s, payext.balance(%s) - %s', :bob, :bob_before, :cafe, :cafe_before),
                  $$VALUES (1500::bigint, -1500::bigint)$$, 'only the accepted refund moved money');
SELECT results_eq(format('SELECT refunded_amount, state FROM payext.payment_status(%s, %L)', :cafe, 'tap-o1'),
                  $$VALUES (1500::bigint, 'partially_refunded')$$, 'the refused refunds left the payment as it was');

---------------------------------------------------------------------------
-- Signing keys
---------------------------------------------------------------------------
SELECT payext.request_payment(:bob) AS c_before \gset
SELECT payext.rotate_signing_key() AS k2 \gset
SELECT cmp_ok(:k2, '>', :key1, 'rotate_signing_key returns a new, higher key id');
SELECT payext.request_payment(:bob) AS c_after \gset
SELECT is((SELECT key_id FROM payext.payment_code WHERE code = substr(:'c_after', 3, 15)::bigint), :k2,
          'a code issued after the rotation is made under the new key');
SELECT isnt((SELECT key_id FROM payext.payment_code WHERE code = substr(:'c_before', 3, 15)::bigint), :k2,
            '... and one issued before under the old one');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_before', 'tap-before-rotation'), 'a code issued before the rotation still pays after it');
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :shop, :'c_after', 'tap-after-rotation'), 'a code issued after the rotation pays');
SELECT cmp_ok(payext.rotate_signing_key(), '>', :k2, 'the next rotation returns a higher id again');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'payext'
                        AND 'payext.signing_key'::regclass = ANY (e.extconfig)),
          'signing_key is not registered with pg_extension_config_dump: keys are never dumped');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'payext'
                        AND 'payext.payment_code'::regclass = ANY (e.extconfig))
          AND (SELECT relpersistence FROM pg_class WHERE oid = 'payext.payment_code'::regclass) = 'u',
          'live codes are neither dumped nor written to the WAL (unlogged)');
SELECT ok(EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'payext'
                    AND 'payext.payment'::regclass = ANY (e.extconfig)),
          '(while payment is: the checks above look at the right list)');
CREATE ROLE payext_tap_charges_nobody NOLOGIN;
SET LOCAL ROLE payext_tap_charges_nobody;
SELECT throws_ok('SELECT count(*) FROM payext.signing_key', '42501', 'permission denied for table signing_key',
                 'a non-superuser role cannot read the signing keys');
SELECT throws_ok('SELECT payext.rotate_signing_key()', '42501', 'permission denied for function rotate_signing_key',
                 'a non-superuser role cannot rotate the signing key');
RESET ROLE;

SELECT results_eq('SELECT check_name, ok FROM payext.verify_ledger()',
  $$VALUES ('balances_match_journal', true), ('money_conserved', true),
           ('no_negative_balances', true), ('journal_intact', true),
           ('payments_match_journal', true), ('codes_paid_once', true),
           ('parking_matches_journal', true)$$,
  'verify_ledger() agrees with everything above');

SELECT * FROM finish();
ROLLBACK;
