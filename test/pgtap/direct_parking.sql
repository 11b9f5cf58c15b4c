-- direct_parking.sql: a parking exit without the executor (src/parking.c,
-- src/direct.c).
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
--   - a DBA's foreign key on payext.parking_payment is checked (23503).
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(16);

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

SELECT * FROM finish();
ROLLBACK;
