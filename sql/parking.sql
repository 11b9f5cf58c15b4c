-- Parking: plates, lots, the tariff's arithmetic (DESIGN.md, exactly), stays
-- from camera events, what is due, payment before and at exit.
SET TIME ZONE 'Asia/Shanghai';
-- Ids in this file's messages start after 5000, whatever ran before it.
-- SGD is used by no other file.
SELECT setval('payext.account_id_seq', 5000), setval('payext.parking_lot_id_seq', 5000),
       setval('payext.parking_stay_id_seq', 5000);

-- Plates: case, spaces, dashes, full-width forms, NFC.
SELECT payext.normalize_plate('粤b-12345') AS a, payext.normalize_plate('粤B 12345') AS b,
       payext.normalize_plate('粤Ｂ１２３４５') AS c, payext.normalize_plate(E'\u1100\u116112') AS nfc;
SELECT payext.normalize_plate('');
\echo :SQLSTATE
SELECT payext.normalize_plate('AB_12');
\echo :SQLSTATE
SELECT payext.normalize_plate('ABCDEFGHIJKLM');
\echo :SQLSTATE

-- Vehicles: one owner per plate, at most payext.max_vehicles (3) each.
SELECT payext.bind_vehicle(owner => 'park_amy', plate => '粤b-12345', auto_pay => true);
SELECT payext.bind_vehicle('park_amy', '粤B 12345');     -- again: now without auto-pay
SELECT auto_pay FROM payext.vehicle WHERE plate = '粤B12345';
SELECT payext.bind_vehicle('park_amy', '粤B 12345', true);
SELECT auto_pay FROM payext.vehicle WHERE plate = '粤B12345';
SELECT payext.bind_vehicle('park_ben', '粤B12345');
\echo :SQLSTATE
SELECT payext.bind_vehicle('park_amy', 'SG-1001');
SELECT payext.bind_vehicle('park_amy', 'SG-1002');
SELECT payext.bind_vehicle('park_amy', 'SG-1003');
\echo :SQLSTATE
SELECT plate, owner, auto_pay FROM payext.vehicle WHERE owner = 'park_amy' ORDER BY plate;
SELECT payext.unbind_vehicle('park_ben', 'SG1002');
\echo :SQLSTATE
SELECT payext.unbind_vehicle('park_amy', 'sg 1002');
SELECT payext.bind_vehicle('park_amy', 'SG-1003');
SELECT vehicles FROM payext.vehicle_owner WHERE owner = 'park_amy';

-- A lot in Shanghai: 15 minutes free, 30-minute units, 08:00-20:00 at 5.00,
-- night at 2.00, a 24-hour block capped at 60.00.
SELECT payext.open_merchant('gh_park_city', 'City Parking', 'SGD') AS op \gset
SELECT payext.create_parking_lot(operator => :op, name => 'Harbour', time_zone => 'Asia/Shanghai',
                                 free_minutes => 15, unit_minutes => 30, day_price => 500,
                                 night_price => 200, cap_24h => 6000) AS lot \gset
SELECT name, currency, day_start, night_start, cap_24h, cap_stay, exit_grace_minutes
  FROM payext.parking_lot WHERE id = :lot;

-- The tariff.  At most the free minutes: nothing.
SELECT payext.parking_fee(:lot, '2026-11-20 10:00', '2026-11-20 10:15') AS exactly_free;
-- One microsecond more: the whole stay from entry, one started unit.
SELECT payext.parking_fee(:lot, '2026-11-20 10:00', '2026-11-20 10:15:00.000001') AS one_unit;
SELECT payext.parking_fee(:lot, '2026-11-20 10:00', '2026-11-20 11:00') AS two_units,
       payext.parking_fee(:lot, '2026-11-20 10:00', '2026-11-20 11:00:00.000001') AS three_units;
