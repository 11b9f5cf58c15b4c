-- payext 0.7.0 -> 0.8.0: payment codes a till cannot guess or replay, and
-- the hardening an adversarial review asked for.  Every change here is also
-- in src/sql/*.sql; the upgrade suite proves the two give the same schema.
\echo Use "ALTER EXTENSION payext UPDATE TO '0.8.0'" to load this file. \quit

---------------------------------------------------------------------------
-- References of top-ups and withdrawals belong to their account
---------------------------------------------------------------------------

-- Rows written before keep idem_scope 0 (the journal is immutable and
-- checksummed); the index reads the account from the row itself, so their
-- references are per account too, and a retry of one still finds it.
DROP INDEX payext.transfer_reference_key;
CREATE UNIQUE INDEX transfer_reference_key
  ON payext.transfer (kind, (CASE kind WHEN 'top_up' THEN credit_account
                                       WHEN 'withdraw' THEN debit_account
                                       ELSE idem_scope END), reference)
  WHERE reference IS NOT NULL;

---------------------------------------------------------------------------
-- Concurrent settlements of one merchant take turns
---------------------------------------------------------------------------

-- Withdraws the account's balance to the merchant's bank under bank_ref
-- (idempotent on it) and summarises the day (UTC) it settles.  The
-- merchant's row is locked first, so that concurrent settlements take
-- turns: each pays out what is there when its turn comes (a later one finds
-- nothing and pays nothing; one under the same bank_ref finds the first's
-- transfer), or raises 40001 under REPEATABLE READ and SERIALIZABLE.
CREATE OR REPLACE PROCEDURE payext.merchant_settle(merchant bigint, bank_ref text,
                                        INOUT amount bigint DEFAULT NULL,
                                        INOUT transfer_id bigint DEFAULT NULL,
                                        INOUT charges bigint DEFAULT NULL,
                                        INOUT charged_amount bigint DEFAULT NULL,
                                        INOUT refunds bigint DEFAULT NULL,
                                        INOUT refunded_amount bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  day_start timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
  PERFORM payext.require_merchant(merchant);
  PERFORM 1 FROM payext.account a
   WHERE a.id = merchant_settle.merchant FOR NO KEY UPDATE;
  SELECT t.id, t.amount INTO transfer_id, amount
    FROM payext.transfer t
   WHERE t.kind = 'withdraw' AND t.idem_scope = 0 AND t.reference = bank_ref
     AND t.debit_account = merchant;
  IF transfer_id IS NULL THEN
    amount := payext.balance(merchant);
    IF amount > 0 THEN
      transfer_id := payext.withdraw(merchant, amount, bank_ref);
    END IF;
  END IF;
  SELECT count(*), coalesce(sum(p.amount), 0) INTO charges, charged_amount
    FROM payext.payment p WHERE p.merchant = merchant_settle.merchant AND p.created_at >= day_start;
  SELECT count(*), coalesce(sum(r.amount), 0) INTO refunds, refunded_amount
    FROM payext.refund r WHERE r.merchant = merchant_settle.merchant AND r.created_at >= day_start;
END
$$;

---------------------------------------------------------------------------
-- Role helpers refuse nonsense: NULLs, unknown capabilities, non-merchants
---------------------------------------------------------------------------

-- The arguments of grant_capability() and revoke_capability(): both given,
-- and a capability that exists (PY001, PY006).
CREATE OR REPLACE FUNCTION payext.check_capability_args(capability text, grantee regrole)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF capability IS NULL OR grantee IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PY001',
      MESSAGE = format('argument "%s" must not be null',
                       CASE WHEN capability IS NULL THEN 'capability' ELSE 'grantee' END);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM payext.capability k WHERE k.capability = check_capability_args.capability) THEN
    RAISE EXCEPTION USING ERRCODE = 'PY006',
      MESSAGE = format('unknown capability "%s"', capability),
      HINT = 'The capabilities are app, merchant, analyst and admin.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION payext.grant_capability(capability text, grantee regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  c record;
BEGIN
  PERFORM payext.check_capability_args(capability, grantee);
  FOR c IN SELECT k.privilege, k.object FROM payext.capability k
            WHERE k.capability = grant_capability.capability ORDER BY k.object LOOP
    EXECUTE format('GRANT %s ON %s TO %s', c.privilege, c.object, grantee);
  END LOOP;
  INSERT INTO payext.capability_grant VALUES (grantee, capability, now())
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION payext.grant_capability(text, regrole) IS
  'grants a role one of the capabilities app, merchant, analyst, admin';

CREATE OR REPLACE FUNCTION payext.revoke_capability(capability text, grantee regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  c record;
BEGIN
  PERFORM payext.check_capability_args(capability, grantee);
  FOR c IN SELECT k.privilege, k.object FROM payext.capability k
            WHERE k.capability = revoke_capability.capability
              -- what another capability of the same role still needs stays
              AND NOT EXISTS (SELECT 1 FROM payext.capability o
                                JOIN payext.capability_grant g ON g.capability = o.capability
                               WHERE g.grantee = revoke_capability.grantee
                                 AND o.capability <> revoke_capability.capability
                                 AND o.object = k.object)
            ORDER BY k.object LOOP
    EXECUTE format('REVOKE %s ON %s FROM %s', c.privilege, c.object, grantee);
  END LOOP;
  DELETE FROM payext.capability_grant g
   WHERE g.grantee = revoke_capability.grantee AND g.capability = revoke_capability.capability;
END
$$;
COMMENT ON FUNCTION payext.revoke_capability(text, regrole) IS
  'takes a capability back from a role';

-- The arguments of map_merchant_role() and unmap_merchant_role(): both
-- given, and a merchant account (PY001, PY111).
CREATE OR REPLACE FUNCTION payext.check_merchant_role_args(grantee regrole, merchant bigint)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF grantee IS NULL OR merchant IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PY001',
      MESSAGE = format('argument "%s" must not be null',
                       CASE WHEN grantee IS NULL THEN 'grantee' ELSE 'merchant' END);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM payext.account a WHERE a.id = merchant AND a.kind = 'merchant') THEN
    RAISE EXCEPTION USING ERRCODE = 'PY111',
      MESSAGE = format('account %s is not a merchant account', merchant);
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION payext.map_merchant_role(grantee regrole, merchant bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.check_merchant_role_args(grantee, merchant);
  INSERT INTO payext.merchant_role VALUES (grantee, merchant, now()) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION payext.map_merchant_role(regrole, bigint) IS
  'lets a merchant role act for a merchant account';

CREATE OR REPLACE FUNCTION payext.unmap_merchant_role(grantee regrole, merchant bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.check_merchant_role_args(grantee, merchant);
  DELETE FROM payext.merchant_role m
   WHERE m.grantee = unmap_merchant_role.grantee AND m.merchant = unmap_merchant_role.merchant;
END
$$;
COMMENT ON FUNCTION payext.unmap_merchant_role(regrole, bigint) IS
  'stops a merchant role acting for a merchant account';
REVOKE ALL ON FUNCTION payext.check_capability_args(text, regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.check_merchant_role_args(regrole, bigint) FROM PUBLIC;

---------------------------------------------------------------------------
-- Membership counts as privileges do: a NOINHERIT member acts after SET ROLE
---------------------------------------------------------------------------

-- Whether a role holds a capability (or is a superuser), and whether it
-- may act for a merchant account: a superuser, an admin, or a role mapped
-- to the account.  Membership counts as privileges do (USAGE): a NOINHERIT
-- member, such as a pooled login, acts for a till only after SET ROLE.
-- C (src/roles.c), as are may_act_for, caller_has_capability and
-- require_merchant: as SQL each call parsed and planned its query, and as
-- PL/pgSQL a till's charge ran four nested functions and three queries,
-- merchant_role read whole, for its merchant check (bench/NOTES.md).
CREATE OR REPLACE FUNCTION payext.role_has_capability(role oid, capability text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_role_has_capability'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE OR REPLACE FUNCTION payext.role_may_act_for(role oid, merchant bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_role_may_act_for'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE OR REPLACE FUNCTION payext.caller_has_capability(capability text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_caller_has_capability'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE OR REPLACE FUNCTION payext.may_act_for(merchant bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_may_act_for'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE OR REPLACE FUNCTION payext.require_merchant(merchant bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_require_merchant'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

-- A merchant's mappings, for the merchant check of each of its tills'
-- calls (the primary key leads with the grantee).
CREATE INDEX merchant_role_merchant_idx ON payext.merchant_role (merchant);

CREATE OR REPLACE FUNCTION payext.acting_accounts()
RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce(array_agg(DISTINCT m.merchant), '{}')
    FROM payext.merchant_role m
   WHERE pg_catalog.pg_has_role(payext.calling_role(), m.grantee, 'USAGE')
$$;

CREATE OR REPLACE FUNCTION payext.acting_public_service_ids()
RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce(array_agg(DISTINCT a.public_service_id), '{}')
    FROM payext.merchant_role m JOIN payext.account a ON a.id = m.merchant
   WHERE pg_catalog.pg_has_role(payext.calling_role(), m.grantee, 'USAGE')
$$;

---------------------------------------------------------------------------
-- Payment codes v2: 15 digits that reveal nothing; live codes unlogged
---------------------------------------------------------------------------

-- Codes of 0.7.0 carried their serial; their layout is gone, and so are
-- they: a customer who showed one before the update shows a fresh one.
-- Leaving the extension also takes the table out of the tables pg_dump
-- keeps (extconfig); dropping it alone would not.
ALTER TABLE payext.payment DROP CONSTRAINT payment_code_serial_fkey;
ALTER EXTENSION payext DROP TABLE payext.payment_code;
DROP TABLE payext.payment_code;

-- Serials of codes: each key permutes the 10^15 numbers of 15 digits, and
-- serials are never reused (the sequence is dumped; request_payment refuses
-- one past 10^15 - 1 with PY214), so a code string never repeats while its
-- key lives.

-- Live codes.  A code is a bearer token of a minute: what must be durable is
-- its use (payext.payment), not its issue.  So the table is UNLOGGED (no
-- WAL for issuing a code) and not dumped: after a crash or a restore, or on
-- a promoted standby, codes not yet used are simply unknown and the
-- customer shows a fresh one.  Rows are purged some minutes after expiry
-- by request_payment() itself.
CREATE UNLOGGED TABLE payext.payment_code (
  serial     bigint PRIMARY KEY,
  -- the 15 digits the code carries: serial under key_id's permutation
  code       bigint NOT NULL CHECK (code >= 0 AND code < 1000000000000000),
  key_id     integer NOT NULL,
  -- the wallet request_payment() found active.  No foreign key: its lock
  -- (FOR KEY SHARE of the account row, a logged table) was the only WAL
  -- that issuing a code wrote; charge() locks the wallet anyway.
  wallet     bigint NOT NULL,
  max_amount bigint CHECK (max_amount > 0),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  state      text NOT NULL DEFAULT 'issued'
             CHECK (state IN ('issued', 'used', 'cancelled')),
  closed_at  timestamptz,
  CONSTRAINT payment_code_closed CHECK ((state = 'issued') = (closed_at IS NULL))
);
CREATE UNIQUE INDEX payment_code_code_key ON payext.payment_code (code);
CREATE INDEX payment_code_expires_idx ON payext.payment_code (expires_at);
COMMENT ON TABLE payext.payment_code IS
  'live payment codes issued by request_payment(): single use, short-lived, unlogged, not dumped';

REVOKE ALL ON payext.payment_code FROM PUBLIC;
COMMENT ON TABLE payext.signing_key IS
  'keys of the payment codes'' keyed permutation (HMAC-SHA256 rounds). Not dumped: codes die with their keys.';

-- verify_payments() is replaced at the end of this script (no foreign keys).

-- Codes that passed their check digit but were never issued, per merchant
-- account: kept in shared memory by the library (payext must be in
-- shared_preload_libraries) so that the charge's rollback cannot erase
-- them.  Past payext.code_failure_limit within payext.code_failure_window
-- the merchant charges no code until the window has passed or an admin
-- unblocks it.
CREATE FUNCTION payext.code_failures(OUT merchant bigint, OUT failures integer,
                                     OUT first_at timestamptz, OUT last_at timestamptz,
                                     OUT blocked_until timestamptz, OUT last_code text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'payext_code_failures'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION payext.code_failures() IS
  'merchant accounts that submitted codes never issued, in the current window; behind the view code_failure';

CREATE VIEW payext.code_failure AS
SELECT f.merchant, f.failures, f.first_at, f.last_at, f.blocked_until, f.last_code
  FROM payext.code_failures() f;
COMMENT ON VIEW payext.code_failure IS
  'merchant accounts that submitted payment codes that were never issued, the last of them, and until when they may charge none';

CREATE FUNCTION payext.unblock_charging(merchant bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_unblock_charging'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.unblock_charging(bigint) IS
  'lets a merchant blocked for guessing payment codes charge again, and forgets its failures';

REVOKE ALL ON FUNCTION payext.code_failures() FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.unblock_charging(bigint) FROM PUBLIC;
REVOKE ALL ON payext.code_failure FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('admin', 'SELECT', 'TABLE payext.code_failure'),
  ('admin', 'EXECUTE', 'FUNCTION payext.code_failures()'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unblock_charging(bigint)');

---------------------------------------------------------------------------
-- Merchants read through functions; the journal's policy leaks nothing
---------------------------------------------------------------------------

DROP POLICY merchant_own_transfers ON payext.transfer;
DROP POLICY merchant_own_interactions ON payext.interaction;
DROP POLICY merchant_own_associations ON payext.association_state;
DROP POLICY admin_all_transfers ON payext.transfer;
DELETE FROM payext.capability
 WHERE capability = 'merchant' AND privilege = 'SELECT'
   AND object IN ('TABLE payext.transfer', 'TABLE payext.interaction',
                  'TABLE payext.association_state');
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_transfers(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_interactions(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_associations(bigint)');

CREATE FUNCTION payext.merchant_transfers(merchant bigint)
RETURNS TABLE (transfer_id bigint, created_at timestamptz, kind text,
               reference text, amount bigint, currency text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  -- amount is signed: what the movement did to the merchant's balance
  RETURN QUERY
    SELECT t.id, t.created_at, t.kind, t.reference,
           CASE WHEN t.credit_account = merchant_transfers.merchant THEN t.amount ELSE -t.amount END,
           t.currency
      FROM payext.transfer t
     WHERE t.credit_account = merchant_transfers.merchant
        OR t.debit_account = merchant_transfers.merchant
     ORDER BY t.id;
END
$$;
COMMENT ON FUNCTION payext.merchant_transfers(bigint) IS
  'the movements of a merchant account the caller acts for, signed, without the other side''s account';

CREATE FUNCTION payext.merchant_interactions(merchant bigint)
RETURNS TABLE (interaction_id bigint, consumer text, kind text, amount bigint,
               occurred_at timestamptz, transfer_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN QUERY
    SELECT i.id, i.consumer, i.kind, i.amount, i.occurred_at, i.transfer_id
      FROM payext.interaction i
     WHERE i.public_service_id = (SELECT a.public_service_id FROM payext.account a
                                   WHERE a.id = merchant_interactions.merchant)
     ORDER BY i.occurred_at, i.id;
END
$$;
COMMENT ON FUNCTION payext.merchant_interactions(bigint) IS
  'the interactions of consumers with the official account of a merchant account the caller acts for';

CREATE FUNCTION payext.merchant_associations(merchant bigint)
RETURNS TABLE (consumer text, state text, established_at timestamptz, how text,
               changed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN QUERY
    SELECT s.consumer, s.state, s.established_at, s.how, s.changed_at
      FROM payext.association_state s
     WHERE s.public_service_id = (SELECT a.public_service_id FROM payext.account a
                                   WHERE a.id = merchant_associations.merchant)
     ORDER BY s.consumer;
END
$$;
COMMENT ON FUNCTION payext.merchant_associations(bigint) IS
  'consumers associated with, or opted out of, the official account of a merchant account the caller acts for';

-- The tables themselves: admins (and the owner) only.  The admins' policy
-- is evaluated once per query.  (It is no guard against a role granted
-- SELECT otherwise: a security-barrier qual filters rows after an index scan
-- has counted them, and EXPLAIN ANALYZE shows the count.)
CREATE POLICY admin_all_transfers ON payext.transfer FOR SELECT
  USING ((SELECT payext.caller_has_capability('admin')));
REVOKE ALL ON FUNCTION payext.merchant_transfers(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_interactions(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_associations(bigint) FROM PUBLIC;

-- Roles that hold the merchant capability lose 0.7.0's SELECT on the three
-- tables: row-level security cannot hide a plan's row counts.  A REVOKE in
-- an extension script is also recorded as the objects' initial privileges
-- (pg_init_privs), with every other role's grant in them, which would keep
-- pg_dump from dumping those grants; so the three tables' initial
-- privileges are set back to a fresh install's, the owner's alone.
-- A role whose other capability still lists a table (admin: transfer)
-- keeps it; a grant_capability row of a role since dropped is passed over.
DO $$
DECLARE
  g record;
BEGIN
  FOR g IN SELECT r.rolname, t.object
             FROM payext.capability_grant c
             JOIN pg_catalog.pg_roles r ON r.oid = c.grantee
            CROSS JOIN unnest(ARRAY['TABLE payext.transfer', 'TABLE payext.interaction',
                                    'TABLE payext.association_state']) AS t(object)
            WHERE c.capability = 'merchant'
              AND NOT EXISTS (SELECT 1 FROM payext.capability_grant o
                                JOIN payext.capability k ON k.capability = o.capability
                               WHERE o.grantee = c.grantee AND o.capability <> 'merchant'
                                 AND k.object = t.object)
  LOOP
    EXECUTE format('REVOKE SELECT ON %s FROM %I', g.object, g.rolname);
  END LOOP;
END
$$;
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = pg_catalog.acldefault('r', c.relowner)
  FROM pg_catalog.pg_class c
 WHERE i.objoid = c.oid AND i.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND i.objsubid = 0 AND i.privtype = 'e'
   AND c.oid IN ('payext.transfer'::pg_catalog.regclass, 'payext.interaction'::pg_catalog.regclass,
                 'payext.association_state'::pg_catalog.regclass);

---------------------------------------------------------------------------
-- Parking: exits that cannot be priced are kept as anomalies
---------------------------------------------------------------------------

-- A new state, exit_unpriced: the exit of a stay longer than payext.max_stay,
-- or whose fee does not fit in 64 bits, is kept with its times and no fee
-- for a person to settle (vehicle_exited warns PY415 and returns NULL).
ALTER TABLE payext.parking_stay
  DROP CONSTRAINT parking_stay_state_check,
  ADD CONSTRAINT parking_stay_state_check
    CHECK (state IN ('open', 'exited', 'exit_without_entry', 'exit_missed', 'exit_unpriced')),
  DROP CONSTRAINT parking_stay_shape,
  ADD CONSTRAINT parking_stay_shape CHECK (
    (state IN ('open', 'exit_missed') AND entered_at IS NOT NULL AND exited_at IS NULL AND fee IS NULL) OR
    (state = 'exited' AND entered_at IS NOT NULL AND exited_at >= entered_at AND fee IS NOT NULL) OR
    (state = 'exit_without_entry' AND entered_at IS NULL AND exited_at IS NOT NULL AND fee IS NULL) OR
    (state = 'exit_unpriced' AND entered_at IS NOT NULL AND exited_at >= entered_at AND fee IS NULL));
COMMENT ON TABLE payext.parking_stay IS
  'stays from plate camera events: open, exited (with its fee), an exit without entry, an entry whose exit was missed, or an exit that could not be priced';

CREATE OR REPLACE VIEW payext.parking_anomaly AS
SELECT s.id AS stay, s.lot, s.plate, s.exited_at AS seen_at, 'exit_without_entry'::text AS anomaly
  FROM payext.parking_stay s
 WHERE s.state = 'exit_without_entry'
UNION ALL
SELECT s.id, s.lot, s.plate, s.entered_at, 'exit_missed'
  FROM payext.parking_stay s
 WHERE s.state = 'exit_missed'
UNION ALL
SELECT s.id, s.lot, s.plate, s.entered_at, 'open_at_several_lots'
  FROM payext.parking_stay s
 WHERE s.state = 'open'
   AND EXISTS (SELECT 1 FROM payext.parking_stay o
                WHERE o.plate = s.plate AND o.state = 'open' AND o.lot <> s.lot)
UNION ALL
SELECT s.id, s.lot, s.plate, s.exited_at, 'exit_unpriced'
  FROM payext.parking_stay s
 WHERE s.state = 'exit_unpriced';
COMMENT ON VIEW payext.parking_anomaly IS
  'camera events that need a person: exits without entry, missed exits, plates open at several lots, exits that could not be priced';

COMMENT ON FUNCTION payext.vehicle_exited(bigint, text, timestamptz) IS
  'a camera saw a plate leave; returns what the stay cost (NULL for an exit without entry or one that cannot be priced), paying it with auto-pay';
COMMENT ON FUNCTION payext.parking_service_info(text, timestamptz) IS
  'a row per open or unpaid stay of the owner''s bound vehicles, with what is due at `at` (NULL: it cannot be priced)';

-- A lot's time zone is now an IANA name or an ISO 8601 offset (east of
-- UTC); 0.7.0 took anything PostgreSQL does, and read '+08:00' or 'UTC+8'
-- as a POSIX rule, UTC-8.  Such a lot keeps its zone (its fees so far were
-- priced with it, and a lot's row never changes); each one is named here.
DO $$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT p.id, p.time_zone FROM payext.parking_lot p
            WHERE lower(p.time_zone) NOT IN (SELECT lower(n.name) FROM pg_catalog.pg_timezone_names n)
            ORDER BY p.id LOOP
    RAISE WARNING 'parking lot % has time zone "%", which is not an IANA time zone', l.id, l.time_zone
      USING DETAIL = 'PostgreSQL reads it as a POSIX rule, whose offsets count west of UTC, the opposite of ISO 8601.',
            HINT = 'Check its fees; for new stays, make a lot with an IANA name or an ISO 8601 offset such as ''+08:00''.';
  END LOOP;
END
$$;

---------------------------------------------------------------------------
-- A new signing key after every start or promotion of the server
---------------------------------------------------------------------------

-- A code string is a function of key, partition and serial; after a crash
-- with asynchronous commit or a failover to a lagging standby the serial
-- sequence may hand out serials again.  A key older than the server's start,
-- or of another WAL timeline (NULL: 0.7.0's keys), is replaced by the next
-- code request.
ALTER TABLE payext.signing_key ADD COLUMN timeline integer;

-- An index entry per payment that no query used (bench/NOTES.md).
DROP INDEX payext.interaction_transfer_idx;

---------------------------------------------------------------------------
-- charge_many(): many charges of one merchant in one call
---------------------------------------------------------------------------

CREATE FUNCTION payext.charge_many(merchant bigint, codes text[], amounts bigint[],
                                   order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
AS 'MODULE_PATHNAME', 'payext_charge_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.charge_many(bigint, text[], bigint[], text[]) IS
  'charges of one merchant in one call, each charged or refused on its own, in input order';

-- A function, not a procedure: it answers with a row per item.
CREATE FUNCTION payext.merchant_charge_many(merchant bigint, codes text[], amounts bigint[],
                                            order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN QUERY SELECT c.* FROM payext.charge_many(merchant, codes, amounts, order_refs) c;
END
$$;
COMMENT ON FUNCTION payext.merchant_charge_many(bigint, text[], bigint[], text[]) IS
  'a merchant role charges many payment codes for a merchant account it is mapped to, each on its own';

REVOKE ALL ON FUNCTION payext.charge_many(bigint, text[], bigint[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_charge_many(bigint, text[], bigint[], text[]) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_many(bigint, text[], bigint[], text[])');

---------------------------------------------------------------------------
-- No foreign keys on the charge's own rows (bench/NOTES.md, third cut)
---------------------------------------------------------------------------

-- charge() writes a payment right after its journal row, whose own keys
-- hold the accounts; verify_payments() checks the two against each other,
-- and now also that every interaction naming a transfer names one that is
-- in the journal.
ALTER TABLE payext.payment DROP CONSTRAINT payment_transfer_id_fkey,
                           DROP CONSTRAINT payment_merchant_fkey,
                           DROP CONSTRAINT payment_wallet_fkey;
ALTER TABLE payext.interaction DROP CONSTRAINT interaction_transfer_id_fkey;

-- Charges and refunds against the journal: part of verify_ledger().
CREATE OR REPLACE FUNCTION payext.verify_payments()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH refunded AS (
    SELECT r.payment, sum(r.amount::numeric) AS total FROM payext.refund r GROUP BY r.payment
  ), bad_payment AS (
    SELECT p.transfer_id FROM payext.payment p
      LEFT JOIN payext.transfer t ON t.id = p.transfer_id
      LEFT JOIN refunded r ON r.payment = p.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'charge' OR t.debit_account <> p.wallet
        OR t.credit_account <> p.merchant OR t.amount <> p.amount
        OR t.reference IS DISTINCT FROM p.order_ref
        OR p.refunded::numeric <> coalesce(r.total, 0) OR p.refunded > p.amount
  ), bad_refund AS (
    SELECT r.transfer_id FROM payext.refund r
      JOIN payext.payment p ON p.transfer_id = r.payment
      LEFT JOIN payext.transfer t ON t.id = r.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'refund' OR t.debit_account <> r.merchant
        OR r.merchant <> p.merchant OR t.credit_account <> p.wallet
        OR t.amount <> r.amount OR t.reference IS DISTINCT FROM r.refund_ref
  ), orphan_interaction AS (
    -- an interaction that names a transfer says what the journal says of
    -- it: its amount, currency and time, the wallet's owner, the merchant's
    -- public-service id (a refund's wallet is its credit side)
    SELECT i.id FROM payext.interaction i
      LEFT JOIN payext.transfer t ON t.id = i.transfer_id
      LEFT JOIN payext.account w
        ON w.id = CASE WHEN t.kind = 'refund' THEN t.credit_account ELSE t.debit_account END
      LEFT JOIN payext.account m
        ON m.id = CASE WHEN t.kind = 'refund' THEN t.debit_account ELSE t.credit_account END
     WHERE i.transfer_id IS NOT NULL
       AND (t.id IS NULL OR i.amount <> t.amount OR i.currency IS DISTINCT FROM t.currency
            OR i.occurred_at <> t.created_at OR i.consumer IS DISTINCT FROM w.owner
            OR i.public_service_id IS DISTINCT FROM m.public_service_id)
  ), orphan_transfer AS (
    SELECT t.id FROM payext.transfer t
     WHERE (t.kind = 'charge' AND NOT EXISTS (SELECT 1 FROM payext.payment p WHERE p.transfer_id = t.id))
        OR (t.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM payext.refund r WHERE r.transfer_id = t.id))
  ), code_payments AS (
    -- what used a code: a charge, or a hold (authorize())
    SELECT u.code_serial, count(*) AS n
      FROM (SELECT p.code_serial FROM payext.payment p
            UNION ALL
            SELECT h.code_serial FROM payext.hold_entry h WHERE h.code_serial IS NOT NULL) u
     GROUP BY u.code_serial
  ), bad_code AS (
    -- A live code is used if and only if it paid or held, and no code,
    -- live or purged, is used twice: counted here, not left to the unique
    -- constraints alone.
    SELECT c.serial FROM payext.payment_code c
      LEFT JOIN code_payments u ON u.code_serial = c.serial
     WHERE (c.state = 'used') <> (u.n IS NOT NULL)
    UNION
    SELECT u.code_serial FROM code_payments u WHERE u.n > 1
  )
  SELECT 'payments_match_journal',
         NOT EXISTS (SELECT 1 FROM bad_payment) AND NOT EXISTS (SELECT 1 FROM bad_refund)
           AND NOT EXISTS (SELECT 1 FROM orphan_transfer)
           AND NOT EXISTS (SELECT 1 FROM orphan_interaction),
         CASE WHEN EXISTS (SELECT 1 FROM bad_payment) OR EXISTS (SELECT 1 FROM bad_refund)
                   OR EXISTS (SELECT 1 FROM orphan_transfer)
                   OR EXISTS (SELECT 1 FROM orphan_interaction)
              THEN format('%s payment(s), %s refund(s), %s charge or refund transfer(s) and %s interaction(s) disagree',
                          (SELECT count(*) FROM bad_payment), (SELECT count(*) FROM bad_refund),
                          (SELECT count(*) FROM orphan_transfer),
                          (SELECT count(*) FROM orphan_interaction))
              ELSE format('%s payments and %s refunds agree with the journal',
                          (SELECT count(*) FROM payext.payment), (SELECT count(*) FROM payext.refund))
         END
  UNION ALL
  SELECT 'codes_paid_once',
         NOT EXISTS (SELECT 1 FROM bad_code),
         CASE WHEN EXISTS (SELECT 1 FROM bad_code)
              THEN (SELECT count(*) FROM bad_code)::text || ' code(s) used without one payment, or paid while not used'
              ELSE (SELECT count(*) FROM code_payments)::text || ' codes paid, once each'
         END
$$;
COMMENT ON FUNCTION payext.verify_payments() IS
  'charges and refunds against the journal; part of verify_ledger()';

-- An index entry per payment that no query used: a wallet's charges are
-- its journal rows (transfer_debit_idx).
DROP INDEX payext.payment_wallet_idx;

-- The code functions read and lock rows by key only: without sequential
-- scans of small tables, which under SERIALIZABLE read (and lock against
-- writers) every row (charge_many_serializable.spec).
ALTER FUNCTION payext.request_payment(bigint, bigint, interval) SET enable_seqscan = off;
ALTER FUNCTION payext.cancel_payment_code(text) SET enable_seqscan = off;
ALTER FUNCTION payext.charge(bigint, text, bigint, text) SET enable_seqscan = off;
ALTER FUNCTION payext.refund(bigint, text, bigint, text) SET enable_seqscan = off;

-- Partitions (DESIGN.md, "More than one node"): a database's number, fixed
-- for life, replaces the server-wide setting payext.shard_id; a server
-- that set it keeps its number in every database that has payext.
CREATE TABLE payext.partition_info (
  number integer NOT NULL CHECK (number >= 0 AND number <= 99),
  set_at timestamptz NOT NULL
);
-- One row at most.
CREATE UNIQUE INDEX partition_info_one_row ON payext.partition_info ((true));
COMMENT ON TABLE payext.partition_info IS
  'this database''s partition number (no row: 0), set once by set_partition()';
SELECT pg_catalog.pg_extension_config_dump('payext.partition_info', '');

CREATE FUNCTION payext.partition_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'payext_partition_guard'
LANGUAGE C;
COMMENT ON FUNCTION payext.partition_guard() IS
  'refuses UPDATE, DELETE and TRUNCATE on partition_info; an INSERT empties every backend''s kept number';

CREATE TRIGGER partition_info_fixed
  BEFORE INSERT OR UPDATE OR DELETE ON payext.partition_info
  FOR EACH ROW EXECUTE FUNCTION payext.partition_guard();
CREATE TRIGGER partition_info_no_truncate
  BEFORE TRUNCATE ON payext.partition_info
  FOR EACH STATEMENT EXECUTE FUNCTION payext.partition_guard();

CREATE FUNCTION payext.set_partition(number integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_set_partition'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.set_partition(integer) IS
  'fixes this database''s partition number (0-99) for life, before its first id; again with the same number returns it';

CREATE FUNCTION payext.current_partition()
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_current_partition'
LANGUAGE C STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.current_partition() IS
  'this database''s partition number: 0 on a single node';

---------------------------------------------------------------------------
-- Routing
---------------------------------------------------------------------------

CREATE FUNCTION payext.partition_of(id bigint)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_partition_of'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.partition_of(bigint) IS
  'the partition an id (account, transfer, stay, lot, interaction) was made on';

CREATE FUNCTION payext.code_partition(code text)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_code_partition'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.code_partition(text) IS
  'the partition a payment code was issued on: its first two digits, once the check digit holds';

CREATE FUNCTION payext.owner_hash(owner text)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_owner_hash'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.owner_hash(text) IS
  'a user''s id hashed for routing: the first 4 bytes of SHA-256, the same on every node and release';

CREATE FUNCTION payext.owner_partition(owner text, partitions integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_owner_partition'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.owner_partition(text, integer) IS
  'the partition of a user''s wallets among partitions (1-100): owner_hash as unsigned, modulo partitions';

INSERT INTO payext.partition_info (number, set_at)
SELECT s.number, pg_catalog.now()
  FROM (SELECT NULLIF(pg_catalog.current_setting('payext.shard_id', true), '')::integer
               AS number) s
 WHERE s.number IS NOT NULL AND s.number <> 0;

REVOKE ALL ON FUNCTION payext.set_partition(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.partition_guard() FROM PUBLIC;
REVOKE ALL ON TABLE payext.partition_info FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payext.current_partition() TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.partition_of(bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.code_partition(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.owner_hash(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.owner_partition(text, integer) TO PUBLIC;

-- References claimed for one partition behind a router.
CREATE TABLE payext.reference_claim (
  merchant         bigint NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('order', 'refund', 'capture')),
  reference        text NOT NULL CHECK (length(reference) BETWEEN 1 AND 128),
  partition_number integer NOT NULL CHECK (partition_number >= 0 AND partition_number <= 99),
  claimed_at       timestamptz NOT NULL,
  PRIMARY KEY (merchant, kind, reference)
);
COMMENT ON TABLE payext.reference_claim IS
  'behind a router: which partition charged or held a merchant''s order_ref, refunded under a refund_ref, or captured under a capture_ref';
SELECT pg_catalog.pg_extension_config_dump('payext.reference_claim', '');

CREATE FUNCTION payext.claim_reference(merchant bigint, kind text, reference text,
                                       partition_number integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_claim_reference'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.claim_reference(bigint, text, text, integer) IS
  'a router claims a merchant''s order_ref or refund_ref for a partition; returns the partition that holds it (the first claim''s)';

CREATE FUNCTION payext.claimed_partition(merchant bigint, kind text, reference text)
RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  holder integer;
BEGIN
  PERFORM payext.require_merchant(merchant);
  SELECT c.partition_number INTO holder FROM payext.reference_claim c
   WHERE c.merchant = claimed_partition.merchant AND c.kind = claimed_partition.kind
     AND c.reference = claimed_partition.reference;
  RETURN holder;
END
$$;
COMMENT ON FUNCTION payext.claimed_partition(bigint, text, text) IS
  'the partition a merchant''s order_ref or refund_ref was claimed for, or NULL';

REVOKE ALL ON TABLE payext.reference_claim FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.claim_reference(bigint, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.claimed_partition(bigint, text, text) FROM PUBLIC;

-- Every row on the partition its key names (the router's verify_ledger).
-- Behind a router: every row on the partition its key names.  Every id
-- carries this database's partition, and every wallet's owner hashes here
-- among `partitions` (NULL: a single node, where every owner belongs).
-- The router's verify_ledger() runs it on every partition.
CREATE FUNCTION payext.verify_placement(partitions integer)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH here AS (
    SELECT payext.current_partition() AS p
  ), ids AS (
    SELECT 'account' AS what, a.id FROM payext.account a
    UNION ALL SELECT 'transfer', t.id FROM payext.transfer t
    UNION ALL SELECT 'interaction', i.id FROM payext.interaction i
    UNION ALL SELECT 'association_rule', r.id FROM payext.association_rule r
    UNION ALL SELECT 'parking_lot', l.id FROM payext.parking_lot l
    UNION ALL SELECT 'parking_stay', s.id FROM payext.parking_stay s
    UNION ALL SELECT 'hold', h.id FROM payext.hold_entry h
  ), stray_id AS (
    SELECT i.what, i.id FROM ids i, here WHERE (i.id >> 56) <> here.p
  ), stray_owner AS (
    SELECT a.id, a.owner FROM payext.account a, here
     WHERE a.kind = 'wallet' AND $1 IS NOT NULL
       AND payext.owner_partition(a.owner, $1) <> here.p
  ), stray_plate AS (
    -- a plate's bindings and stays live where its (normalised) text hashes
    SELECT v.plate FROM payext.vehicle v, here
     WHERE $1 IS NOT NULL AND payext.owner_partition(v.plate, $1) <> here.p
    UNION
    SELECT s.plate FROM payext.parking_stay s, here
     WHERE $1 IS NOT NULL AND payext.owner_partition(s.plate, $1) <> here.p
  )
  SELECT 'placement_ids',
         NOT EXISTS (SELECT 1 FROM stray_id),
         CASE WHEN EXISTS (SELECT 1 FROM stray_id)
              THEN format('%s id(s) of another partition, the first %s %s',
                          (SELECT count(*) FROM stray_id),
                          (SELECT what FROM stray_id ORDER BY what, id LIMIT 1),
                          (SELECT id FROM stray_id ORDER BY what, id LIMIT 1))
              ELSE format('every id carries partition %s', (SELECT p FROM here))
         END
  UNION ALL
  SELECT 'placement_owners',
         NOT EXISTS (SELECT 1 FROM stray_owner) AND NOT EXISTS (SELECT 1 FROM stray_plate),
         CASE WHEN $1 IS NULL THEN 'a single node: every owner belongs here'
              WHEN EXISTS (SELECT 1 FROM stray_owner)
              THEN format('%s wallet(s) whose owner hashes to another of %s partitions, the first %s',
                          (SELECT count(*) FROM stray_owner), $1,
                          (SELECT id FROM stray_owner ORDER BY id LIMIT 1))
              WHEN EXISTS (SELECT 1 FROM stray_plate)
              THEN format('%s plate(s) bound or parked here hash to another of %s partitions, the first %s',
                          (SELECT count(*) FROM stray_plate), $1,
                          (SELECT plate FROM stray_plate ORDER BY plate LIMIT 1))
              ELSE format('every wallet''s owner and every plate hashes here among %s partitions', $1)
         END
$$;
COMMENT ON FUNCTION payext.verify_placement(integer) IS
  'behind a router: every id carries this partition, every wallet''s owner hashes to it among partitions';

REVOKE ALL ON FUNCTION payext.verify_placement(integer) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('admin', 'EXECUTE', 'FUNCTION payext.verify_placement(integer)');

-- Behind a router: the merchant procedures as functions.
-- The function forms of CALL merchant_charge and CALL merchant_refund, for
-- a router: PL/Proxy calls functions, not procedures
-- (docs/partitions.md).  The same checks, the same result.
CREATE FUNCTION payext.merchant_charge_call(merchant bigint, code text, amount bigint,
                                            order_ref text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN payext.charge(merchant, code, amount, order_ref);
END
$$;
COMMENT ON FUNCTION payext.merchant_charge_call(bigint, text, bigint, text) IS
  'CALL merchant_charge as a function, for a router';

CREATE FUNCTION payext.merchant_refund_call(merchant bigint, order_ref text, amount bigint,
                                            refund_ref text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN payext.refund(merchant, order_ref, amount, refund_ref);
END
$$;
COMMENT ON FUNCTION payext.merchant_refund_call(bigint, text, bigint, text) IS
  'CALL merchant_refund as a function, for a router';

REVOKE ALL ON FUNCTION payext.merchant_charge_call(bigint, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_refund_call(bigint, text, bigint, text) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_call(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_refund_call(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.claim_reference(bigint, text, text, integer)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.claimed_partition(bigint, text, text)');

-- Many claims of one merchant at once, for a router's charge_many: the
-- partition that holds each reference, in order.
CREATE FUNCTION payext.claim_references(merchant bigint, kind text, refs text[],
                                        partition_numbers integer[])
RETURNS integer[]
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  holders integer[] := '{}';
BEGIN
  IF refs IS NULL OR partition_numbers IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN refs IS NULL THEN 'refs' ELSE 'partition_numbers' END USING ERRCODE = 'PY001';
  END IF;
  IF coalesce(array_length(refs, 1), 0) <> coalesce(array_length(partition_numbers, 1), 0) THEN
    RAISE EXCEPTION 'arguments "refs" and "partition_numbers" must have the same length'
      USING ERRCODE = 'PY009';
  END IF;
  FOR i IN 1 .. coalesce(array_length(refs, 1), 0) LOOP
    holders := holders || payext.claim_reference(merchant, kind, refs[i], partition_numbers[i]);
  END LOOP;
  RETURN holders;
END
$$;
COMMENT ON FUNCTION payext.claim_references(bigint, text, text[], integer[]) IS
  'claim_reference for many references of one merchant, in order; the partitions that hold them';

REVOKE ALL ON FUNCTION payext.claim_references(bigint, text, text[], integer[]) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.claim_references(bigint, text, text[], integer[])');

-- CALL merchant_settle as a function, for a router: the same checks and
-- the same result.
CREATE FUNCTION payext.merchant_settle_call(merchant bigint, bank_ref text,
                                            OUT amount bigint, OUT transfer_id bigint,
                                            OUT charges bigint, OUT charged_amount bigint,
                                            OUT refunds bigint, OUT refunded_amount bigint)
RETURNS record
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  CALL payext.merchant_settle(merchant, bank_ref, amount, transfer_id, charges, charged_amount,
                              refunds, refunded_amount);
END
$$;
COMMENT ON FUNCTION payext.merchant_settle_call(bigint, text) IS
  'CALL merchant_settle as a function, for a router';

REVOKE ALL ON FUNCTION payext.merchant_settle_call(bigint, text) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_settle_call(bigint, text)');

-- A router's charge when the order's claim belongs on the payer's own
-- partition: the claim and the charge in one transaction here, one call
-- from the router instead of two (and a refused charge leaves no claim).
-- charge_claimed is the owner's, as bare charge is; merchant_charge_claimed
-- needs what a till has (require_claim_here, merchant_charge_call).  The
-- claim is C (src/claims.c): every routed charge makes one.
-- Claims order_ref for this partition, or PY208 when another holds it.
CREATE FUNCTION payext.require_claim_here(merchant bigint, order_ref text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_require_claim_here'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.require_claim_here(bigint, text) IS
  'claims a merchant''s order_ref for this partition, or PY208';

CREATE FUNCTION payext.charge_claimed(merchant bigint, code text, amount bigint,
                                      order_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_charge_claimed'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.charge_claimed(bigint, text, bigint, text) IS
  'a router''s charge whose order claim belongs here: claim and charge in one transaction';

CREATE FUNCTION payext.merchant_charge_claimed(merchant bigint, code text, amount bigint,
                                               order_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_claim_here(merchant, order_ref);
  RETURN payext.merchant_charge_call(merchant, code, amount, order_ref);
END
$$;
COMMENT ON FUNCTION payext.merchant_charge_claimed(bigint, text, bigint, text) IS
  'a router''s CALL merchant_charge whose order claim belongs here: claim and charge in one transaction';


REVOKE ALL ON FUNCTION payext.require_claim_here(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.charge_claimed(bigint, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_charge_claimed(bigint, text, bigint, text) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_claimed(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.require_claim_here(bigint, text)');

---------------------------------------------------------------------------
-- Readable relations, for a router
---------------------------------------------------------------------------

-- The rows of one of payext's readable relations, each as JSON, read with
-- the caller's own privileges and row-level security (SECURITY INVOKER):
-- a router (payext_router) gathers them from every partition behind its
-- own views of the same names.  Other relations, signing keys above all,
-- are 42P01 here whatever the caller may read.
CREATE FUNCTION payext.relation_rows(relation text)
RETURNS SETOF json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF relation IS NULL THEN
    RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = 'PY001';
  END IF;
  IF relation NOT IN ('account', 'transfer', 'payment', 'refund', 'interaction',
                      'association', 'association_opt_out', 'association_rule',
                      'consumer_merchant', 'merchant_summary', 'merchant_daily',
                      'analyst_consumer_merchant', 'code_failure', 'parking_lot',
                      'parking_stay', 'parking_payment', 'parking_anomaly', 'vehicle',
                      'merchant_credit', 'order_reversal', 'hold', 'parking_pass',
                      'parking_block', 'parking_validation') THEN
    RAISE EXCEPTION 'payext has no readable relation %', relation
      USING ERRCODE = 'undefined_table',
            HINT = 'A router reads only payext''s readable tables and views.';
  END IF;
  RETURN QUERY EXECUTE format('SELECT pg_catalog.to_json(r) FROM payext.%I r', relation);
END
$$;
COMMENT ON FUNCTION payext.relation_rows(text) IS
  'one readable relation''s rows as JSON, with the caller''s privileges; what a router''s views gather';
GRANT EXECUTE ON FUNCTION payext.relation_rows(text) TO PUBLIC;

---------------------------------------------------------------------------
-- Reversals: reverse_charge()
---------------------------------------------------------------------------

-- Orders reverse_charge() refunded in full or closed: one row per order;
-- transfer_id is the reversal's refund, NULL when it moved no money (the
-- order was never charged, or was refunded in full before).  A charge
-- under a closed order is PY215.
CREATE TABLE payext.order_reversal (
  merchant    bigint NOT NULL REFERENCES payext.account (id),
  order_ref   text NOT NULL,
  transfer_id bigint REFERENCES payext.transfer (id),
  reversed_at timestamptz NOT NULL,
  PRIMARY KEY (merchant, order_ref)
);
COMMENT ON TABLE payext.order_reversal IS
  'orders reverse_charge() refunded in full (transfer_id) or closed uncharged (NULL)';
SELECT pg_catalog.pg_extension_config_dump('payext.order_reversal', '');

-- The reversal itself; reverse_charge() (src/sql/roles.sql) checks the
-- caller first.
CREATE FUNCTION payext.reverse_order(merchant bigint, order_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_reverse_order'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.reverse_order(bigint, text) IS
  'behind reverse_charge(): refunds a charged order in full or closes an uncharged one';

-- The till's way out of an unknown outcome (a timeout): a charged order is
-- refunded in full, an uncharged one closed so that a late charge is
-- refused; once per order (again: the same transfer id, or NULL when the
-- reversal moved no money).  For the merchant accounts the caller may act
-- for (42501 otherwise).
CREATE FUNCTION payext.reverse_charge(merchant bigint, order_ref text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF merchant IS NULL OR order_ref IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PY001',
      MESSAGE = format('argument "%s" must not be null',
                       CASE WHEN merchant IS NULL THEN 'merchant' ELSE 'order_ref' END);
  END IF;
  PERFORM payext.require_merchant(merchant);
  RETURN payext.reverse_order(merchant, order_ref);
END
$$;
COMMENT ON FUNCTION payext.reverse_charge(bigint, text) IS
  'refunds a charged order in full, or closes an uncharged one against a late charge; once per order';

REVOKE ALL ON TABLE payext.order_reversal FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.reverse_order(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.reverse_charge(bigint, text) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.reverse_charge(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.reverse_charge(bigint, text)'),
  ('admin', 'SELECT', 'TABLE payext.order_reversal');

---------------------------------------------------------------------------
-- Events: event_channel()
---------------------------------------------------------------------------

-- Merchant accounts whose charges, refunds and reversals are announced by
-- NOTIFY on their channel (src/events.c): event_channel() adds the
-- account the first time its channel is asked for.
CREATE TABLE payext.event_subscription (
  merchant      bigint PRIMARY KEY REFERENCES payext.account (id),
  subscribed_at timestamptz NOT NULL
);
COMMENT ON TABLE payext.event_subscription IS
  'merchant accounts whose payment events are announced (event_channel())';
SELECT pg_catalog.pg_extension_config_dump('payext.event_subscription', '');

-- The channel's name; event_channel() (src/sql/roles.sql) checks the
-- caller first.
CREATE FUNCTION payext.event_channel_name(merchant bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_event_channel_name'
LANGUAGE C STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.event_channel_name(bigint) IS
  'behind event_channel(): the keyed name of a merchant account''s LISTEN channel';

-- The LISTEN channel on which a merchant account's charges, refunds and
-- reversals are announced after they commit, as JSON (docs/events.md).
-- LISTEN has no privileges: the name is keyed, and handed only to roles
-- that may act for the account.  Asking for it starts the announcements.
CREATE FUNCTION payext.event_channel(merchant bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  k text;
BEGIN
  PERFORM payext.require_merchant(merchant);
  SELECT a.kind INTO k FROM payext.account a WHERE a.id = event_channel.merchant;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', merchant USING ERRCODE = 'PY101';
  END IF;
  IF k <> 'merchant' THEN
    RAISE EXCEPTION 'account % is not a merchant account', merchant USING ERRCODE = 'PY111',
      DETAIL = format('Events are a merchant account''s; account %s is a %s account.', merchant, k);
  END IF;
  INSERT INTO payext.event_subscription VALUES (event_channel.merchant, now())
    ON CONFLICT ON CONSTRAINT event_subscription_pkey DO NOTHING;
  RETURN payext.event_channel_name(merchant);
END
$$;
COMMENT ON FUNCTION payext.event_channel(bigint) IS
  'the keyed LISTEN channel of a merchant account''s charges, refunds and reversals; asking starts them';

REVOKE ALL ON TABLE payext.event_subscription FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.event_channel_name(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.event_channel(bigint) FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('merchant', 'EXECUTE', 'FUNCTION payext.event_channel(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.event_channel(bigint)'),
  ('admin', 'SELECT', 'TABLE payext.event_subscription');

-- An account's movements in time order (balance_at(), statements): the
-- two account indexes gain created_at.  On a large journal these take a
-- while; CREATE INDEX CONCURRENTLY beforehand, under other names, and
-- dropping the old ones, shortens the update's lock.
DROP INDEX payext.transfer_debit_idx;
DROP INDEX payext.transfer_credit_idx;
CREATE INDEX transfer_debit_idx ON payext.transfer (debit_account, created_at);
CREATE INDEX transfer_credit_idx ON payext.transfer (credit_account, created_at);

---------------------------------------------------------------------------
-- Balances at an instant, and merchants' statements
---------------------------------------------------------------------------

-- An account's balance as of an instant is its journal's sum before it
-- (by created_at, the transaction's start).  A checkpoint keeps that sum at
-- the start of a UTC day, so that later questions sum only from there:
-- balance_at() writes one when it finds a day's start it had to sum past,
-- and only when no transaction that could still add a row before that
-- instant is open (none in this database started before it), under READ
-- COMMITTED (whose snapshot sees every commit so far), in a transaction
-- that may write.  verify_ledger() recomputes every checkpoint.
CREATE TABLE payext.balance_checkpoint (
  account  bigint NOT NULL REFERENCES payext.account (id),
  at       timestamptz NOT NULL,
  balance  numeric NOT NULL,
  PRIMARY KEY (account, at)
);
COMMENT ON TABLE payext.balance_checkpoint IS
  'an account''s journal sum before the start of a UTC day, kept by balance_at(); checked by verify_ledger()';
SELECT pg_catalog.pg_extension_config_dump('payext.balance_checkpoint', '');

-- The journal's sum for the account over [from_at, to_at): credits less
-- debits, by the two time-ordered indexes.
CREATE FUNCTION payext.journal_sum(account bigint, from_at timestamptz, to_at timestamptz)
RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce((SELECT sum(t.amount) FROM payext.transfer t
                    WHERE t.credit_account = $1 AND t.created_at >= $2 AND t.created_at < $3), 0)
       - coalesce((SELECT sum(t.amount) FROM payext.transfer t
                    WHERE t.debit_account = $1 AND t.created_at >= $2 AND t.created_at < $3), 0)
$$;

-- The sum before `at`, from the latest checkpoint before it; and, when it
-- is safe, a checkpoint at the start of at's UTC day (see above).  No
-- check of the caller: balance_at() and merchant_statement() make it.
CREATE FUNCTION payext.journal_balance_at(account bigint, at timestamptz)
RETURNS numeric
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  c_at timestamptz := '-infinity';
  c_balance numeric := 0;
  day_start timestamptz := date_trunc('day', at, 'UTC');
  before_day numeric;
  oldest timestamptz;
BEGIN
  SELECT c.at, c.balance INTO c_at, c_balance
    FROM payext.balance_checkpoint c
   WHERE c.account = journal_balance_at.account AND c.at <= journal_balance_at.at
   ORDER BY c.at DESC LIMIT 1;
  IF NOT FOUND THEN
    c_at := '-infinity';
    c_balance := 0;
  END IF;
  IF day_start > c_at AND day_start < now() - interval '1 minute'
     AND pg_catalog.current_setting('transaction_isolation') = 'read committed'
     AND pg_catalog.current_setting('transaction_read_only') = 'off'
     AND NOT pg_catalog.pg_is_in_recovery() THEN
    -- Every open transaction of this database, this one included, started
    -- after day_start; none is prepared; this role may see them all
    -- (without pg_read_all_stats others' sessions hide their start), and
    -- none hides it (track_activities off: state 'disabled'); and the
    -- account existed that day (no checkpoints back to 4713 BC).
    SELECT min(a.xact_start) INTO oldest
      FROM pg_catalog.pg_stat_activity a
     WHERE a.datname = pg_catalog.current_database();
    IF oldest > day_start
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts x
                        WHERE x.database = pg_catalog.current_database())
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                        WHERE a.datname = pg_catalog.current_database()
                          AND (a.query = '<insufficient privilege>' OR a.state = 'disabled'))
       AND day_start >= (SELECT date_trunc('day', a.created_at, 'UTC') FROM payext.account a
                          WHERE a.id = journal_balance_at.account) THEN
      before_day := c_balance + payext.journal_sum(account, c_at, day_start);
      INSERT INTO payext.balance_checkpoint VALUES (account, day_start, before_day)
        ON CONFLICT ON CONSTRAINT balance_checkpoint_pkey DO NOTHING;
      RETURN before_day + payext.journal_sum(account, day_start, at);
    END IF;
  END IF;
  RETURN c_balance + payext.journal_sum(account, c_at, at);
END
$$;

-- Who may read an account's past: as balance() — a wallet's for the app
-- and admins, a merchant's for its mapped roles and admins, a system or
-- clearing account's for admins (42501 otherwise; PY101 for no account).
CREATE FUNCTION payext.require_account_reader(account bigint)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  k text;
BEGIN
  SELECT a.kind INTO k FROM payext.account a WHERE a.id = require_account_reader.account;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', account USING ERRCODE = 'PY101';
  END IF;
  -- One refusal for every kind: which ids are merchants' is not told.
  IF NOT (CASE WHEN k = 'merchant' THEN payext.may_act_for(account)
               ELSE payext.caller_has_capability('admin')
                    OR (k = 'wallet' AND payext.caller_has_capability('app')) END) THEN
    RAISE EXCEPTION 'permission denied for account %', account USING ERRCODE = '42501';
  END IF;
  RETURN k;
END
$$;

CREATE FUNCTION payext.balance_at(account bigint, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF account IS NULL OR at IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN account IS NULL THEN 'account' ELSE 'at' END
      USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_account_reader(account);
  RETURN payext.journal_balance_at(account, at)::bigint;
END
$$;
COMMENT ON FUNCTION payext.balance_at(bigint, timestamptz) IS
  'an account''s balance as of an instant, from the journal (transfers created before it), from the last day''s checkpoint';

-- Every movement of the merchant's money in [from_at, to_at), oldest
-- first, with the balance after it.  amount is signed (+: money in);
-- kind is the journal's, a payout ('withdraw', merchant_settle) named
-- 'settlement' and a saga's cover ('clearing_*') 'cover'; order_ref is a
-- charge's or a refund's order, refund_ref a refund's, reference the
-- journal's.  balance_after counts every movement whatever kind filters
-- the rows: opening + the movements = balance_at(to_at).
-- (Its rows are a type's, not OUT parameters: a column and the argument
-- that filters it are both named kind.)
CREATE TYPE payext.statement_line AS (
  transfer_id bigint, created_at timestamptz, kind text, order_ref text, refund_ref text,
  reference text, amount bigint, balance_after bigint
);
CREATE FUNCTION payext.merchant_statement(merchant bigint, from_at timestamptz, to_at timestamptz,
                                          kind text DEFAULT 'all')
RETURNS SETOF payext.statement_line
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  opening numeric;
  wanted text := merchant_statement.kind;
BEGIN
  IF merchant IS NULL OR from_at IS NULL OR to_at IS NULL OR wanted IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN merchant IS NULL THEN 'merchant' WHEN from_at IS NULL THEN 'from_at'
           WHEN to_at IS NULL THEN 'to_at' ELSE 'kind' END
      USING ERRCODE = 'PY001';
  END IF;
  IF wanted NOT IN ('all', 'charge', 'capture', 'refund', 'settlement') THEN
    RAISE EXCEPTION 'a statement''s kind is all, charge, capture, refund or settlement, not "%"', wanted
      USING ERRCODE = 'PY011';
  END IF;
  IF from_at > to_at THEN
    RAISE EXCEPTION 'a statement''s from_at is after its to_at' USING ERRCODE = 'PY011';
  END IF;
  IF payext.require_account_reader(merchant) <> 'merchant' THEN
    RAISE EXCEPTION 'account % is not a merchant account', merchant USING ERRCODE = 'PY111',
      DETAIL = 'A statement is a merchant account''s.';
  END IF;
  opening := payext.journal_balance_at(merchant, from_at);
  RETURN QUERY
    WITH moves AS (
      SELECT t.id, t.created_at, t.kind AS journal_kind, t.reference,
             CASE WHEN t.credit_account = merchant_statement.merchant THEN t.amount ELSE -t.amount END AS signed
        FROM payext.transfer t
       WHERE t.credit_account = merchant_statement.merchant
         AND t.created_at >= from_at AND t.created_at < to_at
      UNION ALL
      SELECT t.id, t.created_at, t.kind, t.reference, -t.amount
        FROM payext.transfer t
       WHERE t.debit_account = merchant_statement.merchant
         AND t.created_at >= from_at AND t.created_at < to_at
    ), lines AS (
      SELECT m.id, m.created_at,
             CASE m.journal_kind WHEN 'withdraw' THEN 'settlement'
                                 WHEN 'clearing_out' THEN 'cover' WHEN 'clearing_in' THEN 'cover'
                                 WHEN 'clearing_back' THEN 'cover'
                                 ELSE m.journal_kind END AS line_kind,
             CASE m.journal_kind WHEN 'charge' THEN m.reference
                                 WHEN 'capture' THEN (SELECT h.order_ref FROM payext.hold_capture c
                                                        JOIN payext.hold_entry h ON h.id = c.hold
                                                       WHERE c.transfer_id = m.id)
                                 WHEN 'refund' THEN (SELECT p.order_ref FROM payext.refund r
                                                       JOIN payext.payment p ON p.transfer_id = r.payment
                                                      WHERE r.transfer_id = m.id) END AS line_order,
             CASE m.journal_kind WHEN 'refund' THEN m.reference END AS line_refund,
             m.reference, m.signed,
             opening + sum(m.signed) OVER (ORDER BY m.created_at, m.id) AS after
        FROM moves m
    )
    SELECT l.id, l.created_at, l.line_kind, l.line_order, l.line_refund, l.reference,
           l.signed, l.after::bigint
      FROM lines l
     WHERE wanted = 'all' OR l.line_kind = wanted
     ORDER BY l.created_at, l.id;
END
$$;
COMMENT ON FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text) IS
  'every movement of a merchant''s money in [from_at, to_at), oldest first, with the balance after it';

-- The checkpoints agree with the journal (a row only where there are any).
CREATE FUNCTION payext.verify_checkpoints()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH bad AS (
    SELECT c.account, c.at, c.balance,
           payext.journal_sum(c.account, '-infinity', c.at) AS journal
      FROM payext.balance_checkpoint c
  )
  SELECT 'balance_checkpoints_match',
         count(*) FILTER (WHERE b.balance <> b.journal) = 0,
         CASE WHEN count(*) FILTER (WHERE b.balance <> b.journal) = 0
              THEN format('%s checkpoint(s) agree with the journal', count(*))
              ELSE format('%s checkpoint(s) differ, e.g. account %s at %s holds %s, the journal says %s',
                          count(*) FILTER (WHERE b.balance <> b.journal),
                          (array_agg(b.account) FILTER (WHERE b.balance <> b.journal))[1],
                          (array_agg(b.at) FILTER (WHERE b.balance <> b.journal))[1],
                          (array_agg(b.balance) FILTER (WHERE b.balance <> b.journal))[1],
                          (array_agg(b.journal) FILTER (WHERE b.balance <> b.journal))[1]) END
    FROM bad b
  HAVING count(*) > 0
$$;

REVOKE ALL ON TABLE payext.balance_checkpoint FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.journal_sum(bigint, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.journal_balance_at(bigint, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.require_account_reader(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.balance_at(bigint, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.verify_checkpoints() FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('app', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('admin', 'SELECT', 'TABLE payext.balance_checkpoint');

---------------------------------------------------------------------------
-- Holds (pre-authorisation): money reserved until captured, voided or expired
---------------------------------------------------------------------------

-- A wallet's holds (src/sql/holds.sql) may reserve money until then: the
-- latest expiry any hold of it had when made.  A merchant's: set by its
-- first hold (its charges then look for holds under their orders).
-- NULL: it never had one.
ALTER TABLE payext.account ADD COLUMN held_until timestamptz;

---------------------------------------------------------------------------
-- Holds and their captures
---------------------------------------------------------------------------

CREATE SEQUENCE payext.hold_id_seq AS bigint;

-- The rows.  state is what was done to the hold: 'open' until a final
-- capture ('captured') or a void ('voided').  Expiry is not a state: an
-- open hold past expires_at holds nothing (payext.hold shows it as
-- 'expired'), without any job having to run.
CREATE TABLE payext.hold_entry (
  id          bigint PRIMARY KEY,
  wallet      bigint NOT NULL,
  merchant    bigint NOT NULL,
  -- in the merchant's order namespace, shared with charges
  order_ref   text NOT NULL,
  -- the payment code it used; NULL for a parking lot's entry hold
  code_serial bigint UNIQUE,
  stay        bigint,
  amount      bigint NOT NULL CHECK (amount > 0),
  captured    bigint NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
  state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'captured', 'voided')),
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL,
  closed_at   timestamptz,
  CONSTRAINT hold_order_key UNIQUE (merchant, order_ref),
  CONSTRAINT hold_closed_when CHECK ((state = 'open') = (closed_at IS NULL)),
  CONSTRAINT hold_made_by CHECK ((code_serial IS NULL) = (stay IS NOT NULL))
);
-- What a wallet's live holds reserve (LedgerHeld): its open holds, by
-- expiry, so that the expired ones are skipped by the index.
CREATE INDEX hold_wallet_open_idx ON payext.hold_entry (wallet, expires_at)
  WHERE state = 'open';
CREATE INDEX hold_stay_idx ON payext.hold_entry (stay) WHERE stay IS NOT NULL;
COMMENT ON TABLE payext.hold_entry IS
  'holds: money of a wallet reserved for a merchant until captured, voided or expired (payext.hold shows them)';

-- Each capture of a hold: its journal transfer (kind 'capture', reference
-- the capture_ref, scoped to the merchant).
CREATE TABLE payext.hold_capture (
  transfer_id bigint PRIMARY KEY,
  hold        bigint NOT NULL REFERENCES payext.hold_entry (id),
  amount      bigint NOT NULL CHECK (amount > 0),
  created_at  timestamptz NOT NULL
);
CREATE INDEX hold_capture_hold_idx ON payext.hold_capture (hold);
COMMENT ON TABLE payext.hold_capture IS 'captures of holds, one journal transfer each';

SELECT pg_catalog.pg_extension_config_dump('payext.hold_entry', '');
SELECT pg_catalog.pg_extension_config_dump('payext.hold_capture', '');
SELECT pg_catalog.pg_extension_config_dump('payext.hold_id_seq', '');

CREATE VIEW payext.hold AS
  SELECT h.id, h.wallet, h.merchant, h.order_ref, h.amount, h.captured,
         CASE WHEN h.state = 'open' AND h.expires_at <= now() THEN 'expired' ELSE h.state END AS state,
         h.expires_at, h.created_at, h.closed_at, h.stay,
         CASE WHEN h.state = 'open' AND h.expires_at > now() THEN h.amount - h.captured ELSE 0 END
           AS holding
    FROM payext.hold_entry h;
COMMENT ON VIEW payext.hold IS
  'holds as of now: open, expired (past expires_at, holding nothing), captured or voided; holding is what it reserves';

---------------------------------------------------------------------------
-- Functions
---------------------------------------------------------------------------

CREATE FUNCTION payext.authorize(merchant bigint, code text, amount bigint, order_ref text,
                                 expires_in interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_authorize'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.authorize(bigint, text, bigint, text, interval) IS
  'a merchant reserves an amount of the wallet behind a payment code; returns the hold id; idempotent on (merchant, order_ref), shared with charges';

CREATE FUNCTION payext.capture_hold(merchant bigint, hold bigint, amount bigint,
                                    capture_ref text, final boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_capture_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.capture_hold(bigint, bigint, bigint, text, boolean) IS
  'takes up to a hold''s remainder to the merchant (a journal transfer); final releases the rest; idempotent on (merchant, capture_ref)';

CREATE FUNCTION payext.void_hold(merchant bigint, hold bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_void_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.void_hold(bigint, bigint) IS
  'releases what a hold still reserves, and returns it (0 when it reserved nothing any more)';

-- The balance less what live holds reserve, for whoever may read the
-- account's balance.  Not SECURITY DEFINER, as balance() is not: the C
-- code becomes the owner itself after it has noted the invoker, whose
-- right to read the account it judges (a SECURITY DEFINER function would
-- see the owner as its invoker and answer anyone).
CREATE FUNCTION payext.available_balance(account bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_available_balance'
LANGUAGE C STABLE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.available_balance(bigint) IS
  'an account''s balance less what its live holds reserve: what charges, withdrawals and new holds may take';

-- Holds against the journal and the wallets: part of verify_ledger().
CREATE FUNCTION payext.verify_holds()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH captured AS (
    SELECT c.hold, sum(c.amount::numeric) AS total FROM payext.hold_capture c GROUP BY c.hold
  ), bad_hold AS (
    -- captures add up to what the hold says, never above it; a capture's
    -- transfer is a 'capture' from the hold's wallet to its merchant
    SELECT h.id FROM payext.hold_entry h LEFT JOIN captured c ON c.hold = h.id
     WHERE coalesce(c.total, 0) <> h.captured OR h.captured > h.amount
    UNION
    SELECT c.hold FROM payext.hold_capture c
      JOIN payext.hold_entry h ON h.id = c.hold
      LEFT JOIN payext.transfer t ON t.id = c.transfer_id
     WHERE t.id IS NULL OR t.debit_account <> h.wallet
        -- an entry hold is taken by the stay's payment (src/parking.c)
        OR t.kind <> CASE WHEN h.stay IS NULL THEN 'capture' ELSE 'parking' END
        OR t.credit_account <> h.merchant OR t.amount <> c.amount
    UNION
    -- the wallet says it may hold at least until the hold expires, and the
    -- merchant that it has holds (so that its charges look for them)
    SELECT h.id FROM payext.hold_entry h JOIN payext.account a ON a.id = h.wallet
     WHERE h.state = 'open' AND (a.held_until IS NULL OR a.held_until < h.expires_at)
    UNION
    SELECT h.id FROM payext.hold_entry h JOIN payext.account m ON m.id = h.merchant
     WHERE m.held_until IS NULL
  ), orphan_capture AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.kind = 'capture'
       AND NOT EXISTS (SELECT 1 FROM payext.hold_capture c WHERE c.transfer_id = t.id)
  ), live AS (
    SELECT h.wallet, sum((h.amount - h.captured)::numeric) AS holding
      FROM payext.hold_entry h
     WHERE h.state = 'open' AND h.expires_at > now()
     GROUP BY h.wallet
  ), overheld AS (
    -- a live hold on a wallet that is closed, or that holds less than its
    -- live holds reserve
    SELECT a.id, a.status, a.balance, l.holding FROM live l JOIN payext.account a ON a.id = l.wallet
     WHERE a.status = 'closed' OR a.balance::numeric < l.holding
  )
  -- (rows only where there are holds or captures, as verify_checkpoints())
  , anything AS (
    SELECT EXISTS (SELECT 1 FROM payext.hold_entry)
           OR EXISTS (SELECT 1 FROM payext.transfer t WHERE t.kind = 'capture') AS yes
  )
  SELECT 'holds_match_journal',
         NOT EXISTS (SELECT 1 FROM bad_hold) AND NOT EXISTS (SELECT 1 FROM orphan_capture),
         CASE WHEN EXISTS (SELECT 1 FROM bad_hold) OR EXISTS (SELECT 1 FROM orphan_capture)
              THEN format('%s hold(s) and %s capture transfer(s) disagree, e.g. hold %s',
                          (SELECT count(*) FROM bad_hold), (SELECT count(*) FROM orphan_capture),
                          (SELECT min(id) FROM bad_hold))
              ELSE format('%s holds and %s captures agree with the journal',
                          (SELECT count(*) FROM payext.hold_entry),
                          (SELECT count(*) FROM payext.hold_capture))
         END
    FROM anything WHERE anything.yes
  UNION ALL
  SELECT 'available_not_negative',
         NOT EXISTS (SELECT 1 FROM overheld),
         coalesce((SELECT string_agg(format('wallet %s (%s) holds %s, its live holds reserve %s',
                                            o.id, o.status, o.balance, o.holding), '; ' ORDER BY o.id)
                     FROM (SELECT * FROM overheld ORDER BY id LIMIT 3) o),
                  format('%s wallet(s) with live holds, none reserving more than it holds',
                         (SELECT count(*) FROM live)))
    FROM anything WHERE anything.yes
$$;
COMMENT ON FUNCTION payext.verify_holds() IS
  'holds against the journal and the wallets (rows only where there are any); part of verify_ledger()';

-- Holds (src/sql/holds.sql): a merchant role reserves, captures and
-- releases, for the merchant accounts it is mapped to.
CREATE PROCEDURE payext.merchant_authorize(merchant bigint, code text, amount bigint,
                                           order_ref text, expires_in interval DEFAULT '7 days',
                                           INOUT hold_id bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  hold_id := payext.authorize(merchant, code, amount, order_ref, expires_in);
END
$$;
COMMENT ON PROCEDURE payext.merchant_authorize(bigint, text, bigint, text, interval, bigint) IS
  'a merchant role holds an amount of a customer''s wallet behind a payment code, for a merchant account it is mapped to';

CREATE PROCEDURE payext.merchant_capture(merchant bigint, hold bigint, amount bigint,
                                         capture_ref text, final boolean DEFAULT true,
                                         INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  transfer_id := payext.capture_hold(merchant, hold, amount, capture_ref, final);
END
$$;
COMMENT ON PROCEDURE payext.merchant_capture(bigint, bigint, bigint, text, boolean, bigint) IS
  'a merchant role captures a hold of a merchant account it is mapped to';

CREATE PROCEDURE payext.merchant_void(merchant bigint, hold bigint,
                                      INOUT released bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  released := payext.void_hold(merchant, hold);
END
$$;
COMMENT ON PROCEDURE payext.merchant_void(bigint, bigint, bigint) IS
  'a merchant role releases a hold of a merchant account it is mapped to';

-- The procedures as functions, for a router (PL/Proxy calls functions).
CREATE FUNCTION payext.merchant_authorize_call(merchant bigint, code text, amount bigint,
                                               order_ref text, expires_in interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN payext.authorize(merchant, code, amount, order_ref, expires_in);
END
$$;
COMMENT ON FUNCTION payext.merchant_authorize_call(bigint, text, bigint, text, interval) IS
  'CALL merchant_authorize as a function, for a router';

CREATE FUNCTION payext.merchant_capture_call(merchant bigint, hold bigint, amount bigint,
                                             capture_ref text, final boolean)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN payext.capture_hold(merchant, hold, amount, capture_ref, final);
END
$$;
COMMENT ON FUNCTION payext.merchant_capture_call(bigint, bigint, bigint, text, boolean) IS
  'CALL merchant_capture as a function, for a router';

CREATE FUNCTION payext.merchant_void_call(merchant bigint, hold bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN payext.void_hold(merchant, hold);
END
$$;
COMMENT ON FUNCTION payext.merchant_void_call(bigint, bigint) IS
  'CALL merchant_void as a function, for a router';

-- A merchant account's holds as of now, newest first; a customer shows as
-- nothing but the hold (no wallet id).
CREATE FUNCTION payext.merchant_holds(merchant bigint)
RETURNS TABLE (hold_id bigint, order_ref text, amount bigint, captured bigint, state text,
               holding bigint, expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  RETURN QUERY
    SELECT h.id, h.order_ref, h.amount, h.captured, h.state, h.holding, h.expires_at, h.created_at
      FROM payext.hold h WHERE h.merchant = merchant_holds.merchant
     ORDER BY h.created_at DESC, h.id DESC;
END
$$;
COMMENT ON FUNCTION payext.merchant_holds(bigint) IS
  'a merchant account''s holds as of now, for roles mapped to it';

REVOKE ALL ON FUNCTION payext.authorize(bigint, text, bigint, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.capture_hold(bigint, bigint, bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.void_hold(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.available_balance(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.verify_holds() FROM PUBLIC;
REVOKE ALL ON PROCEDURE payext.merchant_authorize(bigint, text, bigint, text, interval, bigint) FROM PUBLIC;
REVOKE ALL ON PROCEDURE payext.merchant_capture(bigint, bigint, bigint, text, boolean, bigint) FROM PUBLIC;
REVOKE ALL ON PROCEDURE payext.merchant_void(bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_authorize_call(bigint, text, bigint, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_capture_call(bigint, bigint, bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_void_call(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_holds(bigint) FROM PUBLIC;
REVOKE ALL ON TABLE payext.hold_entry FROM PUBLIC;
REVOKE ALL ON TABLE payext.hold_capture FROM PUBLIC;
REVOKE ALL ON TABLE payext.hold FROM PUBLIC;
REVOKE ALL ON SEQUENCE payext.hold_id_seq FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('app', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_authorize(bigint, text, bigint, text, interval, bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_capture(bigint, bigint, bigint, text, boolean, bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_void(bigint, bigint, bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_holds(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_authorize_call(bigint, text, bigint, text, interval)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_capture_call(bigint, bigint, bigint, text, boolean)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_void_call(bigint, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.authorize(bigint, text, bigint, text, interval)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.capture_hold(bigint, bigint, bigint, text, boolean)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.void_hold(bigint, bigint)'),
  ('admin', 'SELECT', 'TABLE payext.hold'),
  ('admin', 'SELECT', 'TABLE payext.hold_entry'),
  ('admin', 'SELECT', 'TABLE payext.hold_capture');

---------------------------------------------------------------------------
-- Parking: entry holds (a lot's new argument and column)
---------------------------------------------------------------------------

-- held on an auto-paying owner's wallet at entry, taken at exit (NULL: none)
ALTER TABLE payext.parking_lot ADD COLUMN entry_hold bigint CHECK (entry_hold > 0);
-- The capabilities name functions by their arguments: the old form's rows
-- name the new one (the README's Upgrading grants them again).
DROP FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer);
CREATE FUNCTION payext.create_parking_lot(operator bigint, name text, time_zone text,
                                          free_minutes integer, unit_minutes integer,
                                          day_price bigint, night_price bigint DEFAULT NULL,
                                          day_start time DEFAULT '08:00',
                                          night_start time DEFAULT '20:00',
                                          cap_24h bigint DEFAULT NULL,
                                          cap_stay bigint DEFAULT NULL,
                                          exit_grace_minutes integer DEFAULT 15,
                                          entry_hold bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_create_parking_lot'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer, bigint) IS
  'a parking lot of an operator (a merchant account) with its tariff (and entry hold); returns its id';
REVOKE ALL ON FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer, bigint) FROM PUBLIC;
UPDATE payext.capability SET object = 'FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer, bigint)'
 WHERE object = 'FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer)';

---------------------------------------------------------------------------
-- Parking as operators run it: arrears, passes, blocked plates, misread
-- plates (entry holds are src/parking.c's, on payext.hold_entry)
---------------------------------------------------------------------------

-- Exited stays still owed (arrears): what a gate asks about by plate.
CREATE INDEX parking_stay_owed_idx ON payext.parking_stay (plate)
  WHERE state = 'exited' AND fee > paid;

-- A plate's match keys: its confusion key (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B as
-- one) and that key less any one character.  Two plates within one edit
-- share a key, so the open stays' keys, indexed, find the candidates for
-- a misread plate (src/plate.c).
CREATE FUNCTION payext.plate_match_keys(plate text)
RETURNS text[]
AS 'MODULE_PATHNAME', 'payext_plate_match_keys'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION payext.plate_match_keys(text) IS
  'a plate''s confusion key and its one-character deletions: plates within one edit share one';

CREATE FUNCTION payext.plate_distance(a text, b text)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_plate_distance'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION payext.plate_distance(text, text) IS
  'edits between two plates, the camera''s confusions counting as none: 0, 1, or 2 for two or more';

CREATE INDEX parking_stay_match_idx ON payext.parking_stay
  USING gin (payext.plate_match_keys(plate)) WHERE state = 'open';

CREATE SEQUENCE payext.parking_pass_id_seq AS bigint;
CREATE TABLE payext.parking_pass (
  id          bigint PRIMARY KEY,
  lot         bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate       text NOT NULL,           -- normalised
  valid_from  timestamptz NOT NULL,
  valid_until timestamptz NOT NULL,
  pass_ref    text NOT NULL,
  granted_at  timestamptz NOT NULL,
  CONSTRAINT parking_pass_span CHECK (valid_from < valid_until),
  CONSTRAINT parking_pass_ref_key UNIQUE (lot, pass_ref)
);
CREATE INDEX parking_pass_plate_idx ON payext.parking_pass (lot, plate, valid_until);
COMMENT ON TABLE payext.parking_pass IS
  'passes (a month''s parking): the part of a stay inside one costs nothing';

CREATE TABLE payext.parking_block (
  lot        bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate      text NOT NULL,            -- normalised
  blocked_at timestamptz NOT NULL,
  PRIMARY KEY (lot, plate)
);
COMMENT ON TABLE payext.parking_block IS 'plates a lot refuses at its gate (plate_status() says blocked)';

SELECT pg_catalog.pg_extension_config_dump('payext.parking_pass', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_pass_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_block', '');

-- A new id of this partition from one of parking's sequences ('pass').
CREATE FUNCTION payext.parking_next_id(what text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_parking_next_id'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION payext.parking_next_id(text) IS
  'a new id, carrying this partition, for a parking pass';

-- The lot's row, or PY407; its operator's roles (and admins) only.
CREATE FUNCTION payext.require_lot_operator(lot bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  operator bigint;
BEGIN
  IF lot IS NULL THEN
    RAISE EXCEPTION 'argument "lot" must not be null' USING ERRCODE = 'PY001';
  END IF;
  SELECT l.operator INTO operator FROM payext.parking_lot l WHERE l.id = require_lot_operator.lot;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
  END IF;
  PERFORM payext.require_merchant(operator);
  RETURN operator;
END
$$;
COMMENT ON FUNCTION payext.require_lot_operator(bigint) IS
  'PY407 for an unknown lot, 42501 unless the caller may act for its operator; returns the operator';

-- A pass of the plate at the lot for [valid_from, valid_until); the part
-- of a stay inside it costs nothing.  Idempotent on (lot, pass_ref): again
-- with the same plate and span, the same pass; with others, PY417.
CREATE FUNCTION payext.grant_parking_pass(lot bigint, plate text, valid_from timestamptz,
                                          valid_until timestamptz, pass_ref text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text;
  id bigint;
  old payext.parking_pass;
BEGIN
  IF plate IS NULL OR valid_from IS NULL OR valid_until IS NULL OR pass_ref IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN plate IS NULL THEN 'plate' WHEN valid_from IS NULL THEN 'valid_from'
           WHEN valid_until IS NULL THEN 'valid_until' ELSE 'pass_ref' END
      USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  p := payext.normalize_plate(plate);
  IF length(pass_ref) NOT BETWEEN 1 AND 128 OR pass_ref ~ '[[:cntrl:]]' OR pass_ref <> btrim(pass_ref) THEN
    RAISE EXCEPTION 'argument "pass_ref" is not a reference' USING ERRCODE = 'PY004',
      DETAIL = 'A reference has 1 to 128 characters, no control characters and no surrounding spaces.';
  END IF;
  IF NOT isfinite(valid_from) OR NOT isfinite(valid_until) OR valid_from >= valid_until THEN
    RAISE EXCEPTION 'a pass runs from valid_from up to a later valid_until' USING ERRCODE = 'PY416',
      DETAIL = format('It would run from %s to %s.', valid_from, valid_until);
  END IF;
  INSERT INTO payext.parking_pass AS x
    VALUES (payext.parking_next_id('pass'), grant_parking_pass.lot, p, valid_from, valid_until,
            pass_ref, now())
    ON CONFLICT ON CONSTRAINT parking_pass_ref_key DO NOTHING
    RETURNING x.id INTO id;
  IF id IS NOT NULL THEN
    RETURN id;
  END IF;
  SELECT * INTO old FROM payext.parking_pass x
   WHERE x.lot = grant_parking_pass.lot AND x.pass_ref = grant_parking_pass.pass_ref;
  IF old.plate = p AND old.valid_from = grant_parking_pass.valid_from
     AND old.valid_until = grant_parking_pass.valid_until THEN
    RETURN old.id;
  END IF;
  RAISE EXCEPTION 'pass reference "%" was already used for another pass', pass_ref
    USING ERRCODE = 'PY417',
          DETAIL = format('Pass %s of the lot was granted under it.', old.id),
          HINT = 'A retry repeats the plate and the span; a new pass needs a new reference.';
END
$$;
COMMENT ON FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text) IS
  'a pass of a plate at a lot (the part of a stay inside it is free); idempotent on (lot, pass_ref)';

CREATE FUNCTION payext.block_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF plate IS NULL THEN
    RAISE EXCEPTION 'argument "plate" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  INSERT INTO payext.parking_block VALUES (block_plate.lot, payext.normalize_plate(plate), now())
    ON CONFLICT ON CONSTRAINT parking_block_pkey DO NOTHING;
END
$$;
COMMENT ON FUNCTION payext.block_plate(bigint, text) IS
  'the lot refuses the plate at its gate (again: nothing more)';

CREATE FUNCTION payext.unblock_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF plate IS NULL THEN
    RAISE EXCEPTION 'argument "plate" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  DELETE FROM payext.parking_block b
   WHERE b.lot = unblock_plate.lot AND b.plate = payext.normalize_plate(unblock_plate.plate);
END
$$;
COMMENT ON FUNCTION payext.unblock_plate(bigint, text) IS 'the lot takes the plate again';

-- What a gate needs to know of a plate at its lot, in this order:
-- 'blocked' (the lot refuses it), 'arrears' (its owner owes an exited
-- stay at any lot; an unbound plate, one of its own), 'pass' (a valid pass
-- at this lot now), else 'normal'.  A few index lookups: the block, the
-- plate's owner, the owner's plates' owed stays (parking_stay_owed_idx),
-- the pass.
CREATE FUNCTION payext.plate_status(lot bigint, plate text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text;
  o text;
BEGIN
  IF lot IS NULL OR plate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN lot IS NULL THEN 'lot' ELSE 'plate' END
      USING ERRCODE = 'PY001';
  END IF;
  p := payext.normalize_plate(plate);
  -- An app (the gates' backend) asks at any lot; a merchant role only at
  -- its operators' lots: another's blocks and passes are not its to read.
  IF payext.caller_has_capability('app') OR payext.caller_has_capability('admin') THEN
    IF NOT EXISTS (SELECT 1 FROM payext.parking_lot l WHERE l.id = plate_status.lot) THEN
      RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
    END IF;
  ELSE
    PERFORM payext.require_lot_operator(lot);
  END IF;
  IF EXISTS (SELECT 1 FROM payext.parking_block b WHERE b.lot = plate_status.lot AND b.plate = p) THEN
    RETURN 'blocked';
  END IF;
  SELECT v.owner INTO o FROM payext.vehicle v WHERE v.plate = p;
  IF (o IS NULL AND EXISTS (SELECT 1 FROM payext.parking_stay s
                             WHERE s.plate = p AND s.state = 'exited' AND s.fee > s.paid
                               AND s.owner_at_entry IS NULL))
     OR (o IS NOT NULL AND EXISTS (SELECT 1 FROM payext.vehicle v
                                     JOIN payext.parking_stay s ON s.plate = v.plate
                                    WHERE v.owner = o AND s.state = 'exited' AND s.fee > s.paid
                                      AND (s.owner_at_entry IS NULL OR s.owner_at_entry = o))) THEN
    RETURN 'arrears';
  END IF;
  IF EXISTS (SELECT 1 FROM payext.parking_pass x
              WHERE x.lot = plate_status.lot AND x.plate = p
                AND x.valid_until > now() AND x.valid_from <= now()) THEN
    RETURN 'pass';
  END IF;
  RETURN 'normal';
END
$$;
COMMENT ON FUNCTION payext.plate_status(bigint, text) IS
  'what a gate does with a plate: blocked, arrears, pass or normal';

-- Pays the owner's owed stays (exited, unpaid), oldest exit first, each
-- from the owner's wallet in its lot's currency, until one it cannot pay;
-- a stay in a currency the owner has no wallet in is passed over.
-- Returns how many it paid.  The stays are locked first, in id order, then
-- paid one by one (pay_parking()), so that it takes locks in the order a
-- payment of one stay does.
CREATE FUNCTION payext.settle_arrears(owner text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s record;
  w bigint;
  n integer := 0;
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM 1 FROM payext.vehicle v JOIN payext.parking_stay x ON x.plate = v.plate
   WHERE v.owner = settle_arrears.owner AND x.state = 'exited' AND x.fee > x.paid
     AND (x.owner_at_entry IS NULL OR x.owner_at_entry = v.owner)
   ORDER BY x.id
     FOR UPDATE OF x;
  FOR s IN
    SELECT x.id, x.fee - x.paid AS due, l.currency
      FROM payext.vehicle v JOIN payext.parking_stay x ON x.plate = v.plate
      JOIN payext.parking_lot l ON l.id = x.lot
     WHERE v.owner = settle_arrears.owner AND x.state = 'exited' AND x.fee > x.paid
       AND (x.owner_at_entry IS NULL OR x.owner_at_entry = v.owner)
     ORDER BY x.exited_at, x.id
  LOOP
    SELECT a.id INTO w FROM payext.account a
     WHERE a.kind = 'wallet' AND a.owner = settle_arrears.owner AND a.currency = s.currency;
    -- (no wallet in that currency: that stay waits, the others are paid)
    CONTINUE WHEN w IS NULL;
    BEGIN
      PERFORM payext.pay_parking(s.id, w, s.due);
      n := n + 1;
    EXCEPTION WHEN SQLSTATE 'PY104' OR SQLSTATE 'PY102' OR SQLSTATE 'PY103' THEN
      EXIT;
    END;
  END LOOP;
  RETURN n;
END
$$;
COMMENT ON FUNCTION payext.settle_arrears(text) IS
  'pays the owner''s owed stays, oldest first, while the wallet allows; returns how many';

-- Shops' validations: a merchant pays part of its customer's stay.  The
-- discount is paid to the operator when the stay is paid (src/parking.c,
-- validate_parking): its fee is known only then.
CREATE SEQUENCE payext.parking_validation_id_seq AS bigint;
CREATE TABLE payext.parking_validation (
  id             bigint PRIMARY KEY,
  stay           bigint NOT NULL REFERENCES payext.parking_stay (id),
  merchant       bigint NOT NULL REFERENCES payext.account (id),
  kind           text NOT NULL CHECK (kind IN ('amount', 'minutes', 'percent', 'free')),
  value          bigint NOT NULL CHECK (value >= 0),
  validation_ref text NOT NULL,
  -- pending until the stay is paid; then applied (discount paid, perhaps
  -- 0), or unfunded (the shop could not pay it then: the owner paid all)
  state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'unfunded')),
  discount       bigint CHECK (discount >= 0),
  transfer_id    bigint,
  created_at     timestamptz NOT NULL,
  applied_at     timestamptz,
  CONSTRAINT parking_validation_once UNIQUE (stay, merchant),
  CONSTRAINT parking_validation_ref_key UNIQUE (merchant, validation_ref),
  CONSTRAINT parking_validation_settled
    CHECK ((state = 'pending') = (applied_at IS NULL) AND (state = 'pending') = (discount IS NULL))
);
COMMENT ON TABLE payext.parking_validation IS
  'shops paying part of their customers'' stays: pending until the stay is paid, then applied or unfunded';
SELECT pg_catalog.pg_extension_config_dump('payext.parking_validation', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_validation_id_seq', '');

CREATE FUNCTION payext.validate_parking(stay bigint, merchant bigint, kind text, value bigint,
                                        validation_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_validate_parking'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text) IS
  'a shop pays part of a stay (amount, minutes from entry, percent, or free) when it is paid; once per shop and stay; idempotent on (merchant, validation_ref)';

-- Open stays at the lot whose plate is within one edit of the plate read
-- (the camera's confusions counting as none), nearest first: for an exit
-- without an entry.  The lot's open stays' match keys are indexed
-- (parking_stay_match_idx).  (Rows of a type, not OUT parameters: the
-- plate read and the plates found are both named plate.)
CREATE TYPE payext.plate_suggestion AS (plate text, stay bigint, entered_at timestamptz,
                                        distance integer);
CREATE FUNCTION payext.suggest_plates(lot bigint, plate text)
RETURNS SETOF payext.plate_suggestion
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  seen text;
BEGIN
  IF lot IS NULL OR plate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN lot IS NULL THEN 'lot' ELSE 'plate' END
      USING ERRCODE = 'PY001';
  END IF;
  seen := payext.normalize_plate(plate);
  -- Another operator's open stays are not a merchant role's to read.
  IF payext.caller_has_capability('app') OR payext.caller_has_capability('admin') THEN
    IF NOT EXISTS (SELECT 1 FROM payext.parking_lot l WHERE l.id = suggest_plates.lot) THEN
      RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
    END IF;
  ELSE
    PERFORM payext.require_lot_operator(lot);
  END IF;
  RETURN QUERY
    SELECT s.plate, s.id, s.entered_at, payext.plate_distance(s.plate, seen)
      FROM payext.parking_stay s
     WHERE s.state = 'open' AND payext.plate_match_keys(s.plate) && payext.plate_match_keys(seen)
       AND s.lot = suggest_plates.lot AND payext.plate_distance(s.plate, seen) <= 1
     ORDER BY 4, s.entered_at DESC, s.id;
END
$$;
COMMENT ON FUNCTION payext.suggest_plates(bigint, text) IS
  'open stays at the lot whose plate is within one edit of the one read (0/O, 8/B... as none), nearest first';

REVOKE ALL ON FUNCTION payext.plate_match_keys(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.plate_distance(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.parking_next_id(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.require_lot_operator(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.block_plate(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.unblock_plate(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.plate_status(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.settle_arrears(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.suggest_plates(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON TABLE payext.parking_validation FROM PUBLIC;
REVOKE ALL ON SEQUENCE payext.parking_validation_id_seq FROM PUBLIC;
REVOKE ALL ON TABLE payext.parking_pass FROM PUBLIC;
REVOKE ALL ON TABLE payext.parking_block FROM PUBLIC;
REVOKE ALL ON SEQUENCE payext.parking_pass_id_seq FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('app', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.settle_arrears(text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.block_plate(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.unblock_plate(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.block_plate(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unblock_plate(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.settle_arrears(text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  ('admin', 'SELECT', 'TABLE payext.parking_pass'),
  ('admin', 'SELECT', 'TABLE payext.parking_block'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text)'),
  ('admin', 'SELECT', 'TABLE payext.parking_validation');

-- Validations' payments are parking payments of their own kind.
CREATE OR REPLACE FUNCTION payext.verify_parking()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH paid AS (
    SELECT p.stay, sum(p.amount::numeric) AS total FROM payext.parking_payment p GROUP BY p.stay
  ), bad_payment AS (
    SELECT p.transfer_id FROM payext.parking_payment p
      JOIN payext.parking_stay s ON s.id = p.stay
      JOIN payext.parking_lot l ON l.id = s.lot
      LEFT JOIN payext.transfer t ON t.id = p.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'parking' OR t.debit_account <> p.wallet
        OR t.credit_account <> l.operator OR t.amount <> p.amount
  ), bad_stay AS (
    SELECT s.id FROM payext.parking_stay s LEFT JOIN paid ON paid.stay = s.id
     WHERE s.paid::numeric <> coalesce(paid.total, 0)
        -- an exited stay is never paid more than its fee
        OR (s.fee IS NOT NULL AND s.paid > s.fee)
  ), orphan_transfer AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.kind = 'parking'
       AND NOT EXISTS (SELECT 1 FROM payext.parking_payment p WHERE p.transfer_id = t.id)
    UNION ALL
    -- a validation's discount is its shop's payment of the stay
    SELECT v.id FROM payext.parking_validation v
      LEFT JOIN payext.parking_payment p ON p.transfer_id = v.transfer_id
     WHERE (v.discount > 0) <> (p.transfer_id IS NOT NULL)
        OR (p.transfer_id IS NOT NULL
            AND (p.stay <> v.stay OR p.wallet <> v.merchant OR p.amount <> v.discount
                 OR p.how <> 'validation'))
  )
  SELECT 'parking_matches_journal',
         NOT EXISTS (SELECT 1 FROM bad_payment) AND NOT EXISTS (SELECT 1 FROM bad_stay)
           AND NOT EXISTS (SELECT 1 FROM orphan_transfer),
         CASE WHEN EXISTS (SELECT 1 FROM bad_payment) OR EXISTS (SELECT 1 FROM bad_stay)
                   OR EXISTS (SELECT 1 FROM orphan_transfer)
              THEN format('%s parking payment(s), %s stay(s) and %s parking transfer(s) disagree',
                          (SELECT count(*) FROM bad_payment), (SELECT count(*) FROM bad_stay),
                          (SELECT count(*) FROM orphan_transfer))
              ELSE format('%s parking payments agree with the journal and their stays',
                          (SELECT count(*) FROM payext.parking_payment))
         END
$$;
COMMENT ON FUNCTION payext.verify_parking() IS
  'parking payments against the journal and their stays; part of verify_ledger()';


---------------------------------------------------------------------------
-- Sagas: money between partitions, with a clearing account per currency
---------------------------------------------------------------------------

-- A clearing account stores no balance, like a system account: its
-- balance is the journal's sum, negative on the partition that owes.
ALTER TABLE payext.account
  DROP CONSTRAINT account_kind_check,
  ADD CONSTRAINT account_kind_check CHECK (kind IN ('wallet', 'merchant', 'system', 'clearing')),
  DROP CONSTRAINT account_balance_stored,
  ADD CONSTRAINT account_balance_stored CHECK ((kind IN ('system', 'clearing')) = (balance IS NULL));
CREATE UNIQUE INDEX account_clearing_key ON payext.account (currency)
  WHERE kind = 'clearing';
COMMENT ON TABLE payext.account IS
  'wallets (per owner and currency), merchant accounts (per public-service id and currency), one system account per currency, and one clearing account per currency for sagas between partitions';
ALTER TABLE payext.parking_payment
  DROP CONSTRAINT parking_payment_how_check,
  ADD CONSTRAINT parking_payment_how_check CHECK (how IN ('manual', 'auto', 'saga', 'validation'));
COMMENT ON TABLE payext.parking_payment IS 'payments of stays from wallets, by pay_parking(), automatically at exit, or by a saga from a wallet on another partition';
COMMENT ON COLUMN payext.account.balance IS
  'in the minor unit; with a merchant''s payext.merchant_credit buckets (payext.balance() adds them), always equals credits minus debits in payext.transfer; NULL for system and clearing accounts, whose balance is the journal''s sum';

CREATE OR REPLACE FUNCTION payext.verify_journal()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH movement AS (
    SELECT t.debit_account AS account, -t.amount::numeric AS delta FROM payext.transfer t
    UNION ALL
    SELECT t.credit_account, t.amount::numeric FROM payext.transfer t
  ), journal AS (
    SELECT m.account, sum(m.delta) AS balance FROM movement m GROUP BY m.account
  ), held AS (
    -- What each account holds: its row, plus a merchant's buckets.
    SELECT a.id, a.kind, a.currency,
           a.balance::numeric + coalesce(c.amount, 0) AS balance
      FROM payext.account a
      LEFT JOIN (SELECT mc.account, sum(mc.amount) AS amount
                   FROM payext.merchant_credit mc GROUP BY mc.account) c ON c.account = a.id
  ), mismatch AS (
    SELECT a.id, a.balance, coalesce(j.balance, 0) AS journal_balance
      FROM held a LEFT JOIN journal j ON j.account = a.id
     WHERE a.kind NOT IN ('system', 'clearing')
       AND a.balance IS DISTINCT FROM coalesce(j.balance, 0)
  ), orphan AS (
    SELECT j.account FROM journal j
     WHERE NOT EXISTS (SELECT 1 FROM payext.account a WHERE a.id = j.account)
  ), unbalanced AS (
    -- Stored balances of wallets and merchants against the journal sums
    -- of the system and clearing accounts: the sides of every currency.
    SELECT a.currency,
           sum(CASE WHEN a.kind IN ('system', 'clearing') THEN coalesce(j.balance, 0)
                    ELSE a.balance END) AS total
      FROM held a LEFT JOIN journal j ON j.account = a.id
     GROUP BY a.currency
    HAVING sum(CASE WHEN a.kind IN ('system', 'clearing') THEN coalesce(j.balance, 0)
                    ELSE a.balance END) <> 0
  ), negative AS (
    -- The whole balance, and each part on its own: positive buckets must
    -- not hide a negative row.
    SELECT a.id, a.balance FROM held a
     WHERE a.kind NOT IN ('system', 'clearing') AND a.balance < 0
    UNION
    SELECT a.id, a.balance::numeric FROM payext.account a
     WHERE a.kind NOT IN ('system', 'clearing') AND a.balance < 0
    UNION
    SELECT c.account, c.amount::numeric FROM payext.merchant_credit c WHERE c.amount < 0
  ), stray AS (
    -- Buckets belong to active merchants only (freezing and closing fold
    -- them), and a closed account holds nothing.
    SELECT c.account,
           CASE WHEN a.kind <> 'merchant' THEN 'a credit bucket on a ' || a.kind
                ELSE 'a credit bucket on a ' || a.status || ' merchant' END AS what
      FROM payext.merchant_credit c
      JOIN payext.account a ON a.id = c.account
     WHERE a.kind <> 'merchant' OR a.status <> 'active'
    UNION ALL
    SELECT a.id, 'a closed account holding ' || a.balance
      FROM payext.account a WHERE a.status = 'closed' AND a.balance <> 0
  ), altered AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.checksum <> payext.transfer_checksum(
             t.id, t.debit_account, t.credit_account, t.amount, t.currency,
             t.kind, t.idem_scope, t.reference, t.created_at)
        OR EXISTS (SELECT 1 FROM payext.account a
                    WHERE a.id = ANY (ARRAY[t.debit_account, t.credit_account])
                      AND a.currency <> t.currency)
  )
  SELECT 'balances_match_journal',
         NOT EXISTS (SELECT 1 FROM mismatch) AND NOT EXISTS (SELECT 1 FROM orphan)
           AND NOT EXISTS (SELECT 1 FROM stray),
         CASE WHEN EXISTS (SELECT 1 FROM stray)
              THEN (SELECT count(*) FROM stray)::text
                   || ' holding(s) where no money may be, e.g. '
                   || (SELECT string_agg(format('account %s: %s', x.account, x.what), '; ')
                         FROM (SELECT * FROM stray ORDER BY account, what LIMIT 3) x)
              WHEN EXISTS (SELECT 1 FROM orphan)
              THEN (SELECT count(*) FROM orphan)::text
                   || ' account(s) in the journal do not exist, e.g. '
                   || (SELECT string_agg(o.account::text, ', ')
                         FROM (SELECT account FROM orphan ORDER BY account LIMIT 3) o)
              WHEN EXISTS (SELECT 1 FROM mismatch)
              THEN (SELECT count(*) FROM mismatch)::text
                   || ' account(s) differ from the journal, e.g. '
                   || (SELECT string_agg(format('account %s holds %s, journal says %s',
                                                m.id, m.balance, m.journal_balance), '; ')
                         FROM (SELECT * FROM mismatch ORDER BY id LIMIT 3) m)
              ELSE (SELECT count(*) FROM payext.account)::text || ' accounts agree with the journal'
         END
  UNION ALL
  SELECT 'money_conserved',
         NOT EXISTS (SELECT 1 FROM unbalanced),
         coalesce((SELECT string_agg(format('%s sums to %s', u.currency, u.total), '; ' ORDER BY u.currency)
                     FROM unbalanced u),
                  'every currency sums to zero')
  UNION ALL
  SELECT 'no_negative_balances',
         NOT EXISTS (SELECT 1 FROM negative),
         coalesce((SELECT string_agg(format('account %s holds %s', n.id, n.balance), '; ' ORDER BY n.id)
                     FROM (SELECT * FROM negative ORDER BY id LIMIT 3) n),
                  'no wallet or merchant is below zero')
  UNION ALL
  SELECT 'journal_intact',
         NOT EXISTS (SELECT 1 FROM altered),
         CASE WHEN EXISTS (SELECT 1 FROM altered)
              THEN (SELECT count(*) FROM altered)::text || ' transfer(s) altered, e.g. '
                   || (SELECT string_agg(x.id::text, ', ') FROM (SELECT id FROM altered ORDER BY id LIMIT 3) x)
              ELSE (SELECT count(*) FROM payext.transfer)::text || ' transfers match their checksums'
         END
$$;
COMMENT ON FUNCTION payext.verify_journal() IS
  'the ledger''s own checks; part of verify_ledger()';

---------------------------------------------------------------------------
-- The outbox and the inbox
---------------------------------------------------------------------------

CREATE TABLE payext.saga (
  id              uuid PRIMARY KEY,
  -- 'transfer': an admin's correction; 'cover': a merchant's money moved
  -- to its own account on another partition (public_service_id), where a
  -- refund needs it; 'parking': a wallet's owner (payer) paying a stay on
  -- another partition to its operator (public_service_id)
  purpose         text NOT NULL CHECK (purpose IN ('transfer', 'cover', 'parking')),
  public_service_id text,
  stay            bigint,
  payer           text,
  account         bigint NOT NULL REFERENCES payext.account (id),
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  to_partition    integer NOT NULL CHECK (to_partition >= 0 AND to_partition <= 99),
  to_account      bigint NOT NULL,
  out_transfer    bigint NOT NULL,
  state           text NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'done', 'returned')),
  -- the second leg's transfer, on to_partition, once the money arrived
  in_transfer     bigint,
  -- the first leg undone, here, once the second was refused, and why
  back_transfer   bigint,
  refused_sqlstate text,
  refused_message text,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  CONSTRAINT saga_done_has_in CHECK ((state = 'done') = (in_transfer IS NOT NULL)),
  CONSTRAINT saga_returned_has_back
    CHECK ((state = 'returned') = (back_transfer IS NOT NULL AND refused_sqlstate IS NOT NULL)),
  CONSTRAINT saga_finished CHECK ((state = 'open') = (finished_at IS NULL)),
  CONSTRAINT saga_names_merchant
    CHECK ((purpose IN ('cover', 'parking')) = (public_service_id IS NOT NULL)),
  CONSTRAINT saga_parking_names_stay
    CHECK ((purpose = 'parking') = (stay IS NOT NULL AND payer IS NOT NULL))
);
CREATE INDEX saga_open_idx ON payext.saga (created_at) WHERE state = 'open';
COMMENT ON TABLE payext.saga IS
  'sagas whose money left this partition (the outbox): open until it arrived (done) or came back (returned)';
SELECT pg_catalog.pg_extension_config_dump('payext.saga', '');

-- A saga's id is its sender's: two partitions may send one id (a
-- reference reused, or chosen to collide), and each is its own saga here.
CREATE TABLE payext.saga_inbox (
  saga            uuid NOT NULL,
  from_partition  integer NOT NULL CHECK (from_partition >= 0 AND from_partition <= 99),
  account         bigint NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  -- a cover's or parking payment's merchant: only its account receives it
  public_service_id text,
  -- a parking payment's stay, and whose wallet paid it
  stay            bigint,
  payer           text,
  outcome         text NOT NULL CHECK (outcome IN ('received', 'refused')),
  transfer        bigint,
  refused_sqlstate text,
  refused_message text,
  decided_at      timestamptz NOT NULL,
  CONSTRAINT saga_inbox_outcome
    CHECK ((outcome = 'received') = (transfer IS NOT NULL AND refused_sqlstate IS NULL)),
  PRIMARY KEY (saga, from_partition)
);
COMMENT ON TABLE payext.saga_inbox IS
  'sagas whose money came to this partition: received, or refused for good; decided once';
SELECT pg_catalog.pg_extension_config_dump('payext.saga_inbox', '');

-- One leg: between a wallet or merchant of this partition and the
-- partition's clearing account (ledger.c).  Granted to nobody.
CREATE FUNCTION payext.clearing_transfer(account bigint, amount bigint, kind text, saga uuid,
                                         scope bigint DEFAULT 0)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_clearing_transfer'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.clearing_transfer(bigint, bigint, text, uuid, bigint) IS
  'one leg of a saga (clearing_out, clearing_in, clearing_back; a received leg''s reference within its sender''s partition, scope); only the saga functions call it';

-- A parking saga's second leg (src/parking.c): the clearing account pays
-- the stay's operator, after pay_parking's checks.  Granted to nobody.
CREATE FUNCTION payext.parking_receive(stay bigint, amount bigint, payer text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_parking_receive'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.parking_receive(bigint, bigint, text) IS
  'a parking saga''s second leg: this partition''s clearing account pays the stay; only saga_receive calls it';

-- Which merchant account a stay pays, its currency, and what it has been
-- paid so far: what a router needs to start a parking saga from a wallet
-- elsewhere (and to name it, so that a retry resumes it).
CREATE FUNCTION payext.stay_payee(stay bigint,
    OUT operator bigint, OUT public_service_id text, OUT currency text, OUT paid bigint)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  SELECT l.operator, a.public_service_id, l.currency, s.paid
    INTO operator, public_service_id, currency, paid
    FROM payext.parking_stay s
    JOIN payext.parking_lot l ON l.id = s.lot
    JOIN payext.account a ON a.id = l.operator
   WHERE s.id = stay_payee.stay;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'parking stay % does not exist', stay USING ERRCODE = 'PY408';
  END IF;
END
$$;
COMMENT ON FUNCTION payext.stay_payee(bigint) IS
  'the operator account a parking stay pays, its public-service id, currency, and what it has been paid';

-- After an exit on this partition: the stay it closed, when something is
-- due within payext.max_auto_pay and the plate's owner asked for
-- automatic payment but has no wallet here in the lot's currency (with
-- one here, the exit has paid it already, or found too little): what a
-- router needs to pay it from the owner's wallet on another partition.
CREATE FUNCTION payext.auto_pay_elsewhere(lot bigint, plate text, at timestamptz,
    OUT stay bigint, OUT owner text, OUT amount bigint, OUT currency text,
    OUT operator bigint, OUT public_service_id text, OUT paid bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT s.id, v.owner, s.fee - s.paid, l.currency, l.operator, a.public_service_id, s.paid
    FROM payext.parking_stay s
    JOIN payext.parking_lot l ON l.id = s.lot
    JOIN payext.account a ON a.id = l.operator
    JOIN payext.vehicle v ON v.plate = s.plate AND v.auto_pay
   WHERE s.lot = $1 AND s.plate = payext.normalize_plate($2) AND s.exited_at = $3
     AND s.state = 'exited' AND s.fee > s.paid
     AND coalesce(s.owner_at_entry, '') IN ('', v.owner)
     AND s.fee - s.paid <= pg_catalog.current_setting('payext.max_auto_pay')::bigint
     AND NOT EXISTS (SELECT 1 FROM payext.account w
                      WHERE w.kind = 'wallet' AND w.owner = v.owner AND w.currency = l.currency)
   ORDER BY s.id DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION payext.auto_pay_elsewhere(bigint, text, timestamptz) IS
  'the stay an exit closed, when its automatic payment must come from the owner''s wallet on another partition';

-- A user's wallet in a currency, or NULL: no wallet is opened.
CREATE FUNCTION payext.wallet_of(owner text, currency text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT a.id FROM payext.account a
   WHERE a.kind = 'wallet' AND a.owner = $1 AND a.currency = $2
$$;
COMMENT ON FUNCTION payext.wallet_of(text, text) IS
  'a user''s wallet in a currency, or NULL (opens none)';

-- Arguments present (PY001), and the other side of the saga a partition
-- other than this one, which its account's id names when one is given
-- (PY501).
CREATE FUNCTION payext.check_saga_args(names text[], present boolean[],
                                       other_partition integer, other_account bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  FOR i IN 1 .. array_length(names, 1) LOOP
    IF NOT present[i] THEN
      RAISE EXCEPTION 'argument "%" must not be null', names[i] USING ERRCODE = 'PY001';
    END IF;
  END LOOP;
  IF other_partition < 0 OR other_partition > 99
     OR other_partition = payext.current_partition()
     OR (other_account IS NOT NULL
         AND payext.partition_of(other_account) <> other_partition) THEN
    RAISE EXCEPTION 'partition % is not the other side of a saga from partition %',
      CASE WHEN other_partition BETWEEN 0 AND 9 THEN '0' ELSE '' END || other_partition,
      lpad(payext.current_partition()::text, 2, '0')
      USING ERRCODE = 'PY501',
            DETAIL = CASE WHEN other_account IS NULL THEN 'It is this partition, or out of range.'
                          ELSE format('Account %s carries partition %s.', other_account,
                                      lpad(payext.partition_of(other_account)::text, 2, '0')) END,
            HINT = 'A saga moves money between two different partitions.';
  END IF;
END
$$;

---------------------------------------------------------------------------
-- The legs
---------------------------------------------------------------------------

-- A saga's id: derived from the paying partition, the purpose, the paying
-- account and the caller's key, so that no saga of another account can
-- take an id that a saga of this one will need (the keys a router uses
-- are predictable: a reference, an order).  The router derives it the
-- same way.
CREATE FUNCTION payext.saga_id_of(from_partition integer, purpose text, account bigint, key uuid)
RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT encode(substring(sha256(convert_to(format('payext.saga:%s:%s:%s:%s', $1, $2, $3, $4),
                                            'UTF8')) FROM 1 FOR 16), 'hex')::uuid
$$;
COMMENT ON FUNCTION payext.saga_id_of(integer, text, bigint, uuid) IS
  'a saga''s id, from its paying partition, purpose, paying account and the caller''s key';

-- Leg 1: takes the amount from the account into this partition's clearing
-- account and records the saga under the id derived from the caller's key
-- (saga), atomically.  Again with the same key and arguments it returns
-- the first leg's transfer; with other arguments it is PY107.  Called by
-- saga_send (an admin's transfer), merchant_cover (a merchant's own money)
-- and parking_saga_send (the app), which say who may.
CREATE FUNCTION payext.saga_start(saga uuid, purpose text, account bigint, amount bigint,
                                  to_partition integer, to_account bigint,
                                  public_service_id text DEFAULT NULL, stay bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  sid uuid := payext.saga_id_of(payext.current_partition(), purpose, account, saga);
  s payext.saga;
  t bigint;
BEGIN
  PERFORM payext.check_saga_args(ARRAY['saga', 'account', 'amount', 'to_partition', 'to_account'],
                                 ARRAY[saga IS NOT NULL, account IS NOT NULL, amount IS NOT NULL,
                                       to_partition IS NOT NULL, to_account IS NOT NULL],
                                 to_partition, to_account);
  SELECT * INTO s FROM payext.saga g WHERE g.id = sid;
  IF NOT FOUND THEN
    -- A concurrent send of the same saga waits at the journal's reference
    -- index and then finds this one's transfer (or PY107).
    t := payext.clearing_transfer(account, amount, 'clearing_out', sid);
    INSERT INTO payext.saga (id, purpose, public_service_id, stay, payer, account, amount,
                             currency, to_partition, to_account, out_transfer, created_at)
    SELECT sid, purpose,
           CASE purpose WHEN 'cover' THEN a.public_service_id
                        WHEN 'parking' THEN saga_start.public_service_id END,
           saga_start.stay, CASE WHEN purpose = 'parking' THEN a.owner END,
           account, amount, a.currency, to_partition, to_account, t, now()
      FROM payext.account a WHERE a.id = saga_start.account
    ON CONFLICT (id) DO NOTHING;
    SELECT * INTO STRICT s FROM payext.saga g WHERE g.id = sid;
  END IF;
  IF (s.purpose, s.account, s.amount, s.to_partition, s.to_account, s.stay)
     IS DISTINCT FROM (purpose, account, amount, to_partition, to_account, stay) THEN
    RAISE EXCEPTION 'saga % was already sent with other arguments', sid
      USING ERRCODE = 'PY107',
            DETAIL = CASE WHEN s.account = saga_start.account
                          THEN format('It moves %s to account %s.', s.amount, s.to_account)
                          ELSE 'It moves money of another account.' END,
            HINT = 'A retry must repeat the original arguments; a new transfer needs a new reference.';
  END IF;
  RETURN s.out_transfer;
END
$$;
COMMENT ON FUNCTION payext.saga_start(uuid, text, bigint, bigint, integer, bigint, text, bigint) IS
  'a saga''s first leg, for saga_send and merchant_cover: the account pays the clearing account, and the saga is recorded';

CREATE FUNCTION payext.saga_send(saga uuid, account bigint, amount bigint,
                                 to_partition integer, to_account bigint)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$ SELECT payext.saga_start($1, 'transfer', $2, $3, $4, $5) $$;
COMMENT ON FUNCTION payext.saga_send(uuid, bigint, bigint, integer, bigint) IS
  'a transfer''s first leg to another partition: the account pays this partition''s clearing account, and the saga is recorded (idempotent)';

-- A merchant's money to its own account on another partition, where a
-- refund needs more than is there: the caller must act for the account
-- (42501), which must be a merchant's (PY111), and only an account of the
-- same public-service id will receive it (saga_receive).
CREATE FUNCTION payext.merchant_cover(saga uuid, account bigint, amount bigint,
                                      to_partition integer, to_account bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(account);
  IF NOT EXISTS (SELECT 1 FROM payext.account a
                  WHERE a.id = merchant_cover.account AND a.kind = 'merchant') THEN
    RAISE EXCEPTION 'account % is not a merchant account', account
      USING ERRCODE = 'PY111',
            DETAIL = 'A cover moves a merchant''s money between its own accounts.';
  END IF;
  RETURN payext.saga_start(saga, 'cover', account, amount, to_partition, to_account);
END
$$;
COMMENT ON FUNCTION payext.merchant_cover(uuid, bigint, bigint, integer, bigint) IS
  'a merchant''s money to its own account on another partition (a saga''s first leg), for a refund there';

-- A stay on another partition paid from a wallet here: the wallet pays
-- this partition's clearing account, and the stay's partition (the
-- stay's id names it) pays its operator, the merchant account of
-- public_service_id there, once it has checked the plate is the wallet
-- owner's and the amount is what is due (parking_receive); otherwise the
-- money comes back.  The app's, as pay_parking is.
CREATE FUNCTION payext.parking_saga_send(saga uuid, wallet bigint, amount bigint, stay bigint,
                                         operator bigint, public_service_id text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF stay IS NULL OR operator IS NULL OR public_service_id IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN stay IS NULL THEN 'stay' WHEN operator IS NULL THEN 'operator'
           ELSE 'public_service_id' END USING ERRCODE = 'PY001';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM payext.account a
                  WHERE a.id = parking_saga_send.wallet AND a.kind = 'wallet') THEN
    RAISE EXCEPTION 'account % is not a wallet account', wallet
      USING ERRCODE = 'PY111',
            DETAIL = 'A stay is paid from a wallet of the user the vehicle is bound to.';
  END IF;
  IF payext.partition_of(operator) <> payext.partition_of(stay) THEN
    RAISE EXCEPTION 'operator % is not on the partition of stay %', operator, stay
      USING ERRCODE = 'PY501';
  END IF;
  RETURN payext.saga_start(saga, 'parking', wallet, amount, payext.partition_of(stay), operator,
                           public_service_id, stay);
END
$$;
COMMENT ON FUNCTION payext.parking_saga_send(uuid, bigint, bigint, bigint, bigint, text) IS
  'a parking payment''s first leg, for a stay on another partition: the wallet pays this partition''s clearing account';

-- Leg 2: pays the account from this partition's clearing account, or
-- refuses for good (any of payext's own errors: a closed or frozen account,
-- another currency, an overflow; for a cover, an account that is not the
-- merchant's of public_service_id).  The decision is kept and returned again
-- to every later call; a transient error (a lost lock race, 40001) is
-- raised instead and decides nothing.
CREATE FUNCTION payext.saga_receive(saga uuid, from_partition integer, account bigint,
                                    amount bigint, currency text,
                                    public_service_id text DEFAULT NULL,
                                    stay bigint DEFAULT NULL, payer text DEFAULT NULL)
RETURNS TABLE (outcome text, transfer bigint, refused_sqlstate text, refused_message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  r payext.saga_inbox;
  t bigint;
  st text;
  msg text;
  have text;
BEGIN
  PERFORM payext.check_saga_args(ARRAY['saga', 'from_partition', 'account', 'amount', 'currency'],
                                 ARRAY[saga IS NOT NULL, from_partition IS NOT NULL,
                                       account IS NOT NULL, amount IS NOT NULL,
                                       currency IS NOT NULL],
                                 from_partition, NULL);
  -- One decision per saga: concurrent receives of one saga take turns.
  PERFORM pg_catalog.pg_advisory_xact_lock(
    ('x' || pg_catalog.left(pg_catalog.replace(saga::text, '-', ''), 16))::bit(64)::bigint);
  SELECT * INTO r FROM payext.saga_inbox i
   WHERE i.saga = saga_receive.saga AND i.from_partition = saga_receive.from_partition;
  IF NOT FOUND THEN
    BEGIN
      SELECT a.currency INTO have FROM payext.account a WHERE a.id = saga_receive.account;
      IF have IS DISTINCT FROM currency AND have IS NOT NULL THEN
        RAISE EXCEPTION 'account % holds %, not %', account, have, currency
          USING ERRCODE = 'PY105';
      END IF;
      IF saga_receive.public_service_id IS NOT NULL AND have IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM payext.account a
                          WHERE a.id = saga_receive.account AND a.kind = 'merchant'
                            AND a.public_service_id = saga_receive.public_service_id) THEN
        RAISE EXCEPTION 'account % is not an account of merchant %', account,
          saga_receive.public_service_id
          USING ERRCODE = 'PY111',
                DETAIL = 'A cover or a parking payment goes to its merchant''s account only.';
      END IF;
      IF saga_receive.stay IS NULL THEN
        t := payext.clearing_transfer(account, amount, 'clearing_in', saga, from_partition);
      ELSE
        IF NOT EXISTS (SELECT 1 FROM payext.parking_stay s
                         JOIN payext.parking_lot l ON l.id = s.lot
                        WHERE s.id = saga_receive.stay AND l.operator = saga_receive.account) THEN
          RAISE EXCEPTION 'account % is not the operator of parking stay %', account,
            saga_receive.stay USING ERRCODE = 'PY408';
        END IF;
        t := payext.parking_receive(saga_receive.stay, amount, coalesce(payer, ''));
      END IF;
    EXCEPTION WHEN OTHERS THEN
      IF SQLSTATE NOT LIKE 'PY%' THEN
        RAISE;
      END IF;
      st := SQLSTATE;
      msg := SQLERRM;
    END;
    INSERT INTO payext.saga_inbox
      VALUES (saga, from_partition, account, amount, currency, public_service_id, stay, payer,
              CASE WHEN t IS NULL THEN 'refused' ELSE 'received' END, t, st, msg, now())
    RETURNING * INTO STRICT r;
  END IF;
  IF (r.account, r.amount, r.currency, r.public_service_id, r.stay, r.payer)
     IS DISTINCT FROM (account, amount, currency, public_service_id, stay, payer) THEN
    RAISE EXCEPTION 'saga % was already received with other arguments', saga
      USING ERRCODE = 'PY107',
            DETAIL = format('It came from partition %s.', lpad(r.from_partition::text, 2, '0'));
  END IF;
  RETURN QUERY SELECT r.outcome, r.transfer, r.refused_sqlstate, r.refused_message;
END
$$;
COMMENT ON FUNCTION payext.saga_receive(uuid, integer, bigint, bigint, text, text, bigint, text) IS
  'a saga''s second leg: this partition''s clearing account pays the account, or refuses for good; decided once';

-- The saga's row, locked for its last step; PY506 when it did not start
-- here.
CREATE FUNCTION payext.lock_saga(saga uuid)
RETURNS payext.saga
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
BEGIN
  SELECT * INTO s FROM payext.saga g WHERE g.id = lock_saga.saga FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'saga % did not start on this partition', saga USING ERRCODE = 'PY506';
  END IF;
  RETURN s;
END
$$;
COMMENT ON FUNCTION payext.lock_saga(uuid) IS
  'a saga''s row, locked for saga_finish or saga_return';

-- Step 3 when the money arrived: the saga is done.
CREATE FUNCTION payext.saga_finish(saga uuid, in_transfer bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
BEGIN
  IF saga IS NULL OR in_transfer IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN saga IS NULL THEN 'saga' ELSE 'in_transfer' END USING ERRCODE = 'PY001';
  END IF;
  s := payext.lock_saga(saga);
  IF s.state = 'open' THEN
    UPDATE payext.saga g SET state = 'done', in_transfer = saga_finish.in_transfer,
                             finished_at = now()
     WHERE g.id = saga_finish.saga;
    -- A parking payment is a payment of the payer, whose interactions live
    -- here, on the partition of the payer's hash.
    -- (Best effort: an operator this partition does not know, PY305,
    -- leaves the money delivered and the saga done, without it.)
    IF s.purpose = 'parking' THEN
      BEGIN
        PERFORM payext.record_interaction(s.payer, s.public_service_id, 'payment', s.amount, now());
      EXCEPTION WHEN SQLSTATE 'PY305' THEN
        RAISE WARNING 'payext: the parking payment of saga % is not an interaction: %', saga, SQLERRM;
      END;
    END IF;
    RETURN 'done';
  END IF;
  IF s.state = 'done' AND s.in_transfer = saga_finish.in_transfer THEN
    RETURN 'done';
  END IF;
  RAISE EXCEPTION 'saga % is already %', saga, s.state
    USING ERRCODE = 'PY507',
          DETAIL = CASE WHEN s.state = 'done'
                        THEN format('Its money arrived as transfer %s.', s.in_transfer)
                        ELSE format('Its money came back as transfer %s.', s.back_transfer) END;
END
$$;
COMMENT ON FUNCTION payext.saga_finish(uuid, bigint) IS
  'marks a saga whose money arrived (transfer in_transfer on the other partition) done';

-- Step 3 when the other partition refused: the money comes back.
CREATE FUNCTION payext.saga_return(saga uuid, refused_sqlstate text, refused_message text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
  t bigint;
BEGIN
  IF saga IS NULL OR refused_sqlstate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN saga IS NULL THEN 'saga' ELSE 'refused_sqlstate' END USING ERRCODE = 'PY001';
  END IF;
  s := payext.lock_saga(saga);
  IF s.state = 'returned' THEN
    RETURN s.back_transfer;
  END IF;
  IF s.state = 'done' THEN
    RAISE EXCEPTION 'saga % is already done', saga
      USING ERRCODE = 'PY507',
            DETAIL = format('Its money arrived as transfer %s.', s.in_transfer);
  END IF;
  t := payext.clearing_transfer(s.account, s.amount, 'clearing_back', saga);
  UPDATE payext.saga g
     SET state = 'returned', back_transfer = t, refused_sqlstate = saga_return.refused_sqlstate,
         refused_message = saga_return.refused_message, finished_at = now()
   WHERE g.id = saga_return.saga;
  RETURN t;
END
$$;
COMMENT ON FUNCTION payext.saga_return(uuid, text, text) IS
  'gives a refused saga''s money back to the account it left, and keeps why it was refused';

---------------------------------------------------------------------------
-- Verification
---------------------------------------------------------------------------

-- Each saga's legs against the journal: the outbox's and the inbox's
-- transfers exist as they say, and no clearing leg lacks its saga.  Only
-- where a clearing account exists: a single node never has one.
CREATE FUNCTION payext.verify_sagas()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH leg AS (
    SELECT t.id, t.kind, t.reference,
           CASE WHEN t.kind = 'clearing_out' THEN t.debit_account ELSE t.credit_account END AS account,
           t.amount
      FROM payext.transfer t
     WHERE t.kind IN ('clearing_out', 'clearing_in', 'clearing_back')
        OR (t.kind = 'parking'
            AND t.debit_account IN (SELECT a.id FROM payext.account a WHERE a.kind = 'clearing'))
  ), expected AS (
    SELECT s.id::text AS saga, 'clearing_out' AS kind, s.out_transfer AS id, s.account, s.amount
      FROM payext.saga s
    UNION ALL
    SELECT s.id::text, 'clearing_back', s.back_transfer, s.account, s.amount
      FROM payext.saga s WHERE s.back_transfer IS NOT NULL
    UNION ALL
    -- a parking payment's second leg is the stay's own payment
    SELECT i.saga::text, CASE WHEN i.stay IS NULL THEN 'clearing_in' ELSE 'parking' END,
           i.transfer, i.account, i.amount
      FROM payext.saga_inbox i WHERE i.transfer IS NOT NULL
  ), wrong AS (
    SELECT coalesce(e.saga, l.reference) AS saga,
           CASE WHEN l.id IS NULL THEN 'its ' || e.kind || ' leg is not in the journal'
                WHEN e.id IS NULL THEN 'a ' || l.kind || ' leg (transfer ' || l.id || ') has no saga'
                ELSE 'its ' || e.kind || ' leg differs from the journal' END AS what
      FROM expected e
      FULL JOIN leg l ON l.id = e.id
     WHERE l.id IS NULL OR e.id IS NULL
        OR (l.kind, l.account, l.amount) IS DISTINCT FROM (e.kind, e.account, e.amount)
        OR (l.kind <> 'parking' AND l.reference IS DISTINCT FROM e.saga)
  )
  SELECT 'sagas_match_journal',
         NOT EXISTS (SELECT 1 FROM wrong),
         coalesce((SELECT (SELECT count(*) FROM wrong)::text || ' saga leg(s) wrong, e.g. '
                          || string_agg(format('saga %s: %s', w.saga, w.what), '; ')
                     FROM (SELECT * FROM wrong ORDER BY saga, what LIMIT 3) w
                    HAVING count(*) > 0),
                  format('%s saga(s) sent (%s open), %s received here, all in the journal',
                         (SELECT count(*) FROM payext.saga),
                         (SELECT count(*) FROM payext.saga WHERE state = 'open'),
                         (SELECT count(*) FROM payext.saga_inbox)))
   WHERE EXISTS (SELECT 1 FROM payext.account a WHERE a.kind = 'clearing')
      OR EXISTS (SELECT 1 FROM payext.saga) OR EXISTS (SELECT 1 FROM payext.saga_inbox)
$$;
COMMENT ON FUNCTION payext.verify_sagas() IS
  'checks every saga''s legs against the journal (a row only where sagas ever ran); part of verify_ledger()';

CREATE OR REPLACE FUNCTION payext.verify_ledger()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT * FROM payext.verify_journal()
  UNION ALL
  SELECT * FROM payext.verify_payments()
  UNION ALL
  SELECT * FROM payext.verify_holds()
  UNION ALL
  SELECT * FROM payext.verify_parking()
  UNION ALL
  SELECT * FROM payext.verify_sagas()
  UNION ALL
  SELECT * FROM payext.verify_checkpoints()
$$;
COMMENT ON FUNCTION payext.verify_ledger() IS
  'recomputes the ledger from the journal; one row per check, failures as rows';

REVOKE ALL ON FUNCTION payext.clearing_transfer(bigint, bigint, text, uuid, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.parking_receive(bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.stay_payee(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.auto_pay_elsewhere(bigint, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.wallet_of(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.check_saga_args(text[], boolean[], integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_id_of(integer, text, bigint, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_start(uuid, text, bigint, bigint, integer, bigint, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_send(uuid, bigint, bigint, integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.merchant_cover(uuid, bigint, bigint, integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.parking_saga_send(uuid, bigint, bigint, bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_receive(uuid, integer, bigint, bigint, text, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.lock_saga(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_finish(uuid, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.saga_return(uuid, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.verify_sagas() FROM PUBLIC;
REVOKE ALL ON TABLE payext.saga FROM PUBLIC;
REVOKE ALL ON TABLE payext.saga_inbox FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('app', 'EXECUTE', 'FUNCTION payext.parking_saga_send(uuid, bigint, bigint, bigint, bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.stay_payee(bigint)'),
  ('app', 'EXECUTE', 'FUNCTION payext.auto_pay_elsewhere(bigint, text, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.wallet_of(text, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_cover(uuid, bigint, bigint, integer, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_send(uuid, bigint, bigint, integer, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_receive(uuid, integer, bigint, bigint, text, text, bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_finish(uuid, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_return(uuid, text, text)'),
  ('admin', 'SELECT', 'TABLE payext.saga'),
  ('admin', 'SELECT', 'TABLE payext.saga_inbox'),
  ('admin', 'SELECT', 'TABLE payext.vehicle'),
  ('admin', 'SELECT', 'TABLE payext.vehicle_slot');

---------------------------------------------------------------------------
-- Vehicle slots: payext.max_vehicles across partitions
---------------------------------------------------------------------------

-- Behind a router a plate's binding lives on the plate's partition, which
-- counts only the plates bound there.  The owner's partition keeps one
-- slot per plate the owner has bound anywhere, and refuses a slot past
-- payext.max_vehicles: the router reserves the slot before it binds, and
-- releases it when the binding is refused or undone.  A single node never
-- uses them.
CREATE TABLE payext.vehicle_slot (
  owner        text NOT NULL,
  plate        text NOT NULL,          -- normalised
  reserved_at  timestamptz NOT NULL,
  PRIMARY KEY (owner, plate)
);
COMMENT ON TABLE payext.vehicle_slot IS
  'behind a router: the plates an owner of this partition has bound on any partition, at most payext.max_vehicles';
SELECT pg_catalog.pg_extension_config_dump('payext.vehicle_slot', '');

-- One row per owner with slots: its upsert serialises one owner's
-- reservations, so that the limit holds under any concurrency.
CREATE TABLE payext.vehicle_slot_owner (
  owner  text PRIMARY KEY,
  slots  integer NOT NULL CHECK (slots >= 0)
);
SELECT pg_catalog.pg_extension_config_dump('payext.vehicle_slot_owner', '');

-- Reserves the owner's slot for the plate (again: nothing more); PY403
-- past payext.max_vehicles.  Returns the slots the owner holds.
CREATE FUNCTION payext.reserve_vehicle_slot(owner text, plate text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text := payext.normalize_plate(plate);
  n integer;
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  INSERT INTO payext.vehicle_slot VALUES (reserve_vehicle_slot.owner, p, now()) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT o.slots INTO n FROM payext.vehicle_slot_owner o WHERE o.owner = reserve_vehicle_slot.owner;
    RETURN n;
  END IF;
  INSERT INTO payext.vehicle_slot_owner AS o VALUES (reserve_vehicle_slot.owner, 1)
    ON CONFLICT ON CONSTRAINT vehicle_slot_owner_pkey DO UPDATE SET slots = o.slots + 1
    RETURNING o.slots INTO n;
  IF n > pg_catalog.current_setting('payext.max_vehicles')::integer THEN
    RAISE EXCEPTION 'user "%" may bind at most % vehicles', owner,
      pg_catalog.current_setting('payext.max_vehicles')
      USING ERRCODE = 'PY403',
            DETAIL = 'The limit is set by payext.max_vehicles, counted over every partition.',
            HINT = 'Unbind a vehicle first.';
  END IF;
  RETURN n;
END
$$;
COMMENT ON FUNCTION payext.reserve_vehicle_slot(text, text) IS
  'behind a router: reserves one of the owner''s payext.max_vehicles slots for a plate on any partition';

CREATE FUNCTION payext.release_vehicle_slot(owner text, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  DELETE FROM payext.vehicle_slot s
   WHERE s.owner = release_vehicle_slot.owner
     AND s.plate = payext.normalize_plate(release_vehicle_slot.plate);
  IF FOUND THEN
    UPDATE payext.vehicle_slot_owner o SET slots = o.slots - 1
     WHERE o.owner = release_vehicle_slot.owner;
  END IF;
END
$$;
COMMENT ON FUNCTION payext.release_vehicle_slot(text, text) IS
  'behind a router: gives an owner''s slot for a plate back (none: nothing)';

REVOKE ALL ON FUNCTION payext.reserve_vehicle_slot(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION payext.release_vehicle_slot(text, text) FROM PUBLIC;
REVOKE ALL ON TABLE payext.vehicle_slot FROM PUBLIC;
REVOKE ALL ON TABLE payext.vehicle_slot_owner FROM PUBLIC;
INSERT INTO payext.capability (capability, privilege, object) VALUES
  ('app', 'EXECUTE', 'FUNCTION payext.reserve_vehicle_slot(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.release_vehicle_slot(text, text)');
