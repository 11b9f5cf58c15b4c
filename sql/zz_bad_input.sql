-- Bad inputs, every public function: each argument in turn takes NULL,
-- empty, 1 MB, control characters, extremes, negative and huge intervals,
-- far past and far future times, while the others keep sensible values.
-- Every refusal must carry a clean SQLSTATE (payext's PY class, or 22xxx,
-- 23xxx, 42xxx), never XX000, and the server stays up to the end.
-- (Named zz_ to run last: it leaves odd rows behind.)
SET client_min_messages = error;

-- Accounts and a few rows to aim at.
SELECT payext.open_wallet('bad_input_user') AS w \gset
SELECT payext.open_merchant('gh_bad_input', 'Bad Input Shop') AS m \gset
SELECT payext.top_up(:w, 100000, 'bad-input-seed') > 0 AS seeded;
SELECT payext.create_parking_lot(:m, 'Bad Input Lot', 'Asia/Shanghai', 0, 60, 100) AS lot \gset
SELECT payext.vehicle_entered(:lot, 'BAD001', now() - interval '1 hour') AS stay \gset

CREATE TEMP TABLE probe_value (typ text, val text);
INSERT INTO probe_value VALUES
  ('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-1'), ('bigint', '1'),
  ('bigint', '9223372036854775807'), ('bigint', '(-9223372036854775807 - 1)'),
  ('bigint', :'w'), ('bigint', :'m'), ('bigint', :'lot'), ('bigint', :'stay'),
  ('integer', 'NULL'), ('integer', '0'), ('integer', '-1'), ('integer', '2147483647'),
  ('integer', '(-2147483647 - 1)'),
  ('text', 'NULL'), ('text', ''''''), ('text', 'repeat(''x'', 1048576)'),
  ('text', 'E''\\x01\\x02bell\\x07'''), ('text', '''x'''), ('text', '''CNY'''),
  ('text', '''粤B12345'''), ('text', '''payment'''), ('text', '''Asia/Shanghai'''),
  ('text', '''''''); DROP TABLE payext.account; --'''), ('text', '''010000000130680503'''),
  ('interval', 'NULL'), ('interval', '''0'''), ('interval', '''-1 day'''),
  ('interval', '''178000000 years'''), ('interval', '''1 month'''), ('interval', '''30 seconds'''),
  ('timestamp with time zone', 'NULL'), ('timestamp with time zone', '''infinity'''),
  ('timestamp with time zone', '''-infinity'''), ('timestamp with time zone', '''4713-01-01 BC'''),
  ('timestamp with time zone', '''294276-12-31'''), ('timestamp with time zone', 'now()'),
  ('time without time zone', 'NULL'), ('time without time zone', '''00:00'''),
  ('time without time zone', '''23:59:59.999999'''), ('time without time zone', '''24:00'''),
  ('boolean', 'NULL'), ('boolean', 'true'),
  ('regrole', 'NULL'), ('oid', 'NULL'), ('oid', '0'),
  ('uuid', 'NULL'), ('uuid', '''00000000-0000-0000-0000-000000000000''');

-- A sensible value per type, for the arguments not being probed.
CREATE TEMP TABLE probe_default (typ text PRIMARY KEY, val text);
INSERT INTO probe_default VALUES
  ('bigint', '1'), ('integer', '1'), ('text', '''x'''), ('interval', '''30 seconds'''),
  ('timestamp with time zone', 'now()'), ('time without time zone', '''08:00'''),
  ('boolean', 'false'), ('regrole', 'NULL'), ('oid', '0'),
  ('uuid', '''00000000-0000-4000-8000-0000000000b0''');

-- Every function and procedure of payext callable by a user (trigger
-- functions and the internal checks excluded), with its argument types.
CREATE TEMP TABLE probe_target AS
SELECT p.oid, p.proname::text AS name, p.prokind,
       coalesce(array_agg(format_type(t.typ, NULL) ORDER BY t.ord) FILTER (WHERE t.typ IS NOT NULL),
                '{}') AS argtypes
  FROM pg_proc p
  LEFT JOIN LATERAL unnest(p.proargtypes) WITH ORDINALITY AS t(typ, ord) ON true
 WHERE p.pronamespace = 'payext'::regnamespace
   AND p.prorettype <> 'trigger'::regtype
   AND p.proname NOT IN ('grant_capability', 'revoke_capability')
 GROUP BY p.oid, p.proname, p.prokind;

CREATE TEMP TABLE probe_result (name text, call text, sqlstate text);

DO $$
DECLARE
  f record;
  i int;
  v record;
  args text[];
  call text;
  state text;
BEGIN
  FOR f IN SELECT * FROM probe_target ORDER BY name, oid LOOP
    -- Calls: none varied (for functions without arguments), or one each.
    FOR i IN 0 .. cardinality(f.argtypes) LOOP
      FOR v IN SELECT pv.val FROM probe_value pv
                WHERE i > 0 AND pv.typ = f.argtypes[i]
               UNION ALL SELECT NULL WHERE i = 0 AND cardinality(f.argtypes) = 0 LOOP
        SELECT array_agg(CASE WHEN k = i THEN v.val
                              ELSE coalesce((SELECT d.val FROM probe_default d WHERE d.typ = f.argtypes[k]), 'NULL')
                         END || '::' || f.argtypes[k] ORDER BY k)
          INTO args FROM generate_series(1, cardinality(f.argtypes)) AS k;
        call := format('%s payext.%I(%s)', CASE WHEN f.prokind = 'p' THEN 'CALL' ELSE 'SELECT * FROM' END,
                       f.name, array_to_string(coalesce(args, '{}'), ', '));
        BEGIN
          EXECUTE call;
          state := '00000';
        EXCEPTION WHEN OTHERS THEN
          state := SQLSTATE;
        END;
        INSERT INTO probe_result VALUES (f.name, left(call, 200), state);
      END LOOP;
    END LOOP;
  END LOOP;
END $$;

-- Every function was called, many times over, and answered in these classes.
-- (The counts depend on what the other stories left, so only their shape
-- is checked: some calls succeed, most are refused with payext's own codes.)
SELECT count(DISTINCT r.name) = (SELECT count(DISTINCT t.name) FROM probe_target t) AS every_function,
       count(*) > 1000 AS over_a_thousand_calls,
       count(*) FILTER (WHERE sqlstate = '00000') > 0 AS some_succeed,
       count(*) FILTER (WHERE sqlstate LIKE 'PY%') > count(*) / 2 AS mostly_payext_refusals
  FROM probe_result r;
-- No call ended in an internal error or in a class of its own.
SELECT name, call, sqlstate FROM probe_result
 WHERE sqlstate = 'XX000'
    OR NOT (sqlstate = '00000' OR sqlstate LIKE 'PY%' OR sqlstate LIKE '22%'
            OR sqlstate LIKE '23%' OR sqlstate LIKE '42%')
 ORDER BY name, call;
-- The ledger is still sound, and this session still runs.
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
SELECT 'still up' AS server;
