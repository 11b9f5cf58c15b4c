-- payext: roles.  Four capabilities granted to roles of the DBA's choosing;
-- merchants act through procedures and read their own rows through
-- functions.  Last, because it sets the privileges of every object above.

---------------------------------------------------------------------------
-- Who is calling
---------------------------------------------------------------------------

-- The role the caller is (after SET ROLE), even inside SECURITY DEFINER.
CREATE FUNCTION payext.calling_role()
RETURNS oid
AS 'MODULE_PATHNAME', 'payext_calling_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.calling_role() IS
  'the role the caller acts as (SET ROLE applies; SECURITY DEFINER does not)';

---------------------------------------------------------------------------
-- Capabilities
---------------------------------------------------------------------------

CREATE TABLE payext.capability (
  capability text NOT NULL CHECK (capability IN ('app', 'merchant', 'analyst', 'admin')),
  privilege  text NOT NULL CHECK (privilege IN ('EXECUTE', 'SELECT')),
  object     text NOT NULL,       -- as GRANT names it: FUNCTION payext.f(args), TABLE payext.t
  PRIMARY KEY (capability, object)
);
COMMENT ON TABLE payext.capability IS
  'what each capability may use; grant_capability() grants exactly these';

INSERT INTO payext.capability (capability, privilege, object) VALUES
  -- app: the social app's backend, acting for its users
  ('app', 'EXECUTE', 'FUNCTION payext.open_wallet(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.balance(bigint)'),
  ('app', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('app', 'EXECUTE', 'FUNCTION payext.top_up(bigint, bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.withdraw(bigint, bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.request_payment(bigint, bigint, interval)'),
  ('app', 'EXECUTE', 'FUNCTION payext.cancel_payment_code(text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.record_interaction(text, text, text, bigint, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.opt_out(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.opt_in(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.bind_vehicle(text, text, boolean)'),
  ('app', 'EXECUTE', 'FUNCTION payext.unbind_vehicle(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.vehicle_entered(bigint, text, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.vehicle_exited(bigint, text, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.parking_service_info(text, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.pay_parking(bigint, bigint, bigint)'),
  ('app', 'EXECUTE', 'FUNCTION payext.parking_fee(bigint, timestamptz, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.settle_arrears(text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  -- behind a router: paying a stay from a wallet of another partition
  ('app', 'EXECUTE', 'FUNCTION payext.parking_saga_send(uuid, bigint, bigint, bigint, bigint, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.stay_payee(bigint)'),
  ('app', 'EXECUTE', 'FUNCTION payext.auto_pay_elsewhere(bigint, text, timestamptz)'),
  ('app', 'EXECUTE', 'FUNCTION payext.wallet_of(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.reserve_vehicle_slot(text, text)'),
  ('app', 'EXECUTE', 'FUNCTION payext.release_vehicle_slot(text, text)'),
  -- merchant: a till and a back office, for mapped merchant accounts only
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_charge(bigint, text, bigint, text, bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_many(bigint, text[], bigint[], text[])'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_refund(bigint, text, bigint, text, bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_settle(bigint, text, bigint, bigint, bigint, bigint, bigint, bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.payment_status(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.reverse_charge(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.event_channel(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.balance(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_transfers(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_interactions(bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_associations(bigint)'),
  -- holds: reserve, take, release; and the merchant's own holds
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_authorize(bigint, text, bigint, text, interval, bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_capture(bigint, bigint, bigint, text, boolean, bigint)'),
  ('merchant', 'EXECUTE', 'PROCEDURE payext.merchant_void(bigint, bigint, bigint)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_holds(bigint)'),
  -- parking operators: passes, blocked plates, the gate's questions
  ('merchant', 'EXECUTE', 'FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.block_plate(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.unblock_plate(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_authorize_call(bigint, text, bigint, text, interval)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_capture_call(bigint, bigint, bigint, text, boolean)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_void_call(bigint, bigint)'),
  -- behind a router: the procedures as functions, and the references it
  -- claims for the merchant's orders and refunds
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_call(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_refund_call(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_settle_call(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_charge_claimed(bigint, text, bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.require_claim_here(bigint, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.claim_reference(bigint, text, text, integer)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.claimed_partition(bigint, text, text)'),
  ('merchant', 'EXECUTE', 'FUNCTION payext.claim_references(bigint, text, text[], integer[])'),
  -- and the merchant's money moved to its account where a refund needs it
  ('merchant', 'EXECUTE', 'FUNCTION payext.merchant_cover(uuid, bigint, bigint, integer, bigint)'),
  -- analyst: aggregates and pseudonyms, never a social-app id
  ('analyst', 'SELECT', 'TABLE payext.merchant_summary'),
  ('analyst', 'SELECT', 'TABLE payext.merchant_daily'),
  ('analyst', 'SELECT', 'TABLE payext.analyst_consumer_merchant'),
  ('analyst', 'EXECUTE', 'FUNCTION payext.consumer_merchant_pseudonymous()'),
  -- admin: keys, accounts, rules, lots, verification
  ('admin', 'EXECUTE', 'FUNCTION payext.rotate_signing_key()'),
  ('admin', 'EXECUTE', 'FUNCTION payext.open_merchant(text, text, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.freeze(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unfreeze(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.close_account(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.transfer(bigint, bigint, bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.balance(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.available_balance(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.authorize(bigint, text, bigint, text, interval)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.capture_hold(bigint, bigint, bigint, text, boolean)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.void_hold(bigint, bigint)'),
  ('admin', 'SELECT', 'TABLE payext.hold'),
  ('admin', 'SELECT', 'TABLE payext.hold_entry'),
  ('admin', 'SELECT', 'TABLE payext.hold_capture'),
  ('admin', 'EXECUTE', 'FUNCTION payext.verify_ledger()'),
  ('admin', 'EXECUTE', 'FUNCTION payext.verify_placement(integer)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.set_association_rule(text, integer, interval, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.drop_association_rule(text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.evaluate_associations(text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.associate(text, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.block_plate(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unblock_plate(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.plate_status(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.settle_arrears(text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.suggest_plates(bigint, text)'),
  ('admin', 'SELECT', 'TABLE payext.parking_pass'),
  ('admin', 'SELECT', 'TABLE payext.parking_block'),
  ('admin', 'EXECUTE', 'FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text)'),
  ('admin', 'SELECT', 'TABLE payext.parking_validation'),
  ('admin', 'EXECUTE', 'FUNCTION payext.parking_fee(bigint, timestamptz, timestamptz)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.map_merchant_role(regrole, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unmap_merchant_role(regrole, bigint)'),
  ('admin', 'SELECT', 'TABLE payext.account'),
  ('admin', 'SELECT', 'TABLE payext.transfer'),
  ('admin', 'SELECT', 'TABLE payext.payment'),
  ('admin', 'SELECT', 'TABLE payext.refund'),
  ('admin', 'EXECUTE', 'FUNCTION payext.reverse_charge(bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.event_channel(bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.merchant_statement(bigint, timestamptz, timestamptz, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.balance_at(bigint, timestamptz)'),
  ('admin', 'SELECT', 'TABLE payext.balance_checkpoint'),
  ('admin', 'SELECT', 'TABLE payext.event_subscription'),
  ('admin', 'SELECT', 'TABLE payext.order_reversal'),
  ('admin', 'SELECT', 'TABLE payext.parking_lot'),
  ('admin', 'SELECT', 'TABLE payext.parking_stay'),
  ('admin', 'SELECT', 'TABLE payext.parking_anomaly'),
  ('admin', 'SELECT', 'TABLE payext.association_rule'),
  -- a merchant's whole balance is its row's plus its credit buckets
  ('admin', 'SELECT', 'TABLE payext.merchant_credit'),
  -- merchants that guessed payment codes
  ('admin', 'SELECT', 'TABLE payext.code_failure'),
  ('admin', 'EXECUTE', 'FUNCTION payext.code_failures()'),
  ('admin', 'EXECUTE', 'FUNCTION payext.unblock_charging(bigint)'),
  -- money between partitions: a router's transfers and its saga worker
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_send(uuid, bigint, bigint, integer, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_receive(uuid, integer, bigint, bigint, text, text, bigint, text)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_finish(uuid, bigint)'),
  ('admin', 'EXECUTE', 'FUNCTION payext.saga_return(uuid, text, text)'),
  ('admin', 'SELECT', 'TABLE payext.saga'),
  ('admin', 'SELECT', 'TABLE payext.saga_inbox'),
  -- the router checks every binding has its owner's slot
  ('admin', 'SELECT', 'TABLE payext.vehicle'),
  ('admin', 'SELECT', 'TABLE payext.vehicle_slot');

-- Which role holds which capability (for may_act_for and for revoking).
CREATE TABLE payext.capability_grant (
  grantee    regrole NOT NULL,
  capability text NOT NULL,
  granted_at timestamptz NOT NULL,
  PRIMARY KEY (grantee, capability)
);

-- Merchant roles and the merchant accounts they act for.
CREATE TABLE payext.merchant_role (
  grantee    regrole NOT NULL,
  merchant   bigint NOT NULL REFERENCES payext.account (id),
  mapped_at  timestamptz NOT NULL,
  PRIMARY KEY (grantee, merchant)
);
-- A merchant's mappings, for the merchant check of each of its tills'
-- calls (the primary key leads with the grantee).
CREATE INDEX merchant_role_merchant_idx ON payext.merchant_role (merchant);
-- Roles are the cluster's, not the database's: a dump names them, and a
-- restore needs them to exist (as pg_dumpall's globals make them).
SELECT pg_catalog.pg_extension_config_dump('payext.capability_grant', '');
SELECT pg_catalog.pg_extension_config_dump('payext.merchant_role', '');

-- Whether a role holds a capability (or is a superuser), and whether it
-- may act for a merchant account: a superuser, an admin, or a role mapped
-- to the account.  Membership counts as privileges do (USAGE): a NOINHERIT
-- member, such as a pooled login, acts for a till only after SET ROLE.
-- C (src/roles.c), as are may_act_for, caller_has_capability and
-- require_merchant: as SQL each call parsed and planned its query, and as
-- PL/pgSQL a till's charge ran four nested functions and three queries,
-- merchant_role read whole, for its merchant check (bench/NOTES.md).
CREATE FUNCTION payext.role_has_capability(role oid, capability text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_role_has_capability'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE FUNCTION payext.role_may_act_for(role oid, merchant bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_role_may_act_for'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE FUNCTION payext.caller_has_capability(capability text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_caller_has_capability'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE FUNCTION payext.may_act_for(merchant bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_may_act_for'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

CREATE FUNCTION payext.acting_accounts()
RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce(array_agg(DISTINCT m.merchant), '{}')
    FROM payext.merchant_role m
   WHERE pg_catalog.pg_has_role(payext.calling_role(), m.grantee, 'USAGE')
$$;

CREATE FUNCTION payext.acting_public_service_ids()
RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce(array_agg(DISTINCT a.public_service_id), '{}')
    FROM payext.merchant_role m JOIN payext.account a ON a.id = m.merchant
   WHERE pg_catalog.pg_has_role(payext.calling_role(), m.grantee, 'USAGE')
$$;

CREATE FUNCTION payext.require_merchant(merchant bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_require_merchant'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;

-- The arguments of grant_capability() and revoke_capability(): both given,
-- and a capability that exists (PY001, PY006).
CREATE FUNCTION payext.check_capability_args(capability text, grantee regrole)
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

CREATE FUNCTION payext.grant_capability(capability text, grantee regrole)
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

CREATE FUNCTION payext.revoke_capability(capability text, grantee regrole)
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
CREATE FUNCTION payext.check_merchant_role_args(grantee regrole, merchant bigint)
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

CREATE FUNCTION payext.map_merchant_role(grantee regrole, merchant bigint)
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

CREATE FUNCTION payext.unmap_merchant_role(grantee regrole, merchant bigint)
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

---------------------------------------------------------------------------
-- Merchants: procedures, and their own rows under row-level security
---------------------------------------------------------------------------

CREATE PROCEDURE payext.merchant_charge(merchant bigint, code text, amount bigint,
                                        order_ref text, INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  transfer_id := payext.charge(merchant, code, amount, order_ref);
END
$$;
COMMENT ON PROCEDURE payext.merchant_charge(bigint, text, bigint, text, bigint) IS
  'a merchant role charges a payment code, for a merchant account it is mapped to';

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

CREATE PROCEDURE payext.merchant_refund(merchant bigint, order_ref text, amount bigint,
                                        refund_ref text, INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(merchant);
  transfer_id := payext.refund(merchant, order_ref, amount, refund_ref);
END
$$;
COMMENT ON PROCEDURE payext.merchant_refund(bigint, text, bigint, text, bigint) IS
  'a merchant role refunds an order of a merchant account it is mapped to';

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

-- Withdraws the account's balance to the merchant's bank under bank_ref
-- (idempotent on it) and summarises the day (UTC) it settles.  The
-- merchant's row is locked first, so that concurrent settlements take
-- turns: each pays out what is there when its turn comes (a later one finds
-- nothing and pays nothing; one under the same bank_ref finds the first's
-- transfer), or raises 40001 under REPEATABLE READ and SERIALIZABLE.
CREATE PROCEDURE payext.merchant_settle(merchant bigint, bank_ref text,
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
COMMENT ON PROCEDURE payext.merchant_settle(bigint, text, bigint, bigint, bigint, bigint, bigint, bigint) IS
  'pays a merchant account''s balance out under bank_ref and summarises today''s charges and refunds';

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


-- What a merchant role reads, for the accounts it acts for: functions, not
-- tables.  Row-level security cannot hide what a plan shows: a merchant's
-- EXPLAIN ANALYZE of the journal counted another merchant's rows in its
-- index scan before the policy filtered them, and the policy's functions
-- ran once per row.  These functions read by the merchant's own indexes and
-- return its rows only; a customer appears as a consumer id, never as a
-- wallet id or balance.
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
ALTER TABLE payext.transfer ENABLE ROW LEVEL SECURITY;
ALTER TABLE payext.interaction ENABLE ROW LEVEL SECURITY;
ALTER TABLE payext.association_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all_transfers ON payext.transfer FOR SELECT
  USING ((SELECT payext.caller_has_capability('admin')));

---------------------------------------------------------------------------
-- Privileges of every object
---------------------------------------------------------------------------

-- Routines are executable by PUBLIC by default; payext grants capabilities
-- explicitly instead (grant_capability()).  Nothing is PUBLIC's but pure
-- helpers and the functions that row-level security policies call as the
-- querying role, which tell a role only about itself.
REVOKE ALL ON ALL ROUTINES IN SCHEMA payext FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA payext FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA payext FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payext.format_amount(bigint, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.currencies() TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.normalize_plate(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.current_partition() TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.partition_of(bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.code_partition(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.owner_hash(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.owner_partition(text, integer) TO PUBLIC;
-- Reads with the caller's privileges only: a router's views call it as the
-- querying role.
GRANT EXECUTE ON FUNCTION payext.relation_rows(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.calling_role() TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.caller_has_capability(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.acting_accounts() TO PUBLIC;
GRANT EXECUTE ON FUNCTION payext.acting_public_service_ids() TO PUBLIC;
