-- direct.sql: the charge path without the executor (src/direct.c).
--
-- A charge sets its wallet's balance and its code's state with heap_update
-- where its locks found the rows, inserts its payment with heap_insert,
-- and reads its merchant by the primary key's index, not through SPI.
-- Proves that what the executor gave is still given:
--   - the indexes: updates that cannot stay on their page (not HOT) give
--     every index of payext.account an entry for the new version, and
--     every payment has its entries in payment's indexes (amcheck's
--     bt_index_check with heapallindexed finds every row version in every
--     index); an index scan by (owner, currency) finds the wallet with its
--     new balance;
--   - pgstat: one update of payext.account and of payext.payment_code, and
--     one insert of payext.payment, counted per charge;
--   - CHECK constraints, a DBA's too, are evaluated: a DBA's CHECK on the
--     balance refuses (23514), one on payext.payment too; once dropped, it
--     refuses nothing (the compiled CHECKs follow DDL);
--   - a DBA's UPDATE trigger on payext.account and INSERT trigger on
--     payext.payment fire; a DBA's column with a default on payext.payment
--     gets its default;
--   - a DBA's stored generated column on payext.account is computed again;
--   - a DBA's trigger on payext.transfer that updates the wallet's row after
--     the charge's lock: the balance is set in the newest version;
--   - a publication of payext.account without a replica identity refuses
--     the charge's update (55000), as the executor's check does;
--   - two charges of one wallet in one statement, and in one charge_many,
--     leave the balance and the journal agreeing (verify_ledger());
--   - the merchant read before the locks: a missing or wrong account is
--     still PY101 and PY111.
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(28);

CREATE EXTENSION IF NOT EXISTS amcheck;

SELECT payext.open_merchant('psid-direct', 'Direct Cafe') AS m \gset
SELECT payext.open_merchant('psid-direct-2', 'Other Cafe') AS m2 \gset

-- Wallets whose rows take a quarter of a page each (a 1 900-byte display
-- name that pglz cannot shrink), so that their pages fill and a charge's
-- new row version must go to another page: an update that is not HOT.
CREATE TEMP TABLE w AS
SELECT g, payext.open_wallet('direct-user-' || g) AS id FROM generate_series(1, 8) g;
UPDATE payext.account a
   SET display_name = (SELECT string_agg(md5(a.id::text || ':' || k), '')
                         FROM generate_series(1, 59) k)
  FROM w WHERE a.id = w.id;
SELECT count(payext.top_up(id, 100000, 'direct-top-' || g)) FROM w;

CREATE TEMP TABLE upd0 AS
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
 WHERE relid = 'payext.account'::regclass;
CREATE TEMP TABLE other0 AS
SELECT relid, n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables
 WHERE relid IN ('payext.payment'::regclass, 'payext.payment_code'::regclass);

-- Ten charges of each wallet, one statement each.
DO $$
DECLARE
  r record;
BEGIN
  FOR i IN 1 .. 10 LOOP
    FOR r IN SELECT * FROM w ORDER BY g LOOP
      PERFORM payext.charge((SELECT payext.open_merchant('psid-direct', 'Direct Cafe')),
                            payext.request_payment(r.id), 100, 'direct-' || r.g || '-' || i);
    END LOOP;
  END LOOP;
END
$$;

SELECT is((SELECT s.n_tup_upd - u.n_tup_upd FROM pg_stat_xact_user_tables s, upd0 u
            WHERE relid = 'payext.account'::regclass),
          80::bigint,
          'pgstat counts one update of payext.account per charge (the wallet''s)');
SELECT ok((SELECT (s.n_tup_upd - u.n_tup_upd) - (s.n_tup_hot_upd - u.n_tup_hot_upd) > 0
             FROM pg_stat_xact_user_tables s, upd0 u
            WHERE relid = 'payext.account'::regclass),
          'some of the charges'' updates were not HOT (new index entries were needed)');
SELECT is((SELECT s.n_tup_ins - o.n_tup_ins FROM pg_stat_xact_user_tables s
             JOIN other0 o USING (relid) WHERE relid = 'payext.payment'::regclass),
          80::bigint, 'pgstat counts one insert of payext.payment per charge');
SELECT is((SELECT s.n_tup_upd - o.n_tup_upd FROM pg_stat_xact_user_tables s
             JOIN other0 o USING (relid) WHERE relid = 'payext.payment_code'::regclass),
          80::bigint, 'pgstat counts one update of payext.payment_code per charge');
