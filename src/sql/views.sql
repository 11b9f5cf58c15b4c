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
