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

\echo '== At the counter, Alice''s app asks for a payment code (18 digits, valid 60 s, single use).'
SELECT payext.request_payment(wallet => :alice) AS code \gset
\echo 'the app shows:' :code
\echo '== The tea house''s till scans it and charges 23.50 CNY for order T-0042.'
SELECT payext.charge(merchant => :teahouse, code => :'code', amount => 2350, order_ref => 'T-0042') AS charge;
\echo '== The till times out and sends the same request again: the same transfer, nothing moves twice.'
SELECT payext.charge(merchant => :teahouse, code => :'code', amount => 2350, order_ref => 'T-0042') AS same_charge;
\echo '== Someone replays the code for another order: refused.'
\set ON_ERROR_STOP 0
SELECT payext.charge(merchant => :teahouse, code => :'code', amount => 2350, order_ref => 'T-0043');
\set ON_ERROR_STOP 1
\echo '== A typo in the code is caught by its check digit, before anything is looked up.'
\set ON_ERROR_STOP 0
SELECT payext.charge(merchant => :teahouse, code => overlay(:'code' PLACING
         ((substr(:'code', 5, 1)::int + 1) % 10)::text FROM 5 FOR 1), amount => 100, order_ref => 'T-0044');
\set ON_ERROR_STOP 1
\echo '== One pot of tea was cold: the tea house refunds 8.00 CNY of the order.'
SELECT payext.refund(merchant => :teahouse, order_ref => 'T-0042', amount => 800, refund_ref => 'T-0042-R1') AS refund;
SELECT transfer_id, payext.format_amount(amount, 'CNY') AS charged,
       payext.format_amount(refunded_amount, 'CNY') AS refunded, state
  FROM payext.payment_status(merchant => :teahouse, order_ref => 'T-0042');

\echo '== The tea house wants regulars to follow its official account: 3 payments within 30 days.'
SELECT payext.set_association_rule(public_service_id => 'gh_teahouse', min_interactions => 3,
                                   within => '30 days');
\echo '== Alice comes back twice; her third payment links her to the tea house, by itself.'
SELECT payext.charge(merchant => :teahouse, code => payext.request_payment(wallet => :alice),
                     amount => 1800, order_ref => 'T-0051') AS second_visit;
SELECT count(*) AS alice_linked_yet FROM payext.association WHERE consumer = 'wx_alice';
SELECT payext.charge(merchant => :teahouse, code => payext.request_payment(wallet => :alice),
                     amount => 2200, order_ref => 'T-0063') AS third_visit;
SELECT consumer, public_service_id, how FROM payext.association;
\echo '== Bob drops in once.'
SELECT payext.open_wallet(owner => 'wx_bob') AS bob \gset
SELECT payext.top_up(wallet => :bob, amount => 5000, external_ref => 'card-1234-0001') IS NOT NULL AS topped_up;
SELECT payext.charge(merchant => :teahouse, code => payext.request_payment(wallet => :bob),
                     amount => 1500, order_ref => 'T-0064') AS bobs_visit;
\echo '== An analyst looks at the tea house''s funnel.'
SELECT public_service_id, consumers, payments, repeat_consumers, associated_consumers,
       conversion_rate, payext.format_amount(payment_amount::bigint, 'CNY') AS paid,
       payext.format_amount(refund_amount::bigint, 'CNY') AS refunded
  FROM payext.merchant_summary;
SELECT consumer, payments, payext.format_amount(payment_amount::bigint, 'CNY') AS paid, associated
  FROM payext.consumer_merchant ORDER BY consumer;

\echo '== Parking.  Alice binds her car (any spelling of the plate) with automatic payment.'
SELECT payext.bind_vehicle(owner => 'wx_alice', plate => '粤b-12345', auto_pay => true);
SELECT plate, owner, auto_pay FROM payext.vehicle;
\echo '== The tea house also runs a car park: 15 min free, 30-min units, 5.00 by day, 2.00 by night, 60.00 a day at most.'
SELECT payext.create_parking_lot(operator => :teahouse, name => 'Lotus Car Park', time_zone => 'Asia/Shanghai',
                                 free_minutes => 15, unit_minutes => 30, day_price => 500,
                                 night_price => 200, cap_24h => 6000) AS lot \gset
-- Cameras report events as they happen (payext refuses times more than
-- payext.max_stay old): her evening out was yesterday, Shanghai time.
SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date - 1 AS yesterday \gset
\echo '== The camera saw her enter at 18:40 yesterday and (the camera repeats itself) again: one stay.'
SELECT payext.vehicle_entered(lot => :lot, plate => '粤B 12345', at => (:'yesterday' || ' 18:40+08')::timestamptz) AS stay;
SELECT payext.vehicle_entered(lot => :lot, plate => '粤B12345', at => (:'yesterday' || ' 18:40:03+08')::timestamptz) AS same_stay;
\echo '== At 20:05 her app showed what was due: 18:40, 19:10 and 19:40 were day units; 20:10 had not started.'
SELECT plate, payext.format_amount(amount_due, currency) AS due, lot_name
  FROM payext.parking_service_info(owner => 'wx_alice', at => (:'yesterday' || ' 20:05+08')::timestamptz);
\echo '== She left at 20:15: one night unit more, paid from her wallet at the gate.'
SELECT payext.format_amount(payext.vehicle_exited(lot => :lot, plate => '粤B12345',
                                                  at => (:'yesterday' || ' 20:15+08')::timestamptz), 'CNY') AS fee;
SELECT count(*) AS still_due FROM payext.parking_service_info(owner => 'wx_alice');

\echo '== Alice tries to withdraw more than she has: refused, and nothing changes.'
\set ON_ERROR_STOP 0
SELECT payext.withdraw(account => :alice, amount => 99999, external_ref => 'cashout-1');
\set ON_ERROR_STOP 1

\echo '== The tea house is paid out 10.00 CNY to its bank.'
SELECT payext.withdraw(account => :teahouse, amount => 1000, external_ref => 'payout-2026-11-25') AS payout;

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

\echo '== verify_ledger(): balances equal the journal, money is conserved, every code paid at most once.'
SELECT * FROM payext.verify_ledger();

\c postgres
DROP DATABASE payext_demo;