-- Each unit costs the price of the period it starts in: 19:30 day, 20:00 night.
SELECT payext.parking_fee(:lot, '2026-11-20 19:30', '2026-11-20 20:30') AS day_then_night;
SELECT payext.parking_fee(:lot, '2026-11-20 19:59', '2026-11-20 20:29') AS starts_in_day;
-- 24 hours from 08:00: 24 day units (120.00) and 24 night units (48.00), capped.
SELECT payext.parking_fee(:lot, '2026-11-20 08:00', '2026-11-21 08:00') AS capped_block;
-- Blocks run from entry, not from midnight: one block plus one night unit.
SELECT payext.parking_fee(:lot, '2026-11-20 08:00', '2026-11-21 08:00:01') AS block_and_a_unit;
-- Thirty days: thirty capped blocks.
SELECT payext.parking_fee(:lot, '2026-11-01 00:00', '2026-12-01 00:00') AS thirty_days;
-- The lot's local time decides, whatever the session's zone.
SET TIME ZONE 'UTC';
SELECT payext.parking_fee(:lot, '2026-11-20 11:30', '2026-11-20 12:30') AS utc_session;
SET TIME ZONE 'Asia/Shanghai';

-- Berlin changes to summer time on 2026-03-29 at 02:00 (UTC 01:00): a unit
-- is still 60 real minutes, and 08:00 local moves an hour earlier in UTC.
SELECT payext.create_parking_lot(:op, 'Berlin', 'Europe/Berlin', 0, 60, 300, 100,
                                 day_start => '08:00', night_start => '20:00',
                                 cap_stay => 9000) AS berlin \gset
-- 06:00-08:00 UTC on 03-28 is 07:00-09:00 CET: one night, one day unit.
SELECT payext.parking_fee(:berlin, '2026-03-28 06:00+00', '2026-03-28 08:00+00') AS before_change;
-- The same UTC hours on 03-29 are 08:00-10:00 CEST: two day units.
SELECT payext.parking_fee(:berlin, '2026-03-29 06:00+00', '2026-03-29 08:00+00') AS after_change;
-- A 24-hour block across the change is 24 real hours (23 on the clock):
-- from 03-28 12:00 UTC, 13:00 CET .. 03-29 14:00 CEST.  Day units start at
-- 13:00-19:00 CET (7), night 20:00 CET-07:00 CEST (11 real hours: 20..01 CET,
-- 03..07 CEST), day 08:00-13:00 CEST (6): 13 * 3.00 + 11 * 1.00.
SELECT payext.parking_fee(:berlin, '2026-03-28 12:00+00', '2026-03-29 12:00+00') AS across_change;
-- One query pricing many stays keeps the lot and the zone's offset spans it
-- has seen; it must agree with pricing each stay in a query of its
-- own.  2 000 stays of up to three days around both of 2026's changes, in
-- an order that jumps back and forth in time, at Berlin and at the flat lot.
CREATE TEMP TABLE fee_sample AS
SELECT g, CASE WHEN g % 3 = 0 THEN :lot ELSE :berlin END AS lot, t AS entered_at,
       t + make_interval(mins => (g * 7919) % 4320) AS exited_at
  FROM generate_series(1, 2000) g,
       LATERAL (SELECT CASE WHEN g % 2 = 0 THEN timestamptz '2026-03-27 00:00+00'
                            ELSE timestamptz '2026-10-23 00:00+00' END
                       + make_interval(mins => (g * 104729) % 10080) AS t) s;
CREATE TEMP TABLE fee_together AS
SELECT g, payext.parking_fee(lot, entered_at, exited_at) AS fee FROM fee_sample;
DO $$
DECLARE
  r record;
  alone bigint;
  differ int := 0;
BEGIN
  FOR r IN SELECT s.*, f.fee FROM fee_sample s JOIN fee_together f USING (g) LOOP
    -- A statement of its own each time: a new call site, nothing kept.
    EXECUTE 'SELECT payext.parking_fee($1, $2, $3)' INTO alone USING r.lot, r.entered_at, r.exited_at;
    IF alone IS DISTINCT FROM r.fee THEN differ := differ + 1; END IF;
  END LOOP;
  RAISE NOTICE 'stays priced together and alone that differ: %', differ;
END $$;
SELECT count(DISTINCT fee) > 100 AS varied_fees FROM fee_together;
-- parking_fee() is PARALLEL SAFE: parallel workers (the leader taking no
-- rows) price the same stays to the same fees, each with its own cache.
CREATE TABLE fee_parallel AS SELECT * FROM fee_sample;
ANALYZE fee_parallel;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT sum(payext.parking_fee(lot, entered_at, exited_at) * g) FROM fee_parallel;
SELECT (SELECT sum(payext.parking_fee(lot, entered_at, exited_at) * g) FROM fee_parallel)
     = (SELECT sum(fee * g) FROM fee_together) AS parallel_fees_agree;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE fee_parallel;
