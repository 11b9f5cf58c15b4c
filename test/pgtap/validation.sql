-- validation.sql: the arithmetic of shops' validations of parking stays
-- (DESIGN.md, "Merchant validation"; src/parking.c, validate_parking).
--
-- Proves, for stays priced by hand (a lot of 60-minute units at 5.00, 15
-- free minutes, UTC; another at 3.33 a unit):
--   - 'percent' is the fee's share rounded down (33 % of 25.00 is 8.25,
--     of 3.33 is 1.09); 'amount' is capped at the fee; 'free' is the fee;
--   - 'minutes' is what those minutes from the entry cost: the fee less
--     the fee with them free (90 minutes of a 5-hour stay: 25.00 - 20.00;
--     10 minutes, inside the free minutes: 0; more than the stay: all);
--   - two shops' validations of one stay are applied in the order made,
--     each capped at what is left: together never more than the fee;
--   - each discount is the shop's 'parking' payment of the stay (how
--     'validation'), the stay's paid is their sum, the shop's balance falls
--     by its discount, and parking_service_info shows the rest as due;
--   - a shop that cannot pay its discount when the stay is paid leaves its
--     validation 'unfunded' with discount 0, and the owner owes all;
--   - a merchant role mapped to a shop cannot list another operator's open
--     stays (suggest_plates) or ask its gate (plate_status): 42501; the
--     operator's own role can;
--   - verify_ledger() passes throughout.
-- Everything runs in one transaction that is rolled back; camera times
-- count back from now(), which does not move inside it.
BEGIN;
SELECT plan(29);
SET LOCAL client_min_messages = warning;

SELECT payext.open_merchant('gh_tapv_op', 'TAP operator', 'EUR') AS op \gset
SELECT payext.open_merchant('gh_tapv_a', 'TAP shop A', 'EUR') AS a \gset
SELECT payext.open_merchant('gh_tapv_b', 'TAP shop B', 'EUR') AS b \gset
SELECT payext.open_merchant('gh_tapv_c', 'TAP shop C', 'EUR') AS c \gset
SELECT payext.open_wallet('tapv_buyer', 'EUR') AS w \gset
SELECT payext.top_up(:w, 100000, 'tapv-bank') > 0 AS funded \gset
-- The shops earn what they will pay: 200.00 each for A and B, 5.00 for C.
SELECT payext.charge(:a, payext.request_payment(:w), 20000, 'tapv-a') > 0 AS x \gset
SELECT payext.charge(:b, payext.request_payment(:w), 20000, 'tapv-b') > 0 AS x \gset
SELECT payext.charge(:c, payext.request_payment(:w), 500, 'tapv-c') > 0 AS x \gset
SELECT payext.create_parking_lot(:op, 'TAP V', 'UTC', 15, 60, 500) AS lot \gset
SELECT payext.create_parking_lot(:op, 'TAP V odd', 'UTC', 15, 60, 333) AS odd \gset

-- A stay from `hours` + 1 hours ago to 1 hour ago (5 hours: 25.00),
-- validated while open; its id.
CREATE TEMP TABLE v (name text PRIMARY KEY, stay bigint) ON COMMIT DROP;
CREATE FUNCTION pg_temp.stay(name text, lot bigint, plate text, hours integer) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO v VALUES ($1, payext.vehicle_entered($2, $3, now() - make_interval(hours => $4 + 1)))
  RETURNING stay
$$;
CREATE FUNCTION pg_temp.leave(lot bigint, plate text) RETURNS bigint
LANGUAGE sql AS $$ SELECT payext.vehicle_exited($1, $2, now() - interval '1 hour') $$;
CREATE FUNCTION pg_temp.discounts(name text) RETURNS bigint[]
LANGUAGE sql AS $$
  SELECT array_agg(x.discount ORDER BY x.id) FROM payext.parking_validation x
   WHERE x.stay = (SELECT stay FROM v WHERE v.name = $1)
$$;