SELECT lives_ok(
  $$SELECT bt_index_check(i.indexrelid, true)
      FROM pg_index i WHERE i.indrelid = 'payext.account'::regclass$$,
  'every index of payext.account has every row version (bt_index_check, heapallindexed)');
SELECT lives_ok(
  $$SELECT bt_index_check(i.indexrelid, true)
      FROM pg_index i WHERE i.indrelid = 'payext.payment'::regclass$$,
  'every index of payext.payment has every payment (bt_index_check, heapallindexed)');
SELECT is((SELECT count(*) FROM payext.payment p JOIN w ON p.wallet = w.id
            WHERE p.order_ref LIKE 'direct-%' AND p.refunded = 0
              AND p.created_at = now() AND p.updated_at = now()),
          80::bigint, 'the payments, with nothing refunded and their times');
SELECT is((SELECT count(*) FROM payext.payment_code c JOIN w ON c.wallet = w.id
            WHERE c.state = 'used' AND c.closed_at = now()),
          80::bigint, 'their codes used, closed now');

SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT results_eq(
  $$SELECT owner, balance FROM payext.account
     WHERE kind = 'wallet' AND currency = 'CNY' AND owner LIKE 'direct-user-%'
       AND owner = ANY (ARRAY['direct-user-1', 'direct-user-8'])
     ORDER BY owner$$,
  $$VALUES ('direct-user-1'::text, 99000::bigint), ('direct-user-8', 99000)$$,
  'an index scan by (owner, currency) finds the wallets with their new balances');
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Two charges of one wallet in one statement, and a batch of three.
SELECT is((SELECT count(*) FROM (
             SELECT payext.charge(:m, payext.request_payment(w.id), 250, 'direct-twice-' || k)
               FROM w, generate_series(1, 2) k WHERE w.g = 1) c),
          2::bigint, 'two charges of one wallet in one statement');
SELECT is((SELECT count(c.transfer_id)
             FROM w, payext.charge_many(:m,
                    ARRAY[payext.request_payment(w.id), payext.request_payment(w.id),
                          payext.request_payment(w.id)],
                    ARRAY[10, 20, 30]::bigint[],
                    ARRAY['direct-many-1', 'direct-many-2', 'direct-many-3']) c
            WHERE w.g = 2 AND c.sqlstate IS NULL),
          3::bigint, 'a batch of three charges of one wallet');
SELECT is(payext.balance((SELECT id FROM w WHERE g = 1)), 99000::bigint - 500,
          'the wallet charged twice in one statement');
SELECT is(payext.balance((SELECT id FROM w WHERE g = 2)), 99000::bigint - 60,
          'the wallet charged three times in one batch');
SELECT is((SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok), 0::bigint,
          'verify_ledger() finds the balances and the journal agreeing');

-- The merchant read before the locks.
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', 999999999,
                        payext.request_payment((SELECT id FROM w WHERE g = 3)), 'direct-none'),
                 'PY101', NULL, 'a charge to an account that does not exist: PY101');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', (SELECT id FROM w WHERE g = 4),
                        payext.request_payment((SELECT id FROM w WHERE g = 3)), 'direct-wallet'),
                 'PY111', NULL, 'a charge to a wallet: PY111');

-- A DBA's trigger on payext.account fires for a charge's update.
CREATE TEMP TABLE seen (account bigint, balance bigint);
CREATE FUNCTION pg_temp.note_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO seen VALUES (NEW.id, NEW.balance);
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_audit AFTER UPDATE ON payext.account
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_update();
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 700, %L)', :m,
                       payext.request_payment((SELECT id FROM w WHERE g = 5)), 'direct-audit'),
                'a charge with a DBA''s trigger on payext.account');
SELECT results_eq('SELECT account, balance FROM seen',
                  format('VALUES (%s::bigint, 98300::bigint)', (SELECT id FROM w WHERE g = 5)),
                  'the DBA''s trigger saw the wallet''s update');
DROP TRIGGER dba_audit ON payext.account;

