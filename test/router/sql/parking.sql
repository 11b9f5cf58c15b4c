-- Parking through the router: a lot on every partition, a plate's
-- bindings and stays on its own partition (the hash of its normalised
-- text), what is due gathered from all of them, and a stay paid from a
-- wallet of another partition by a saga, at exit or by pay_parking.
SET client_min_messages = warning;
SELECT payext.open_merchant('gh_router_park', 'Router Park') AS op \gset
SELECT payext.create_parking_lot(:op, 'Router Park', 'Asia/Shanghai', 15, 30, 500,
                                 cap_24h => 6000) AS lot \gset
SELECT payext.partition_of(:lot) AS lot_id_of, count(*) AS partitions_with_lot,
       count(DISTINCT payext.partition_of(local_lot)) AS each_its_own
  FROM payext.lot_map WHERE lot = :lot GROUP BY 1;
-- An owner of partition 0 with a plate on each partition.
SELECT o AS owner FROM generate_series(1, 100) g, format('park-%s', g) o
 WHERE payext.owner_partition(o, 2) = 0 LIMIT 1 \gset
SELECT pl AS plate0 FROM generate_series(1, 100) g, format('粤B%s', 10000 + g) pl
 WHERE payext.route_plate(pl) = 0 LIMIT 1 \gset
SELECT pl AS plate1 FROM generate_series(1, 100) g, format('粤B%s', 10000 + g) pl
 WHERE payext.route_plate(pl) = 1 LIMIT 1 \gset
SELECT payext.open_wallet(:'owner') AS wallet \gset
SELECT payext.partition_of(:wallet) AS wallet_on, payext.top_up(:wallet, 10000, 'park-in') > 0 AS topped_up;
SELECT payext.bind_vehicle(:'owner', :'plate0', true), payext.bind_vehicle(:'owner', :'plate1', false);
-- A plate has one owner, on its partition, whoever asks.
\set VERBOSITY sqlstate
SELECT payext.bind_vehicle('park-other', lower(:'plate1'));
\set VERBOSITY default

-- Two stays, each on its plate's partition.
SELECT payext.vehicle_entered(:lot, :'plate0', now() - interval '2 hours') AS stay0,
       payext.vehicle_entered(:lot, :'plate1', now() - interval '2 hours') AS stay1 \gset
SELECT payext.partition_of(:stay0) AS stay0_on, payext.partition_of(:stay1) AS stay1_on;
SELECT payext.vehicle_entered(:lot, :'plate1', now() - interval '2 hours') = :stay1 AS same_stay;
SELECT plate = :'plate0' AS is_plate0, lot = :lot AS router_lot, amount_due > 0 AS due
  FROM payext.parking_service_info(:'owner') ORDER BY stay;
-- The exit on the wallet's partition pays itself; the other plate asked
-- for no automatic payment, and its stay stays due.
SELECT payext.vehicle_exited(:lot, :'plate0', now() - interval '5 minutes') AS fee0,
       payext.vehicle_exited(:lot, :'plate1', now() - interval '5 minutes') AS fee1;
SELECT payext.balance(:wallet) AS wallet_after, payext.balance(:op) AS operator_after;
SELECT stay = :stay1 AS is_stay1, plate = :'plate1' AS is_plate1, amount_due
  FROM payext.parking_service_info(:'owner');
-- Paid from the wallet on the other partition: a saga (the stay's own
-- payment is returned); a stale amount is refused there and the money
-- comes back; again, nothing is due.
\set VERBOSITY sqlstate
SELECT payext.pay_parking(:stay1, :wallet, 1999);
\set VERBOSITY default
SELECT payext.balance(:wallet) AS wallet_unchanged;
SELECT payext.pay_parking(:stay1, :wallet, 2000) AS paid1 \gset
SELECT payext.partition_of(:paid1) AS paid_on, payext.balance(:wallet) AS wallet_after,
       payext.balance(:op) AS operator_after;
SELECT count(*) AS due_left FROM payext.parking_service_info(:'owner');
SELECT payext.pay_parking(:stay1, :wallet, 2000) = :paid1 AS same_payment;
SELECT purpose, from_partition, to_partition, amount, state, refused_sqlstate FROM payext.sagas()
 WHERE account = :wallet ORDER BY created_at;
\set VERBOSITY sqlstate
SELECT payext.pay_parking(:stay1, :wallet, 100);
\set VERBOSITY default
-- The payment is the owner's interaction, on the owner's partition.
SELECT consumer = :'owner' AS the_owner, kind, amount
  FROM payext.merchant_interactions(:op) WHERE amount = 2000 ORDER BY interaction_id;

-- Automatic payment at exit from the wallet on the other partition: the
-- camera's exit runs the parking saga within payext.max_auto_pay.
SELECT payext.bind_vehicle(:'owner', :'plate1', true);
SELECT payext.vehicle_entered(:lot, :'plate1', now() - interval '40 minutes') AS stay3 \gset
SELECT payext.vehicle_exited(:lot, :'plate1', now() - interval '2 minutes') AS fee3;
SELECT payext.balance(:wallet) AS wallet_after_exit,
       (SELECT count(*) FROM payext.parking_service_info(:'owner')) AS due_left;
SELECT purpose, from_partition, to_partition, amount, state FROM payext.sagas()
 WHERE account = :wallet ORDER BY created_at DESC LIMIT 1;
