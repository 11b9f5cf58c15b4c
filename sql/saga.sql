--
-- Sagas, the partition's side (src/sql/saga.sql): this database is
-- partition 0 and plays both ends against an imagined partition 1.  The
-- router's story is test/router/sql/saga.sql; concurrency:
-- test/specs/saga_receive_race.spec.
--
\set VERBOSITY default
SET client_min_messages = notice;
SELECT payext.open_wallet('saga-ann') AS ann, payext.open_wallet('saga-bob') AS bob \gset
SELECT payext.top_up(:ann, 1000, 'saga-ann-in') > 0 AS topped_up;
-- An account of partition 1 (ids carry their partition in the high bits).
SELECT (1::bigint << 56) | 7 AS far \gset

-- Leg 1: the money leaves the wallet for the clearing account of its
-- currency, made on first use, and the saga is recorded as open.
SELECT payext.saga_send('00000000-0000-4000-8000-000000000001', :ann, 300, 1, :far) AS out1 \gset
-- The saga's id is derived here from the partition, the purpose, the
-- paying account and the caller's key: no other account's saga can take it.
SELECT payext.saga_id_of(0, 'transfer', :ann, '00000000-0000-4000-8000-000000000001') AS s1 \gset
SELECT id = :'s1' AS derived_id FROM payext.saga;
SELECT payext.partition_of(:out1) AS out_on, payext.balance(:ann) AS ann_after;
SELECT id AS clearing FROM payext.account WHERE kind = 'clearing' \gset
SELECT kind, currency, balance IS NULL AS stores_none, status FROM payext.account WHERE id = :clearing;
SELECT payext.balance(:clearing) AS clearing_holds;
SELECT state, amount, currency, to_partition, to_account = :far AS to_far,
       out_transfer = :out1 AS out_recorded, in_transfer, back_transfer, finished_at
  FROM payext.saga;
SELECT kind, debit_account = :ann AS from_ann, credit_account = :clearing AS to_clearing,
       amount, reference = :'s1' AS saga_is_reference
  FROM payext.transfer WHERE id = :out1;
-- Again: the same transfer, nothing moves; with another amount: PY107.
SELECT payext.saga_send('00000000-0000-4000-8000-000000000001', :ann, 300, 1, :far) = :out1 AS same,
       payext.balance(:ann) AS ann_again;
-- (Errors that name account ids show their SQLSTATE only: the ids depend
-- on the tests run before this one.)
\set VERBOSITY sqlstate
SELECT payext.saga_send('00000000-0000-4000-8000-000000000001', :ann, 301, 1, :far);

-- Only a saga's legs move a clearing account (PY111).
SELECT payext.transfer(:clearing, :bob, 10);
SELECT payext.transfer(:bob, :clearing, 10);
SELECT payext.withdraw(:clearing, 10, 'saga-out');
SELECT payext.top_up(:clearing, 10, 'saga-in');
SELECT payext.freeze(:clearing);
SELECT payext.close_account(:clearing);
SELECT payext.saga_send(gen_random_uuid(), :clearing, 10, 1, :far);
-- The other side must be another partition, which its account names.
\set VERBOSITY terse
SELECT payext.saga_send(gen_random_uuid(), :ann, 10, 0, :bob);
SELECT payext.saga_send(gen_random_uuid(), :ann, 10, 2, :far);
SELECT payext.saga_send(gen_random_uuid(), :ann, 10, 100, :far);
SELECT payext.saga_send(NULL, :ann, 10, 1, :far);
SELECT payext.saga_send(gen_random_uuid(), :ann, 0, 1, :far);
\set VERBOSITY sqlstate
SELECT payext.saga_send(gen_random_uuid(), :ann, 5000, 1, :far);
\set VERBOSITY default