-- The stay cap.
SELECT payext.parking_fee(:berlin, '2026-03-01 00:00+00', '2026-04-01 00:00+00') AS stay_cap;

-- A lot whose day runs past midnight, and one without a night price.
SELECT payext.create_parking_lot(:op, 'Night shift', 'Asia/Shanghai', 0, 60, 300, 100,
                                 day_start => '20:00', night_start => '08:00') AS nightshift \gset
SELECT payext.parking_fee(:nightshift, '2026-11-20 07:00', '2026-11-20 09:00') AS day_then_night;
SELECT payext.create_parking_lot(:op, 'Flat', 'Asia/Shanghai', 0, 60, 300) AS flat \gset
SELECT payext.parking_fee(:flat, '2026-11-20 07:00', '2026-11-20 12:00') AS five_units;

-- Lots that make no sense are refused.
SELECT payext.create_parking_lot(:op, 'Bad', 'Mars/Olympus', 15, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', -1, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', 15, 0, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', 15, 30, -500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', 15, 30, 500, 200, '08:00', '08:00');
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', 15, 30, 500, 200, '08:00:30');
\echo :SQLSTATE
SELECT payext.create_parking_lot(:op, 'Bad', 'Asia/Shanghai', 15, 30, 500, cap_24h => -1);
\echo :SQLSTATE
SELECT payext.create_parking_lot(-1, 'Bad', 'Asia/Shanghai', 15, 30, 500);
\echo :SQLSTATE
SELECT payext.parking_fee(:lot, '2026-11-20 10:00', '2026-11-20 09:00');
\echo :SQLSTATE
SELECT payext.parking_fee(-1, '2026-11-20 10:00', '2026-11-20 11:00');
\echo :SQLSTATE
SELECT payext.parking_fee(:lot, '-infinity', '2026-11-20 11:00');
\echo :SQLSTATE