SELECT payext.bind_vehicle('tapv_owner', 'TAPV03') IS NULL AS x \gset
SELECT pg_temp.stay('pct', :lot, 'TAPV01', 5) > 0 AS x \gset
SELECT pg_temp.stay('amt', :lot, 'TAPV02', 5) > 0 AS x \gset
SELECT pg_temp.stay('m90', :lot, 'TAPV03', 5) > 0 AS x \gset
SELECT pg_temp.stay('m10', :lot, 'TAPV04', 5) > 0 AS x \gset
SELECT pg_temp.stay('mall', :lot, 'TAPV05', 5) > 0 AS x \gset
SELECT pg_temp.stay('two', :lot, 'TAPV06', 5) > 0 AS x \gset
SELECT pg_temp.stay('free', :lot, 'TAPV07', 5) > 0 AS x \gset
SELECT pg_temp.stay('odd', :odd, 'TAPV08', 1) > 0 AS x \gset
SELECT pg_temp.stay('broke', :lot, 'TAPV09', 5) > 0 AS x \gset

SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'pct'), :a, 'percent', 33, 'tapv-1') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'amt'), :a, 'amount', 3000, 'tapv-2') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'm90'), :a, 'minutes', 90, 'tapv-3') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'm10'), :a, 'minutes', 10, 'tapv-4') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'mall'), :a, 'minutes', 600, 'tapv-5') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'two'), :a, 'amount', 2000, 'tapv-6') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'two'), :b, 'percent', 50, 'tapv-7') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'free'), :a, 'amount', 100, 'tapv-8') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'free'), :b, 'free', 0, 'tapv-9') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'odd'), :a, 'percent', 33, 'tapv-10') > 0 AS x \gset
SELECT payext.validate_parking((SELECT stay FROM v WHERE name = 'broke'), :c, 'amount', 500, 'tapv-11') > 0 AS x \gset

-- Before the exits, what is due (at an hour ago, as the exits will be)
-- is the fee less the discounts.
SELECT is((SELECT amount_due FROM payext.parking_service_info('tapv_owner', now() - interval '1 hour')),
          2000::bigint, 'what is due an hour ago: 25.00 less the 90 minutes'' 5.00');
SELECT payext.balance(:a) AS a0, payext.balance(:b) AS b0, payext.balance(:op) AS op0 \gset
-- Shop C spends its money before its customer leaves.
SELECT payext.withdraw(:c, 500, 'tapv-c-out') > 0 AS x \gset

SELECT is(ARRAY[pg_temp.leave(:lot, 'TAPV01'), pg_temp.leave(:lot, 'TAPV02'),
                pg_temp.leave(:lot, 'TAPV03'), pg_temp.leave(:lot, 'TAPV04'),
                pg_temp.leave(:lot, 'TAPV05'), pg_temp.leave(:lot, 'TAPV06'),
                pg_temp.leave(:lot, 'TAPV07'), pg_temp.leave(:odd, 'TAPV08'),
                pg_temp.leave(:lot, 'TAPV09')],
          ARRAY[2500, 2500, 2500, 2500, 2500, 2500, 2500, 333, 2500]::bigint[],
          'the fees: five hours at 5.00, one unit at 3.33');

SELECT is(pg_temp.discounts('pct'), ARRAY[825]::bigint[], 'percent: 33 % of 25.00 is 8.25');
SELECT is(pg_temp.discounts('odd'), ARRAY[109]::bigint[], 'percent: 33 % of 3.33 is 1.09, rounded down');
SELECT is(pg_temp.discounts('amt'), ARRAY[2500]::bigint[], 'amount: 30.00 of a 25.00 stay is capped at 25.00');
SELECT is(pg_temp.discounts('m90'), ARRAY[500]::bigint[],
          'minutes: 90 free minutes of a 5-hour stay take one unit off (25.00 - 20.00)');
SELECT is(pg_temp.discounts('m10'), ARRAY[0]::bigint[],
          'minutes: 10 minutes inside the free minutes take nothing off');
SELECT is(pg_temp.discounts('mall'), ARRAY[2500]::bigint[], 'minutes: more than the stay: all of it');
SELECT is(pg_temp.discounts('two'), ARRAY[2000, 500]::bigint[],
          'two shops: 20.00, then half of the fee capped at what is left (5.00)');
SELECT is(pg_temp.discounts('free'), ARRAY[100, 2400]::bigint[], 'free after an amount: the rest');
SELECT is(pg_temp.discounts('broke'), ARRAY[0]::bigint[], 'a shop that cannot pay: discount 0');
SELECT is((SELECT state FROM payext.parking_validation
            WHERE stay = (SELECT stay FROM v WHERE name = 'broke')), 'unfunded',
          'its validation is unfunded');
