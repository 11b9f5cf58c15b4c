-- Parking as operators run it: a day at the mall car park.  An entry hold
-- reserves the fee at the barrier and is taken at exit; an exit unpaid is
-- owed, and the gate knows it; a monthly pass makes part of a stay free; a
-- lot blocks a plate; a camera misreads a plate, and the exit finds the
-- stay by suggestion.
SET TIME ZONE 'Asia/Shanghai';
-- Ids in this file's messages start after 30000, whatever ran before it.
-- HKD is used by no other file.
SELECT setval('payext.account_id_seq', 30000), setval('payext.parking_lot_id_seq', 30000),
       setval('payext.parking_stay_id_seq', 30000), setval('payext.hold_id_seq', 30000),
       setval('payext.parking_pass_id_seq', 30000), setval('payext.parking_validation_id_seq', 30000);

-- The mall's operator, and a lot that holds 30.00 at entry: 15 minutes
-- free, hours at 5.00 day and night (no night price: every hour the same).
SELECT payext.open_merchant('gh_mall_parking', 'Mall Parking', 'HKD') AS op \gset
SELECT payext.create_parking_lot(:op, 'Mall', 'Asia/Hong_Kong', free_minutes => 15,
                                 unit_minutes => 60, day_price => 500,
                                 entry_hold => 3000) AS lot \gset
SELECT payext.create_parking_lot(:op, 'Mall annex', 'Asia/Hong_Kong', 15, 60, 500) AS annex \gset
SELECT name, entry_hold FROM payext.parking_lot WHERE id IN (:lot, :annex) ORDER BY id;
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Hong_Kong', 15, 60, 500, entry_hold => 0);
\echo :SQLSTATE

SELECT payext.open_wallet('mall_ann', 'HKD') AS ann \gset
SELECT payext.top_up(:ann, 10000, 'mall-bank-1') > 0 AS topped_up;
SELECT payext.bind_vehicle('mall_ann', 'MA-1001', auto_pay => true);
-- Camera times count back from now (as an epoch: no DateStyle reads it).
SELECT extract(epoch FROM now()) AS t0 \gset

-- 1. Entry: 30.00 held on Ann's wallet for the operator, under the stay's
-- own order.  Exit two hours later: 10.00 taken from the hold, the rest
-- released, the stay paid.
SELECT payext.vehicle_entered(:lot, 'MA1001', to_timestamp(:t0) - interval '3 hours') AS s1 \gset
SELECT order_ref = 'parking:' || :s1 AS stay_order, amount, state, holding, stay = :s1 AS for_stay
  FROM payext.hold WHERE wallet = :ann;
SELECT payext.balance(:ann) AS balance, payext.available_balance(:ann) AS available;
SELECT payext.vehicle_exited(:lot, 'MA1001', to_timestamp(:t0) - interval '1 hour') AS fee;
SELECT captured, state, holding FROM payext.hold WHERE stay = :s1;
SELECT fee, paid FROM payext.parking_stay WHERE id = :s1;
SELECT how, amount FROM payext.parking_payment WHERE stay = :s1;
SELECT payext.balance(:ann) AS balance, payext.available_balance(:ann) AS available;
-- The same exit again changes nothing.
SELECT payext.vehicle_exited(:lot, 'MA1001', to_timestamp(:t0) - interval '1 hour') AS fee_again;

-- 2. A dearer stay: nine hours, 45.00; 30.00 from the hold, 15.00 paid
-- automatically from the wallet.
SELECT payext.vehicle_entered(:lot, 'MA1001', to_timestamp(:t0) - interval '10 hours') AS s2 \gset
SELECT payext.available_balance(:ann) AS available_while_parked;
-- The entry hold is the stay's: the operator cannot take or release it
-- by hand (else the exit would charge the wallet again).
SELECT payext.capture_hold(:op, (SELECT id FROM payext.hold WHERE stay = :s2), 100, 'grab');
\echo :SQLSTATE
SELECT payext.void_hold(:op, (SELECT id FROM payext.hold WHERE stay = :s2));
\echo :SQLSTATE
SELECT payext.vehicle_exited(:lot, 'MA1001', to_timestamp(:t0) - interval '1 hour') AS fee;
SELECT how, amount FROM payext.parking_payment WHERE stay = :s2 ORDER BY transfer_id;
SELECT captured, state FROM payext.hold WHERE stay = :s2;
SELECT payext.balance(:ann) AS balance;