-- The camera repeats the exit: nothing more is paid.
SELECT payext.vehicle_exited(:lot, :'plate1', now() - interval '2 minutes') AS fee3_again;
SELECT payext.balance(:wallet) AS wallet_unchanged,
       (SELECT count(*) FROM payext.sagas() WHERE account = :wallet) AS sagas;
-- Too little in the wallet: the exit is recorded, the stay stays due.
SELECT pl AS plate3 FROM generate_series(201, 300) g, format('粤B%s', 10000 + g) pl
 WHERE payext.route_plate(pl) = 1 LIMIT 1 \gset
SELECT payext.bind_vehicle(:'owner', :'plate3', true);
SELECT payext.withdraw(:wallet, payext.balance(:wallet) - 100, 'park-out') > 0 AS emptied;
SELECT payext.vehicle_entered(:lot, :'plate3', now() - interval '40 minutes') AS stay4 \gset
SELECT payext.vehicle_exited(:lot, :'plate3', now() - interval '1 minute') AS fee4;
SELECT stay = :stay4 AS is_stay4, amount_due FROM payext.parking_service_info(:'owner');
SELECT payext.balance(:wallet) AS wallet_left;
-- Refused for a while (the operator's account there frozen), then paid:
-- a refused attempt does not refuse the next.
SELECT payext.top_up(:wallet, 2000, 'park-in-2') > 0 AS topped_up;
SELECT account AS op1 FROM payext.merchant_accounts(:op) WHERE partition_number = 1 \gset
SELECT payext.freeze(:op1);
\set VERBOSITY sqlstate
SELECT payext.pay_parking(:stay4, :wallet, 1000);
\set VERBOSITY default
SELECT payext.unfreeze(:op1);
SELECT payext.partition_of(payext.pay_parking(:stay4, :wallet, 1000)) AS paid_on,
       payext.balance(:wallet) AS wallet_after;

-- payext.max_vehicles (3) counts every partition: the owner's slots are
-- on the owner's partition.  A fourth plate is refused wherever it
-- hashes; after an unbinding it fits.
SELECT pl AS plate4 FROM generate_series(301, 400) g, format('粤B%s', 10000 + g) pl
 WHERE payext.route_plate(pl) = 0 LIMIT 1 \gset
\set VERBOSITY sqlstate
SELECT payext.bind_vehicle(:'owner', :'plate4');
\set VERBOSITY default
SELECT payext.unbind_vehicle(:'owner', :'plate0');
SELECT payext.bind_vehicle(:'owner', :'plate4');
SELECT * FROM payext.verify_vehicle_slots();
-- An owner of partition 1 pays that partition's stay from its wallet there.
SELECT o AS owner1 FROM generate_series(1, 100) g, format('park-%s', g) o
 WHERE payext.owner_partition(o, 2) = 1 LIMIT 1 \gset
SELECT pl AS plate2 FROM generate_series(101, 200) g, format('粤B%s', 10000 + g) pl
 WHERE payext.route_plate(pl) = 1 LIMIT 1 \gset
SELECT payext.open_wallet(:'owner1') AS wallet1 \gset
SELECT payext.top_up(:wallet1, 5000, 'park-in-1') > 0 AS topped_up;
SELECT payext.bind_vehicle(:'owner1', :'plate2');
SELECT payext.vehicle_entered(:lot, :'plate2', now() - interval '1 hour') AS stay2 \gset
SELECT payext.vehicle_exited(:lot, :'plate2', now() - interval '1 minute') AS fee2;
SELECT amount_due FROM payext.parking_service_info(:'owner1');
SELECT payext.partition_of(payext.pay_parking(:stay2, :wallet1, 1000)) AS paid_on,
       payext.balance(:wallet1) AS wallet1_after;
SELECT count(*) AS due_left FROM payext.parking_service_info(:'owner1');
-- The tariff, from the lot's partition.
SELECT payext.parking_fee(:lot, now() - interval '2 hours', now()) AS two_hours;
-- Times reach the partition as the caller meant them, whatever its
-- DateStyle: 10:00 in Shanghai is day time.  (PL/Proxy sends them as text;
-- in the caller's Postgres style, "Fri Nov 20 10:00:00 2026 CST" was read
-- there as US Central time, midnight in Shanghai, at the night price.)
SELECT payext.create_parking_lot(:op, 'Router Park Nights', 'Asia/Shanghai', 15, 30, 500, 200)
       AS night_lot \gset
SET TIME ZONE 'Asia/Shanghai';
SET DateStyle = 'Postgres, DMY';
SELECT payext.parking_fee(:night_lot, '2026-11-20 10:00', '2026-11-20 10:15:00.000001') AS day_unit,
       payext.parking_fee(:night_lot, '20/11/2026 22:00', '20/11/2026 22:15:00.000001') AS night_unit;
RESET DateStyle;
RESET TIME ZONE;
-- Unknown lot: the partition's own refusal.
\set VERBOSITY sqlstate
SELECT payext.vehicle_entered(424242, :'plate0');
\set VERBOSITY default
SELECT check_name, bool_and(ok) AS ok FROM payext.verify_ledger()
 WHERE check_name IN ('money_conserved', 'parking_matches_journal', 'placement_ids',
                     'placement_owners', 'sagas_match_journal', 'vehicle_slots_match')
 GROUP BY 1 ORDER BY 1;
