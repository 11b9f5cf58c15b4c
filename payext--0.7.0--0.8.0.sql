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
CREATE OR REPLACE FUNCTION payext.role_has_capability(role oid, capability text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = $1), false)
      OR EXISTS (SELECT 1 FROM payext.capability_grant g
                  WHERE g.capability = $2
                    AND pg_catalog.pg_has_role($1, g.grantee, 'USAGE'))
$$;

CREATE OR REPLACE FUNCTION payext.role_may_act_for(role oid, merchant bigint)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT payext.role_has_capability($1, 'admin')
      OR EXISTS (SELECT 1 FROM payext.merchant_role m
                  WHERE m.merchant = $2
                    AND pg_catalog.pg_has_role($1, m.grantee, 'USAGE'))
$$;

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
