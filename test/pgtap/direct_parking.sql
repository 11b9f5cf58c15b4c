-- direct_parking.sql: parking's camera events without the executor
-- (src/parking.c, src/direct.c).
--
-- An exit with auto-pay closes its stay and books the payment on it with
-- heap_update where the stay's lock found it (twice in one transaction,
-- the second time in the version the first wrote) and inserts the payment
-- row with heap_insert, its foreign keys given by the locks (the stay, the
-- wallet) and by the transaction itself (its transfer).  Proves that what
-- the executor gave is still given:
--   - the rows: the stay exited with its fee and paid in full, one payment
--     row, verify_ledger() holds;
--   - the indexes: every version of the stay is in every btree index of
--     payext.parking_stay, the partial ones by their predicates (amcheck's
--     bt_index_check with heapallindexed), and the payment in its index;
--   - pgstat: two updates of payext.parking_stay and one insert of
--     payext.parking_payment counted;
--   - stays entered in the same transaction (their foreign key's check
--     ran at the end of the entry's statement, so the update's own check
--     is not needed) are closed and paid the same way;
--   - a DBA's CHECK on payext.parking_stay refuses (23514);
--   - a DBA's UPDATE trigger on payext.parking_stay and INSERT trigger on
--     payext.parking_payment fire (the writes go back through SPI), with
--     the same rows as a result;
--   - a DBA's foreign key on payext.parking_payment is checked (23503);
--   - a stay's insert at entry without the executor: the plate's owner at
--     entry, pgstat, a DBA's CHECK (23514) and foreign key (23503) on
--     payext.parking_stay, a DBA's trigger and column with a default
--     (the executor's insert, then);
--   - the plate's event counter without the executor: counted once per
--     event (pgstat: an insert for a new plate, an update for a known
--     one), and a DBA's UPDATE trigger on it fires, and an INSERT
--     trigger too, for a known plate's event (the upsert fires both);
--   - indexes a DBA built again with other columns are not used by the
--     direct reads (SPI answers, the same).
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(30);

CREATE EXTENSION IF NOT EXISTS amcheck;

SELECT payext.open_merchant('psid-direct-park', 'Direct Parking') AS op \gset
-- 2.00 an hour from entry, no free minutes, all day.
SELECT payext.create_parking_lot(:op, 'Direct Lot', 'UTC', 0, 60, 200, 200) AS lot \gset
SELECT payext.open_wallet('direct_parker') AS w \gset
SELECT payext.top_up(:w, 100000, 'direct-park-bank') > 0 AS funded \gset
SELECT payext.bind_vehicle('direct_parker', 'DP-1001', true);
SELECT payext.bind_vehicle('direct_parker', 'DP-1002', true);
SELECT payext.bind_vehicle('direct_parker', 'DP-1003', true);
SELECT payext.open_wallet('direct_parker_2') AS w2 \gset
SELECT payext.top_up(:w2, 100000, 'direct-park-bank-2') > 0 AS funded \gset
SELECT payext.bind_vehicle('direct_parker_2', 'DP-1004', true);

-- (The stays here are entered in this test's transaction; an exit of one
-- entered in another transaction is every exit of sql/parking.sql and of
-- the load and benchmark scripts.)
SELECT payext.vehicle_entered(:lot, 'DP-1001', now() - interval '150 minutes') AS s1 \gset

SELECT is(payext.vehicle_exited(:lot, 'DP-1001', now()), 600::bigint,
          'an exit after 2.5 hours is priced at three hours and paid');
SELECT results_eq(
  format('SELECT state, fee, paid, paid_at IS NOT NULL FROM payext.parking_stay WHERE id = %s', :s1),
  $$VALUES ('exited'::text, 600::bigint, 600::bigint, true)$$,
  'the stay is closed with its fee and paid in full');
SELECT results_eq(
  format('SELECT wallet, amount, how FROM payext.parking_payment WHERE stay = %s', :s1),
  format('VALUES (%s::bigint, 600::bigint, %L::text)', :w, 'auto'),
  'one payment row, from the wallet, automatic');
SELECT is(payext.balance(:w), 99400::bigint, 'the wallet paid the fee once');

SELECT is(n_tup_upd, 2::bigint, 'pgstat: two updates of payext.parking_stay (closed, paid)')
  FROM pg_stat_xact_user_tables WHERE relid = 'payext.parking_stay'::regclass;
SELECT is(n_tup_ins, 1::bigint, 'pgstat: one insert of payext.parking_payment')
  FROM pg_stat_xact_user_tables WHERE relid = 'payext.parking_payment'::regclass;

SELECT lives_ok(
  $$SELECT bt_index_check(i.indexrelid, true)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
     WHERE i.indrelid IN ('payext.parking_stay'::regclass, 'payext.parking_payment'::regclass)
       AND a.amname = 'btree'$$,
  'every stay version and payment is in every btree index of its table');

-- Another exit in the same transaction, from a backend that has written
-- stays directly before.
SELECT payext.vehicle_entered(:lot, 'DP-1002', now() - interval '59 minutes') AS s2 \gset
SELECT is(payext.vehicle_exited(:lot, 'DP-1002', now()), 200::bigint,
          'a stay entered in the same transaction is closed');
SELECT results_eq(
  format('SELECT state, paid FROM payext.parking_stay WHERE id = %s', :s2),
  $$VALUES ('exited'::text, 200::bigint)$$,
  'and paid');

-- A DBA's CHECK on the stay is evaluated by the direct update.
ALTER TABLE payext.parking_stay ADD CONSTRAINT dba_fee_cap CHECK (fee <= 400) NOT VALID;
SELECT payext.vehicle_entered(:lot, 'DP-1003', now() - interval '150 minutes') AS s3 \gset
SELECT throws_ok(
  format('SELECT payext.vehicle_exited(%s, %L, now())', :lot, 'DP-1003'),
  '23514', NULL, 'a DBA''s CHECK on payext.parking_stay refuses the exit');
ALTER TABLE payext.parking_stay DROP CONSTRAINT dba_fee_cap;

-- A DBA's triggers: the writes go back through the executor and fire them.
CREATE TEMP TABLE dba_seen (what text);
CREATE FUNCTION pg_temp.dba_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dba_seen VALUES (TG_TABLE_NAME || ' ' || TG_OP);
  RETURN NEW;
END $$;
CREATE TRIGGER dba_stay_update AFTER UPDATE ON payext.parking_stay
  FOR EACH ROW EXECUTE FUNCTION pg_temp.dba_note();
CREATE TRIGGER dba_payment_insert AFTER INSERT ON payext.parking_payment
  FOR EACH ROW EXECUTE FUNCTION pg_temp.dba_note();
SELECT is(payext.vehicle_exited(:lot, 'DP-1003', now()), 600::bigint,
          'with a DBA''s triggers the exit is paid as before');
SELECT results_eq(
  'SELECT what, count(*) FROM dba_seen GROUP BY what ORDER BY what',
  $$VALUES ('parking_payment INSERT'::text, 1::bigint), ('parking_stay UPDATE', 2)$$,
  'the DBA''s triggers fired for each write');
SELECT results_eq(
  format('SELECT state, paid FROM payext.parking_stay WHERE id = %s', :s3),
  $$VALUES ('exited'::text, 600::bigint)$$,
  'the stay written through the executor is the same');
DROP TRIGGER dba_stay_update ON payext.parking_stay;
DROP TRIGGER dba_payment_insert ON payext.parking_payment;

-- A DBA's foreign key on the payment row is still checked.
CREATE TABLE public.dba_how (how text PRIMARY KEY);
INSERT INTO public.dba_how VALUES ('manual');
ALTER TABLE payext.parking_payment
  ADD CONSTRAINT dba_how_known FOREIGN KEY (how) REFERENCES public.dba_how (how) NOT VALID;
SELECT payext.vehicle_entered(:lot, 'DP-1004', now() - interval '30 minutes');
SELECT throws_ok(
  format('SELECT payext.vehicle_exited(%s, %L, now())', :lot, 'DP-1004'),
  '23503', NULL, 'a DBA''s foreign key on payext.parking_payment is checked');
ALTER TABLE payext.parking_payment DROP CONSTRAINT dba_how_known;
-- Dropped: the exit is paid.
SELECT is(payext.vehicle_exited(:lot, 'DP-1004', now()), 200::bigint,
          'without it the same exit is paid');

SELECT is((SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok), 0::bigint,
          'verify_ledger() holds');

-- A stay's insert at entry without the executor.  The plate's owner at
-- entry, read by the vehicle's key: the owner for a bound plate, NULL for
-- an unbound one; the insert counted for pgstat.
SELECT payext.bind_vehicle('direct-driver', 'DIRECT-1');
CREATE TEMP TABLE stay_ins0 AS
  SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relid = 'payext.parking_stay'::regclass;
SELECT payext.vehicle_entered(:lot, 'DIRECT-1') AS stay_bound \gset
SELECT payext.vehicle_entered(:lot, 'DIRECT-2') AS stay_unbound \gset
SELECT is((SELECT array_agg(coalesce(owner_at_entry, 'none') ORDER BY id)
             FROM payext.parking_stay WHERE id IN (:stay_bound, :stay_unbound)),
          ARRAY['direct-driver', 'none'],
          'an entry''s stay has its plate''s owner, and none for an unbound plate');
SELECT is((SELECT s.n_tup_ins - o.n_tup_ins FROM pg_stat_xact_user_tables s, stay_ins0 o
            WHERE s.relid = 'payext.parking_stay'::regclass),
          2::bigint, '... and pgstat counts both inserts');

-- A DBA's CHECK on payext.parking_stay refuses what it forbids.
ALTER TABLE payext.parking_stay ADD CONSTRAINT dba_no_x CHECK (plate NOT LIKE 'X%');
SELECT throws_ok(format('SELECT payext.vehicle_entered(%s, %L)', :lot, 'XDIRECT'),
                 '23514', NULL, 'a DBA''s CHECK on payext.parking_stay refuses an entry''s stay');
ALTER TABLE payext.parking_stay DROP CONSTRAINT dba_no_x;

-- A DBA's foreign key on payext.parking_stay is checked; payext's own (to
-- the lot) is given by the lot's lock.
CREATE TABLE public.dba_plates (plate text PRIMARY KEY);
INSERT INTO public.dba_plates SELECT plate FROM payext.parking_stay;
ALTER TABLE payext.parking_stay ADD CONSTRAINT dba_known_plate
  FOREIGN KEY (plate) REFERENCES public.dba_plates (plate);
SELECT throws_ok(format('SELECT payext.vehicle_entered(%s, %L)', :lot, 'DIRECT-3'),
                 '23503', NULL,
                 'a DBA''s foreign key on payext.parking_stay refuses a plate it does not list');
ALTER TABLE payext.parking_stay DROP CONSTRAINT dba_known_plate;
DROP TABLE public.dba_plates;

-- A DBA's trigger and a DBA's column with a default on payext.parking_stay:
-- the insert goes through the executor, which fires the one and fills the
-- other.
ALTER TABLE payext.parking_stay ADD COLUMN dba_note text DEFAULT 'noted';
-- A DBA's trigger that counts its firings in the setting TG_ARGV[0].
CREATE FUNCTION pg_temp.count_fired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config(TG_ARGV[0],
                     (coalesce(nullif(current_setting(TG_ARGV[0], true), ''), '0')::int + 1)::text,
                     true);
  RETURN NEW;
END $$;
CREATE TRIGGER dba_count_stays BEFORE INSERT ON payext.parking_stay
  FOR EACH ROW EXECUTE FUNCTION pg_temp.count_fired('direct.stays_seen');
SELECT payext.vehicle_entered(:lot, 'DIRECT-4') AS stay_noted \gset
SELECT is(current_setting('direct.stays_seen', true), '1',
          'a DBA''s INSERT trigger on payext.parking_stay fires for an entry');
SELECT is((SELECT dba_note FROM payext.parking_stay WHERE id = :stay_noted), 'noted',
          '... and a DBA''s column gets its default');
DROP TRIGGER dba_count_stays ON payext.parking_stay;
ALTER TABLE payext.parking_stay DROP COLUMN dba_note;

-- The plate's event counter at the lot, without the executor: one more
-- per event, a new plate's row inserted, a known plate's updated (pgstat);
-- a DBA's UPDATE trigger on it fires, and the count goes up once.  (Plates
-- are kept normalised: DIRECT-1 is DIRECT1.)
CREATE TEMP TABLE events0 AS
  SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables
   WHERE relid = 'payext.parking_plate_events'::regclass;
