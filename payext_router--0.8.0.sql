-- payext_router 0.8.0: payext's API in a router database.  Each function
-- has payext's name, arguments and return type, and runs on the partition
-- its arguments name (docs/partitions.md): an id's high bits, a code's
-- first two digits, a user's hash.  The partitions are the options p0, p1,
-- ... of the foreign server payext_partitions (PL/Proxy's SQL/MED
-- cluster), set by payext.configure_partitions().
\echo Use "CREATE EXTENSION payext_router" to load this file. \quit

---------------------------------------------------------------------------
-- The partitions
---------------------------------------------------------------------------

-- How many partitions the router has: the p<N> options of payext_partitions.
CREATE FUNCTION payext.router_partitions()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (SELECT count(*)::integer
      FROM pg_catalog.pg_foreign_server s, pg_catalog.unnest(s.srvoptions) o
     WHERE s.srvname = 'payext_partitions' AND o ~ '^p[0-9]+=');
END
$$;
COMMENT ON FUNCTION payext.router_partitions() IS
  'the number of partitions this router routes to (0: not configured)';

-- PL/Proxy sends a date, time or interval to a partition as text, in the
-- calling session's DateStyle and IntervalStyle: "Fri Nov 20 10:00:00
-- 2026 CST" under DateStyle Postgres would be read there as US Central
-- time, "20/11/2026" under SQL, DMY as another date.  Every PL/Proxy
-- function below with such an argument or result sets both styles to
-- unambiguous ones for its call (ISO 8601 with a numeric offset).  The
-- partitions answer in their own DateStyle, which must stay ISO (the
-- default).

