-- payext: the partition this database is, and what a router routes by
-- (DESIGN.md, "More than one node").

---------------------------------------------------------------------------
-- The partition
---------------------------------------------------------------------------

-- A partition's number is the database's, fixed for life: every id carries
-- it in its high bits and every payment code in its first two digits, so
-- that several partitions may share an instance and move to their own
-- later without re-hashing anything.  No row means partition 0 (a single
-- node); set_partition() adds the row before the first id is handed out.
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

---------------------------------------------------------------------------
-- References claimed for one partition (behind a router)
---------------------------------------------------------------------------

-- Behind a router a merchant's orders are charged on each payer's
-- partition, but an order_ref (and a refund_ref) is the merchant's across
-- all of them.  Before charging, the router claims the reference for the
-- payer's partition, on the partition that a hash of (merchant, reference)
-- names, under the merchant's account there (merchant_role judges); the claim commits there first, so that two codes of two
-- partitions can never both charge one order (docs/partitions.md).  On a
-- single node nothing writes here.
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