SELECT payext.vehicle_exited(:lot, 'DIRECT-1') IS NOT NULL AS exited;
SELECT payext.vehicle_entered(:lot, 'DIRECT-5') > 0 AS entered;
SELECT is((SELECT array_agg(plate || ':' || events ORDER BY plate) FROM payext.parking_plate_events
            WHERE lot = :lot AND plate IN ('DIRECT1', 'DIRECT5')),
          ARRAY['DIRECT1:2', 'DIRECT5:1'],
          'a plate''s event counter: one more per event');
SELECT is((SELECT (s.n_tup_ins - o.n_tup_ins, s.n_tup_upd - o.n_tup_upd)::text
             FROM pg_stat_xact_user_tables s, events0 o
            WHERE s.relid = 'payext.parking_plate_events'::regclass),
          '(1,1)', '... a new plate''s row inserted, a known one''s updated (pgstat)');
CREATE TRIGGER dba_count_events BEFORE UPDATE ON payext.parking_plate_events
  FOR EACH ROW EXECUTE FUNCTION pg_temp.count_fired('direct.events_seen');
SELECT payext.vehicle_exited(:lot, 'DIRECT-5') IS NOT NULL AS exited;
SELECT is(current_setting('direct.events_seen', true), '1',
          'a DBA''s UPDATE trigger on payext.parking_plate_events fires for an event');