-- What every "RUN ON" below runs on: partition p, when the router has it.
-- PL/Proxy itself would take a number modulo the partitions and fail on
-- NULL with XX000; the router's internal *_on functions are callable by
-- any role, so a bad number is refused here with payext's SQLSTATEs.
CREATE FUNCTION payext.checked_partition(p integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p IS NULL THEN
    RAISE EXCEPTION 'argument "p" must not be null' USING ERRCODE = 'PY001';
  END IF;
  IF p < 0 OR p > 99 THEN
    RAISE EXCEPTION 'partition % is not behind this router', p USING ERRCODE = 'PY501';
  END IF;
  RETURN p;
END
$$;

-- Partition p's own number, asked of partition p.
CREATE FUNCTION payext.router_partition_number(p integer)
RETURNS integer
LANGUAGE plproxy
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.current_partition();
$$;
COMMENT ON FUNCTION payext.router_partition_number(integer) IS
  'the number partition p says it is (configure_partitions checks it is p)';

CREATE FUNCTION payext.configure_partitions(partitions text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
  n integer := coalesce(array_length(partitions, 1), 0);
  opts text := '';
  answered integer;
BEGIN
  IF partitions IS NULL THEN
    RAISE EXCEPTION 'argument "partitions" must not be null' USING ERRCODE = 'PY001';
  END IF;
  IF n < 1 OR n > 64 OR (n & (n - 1)) <> 0 OR array_ndims(partitions) <> 1 THEN
    RAISE EXCEPTION '% partitions are not a power of two from 1 to 64', n
      USING ERRCODE = 'PY501',
            DETAIL = 'PL/Proxy maps a hash to a partition by its low bits.';
  END IF;
  -- Owners' wallets and orders' claims live where a hash modulo the count
  -- puts them: the count is the router's for life (a partition may move to
  -- another server, and be pointed at again, under the same count).
  IF payext.router_partitions() NOT IN (0, n) THEN
    RAISE EXCEPTION 'this router has % partitions for life', payext.router_partitions()
      USING ERRCODE = 'PY503',
            DETAIL = format('%s were given. Wallets and orders are placed by a hash modulo the count.', n),
            HINT = 'Give the same number of partitions, in the same order.';
  END IF;
  FOR i IN 1 .. n LOOP
    IF partitions[i] IS NULL OR partitions[i] = '' THEN
      RAISE EXCEPTION 'partition % has no connection string', i - 1 USING ERRCODE = 'PY001';
    END IF;
    -- PL/Proxy connects as the calling role unless the string names one:
    -- a fixed user would run every routed call with that user's rights.
    IF partitions[i] ~* '(^|[\s?&])user\s*=' THEN
      RAISE EXCEPTION 'partition %''s connection string names a user', i - 1
        USING ERRCODE = 'PY503',
              DETAIL = 'Routed calls must run on the partition as the calling role, whose capabilities payext checks there.',
              HINT = 'Leave user out; give passwords in .pgpass or a user mapping.';
    END IF;
    opts := opts || format('%s p%s %L', CASE WHEN i > 1 THEN ',' ELSE '' END, i - 1, partitions[i]);
  END LOOP;
  DROP SERVER IF EXISTS payext_partitions CASCADE;
  EXECUTE format('CREATE SERVER payext_partitions FOREIGN DATA WRAPPER plproxy OPTIONS (%s)', opts);
  CREATE USER MAPPING FOR PUBLIC SERVER payext_partitions;
  GRANT USAGE ON FOREIGN SERVER payext_partitions TO PUBLIC;
  -- Each partition must be the number the router sends its ids to.
  FOR p IN 0 .. n - 1 LOOP
    answered := payext.router_partition_number(p);
    IF answered IS DISTINCT FROM p THEN
      RAISE EXCEPTION 'partition % of the router is partition % of payext', p, answered
        USING ERRCODE = 'PY503',
              DETAIL = format('Its connection string: %s', partitions[p + 1]),
              HINT = 'List the partitions in the order of their numbers (payext.set_partition).';
    END IF;
  END LOOP;
  RETURN n;
END
$$;
COMMENT ON FUNCTION payext.configure_partitions(text[]) IS
  'points the router at its partitions (libpq connection strings, partition 0 first) and checks each one''s number';

---------------------------------------------------------------------------
-- Routing: the same arithmetic as payext's partition_of, code_partition
-- and owner_partition, here in SQL (the router has no payext library)
---------------------------------------------------------------------------

CREATE FUNCTION payext.route_id(id bigint, name text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  what text := CASE name WHEN 'lot' THEN 'parking lot' WHEN 'stay' THEN 'parking stay'
                         WHEN 'hold' THEN 'hold' ELSE 'account' END;
BEGIN
  IF id IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', name USING ERRCODE = 'PY001';
  END IF;
  -- An id of no partition the router has names nothing: a single node
  -- would not find it either, and says so with the same SQLSTATE.
  IF id < 1 THEN
    RAISE EXCEPTION '% % does not exist', what, id
      USING ERRCODE = CASE name WHEN 'lot' THEN 'PY407' WHEN 'stay' THEN 'PY408'
                               WHEN 'hold' THEN 'PY601' ELSE 'PY101' END;
  END IF;
  IF (id >> 56) >= payext.router_partitions() THEN
    RAISE EXCEPTION '% % does not exist', what, id
      USING ERRCODE = CASE name WHEN 'lot' THEN 'PY407' WHEN 'stay' THEN 'PY408'
                               WHEN 'hold' THEN 'PY601' ELSE 'PY101' END,
            DETAIL = format('Its high bits name partition %s; the router has %s partitions.',
                            id >> 56, payext.router_partitions());
  END IF;
  p := (id >> 56)::integer;
  RETURN p;
END
$$;

-- The code's Damm check digit holds (src/code_format.c: the same
-- quasigroup): a typo is refused before the router claims anything for the
-- partition its first digits name.
CREATE FUNCTION payext.code_check_digit_ok(code text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t constant integer[] := ARRAY[
    0, 3, 1, 7, 5, 9, 8, 6, 4, 2,
    7, 0, 9, 2, 1, 5, 4, 8, 6, 3,
    4, 2, 0, 6, 8, 7, 1, 3, 5, 9,
    1, 7, 5, 0, 9, 8, 3, 4, 2, 6,
    6, 1, 2, 3, 0, 4, 5, 9, 7, 8,
    3, 6, 7, 4, 2, 0, 9, 5, 8, 1,
    5, 8, 6, 9, 7, 2, 0, 1, 3, 4,
    8, 9, 4, 5, 3, 6, 2, 0, 1, 7,
    9, 4, 3, 8, 6, 1, 7, 2, 0, 5,
    2, 5, 8, 1, 4, 3, 6, 7, 9, 0];
  interim integer := 0;
BEGIN
  IF code !~ '^[0-9]+$' THEN
    RETURN false;
  END IF;
  FOR i IN 1 .. length(code) LOOP
    interim := t[interim * 10 + substr(code, i, 1)::integer + 1];
  END LOOP;
  RETURN interim = 0;
END
$$;

CREATE FUNCTION payext.route_code(code text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  IF code IS NULL THEN
    RAISE EXCEPTION 'argument "code" must not be null' USING ERRCODE = 'PY001';
  END IF;
  -- Refused here as the partition would refuse it, before anything is
  -- claimed for the partition its digits name: not 18 digits, or a typo.
  IF code !~ '^[0-9]{18}$' THEN
    RAISE EXCEPTION 'payment code is malformed' USING ERRCODE = 'PY201',
      DETAIL = 'A payment code is 18 decimal digits.', HINT = 'Scan the code again.';
  END IF;
  IF NOT payext.code_check_digit_ok(code) THEN
    RAISE EXCEPTION 'payment code is malformed' USING ERRCODE = 'PY201',
      DETAIL = 'Its check digit does not match: a digit was probably mistyped or misread.',
      HINT = 'Scan the code again.';
  END IF;
  p := substr(code, 1, 2)::integer;
  IF p >= payext.router_partitions() THEN
    RAISE EXCEPTION 'payment code belongs to partition %', lpad(p::text, 2, '0')
      USING ERRCODE = 'PY202',
            DETAIL = format('The router has %s partitions.', payext.router_partitions()),
            HINT = 'Scan the code again.';
  END IF;
  RETURN p;
END
$$;

-- payext.owner_hash's arithmetic: SHA-256's first four bytes, big-endian,
-- unsigned here, modulo the partitions (a power of two).
CREATE FUNCTION payext.route_text(t text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN ((('x' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 8))::bit(32)::integer::bigint
           & 4294967295) % greatest(payext.router_partitions(), 1))::integer;
END
$$;

CREATE FUNCTION payext.route_owner(owner text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  RETURN payext.route_text(owner);
END
$$;

-- Where a merchant's order_ref or refund_ref is claimed: a hash of both.
CREATE FUNCTION payext.route_reference(merchant bigint, reference text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_text($1::text || '/' || $2);
END
$$;

-- Refuses a null argument as payext does (PY001).
CREATE FUNCTION payext.require_args(names text[], present boolean[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  FOR i IN 1 .. array_length(names, 1) LOOP
    IF NOT present[i] THEN
      RAISE EXCEPTION 'argument "%" must not be null', names[i] USING ERRCODE = 'PY001';
    END IF;
  END LOOP;
END
$$;

---------------------------------------------------------------------------
-- Merchants: a sub-account on every partition
---------------------------------------------------------------------------

-- A merchant's id at the router is its account on partition 0; this table
-- names its account on each partition (the router's only state, written by
-- open_merchant, which may be called again to mend it).
CREATE TABLE payext.merchant_account (
  merchant          bigint NOT NULL,
  partition_number  integer NOT NULL CHECK (partition_number >= 0 AND partition_number <= 99),
  account           bigint NOT NULL UNIQUE,
  public_service_id text NOT NULL,
  currency          text NOT NULL,
  PRIMARY KEY (merchant, partition_number)
);
COMMENT ON TABLE payext.merchant_account IS
  'each merchant''s account on each partition; its id at the router is partition 0''s';
SELECT pg_catalog.pg_extension_config_dump('payext.merchant_account', '');

-- The merchant's account on partition p; a merchant the router does not
-- know is passed on as it is, for the partition to judge (PY101, PY111).
CREATE FUNCTION payext.merchant_on(merchant bigint, p integer)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN coalesce((SELECT m.account FROM payext.merchant_account m
                    WHERE m.merchant = $1 AND m.partition_number = $2), $1);
END
$$;

-- A merchant's accounts, partition by partition (none: not a merchant's
-- id at the router); the table itself is the owner's.
CREATE FUNCTION payext.merchant_accounts(merchant bigint)
RETURNS TABLE (partition_number integer, account bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.partition_number, m.account FROM payext.merchant_account m
   WHERE m.merchant = $1 ORDER BY m.partition_number
$$;

-- The merchant's id at the router for its id there or any of its
-- accounts; NULL for an id that is no merchant's.
CREATE FUNCTION payext.router_merchant(id bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (SELECT m.merchant FROM payext.merchant_account m WHERE m.merchant = $1 OR m.account = $1 LIMIT 1);
END
$$;

-- Whether an id is a merchant's, at the router or on a partition.
CREATE FUNCTION payext.is_merchant_account(id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM payext.merchant_account m WHERE m.merchant = $1 OR m.account = $1);
END
$$;

-- A partition that cannot be reached, or that went away during the call,
-- is PL/Proxy's XX000, or the partition's own 57P01-57P03 or class 08 when
-- its backend was stopped or lost; the router says PY504 instead: the
-- call's outcome is unknown, and the caller retries it with the same
-- reference.  A partition that refuses the role itself (no such role there,
-- a password, pg_hba.conf) is 42501: retrying cannot help.  Any other XX000
-- is passed on as it is.
CREATE FUNCTION payext.is_unreachable(state text, message text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN $2 !~* '(role "[^"]*" does not exist|password authentication failed|no pg_hba\.conf entry|database "[^"]*" does not exist|not permitted to log in)'
     AND ($1 <> 'XX000'
          OR $2 ~* '(could not connect|connection refused|connection to server|server closed the connection|terminating connection|no connection to the server|lost connection|connection timed out|PQconnectPoll|query timeout|could not send)');
END
$$;

CREATE FUNCTION payext.raise_unreachable(p integer, message text, state text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF message ~* '(role "[^"]*" does not exist|password authentication failed|no pg_hba\.conf entry|database "[^"]*" does not exist|not permitted to log in)' THEN
    RAISE EXCEPTION 'partition % refuses the connection of role %', coalesce(lpad(p::text, 2, '0'), 'of the call'), current_user
      USING ERRCODE = '42501',
            DETAIL = message,
            HINT = 'Routed calls run on each partition as the calling role: create it there, with its capabilities.';
  END IF;
  IF payext.is_unreachable(state, message) THEN
    RAISE EXCEPTION 'partition % cannot be reached', coalesce(lpad(p::text, 2, '0'), 'of the call')
      USING ERRCODE = 'PY504',
            DETAIL = 'The outcome of the call is unknown. ' || message,
            HINT = 'Retry with the same reference: payext moves the money of one reference once.';
  END IF;
END
$$;

---------------------------------------------------------------------------
-- payext's API, routed
---------------------------------------------------------------------------

CREATE FUNCTION payext.open_wallet_on(p integer, owner text, currency text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.open_wallet(owner, currency);
$$;

CREATE FUNCTION payext.open_wallet(owner text, currency text DEFAULT 'CNY')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_owner(owner);
BEGIN
  RETURN payext.open_wallet_on(p, owner, currency);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.top_up_on(p integer, wallet bigint, amount bigint, external_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.top_up(wallet, amount, external_ref);
$$;

CREATE FUNCTION payext.top_up(wallet bigint, amount bigint, external_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_id(wallet, 'wallet');
BEGIN
  RETURN payext.top_up_on(p, wallet, amount, external_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.withdraw_on(p integer, account bigint, amount bigint, external_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.withdraw(account, amount, external_ref);
$$;

CREATE FUNCTION payext.withdraw(account bigint, amount bigint, external_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_id(account, 'account');
BEGIN
  -- A merchant's money lies on every partition: it is paid out whole by
  -- merchant_settle, not by withdraw from one of its accounts.
  IF payext.is_merchant_account(account) THEN
    RAISE EXCEPTION 'account % is a merchant''s, with an account on every partition', account
      USING ERRCODE = 'PY111',
            DETAIL = 'Behind a router a merchant is paid out by merchant_settle, which adds up its partitions.',
            HINT = 'Use merchant_settle.';
  END IF;
  RETURN payext.withdraw_on(p, account, amount, external_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.request_payment_on(p integer, wallet bigint, max_amount bigint, ttl interval)
RETURNS text LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.request_payment(wallet, max_amount, ttl);
$$;

CREATE FUNCTION payext.request_payment(wallet bigint, max_amount bigint DEFAULT NULL,
                                       ttl interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_id(wallet, 'wallet');
BEGIN
  RETURN payext.request_payment_on(p, wallet, max_amount, ttl);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.cancel_payment_code_on(p integer, code text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.cancel_payment_code(code);
$$;

CREATE FUNCTION payext.cancel_payment_code(code text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_code(code);
BEGIN
  PERFORM payext.cancel_payment_code_on(p, code);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.balance_on(p integer, account bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.balance(account);
$$;

-- A merchant's balance is its accounts' on every partition.
CREATE FUNCTION payext.balance(account bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  total bigint := 0;
  m record;
  p integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM payext.merchant_accounts(account)) THEN
    p := payext.route_id(account, 'account');
    RETURN payext.balance_on(p, account);
  END IF;
  FOR m IN SELECT a.partition_number, a.account FROM payext.merchant_accounts(account) a LOOP
    p := m.partition_number;
    total := total + payext.balance_on(p, m.account);
  END LOOP;
  RETURN total;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.open_merchant_on(p integer, public_service_id text, display_name text,
                                        currency text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.open_merchant(public_service_id, display_name, currency);
$$;

-- The merchant's account on every partition (each idempotent there), in
-- partition order; again, the same ids.
CREATE FUNCTION payext.open_merchant(public_service_id text, display_name text,
                                     currency text DEFAULT 'CNY')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := payext.router_partitions();
  id bigint;
  first bigint;
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['public_service_id', 'display_name', 'currency'],
                              ARRAY[public_service_id IS NOT NULL, display_name IS NOT NULL,
                                    currency IS NOT NULL]);
  FOR i IN 0 .. n - 1 LOOP
    p := i;
    id := payext.open_merchant_on(p, public_service_id, display_name, currency);
    first := coalesce(first, id);
    INSERT INTO payext.merchant_account AS a
      (merchant, partition_number, account, public_service_id, currency)
    VALUES (first, p, id, open_merchant.public_service_id, open_merchant.currency)
    ON CONFLICT (merchant, partition_number) DO NOTHING;
  END LOOP;
  RETURN first;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.map_merchant_role_on(p integer, grantee text, merchant bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.map_merchant_role(grantee::regrole, merchant);
$$;

CREATE FUNCTION payext.unmap_merchant_role_on(p integer, grantee text, merchant bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.unmap_merchant_role(grantee::regrole, merchant);
$$;

-- A merchant role acts for the merchant's account on every partition (the
-- role must exist on each; each mapping is idempotent there, so a failed
-- call is mended by calling again).
CREATE FUNCTION payext.map_merchant_role(grantee regrole, merchant bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  a record;
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['grantee', 'merchant'],
                              ARRAY[grantee IS NOT NULL, merchant IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  FOR a IN SELECT * FROM payext.merchant_accounts(m) LOOP
    p := a.partition_number;
    PERFORM payext.map_merchant_role_on(p, grantee::text, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.unmap_merchant_role(grantee regrole, merchant bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  a record;
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['grantee', 'merchant'],
                              ARRAY[grantee IS NOT NULL, merchant IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  FOR a IN SELECT * FROM payext.merchant_accounts(m) LOOP
    p := a.partition_number;
    PERFORM payext.unmap_merchant_role_on(p, grantee::text, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.claim_reference_on(p integer, merchant bigint, kind text, reference text,
                                          partition_number integer)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.claim_reference(merchant, kind, reference, partition_number);
$$;

CREATE FUNCTION payext.claimed_partition_on(p integer, merchant bigint, kind text, reference text)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.claimed_partition(merchant, kind, reference);
$$;

CREATE FUNCTION payext.charge_on(p integer, merchant bigint, code text, amount bigint,
                                 order_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.charge(merchant, code, amount, order_ref);
$$;

CREATE FUNCTION payext.merchant_charge_call_on(p integer, merchant bigint, code text,
                                               amount bigint, order_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_charge_call(merchant, code, amount, order_ref);
$$;

CREATE FUNCTION payext.charge_claimed_on(p integer, merchant bigint, code text, amount bigint,
                                         order_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.charge_claimed(merchant, code, amount, order_ref);
$$;

CREATE FUNCTION payext.merchant_charge_claimed_on(p integer, merchant bigint, code text,
                                                  amount bigint, order_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_charge_claimed(merchant, code, amount, order_ref);
$$;

-- The merchant's id at the router, or PY101.
CREATE FUNCTION payext.require_router_merchant(merchant bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint := payext.router_merchant(merchant);
BEGIN
  IF m IS NULL THEN
    RAISE EXCEPTION 'account % is no merchant''s at this router', merchant
      USING ERRCODE = 'PY101',
            HINT = 'The router knows the merchants opened through it (open_merchant).';
  END IF;
  RETURN m;
END
$$;

-- A charge runs on the payer's partition (the code's digits), to the
-- merchant's account there, after the order_ref is claimed for that
-- partition (on the partition a hash of the merchant and the order_ref
-- names, under the merchant's account there), so that no other partition
-- can charge the same order.  as_merchant: CALL merchant_charge's checks.
CREATE FUNCTION payext.route_charge(merchant bigint, code text, amount bigint, order_ref text,
                                    as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
  holder integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'code', 'amount', 'order_ref'],
                              ARRAY[merchant IS NOT NULL, code IS NOT NULL, amount IS NOT NULL,
                                    order_ref IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  p := payext.route_code(code);
  -- (an empty or overlong order_ref is the partition's to refuse: PY004)
  IF order_ref <> '' AND octet_length(order_ref) <= 128 THEN
    at_p := payext.route_reference(m, order_ref);
    IF at_p = p THEN
      -- The claim belongs on the payer's partition: one call, one
      -- transaction there.
      IF as_merchant THEN
        RETURN payext.merchant_charge_claimed_on(p, payext.merchant_on(m, p), code, amount,
                                                 order_ref);
      END IF;
      RETURN payext.charge_claimed_on(p, payext.merchant_on(m, p), code, amount, order_ref);
    END IF;
    holder := payext.claim_reference_on(at_p, payext.merchant_on(m, at_p), 'order', order_ref, p);
    IF holder <> p THEN
      RAISE EXCEPTION 'order "%" was already charged differently', order_ref
        USING ERRCODE = 'PY208',
              DETAIL = format('It was charged, or a charge was tried, with a code of partition %s; '
                              'only such codes may charge it.', lpad(holder::text, 2, '0')),
              HINT = 'Use a new order_ref for a new order.';
    END IF;
  END IF;
  at_p := p;
  IF as_merchant THEN
    RETURN payext.merchant_charge_call_on(p, payext.merchant_on(m, p), code, amount, order_ref);
  END IF;
  RETURN payext.charge_on(p, payext.merchant_on(m, p), code, amount, order_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.charge(merchant bigint, code text, amount bigint, order_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_charge($1, $2, $3, $4, false);
END
$$;

CREATE PROCEDURE payext.merchant_charge(merchant bigint, code text, amount bigint,
                                        order_ref text, INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  transfer_id := payext.route_charge(merchant, code, amount, order_ref, true);
END
$$;

CREATE FUNCTION payext.refund_on(p integer, merchant bigint, order_ref text, amount bigint,
                                 refund_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.refund(merchant, order_ref, amount, refund_ref);
$$;

CREATE FUNCTION payext.merchant_refund_call_on(p integer, merchant bigint, order_ref text,
                                               amount bigint, refund_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_refund_call(merchant, order_ref, amount, refund_ref);
$$;

-- The refund on partition p, by the procedure's function or bare.
CREATE FUNCTION payext.refund_at(p integer, account bigint, order_ref text, amount bigint,
                                 refund_ref text, as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF as_merchant THEN
    RETURN payext.merchant_refund_call_on(p, account, order_ref, amount, refund_ref);
  END IF;
  RETURN payext.refund_on(p, account, order_ref, amount, refund_ref);
END
$$;

CREATE FUNCTION payext.merchant_cover_on(p integer, saga uuid, account bigint, amount bigint,
                                         to_partition integer, to_account bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_cover(saga, account, amount, to_partition, to_account);
$$;

-- Brings merchant m's money from its accounts on other partitions to its
-- account on partition p until that holds `amount`, one saga per account
-- (lowest partition first), each named by the refund it serves, so that a
-- retried refund resumes its covers instead of moving more.  Each cover's
-- first leg runs as the caller (merchant_cover: its own money only), the
-- rest as the router's owner (resume_saga).  Returns whether p's account
-- now holds enough.
CREATE FUNCTION payext.cover_merchant(m bigint, p integer, amount bigint, refund_ref text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  here bigint := payext.merchant_on(m, p);
  there bigint;
  need bigint;
  key uuid;
  saga uuid;
BEGIN
  need := amount - payext.balance_on(p, here);
  FOR q IN 0 .. payext.router_partitions() - 1 LOOP
    EXIT WHEN need <= 0;
    CONTINUE WHEN q = p;
    SELECT a.account INTO there FROM payext.merchant_accounts(m) a WHERE a.partition_number = q;
    CONTINUE WHEN there IS NULL;
    key := payext.attempt_saga_key(q, 'cover', there, m || ':' || q || ':' || refund_ref);
    saga := payext.saga_id_of(q, 'cover', there, key);
    BEGIN
      PERFORM payext.merchant_cover_on(q, key, there,
                                       least(need, payext.balance_on(q, there)), p, here);
    EXCEPTION WHEN SQLSTATE 'PY107' OR SQLSTATE 'PY002' OR SQLSTATE 'PY104' THEN
      -- Covered before for this refund (a retry: resumed below), nothing
      -- there, or spent meanwhile.
      NULL;
    END;
    PERFORM * FROM payext.resume_saga(q, saga);
    need := amount - payext.balance_on(p, here);
  END LOOP;
  RETURN need <= 0;
END
$$;

-- A refund runs where its order was charged (its claim), after its
-- refund_ref is claimed for that partition.  When the merchant's account
-- there holds too little (PY104), the merchant's money on other partitions
-- covers it first (cover_merchant), and the refund is tried again.
CREATE FUNCTION payext.route_refund(merchant bigint, order_ref text, amount bigint,
                                    refund_ref text, as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
  holder integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'order_ref', 'amount', 'refund_ref'],
                              ARRAY[merchant IS NOT NULL, order_ref IS NOT NULL,
                                    amount IS NOT NULL, refund_ref IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  at_p := payext.route_reference(m, order_ref);
  p := payext.claimed_partition_on(at_p, payext.merchant_on(m, at_p), 'order', order_ref);
  IF p IS NULL THEN
    RAISE EXCEPTION 'merchant % has no payment for order "%"', merchant, order_ref
      USING ERRCODE = 'PY209', HINT = 'Check the merchant account and the order reference.';
  END IF;
  IF refund_ref <> '' AND octet_length(refund_ref) <= 128 THEN
    at_p := payext.route_reference(m, refund_ref);
    holder := payext.claim_reference_on(at_p, payext.merchant_on(m, at_p), 'refund', refund_ref, p);
    IF holder <> p THEN
      RAISE EXCEPTION 'refund reference "%" was already used for a different refund', refund_ref
        USING ERRCODE = 'PY211',
              DETAIL = 'It refunded an order charged on another partition.',
              HINT = 'Use a new refund_ref for a new refund.';
    END IF;
  END IF;
  at_p := p;
  BEGIN
    RETURN payext.refund_at(p, payext.merchant_on(m, p), order_ref, amount, refund_ref,
                            as_merchant);
  EXCEPTION WHEN SQLSTATE 'PY104' THEN
    at_p := NULL;
    IF NOT payext.cover_merchant(m, p, amount, refund_ref) THEN
      RAISE;
    END IF;
    at_p := p;
  END;
  RETURN payext.refund_at(p, payext.merchant_on(m, p), order_ref, amount, refund_ref,
                          as_merchant);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.refund(merchant bigint, order_ref text, amount bigint, refund_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_refund($1, $2, $3, $4, false);
END
$$;

CREATE PROCEDURE payext.merchant_refund(merchant bigint, order_ref text, amount bigint,
                                        refund_ref text, INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  transfer_id := payext.route_refund(merchant, order_ref, amount, refund_ref, true);
END
$$;

-- Balances at an instant and statements: a merchant's accounts on every
-- partition, added up and merged in time order.
CREATE TYPE payext.statement_line AS (
  transfer_id bigint, created_at timestamptz, kind text, order_ref text, refund_ref text,
  reference text, amount bigint, balance_after bigint
);

CREATE FUNCTION payext.balance_at_on(p integer, account bigint, at timestamptz)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.balance_at(account, at);
$$;

CREATE FUNCTION payext.merchant_statement_on(p integer, merchant bigint, from_at timestamptz,
                                             to_at timestamptz)
RETURNS SETOF payext.statement_line LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_statement(merchant, from_at, to_at, 'all');
$$;

-- A merchant's id at the router: the sum of its accounts' balances then;
-- any other id: that account's, on its partition.
CREATE FUNCTION payext.balance_at(account bigint, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  total numeric := 0;
BEGIN
  PERFORM payext.require_args(ARRAY['account', 'at'], ARRAY[account IS NOT NULL, at IS NOT NULL]);
  IF payext.router_merchant(account) IS DISTINCT FROM account THEN
    p := payext.route_id(account, 'account');
    RETURN payext.balance_at_on(p, account, at);
  END IF;
  FOR q IN 0 .. payext.router_partitions() - 1 LOOP
    p := q;
    total := total + payext.balance_at_on(q, payext.merchant_on(account, q), at);
  END LOOP;
  RETURN total::bigint;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- Every partition's lines of the merchant's accounts, in time order, with
-- the balance after each over all of them (the opening: every account's
-- balance at from_at).  Arguments are checked as a node checks them.
CREATE FUNCTION payext.merchant_statement(merchant bigint, from_at timestamptz, to_at timestamptz,
                                          kind text DEFAULT 'all')
RETURNS SETOF payext.statement_line
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  opening numeric := 0;
  wanted text := merchant_statement.kind;
  lines payext.statement_line[] := '{}';
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'from_at', 'to_at', 'kind'],
                              ARRAY[merchant IS NOT NULL, from_at IS NOT NULL, to_at IS NOT NULL,
                                    wanted IS NOT NULL]);
  IF wanted NOT IN ('all', 'charge', 'capture', 'refund', 'settlement') THEN
    RAISE EXCEPTION 'a statement''s kind is all, charge, capture, refund or settlement, not "%"', wanted
      USING ERRCODE = 'PY011';
  END IF;
  IF from_at > to_at THEN
    RAISE EXCEPTION 'a statement''s from_at is after its to_at' USING ERRCODE = 'PY011';
  END IF;
  m := payext.require_router_merchant(merchant);
  FOR q IN 0 .. payext.router_partitions() - 1 LOOP
    p := q;
    opening := opening + payext.balance_at_on(q, payext.merchant_on(m, q), from_at);
    lines := lines || ARRAY(SELECT x FROM payext.merchant_statement_on(q, payext.merchant_on(m, q),
                                                                        from_at, to_at) x);
  END LOOP;
  RETURN QUERY
    SELECT l.transfer_id, l.created_at, l.kind, l.order_ref, l.refund_ref, l.reference, l.amount,
           l.after::bigint
      FROM (SELECT t.*, opening + sum(t.amount) OVER (ORDER BY t.created_at, t.transfer_id) AS after
              FROM unnest(lines) t) l
     WHERE wanted = 'all' OR l.kind = wanted
     ORDER BY l.created_at, l.transfer_id;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.event_channel_on(p integer, merchant bigint)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.event_channel(merchant);
$$;

-- A merchant's events are announced by the partition that moved the money,
-- on that partition's channel of the merchant's account there: a back
-- office LISTENs on each partition.  event_channels() names them all (and
-- starts the announcements on every partition); event_channel() gives
-- partition 0's, after starting them everywhere too.
CREATE FUNCTION payext.event_channels(merchant bigint)
RETURNS TABLE (partition_number integer, account bigint, channel text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  at_p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    at_p := p;
    partition_number := p;
    account := payext.merchant_on(m, p);
    channel := payext.event_channel_on(p, account);
    RETURN NEXT;
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.event_channel(merchant bigint)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.channel FROM payext.event_channels($1) c ORDER BY c.partition_number LIMIT 1 $$;

CREATE FUNCTION payext.reverse_charge_on(p integer, merchant bigint, order_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.reverse_charge(merchant, order_ref);
$$;

-- A reversal runs where the order was charged (its claim).  An order no
-- partition claimed is claimed first, for the claim's own partition, and
-- closed there: a late charge with a code of that partition is PY215,
-- with any other code PY208, and none moves money.  When the merchant's
-- account there holds less than the refund needs (PY104), its other
-- accounts cover it first, as for a refund.
CREATE FUNCTION payext.reverse_charge(merchant bigint, order_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
  left_to_refund bigint;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'order_ref'],
                              ARRAY[merchant IS NOT NULL, order_ref IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  IF order_ref = '' OR octet_length(order_ref) > 128 THEN
    -- malformed: any partition refuses it as payext does (PY004)
    at_p := 0;
    RETURN payext.reverse_charge_on(0, payext.merchant_on(m, 0), order_ref);
  END IF;
  at_p := payext.route_reference(m, order_ref);
  p := payext.claim_reference_on(at_p, payext.merchant_on(m, at_p), 'order', order_ref, at_p);
  at_p := p;
  BEGIN
    RETURN payext.reverse_charge_on(p, payext.merchant_on(m, p), order_ref);
  EXCEPTION WHEN SQLSTATE 'PY104' THEN
    SELECT s.amount - s.refunded_amount INTO left_to_refund
      FROM payext.payment_status_on(p, payext.merchant_on(m, p), order_ref) s;
    at_p := NULL;
    IF NOT payext.cover_merchant(m, p, left_to_refund, 'reversal:' || order_ref) THEN
      RAISE;
    END IF;
    at_p := p;
  END;
  RETURN payext.reverse_charge_on(p, payext.merchant_on(m, p), order_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.payment_status_on(p integer, merchant bigint, order_ref text,
                                         OUT transfer_id bigint, OUT amount bigint,
                                         OUT refunded_amount bigint, OUT state text,
                                         OUT created_at timestamptz, OUT updated_at timestamptz)
RETURNS record LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.payment_status(merchant, order_ref);
$$;

CREATE FUNCTION payext.payment_status(merchant bigint, order_ref text,
                                      OUT transfer_id bigint, OUT amount bigint,
                                      OUT refunded_amount bigint, OUT state text,
                                      OUT created_at timestamptz, OUT updated_at timestamptz)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'order_ref'],
                              ARRAY[merchant IS NOT NULL, order_ref IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  at_p := payext.route_reference(m, order_ref);
  p := payext.claimed_partition_on(at_p, payext.merchant_on(m, at_p), 'order', order_ref);
  IF p IS NULL THEN
    RAISE EXCEPTION 'merchant % has no payment for order "%"', merchant, order_ref
      USING ERRCODE = 'PY209', HINT = 'Check the merchant account and the order reference.';
  END IF;
  at_p := p;
  SELECT * INTO transfer_id, amount, refunded_amount, state, created_at, updated_at
    FROM payext.payment_status_on(p, payext.merchant_on(m, p), order_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.verify_ledger_on_all()
RETURNS TABLE (check_name text, ok boolean, detail text) LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
  SELECT * FROM payext.verify_ledger();
$$;

CREATE FUNCTION payext.verify_placement_on_all(partitions integer)
RETURNS TABLE (check_name text, ok boolean, detail text) LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
  SELECT * FROM payext.verify_placement(partitions);
$$;

-- Every partition's checks, each partition answering its own rows, on
-- each that every row lives where its key says (verify_placement), and
-- across them that the clearing accounts hold the money in flight.
CREATE FUNCTION payext.verify_ledger()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY SELECT * FROM payext.verify_ledger_on_all();
  RETURN QUERY SELECT * FROM payext.verify_placement_on_all(payext.router_partitions());
  RETURN QUERY SELECT * FROM payext.verify_clearing();
  RETURN QUERY SELECT * FROM payext.verify_vehicle_slots();
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(NULL, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.claim_references_on(p integer, merchant bigint, kind text, refs text[],
                                           partition_numbers integer[])
RETURNS integer[] LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.claim_references(merchant, kind, refs, partition_numbers);
$$;

CREATE FUNCTION payext.charge_many_on(p integer, merchant bigint, codes text[], amounts bigint[],
                                      order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.charge_many(merchant, codes, amounts, order_refs);
$$;

CREATE FUNCTION payext.merchant_charge_many_on(p integer, merchant bigint, codes text[],
                                               amounts bigint[], order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_charge_many(merchant, codes, amounts, order_refs);
$$;

-- A batch through the router: each item's order_ref is claimed for its
-- code's partition (the claims of one claim partition in one call), the
-- items a claim refuses are PY208, and the others go to their partitions'
-- charge_many, one call per partition.  Each partition's part is one
-- transaction there, the batch is not one across partitions: a batch that
-- ended in an error (40001, a partition unreachable) is sent again whole,
-- and the items charged before answer with their first transfer.
CREATE FUNCTION payext.route_charge_many(merchant bigint, codes text[], amounts bigint[],
                                         order_refs text[], as_merchant boolean)
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  n integer;
  parts integer := payext.router_partitions();
  home integer[];      -- each item's partition (NULL: refused here)
  verdict text[];      -- each item's refusal here
  note text[];
  tids bigint[];
  unclaimed boolean[];
  h integer;
  at_p integer;
  idx integer[];
  holders integer[];
  r record;
  d integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'codes', 'amounts', 'order_refs'],
                              ARRAY[merchant IS NOT NULL, codes IS NOT NULL, amounts IS NOT NULL,
                                    order_refs IS NOT NULL]);
  -- The same checks, in the same order and words, as payext's charge_many.
  FOR a IN 1 .. 3 LOOP
    d := CASE a WHEN 1 THEN array_ndims(codes) WHEN 2 THEN array_ndims(amounts)
                ELSE array_ndims(order_refs) END;
    IF d > 1 THEN
      RAISE EXCEPTION 'argument "%" must be a one-dimensional array',
        (ARRAY['codes', 'amounts', 'order_refs'])[a]
        USING ERRCODE = 'PY009', DETAIL = format('It has %s dimensions.', d);
    END IF;
  END LOOP;
  n := coalesce(array_length(codes, 1), 0);
  IF n <> coalesce(array_length(amounts, 1), 0) OR n <> coalesce(array_length(order_refs, 1), 0) THEN
    RAISE EXCEPTION 'arguments "codes", "amounts" and "order_refs" must have the same length'
      USING ERRCODE = 'PY009',
            DETAIL = format('They have %s, %s and %s elements.', n,
                            coalesce(array_length(amounts, 1), 0),
                            coalesce(array_length(order_refs, 1), 0)),
            HINT = 'The n-th elements of the three arrays are the batch''s n-th item.';
  END IF;
  IF n > 1000 THEN
    RAISE EXCEPTION 'a batch holds at most 1000 charges' USING ERRCODE = 'PY010',
      DETAIL = format('This one holds %s.', n),
      HINT = 'Split it; each batch is charged in one transaction.';
  END IF;
  -- Not a merchant's id here: as payext's charge_many, every item is
  -- refused on its own (PY101: the router cannot tell a wallet's id from
  -- no account's without asking a partition).
  m := payext.router_merchant(merchant);
  IF m IS NULL THEN
    RETURN QUERY SELECT i, NULL::bigint, 'PY101'::text,
                        format('account %s is no merchant''s at this router', merchant)
                   FROM generate_series(1, n) i;
    RETURN;
  END IF;
  home := array_fill(NULL::integer, ARRAY[greatest(n, 1)]);
  verdict := array_fill(NULL::text, ARRAY[greatest(n, 1)]);
  note := array_fill(NULL::text, ARRAY[greatest(n, 1)]);
  tids := array_fill(NULL::bigint, ARRAY[greatest(n, 1)]);
  unclaimed := array_fill(false, ARRAY[greatest(n, 1)]);
  FOR i IN 1 .. n LOOP
    IF codes[i] IS NULL OR NOT (codes[i] ~ '^[0-9]{18}$' AND payext.code_check_digit_ok(codes[i])) THEN
      -- no code, not a code, or a typo: partition 0 refuses it as any would
      -- (an item with none would otherwise be neither charged nor refused)
      home[i] := 0;
      unclaimed[i] := true;
    ELSIF substr(codes[i], 1, 2)::integer >= parts THEN
      verdict[i] := 'PY202';
      note[i] := format('payment code belongs to partition %s', substr(codes[i], 1, 2));
    ELSE
      home[i] := substr(codes[i], 1, 2)::integer;
    END IF;
  END LOOP;
  -- The claims, one call per claim partition.
  FOR h IN 0 .. parts - 1 LOOP
    idx := ARRAY(SELECT i FROM generate_series(1, n) i
                  WHERE home[i] IS NOT NULL AND NOT unclaimed[i]
                    AND order_refs[i] <> '' AND octet_length(order_refs[i]) <= 128
                    AND payext.route_reference(m, order_refs[i]) = h ORDER BY i);
    CONTINUE WHEN cardinality(idx) = 0;
    at_p := h;
    holders := payext.claim_references_on(h, payext.merchant_on(m, h), 'order',
                                          ARRAY(SELECT order_refs[i] FROM unnest(idx) i),
                                          ARRAY(SELECT home[i] FROM unnest(idx) i));
    FOR k IN 1 .. cardinality(idx) LOOP
      IF holders[k] <> home[idx[k]] THEN
        verdict[idx[k]] := 'PY208';
        note[idx[k]] := format('order "%s" was already charged differently', order_refs[idx[k]]);
        home[idx[k]] := NULL;
      END IF;
    END LOOP;
  END LOOP;
  -- The charges, one call per partition.
  FOR p IN 0 .. parts - 1 LOOP
    idx := ARRAY(SELECT i FROM generate_series(1, n) i WHERE home[i] = p ORDER BY i);
    CONTINUE WHEN cardinality(idx) = 0;
    at_p := p;
    IF as_merchant THEN
      FOR r IN SELECT * FROM payext.merchant_charge_many_on(p, payext.merchant_on(m, p),
                               ARRAY(SELECT codes[i] FROM unnest(idx) i),
                               ARRAY(SELECT amounts[i] FROM unnest(idx) i),
                               ARRAY(SELECT order_refs[i] FROM unnest(idx) i)) LOOP
        tids[idx[r.item]] := r.transfer_id;
        verdict[idx[r.item]] := r.sqlstate;
        note[idx[r.item]] := r.message;
      END LOOP;
    ELSE
      FOR r IN SELECT * FROM payext.charge_many_on(p, payext.merchant_on(m, p),
                               ARRAY(SELECT codes[i] FROM unnest(idx) i),
                               ARRAY(SELECT amounts[i] FROM unnest(idx) i),
                               ARRAY(SELECT order_refs[i] FROM unnest(idx) i)) LOOP
        tids[idx[r.item]] := r.transfer_id;
        verdict[idx[r.item]] := r.sqlstate;
        note[idx[r.item]] := r.message;
      END LOOP;
    END IF;
  END LOOP;
  RETURN QUERY SELECT i, tids[i], verdict[i], note[i] FROM generate_series(1, n) i ORDER BY i;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.charge_many(merchant bigint, codes text[], amounts bigint[],
                                   order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM payext.route_charge_many($1, $2, $3, $4, false) $$;

CREATE FUNCTION payext.merchant_charge_many(merchant bigint, codes text[], amounts bigint[],
                                            order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM payext.route_charge_many($1, $2, $3, $4, true) $$;

CREATE FUNCTION payext.merchant_settle_call_on(p integer, merchant bigint, bank_ref text,
                                               OUT amount bigint, OUT transfer_id bigint,
                                               OUT charges bigint, OUT charged_amount bigint,
                                               OUT refunds bigint, OUT refunded_amount bigint)
RETURNS record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_settle_call(merchant, bank_ref);
$$;

-- A merchant is settled partition by partition, each of its accounts paid
-- out under the same bank_ref (idempotent there); the sums add up, and
-- transfer_id is the first partition's payout.  Not one transaction: a
-- settlement that failed half-way is finished by calling it again with
-- the same bank_ref, which pays out only what was not.
CREATE PROCEDURE payext.merchant_settle(merchant bigint, bank_ref text,
                                        INOUT amount bigint DEFAULT NULL,
                                        INOUT transfer_id bigint DEFAULT NULL,
                                        INOUT charges bigint DEFAULT NULL,
                                        INOUT charged_amount bigint DEFAULT NULL,
                                        INOUT refunds bigint DEFAULT NULL,
                                        INOUT refunded_amount bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  a record;
  r record;
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'bank_ref'],
                              ARRAY[merchant IS NOT NULL, bank_ref IS NOT NULL]);
  amount := 0; transfer_id := NULL; charges := 0; charged_amount := 0;
  refunds := 0; refunded_amount := 0;
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.require_router_merchant(merchant)) LOOP
    p := a.partition_number;
    SELECT * INTO r FROM payext.merchant_settle_call_on(p, a.account, bank_ref);
    amount := amount + coalesce(r.amount, 0);
    transfer_id := coalesce(transfer_id, r.transfer_id);
    charges := charges + r.charges;
    charged_amount := charged_amount + r.charged_amount;
    refunds := refunds + r.refunds;
    refunded_amount := refunded_amount + r.refunded_amount;
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

---------------------------------------------------------------------------
-- More of payext's API, routed: association by the consumer's hash,
-- account states, rules and keys on every partition, merchants' statements
---------------------------------------------------------------------------

CREATE FUNCTION payext.record_interaction_on(p integer, consumer text, public_service_id text, kind text, amount bigint, occurred_at timestamptz)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.record_interaction(consumer, public_service_id, kind, amount, occurred_at);
$$;

CREATE FUNCTION payext.record_interaction(consumer text, public_service_id text, kind text,
                                           amount bigint DEFAULT 0, occurred_at timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['consumer'], ARRAY[consumer IS NOT NULL]);
  p := payext.route_text(consumer);
  RETURN payext.record_interaction_on(p, consumer, public_service_id, kind, amount, occurred_at);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.opt_out_on(p integer, consumer text, public_service_id text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.opt_out(consumer, public_service_id);
$$;

CREATE FUNCTION payext.opt_out(consumer text, public_service_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['consumer'], ARRAY[consumer IS NOT NULL]);
  p := payext.route_text(consumer);
  PERFORM payext.opt_out_on(p, consumer, public_service_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.opt_in_on(p integer, consumer text, public_service_id text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.opt_in(consumer, public_service_id);
$$;

CREATE FUNCTION payext.opt_in(consumer text, public_service_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['consumer'], ARRAY[consumer IS NOT NULL]);
  p := payext.route_text(consumer);
  PERFORM payext.opt_in_on(p, consumer, public_service_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.associate_on(p integer, consumer text, public_service_id text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.associate(consumer, public_service_id);
$$;

CREATE FUNCTION payext.associate(consumer text, public_service_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['consumer'], ARRAY[consumer IS NOT NULL]);
  p := payext.route_text(consumer);
  PERFORM payext.associate_on(p, consumer, public_service_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.freeze_on(p integer, account bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.freeze(account);
$$;

CREATE FUNCTION payext.unfreeze_on(p integer, account bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.unfreeze(account);
$$;

CREATE FUNCTION payext.close_account_on(p integer, account bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.close_account(account);
$$;

-- freeze, unfreeze and close_account: on the account's partition, or for a
-- merchant's id on each of its accounts, partition by partition (not
-- atomic: a call that fails on one partition is mended by calling again).
-- fn is one of the three names, from the functions below.
CREATE FUNCTION payext.route_account_state(fn text, account bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  a record;
BEGIN
  PERFORM payext.require_args(ARRAY['account'], ARRAY[account IS NOT NULL]);
  IF payext.router_merchant(account) IS NULL THEN
    p := payext.route_id(account, 'account');
    EXECUTE format('SELECT payext.%I($1, $2)', fn || '_on') USING p, account;
    RETURN;
  END IF;
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.router_merchant(account)) LOOP
    p := a.partition_number;
    EXECUTE format('SELECT payext.%I($1, $2)', fn || '_on') USING p, a.account;
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.freeze(account bigint)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT payext.route_account_state('freeze', $1) $$;

CREATE FUNCTION payext.unfreeze(account bigint)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT payext.route_account_state('unfreeze', $1) $$;

CREATE FUNCTION payext.close_account(account bigint)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT payext.route_account_state('close_account', $1) $$;

CREATE FUNCTION payext.unblock_charging_on(p integer, merchant bigint)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.unblock_charging(merchant);
$$;

CREATE FUNCTION payext.unblock_charging(merchant bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  a record;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.require_router_merchant(merchant)) LOOP
    p := a.partition_number;
    PERFORM payext.unblock_charging_on(p, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.set_association_rule_on(p integer, public_service_id text, min_interactions integer, within interval, min_total_amount bigint)
RETURNS void LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.set_association_rule(public_service_id, min_interactions, within, min_total_amount);
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.set_association_rule(public_service_id text, min_interactions integer, within interval,
                                             min_total_amount bigint DEFAULT 0)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    PERFORM payext.set_association_rule_on(p, public_service_id, min_interactions, within, min_total_amount);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.drop_association_rule_on(p integer, public_service_id text)
RETURNS boolean LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.drop_association_rule(public_service_id);
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.drop_association_rule(public_service_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  results boolean[] := '{}';
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    results := results || payext.drop_association_rule_on(p, public_service_id);
  END LOOP;
  RETURN (SELECT bool_or(x) FROM unnest(results) x);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.evaluate_associations_on(p integer, public_service_id text)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.evaluate_associations(public_service_id);
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.evaluate_associations(public_service_id text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  results integer[] := '{}';
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    results := results || payext.evaluate_associations_on(p, public_service_id);
  END LOOP;
  RETURN (SELECT sum(x) FROM unnest(results) x);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.rotate_signing_key_on(p integer)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.rotate_signing_key();
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.rotate_signing_key()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  results integer[] := '{}';
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    results := results || payext.rotate_signing_key_on(p);
  END LOOP;
  RETURN (SELECT max(x) FROM unnest(results) x);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.grant_capability_on(p integer, capability text, grantee text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.grant_capability(capability, grantee::regrole);
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.grant_capability(capability text, grantee regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    PERFORM payext.grant_capability_on(p, capability, grantee::text);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.revoke_capability_on(p integer, capability text, grantee text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.revoke_capability(capability, grantee::regrole);
$$;

-- On every partition, partition by partition (a call that fails on one
-- is mended by calling again: each is idempotent there, or harmless).
CREATE FUNCTION payext.revoke_capability(capability text, grantee regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  FOR i IN 0 .. payext.router_partitions() - 1 LOOP
    p := i;
    PERFORM payext.revoke_capability_on(p, capability, grantee::text);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.merchant_transfers_on(p integer, merchant bigint)
RETURNS TABLE (transfer_id bigint, created_at timestamptz, kind text, reference text, amount bigint, currency text) LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_transfers(merchant);
$$;

-- The merchant's accounts' rows on every partition, together.
CREATE FUNCTION payext.merchant_transfers(merchant bigint)
RETURNS TABLE (transfer_id bigint, created_at timestamptz, kind text, reference text, amount bigint, currency text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  a record;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.require_router_merchant(merchant_transfers.merchant)) LOOP
    p := a.partition_number;
    RETURN QUERY SELECT * FROM payext.merchant_transfers_on(p, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.merchant_interactions_on(p integer, merchant bigint)
RETURNS TABLE (interaction_id bigint, consumer text, kind text, amount bigint, occurred_at timestamptz, transfer_id bigint) LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_interactions(merchant);
$$;

-- The merchant's accounts' rows on every partition, together.
CREATE FUNCTION payext.merchant_interactions(merchant bigint)
RETURNS TABLE (interaction_id bigint, consumer text, kind text, amount bigint, occurred_at timestamptz, transfer_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  a record;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.require_router_merchant(merchant_interactions.merchant)) LOOP
    p := a.partition_number;
    RETURN QUERY SELECT * FROM payext.merchant_interactions_on(p, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.merchant_associations_on(p integer, merchant bigint)
RETURNS TABLE (consumer text, state text, established_at timestamptz, how text, changed_at timestamptz) LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_associations(merchant);
$$;

-- The merchant's accounts' rows on every partition, together.
CREATE FUNCTION payext.merchant_associations(merchant bigint)
RETURNS TABLE (consumer text, state text, established_at timestamptz, how text, changed_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  a record;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  FOR a IN SELECT * FROM payext.merchant_accounts(payext.require_router_merchant(merchant_associations.merchant)) LOOP
    p := a.partition_number;
    RETURN QUERY SELECT * FROM payext.merchant_associations_on(p, a.account);
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.code_failures_on_all(OUT merchant bigint, OUT failures integer,
                                            OUT first_at timestamptz, OUT last_at timestamptz,
                                            OUT blocked_until timestamptz, OUT last_code text)
RETURNS SETOF record LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
  SELECT * FROM payext.code_failures();
$$;

-- Every partition's guesses, by the merchant's account there.
CREATE FUNCTION payext.code_failures(OUT merchant bigint, OUT failures integer,
                                     OUT first_at timestamptz, OUT last_at timestamptz,
                                     OUT blocked_until timestamptz, OUT last_code text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY SELECT * FROM payext.code_failures_on_all();
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(NULL, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

---------------------------------------------------------------------------
-- Parking: lots on every partition, stays on the plate's
---------------------------------------------------------------------------

-- A lot exists on every partition (each with the operator's account
-- there); its id at the router is partition 0's.  A plate's bindings and
-- stays live on the partition of its normalised text's hash, so every
-- camera event of a plate lands on one partition.  Paying a stay from a
-- wallet on another partition, by pay_parking or automatically at exit,
-- is a saga (below).
CREATE TABLE payext.lot_map (
  lot               bigint NOT NULL,
  partition_number  integer NOT NULL CHECK (partition_number >= 0 AND partition_number <= 99),
  local_lot         bigint NOT NULL UNIQUE,
  PRIMARY KEY (lot, partition_number)
);
COMMENT ON TABLE payext.lot_map IS
  'each parking lot''s id on each partition; its id at the router is partition 0''s';
SELECT pg_catalog.pg_extension_config_dump('payext.lot_map', '');

-- The lot's id on partition p, for its id at the router or any of its
-- ids; an id the router does not know is passed on for the partition to
-- judge (PY407).
CREATE FUNCTION payext.lot_on(lot bigint, p integer)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (SELECT coalesce((SELECT m.local_lot FROM payext.lot_map m
                      WHERE m.partition_number = $2
                        AND m.lot = coalesce((SELECT x.lot FROM payext.lot_map x
                                               WHERE x.local_lot = $1), $1)), $1));
END
$$;

-- The lot's id at the router for any of its ids.
CREATE FUNCTION payext.router_lot(local_lot bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN coalesce((SELECT m.lot FROM payext.lot_map m WHERE m.local_lot = $1), $1);
END
$$;

CREATE FUNCTION payext.create_parking_lot_on(p integer, operator bigint, name text,
    time_zone text, free_minutes integer, unit_minutes integer, day_price bigint,
    night_price bigint, day_start time, night_start time, cap_24h bigint, cap_stay bigint,
    exit_grace_minutes integer, entry_hold bigint)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.create_parking_lot(operator, name, time_zone, free_minutes, unit_minutes,
                                   day_price, night_price, day_start, night_start, cap_24h,
                                   cap_stay, exit_grace_minutes, entry_hold);
$$;

-- Lots on partition p of the operator with exactly this tariff (the ids
-- of a call that failed half-way are among them).
CREATE FUNCTION payext.lots_like_on(p integer, operator bigint, name text, time_zone text,
    free_minutes integer, unit_minutes integer, day_price bigint, night_price bigint,
    day_start time, night_start time, cap_24h bigint, cap_stay bigint,
    exit_grace_minutes integer, entry_hold bigint)
RETURNS SETOF bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT l.id FROM payext.parking_lot l
   WHERE l.operator = operator AND l.name = name AND l.time_zone = time_zone
     AND l.free_minutes = free_minutes AND l.unit_minutes = unit_minutes
     AND l.day_price = day_price AND l.night_price IS NOT DISTINCT FROM night_price
     AND l.day_start = day_start AND l.night_start = night_start
     AND l.cap_24h IS NOT DISTINCT FROM cap_24h AND l.cap_stay IS NOT DISTINCT FROM cap_stay
     AND l.exit_grace_minutes = exit_grace_minutes
     AND l.entry_hold IS NOT DISTINCT FROM entry_hold
   ORDER BY l.id;
$$;

-- The lot on every partition, partition 0 first (whose refusals, PY405
-- and the like, come back as they are), each with the operator's account
-- on that partition.  The router records the lot only once every
-- partition has it: a partition that cannot be reached is PY504, and the
-- call again mends it, taking up the lots the failed call made (a lot of
-- the operator with this very tariff that no recorded lot owns) instead
-- of making more.  A call after a complete one makes another lot, as on
-- a single node.
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
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  first bigint;
  local bigint;
  at_p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['operator'], ARRAY[operator IS NOT NULL]);
  m := coalesce(payext.router_merchant(operator), operator);
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    at_p := p;
    SELECT l INTO local
      FROM payext.lots_like_on(p, payext.merchant_on(m, p), name, time_zone, free_minutes,
                               unit_minutes, day_price, night_price, day_start, night_start,
                               cap_24h, cap_stay, exit_grace_minutes, entry_hold) l
     WHERE NOT EXISTS (SELECT 1 FROM payext.lot_map x WHERE x.local_lot = l)
     ORDER BY l LIMIT 1;
    IF local IS NULL THEN
      local := payext.create_parking_lot_on(p, payext.merchant_on(m, p), name, time_zone,
                                            free_minutes, unit_minutes, day_price, night_price,
                                            day_start, night_start, cap_24h, cap_stay,
                                            exit_grace_minutes, entry_hold);
    END IF;
    first := coalesce(first, local);
    INSERT INTO payext.lot_map (lot, partition_number, local_lot) VALUES (first, p, local);
  END LOOP;
  RETURN first;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- The partition of a plate: the hash of its normalised text (payext's
-- normalize_plate, asked of a partition).
CREATE FUNCTION payext.route_plate(plate text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF plate IS NULL THEN
    RAISE EXCEPTION 'argument "plate" must not be null' USING ERRCODE = 'PY001';
  END IF;
  RETURN payext.route_text(payext.normalize_plate(plate));
END
$$;

CREATE FUNCTION payext.bind_vehicle_on(p integer, owner text, plate text, auto_pay boolean)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.bind_vehicle(owner, plate, auto_pay);
$$;

CREATE FUNCTION payext.unbind_vehicle_on(p integer, owner text, plate text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.unbind_vehicle(owner, plate);
$$;

CREATE FUNCTION payext.vehicle_entered_on(p integer, lot bigint, plate text, at timestamptz)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.vehicle_entered(lot, plate, at);
$$;

CREATE FUNCTION payext.vehicle_exited_on(p integer, lot bigint, plate text, at timestamptz)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.vehicle_exited(lot, plate, at);
$$;

CREATE FUNCTION payext.parking_service_info_on(p integer, owner text, at timestamptz,
    OUT stay bigint, OUT plate text, OUT lot bigint, OUT entered_at timestamptz,
    OUT exited_at timestamptz, OUT amount_due bigint, OUT lot_name text, OUT currency text)
RETURNS SETOF record LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.parking_service_info(owner, at);
$$;

CREATE FUNCTION payext.pay_parking_on(p integer, stay bigint, wallet bigint, amount bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.pay_parking(stay, wallet, amount);
$$;

CREATE FUNCTION payext.reserve_vehicle_slot_on(p integer, owner text, plate text)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.reserve_vehicle_slot(owner, plate);
$$;

CREATE FUNCTION payext.release_vehicle_slot_on(p integer, owner text, plate text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.release_vehicle_slot(owner, plate);
$$;

-- A binding lives on the plate's partition, which says whether another
-- owner has the plate (PY402).  payext.max_vehicles is counted on the
-- owner's partition, over every partition: a slot is reserved there first
-- (PY403 past the limit), and given back when the plate's partition
-- refuses the binding.  A router lost between the two leaves a slot with
-- no binding: binding again uses it, unbinding frees it, and the router's
-- verify_ledger() lists it (vehicle_slots_match).
CREATE FUNCTION payext.bind_vehicle(owner text, plate text, auto_pay boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_plate(plate);
  q integer;
  at_p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['owner', 'auto_pay'], ARRAY[owner IS NOT NULL, auto_pay IS NOT NULL]);
  q := payext.route_owner(owner);
  at_p := q;
  PERFORM payext.reserve_vehicle_slot_on(q, owner, plate);
  at_p := p;
  BEGIN
    PERFORM payext.bind_vehicle_on(p, owner, plate, auto_pay);
  EXCEPTION WHEN SQLSTATE 'PY402' OR SQLSTATE 'PY401' OR SQLSTATE 'PY004' OR SQLSTATE 'PY403' THEN
    at_p := q;
    PERFORM payext.release_vehicle_slot_on(q, owner, plate);
    RAISE;
  END;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- Unbinds on the plate's partition, then frees the owner's slot.  (A
-- slot left by a lost router, with no binding, is not freed by a PY404
-- here: a bind of that plate may be under way; verify_ledger() lists it,
-- and binding the plate again uses it.)
CREATE FUNCTION payext.unbind_vehicle(owner text, plate text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_plate(plate);
  q integer;
  at_p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['owner'], ARRAY[owner IS NOT NULL]);
  q := payext.route_owner(owner);
  at_p := p;
  PERFORM payext.unbind_vehicle_on(p, owner, plate);
  at_p := q;
  PERFORM payext.release_vehicle_slot_on(q, owner, plate);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.vehicles_on(p integer, OUT owner text, OUT plate text)
RETURNS SETOF record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT v.owner, v.plate FROM payext.vehicle v;
$$;

CREATE FUNCTION payext.vehicle_slots_on(p integer, OUT owner text, OUT plate text)
RETURNS SETOF record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT s.owner, s.plate FROM payext.vehicle_slot s;
$$;

-- Every binding has its slot on its owner's partition, and every slot its
-- binding (a slot alone: a router lost between the two steps).
CREATE FUNCTION payext.verify_vehicle_slots()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  bound text[] := '{}';
  slots text[] := '{}';
  unslotted integer;
  unbound integer;
BEGIN
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    -- (a unit separator: identifiers refuse control characters)
    bound := bound || ARRAY(SELECT v.owner || chr(31) || v.plate FROM payext.vehicles_on(p) v);
    slots := slots || ARRAY(SELECT s.owner || chr(31) || s.plate FROM payext.vehicle_slots_on(p) s
                             WHERE payext.route_owner(s.owner) = p);
  END LOOP;
  SELECT count(*) INTO unslotted FROM unnest(bound) b WHERE b <> ALL (slots);
  SELECT count(*) INTO unbound FROM unnest(slots) s WHERE s <> ALL (bound);
  RETURN QUERY SELECT 'vehicle_slots_match', unslotted = 0 AND unbound = 0,
    CASE WHEN unslotted + unbound = 0
         THEN format('%s binding(s), each with its slot on its owner''s partition',
                     cardinality(bound))
         ELSE format('%s binding(s) without a slot, %s slot(s) without a binding',
                     unslotted, unbound) END;
END
$$;

-- Camera events: on the plate's partition, under the lot's id there.  A
-- stay's id carries that partition.  Automatic payment at exit happens
-- there when the owner's wallet is on the plate's partition too, and
-- otherwise by a parking saga from the owner's wallet (auto_pay_across).
CREATE FUNCTION payext.vehicle_entered(lot bigint, plate text, at timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  RETURN payext.vehicle_entered_on(p, payext.lot_on(lot, p), plate, at);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.vehicle_exited(lot bigint, plate text, at timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  local bigint;
  fee bigint;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  local := payext.lot_on(lot, p);
  fee := payext.vehicle_exited_on(p, local, plate, at);
  -- The camera's event is recorded whatever happens to the payment: one
  -- that fails leaves the stay due (a saga it started finishes later).
  BEGIN
    PERFORM payext.auto_pay_across(p, local, plate, at);
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'payext: the automatic payment of plate %''s exit from lot % did not happen: %',
      plate, lot, SQLERRM
      USING HINT = 'The stay stays due: parking_service_info shows it, pay_parking pays it.';
  END;
  RETURN fee;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- What is due, from every partition (the owner's plates may hash to any),
-- with the lots under their ids at the router.
CREATE FUNCTION payext.parking_service_info(owner text, at timestamptz DEFAULT now())
RETURNS TABLE (stay bigint, plate text, lot bigint, entered_at timestamptz,
               exited_at timestamptz, amount_due bigint, lot_name text, currency text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  at_p integer;
BEGIN
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    at_p := p;
    RETURN QUERY
      SELECT i.stay, i.plate, payext.router_lot(i.lot), i.entered_at, i.exited_at,
             i.amount_due, i.lot_name, i.currency
        FROM payext.parking_service_info_on(p, owner, at) i;
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.auto_pay_elsewhere_on(p integer, lot bigint, plate text, at timestamptz,
    OUT stay bigint, OUT owner text, OUT amount bigint, OUT currency text,
    OUT operator bigint, OUT public_service_id text, OUT paid bigint)
RETURNS SETOF record LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.auto_pay_elsewhere(lot, plate, at);
$$;

CREATE FUNCTION payext.wallet_of_on(p integer, owner text, currency text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.wallet_of(owner, currency);
$$;

-- The exit's automatic payment from the owner's wallet on another
-- partition: the parking saga pay_parking runs, for what the exit left
-- due within payext.max_auto_pay.  Too little in the wallet, or a frozen
-- or closed one, leaves the stay due, as on a single node.
CREATE FUNCTION payext.auto_pay_across(p integer, local_lot bigint, plate text, at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d record;
  q integer;
  w bigint;
  key uuid;
  saga uuid;
BEGIN
  SELECT * INTO d FROM payext.auto_pay_elsewhere_on(p, local_lot, plate, at);
  IF NOT FOUND THEN
    RETURN;
  END IF;
  q := payext.route_owner(d.owner);
  w := payext.wallet_of_on(q, d.owner, d.currency);
  IF q = p OR w IS NULL THEN
    RETURN;
  END IF;
  key := payext.attempt_saga_key(q, 'parking', w,
                                 format('%s:%s:%s:%s', d.stay, d.paid, w, d.amount));
  saga := payext.saga_id_of(q, 'parking', w, key);
  BEGIN
    PERFORM payext.parking_saga_send_on(q, key, w, d.amount, d.stay, d.operator,
                                        d.public_service_id);
  EXCEPTION WHEN SQLSTATE 'PY104' OR SQLSTATE 'PY102' OR SQLSTATE 'PY103' THEN
    RETURN;
  END;
  PERFORM * FROM payext.resume_saga(q, saga);
END
$$;

CREATE FUNCTION payext.stay_payee_on(p integer, stay bigint, OUT operator bigint,
    OUT public_service_id text, OUT currency text, OUT paid bigint)
RETURNS record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.stay_payee(stay);
$$;

CREATE FUNCTION payext.parking_saga_send_on(p integer, saga uuid, wallet bigint, amount bigint,
                                            stay bigint, operator bigint, public_service_id text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.parking_saga_send(saga, wallet, amount, stay, operator, public_service_id);
$$;

-- Paying a stay: on its partition, from a wallet of that partition, as on
-- a single node.  From a wallet on another partition, a saga: the wallet
-- pays its partition's clearing account (as the caller), and the stay's
-- partition pays the operator after pay_parking's checks (as the router's
-- owner, resume_saga), returning that payment's transfer; a refusal there
-- (PY409 a stale amount, PY410 nothing due, PY411 not the owner's plate)
-- sends the money back and is raised.  The saga is named by the stay,
-- what it had been paid, the wallet and the amount, so that a retry after
-- PY504 resumes it.
CREATE FUNCTION payext.pay_parking(stay bigint, wallet bigint, amount bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  q integer;
  at_p integer;
  payee record;
  key uuid;
  saga uuid;
  r record;
BEGIN
  PERFORM payext.require_args(ARRAY['stay', 'wallet', 'amount'],
                              ARRAY[stay IS NOT NULL, wallet IS NOT NULL, amount IS NOT NULL]);
  p := payext.route_id(stay, 'stay');
  q := payext.route_id(wallet, 'wallet');
  IF p = q THEN
    RETURN payext.pay_parking_on(p, stay, wallet, amount);
  END IF;
  SELECT * INTO STRICT payee FROM payext.stay_payee_on(p, stay);
  -- A retry of the payment that settled this step answers with its
  -- transfer, as on a single node.
  IF payee.paid >= amount THEN
    FOR k IN 0 .. 99 LOOP
      SELECT * INTO r
        FROM payext.resume_saga(q, payext.saga_id_of(q, 'parking', wallet,
                                 payext.saga_id('parking', format('%s:%s:%s:%s#%s', stay,
                                                                  payee.paid - amount, wallet,
                                                                  amount, k))));
      EXIT WHEN NOT FOUND;
      IF r.state = 'done' THEN
        RETURN r.in_transfer;
      END IF;
    END LOOP;
  END IF;
  key := payext.attempt_saga_key(q, 'parking', wallet,
                                 format('%s:%s:%s:%s', stay, payee.paid, wallet, amount));
  saga := payext.saga_id_of(q, 'parking', wallet, key);
  at_p := q;
  PERFORM payext.parking_saga_send_on(q, key, wallet, amount, stay, payee.operator,
                                      payee.public_service_id);
  at_p := NULL;
  SELECT * INTO STRICT r FROM payext.resume_saga(q, saga);
  IF r.state = 'returned' THEN
    RAISE EXCEPTION 'parking stay % refused the payment; the money went back to wallet %',
      stay, wallet
      USING ERRCODE = r.refused_sqlstate,
            DETAIL = format('The stay''s partition refused it with %s (saga %s).',
                            r.refused_sqlstate, saga),
            HINT = 'Ask payext.parking_service_info() again and pay what it shows.';
  END IF;
  RETURN r.in_transfer;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(coalesce(at_p, p), SQLERRM, SQLSTATE);
  RAISE;
END
$$;

---------------------------------------------------------------------------
-- Sagas: money between partitions (docs/partitions.md, "Sagas")
---------------------------------------------------------------------------

-- The partitions keep the sagas (payext.saga, the outbox, on the paying
-- partition; payext.saga_inbox on the receiving one): the router keeps
-- nothing, so losing it mid-saga loses nothing, and whoever calls
-- resume_sagas() next finishes what it left.

CREATE FUNCTION payext.saga_send_on(p integer, saga uuid, account bigint, amount bigint,
                                    to_partition integer, to_account bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.saga_send(saga, account, amount, to_partition, to_account);
$$;

CREATE FUNCTION payext.saga_receive_on(p integer, saga uuid, from_partition integer,
                                       account bigint, amount bigint, currency text,
                                       public_service_id text, stay bigint, payer text,
                                       OUT outcome text, OUT transfer bigint,
                                       OUT refused_sqlstate text, OUT refused_message text)
RETURNS record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.saga_receive(saga, from_partition, account, amount, currency,
                                    public_service_id, stay, payer);
$$;

CREATE FUNCTION payext.saga_finish_on(p integer, saga uuid, in_transfer bigint)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.saga_finish(saga, in_transfer);
$$;

CREATE FUNCTION payext.saga_return_on(p integer, saga uuid, refused_sqlstate text,
                                      refused_message text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.saga_return(saga, refused_sqlstate, refused_message);
$$;

-- A saga as its paying partition's payext.saga row shows it.
CREATE TYPE payext.saga_info AS (
  id uuid, purpose text, public_service_id text, stay bigint, payer text, account bigint, amount bigint, currency text, to_partition integer,
  to_account bigint, out_transfer bigint, state text, in_transfer bigint,
  back_transfer bigint, refused_sqlstate text, refused_message text,
  created_at timestamptz, finished_at timestamptz
);

-- The sagas that left partition p: all of them, or the open ones.
CREATE FUNCTION payext.sagas_on(p integer, only_open boolean)
RETURNS SETOF payext.saga_info LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT s.id, s.purpose, s.public_service_id, s.stay, s.payer, s.account, s.amount, s.currency,
         s.to_partition,
         s.to_account, s.out_transfer,
         s.state, s.in_transfer, s.back_transfer, s.refused_sqlstate, s.refused_message,
         s.created_at, s.finished_at
    FROM payext.saga s
   WHERE s.state = 'open' OR NOT only_open
   ORDER BY s.created_at, s.id;
$$;

CREATE FUNCTION payext.saga_on(p integer, saga uuid)
RETURNS SETOF payext.saga_info LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT s.id, s.purpose, s.public_service_id, s.stay, s.payer, s.account, s.amount, s.currency,
         s.to_partition,
         s.to_account, s.out_transfer,
         s.state, s.in_transfer, s.back_transfer, s.refused_sqlstate, s.refused_message,
         s.created_at, s.finished_at
    FROM payext.saga s WHERE s.id = saga;
$$;

-- Each partition's clearing balances, and the sagas it received.
CREATE FUNCTION payext.clearing_on(p integer, OUT currency text, OUT balance numeric)
RETURNS SETOF record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT a.currency,
         coalesce((SELECT sum(CASE WHEN t.credit_account = a.id THEN t.amount::numeric
                                   ELSE -t.amount::numeric END)
                     FROM payext.transfer t
                    WHERE t.credit_account = a.id OR t.debit_account = a.id), 0) AS balance
    FROM payext.account a WHERE a.kind = 'clearing';
$$;

CREATE FUNCTION payext.inbox_on(p integer, OUT saga uuid, OUT outcome text)
RETURNS SETOF record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT i.saga, i.outcome FROM payext.saga_inbox i;
$$;

-- A saga's id for a reference: the same reference, the same saga, so that
-- a retry resumes the first attempt instead of starting another.
CREATE FUNCTION payext.saga_id(purpose text, reference text)
RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN encode(substring(sha256(convert_to('payext.saga:' || $1 || ':' || $2, 'UTF8'))
                          FROM 1 FOR 16), 'hex')::uuid;
END
$$;

-- The key of the next attempt at a saga named by `base`, paid from
-- `account` on partition q: attempt 0, or the first after those that were
-- refused and returned (an operator frozen for a while must not refuse a
-- stay for ever).  A saga under way or done is the one to resume or to
-- answer with.
CREATE FUNCTION payext.attempt_saga_key(q integer, purpose text, account bigint, base text)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  key uuid;
  r record;
BEGIN
  FOR k IN 0 .. 99 LOOP
    key := payext.saga_id(purpose, base || '#' || k);
    SELECT * INTO r FROM payext.resume_saga(q, payext.saga_id_of(q, purpose, account, key));
    IF NOT FOUND OR r.state <> 'returned' THEN
      RETURN key;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'saga "%" was refused 100 times', base USING ERRCODE = 'PY107';
END
$$;

-- A saga's id as its paying partition derives it from the purpose, the
-- paying account and the key the router sends (payext's saga_id_of, the
-- same arithmetic).
CREATE FUNCTION payext.saga_id_of(from_partition integer, purpose text, account bigint, key uuid)
RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN encode(substring(sha256(convert_to(format('payext.saga:%s:%s:%s:%s', $1, $2, $3, $4),
                                            'UTF8')) FROM 1 FOR 16), 'hex')::uuid;
END
$$;

-- Runs an open saga's second leg and its last step, from partition p,
-- where it left, as its outbox row s says.  Returns its state: 'done' or
-- 'returned'.  Raises PY504 when a partition cannot be reached (the saga
-- stays open for later).
CREATE FUNCTION payext.drive_saga(p integer, s payext.saga_info)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  at_p integer := s.to_partition;
BEGIN
  -- Sent to a partition this router does not have (a saga made by hand):
  -- PL/Proxy would take its number modulo the partitions; it comes back.
  IF s.to_partition >= payext.router_partitions() THEN
    at_p := p;
    PERFORM payext.saga_return_on(p, s.id, 'PY501',
                                  format('partition %s is not behind this router', s.to_partition));
    RETURN 'returned';
  END IF;
  SELECT * INTO STRICT r
    FROM payext.saga_receive_on(s.to_partition, s.id, p, s.to_account, s.amount, s.currency,
                                s.public_service_id, s.stay, s.payer);
  at_p := p;
  IF r.outcome = 'received' THEN
    RETURN payext.saga_finish_on(p, s.id, r.transfer);
  END IF;
  PERFORM payext.saga_return_on(p, s.id, r.refused_sqlstate, r.refused_message);
  RETURN 'returned';
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- Drives saga `saga`, which left partition p, to its end, as the router's
-- owner: whoever calls it can only finish what a leg 1 really started
-- (the steps come from the paying partition's outbox, never from the
-- caller), and finishing is what the worker would do anyway.  A
-- merchant's covered refund and an app's parking payment across
-- partitions use it.  Returns the saga's outcome (no row for a saga p
-- does not have): its state, the second leg's transfer, or the SQLSTATE
-- it was refused with (not the message, which may name the stay's plate:
-- anyone may call this).
CREATE FUNCTION payext.resume_saga(p integer, saga uuid,
    OUT state text, OUT in_transfer bigint, OUT refused_sqlstate text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  s payext.saga_info;
BEGIN
  IF p IS NULL OR saga IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN p IS NULL THEN 'p' ELSE 'saga' END
      USING ERRCODE = 'PY001';
  END IF;
  -- PL/Proxy would take p modulo the partitions: a saga must be driven
  -- from its own partition number, nothing else.
  IF p < 0 OR p >= payext.router_partitions() THEN
    RAISE EXCEPTION 'partition % is not one of this router''s %', p, payext.router_partitions()
      USING ERRCODE = 'PY501';
  END IF;
  SELECT * INTO s FROM payext.saga_on(p, saga);
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF s.state = 'open' THEN
    PERFORM payext.drive_saga(p, s);
    SELECT * INTO STRICT s FROM payext.saga_on(p, saga);
  END IF;
  RETURN QUERY SELECT s.state, s.in_transfer, s.refused_sqlstate;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;
COMMENT ON FUNCTION payext.resume_saga(integer, uuid) IS
  'drives one saga that left partition p to its end, as the router''s owner; returns its outcome';

-- Finishes every saga open for at least older_than (so that it does not
-- race the call that started it), partition by partition: a partition
-- that cannot be reached, or a saga whose step fails, waits for the next
-- run.  Returns how many it finished.  pg_cron runs it every minute
-- (docs/partitions.md); anyone with the admin capability may run it.
CREATE FUNCTION payext.resume_sagas(older_than interval DEFAULT '30 seconds')
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  open_sagas payext.saga_info[];
  s payext.saga_info;
  finished integer := 0;
BEGIN
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    BEGIN
      -- Read first, then call: PL/Proxy runs one call per cluster at a time.
      SELECT array_agg(o ORDER BY o.created_at) INTO open_sagas
        FROM payext.sagas_on(p, true) o
       WHERE o.created_at <= now() - older_than;
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'payext: the open sagas of partition % cannot be read: %', p, SQLERRM;
      CONTINUE;
    END;
    FOREACH s IN ARRAY coalesce(open_sagas, '{}') LOOP
      BEGIN
        PERFORM payext.drive_saga(p, s);
        finished := finished + 1;
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'payext: saga % stays open: %', s.id, SQLERRM;
      END;
    END LOOP;
  END LOOP;
  RETURN finished;
END
$$;
COMMENT ON FUNCTION payext.resume_sagas(interval) IS
  'finishes the sagas open for at least older_than on every reachable partition; returns how many';

-- Every saga of every partition, for operators.
CREATE FUNCTION payext.sagas(only_open boolean DEFAULT false,
    OUT from_partition integer, OUT id uuid, OUT purpose text, OUT account bigint, OUT amount bigint,
    OUT currency text, OUT to_partition integer, OUT to_account bigint,
    OUT state text, OUT refused_sqlstate text, OUT created_at timestamptz,
    OUT finished_at timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  at_p integer;
BEGIN
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    at_p := p;
    RETURN QUERY
      SELECT p, s.id, s.purpose, s.account, s.amount, s.currency, s.to_partition, s.to_account, s.state,
             s.refused_sqlstate, s.created_at, s.finished_at
        FROM payext.sagas_on(p, only_open) s;
  END LOOP;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;
COMMENT ON FUNCTION payext.sagas(boolean) IS
  'the sagas of every partition (only_open: those whose money is still in flight)';

-- Per currency: the clearing balances of all partitions add up to the
-- money in flight, the open sagas whose second leg has not run; once no
-- saga is open, to zero.
CREATE FUNCTION payext.verify_clearing()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  currencies text[] := '{}';
  balances numeric[] := '{}';
  received uuid[] := '{}';
  open_sagas payext.saga_info[] := '{}';
BEGIN
  -- Read partition by partition (PL/Proxy runs one call per cluster at a
  -- time), then add up.
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    currencies := currencies || ARRAY(SELECT c.currency FROM payext.clearing_on(p) c ORDER BY 1);
    balances := balances || ARRAY(SELECT c.balance FROM payext.clearing_on(p) c ORDER BY c.currency);
    received := received || ARRAY(SELECT i.saga FROM payext.inbox_on(p) i WHERE i.outcome = 'received');
    open_sagas := open_sagas || ARRAY(SELECT o FROM payext.sagas_on(p, true) o);
  END LOOP;
  RETURN QUERY
  WITH held AS (
    SELECT x.currency, sum(x.balance) AS clearing
      FROM unnest(currencies, balances) AS x(currency, balance) GROUP BY 1
  ), flight AS (
    -- open sagas whose second leg has not run
    SELECT s.currency, sum(s.amount) AS in_flight
      FROM unnest(open_sagas) s WHERE s.id <> ALL (received) GROUP BY 1
  ), wrong AS (
    SELECT coalesce(h.currency, f.currency) AS currency, coalesce(h.clearing, 0) AS clearing,
           coalesce(f.in_flight, 0) AS in_flight
      FROM held h FULL JOIN flight f ON f.currency = h.currency
     WHERE coalesce(h.clearing, 0) <> coalesce(f.in_flight, 0)
  )
  SELECT 'clearing_matches_sagas', NOT EXISTS (SELECT 1 FROM wrong),
         coalesce((SELECT string_agg(format('%s: clearing %s, in flight %s', w.currency,
                                            w.clearing, w.in_flight), '; ' ORDER BY w.currency)
                     FROM wrong w),
                  format('%s saga(s) open; the clearing accounts hold exactly their money in flight',
                         cardinality(open_sagas)));
END
$$;

CREATE FUNCTION payext.transfer_on(p integer, debit_account bigint, credit_account bigint,
                                   amount bigint, reference text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.transfer(debit_account, credit_account, amount, reference);
$$;

-- A correction between two accounts.  Within a partition, that
-- partition's transfer.  Across two, a saga: the money leaves the debit
-- account (the first transfer's id is returned), reaches the credit
-- account, or comes back to the debit account when the credit account
-- refuses it, and then the refusal is raised with its own SQLSTATE.  A
-- partition that cannot be reached is PY504: the saga goes on when it is
-- back, and a retry with the same reference resumes it.
CREATE FUNCTION payext.transfer(debit_account bigint, credit_account bigint, amount bigint,
                                reference text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  q integer;
  at_p integer;
  saga uuid;
  sent bigint;
  s payext.saga_info;
BEGIN
  PERFORM payext.require_args(ARRAY['debit_account', 'credit_account', 'amount'],
                              ARRAY[debit_account IS NOT NULL, credit_account IS NOT NULL,
                                    amount IS NOT NULL]);
  p := payext.route_id(debit_account, 'debit_account');
  q := payext.route_id(credit_account, 'credit_account');
  at_p := p;
  IF p = q THEN
    RETURN payext.transfer_on(p, debit_account, credit_account, amount, reference);
  END IF;
  -- Without a reference a retry after PY504 would move the money again.
  IF reference IS NULL THEN
    RAISE EXCEPTION 'argument "reference" must not be null for a transfer between partitions'
      USING ERRCODE = 'PY001',
            DETAIL = format('Accounts %s and %s are on partitions %s and %s.', debit_account,
                            credit_account, lpad(p::text, 2, '0'), lpad(q::text, 2, '0')),
            HINT = 'Give a reference: a retry with it resumes the transfer instead of repeating it.';
  END IF;
  sent := payext.saga_send_on(p, payext.saga_id('transfer', reference), debit_account, amount, q,
                              credit_account);
  saga := payext.saga_id_of(p, 'transfer', debit_account, payext.saga_id('transfer', reference));
  SELECT * INTO STRICT s FROM payext.saga_on(p, saga);
  IF s.state = 'open' THEN
    at_p := NULL;
    PERFORM payext.drive_saga(p, s);
    at_p := p;
    SELECT * INTO STRICT s FROM payext.saga_on(p, saga);
  END IF;
  IF s.state = 'returned' THEN
    RAISE EXCEPTION 'account % refused the transfer; the money went back to account %',
      credit_account, debit_account
      USING ERRCODE = s.refused_sqlstate,
            DETAIL = s.refused_message,
            HINT = format('Saga %s: transfer %s took the money, transfer %s gave it back.',
                          saga, s.out_transfer, s.back_transfer);
  END IF;
  RETURN sent;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.parking_fee_on(p integer, lot bigint, entered_at timestamptz,
                                      exited_at timestamptz)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.parking_fee(lot, entered_at, exited_at);
$$;

-- A lot's tariff, on the lot's partition (lots are not opened through the
-- router yet: a lot made on a partition is priced there).
CREATE FUNCTION payext.parking_fee(lot bigint, entered_at timestamptz, exited_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer := payext.route_id(lot, 'lot');
BEGIN
  RETURN payext.parking_fee_on(p, lot, entered_at, exited_at);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- Pure helpers: any partition answers alike.  Each tries the partitions
-- in turn from a random one, so that one partition down does not stop
-- them; PY504 only when none answers.

CREATE FUNCTION payext.format_amount_on(p integer, amount bigint, currency text)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.format_amount(amount, currency);
$$;

CREATE FUNCTION payext.format_amount(amount bigint, currency text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN payext.format_amount_on(p, amount, currency);
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION payext.partition_of_on(p integer, id bigint)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.partition_of(id);
$$;

CREATE FUNCTION payext.partition_of(id bigint)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN payext.partition_of_on(p, id);
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION payext.code_partition_on(p integer, code text)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.code_partition(code);
$$;

CREATE FUNCTION payext.code_partition(code text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN payext.code_partition_on(p, code);
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION payext.owner_partition_on(p integer, owner text, partitions integer)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.owner_partition(owner, partitions);
$$;

CREATE FUNCTION payext.owner_partition(owner text, partitions integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN payext.owner_partition_on(p, owner, partitions);
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION payext.normalize_plate_on(p integer, plate text)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.normalize_plate(plate);
$$;

CREATE FUNCTION payext.normalize_plate(plate text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN payext.normalize_plate_on(p, plate);
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION payext.currencies_on(p integer, OUT code text, OUT exponent integer,
                                     OUT name text)
RETURNS SETOF record LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.currencies();
$$;

CREATE FUNCTION payext.currencies(OUT code text, OUT exponent integer, OUT name text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer := greatest(payext.router_partitions(), 1);
  first integer := floor(random() * n)::integer;
  p integer;
BEGIN
  FOR k IN 0 .. n - 1 LOOP
    p := (first + k) % n;
    BEGIN
      RETURN QUERY SELECT * FROM payext.currencies_on(p);
      RETURN;
    EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
                   OR connection_exception THEN
      IF k = n - 1 OR NOT payext.is_unreachable(SQLSTATE, SQLERRM) THEN
        PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

---------------------------------------------------------------------------
-- Readable relations: every partition's rows
---------------------------------------------------------------------------

-- payext's readable tables and views, with the same names and columns:
-- each row comes from the partition that holds it (payext.relation_rows
-- there, as the querying role, whose privileges and row-level security on
-- each partition judge), so a merchant's account, a lot or a transfer of
-- a saga shows once per partition that has one.  A consumer's
-- interactions and associations live on one partition, so the per
-- merchant views add up each partition's counts exactly.  Filters run on
-- the router, after every partition's rows arrived: for one account or
-- one merchant, the functions (balance, merchant_transfers, ...) read
-- only what they need.

CREATE FUNCTION payext.relation_rows_on_all(relation text)
RETURNS SETOF json LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
  SELECT payext.relation_rows(relation);
$$;

-- Every partition's rows of the relation; PY504 when one cannot be reached.
CREATE FUNCTION payext.relation_rows(relation text)
RETURNS SETOF json
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY SELECT * FROM payext.relation_rows_on_all(relation);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(NULL, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE VIEW payext.account AS
SELECT r.* FROM payext.relation_rows('account') j,
  json_to_record(j) AS r(id bigint, kind text, owner text, public_service_id text,
                         display_name text, currency text, balance bigint, status text,
                         created_at timestamptz);

CREATE VIEW payext.transfer AS
SELECT r.* FROM payext.relation_rows('transfer') j,
  json_to_record(j) AS r(id bigint, debit_account bigint, credit_account bigint, amount bigint,
                         currency text, kind text, idem_scope bigint, reference text,
                         created_at timestamptz, checksum bytea);

-- The journal is append-only here too, with payext's own refusal (PY109):
-- not a view's 55000.
CREATE FUNCTION payext.journal_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'the journal is append-only' USING ERRCODE = 'PY109',
    DETAIL = format('%s on transfer is refused.', TG_OP),
    HINT = 'Correct a transfer with a new transfer in the opposite direction.';
END
$$;
CREATE TRIGGER journal_guard INSTEAD OF INSERT OR UPDATE OR DELETE ON payext.transfer
  FOR EACH ROW EXECUTE FUNCTION payext.journal_guard();

CREATE VIEW payext.payment AS
SELECT r.* FROM payext.relation_rows('payment') j,
  json_to_record(j) AS r(transfer_id bigint, merchant bigint, order_ref text, wallet bigint,
                         code_serial bigint, amount bigint, refunded bigint,
                         created_at timestamptz, updated_at timestamptz);

CREATE VIEW payext.refund AS
SELECT r.* FROM payext.relation_rows('refund') j,
  json_to_record(j) AS r(transfer_id bigint, payment bigint, merchant bigint, refund_ref text,
                         amount bigint, created_at timestamptz);

CREATE VIEW payext.interaction AS
SELECT r.* FROM payext.relation_rows('interaction') j,
  json_to_record(j) AS r(id bigint, consumer text, public_service_id text, kind text,
                         amount bigint, currency text, occurred_at timestamptz,
                         transfer_id bigint, recorded_at timestamptz);

CREATE VIEW payext.association AS
SELECT r.* FROM payext.relation_rows('association') j,
  json_to_record(j) AS r(consumer text, public_service_id text, established_at timestamptz,
                         how text, rule_id bigint, created_at timestamptz);

CREATE VIEW payext.association_opt_out AS
SELECT r.* FROM payext.relation_rows('association_opt_out') j,
  json_to_record(j) AS r(consumer text, public_service_id text, opted_out_at timestamptz);

-- Rules are broadcast: every partition has each (its own id there).
CREATE VIEW payext.association_rule AS
SELECT r.* FROM payext.relation_rows('association_rule') j,
  json_to_record(j) AS r(id bigint, public_service_id text, min_interactions integer,
                         within interval, min_total_amount bigint, created_at timestamptz,
                         superseded_at timestamptz);

CREATE VIEW payext.consumer_merchant AS
SELECT r.* FROM payext.relation_rows('consumer_merchant') j,
  json_to_record(j) AS r(consumer text, public_service_id text, interactions bigint,
                         payments bigint, payment_amount numeric, refund_amount numeric,
                         first_at timestamptz, last_at timestamptz, associated boolean,
                         established_at timestamptz, how text, opted_out boolean);

CREATE VIEW payext.analyst_consumer_merchant AS
SELECT r.* FROM payext.relation_rows('analyst_consumer_merchant') j,
  json_to_record(j) AS r(consumer_pseudonym text, public_service_id text, interactions bigint,
                         payments bigint, payment_amount numeric, refund_amount numeric,
                         first_at timestamptz, last_at timestamptz, associated boolean,
                         opted_out boolean);

-- Each partition's sums per merchant, added up: every consumer is counted
-- on one partition only.
CREATE VIEW payext.merchant_summary AS
SELECT r.public_service_id,
       sum(r.consumers)::bigint AS consumers,
       sum(r.interactions) AS interactions,
       sum(r.payments) AS payments,
       sum(r.repeat_consumers)::bigint AS repeat_consumers,
       sum(r.associated_consumers)::bigint AS associated_consumers,
       round(sum(r.associated_consumers) / sum(r.consumers), 4) AS conversion_rate,
       sum(r.payment_amount) AS payment_amount,
       sum(r.refund_amount) AS refund_amount
  FROM payext.relation_rows('merchant_summary') j,
       json_to_record(j) AS r(public_service_id text, consumers bigint, interactions numeric,
                              payments numeric, repeat_consumers bigint,
                              associated_consumers bigint, payment_amount numeric,
                              refund_amount numeric)
 GROUP BY r.public_service_id;

CREATE VIEW payext.merchant_daily AS
SELECT r.public_service_id, r.day,
       sum(r.interactions)::bigint AS interactions,
       sum(r.payments)::bigint AS payments,
       sum(r.consumers)::bigint AS consumers,
       sum(r.repeat_consumers)::bigint AS repeat_consumers,
       sum(r.new_associations)::bigint AS new_associations,
       sum(r.associated_consumers)::bigint AS associated_consumers,
       round(sum(r.associated_consumers) / sum(r.consumers), 4) AS conversion_rate,
       sum(r.payment_amount) AS payment_amount,
       sum(r.refund_amount) AS refund_amount
  FROM payext.relation_rows('merchant_daily') j,
       json_to_record(j) AS r(public_service_id text, day date, interactions bigint,
                              payments bigint, consumers bigint, repeat_consumers bigint,
                              new_associations bigint, associated_consumers bigint,
                              payment_amount numeric, refund_amount numeric)
 GROUP BY r.public_service_id, r.day;

-- By the merchant's account on each partition, as code_failures() says.
CREATE VIEW payext.code_failure AS
SELECT f.merchant, f.failures, f.first_at, f.last_at, f.blocked_until, f.last_code
  FROM payext.code_failures() f;

-- Lots are made on every partition: one row per partition and lot.
CREATE VIEW payext.parking_lot AS
SELECT r.* FROM payext.relation_rows('parking_lot') j,
  json_to_record(j) AS r(id bigint, operator bigint, name text, currency text, time_zone text,
                         free_minutes integer, unit_minutes integer, day_price bigint,
                         night_price bigint, day_start time, night_start time, cap_24h bigint,
                         cap_stay bigint, exit_grace_minutes integer, created_at timestamptz,
                         entry_hold bigint);

CREATE VIEW payext.parking_stay AS
SELECT r.* FROM payext.relation_rows('parking_stay') j,
  json_to_record(j) AS r(id bigint, lot bigint, plate text, entered_at timestamptz,
                         exited_at timestamptz, fee bigint, paid bigint, paid_at timestamptz,
                         owner_at_entry text, state text, recorded_at timestamptz);

-- A payment of a stay from a wallet of another partition shows that
-- partition's clearing account as its wallet, with how = 'saga'.
CREATE VIEW payext.parking_payment AS
SELECT r.* FROM payext.relation_rows('parking_payment') j,
  json_to_record(j) AS r(transfer_id bigint, stay bigint, wallet bigint, amount bigint,
                         how text, paid_at timestamptz);

-- Orders reverse_charge() refunded in full or closed, each on the
-- partition it ran on.
CREATE VIEW payext.order_reversal AS
SELECT r.* FROM payext.relation_rows('order_reversal') j,
  json_to_record(j) AS r(merchant bigint, order_ref text, transfer_id bigint,
                         reversed_at timestamptz);

-- A merchant account's payments not yet folded into its row.
CREATE VIEW payext.merchant_credit AS
SELECT r.* FROM payext.relation_rows('merchant_credit') j,
  json_to_record(j) AS r(account bigint, bucket integer, amount bigint);

-- One partition's anomalies are its own: a plate's stays are all on one.
CREATE VIEW payext.parking_anomaly AS
SELECT r.* FROM payext.relation_rows('parking_anomaly') j,
  json_to_record(j) AS r(stay bigint, lot bigint, plate text, seen_at timestamptz, anomaly text);

CREATE VIEW payext.vehicle AS
SELECT r.* FROM payext.relation_rows('vehicle') j,
  json_to_record(j) AS r(plate text, owner text, auto_pay boolean, bound_at timestamptz);

---------------------------------------------------------------------------
-- Parking as operators run it: on the plate's partition (passes, blocks,
-- the gate), on every partition (misread plates, an owner's arrears)
---------------------------------------------------------------------------

CREATE FUNCTION payext.grant_parking_pass_on(p integer, lot bigint, plate text,
                                             valid_from timestamptz, valid_until timestamptz,
                                             pass_ref text)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.grant_parking_pass(lot, plate, valid_from, valid_until, pass_ref);
$$;

-- A pass lives with the plate's stays, which it prices.  Its reference is
-- the lot's on that partition (a lot's passes of two plates on two
-- partitions do not see each other's references).
CREATE FUNCTION payext.grant_parking_pass(lot bigint, plate text, valid_from timestamptz,
                                          valid_until timestamptz, pass_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  RETURN payext.grant_parking_pass_on(p, payext.lot_on(lot, p), plate, valid_from, valid_until,
                                      pass_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.block_plate_on(p integer, lot bigint, plate text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.block_plate(lot, plate);
$$;

CREATE FUNCTION payext.unblock_plate_on(p integer, lot bigint, plate text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.unblock_plate(lot, plate);
$$;

CREATE FUNCTION payext.block_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  PERFORM payext.block_plate_on(p, payext.lot_on(lot, p), plate);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.unblock_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  PERFORM payext.unblock_plate_on(p, payext.lot_on(lot, p), plate);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.plate_status_on(p integer, lot bigint, plate text)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.plate_status(lot, plate);
$$;

-- The gate's question, answered by the plate's partition: its blocks, its
-- passes, the plate's owed stays and those of the owner's plates bound on
-- that partition.  (An owner's plates bound on other partitions are not
-- asked: one call for a gate; docs/partitions.md.)
CREATE FUNCTION payext.plate_status(lot bigint, plate text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['lot'], ARRAY[lot IS NOT NULL]);
  p := payext.route_plate(plate);
  RETURN payext.plate_status_on(p, payext.lot_on(lot, p), plate);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- An owner's owed stays on every partition, oldest exit first, each paid
-- by pay_parking (a saga when the stay and the wallet are on two
-- partitions), while the wallet allows.
CREATE FUNCTION payext.settle_arrears(owner text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  s record;
  w bigint;
  q integer;
  n integer := 0;
BEGIN
  PERFORM payext.require_args(ARRAY['owner'], ARRAY[owner IS NOT NULL]);
  q := payext.route_owner(owner);
  FOR s IN SELECT i.stay, i.amount_due, i.currency
             FROM payext.parking_service_info(owner) i
            WHERE i.exited_at IS NOT NULL AND i.amount_due > 0
            ORDER BY i.exited_at, i.stay
  LOOP
    w := payext.wallet_of_on(q, owner, s.currency);
    CONTINUE WHEN w IS NULL;
    BEGIN
      PERFORM payext.pay_parking(s.stay, w, s.amount_due);
      n := n + 1;
    EXCEPTION WHEN SQLSTATE 'PY104' OR SQLSTATE 'PY102' OR SQLSTATE 'PY103' THEN
      EXIT;
    END;
  END LOOP;
  RETURN n;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(q, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.validate_parking_on(p integer, stay bigint, merchant bigint, kind text,
                                           value bigint, validation_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.validate_parking(stay, merchant, kind, value, validation_ref);
$$;

-- A validation lives with its stay, under the shop's account on that
-- partition, which pays it (the shop's money there; its validation_refs
-- are that account's).
CREATE FUNCTION payext.validate_parking(stay bigint, merchant bigint, kind text, value bigint,
                                        validation_ref text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
  m bigint;
BEGIN
  PERFORM payext.require_args(ARRAY['stay', 'merchant'], ARRAY[stay IS NOT NULL, merchant IS NOT NULL]);
  p := payext.route_id(stay, 'stay');
  m := payext.require_router_merchant(merchant);
  RETURN payext.validate_parking_on(p, stay, payext.merchant_on(m, p), kind, value, validation_ref);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE TYPE payext.plate_suggestion AS (plate text, stay bigint, entered_at timestamptz,
                                        distance integer);

CREATE FUNCTION payext.suggest_plates_on(p integer, lot bigint, plate text)
RETURNS SETOF payext.plate_suggestion LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.suggest_plates(lot, plate);
$$;

-- A misread plate hashes elsewhere than the plate it stands for: every
-- partition is asked, nearest first over all of them.
CREATE FUNCTION payext.suggest_plates(lot bigint, plate text)
RETURNS SETOF payext.plate_suggestion
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  at_p integer;
  found payext.plate_suggestion[] := '{}';
BEGIN
  PERFORM payext.require_args(ARRAY['lot', 'plate'], ARRAY[lot IS NOT NULL, plate IS NOT NULL]);
  FOR p IN 0 .. payext.router_partitions() - 1 LOOP
    at_p := p;
    found := found || ARRAY(SELECT x FROM payext.suggest_plates_on(p, payext.lot_on(lot, p), plate) x);
  END LOOP;
  RETURN QUERY SELECT f.* FROM unnest(found) f ORDER BY f.distance, f.entered_at DESC, f.stay;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

---------------------------------------------------------------------------
-- Holds: on the payer's partition (the code's digits), as charges are
---------------------------------------------------------------------------

CREATE FUNCTION payext.authorize_on(p integer, merchant bigint, code text, amount bigint,
                                    order_ref text, expires_in interval)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.authorize(merchant, code, amount, order_ref, expires_in);
$$;

CREATE FUNCTION payext.merchant_authorize_call_on(p integer, merchant bigint, code text,
                                                  amount bigint, order_ref text,
                                                  expires_in interval)
RETURNS bigint LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_authorize_call(merchant, code, amount, order_ref, expires_in);
$$;

-- A hold runs on the payer's partition, after its order_ref is claimed
-- for that partition as a charge's is: charges and holds share the
-- merchant's orders on every partition.
CREATE FUNCTION payext.route_authorize(merchant bigint, code text, amount bigint, order_ref text,
                                       expires_in interval, as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
  holder integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'code', 'amount', 'order_ref'],
                              ARRAY[merchant IS NOT NULL, code IS NOT NULL, amount IS NOT NULL,
                                    order_ref IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  p := payext.route_code(code);
  -- (an empty, overlong or reserved order_ref is the partition's to refuse)
  IF order_ref <> '' AND octet_length(order_ref) <= 128 AND order_ref NOT LIKE 'parking:%' THEN
    at_p := payext.route_reference(m, order_ref);
    holder := payext.claim_reference_on(at_p, payext.merchant_on(m, at_p), 'order', order_ref, p);
    IF holder <> p THEN
      RAISE EXCEPTION 'order "%" was already used differently', order_ref
        USING ERRCODE = 'PY208',
              DETAIL = format('It was charged or held, or that was tried, with a code of partition %s; '
                              'only such codes may use it.', lpad(holder::text, 2, '0')),
              HINT = 'Use a new order_ref for a new order.';
    END IF;
  END IF;
  at_p := p;
  IF as_merchant THEN
    RETURN payext.merchant_authorize_call_on(p, payext.merchant_on(m, p), code, amount, order_ref,
                                             expires_in);
  END IF;
  RETURN payext.authorize_on(p, payext.merchant_on(m, p), code, amount, order_ref, expires_in);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.authorize(merchant bigint, code text, amount bigint, order_ref text,
                                 expires_in interval DEFAULT '7 days')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_authorize($1, $2, $3, $4, $5, false);
END
$$;

CREATE PROCEDURE payext.merchant_authorize(merchant bigint, code text, amount bigint,
                                           order_ref text, expires_in interval DEFAULT '7 days',
                                           INOUT hold_id bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  hold_id := payext.route_authorize(merchant, code, amount, order_ref, expires_in, true);
END
$$;

CREATE FUNCTION payext.capture_hold_on(p integer, merchant bigint, hold bigint, amount bigint,
                                       capture_ref text, final boolean)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.capture_hold(merchant, hold, amount, capture_ref, final);
$$;

CREATE FUNCTION payext.merchant_capture_call_on(p integer, merchant bigint, hold bigint,
                                                amount bigint, capture_ref text, final boolean)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_capture_call(merchant, hold, amount, capture_ref, final);
$$;

-- A capture runs where its hold is (the id's partition), after its
-- capture_ref is claimed for that partition: the merchant's capture
-- references are one namespace on every partition, as on a single node.
CREATE FUNCTION payext.route_capture(merchant bigint, hold bigint, amount bigint,
                                     capture_ref text, final boolean, as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
  at_p integer;
  holder integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'hold', 'amount', 'capture_ref', 'final'],
                              ARRAY[merchant IS NOT NULL, hold IS NOT NULL, amount IS NOT NULL,
                                    capture_ref IS NOT NULL, final IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  p := payext.route_id(hold, 'hold');
  IF capture_ref <> '' AND octet_length(capture_ref) <= 128 THEN
    at_p := payext.route_reference(m, capture_ref);
    holder := payext.claim_reference_on(at_p, payext.merchant_on(m, at_p), 'capture', capture_ref, p);
    IF holder <> p THEN
      RAISE EXCEPTION 'capture reference "%" was already used for another capture', capture_ref
        USING ERRCODE = 'PY607',
              DETAIL = 'It captured a hold on another partition.',
              HINT = 'A retry must repeat the original hold and amount; a new capture needs a new reference.';
    END IF;
  END IF;
  at_p := p;
  IF as_merchant THEN
    RETURN payext.merchant_capture_call_on(p, payext.merchant_on(m, p), hold, amount, capture_ref,
                                           final);
  END IF;
  RETURN payext.capture_hold_on(p, payext.merchant_on(m, p), hold, amount, capture_ref, final);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(at_p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.capture_hold(merchant bigint, hold bigint, amount bigint,
                                    capture_ref text, final boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_capture($1, $2, $3, $4, $5, false);
END
$$;

CREATE PROCEDURE payext.merchant_capture(merchant bigint, hold bigint, amount bigint,
                                         capture_ref text, final boolean DEFAULT true,
                                         INOUT transfer_id bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  transfer_id := payext.route_capture(merchant, hold, amount, capture_ref, final, true);
END
$$;

CREATE FUNCTION payext.void_hold_on(p integer, merchant bigint, hold bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.void_hold(merchant, hold);
$$;

CREATE FUNCTION payext.merchant_void_call_on(p integer, merchant bigint, hold bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.merchant_void_call(merchant, hold);
$$;

CREATE FUNCTION payext.route_void(merchant bigint, hold bigint, as_merchant boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m bigint;
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant', 'hold'],
                              ARRAY[merchant IS NOT NULL, hold IS NOT NULL]);
  m := payext.require_router_merchant(merchant);
  p := payext.route_id(hold, 'hold');
  IF as_merchant THEN
    RETURN payext.merchant_void_call_on(p, payext.merchant_on(m, p), hold);
  END IF;
  RETURN payext.void_hold_on(p, payext.merchant_on(m, p), hold);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.void_hold(merchant bigint, hold bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN payext.route_void($1, $2, false);
END
$$;

CREATE PROCEDURE payext.merchant_void(merchant bigint, hold bigint,
                                      INOUT released bigint DEFAULT NULL)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  released := payext.route_void(merchant, hold, true);
END
$$;

CREATE FUNCTION payext.available_balance_on(p integer, account bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT payext.available_balance(account);
$$;

-- A wallet's on its partition; a merchant's, its accounts' on every one
-- (a merchant's account holds nothing back).
CREATE FUNCTION payext.available_balance(account bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  total bigint := 0;
  m record;
  p integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM payext.merchant_accounts(account)) THEN
    p := payext.route_id(account, 'account');
    RETURN payext.available_balance_on(p, account);
  END IF;
  FOR m IN SELECT a.partition_number, a.account FROM payext.merchant_accounts(account) a LOOP
    p := m.partition_number;
    total := total + payext.available_balance_on(p, m.account);
  END LOOP;
  RETURN total;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

CREATE FUNCTION payext.merchant_holds_on(p integer, merchant bigint)
RETURNS TABLE (hold_id bigint, order_ref text, amount bigint, captured bigint, state text,
               holding bigint, expires_at timestamptz, created_at timestamptz) LANGUAGE plproxy
SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.checked_partition(p);
  SELECT * FROM payext.merchant_holds(merchant);
$$;

-- The merchant's holds on every partition, newest first.
CREATE FUNCTION payext.merchant_holds(merchant bigint)
RETURNS TABLE (hold_id bigint, order_ref text, amount bigint, captured bigint, state text,
               holding bigint, expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p integer;
BEGIN
  PERFORM payext.require_args(ARRAY['merchant'], ARRAY[merchant IS NOT NULL]);
  RETURN QUERY
    WITH parts AS (
      SELECT a.partition_number, a.account
        FROM payext.merchant_accounts(payext.require_router_merchant(merchant_holds.merchant)) a
    )
    SELECT h.* FROM parts, LATERAL payext.merchant_holds_on(parts.partition_number, parts.account) h
     ORDER BY h.created_at DESC, h.hold_id DESC;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown OR cannot_connect_now
               OR connection_exception THEN
  PERFORM payext.raise_unreachable(p, SQLERRM, SQLSTATE);
  RAISE;
END
$$;

-- Passes, blocked plates and shops' validations, each on its plate's
-- partition.
CREATE VIEW payext.parking_pass AS
SELECT r.* FROM payext.relation_rows('parking_pass') j,
  json_to_record(j) AS r(id bigint, lot bigint, plate text, valid_from timestamptz,
                         valid_until timestamptz, pass_ref text, granted_at timestamptz);

CREATE VIEW payext.parking_block AS
SELECT r.* FROM payext.relation_rows('parking_block') j,
  json_to_record(j) AS r(lot bigint, plate text, blocked_at timestamptz);

CREATE VIEW payext.parking_validation AS
SELECT r.* FROM payext.relation_rows('parking_validation') j,
  json_to_record(j) AS r(id bigint, stay bigint, merchant bigint, kind text, value bigint,
                         validation_ref text, state text, discount bigint, transfer_id bigint,
                         created_at timestamptz, applied_at timestamptz);

-- Holds, each on its payer's partition.
CREATE VIEW payext.hold AS
SELECT r.* FROM payext.relation_rows('hold') j,
  json_to_record(j) AS r(id bigint, wallet bigint, merchant bigint, order_ref text, amount bigint,
                         captured bigint, state text, expires_at timestamptz,
                         created_at timestamptz, closed_at timestamptz, stay bigint,
                         holding bigint);

---------------------------------------------------------------------------
-- Privileges
---------------------------------------------------------------------------

-- Pointing the router at other servers, and recording merchants' accounts
-- (open_merchant writes merchant_account), are the owner's.  Every routed
-- call runs on its partition as the calling role, where payext's own
-- capabilities judge it.
GRANT USAGE ON SCHEMA payext TO PUBLIC;
REVOKE ALL ON FUNCTION payext.configure_partitions(text[]) FROM PUBLIC;
REVOKE ALL ON TABLE payext.merchant_account FROM PUBLIC;
REVOKE ALL ON TABLE payext.lot_map FROM PUBLIC;
-- The views read as the querying role on every partition, which judges it
-- there as payext's own grants do on a single node.
GRANT SELECT ON payext.account, payext.transfer, payext.payment, payext.refund,
  payext.interaction, payext.association, payext.association_opt_out,
  payext.association_rule, payext.consumer_merchant, payext.analyst_consumer_merchant,
  payext.merchant_summary, payext.merchant_daily, payext.code_failure,
  payext.parking_lot, payext.parking_stay, payext.parking_anomaly, payext.vehicle,
  payext.parking_payment, payext.merchant_credit, payext.order_reversal, payext.hold,
  payext.parking_pass, payext.parking_block, payext.parking_validation
  TO PUBLIC;