SELECT is((SELECT array_agg(DISTINCT state) FROM payext.parking_validation
            WHERE stay IN (SELECT stay FROM v WHERE name <> 'broke')), ARRAY['applied'],
          'every other validation is applied');

SELECT is((SELECT array_agg(s.paid ORDER BY v.name) FROM v JOIN payext.parking_stay s ON s.id = v.stay),
          ARRAY[2500, 0, 2500, 0, 500, 2500, 109, 825, 2500]::bigint[],
          'each stay is paid its discounts (amt, broke, free, m10, m90, mall, odd, pct, two)');
SELECT is((SELECT array_agg(DISTINCT p.how) FROM payext.parking_payment p
            WHERE p.stay IN (SELECT stay FROM v)), ARRAY['validation'],
          'every payment of those stays is a validation');
SELECT is((SELECT count(*) FROM payext.parking_payment p
            JOIN payext.parking_validation x ON x.transfer_id = p.transfer_id
           WHERE p.wallet = x.merchant AND p.amount = x.discount AND p.stay = x.stay),
          (SELECT count(*) FROM payext.parking_validation WHERE discount > 0),
          'each discount is its shop''s payment of its stay');
SELECT is((SELECT count(*) FROM payext.transfer t JOIN payext.parking_payment p ON p.transfer_id = t.id
           WHERE p.how = 'validation' AND t.kind = 'parking' AND t.debit_account = p.wallet
             AND t.credit_account = :op AND t.amount = p.amount),
          (SELECT count(*) FROM payext.parking_payment WHERE how = 'validation'),
          'each is a parking transfer from the shop to the operator');
SELECT is(:a0::bigint - payext.balance(:a), 825::bigint + 109 + 2500 + 500 + 0 + 2500 + 2000 + 100,
          'shop A paid its discounts');
SELECT is(:b0::bigint - payext.balance(:b), 500::bigint + 2400, 'shop B paid its discounts');
SELECT is(payext.balance(:op) - :op0::bigint, 825::bigint + 109 + 2500 + 500 + 2500 + 2500 + 2500,
          'the operator got them all');
SELECT is(payext.balance(:c), 0::bigint, 'shop C paid nothing');
SELECT is((SELECT fee - paid FROM payext.parking_stay WHERE id = (SELECT stay FROM v WHERE name = 'broke')),
          2500::bigint, 'its customer owes the whole stay');
SELECT is((SELECT fee - paid FROM payext.parking_stay WHERE id = (SELECT stay FROM v WHERE name = 'm90')),
          2000::bigint, 'the 90 minutes'' customer owes the rest');
SELECT is(payext.plate_status(:lot, 'TAPV09'), 'arrears', 'the unfunded one''s plate owes');
-- A merchant role asks the gate's questions at its operators' lots only:
-- another operator's open stays, passes and blocks are not its to read.
CREATE ROLE tapv_shop_till NOLOGIN;
CREATE ROLE tapv_gate NOLOGIN;
SELECT payext.grant_capability('merchant', 'tapv_shop_till'::regrole);
SELECT payext.grant_capability('merchant', 'tapv_gate'::regrole);
SELECT payext.map_merchant_role('tapv_shop_till'::regrole, :a);
SELECT payext.map_merchant_role('tapv_gate'::regrole, :op);
SET LOCAL ROLE tapv_shop_till;
SELECT throws_ok(format('SELECT * FROM payext.suggest_plates(%s, ''TAPV01'')', :lot), '42501', NULL,
                 'a shop''s till cannot list another operator''s open stays');
SELECT throws_ok(format('SELECT payext.plate_status(%s, ''TAPV09'')', :lot), '42501', NULL,
                 'nor ask its gate''s questions');
RESET ROLE;
SET LOCAL ROLE tapv_gate;
SELECT is(payext.plate_status(:lot, 'TAPV09'), 'arrears', 'the operator''s own gate asks');
SELECT is((SELECT count(*) FROM payext.suggest_plates(:lot, 'TAPV01')), 0::bigint,
          'and lists its lot''s open stays (none left)');
RESET ROLE;
SELECT is((SELECT bool_and(ok) FROM payext.verify_ledger()), true, 'verify_ledger() passes');

SELECT * FROM finish();
ROLLBACK;