SELECT is((SELECT events FROM payext.parking_plate_events
            WHERE lot = :lot AND plate = 'DIRECT5'), 2::bigint,
          '... and the counter goes up once');
DROP TRIGGER dba_count_events ON payext.parking_plate_events;

-- The upsert fires INSERT triggers even when the plate's row is there and
-- is updated: a DBA's BEFORE INSERT trigger fires for a known plate's event
-- too, and the count still goes up once.
CREATE TRIGGER dba_count_event_inserts BEFORE INSERT ON payext.parking_plate_events
  FOR EACH ROW EXECUTE FUNCTION pg_temp.count_fired('direct.event_inserts_seen');
SELECT payext.vehicle_entered(:lot, 'DIRECT-5') > 0 AS entered;
SELECT is(current_setting('direct.event_inserts_seen', true), '1',
          'a DBA''s BEFORE INSERT trigger on payext.parking_plate_events fires for a known plate''s event');
SELECT is((SELECT events FROM payext.parking_plate_events
            WHERE lot = :lot AND plate = 'DIRECT5'), 3::bigint,
          '... and the counter goes up once');
DROP TRIGGER dba_count_event_inserts ON payext.parking_plate_events;

-- The reads name their indexes, and use them only while they are what
-- their keys assume: a DBA who builds parking_stay_plate_idx and
-- parking_stay_open_key again with their columns in another order sends
-- the reads back to SPI, with the same answers (before the check, the
-- scan compared a plate with a lot id: a wrong answer or a crash).
DROP INDEX payext.parking_stay_plate_idx;
CREATE INDEX parking_stay_plate_idx ON payext.parking_stay (lot, plate, exited_at);
DROP INDEX payext.parking_stay_open_key;
CREATE UNIQUE INDEX parking_stay_open_key ON payext.parking_stay (plate, lot)
  WHERE state = 'open';
SELECT payext.vehicle_entered(:lot, 'DIRECT-6', now() - interval '90 minutes') AS stay_six \gset
SELECT is(payext.vehicle_exited(:lot, 'DIRECT-6', now() - interval '30 minutes'), 200::bigint,
          'indexes built again in another column order: the exit finds its open stay');
SELECT is(payext.vehicle_entered(:lot, 'DIRECT-6', now() - interval '90 minutes'), :stay_six::bigint,
          '... and the entry seen again after the exit returns the same stay');

SELECT * FROM finish();
ROLLBACK;