-- Partition 1 refused it: the money comes back, the saga is returned,
-- and stays so; it can no longer be finished.
SELECT payext.saga_return(:'s1', 'PY103', 'account 7 is closed') AS back1 \gset
SELECT payext.balance(:ann) AS ann_back, payext.balance(:clearing) AS clearing_empty;
SELECT state, back_transfer = :back1 AS back_recorded, refused_sqlstate, refused_message,
       finished_at IS NOT NULL AS finished
  FROM payext.saga;
SELECT payext.saga_return(:'s1', 'PY103', 'again') = :back1 AS same_return;
\set VERBOSITY sqlstate
SELECT payext.saga_finish(:'s1', 12345);
\set VERBOSITY default

-- Delivered instead: done, and no longer returnable.
SELECT payext.saga_send('00000000-0000-4000-8000-000000000002', :ann, 200, 1, :far) > 0 AS sent;
SELECT payext.saga_id_of(0, 'transfer', :ann, '00000000-0000-4000-8000-000000000002') AS s2 \gset
SELECT payext.saga_finish(:'s2', (1::bigint << 56) | 99);
SELECT payext.saga_finish(:'s2', (1::bigint << 56) | 99);
\set VERBOSITY sqlstate
SELECT payext.saga_finish(:'s2', (1::bigint << 56) | 98);
SELECT payext.saga_return(:'s2', 'PY103', 'too late');
\set VERBOSITY default
SELECT payext.saga_finish('00000000-0000-4000-8000-0000000000ff', 1);
SELECT payext.saga_return('00000000-0000-4000-8000-0000000000ff', 'PY103', NULL);
SELECT CASE id WHEN :'s1' THEN 's1' WHEN :'s2' THEN 's2' END AS saga, state
  FROM payext.saga ORDER BY created_at, id;

-- Leg 2 here, for sagas from partition 1: the clearing account pays the
-- wallet, once (on a partition that only receives, it goes below zero by
-- what arrived: the sending partition holds that money).
SELECT * FROM payext.saga_receive('00000000-0000-4000-8000-000000000003', 1, :bob, 50, 'CNY') \gset in3_
SELECT :'in3_outcome' AS outcome, payext.partition_of(:in3_transfer) AS on_here,
       payext.balance(:bob) AS bob_after, payext.balance(:clearing) AS clearing_after;
SELECT outcome, transfer = :in3_transfer AS same
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000003', 1, :bob, 50, 'CNY');
SELECT payext.balance(:bob) AS bob_once;
\set VERBOSITY sqlstate
SELECT * FROM payext.saga_receive('00000000-0000-4000-8000-000000000003', 1, :bob, 51, 'CNY');
\set VERBOSITY default
-- Refused for good, and decided once: a frozen wallet, then unfrozen,
-- still refuses that saga; another currency; an account that is not here.
SELECT payext.freeze(:bob);
SELECT outcome, transfer, refused_sqlstate, refused_message ~ 'is frozen' AS says_frozen
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000004', 1, :bob, 20, 'CNY');
SELECT payext.unfreeze(:bob);
SELECT outcome, transfer, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000004', 1, :bob, 20, 'CNY');
SELECT outcome, transfer, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000005', 1, :bob, 20, 'USD');
SELECT outcome, transfer, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000006', 1, 4242, 20, 'CNY');
SELECT payext.balance(:bob) AS bob_unchanged;
\set VERBOSITY terse
SELECT * FROM payext.saga_receive('00000000-0000-4000-8000-000000000007', 0, :bob, 20, 'CNY');
SELECT * FROM payext.saga_receive('00000000-0000-4000-8000-000000000007', 1, :bob, 20, NULL);
\set VERBOSITY default
SELECT saga, outcome, refused_sqlstate FROM payext.saga_inbox ORDER BY saga;

-- A merchant's cover: its own money, to its own account elsewhere.  The
-- saga keeps the public-service id, and the receiving side pays only that
-- merchant's account.
SELECT payext.open_merchant('gh_saga', 'Saga Shop') AS shop,
       payext.open_merchant('gh_saga_other', 'Other Shop') AS other \gset
