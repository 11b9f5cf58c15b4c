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
--     still PY101 and PY111;
--   - the payment's interaction, inserted without the executor, does what
--     its trigger (interaction_recorded) does: the pair's row, the
--     merchant's current rule (not a superseded one) before the default,
--     an opt-out respected; the association's insert is ON CONFLICT DO
--     NOTHING over every unique index (a DBA's too) and a DBA's INSERT
--     trigger on association_state fires; and what the executor would
--     not do it does not either: with the trigger disabled, or in a
--     replica's session (session_replication_role), the pair is left
--     alone; a DBA's trigger on payext.interaction fires;
--   - the trigger's reads and upsert without the executor keep the
--     executor's privilege checks: a role that may not read
--     association_state, or update interaction_pair, gets 42501, as
--     through SPI;
--   - a code's insert without the executor, ON CONFLICT (code) DO NOTHING:
--     a serial drawn again gives a live code's digits, and the next serial
--     is taken;
--   - the journal's insert without the executor leaves out only the checks
--     of its own two foreign keys to payext.account, whose rows the
--     transfer holds locked: a DBA's foreign key on payext.transfer is
--     still checked (23503).
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(54);

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

---------------------------------------------------------------------------
-- The payment's interaction and its trigger's work without the executor.
---------------------------------------------------------------------------
SELECT payext.open_merchant('psid-direct-3', 'Third Cafe') AS m3 \gset
CREATE TEMP TABLE aw AS
SELECT g, payext.open_wallet('direct-assoc-' || g) AS id FROM generate_series(1, 7) g;
SELECT count(payext.top_up(id, 10000, 'direct-assoc-top-' || g)) FROM aw;
CREATE FUNCTION pg_temp.pay(wallet_g integer, merchant bigint, ref text) RETURNS bigint
LANGUAGE sql AS $$
  SELECT payext.charge(merchant, payext.request_payment((SELECT id FROM aw WHERE g = wallet_g)),
                       100, ref)
$$;
CREATE FUNCTION pg_temp.pair(wallet_g integer, psid text) RETURNS text
LANGUAGE sql AS $$
  SELECT coalesce((SELECT (interactions, payments)::text FROM payext.interaction_pair
                    WHERE consumer = 'direct-assoc-' || wallet_g AND public_service_id = psid),
                  'none')
$$;

SELECT pg_temp.pay(1, :m, 'direct-assoc-1a') IS NOT NULL AS charged;
SELECT is(pg_temp.pair(1, 'psid-direct'), '(1,1)',
          'a charge''s interaction counts in its pair''s row (the trigger''s work)');

-- The pair's row added to: a second payment and a refund.
SELECT pg_temp.pay(1, :m, 'direct-assoc-1b') IS NOT NULL AS charged;
SELECT payext.refund(:m, 'direct-assoc-1a', 40, 'direct-assoc-1a-r') IS NOT NULL AS refunded;
SELECT is((SELECT (interactions, payments, payment_amount, refund_amount, first_at = last_at)::text
             FROM payext.interaction_pair
            WHERE consumer = 'direct-assoc-1' AND public_service_id = 'psid-direct'),
          '(3,2,200,40,t)',
          'two payments and a refund: the pair''s row counts three interactions, 200 paid, 40 refunded');

-- A DBA's UPDATE trigger on interaction_pair: the upsert goes through the
-- executor, which fires it; the row is added to once.
CREATE TEMP TABLE seen_pair (interactions bigint);
CREATE FUNCTION pg_temp.note_pair() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO seen_pair VALUES (NEW.interactions);
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_pair BEFORE UPDATE ON payext.interaction_pair
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_pair();
SELECT pg_temp.pay(1, :m, 'direct-assoc-1c') IS NOT NULL AS charged;
DROP TRIGGER dba_pair ON payext.interaction_pair;
SELECT results_eq('SELECT interactions FROM seen_pair', ARRAY[4::bigint],
                  'a DBA''s UPDATE trigger on interaction_pair fires once for a payment of a known pair');
SELECT is(pg_temp.pair(1, 'psid-direct'), '(4,3)', '... and the pair''s row is added to once');

-- A rule of 1 payment, superseded by one of 3: only the current one counts.
SELECT payext.set_association_rule('psid-direct-2', 1, '1 day');
SELECT payext.set_association_rule('psid-direct-2', 3, '1 day');
SELECT pg_temp.pay(2, :m2, 'direct-assoc-2a') IS NOT NULL AS charged;
SELECT pg_temp.pay(2, :m2, 'direct-assoc-2b') IS NOT NULL AS charged;
SELECT is((SELECT count(*) FROM payext.association WHERE consumer = 'direct-assoc-2'), 0::bigint,
          'two payments do not meet the current rule of three (the superseded rule of one is not read)');
SELECT pg_temp.pay(2, :m2, 'direct-assoc-2c') IS NOT NULL AS charged;
SELECT is((SELECT rule_id FROM payext.association WHERE consumer = 'direct-assoc-2'),
          (SELECT id FROM payext.association_rule
            WHERE public_service_id = 'psid-direct-2' AND superseded_at IS NULL),
          'the third payment associates, by the merchant''s current rule');

-- The default rule, for merchants without their own.
SELECT payext.set_association_rule(NULL, 1, '1 day');
SELECT pg_temp.pay(3, :m3, 'direct-assoc-3a') IS NOT NULL AS charged;
SELECT is((SELECT rule_id FROM payext.association WHERE consumer = 'direct-assoc-3'),
          (SELECT id FROM payext.association_rule
            WHERE public_service_id IS NULL AND superseded_at IS NULL),
          'a merchant without a rule: the default rule of one payment associates');
SELECT pg_temp.pay(3, :m2, 'direct-assoc-3b') IS NOT NULL AS charged;
SELECT is((SELECT count(*) FROM payext.association
            WHERE consumer = 'direct-assoc-3' AND public_service_id = 'psid-direct-2'),
          0::bigint, 'a merchant with its own rule: its rule, not the default');

-- The association's insert without the executor, ON CONFLICT DO NOTHING
-- over every unique index, as the statement: with a DBA's unique index of
-- one association per consumer, a second merchant's association is not
-- made, and the charge is not refused (23505 were the primary key the only
-- arbiter).
CREATE TEMP TABLE aw2 AS
SELECT g, payext.open_wallet('direct-assoc-' || g) AS id FROM generate_series(8, 9) g;
SELECT count(payext.top_up(id, 10000, 'direct-assoc-top-' || g)) FROM aw2;
INSERT INTO aw SELECT * FROM aw2;
CREATE UNIQUE INDEX dba_one_association ON payext.association_state (consumer);
SELECT pg_temp.pay(8, :m3, 'direct-assoc-8a') IS NOT NULL AS charged;
SELECT lives_ok(format('SELECT pg_temp.pay(8, %s, %L)', :m, 'direct-assoc-8b'),
                'a second merchant''s default rule met, a DBA''s unique index in the way: the charge passes');
SELECT is((SELECT array_agg(public_service_id) FROM payext.association WHERE consumer = 'direct-assoc-8'),
          ARRAY['psid-direct-3'], '... and the association that conflicts is not made');
DROP INDEX payext.dba_one_association;

-- A DBA's INSERT trigger on association_state fires (the executor's insert).
CREATE TEMP TABLE seen_assoc (consumer text);
CREATE FUNCTION pg_temp.note_assoc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO seen_assoc VALUES (NEW.consumer);
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_assoc BEFORE INSERT ON payext.association_state
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_assoc();
SELECT pg_temp.pay(9, :m3, 'direct-assoc-9a') IS NOT NULL AS charged;
DROP TRIGGER dba_assoc ON payext.association_state;
SELECT results_eq('SELECT consumer FROM seen_assoc', ARRAY['direct-assoc-9'],
                  'a DBA''s INSERT trigger on association_state fires for an association by rule');