-- 3. Too little available for the hold: the entry is recorded all the
-- same, without one.  A lot without entry_hold holds nothing.
SELECT payext.open_wallet('mall_bo', 'HKD') AS bo \gset
SELECT payext.top_up(:bo, 1000, 'mall-bank-2') > 0 AS topped_up;
SELECT payext.bind_vehicle('mall_bo', 'MB-2002', auto_pay => true);
SELECT payext.vehicle_entered(:lot, 'MB2002', to_timestamp(:t0) - interval '4 hours') > 0 AS entered;
SELECT payext.vehicle_entered(:annex, 'MA1001', to_timestamp(:t0) - interval '30 minutes') > 0 AS entered;
SELECT count(*) AS holds_of_bo FROM payext.hold WHERE wallet = :bo;
-- An operator that cannot be paid (frozen) gets no hold either, and the
-- camera's event still goes in.
SELECT payext.bind_vehicle('mall_ann', 'MD-4004', auto_pay => true);
SELECT payext.freeze(:op);
SELECT payext.vehicle_entered(:lot, 'MD4004', to_timestamp(:t0) - interval '20 minutes') AS s3f \gset
SELECT payext.unfreeze(:op);
SELECT count(*) AS holds_while_frozen FROM payext.hold WHERE stay = :s3f;
SELECT count(*) AS open_holds_of_ann FROM payext.hold WHERE wallet = :ann AND state = 'open';

-- 4. Arrears.  Bo's stay costs 15.00 and his wallet holds 10.00: the exit
-- is recorded, the stay owed.  The gate knows it, at any lot, by any of
-- his plates; an unbound plate owes its own stays.
SELECT payext.vehicle_exited(:lot, 'MB2002', to_timestamp(:t0) - interval '1 hour') AS fee;
SELECT fee, paid, state FROM payext.parking_stay WHERE plate = 'MB2002';
SELECT payext.bind_vehicle('mall_bo', 'MB-2003');
SELECT payext.plate_status(:lot, 'MB2002') AS at_mall, payext.plate_status(:annex, 'mb 2002') AS at_annex,
       payext.plate_status(:annex, 'MB2003') AS other_plate, payext.plate_status(:lot, 'MA1001') AS ann;
SELECT payext.vehicle_entered(:annex, 'ZZ-9000', to_timestamp(:t0) - interval '2 hours') > 0 AS entered;
SELECT payext.vehicle_exited(:annex, 'ZZ-9000', to_timestamp(:t0) - interval '30 minutes') AS fee;
SELECT payext.plate_status(:lot, 'ZZ9000') AS unbound_owes;
-- Bo also left a euro car park unpaid, earlier; he has no euro wallet.
SELECT payext.open_merchant('gh_eu_parking', 'EU Parking', 'EUR') AS eu_op \gset
SELECT payext.create_parking_lot(:eu_op, 'Euro', 'Europe/Paris', 0, 60, 100) AS eu_lot \gset
SELECT payext.vehicle_entered(:eu_lot, 'MB2002', to_timestamp(:t0) - interval '6 hours') > 0 AS entered;
SELECT payext.vehicle_exited(:eu_lot, 'MB2002', to_timestamp(:t0) - interval '5 hours') AS eu_fee;
-- settle_arrears pays what the wallet allows, oldest first: nothing yet,
-- then, after a top-up, the stay it has a wallet for (the euro stay
-- waits for a euro wallet).
SELECT payext.settle_arrears('mall_bo') AS paid_stays;
SELECT payext.top_up(:bo, 1000, 'mall-bank-3') > 0 AS topped_up;
SELECT payext.settle_arrears('mall_bo') AS paid_stays;
SELECT fee, paid FROM payext.parking_stay WHERE plate = 'MB2002';
SELECT payext.plate_status(:lot, 'MB2002') AS still_owes_euros, payext.settle_arrears('mall_bo') AS nothing_payable;
SELECT payext.settle_arrears('nobody') AS nobody;

-- 5. A monthly pass.  A stay of five hours, the middle three inside the
-- pass: an hour before and an hour after, 10.00 (without it: 25.00).
SELECT payext.grant_parking_pass(:lot, 'MA-1001', to_timestamp(:t0) - interval '23 hours',
                                 to_timestamp(:t0) - interval '20 hours', 'pass-ann-1') AS pass1 \gset
SELECT payext.grant_parking_pass(:lot, 'MA1001', to_timestamp(:t0) - interval '23 hours',
                                 to_timestamp(:t0) - interval '20 hours', 'pass-ann-1') = :pass1 AS same_pass;
SELECT payext.vehicle_entered(:lot, 'MA1001', to_timestamp(:t0) - interval '24 hours') AS s5 \gset
SELECT payext.vehicle_exited(:lot, 'MA1001', to_timestamp(:t0) - interval '19 hours') AS fee_with_pass;
SELECT payext.parking_fee(:lot, to_timestamp(:t0) - interval '24 hours',
                          to_timestamp(:t0) - interval '19 hours') AS fee_without;