SELECT payext.charge(:shop, payext.request_payment(:ann), 120, 'saga-order') > 0 AS charged;
SELECT payext.merchant_cover('00000000-0000-4000-8000-000000000010', :shop, 100, 1, :far) > 0 AS covered;
SELECT purpose, public_service_id, amount, state, payext.balance(:shop) AS shop_left
  FROM payext.saga WHERE id = payext.saga_id_of(0, 'cover', :shop, '00000000-0000-4000-8000-000000000010');
\set VERBOSITY sqlstate
SELECT payext.merchant_cover(gen_random_uuid(), :ann, 10, 1, :far);
SELECT payext.merchant_cover('00000000-0000-4000-8000-000000000010', :shop, 100, 1, :far + 1);
\set VERBOSITY default
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000012', 1, :other, 30, 'CNY', 'gh_saga');
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000013', 1, :bob, 30, 'CNY', 'gh_saga');
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000014', 1, :shop, 30, 'CNY', 'gh_saga');
SELECT payext.balance(:shop) AS shop_now;
-- A merchant role covers only for the accounts it acts for; the legs
-- that follow are admins'.
CREATE ROLE saga_till;
SELECT payext.grant_capability('merchant', 'saga_till');
SELECT payext.map_merchant_role('saga_till', :shop);
SELECT payext.saga_id_of(0, 'cover', :shop, '00000000-0000-4000-8000-000000000015') AS s15 \gset
SET ROLE saga_till;
SELECT payext.merchant_cover('00000000-0000-4000-8000-000000000015', :shop, 5, 1, :far) > 0 AS till_covers_its_own;
\set VERBOSITY sqlstate
SELECT payext.merchant_cover(gen_random_uuid(), :other, 5, 1, :far);
SELECT payext.saga_send(gen_random_uuid(), :shop, 5, 1, :far);
SELECT * FROM payext.saga_receive(gen_random_uuid(), 1, :shop, 5, 'CNY', 'gh_saga');
SELECT payext.saga_finish(:'s15', 1);
\set VERBOSITY default
RESET ROLE;
SELECT payext.unmap_merchant_role('saga_till', :shop);
SELECT payext.revoke_capability('merchant', 'saga_till');
DROP ROLE saga_till;

-- Parking across partitions.  Receiving: a stay here, paid from a wallet
-- on partition 1 whose owner the plate is bound to; the clearing account
-- pays the operator and the stay is booked (how 'saga'), after the checks
-- pay_parking makes.  Each refusal is kept and the money goes back.
SELECT payext.open_merchant('gh_saga_park', 'Saga Park') AS park_op \gset
SELECT payext.create_parking_lot(:park_op, 'Saga Park', 'Asia/Shanghai', 0, 30, 500) AS park_lot \gset
SELECT payext.bind_vehicle('saga-far-owner', '沪A12345');
SELECT payext.vehicle_entered(:park_lot, '沪A12345', now() - interval '50 minutes') AS park_stay \gset
SELECT payext.vehicle_exited(:park_lot, '沪A12345', now() - interval '1 minute') AS park_fee;
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000020', 1, :park_op, 999, 'CNY',
                           'gh_saga_park', :park_stay, 'saga-far-owner');
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000021', 1, :park_op, 1000, 'CNY',
                           'gh_saga_park', :park_stay, 'someone-else');
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000022', 1, :shop, 1000, 'CNY',
                           'gh_saga', :park_stay, 'saga-far-owner');
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000023', 1, :park_op, 1000, 'CNY',
                           'gh_saga_park', :park_stay, 'saga-far-owner');
SELECT s.paid, p.how, p.wallet = :clearing AS from_clearing, payext.balance(:park_op) AS operator_has
  FROM payext.parking_stay s JOIN payext.parking_payment p ON p.stay = s.id WHERE s.id = :park_stay;
SELECT outcome, refused_sqlstate
  FROM payext.saga_receive('00000000-0000-4000-8000-000000000024', 1, :park_op, 1000, 'CNY',
                           'gh_saga_park', :park_stay, 'saga-far-owner');
