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
