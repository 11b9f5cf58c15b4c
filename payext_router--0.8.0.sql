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
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(*)::integer
    FROM pg_catalog.pg_foreign_server s, pg_catalog.unnest(s.srvoptions) o
   WHERE s.srvname = 'payext_partitions' AND o ~ '^p[0-9]+='
$$;
COMMENT ON FUNCTION payext.router_partitions() IS
  'the number of partitions this router routes to (0: not configured)';

-- Partition p's own number, asked of partition p.
CREATE FUNCTION payext.router_partition_number(p integer)
RETURNS integer
LANGUAGE plproxy
AS $$
  CLUSTER 'payext_partitions';
  RUN ON p;
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
  FOR i IN 1 .. n LOOP
    IF partitions[i] IS NULL OR partitions[i] = '' THEN
      RAISE EXCEPTION 'partition % has no connection string', i - 1 USING ERRCODE = 'PY001';
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
BEGIN
  IF id IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', name USING ERRCODE = 'PY001';
  END IF;
  IF id < 1 OR (id >> 56) > 99 THEN
    RAISE EXCEPTION 'id % names no partition', id USING ERRCODE = 'PY501',
      DETAIL = 'Ids are positive, with a partition of 0 to 99 in their high bits.';
  END IF;
  p := (id >> 56)::integer;
  IF p >= payext.router_partitions() THEN
    RAISE EXCEPTION 'id % is of partition %, which this router does not have', id, p
      USING ERRCODE = 'PY501',
            DETAIL = format('The router has %s partitions.', payext.router_partitions());
  END IF;
  RETURN p;
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
  -- The partition checks the check digit; a code that is not 18 digits is
  -- refused here as the partition would refuse it.
  IF code !~ '^[0-9]{18}$' THEN
    RAISE EXCEPTION 'payment code is malformed' USING ERRCODE = 'PY201',
      DETAIL = 'A payment code is 18 decimal digits.', HINT = 'Scan the code again.';
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

CREATE FUNCTION payext.route_owner(owner text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  -- payext.owner_hash: SHA-256's first four bytes, big-endian, unsigned
  -- here, modulo the partitions (a power of two).
  RETURN ((('x' || left(encode(sha256(convert_to(owner, 'UTF8')), 'hex'), 8))::bit(32)::integer::bigint
           & 4294967295) % greatest(payext.router_partitions(), 1))::integer;
END
$$;

---------------------------------------------------------------------------
-- payext's API, routed
---------------------------------------------------------------------------

CREATE FUNCTION payext.open_wallet(owner text, currency text DEFAULT 'CNY')
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_owner(owner);
$$;

CREATE FUNCTION payext.top_up(wallet bigint, amount bigint, external_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_id(wallet, 'wallet');
$$;

CREATE FUNCTION payext.withdraw(account bigint, amount bigint, external_ref text)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_id(account, 'account');
$$;

CREATE FUNCTION payext.balance(account bigint)
RETURNS bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_id(account, 'account');
$$;

CREATE FUNCTION payext.request_payment(wallet bigint, max_amount bigint DEFAULT NULL,
                                       ttl interval DEFAULT NULL)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_id(wallet, 'wallet');
$$;

CREATE FUNCTION payext.cancel_payment_code(code text)
RETURNS void LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON payext.route_code(code);
$$;

CREATE FUNCTION payext.verify_ledger()
RETURNS TABLE (check_name text, ok boolean, detail text) LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
$$;

-- Pure helpers: any partition answers alike.
CREATE FUNCTION payext.format_amount(amount bigint, currency text)
RETURNS text LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ANY;
$$;

CREATE FUNCTION payext.partition_of(id bigint)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ANY;
$$;

CREATE FUNCTION payext.code_partition(code text)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ANY;
$$;

CREATE FUNCTION payext.owner_partition(owner text, partitions integer)
RETURNS integer LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ANY;
$$;