-- After an exit: a stay whose plate's owner asked for automatic payment
-- but has no wallet here is a router's to pay from the owner's partition
-- (within payext.max_auto_pay); an owner with a wallet here was paid by
-- the exit itself.
SELECT payext.bind_vehicle('saga-far-owner', '沪B54321', true);
SELECT payext.bind_vehicle('saga-ann', '沪C11111', true);
SELECT payext.vehicle_entered(:park_lot, '沪B54321', now() - interval '50 minutes') IS NOT NULL AS entered,
       payext.vehicle_entered(:park_lot, '沪C11111', now() - interval '50 minutes') IS NOT NULL AS entered;
SELECT now() - interval '1 minute' AS exit_at \gset
SELECT payext.vehicle_exited(:park_lot, '沪B54321', :'exit_at') AS far_fee,
       payext.vehicle_exited(:park_lot, '沪C11111', :'exit_at') AS ann_fee;
SELECT owner, amount, currency, operator = :park_op AS to_operator, public_service_id, paid
  FROM payext.auto_pay_elsewhere(:park_lot, '沪 b-54321', :'exit_at');
SELECT count(*) AS for_ann FROM payext.auto_pay_elsewhere(:park_lot, '沪C11111', :'exit_at');
SET payext.max_auto_pay = 999;
SELECT count(*) AS beyond_max FROM payext.auto_pay_elsewhere(:park_lot, '沪B54321', :'exit_at');
RESET payext.max_auto_pay;
SELECT payext.wallet_of('saga-ann', 'CNY') = :ann AS anns, payext.wallet_of('saga-far-owner', 'CNY') AS none;

-- Sending: a wallet here pays a stay of partition 1; once delivered, the
-- payment is the payer's interaction here, where the payer's live.
SELECT payext.parking_saga_send('00000000-0000-4000-8000-000000000025', :ann, 300,
                                (1::bigint << 56) | 5, (1::bigint << 56) | 9, 'gh_saga_park') > 0 AS sent;
SELECT purpose, public_service_id, stay = ((1::bigint << 56) | 5) AS stay_far, payer, amount
  FROM payext.saga WHERE id = payext.saga_id_of(0, 'parking', :ann, '00000000-0000-4000-8000-000000000025');
SELECT payext.saga_finish(payext.saga_id_of(0, 'parking', :ann, '00000000-0000-4000-8000-000000000025'),
                          (1::bigint << 56) | 77);
SELECT consumer, public_service_id, kind, amount FROM payext.interaction
 WHERE consumer = 'saga-ann' AND public_service_id = 'gh_saga_park';
\set VERBOSITY sqlstate
SELECT payext.parking_saga_send(gen_random_uuid(), :shop, 700, (1::bigint << 56) | 5,
                                (1::bigint << 56) | 9, 'gh_saga_park');
SELECT payext.parking_saga_send(gen_random_uuid(), :ann, 700, (1::bigint << 56) | 5,
                                :park_op, 'gh_saga_park');
SELECT payext.parking_saga_send(gen_random_uuid(), :ann, 700, NULL, :park_op, 'gh_saga_park');
\set VERBOSITY default

-- A saga's id is its sender's: the same id from two partitions is two
-- sagas here, each decided on its own.
SELECT outcome FROM payext.saga_receive('00000000-0000-4000-8000-000000000030', 1, :bob, 7, 'CNY');
SELECT outcome FROM payext.saga_receive('00000000-0000-4000-8000-000000000030', 2, :bob, 8, 'CNY');
SELECT from_partition, amount, outcome FROM payext.saga_inbox
 WHERE saga = '00000000-0000-4000-8000-000000000030' ORDER BY from_partition;