-- A DBA's trigger and a DBA's column with a default on payext.payment.
CREATE TEMP TABLE paid (transfer_id bigint);
CREATE FUNCTION pg_temp.note_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO paid VALUES (NEW.transfer_id);
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_paid AFTER INSERT ON payext.payment
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_payment();
ALTER TABLE payext.payment ADD COLUMN dba_note text DEFAULT 'noted';
SELECT payext.charge(:m, payext.request_payment((SELECT id FROM w WHERE g = 5)), 50,
                     'direct-paid') AS paid_transfer \gset
SELECT results_eq('SELECT transfer_id FROM paid',
                  format('VALUES (%s::bigint)', :paid_transfer),
                  'the DBA''s trigger on payext.payment saw the payment');
SELECT is((SELECT dba_note FROM payext.payment WHERE transfer_id = :paid_transfer),
          'noted', 'the DBA''s column got its default');
DROP TRIGGER dba_paid ON payext.payment;
ALTER TABLE payext.payment DROP COLUMN dba_note;

-- A DBA's CHECK on payext.payment refuses what it forbids.
ALTER TABLE payext.payment ADD CONSTRAINT dba_small CHECK (amount < 5000) NOT VALID;
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 6000, %L)', :m,
                        payext.request_payment((SELECT id FROM w WHERE g = 6)), 'direct-small'),
                 '23514', NULL, 'a DBA''s CHECK on payext.payment refuses the payment');
ALTER TABLE payext.payment DROP CONSTRAINT dba_small;

-- A DBA's CHECK on the balance refuses what it forbids.
ALTER TABLE payext.account ADD CONSTRAINT dba_floor CHECK (balance >= 98000) NOT VALID;
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 1500, %L)', :m,
                        payext.request_payment((SELECT id FROM w WHERE g = 6)), 'direct-floor'),
                 '23514', NULL, 'a DBA''s CHECK on payext.account refuses the charge''s balance');
ALTER TABLE payext.account DROP CONSTRAINT dba_floor;
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 1500, %L)', :m,
                       payext.request_payment((SELECT id FROM w WHERE g = 6)), 'direct-floor-2'),
                'the CHECK dropped, the same charge passes (the compiled CHECKs were dropped too)');

-- A DBA's stored generated column on payext.account is computed again.
ALTER TABLE payext.account ADD COLUMN dba_major numeric
  GENERATED ALWAYS AS (balance / 100.0) STORED;
SELECT payext.charge(:m, payext.request_payment((SELECT id FROM w WHERE g = 8)), 250,
                     'direct-generated') IS NOT NULL AS charged;
SELECT is((SELECT dba_major FROM payext.account WHERE id = (SELECT id FROM w WHERE g = 8)),
          98750 / 100.0, 'a DBA''s generated column follows the charge''s balance');
ALTER TABLE payext.account DROP COLUMN dba_major;

-- A DBA's trigger elsewhere that updates the wallet's row between the
-- charge's lock and its update: the update goes to the newest version.
CREATE FUNCTION pg_temp.touch_debit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE payext.account SET display_name = 'touched' WHERE id = NEW.debit_account;
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_touch AFTER INSERT ON payext.transfer
  FOR EACH ROW EXECUTE FUNCTION pg_temp.touch_debit();
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 250, %L)', :m,
                       payext.request_payment((SELECT id FROM w WHERE g = 8)), 'direct-touched'),
                'a charge whose wallet a DBA''s trigger updated after the lock');
SELECT is((SELECT (display_name, balance)::text FROM payext.account
            WHERE id = (SELECT id FROM w WHERE g = 8)),
          '(touched,98500)', 'the trigger''s change and the charge''s balance are both there');
DROP TRIGGER dba_touch ON payext.transfer;

-- A publication of payext.account that cannot identify updated rows.
ALTER TABLE payext.account REPLICA IDENTITY NOTHING;
SET LOCAL client_min_messages = error;  -- wal_level need not be logical
CREATE PUBLICATION direct_pub FOR TABLE payext.account;
RESET client_min_messages;
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :m,
                        payext.request_payment((SELECT id FROM w WHERE g = 7)), 'direct-pub'),
                 '55000', NULL,
                 'a charge''s update of a published table without a replica identity: 55000');
DROP PUBLICATION direct_pub;
ALTER TABLE payext.account REPLICA IDENTITY DEFAULT;

SELECT is(payext.balance((SELECT id FROM w WHERE g = 7)), 99000::bigint,
          'the refused charges moved nothing');

SELECT * FROM finish();
ROLLBACK;