-- Stays.  Camera events are checked against the server's clock, so the
-- story's two days, 2026-11-20 and 2026-11-21, are moved by whole days to 12
-- and 11 days before today: story('2026-11-20 09:00') is 09:00 on the first.
-- Shanghai keeps UTC+8 all year, so every fee is the same whatever the day;
-- told() shows a time moved back to the story's days.
CREATE TEMP TABLE story_days AS
SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date - 12 - date '2026-11-20' AS days;
CREATE FUNCTION pg_temp.story(t text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT t::timestamptz + make_interval(hours => 24 * days) FROM story_days $$;
CREATE FUNCTION pg_temp.told(t timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT t - make_interval(hours => 24 * days) FROM story_days $$;
-- Amy's wallet; her car enters twice (the camera repeats itself).
SELECT payext.open_wallet('park_amy', 'SGD') AS amy \gset
SELECT payext.top_up(:amy, 10000, 'park-bank-1') > 0 AS topped_up;
SELECT payext.vehicle_entered(lot => :lot, plate => '粤B12345', at => pg_temp.story('2026-11-20 09:00')) AS s1 \gset
SELECT payext.vehicle_entered(:lot, '粤b 12345', pg_temp.story('2026-11-20 09:00:02')) = :s1 AS same_stay;
SELECT stay = :s1 AS s1, plate, lot = :lot AS harbour, exited_at, amount_due, lot_name, currency
  FROM payext.parking_service_info('park_amy', pg_temp.story('2026-11-20 11:00'));
-- She leaves at 11:10: five units at 5.00, paid automatically.
SELECT payext.vehicle_exited(lot => :lot, plate => '粤B12345', at => pg_temp.story('2026-11-20 11:10')) AS fee;
SELECT payext.vehicle_exited(:lot, '粤B12345', pg_temp.story('2026-11-20 11:10:30')) AS repeated_exit;
SELECT payext.balance(:amy) AS amy, payext.balance(:op) AS operator;
SELECT count(*) AS due_rows FROM payext.parking_service_info('park_amy', pg_temp.story('2026-11-20 12:00'));
SELECT state, fee, paid FROM payext.parking_stay WHERE id = :s1;

-- Her second car has no auto-pay: she pays in the app before leaving.  (At
-- the flat lot, 3.00 an hour at any hour, so that what is due now does not
-- depend on when this test runs: entered 90 minutes ago, two started hours.)
SELECT payext.vehicle_entered(:flat, 'SG1001', now() - interval '90 minutes') AS s2 \gset
SELECT amount_due FROM payext.parking_service_info('park_amy', now()) WHERE stay = :s2 \gset
SELECT :amount_due AS amount_due;
-- A stale amount is refused; the right one pays; paying again answers the same.
SELECT payext.pay_parking(stay => :s2, wallet => :amy, amount => :amount_due - 1);
\echo :SQLSTATE
SELECT payext.pay_parking(:s2, :amy, :amount_due) AS paid \gset
SELECT payext.pay_parking(:s2, :amy, :amount_due) = :paid AS same_payment;
SELECT payext.pay_parking(:s2, :amy, 1);
\echo :SQLSTATE
-- Leaving within exit_grace_minutes (15) of paying costs nothing more.
SELECT payext.vehicle_exited(:flat, 'SG1001', now()) AS fee;
SELECT count(*) AS due_rows FROM payext.parking_service_info('park_amy', now());
-- After the grace, what the stay costs by then becomes due, less what was
-- paid: entered 110 minutes ago, 2 hours paid; 16 minutes on it is 3 hours.
SELECT payext.vehicle_entered(:flat, 'SG1001', now() - interval '110 minutes') AS s2b \gset
SELECT payext.pay_parking(:s2b, :amy, 600) > 0 AS prepaid;
SELECT amount_due AS due_within_grace
  FROM payext.parking_service_info('park_amy', now() + interval '14 minutes') WHERE stay = :s2b;
SELECT amount_due AS due_after_grace
  FROM payext.parking_service_info('park_amy', now() + interval '16 minutes') WHERE stay = :s2b;
SELECT payext.vehicle_exited(:flat, 'SG1001', now()) AS fee;
-- A lot without grace: paid at 59m59.5s (one hour), gone a second later (two).
SELECT payext.create_parking_lot(:op, 'No grace', 'Asia/Shanghai', 0, 60, 300,
                                 exit_grace_minutes => 0) AS nograce \gset
SELECT payext.vehicle_entered(:nograce, 'SG1001', now() - interval '59 minutes 59.5 seconds') AS s2c \gset
SELECT payext.pay_parking(:s2c, :amy, 300) > 0 AS prepaid;
SELECT pg_sleep(1);
SELECT payext.vehicle_exited(:nograce, 'SG1001', now()) AS fee;
SELECT stay = :s2c AS s2c, amount_due FROM payext.parking_service_info('park_amy', now());
SELECT payext.pay_parking(:s2c, :amy, 300) > 0 AS paid_the_difference;

-- A short wallet: auto-pay leaves the stay due instead of losing the exit.
SELECT payext.withdraw(:amy, payext.balance(:amy), 'park-cashout-1') > 0 AS emptied;
SELECT payext.vehicle_entered(:lot, '粤B12345', pg_temp.story('2026-11-20 13:00')) AS s3 \gset
SELECT payext.vehicle_exited(:lot, '粤B12345', pg_temp.story('2026-11-20 14:00')) AS fee;
SELECT stay = :s3 AS s3, amount_due FROM payext.parking_service_info('park_amy', now());
SELECT payext.top_up(:amy, 1000, 'park-bank-2') > 0 AS topped_up;
SELECT payext.pay_parking(:s3, :amy, 1000) > 0 AS paid_later;

-- Whose stay is whose: Ben cannot pay Amy's; nobody's wallet pays an unbound plate.
SELECT payext.open_wallet('park_ben', 'SGD') AS ben \gset
SELECT payext.vehicle_entered(:lot, 'SG1003', pg_temp.story('2026-11-20 15:00')) AS s4 \gset
SELECT payext.pay_parking(:s4, :ben, 500);
\echo :SQLSTATE
SELECT payext.vehicle_entered(:lot, 'ZZ777', pg_temp.story('2026-11-20 15:00')) AS s5 \gset
SELECT payext.vehicle_exited(:lot, 'ZZ777', pg_temp.story('2026-11-20 16:00')) AS unbound_fee;
SELECT payext.pay_parking(:s5, :ben, 1000);
\echo :SQLSTATE
SELECT payext.pay_parking(-1, :ben, 1000);
\echo :SQLSTATE

-- Camera trouble: an exit without an entry is kept and reported; the late
-- entry completes the stay.  A car seen entering a second lot keeps both open.
SELECT payext.vehicle_exited(:lot, 'SG1002', pg_temp.story('2026-11-20 17:00')) IS NULL AS no_fee_yet;
SELECT anomaly, plate, pg_temp.told(seen_at) AS seen_at FROM payext.parking_anomaly WHERE plate = 'SG1002';
SELECT payext.vehicle_entered(:lot, 'SG1002', pg_temp.story('2026-11-20 16:00')) AS s6 \gset
SELECT state, pg_temp.told(entered_at) AS entered_at, pg_temp.told(exited_at) AS exited_at, fee
  FROM payext.parking_stay WHERE id = :s6;
SELECT payext.vehicle_entered(:flat, 'SG1003', pg_temp.story('2026-11-20 15:30')) > 0 AS entered_elsewhere;
SELECT anomaly, plate FROM payext.parking_anomaly WHERE plate = 'SG1003' ORDER BY stay;
SELECT payext.vehicle_entered(:lot, 'SG1003', now() + interval '1 hour');
\echo :SQLSTATE

-- More camera trouble.  An entry seen again 30 seconds later, after the
-- exit, is the same stay.
SELECT payext.vehicle_entered(:flat, 'CAM01', pg_temp.story('2026-11-21 08:00')) AS c1 \gset
SELECT payext.vehicle_exited(:flat, 'CAM01', pg_temp.story('2026-11-21 09:00')) AS fee;
SELECT payext.vehicle_entered(:flat, 'CAM01', pg_temp.story('2026-11-21 08:00:30')) = :c1 AS same_stay;
-- It enters at 10:00 and, its exit unseen, again at 12:00: the 10:00 stay's
-- exit was missed.  That stay is set aside for a person, not charged.
SELECT payext.vehicle_entered(:flat, 'CAM01', pg_temp.story('2026-11-21 10:00')) AS c2 \gset
SELECT payext.vehicle_entered(:flat, 'CAM01', pg_temp.story('2026-11-21 12:00')) AS c3 \gset
SELECT id = :c2 AS c2, id = :c3 AS c3, state, fee FROM payext.parking_stay
 WHERE id IN (:c2, :c3) ORDER BY id;
SELECT anomaly FROM payext.parking_anomaly WHERE stay = :c2;
-- A late entry (11:00) while a later stay is open, with its exit seen first.
SELECT payext.vehicle_exited(:flat, 'CAM02', pg_temp.story('2026-11-21 11:30')) IS NULL AS exit_first;
SELECT payext.vehicle_entered(:flat, 'CAM02', pg_temp.story('2026-11-21 11:45')) AS c4 \gset
SELECT payext.vehicle_entered(:flat, 'CAM02', pg_temp.story('2026-11-21 11:00')) AS c5 \gset
SELECT id = :c4 AS c4, state, pg_temp.told(entered_at) AS entered_at,
       pg_temp.told(exited_at) AS exited_at, fee FROM payext.parking_stay
 WHERE id IN (:c4, :c5) ORDER BY id;

-- A stay follows the owner it entered under: Amy's unpaid stay does not
-- become Ben's when the plate changes hands.
SELECT payext.vehicle_entered(:lot, 'SG1003', pg_temp.story('2026-11-21 10:00')) AS s7 \gset
SELECT payext.vehicle_exited(:lot, 'SG1003', pg_temp.story('2026-11-21 11:00')) AS fee;
SELECT payext.unbind_vehicle('park_amy', 'SG1003');
SELECT payext.bind_vehicle('park_ben', 'SG1003');
SELECT count(*) AS bens_rows FROM payext.parking_service_info('park_ben', now()) WHERE stay = :s7;
SELECT payext.top_up(:ben, 5000, 'park-bank-ben') > 0 AS topped_up;
SELECT payext.pay_parking(:s7, :ben, 1000);
\echo :SQLSTATE

-- Every parking payment left a payment interaction with the operator.
SELECT kind, consumer, public_service_id, amount FROM payext.interaction
 WHERE public_service_id = 'gh_park_city' ORDER BY id;
SELECT check_name, ok FROM payext.verify_ledger();

-- Review: "a camera entry dated 1970 followed by an exit auto-paid
-- 1,247,640.00 CNY; 4713-01-01 BC was accepted too."  Camera times more than
-- payext.max_stay (30 days) before the server's clock, or more than
-- payext.max_clock_skew (5 minutes) after it, are refused (PY412); the clock
-- is the transaction's start, now().
SHOW payext.max_stay;
SHOW payext.max_clock_skew;
SELECT payext.open_merchant('gh_park_review', 'Review Parking', 'CNY') AS rop \gset
SELECT payext.create_parking_lot(:rop, 'Review', 'Asia/Shanghai', 0, 60, 500, cap_24h => 6000) AS rlot \gset
SELECT payext.open_wallet('park_rita', 'CNY') AS rita \gset
SELECT payext.top_up(:rita, 200000000, 'park-rita-1') > 0 AS topped_up;
SELECT payext.bind_vehicle('park_rita', 'RV1970', auto_pay => true);
SELECT payext.vehicle_entered(:rlot, 'RV1970', '1970-01-01 08:00');
\echo :SQLSTATE
SELECT payext.vehicle_entered(:rlot, 'RV1970', '4713-01-01 00:00 BC');
\echo :SQLSTATE
SELECT payext.vehicle_entered(:rlot, 'RV1970', now() - interval '31 days');
\echo :SQLSTATE
SELECT payext.vehicle_entered(:rlot, 'RV1970', now() - interval '30 days 0.000001 seconds');
\echo :SQLSTATE
SELECT payext.vehicle_entered(:rlot, 'RV1970', now() + interval '5 minutes 1 second');
\echo :SQLSTATE
SELECT payext.vehicle_exited(:rlot, 'RV1970', '1970-01-02 08:00');
\echo :SQLSTATE
-- No entry on record, so the exit is kept as an anomaly and nothing is paid.
SELECT payext.vehicle_exited(:rlot, 'RV1970', now()) IS NULL AS no_fee;
SELECT payext.balance(:rita) AS rita;
-- Exactly at the bounds: accepted.
SELECT payext.vehicle_entered(:rlot, 'RV0030', now() - interval '30 days') > 0 AS thirty_days_ago;
SELECT payext.vehicle_exited(:rlot, 'RV0030', now() - interval '30 days' + interval '90 minutes') AS fee;
SELECT payext.vehicle_entered(:rlot, 'RV0005', now() + interval '5 minutes') > 0 AS five_minutes_ahead;
-- Both bounds are settings (a superuser's).
SET payext.max_clock_skew = '1min';
SELECT payext.vehicle_entered(:rlot, 'RV0001', now() + interval '2 minutes');
\echo :SQLSTATE
SET payext.max_stay = '2d';
SELECT payext.vehicle_entered(:rlot, 'RV0002', now() - interval '3 days');
\echo :SQLSTATE
RESET payext.max_clock_skew;
RESET payext.max_stay;
SELECT payext.vehicle_entered(:rlot, 'RV0002', now() - interval '3 days') > 0 AS three_days_ago;

-- Review: "a lot with a huge unit price made an exit overflow (PY413): the
-- exit was lost and the owner's whole parking listing failed."  A lot whose
-- tariff could charge more than 64 bits over payext.max_stay is refused
-- (PY405).  The worst case is every unit at the dearer price, each 24 hours
-- capped at cap_24h, the whole stay at cap_stay: 30 days of 1-minute units
-- are 43,200 units, and 9223372036854775807 / 43200 = 213503982334601.
SELECT payext.create_parking_lot(:rop, 'Huge', 'Asia/Shanghai', 0, 1, 213503982334602);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Huge nights', 'Asia/Shanghai', 0, 1, 100, 213503982334602);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Largest', 'Asia/Shanghai', 0, 1, 213503982334601) > 0 AS largest;
SELECT payext.create_parking_lot(:rop, 'Capped', 'Asia/Shanghai', 0, 1, 9223372036854775807,
                                 cap_24h => 6000) > 0 AS capped_24h;
SELECT payext.create_parking_lot(:rop, 'Capped stay', 'Asia/Shanghai', 0, 1, 9223372036854775807,
                                 cap_stay => 9223372036854775807) > 0 AS capped_stay;

-- The rest of that review: an exit that cannot be priced is kept, as an
-- anomaly (PY415, a WARNING), never lost, and the owner's listing keeps
-- working.  One cause: a lot made while payext.max_stay was a day, whose
-- tariff fits a day but not more (1-minute units at 4 * 10^15: 5.76 * 10^18
-- a day); with the setting back at 30 days, a 3-day stay's fee does not fit
-- in 64 bits.  The other: a stay longer than payext.max_stay, never priced
-- at exit (no lot's tariff is checked beyond it).
SET payext.max_stay = '1d';
SELECT payext.create_parking_lot(:rop, 'Raised', 'Asia/Shanghai', 0, 1, 4000000000000000) AS raised \gset
RESET payext.max_stay;
SELECT payext.bind_vehicle('park_rita', 'RV0003', auto_pay => true);
SELECT payext.bind_vehicle('park_rita', 'RV0006', auto_pay => true);
SELECT payext.vehicle_entered(:raised, 'RV0003', now() - interval '3 days') AS s_raised \gset
SELECT payext.vehicle_entered(:rlot, 'RV0006', now() - interval '30 days') AS s_long \gset
-- Her app lists both, without an amount: the first's fee does not fit, the
-- second has been in for 30 days and a moment by now.
SELECT stay = :s_raised AS raised, stay = :s_long AS long, plate, exited_at, amount_due
  FROM payext.parking_service_info('park_rita') ORDER BY stay;
SELECT payext.pay_parking(:s_raised, :rita, 1);
\echo :SQLSTATE
-- Their exits: kept, not charged, a WARNING with its SQLSTATE (shown alone
-- first, then in full), NULL for the fee; the repeated event adds nothing.
\set VERBOSITY sqlstate
SELECT payext.vehicle_exited(:raised, 'RV0003', now()) IS NULL AS no_fee;
\set VERBOSITY default
SELECT payext.vehicle_exited(:rlot, 'RV0006', now()) IS NULL AS no_fee;
SELECT payext.vehicle_exited(:raised, 'RV0003', now()) IS NULL AS repeated_exit;
SELECT id = :s_raised AS raised, plate, state, fee, exited_at IS NOT NULL AS exited, paid
  FROM payext.parking_stay WHERE id IN (:s_raised, :s_long) ORDER BY id;
SELECT stay = :s_raised AS raised, plate, anomaly FROM payext.parking_anomaly
 WHERE stay IN (:s_raised, :s_long) ORDER BY stay;
SELECT stay = :s_raised AS raised, plate, exited_at IS NOT NULL AS exited, amount_due
  FROM payext.parking_service_info('park_rita') ORDER BY stay;
SELECT payext.pay_parking(:s_long, :rita, 180500);
\echo :SQLSTATE
SELECT payext.balance(:rita) AS rita;
-- Automatic payment at exit takes at most payext.max_auto_pay (20000 minor
-- units: 200.00 CNY); a dearer stay is not paid automatically and stays due
-- for the owner to pay.  At the Review lot (5.00 an hour, 60.00 a day at
-- most), 3 days 4 hours cost 200.00, a microsecond more 205.00.  (One
-- transaction, so that now() is one instant.)
SHOW payext.max_auto_pay;
SELECT payext.open_wallet('park_abe', 'CNY') AS abe \gset
SELECT payext.top_up(:abe, 100000, 'park-abe-1') > 0 AS topped_up;
SELECT payext.bind_vehicle('park_abe', 'AB0200', auto_pay => true);
SELECT payext.bind_vehicle('park_abe', 'AB0205', auto_pay => true);
BEGIN;
SELECT payext.vehicle_entered(:rlot, 'AB0200', now() - interval '4 days') AS s_200 \gset
SELECT payext.vehicle_entered(:rlot, 'AB0205', now() - interval '4 days') AS s_205 \gset
SELECT payext.vehicle_exited(:rlot, 'AB0200', now() - interval '20 hours') AS fee;
SELECT payext.vehicle_exited(:rlot, 'AB0205', now() - interval '20 hours' + interval '1 microsecond') AS fee;
COMMIT;
SELECT id = :s_200 AS s_200, fee, paid FROM payext.parking_stay WHERE id IN (:s_200, :s_205) ORDER BY id;
SELECT stay = :s_205 AS s_205, amount_due FROM payext.parking_service_info('park_abe');
SELECT payext.pay_parking(:s_205, :abe, 20500) > 0 AS paid_by_abe;
SELECT payext.balance(:abe) AS abe;
-- A superuser's setting: 0 turns automatic payment off.
SET payext.max_auto_pay = 0;
SELECT payext.vehicle_entered(:rlot, 'AB0200', now() - interval '2 hours') AS s_off \gset
SELECT payext.vehicle_exited(:rlot, 'AB0200', now() - interval '90 minutes') AS fee;
RESET payext.max_auto_pay;
SELECT stay = :s_off AS s_off, amount_due FROM payext.parking_service_info('park_abe');
-- Review: "a lot's time_zone '+08:00' is read as UTC-8 (POSIX sign)."  A
-- lot's time zone is an IANA name, or an ISO 8601 offset, which means east
-- of UTC as ISO says, kept as a zone that prices that way (parking_lot shows
-- what is kept); rules that PostgreSQL would read the POSIX way, offsets
-- west of UTC, are refused (PY406).  Day 08:00-20:00 at 5.00, night at
-- 1.00, 30-minute units.
SELECT payext.create_parking_lot(:rop, 'East', '+08:00', 0, 30, 500, 100) AS east \gset
SELECT payext.create_parking_lot(:rop, 'Shanghai', 'Asia/Shanghai', 0, 30, 500, 100) AS shanghai \gset
SELECT time_zone FROM payext.parking_lot WHERE id = :east;
-- 23:30-00:30 UTC is 07:30-08:30 at UTC+8: a night unit, then a day unit,
-- 6.00, as in Shanghai.  (At UTC-8 it would be 15:30-16:30: 10.00.)
SELECT payext.parking_fee(:east, '2026-11-20 23:30+00', '2026-11-21 00:30+00') AS east,
       payext.parking_fee(:shanghai, '2026-11-20 23:30+00', '2026-11-21 00:30+00') AS shanghai;
-- Half hours: 02:00-03:00 UTC is 07:30-08:30 at +05:30 (as in Kolkata),
-- 13:00-14:00 UTC is 07:30-08:30 at -05:30.
SELECT payext.create_parking_lot(:rop, 'India', '+05:30', 0, 30, 500, 100) AS india \gset
SELECT payext.create_parking_lot(:rop, 'Kolkata', 'Asia/Kolkata', 0, 30, 500, 100) AS kolkata \gset
SELECT payext.create_parking_lot(:rop, 'West', '-05:30', 0, 30, 500, 100) AS west \gset
SELECT id = :india AS india, id = :west AS west, time_zone FROM payext.parking_lot
 WHERE id IN (:india, :west) ORDER BY id;
SELECT payext.parking_fee(:india, '2026-11-20 02:00+00', '2026-11-20 03:00+00') AS india,
       payext.parking_fee(:kolkata, '2026-11-20 02:00+00', '2026-11-20 03:00+00') AS kolkata,
       payext.parking_fee(:west, '2026-11-20 13:00+00', '2026-11-20 14:00+00') AS west;
-- Other spellings of an offset; the largest offsets in use; an IANA name
-- kept as the zone database spells it.
CREATE TEMP TABLE zone_lots AS
SELECT t AS given, payext.create_parking_lot(:rop, 'Zone ' || t, t, 0, 30, 500, 100) AS lot
  FROM unnest(ARRAY['+0800', '+08', '-05', '+00:00', '+14:00', '-12:00', '+0545', 'asia/shanghai', 'EST5EDT'])
       WITH ORDINALITY AS u(t, n)
 ORDER BY n;
SELECT z.given, l.time_zone AS kept FROM zone_lots z JOIN payext.parking_lot l ON l.id = z.lot ORDER BY z.lot;
-- Refused: POSIX rules ('UTC+8' is UTC-8 to PostgreSQL), offsets that are
-- not ISO 8601 or not in use, the server's own local time.
SELECT payext.create_parking_lot(:rop, 'Bad', 'UTC+8', 0, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Bad', 'XYZ+3', 0, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Bad', '+8:00', 0, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Bad', '+14:30', 0, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Bad', '+08:60', 0, 30, 500);
\echo :SQLSTATE
SELECT payext.create_parking_lot(:rop, 'Bad', 'localtime', 0, 30, 500);
\echo :SQLSTATE
SELECT check_name, ok FROM payext.verify_ledger();