-- An account whose money is in flight cannot be closed (it may come
-- back); it comes back even to a frozen account (not a payment to it).
SELECT payext.open_wallet('saga-closer') AS closer \gset
SELECT payext.top_up(:closer, 100, 'closer-in') > 0 AS topped_up;
SELECT payext.saga_send('00000000-0000-4000-8000-000000000031', :closer, 100, 1, :far) > 0 AS sent;
\set VERBOSITY sqlstate
SELECT payext.close_account(:closer);
\set VERBOSITY default
SELECT payext.freeze(:closer);
SELECT payext.saga_return(payext.saga_id_of(0, 'transfer', :closer, '00000000-0000-4000-8000-000000000031'),
                          'PY103', 'closed') > 0 AS returned;
SELECT payext.balance(:closer) AS back_while_frozen, status FROM payext.account WHERE id = :closer;
SELECT payext.unfreeze(:closer);
-- A key names a saga of one account only: another account's send under
-- ann's key ...01 is a saga of its own, neither a clash with ann's nor a
-- way to take an id ann's next saga needs.
SELECT payext.saga_send('00000000-0000-4000-8000-000000000001', :closer, 5, 1, :far) > 0 AS its_own;
SELECT count(*) AS two_sagas FROM payext.saga
 WHERE id IN (:'s1', payext.saga_id_of(0, 'transfer', :closer, '00000000-0000-4000-8000-000000000001'));

-- Vehicle slots: a router counts payext.max_vehicles over every
-- partition on the owner's: one slot per plate (normalised), again for
-- the same plate nothing more, PY403 past the limit; a release frees one.
SELECT payext.reserve_vehicle_slot('slot-owner', 'AB-1001') AS slots;
SELECT payext.reserve_vehicle_slot('slot-owner', 'ab 1001') AS same_plate;
SELECT payext.reserve_vehicle_slot('slot-owner', 'AB1002') AS slots;
SELECT payext.reserve_vehicle_slot('slot-owner', 'AB1003') AS slots;
\set VERBOSITY sqlstate
SELECT payext.reserve_vehicle_slot('slot-owner', 'AB1004');
SELECT payext.reserve_vehicle_slot(NULL, 'AB1004');
\set VERBOSITY default
SELECT payext.release_vehicle_slot('slot-owner', 'ab-1002');
SELECT payext.release_vehicle_slot('slot-owner', 'AB9999');
SELECT payext.reserve_vehicle_slot('slot-owner', 'AB1004') AS slots;
SELECT plate FROM payext.vehicle_slot WHERE owner = 'slot-owner' ORDER BY plate;

-- The ledger holds: the clearing account's journal sum keeps each
-- currency at zero, and every saga's legs are in the journal.  (How many
-- accounts agree depends on the stories before this one: not shown.)
SELECT check_name, ok, regexp_replace(detail, '^[0-9]+ accounts', 'all accounts') AS detail
  FROM payext.verify_ledger()
 WHERE check_name IN ('money_conserved', 'sagas_match_journal', 'balances_match_journal',
                     'parking_matches_journal');
-- A saga whose leg is not in the journal, or not as it says, is found.
BEGIN;
ALTER TABLE payext.saga DISABLE TRIGGER ALL;
INSERT INTO payext.saga (id, purpose, account, amount, currency, to_partition, to_account,
                         out_transfer, created_at)
VALUES ('00000000-0000-4000-8000-0000000000aa', 'transfer', :ann, 5, 'CNY', 1, :far, 424242, now());
UPDATE payext.saga_inbox SET amount = 49 WHERE saga = '00000000-0000-4000-8000-000000000003';
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE check_name = 'sagas_match_journal';
ROLLBACK;
-- The saga's steps are admins'; the first legs of a cover and of a
-- parking payment are the merchant's and the app's; nothing is PUBLIC's.
SELECT capability, count(*) AS saga_objects FROM payext.capability
 WHERE object ~ 'saga|merchant_cover|stay_payee' GROUP BY 1 ORDER BY 1;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p WHERE p.pronamespace = 'payext'::regnamespace
   AND p.proname ~ 'saga|clearing|cover|stay_payee|parking_receive'
 ORDER BY 1;