SELECT is((SELECT count(*) FROM payext.association WHERE consumer = 'direct-assoc-9'), 1::bigint,
          '... and the association is made once');

-- An opt-out stops the default rule.
SELECT payext.opt_out('direct-assoc-4', 'psid-direct-3');
SELECT pg_temp.pay(4, :m3, 'direct-assoc-4a') IS NOT NULL AS charged;
SELECT is((SELECT state FROM payext.association_state
            WHERE consumer = 'direct-assoc-4' AND public_service_id = 'psid-direct-3'),
          'opted_out', 'an opted-out consumer is not associated by a payment');

-- The trigger disabled: the executor would not fire it; neither does a charge.
ALTER TABLE payext.interaction DISABLE TRIGGER interaction_recorded;
SELECT pg_temp.pay(5, :m, 'direct-assoc-5a') IS NOT NULL AS charged;
ALTER TABLE payext.interaction ENABLE TRIGGER interaction_recorded;
SELECT is((SELECT count(*) FROM payext.interaction WHERE consumer = 'direct-assoc-5'), 1::bigint,
          'with interaction_recorded disabled a charge still records its interaction');
SELECT is(pg_temp.pair(5, 'psid-direct'), 'none',
          '... and its pair''s row is left alone, as the executor would leave it');

-- A replica's session fires only ENABLE REPLICA triggers.
SET LOCAL session_replication_role = replica;
SELECT pg_temp.pay(6, :m, 'direct-assoc-6a') IS NOT NULL AS charged;
RESET session_replication_role;
SELECT is((SELECT count(*) FROM payext.interaction WHERE consumer = 'direct-assoc-6'), 1::bigint,
          'with session_replication_role = replica a charge records its interaction');
SELECT is(pg_temp.pair(6, 'psid-direct'), 'none',
          '... and its pair''s row is left alone (the trigger does not fire in a replica''s session)');

-- A DBA's trigger on payext.interaction fires, and so does payext's.
CREATE TEMP TABLE seen_interaction (id bigint);
CREATE FUNCTION pg_temp.note_interaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO seen_interaction VALUES (NEW.id);
  RETURN NEW;
