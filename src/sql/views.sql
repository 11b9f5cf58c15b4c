-- payext: what analysts and admins read.  Per-merchant views, keyed
-- pseudonyms for analysts, and verify_ledger(), which gathers the checks of
-- every concern (so it comes after them all).

---------------------------------------------------------------------------
-- Views for analysts
---------------------------------------------------------------------------

CREATE VIEW payext.consumer_merchant AS
SELECT p.consumer, p.public_service_id, p.interactions, p.payments,
       p.payment_amount, p.refund_amount, p.first_at, p.last_at,
       coalesce(s.state = 'associated', false) AS associated,
       s.established_at, s.how,
       coalesce(s.state = 'opted_out', false) AS opted_out
  FROM payext.interaction_pair p
  LEFT JOIN payext.association_state s
    ON s.consumer = p.consumer AND s.public_service_id = p.public_service_id;
COMMENT ON VIEW payext.consumer_merchant IS
  'per consumer and merchant: interactions, payments, amounts, first and last, associated or not';

CREATE VIEW payext.merchant_summary AS
SELECT p.public_service_id,
       count(*) AS consumers,
       sum(p.interactions) AS interactions,
       sum(p.payments) AS payments,
       count(*) FILTER (WHERE p.payments >= 2) AS repeat_consumers,
       count(a.consumer) AS associated_consumers,
       round(count(a.consumer)::numeric / count(*), 4) AS conversion_rate,
       sum(p.payment_amount) AS payment_amount,
       sum(p.refund_amount) AS refund_amount
  FROM payext.interaction_pair p
  LEFT JOIN payext.association a
    ON a.consumer = p.consumer AND a.public_service_id = p.public_service_id
 GROUP BY p.public_service_id;
COMMENT ON VIEW payext.merchant_summary IS
  'per merchant: consumers, repeat consumers (2+ payments), associated consumers, conversion, amounts';

CREATE VIEW payext.merchant_daily AS
SELECT d.public_service_id, d.day, d.interactions, d.payments, d.consumers,
       d.repeat_consumers, coalesce(n.new_associations, 0) AS new_associations,
       d.associated_consumers,
       round(d.associated_consumers::numeric / d.consumers, 4) AS conversion_rate,
       d.payment_amount, d.refund_amount
  FROM (SELECT i.public_service_id,
               (i.occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS interactions,
               count(*) FILTER (WHERE i.kind = 'payment') AS payments,
               count(DISTINCT i.consumer) AS consumers,
               count(DISTINCT i.consumer) FILTER (
                 WHERE p.first_at < ((i.occurred_at AT TIME ZONE 'UTC')::date)::timestamp AT TIME ZONE 'UTC'
               ) AS repeat_consumers,
               count(DISTINCT i.consumer) FILTER (WHERE a.consumer IS NOT NULL) AS associated_consumers,
               coalesce(sum(i.amount) FILTER (WHERE i.kind = 'payment'), 0) AS payment_amount,
               coalesce(sum(i.amount) FILTER (WHERE i.kind = 'refund'), 0) AS refund_amount
          FROM payext.interaction i
          JOIN payext.interaction_pair p
            ON p.consumer = i.consumer AND p.public_service_id = i.public_service_id
          LEFT JOIN payext.association a
            ON a.consumer = i.consumer AND a.public_service_id = i.public_service_id
         GROUP BY 1, 2) d
  LEFT JOIN (SELECT a.public_service_id,
                    (a.established_at AT TIME ZONE 'UTC')::date AS day,
                    count(*) AS new_associations
               FROM payext.association a
              GROUP BY 1, 2) n
    ON n.public_service_id = d.public_service_id AND n.day = d.day;
COMMENT ON VIEW payext.merchant_daily IS
  'per merchant and UTC day: interactions, consumers, repeat consumers (seen before that day), new associations, conversion, amounts';


---------------------------------------------------------------------------
-- Analysts: pseudonyms, not social-app ids
---------------------------------------------------------------------------

CREATE TABLE payext.pseudonym_key (
  id         integer PRIMARY KEY CHECK (id = 1),
  secret     bytea NOT NULL CHECK (length(secret) = 32),
  created_at timestamptz NOT NULL
);
-- 32 bytes from the server's strong random source (two v4 UUIDs: 244
-- random bits); made again by CREATE EXTENSION after a restore.
INSERT INTO payext.pseudonym_key
SELECT 1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), now();
COMMENT ON TABLE payext.pseudonym_key IS
  'the key of analysts'' pseudonyms; owner only, never dumped (pseudonyms change after a restore)';

CREATE FUNCTION payext.pseudonym(consumer text)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_pseudonym'
LANGUAGE C STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.pseudonym(text) IS
  'a stable keyed pseudonym of a social-app id (HMAC-SHA256); not for analysts to call';

CREATE FUNCTION payext.consumer_merchant_pseudonymous()
RETURNS TABLE (consumer_pseudonym text, public_service_id text, interactions bigint,
               payments bigint, payment_amount numeric, refund_amount numeric,
               first_at timestamptz, last_at timestamptz, associated boolean, opted_out boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT payext.pseudonym(c.consumer), c.public_service_id, c.interactions, c.payments,
         c.payment_amount, c.refund_amount, c.first_at, c.last_at, c.associated, c.opted_out
    FROM payext.consumer_merchant c
$$;

CREATE VIEW payext.analyst_consumer_merchant AS
SELECT * FROM payext.consumer_merchant_pseudonymous();
COMMENT ON VIEW payext.analyst_consumer_merchant IS
  'consumer_merchant for analysts: consumers under a keyed pseudonym';

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
                      'merchant_credit', 'order_reversal') THEN
    RAISE EXCEPTION 'payext has no readable relation %', relation
      USING ERRCODE = 'undefined_table',
            HINT = 'A router reads only payext''s readable tables and views.';
  END IF;
  RETURN QUERY EXECUTE format('SELECT pg_catalog.to_json(r) FROM payext.%I r', relation);
END
$$;
COMMENT ON FUNCTION payext.relation_rows(text) IS
  'one readable relation''s rows as JSON, with the caller''s privileges; what a router''s views gather';

---------------------------------------------------------------------------
-- The whole ledger's verification: every concern's checks
---------------------------------------------------------------------------

CREATE FUNCTION payext.verify_ledger()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT * FROM payext.verify_journal()
  UNION ALL
  SELECT * FROM payext.verify_payments()
  UNION ALL
  SELECT * FROM payext.verify_parking()
  UNION ALL
  SELECT * FROM payext.verify_sagas()
$$;
COMMENT ON FUNCTION payext.verify_ledger() IS
  'recomputes the ledger from the journal; one row per check, failures as rows';

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