-- Ten minutes past the pass are within the free minutes: nothing.
SELECT payext.vehicle_entered(:lot, 'MA1001', to_timestamp(:t0) - interval '22 hours 30 minutes') AS s6 \gset
SELECT payext.vehicle_exited(:lot, 'MA1001', to_timestamp(:t0) - interval '19 hours 50 minutes') AS fee_ten_past;
-- More passes over one stay than the tariff's core takes (63): the exit
-- cannot be priced, and is kept as an anomaly rather than overcharged.
SELECT count(payext.grant_parking_pass(:lot, 'ME5005',
         to_timestamp(:t0) - interval '3 hours' + make_interval(mins => g),
         to_timestamp(:t0) - interval '3 hours' + make_interval(mins => g, secs => 30), 'many-' || g))
  AS passes FROM generate_series(1, 64) g;
SELECT payext.vehicle_entered(:lot, 'ME5005', to_timestamp(:t0) - interval '4 hours') > 0 AS entered;
SELECT payext.vehicle_exited(:lot, 'ME5005', to_timestamp(:t0) - interval '1 hour') AS fee_unpriced;
-- A pass valid now: the gate says so.  The pass is the lot's: not the annex's.
SELECT payext.grant_parking_pass(:lot, 'MA1001', to_timestamp(:t0) - interval '1 day',
                                 to_timestamp(:t0) + interval '30 days', 'pass-ann-2') > 0 AS granted;
SELECT payext.plate_status(:lot, 'MA1001') AS at_mall, payext.plate_status(:annex, 'MA1001') AS at_annex;
-- Refused: the reference for another pass, a span the wrong way round, an
-- unknown lot.
SELECT payext.grant_parking_pass(:lot, 'MA1001', to_timestamp(:t0), to_timestamp(:t0) + interval '1 day', 'pass-ann-1');
\echo :SQLSTATE
SELECT payext.grant_parking_pass(:lot, 'MA1001', '2026-12-01 08:00', '2026-12-01 08:00', 'pass-ann-3');
\echo :SQLSTATE
SELECT payext.grant_parking_pass(424242, 'MA1001', to_timestamp(:t0), to_timestamp(:t0) + interval '1 day', 'p');
\echo :SQLSTATE

-- 6. A blocked plate: refused at the gate whatever else holds, and taken
-- again once unblocked.
SELECT payext.block_plate(:lot, 'ma-1001');
SELECT payext.block_plate(:lot, 'MA1001');
SELECT payext.plate_status(:lot, 'MA1001') AS blocked, payext.plate_status(:annex, 'MA1001') AS annex;
SELECT payext.unblock_plate(:lot, 'MA1001');
SELECT payext.plate_status(:lot, 'MA1001') AS unblocked;
SELECT payext.plate_status(424242, 'MA1001');
\echo :SQLSTATE
SELECT payext.plate_status(:lot, 'A');
\echo :SQLSTATE

-- 7. Misread plates.  Three cars are in; the exit camera reads plates that
-- match none exactly.  Its usual confusions are no edit at all; one more
-- edit is distance 1; further is no suggestion.
SELECT payext.vehicle_entered(:lot, plate, to_timestamp(:t0) - interval '1 hour') > 0 AS entered
  FROM unnest(ARRAY['粤B12345', 'SZ0815', 'AB1234']) AS plate;
SELECT plate, stay > 0 AS stay, entered_at = to_timestamp(:t0) - interval '1 hour' AS entered, distance
  FROM payext.suggest_plates(:lot, '粤812345');
SELECT plate, distance FROM payext.suggest_plates(:lot, '5Z0B15');
SELECT plate, distance FROM payext.suggest_plates(:lot, 'AB12345');
SELECT plate, distance FROM payext.suggest_plates(:lot, 'A81Z34');
SELECT count(*) AS none FROM payext.suggest_plates(:lot, 'XY9999');
SELECT count(*) AS other_lot FROM payext.suggest_plates(:annex, '粤B12345');
SELECT payext.suggest_plates(424242, 'AB1234');
\echo :SQLSTATE
SELECT payext.plate_distance('粤B12345', 'B12345') AS one_deleted,
       payext.plate_distance('AB', 'BA') AS swapped, payext.plate_match_keys('AB0');