END
$$;
CREATE TRIGGER dba_note AFTER INSERT ON payext.interaction
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_interaction();
SELECT pg_temp.pay(7, :m, 'direct-assoc-7a') IS NOT NULL AS charged;
DROP TRIGGER dba_note ON payext.interaction;
SELECT results_eq('SELECT id FROM seen_interaction',
                  $$SELECT id FROM payext.interaction WHERE consumer = 'direct-assoc-7'$$,
                  'a DBA''s trigger on payext.interaction fires for a charge''s interaction');
SELECT is(pg_temp.pair(7, 'psid-direct'), '(1,1)', '... and payext''s trigger too');

-- The trigger's reads keep the executor's privilege check: a role that
-- may write interactions but not read association_state.
CREATE ROLE direct_no_state BYPASSRLS;
GRANT USAGE ON SCHEMA payext TO direct_no_state;
GRANT INSERT ON payext.interaction TO direct_no_state;
GRANT SELECT, INSERT, UPDATE ON payext.interaction_pair TO direct_no_state;
SET LOCAL ROLE direct_no_state;
SELECT throws_ok($$INSERT INTO payext.interaction
                   VALUES (-1, 'direct-assoc-8', 'psid-direct-2', 'payment', 100, NULL,
                           now(), NULL, now())$$,
                 '42501', 'permission denied for table association_state',
                 'the trigger''s read of association_state checks the inserting role''s privilege');
RESET ROLE;
-- And the pair's upsert: ON CONFLICT DO UPDATE needs UPDATE, a new pair too.
CREATE ROLE direct_no_update BYPASSRLS;
GRANT USAGE ON SCHEMA payext TO direct_no_update;
GRANT INSERT ON payext.interaction TO direct_no_update;
GRANT SELECT, INSERT ON payext.interaction_pair TO direct_no_update;
SET LOCAL ROLE direct_no_update;
SELECT throws_ok($$INSERT INTO payext.interaction
                   VALUES (-2, 'direct-assoc-9', 'psid-direct-2', 'visit', 0, NULL,
                           now(), NULL, now())$$,
                 '42501', 'permission denied for table interaction_pair',
                 'the pair''s upsert checks the inserting role''s UPDATE privilege, for a new pair too');
RESET ROLE;
-- A known pair, whose row the upsert would update: the same.
SELECT payext.record_interaction('direct-assoc-9', 'psid-direct-2', 'visit') > 0 AS recorded;
SET LOCAL ROLE direct_no_update;
SELECT throws_ok($$INSERT INTO payext.interaction
                   VALUES (-3, 'direct-assoc-9', 'psid-direct-2', 'visit', 0, NULL,
                           now(), NULL, now())$$,
                 '42501', 'permission denied for table interaction_pair',
                 '... and for a known pair, whose row it would update');
RESET ROLE;

-- A DBA's foreign key on the journal is checked; payext's own two are
-- given by the transfer's locks of both accounts.
CREATE TABLE public.dba_allowed (id bigint PRIMARY KEY);
INSERT INTO public.dba_allowed SELECT id FROM payext.account;
SELECT payext.open_wallet('direct-fk') AS fk_wallet \gset
SELECT payext.top_up(:fk_wallet, 1000, 'direct-fk-top') IS NOT NULL AS topped_up;
ALTER TABLE payext.transfer ADD CONSTRAINT dba_debit_allowed
  FOREIGN KEY (debit_account) REFERENCES public.dba_allowed (id);
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :m,
                        payext.request_payment(:fk_wallet), 'direct-fk-1'),
                 '23503', NULL,
                 'a DBA''s foreign key on payext.transfer refuses a charge from an account it does not list');
INSERT INTO public.dba_allowed VALUES (:fk_wallet);
SELECT lives_ok(format('SELECT payext.charge(%s, %L, 100, %L)', :m,
                       payext.request_payment(:fk_wallet), 'direct-fk-2'),
                '... and lets it pass once the account is listed');
ALTER TABLE payext.transfer DROP CONSTRAINT dba_debit_allowed;
DROP TABLE public.dba_allowed;

-- A code whose digits a live code has: the next serial is taken.  The
-- sequence is set back, so the same serial (and key) gives the same digits.
SELECT payext.request_payment((SELECT id FROM aw WHERE g = 1)) AS code_a \gset
SELECT setval('payext.code_serial_seq', (SELECT max(serial) - 1 FROM payext.payment_code));
SELECT payext.request_payment((SELECT id FROM aw WHERE g = 1)) AS code_b \gset
SELECT isnt(:'code_b'::text, :'code_a'::text, 'a serial drawn again: its digits are a live code''s, so the next serial is taken');
SELECT is((SELECT count(*) FROM payext.payment_code
            WHERE wallet = (SELECT id FROM aw WHERE g = 1) AND state = 'issued'),
          2::bigint, '... and the wallet has two live codes');

SELECT * FROM finish();
ROLLBACK;