-- 8. Shops pay part of their customers' parking.  The café gives two
-- hours from the entry, the bookshop half of the fee; the discounts are
-- paid to the operator when the stay is paid (here at the exit), capped
-- together at the fee.
SELECT setval('payext.account_id_seq', 31000) AS ids_from;
SELECT payext.open_merchant('gh_mall_cafe', 'Mall Cafe', 'HKD') AS cafe \gset
SELECT payext.open_merchant('gh_mall_books', 'Mall Books', 'HKD') AS books \gset
SELECT payext.open_wallet('mall_cy', 'HKD') AS cy \gset
SELECT payext.top_up(:cy, 20000, 'mall-bank-4') > 0 AS topped_up;
SELECT payext.request_payment(:cy) AS c1 \gset
SELECT payext.charge(:cafe, :'c1', 5000, 'cafe-order-1') > 0 AS cafe_paid;
SELECT payext.request_payment(:cy) AS c2 \gset
SELECT payext.charge(:books, :'c2', 300, 'books-order-1') > 0 AS books_paid;
SELECT payext.bind_vehicle('mall_cy', 'MC-3003', auto_pay => true);
SELECT payext.vehicle_entered(:lot, 'MC3003', to_timestamp(:t0) - interval '5 hours') AS s8 \gset
SELECT payext.validate_parking(:s8, :cafe, 'minutes', 120, 'cafe-val-1') AS v1 \gset
SELECT payext.validate_parking(:s8, :cafe, 'minutes', 120, 'cafe-val-1') = :v1 AS same_validation;
-- What the owner sees as due an hour ago (four hours, 20.00) is less the
-- café's 10.00.  The bookshop cannot pay half of the fee so far (15.00).
SELECT amount_due FROM payext.parking_service_info('mall_cy', to_timestamp(:t0) - interval '1 hour');
SELECT payext.validate_parking(:s8, :books, 'percent', 50, 'books-val-1');
\echo :SQLSTATE
SELECT payext.validate_parking(:s8, :books, 'percent', 10, 'books-val-1') > 0 AS validated;
-- Exit after four hours: 20.00; the café pays 10.00, the bookshop 2.00
-- (10 % of the fee), the entry hold the remaining 8.00.
SELECT payext.vehicle_exited(:lot, 'MC3003', to_timestamp(:t0) - interval '1 hour') AS fee;
SELECT how, amount, wallet = :cafe AS cafe, wallet = :books AS books
  FROM payext.parking_payment WHERE stay = :s8 ORDER BY transfer_id;
SELECT kind, value, state, discount FROM payext.parking_validation WHERE stay = :s8 ORDER BY id;
SELECT payext.balance(:cafe) AS cafe, payext.balance(:books) AS books, payext.balance(:cy) AS cy;
-- A stay already exited and owed: the shop pays at once.  'free' takes
-- what is left, never more.
SELECT payext.vehicle_entered(:annex, 'MC3003', to_timestamp(:t0) - interval '3 hours') AS s9 \gset
SELECT payext.freeze(:cy);
SELECT payext.vehicle_exited(:annex, 'MC3003', to_timestamp(:t0) - interval '2 hours') AS fee_unpaid;
SELECT payext.unfreeze(:cy);
SELECT payext.validate_parking(:s9, :books, 'amount', 100, 'books-val-2') > 0 AS validated;
SELECT payext.validate_parking(:s9, :cafe, 'free', 0, 'cafe-val-2') > 0 AS validated;
SELECT fee, paid FROM payext.parking_stay WHERE id = :s9;
SELECT kind, state, discount FROM payext.parking_validation WHERE stay = :s9 ORDER BY id;
-- Refused: a kind or value out of bounds, the operator's own lot, a stay
-- paid in full, a stay that does not exist, a shop that cannot pay.
SELECT payext.validate_parking(:s9, :books, 'coupon', 1, 'books-val-3');
\echo :SQLSTATE
SELECT payext.validate_parking(:s9, :books, 'free', 5, 'books-val-3');
\echo :SQLSTATE
SELECT payext.validate_parking(:s9, :books, 'percent', 101, 'books-val-3');
\echo :SQLSTATE
SELECT payext.validate_parking(:s9, :op, 'free', 0, 'op-val-1');
\echo :SQLSTATE
SELECT payext.validate_parking(:s8, :books, 'amount', 100, 'books-val-4');
\echo :SQLSTATE
SELECT payext.validate_parking(424242, :books, 'amount', 100, 'books-val-5');
\echo :SQLSTATE
SELECT payext.validate_parking(:s1, :books, 'amount', 100, 'books-val-7');
\echo :SQLSTATE
SELECT payext.vehicle_entered(:lot, 'MC3003', to_timestamp(:t0) - interval '10 hours') AS s10 \gset
SELECT payext.validate_parking(:s10, :books, 'amount', 5000, 'books-val-6');
\echo :SQLSTATE

SELECT check_name, ok FROM payext.verify_ledger()
 WHERE check_name IN ('parking_matches_journal', 'holds_match_journal', 'available_not_negative',
                      'balances_match_journal', 'money_conserved');
-- verify_ledger() catches a validation whose discount its payment does
-- not match (rolled back).
BEGIN;
UPDATE payext.parking_validation SET discount = discount + 1 WHERE stay = :s8 AND merchant = :cafe;
SELECT check_name, ok FROM payext.verify_parking();
ROLLBACK;
RESET TIME ZONE;
