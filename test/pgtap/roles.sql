-- roles.sql: the privilege model (docs/security.md),
-- enforced by PostgreSQL and tested role by role with SET ROLE.
--
-- Roles (made here, dropped again by the ROLLBACK):
--   r_app      capability app          r_shop   merchant, mapped to shop A
--   r_analyst  capability analyst      r_shop2  merchant, mapped to shop B
--   r_admin    capability admin        r_nobody nothing at all
--   r_both     app + merchant (A): for revoke_capability
--   r_till     a member of r_shop (mappings are inherited)
--
-- Proves:
--   - every SECURITY DEFINER function has proconfig exactly
--     search_path=pg_catalog, payext, pg_temp (the five code functions also
--     enable_seqscan=off); no key table is dumped or
--     read by a view; payext.capability names only real objects and never a
--     key, a grant function, charge/refund, pseudonym() or the internal checks;
--   - the matrix: for each role, what the catalogs say it may use
--     (has_function/table/sequence/schema_privilege over every object of
--     schema payext) is set_eq to payext.capability for its capabilities plus
--     the documented PUBLIC set; then every function and procedure is
--     actually called (with NULLs) and every relation read, inserted into,
--     updated, deleted from and truncated as each role: 42501 exactly where
--     the role has no capability, never where it has;
--   - app: wallets, codes, interactions, consent, vehicles and parking work;
--     balance() and withdraw() of a merchant account are 42501; no table;
--   - merchant: merchant_charge/refund/settle and payment_status work for its
--     own account and are 42501 for the other merchant (and for a wallet or
--     a missing id), also with crafted arguments; balance() of the other
--     merchant (and of wallets) is 42501; merchant_transfers,
--     merchant_interactions and merchant_associations show exactly its own
--     rows and are 42501 for the other merchant; the tables themselves
--     (transfer, interaction, association_state, payment, refund, account,
--     payment_code) are 42501, EXPLAIN ANALYZE included, so no plan counts
--     another merchant's or a customer's rows; unmapping takes it away; a
--     member of the merchant role inherits the mapping, a NOINHERIT member
--     only after SET ROLE;
--   - analyst: pseudonyms are 32 hex digits, HMAC-keyed (not md5/sha256 of
--     the id), stable across calls, distinct per consumer, never a social id,
--     and agree with payext.pseudonym(); pseudonym(), consumer_merchant,
--     interaction, account are 42501;
--   - admin: its functions work, it sees every transfer, it cannot read keys,
--     grant capabilities or charge;
--   - nobody but the superuser reads signing_key or pseudonym_key (42501);
--   - grant_capability: PY006 for an unknown capability, PY001 for NULL,
--     idempotent, safe with a role name full of quotes; revoke_capability
--     takes a capability back (42501 afterwards) but keeps what another
--     capability of the same role still needs, and refuses what
--     grant_capability refuses (PY006, PY001); unmap_merchant_role refuses
--     NULL (PY001) and a non-merchant (PY111) as map_merchant_role does;
--   - the system accounts' balance (the platform's float) is for admins:
--     the app gets 42501;
--   - search_path hijack: r_app makes schema evil with look-alikes (=, <>
--     operators, lower, upper, now, length, format, pg_has_role, date_trunc,
--     gen_random_uuid, views account, transfer, signing_key, pseudonym_key,
--     merchant_role, capability_grant, and a temporary view account), shown
--     live by a control, then with search_path = evil, pg_catalog, public
--     every SECURITY DEFINER function the roles may call is called; the
--     results are right and the look-alikes' log stays empty;
--   - injection probes: quotes, semicolons, --, /*, backslashes, dollar
--     quotes, format() directives and "'); DROP TABLE payext.account; --" in
--     every text argument are stored verbatim (or refused with PY0xx-PY4xx);
--     afterwards every relation of payext still exists and verify_ledger()
--     is true throughout.
-- Everything runs in one transaction that is rolled back.
BEGIN;
SELECT plan(232);
SET LOCAL TIME ZONE 'UTC';
SET LOCAL client_min_messages = warning;

---------------------------------------------------------------------------
-- Helpers (superuser, pg_temp)
---------------------------------------------------------------------------

-- Runs q as role r and throws its effects away: 'ok' or the SQLSTATE.
CREATE FUNCTION pg_temp.state_as(r text, q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    EXECUTE q;
    RAISE EXCEPTION USING ERRCODE = 'TAPOK', MESSAGE = 'undo';
  EXCEPTION WHEN OTHERS THEN
    RETURN CASE WHEN SQLSTATE = 'TAPOK' THEN 'ok' ELSE SQLSTATE END;
  END;
END
$$;

-- Runs q as role r and keeps its effects: the first column of its first
-- row as text ('<null>' for NULL), or 'ERROR <sqlstate> <message>'.
CREATE FUNCTION pg_temp.run_as(r text, q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  res text;
BEGIN
  EXECUTE format('SET ROLE %I', r);
  BEGIN
    EXECUTE q INTO res;
    res := coalesce(res, '<null>');
  EXCEPTION WHEN OTHERS THEN
    res := 'ERROR ' || SQLSTATE || ' ' || SQLERRM;
  END;
  RESET ROLE;
  RETURN res;
END
$$;

-- As the current role, 'ok' or the SQLSTATE of q; no operator, no function
-- call in its body, so that it is safe under a hijacked search_path.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END
$$;

-- Evaluates a boolean query (for the injection checks).
CREATE FUNCTION pg_temp.eval_bool(q text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  b boolean;
BEGIN
  EXECUTE q INTO b;
  RETURN coalesce(b, false);
EXCEPTION WHEN OTHERS THEN
  RETURN false;
END
$$;

-- A call of a payext function or procedure with a NULL for every argument.
CREATE FUNCTION pg_temp.null_call(f oid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE p.prokind WHEN 'p' THEN 'CALL ' ELSE 'SELECT ' END
         || format('%I.%I(', n.nspname, p.proname)
         -- (SELECT NULL::t), not NULL::t: a strict function of constant NULLs is
         -- folded away by the planner before its EXECUTE privilege is checked.
         || coalesce((SELECT string_agg(CASE p.prokind WHEN 'p' THEN format('NULL::%s', format_type(a.t, NULL))
                                                       ELSE format('(SELECT NULL::%s)', format_type(a.t, NULL)) END,
                                        ', ' ORDER BY a.i)
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)), '')
         || ')'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.oid = f
$$;

-- The relations of payext now (compared at the end).
CREATE TEMP TABLE tap_rel_before AS
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S');

---------------------------------------------------------------------------
-- Roles and data
---------------------------------------------------------------------------

CREATE ROLE r_app NOLOGIN;
CREATE ROLE r_shop NOLOGIN;
CREATE ROLE r_shop2 NOLOGIN;
CREATE ROLE r_analyst NOLOGIN;
CREATE ROLE r_admin NOLOGIN;
CREATE ROLE r_nobody NOLOGIN;
CREATE ROLE r_both NOLOGIN;
CREATE ROLE r_till NOLOGIN IN ROLE r_shop;

SELECT payext.open_wallet('tap_alice') AS w_alice \gset
SELECT payext.open_wallet('tap_bob') AS w_bob \gset
SELECT payext.open_wallet('tap_carol') AS w_carol \gset
SELECT payext.open_wallet('tap_erin') AS w_erin \gset
SELECT payext.open_merchant('gh_tap_a', 'Shop A') AS m_a \gset
SELECT payext.open_merchant('gh_tap_b', 'Shop B') AS m_b \gset
SELECT payext.top_up(:w_alice, 1000000, 'tap-top-alice') AS t_top \gset
SELECT payext.top_up(:w_bob, 100000, 'tap-top-bob') IS NOT NULL AS x \gset
SELECT payext.top_up(:w_carol, 50000, 'tap-top-carol') IS NOT NULL AS x \gset
SELECT payext.top_up(:w_erin, 1000, 'tap-top-erin') IS NOT NULL AS x \gset
SELECT id AS sys_cny FROM payext.account WHERE kind = 'system' AND currency = 'CNY' \gset
-- Charges of both shops, made by the DBA.
SELECT payext.charge(:m_a, payext.request_payment(:w_alice), 1000, 'tap-a-1') AS t_a1 \gset
SELECT payext.charge(:m_a, payext.request_payment(:w_bob), 500, 'tap-a-2') AS t_a2 \gset
SELECT payext.charge(:m_b, payext.request_payment(:w_alice), 700, 'tap-b-1') AS t_b1 \gset
SELECT payext.charge(:m_b, payext.request_payment(:w_carol), 300, 'tap-b-2') AS t_b2 \gset
SELECT payext.refund(:m_b, 'tap-b-1', 100, 'tap-b-r1') AS t_br1 \gset
SELECT payext.record_interaction('tap_carol', 'gh_tap_a', 'visit') IS NOT NULL AS x \gset
SELECT payext.record_interaction('tap_dave', 'gh_tap_b', 'visit') IS NOT NULL AS x \gset
SELECT payext.associate('tap_alice', 'gh_tap_a') IS NULL AS x \gset
SELECT payext.associate('tap_bob', 'gh_tap_b') IS NULL AS x \gset
SELECT payext.opt_out('tap_carol', 'gh_tap_b') IS NULL AS x \gset
SELECT payext.create_parking_lot(:m_a, 'Tap Lot', 'UTC', 0, 60, 100) AS lot \gset
-- A code of B's customer, for A's shop to try to charge as B.
SELECT payext.request_payment(:w_carol) AS code_carol \gset

SELECT payext.grant_capability('app', 'r_app') IS NULL AS x \gset
SELECT payext.grant_capability('merchant', 'r_shop') IS NULL AS x \gset
SELECT payext.grant_capability('merchant', 'r_shop2') IS NULL AS x \gset
SELECT payext.grant_capability('analyst', 'r_analyst') IS NULL AS x \gset
SELECT payext.grant_capability('admin', 'r_admin') IS NULL AS x \gset
SELECT payext.map_merchant_role('r_shop', :m_a) IS NULL AS x \gset
SELECT payext.map_merchant_role('r_shop2', :m_b) IS NULL AS x \gset

CREATE TEMP TABLE tap_role (r name PRIMARY KEY, caps text[] NOT NULL);
INSERT INTO tap_role VALUES ('r_app', '{app}'), ('r_shop', '{merchant}'), ('r_shop2', '{merchant}'),
  ('r_analyst', '{analyst}'), ('r_admin', '{admin}'), ('r_nobody', '{}');

---------------------------------------------------------------------------
-- Static checks
---------------------------------------------------------------------------

SELECT is_empty($$
  SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p
   WHERE p.pronamespace = 'payext'::regnamespace AND p.prosecdef
     AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, payext, pg_temp'] || CASE WHEN p.proname IN ('request_payment', 'cancel_payment_code', 'charge', 'charge_claimed', 'charge_many', 'refund', 'reverse_order', 'authorize', 'capture_hold', 'void_hold') THEN ARRAY['enable_seqscan=off'] ELSE '{}'::text[] END
$$, 'every SECURITY DEFINER function of payext has proconfig {search_path=pg_catalog, payext, pg_temp} (and the code functions enable_seqscan=off)');
SELECT cmp_ok((SELECT count(*)::int FROM pg_proc p
                WHERE p.pronamespace = 'payext'::regnamespace AND p.prosecdef), '>=', 45,
              '(and there are many of them: the check above looks at the right functions)');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'payext'::regnamespace AND p.prolang IN
         (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql'))
     AND p.proconfig IS NULL
$$, 'no SQL or PL/pgSQL function of payext runs under the caller''s search_path');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_extension e, unnest(e.extconfig) c
                       WHERE e.extname = 'payext'
                         AND c IN ('payext.signing_key'::regclass, 'payext.pseudonym_key'::regclass)),
          'signing_key and pseudonym_key are not registered with pg_extension_config_dump');
SELECT is_empty($$
  SELECT DISTINCT r.ev_class::regclass::text FROM pg_rewrite r JOIN pg_depend d
      ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
   WHERE d.refobjid IN ('payext.signing_key'::regclass, 'payext.pseudonym_key'::regclass)
$$, 'no view reads signing_key or pseudonym_key');
SELECT is_empty($$
  SELECT k.capability, k.object FROM payext.capability k
   WHERE regexp_replace(k.object, '\(.*', '') IN (
           'TABLE payext.signing_key', 'TABLE payext.pseudonym_key', 'TABLE payext.capability',
           'TABLE payext.capability_grant', 'TABLE payext.merchant_role', 'TABLE payext.consumer_merchant',
           'FUNCTION payext.grant_capability', 'FUNCTION payext.revoke_capability',
           'FUNCTION payext.charge', 'FUNCTION payext.refund', 'FUNCTION payext.pseudonym',
           'FUNCTION payext.may_act_for', 'FUNCTION payext.require_merchant',
           'FUNCTION payext.verify_journal', 'FUNCTION payext.verify_payments', 'FUNCTION payext.verify_parking',
           'FUNCTION payext.interaction_recorded', 'FUNCTION payext.journal_guard')
$$, 'no capability grants a key, the grant functions, bare charge/refund, pseudonym(), the internal checks or the role tables');

---------------------------------------------------------------------------
-- The matrix: catalogs against payext.capability
---------------------------------------------------------------------------

-- What PUBLIC has, as documented in the README.
CREATE TEMP TABLE tap_public_priv (priv text);
INSERT INTO tap_public_priv VALUES ('USAGE SCHEMA payext');
INSERT INTO tap_public_priv
SELECT 'EXECUTE ' || f::regprocedure::text FROM unnest(ARRAY[
  'payext.format_amount(bigint, text)', 'payext.currencies()', 'payext.normalize_plate(text)',
  'payext.calling_role()', 'payext.caller_has_capability(text)', 'payext.acting_accounts()',
  'payext.acting_public_service_ids()', 'payext.current_partition()', 'payext.partition_of(bigint)',
  'payext.code_partition(text)', 'payext.owner_hash(text)', 'payext.owner_partition(text, integer)',
  'payext.relation_rows(text)']) f;

CREATE TEMP VIEW tap_expected AS
SELECT t.r, CASE WHEN k.privilege = 'EXECUTE'
                 THEN 'EXECUTE ' || regexp_replace(k.object, '^(FUNCTION|PROCEDURE) ', '')::regprocedure::text
                 ELSE k.privilege || ' ' || regexp_replace(k.object, '^TABLE ', '')::regclass::text END AS priv
  FROM tap_role t JOIN payext.capability k ON k.capability = ANY (t.caps)
UNION
SELECT t.r, p.priv FROM tap_role t CROSS JOIN tap_public_priv p;

CREATE TEMP VIEW tap_actual AS
SELECT t.r, 'EXECUTE ' || p.oid::regprocedure::text AS priv
  FROM tap_role t, pg_proc p
 WHERE p.pronamespace = 'payext'::regnamespace AND has_function_privilege(t.r, p.oid, 'EXECUTE')
UNION
SELECT t.r, x.priv || ' ' || c.oid::regclass::text
  FROM tap_role t, pg_class c,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) x(priv)
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_table_privilege(t.r, c.oid, x.priv)
UNION
SELECT t.r, 'COLUMN ' || x.priv || ' ' || c.oid::regclass::text
  FROM tap_role t, pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) x(priv)
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_any_column_privilege(t.r, c.oid, x.priv) AND NOT has_table_privilege(t.r, c.oid, x.priv)
UNION
SELECT t.r, x.priv || ' SEQUENCE ' || c.oid::regclass::text
  FROM tap_role t, pg_class c, unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) x(priv)
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind = 'S'
   AND has_sequence_privilege(t.r, c.oid, x.priv)
UNION
SELECT t.r, x.priv || ' SCHEMA payext'
  FROM tap_role t, unnest(ARRAY['USAGE', 'CREATE']) x(priv)
 WHERE has_schema_privilege(t.r, 'payext', x.priv);

SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_app'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_app'$$,
              'r_app holds exactly capability app (+ PUBLIC), by the catalogs');
SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_shop'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_shop'$$,
              'r_shop holds exactly capability merchant (+ PUBLIC), by the catalogs');
SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_shop2'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_shop2'$$,
              'r_shop2 holds exactly capability merchant (+ PUBLIC), by the catalogs');
SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_analyst'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_analyst'$$,
              'r_analyst holds exactly capability analyst (+ PUBLIC), by the catalogs');
SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_admin'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_admin'$$,
              'r_admin holds exactly capability admin (+ PUBLIC), by the catalogs');
SELECT set_eq($$SELECT priv FROM tap_actual WHERE r = 'r_nobody'$$,
              $$SELECT priv FROM tap_expected WHERE r = 'r_nobody'$$,
              'r_nobody holds exactly what PUBLIC holds, by the catalogs');

-- Every function and procedure, called with NULLs as each role.
CREATE TEMP TABLE tap_calls AS
SELECT t.r, p.oid::regprocedure::text AS fn,
       pg_temp.state_as(t.r, pg_temp.null_call(p.oid)) AS state,
       EXISTS (SELECT 1 FROM tap_expected e
                WHERE e.r = t.r AND e.priv = 'EXECUTE ' || p.oid::regprocedure::text) AS allowed
  FROM tap_role t, pg_proc p
 WHERE p.pronamespace = 'payext'::regnamespace;

SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_app' AND (state = '42501') = allowed$$,
                'r_app: every payext function runs (or refuses its NULLs) iff app has it, else 42501');
SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_shop' AND (state = '42501') = allowed$$,
                'r_shop: every payext function runs (or refuses its NULLs) iff merchant has it, else 42501');
SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_shop2' AND (state = '42501') = allowed$$,
                'r_shop2: every payext function runs (or refuses its NULLs) iff merchant has it, else 42501');
SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_analyst' AND (state = '42501') = allowed$$,
                'r_analyst: every payext function runs (or refuses its NULLs) iff analyst has it, else 42501');
SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_admin' AND (state = '42501') = allowed$$,
                'r_admin: every payext function runs (or refuses its NULLs) iff admin has it, else 42501');
SELECT is_empty($$SELECT fn, state, allowed FROM tap_calls WHERE r = 'r_nobody' AND (state = '42501') = allowed$$,
                'r_nobody: every payext function but PUBLIC''s is 42501');
SELECT is_empty($$SELECT r, fn, state FROM tap_calls WHERE allowed AND state !~ '^(ok|PY[0-9]{3})$'$$,
                'a function a role may call answers NULLs with a result or a PY code, never XX000 or another class');

-- Every relation, read and written as each role.
CREATE TEMP TABLE tap_rel_ops AS
SELECT c.oid::regclass::text AS rel, c.relkind, 'SELECT' AS op,
       format('SELECT FROM %s LIMIT 1', c.oid::regclass) AS q
  FROM pg_class c WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
UNION ALL
SELECT c.oid::regclass::text, c.relkind, o.op,
       CASE o.op WHEN 'INSERT' THEN format('INSERT INTO %s DEFAULT VALUES', c.oid::regclass)
                 WHEN 'UPDATE' THEN format('UPDATE %s SET %I = %I WHERE false', c.oid::regclass, a.attname, a.attname)
                 WHEN 'DELETE' THEN format('DELETE FROM %s WHERE false', c.oid::regclass)
                 ELSE format('TRUNCATE %s', c.oid::regclass) END
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1,
       unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) o(op)
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT c.oid::regclass::text, c.relkind, o.op,
       CASE o.op WHEN 'NEXTVAL' THEN format('SELECT nextval(%L)', c.oid::regclass::text)
                 ELSE format('SELECT last_value FROM %s', c.oid::regclass) END
  FROM pg_class c, unnest(ARRAY['NEXTVAL', 'READ']) o(op)
 WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind = 'S';

CREATE TEMP TABLE tap_rels AS
SELECT t.r, o.rel, o.op, pg_temp.state_as(t.r, o.q) AS state,
       o.op = 'SELECT' AND EXISTS (SELECT 1 FROM tap_expected e WHERE e.r = t.r AND e.priv = 'SELECT ' || o.rel) AS allowed
  FROM tap_role t, tap_rel_ops o;

SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_app' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_app: no relation of payext can be read or written (42501)');
SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_shop' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_shop: reads transfer, interaction, association_state; everything else is 42501');
SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_shop2' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_shop2: reads transfer, interaction, association_state; everything else is 42501');
SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_analyst' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_analyst: reads the three analyst views; everything else is 42501');
SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_admin' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_admin: reads the ledger''s tables; writes nothing directly; everything else is 42501');
SELECT is_empty($$SELECT rel, op, state FROM tap_rels WHERE r = 'r_nobody' AND state <> CASE WHEN allowed THEN 'ok' ELSE '42501' END$$,
                'r_nobody: no relation of payext can be read or written (42501)');
SELECT cmp_ok((SELECT count(*)::int FROM tap_rels WHERE allowed AND state = 'ok'), '=',
              (SELECT count(*)::int FROM tap_expected WHERE priv LIKE 'SELECT %'),
              '(the relation matrix did read every granted relation)');

---------------------------------------------------------------------------
-- Secrets: only the superuser reads the keys
---------------------------------------------------------------------------

SELECT is_empty($$
  SELECT t.r, k.tbl, pg_temp.state_as(t.r, 'SELECT * FROM ' || k.tbl) AS state
    FROM tap_role t, (VALUES ('payext.signing_key'), ('payext.pseudonym_key')) k(tbl)
   WHERE pg_temp.state_as(t.r, 'SELECT * FROM ' || k.tbl) <> '42501'
$$, 'no role but the superuser reads signing_key or pseudonym_key');
SET LOCAL ROLE r_admin;
SELECT throws_ok('SELECT secret FROM payext.signing_key', '42501', NULL, 'admin: signing_key is 42501');
SELECT throws_ok('SELECT secret FROM payext.pseudonym_key', '42501', NULL, 'admin: pseudonym_key is 42501');
RESET ROLE;
SET LOCAL ROLE r_shop;
SELECT throws_ok('SELECT secret FROM payext.signing_key', '42501', NULL, 'merchant: signing_key is 42501');
SELECT throws_ok('SELECT secret FROM payext.pseudonym_key', '42501', NULL, 'merchant: pseudonym_key is 42501');
RESET ROLE;
SET LOCAL ROLE r_analyst;
SELECT throws_ok('SELECT secret FROM payext.pseudonym_key', '42501', NULL, 'analyst: pseudonym_key is 42501');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM payext.pseudonym_key), 1, 'the superuser reads the one pseudonym key');

---------------------------------------------------------------------------
-- app
---------------------------------------------------------------------------

SET LOCAL ROLE r_app;
SELECT is(payext.open_wallet('tap_alice'), :w_alice::bigint, 'app: open_wallet finds an existing wallet');
SELECT lives_ok('SELECT payext.open_wallet(''tap_frank'')', 'app: open_wallet opens a new wallet');
SELECT is(payext.balance(:w_alice), 1000000 - 1000 - 700 + 100::bigint, 'app: balance of a wallet');
SELECT lives_ok(format('SELECT payext.top_up(%s, 250, ''tap-app-top'')', :w_carol), 'app: top_up a wallet');
SELECT lives_ok(format('SELECT payext.withdraw(%s, 50, ''tap-app-wd'')', :w_carol), 'app: withdraw from a wallet');
SELECT is(payext.balance(:w_carol), 50000 - 300 + 250 - 50::bigint, 'app: the wallet''s balance moved');
SELECT throws_ok(format('SELECT payext.balance(%s)', :m_a), '42501', NULL,
                 'app: balance() of a merchant account is 42501');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, ''tap-app-steal'')', :m_a), '42501', NULL,
                 'app: withdraw() from a merchant account is 42501');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, ''tap-app-steal-b'')', :m_b), '42501', NULL,
                 'app: withdraw() from the other merchant account is 42501 too');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, ''tap-app-sys'')', :sys_cny), 'PY111', NULL,
                 'app: withdraw() from a system account is PY111');
SELECT throws_ok(format('SELECT payext.balance(%s)', :sys_cny), '42501', NULL,
                 'app: balance() of a system account (the platform''s float) is 42501');
SELECT lives_ok(format('SELECT payext.cancel_payment_code(payext.request_payment(%s, 100, ''30 seconds''))', :w_bob),
                'app: request_payment and cancel_payment_code');
SELECT lives_ok('SELECT payext.record_interaction(''tap_erin'', ''gh_tap_a'', ''visit'')', 'app: record_interaction');
SELECT lives_ok('SELECT payext.opt_out(''tap_erin'', ''gh_tap_a''), payext.opt_in(''tap_erin'', ''gh_tap_a'')',
                'app: opt_out and opt_in');
SELECT lives_ok('SELECT payext.bind_vehicle(''tap_erin'', ''TP-001'', false)', 'app: bind_vehicle');
SELECT lives_ok(format('SELECT payext.vehicle_entered(%s, ''TP001'', now() - interval ''3 hours'')', :lot),
                'app: vehicle_entered');
SELECT is(payext.vehicle_exited(:lot, 'TP001', now() - interval '1 hour'), 200::bigint, 'app: vehicle_exited returns the fee');
SELECT is(payext.parking_fee(:lot, '2026-01-01 10:00Z', '2026-01-01 12:00Z'), 200::bigint, 'app: parking_fee');
SELECT is((SELECT amount_due FROM payext.parking_service_info('tap_erin', now())), 200::bigint,
          'app: parking_service_info shows what is due');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 200)',
                       (SELECT stay FROM payext.parking_service_info('tap_erin', now())), :w_erin),
                'app: pay_parking');
SELECT lives_ok('SELECT payext.unbind_vehicle(''tap_erin'', ''TP-001'')', 'app: unbind_vehicle');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 10, ''tap-app-charge'')', :m_a, :'code_carol'), '42501', NULL,
                 'app: charge() is 42501 (only merchants charge)');
SELECT throws_ok(format('CALL payext.merchant_charge(%s, %L, 10, ''tap-app-charge'')', :m_a, :'code_carol'), '42501', NULL,
                 'app: merchant_charge is 42501');
SELECT throws_ok(format('SELECT payext.transfer(%s, %s, 1)', :m_a, :w_carol), '42501', NULL,
                 'app: transfer() is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.account', '42501', NULL, 'app: account is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.transfer', '42501', NULL, 'app: transfer is 42501');
SELECT is(payext.caller_has_capability('app'), true, 'app: caller_has_capability(app) is true for itself');
SELECT is(payext.caller_has_capability('admin'), false, 'app: caller_has_capability(admin) is false');
SELECT is(payext.acting_accounts(), '{}'::bigint[], 'app: acts for no merchant account');
RESET ROLE;

---------------------------------------------------------------------------
-- merchant: its own account only
---------------------------------------------------------------------------

-- The merchant procedures as a role, returning their INOUT results.
CREATE FUNCTION pg_temp.m_charge(m bigint, code text, amount bigint, ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE t bigint;
BEGIN
  CALL payext.merchant_charge(m, code, amount, ref, t);
  RETURN t;
END
$$;
CREATE FUNCTION pg_temp.m_refund(m bigint, ref text, amount bigint, rref text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE t bigint;
BEGIN
  CALL payext.merchant_refund(m, ref, amount, rref, t);
  RETURN t;
END
$$;
CREATE FUNCTION pg_temp.m_settle(m bigint, ref text,
  OUT amount bigint, OUT transfer_id bigint, OUT charges bigint, OUT charged_amount bigint,
  OUT refunds bigint, OUT refunded_amount bigint)
LANGUAGE plpgsql AS $$
BEGIN
  CALL payext.merchant_settle(m, ref, amount, transfer_id, charges, charged_amount, refunds, refunded_amount);
END
$$;

SELECT payext.request_payment(:w_alice) AS code_m1 \gset
SELECT payext.request_payment(:w_alice) AS code_m2 \gset
SELECT payext.balance(:m_a) AS bal_a0 \gset
SELECT payext.balance(:m_b) AS bal_b0 \gset
SELECT count(*) AS charges_a_today FROM payext.payment WHERE merchant = :m_a \gset
SELECT coalesce(sum(amount), 0) AS charged_a_today FROM payext.payment WHERE merchant = :m_a \gset

SET LOCAL ROLE r_shop;
SELECT throws_ok(format('CALL payext.merchant_charge(%s, %L, 400, ''tap-m-steal'')', :m_b, :'code_m1'), '42501', NULL,
                 'merchant: merchant_charge as the other merchant is 42501');
SELECT throws_ok(format('CALL payext.merchant_charge(%s, %L, 400, ''tap-m-steal'')', :w_alice, :'code_m1'), '42501', NULL,
                 'merchant: merchant_charge with a wallet as the merchant is 42501');
SELECT throws_ok(format('CALL payext.merchant_charge(%s, %L, 400, ''tap-m-steal'')', -1, :'code_m1'), '42501', NULL,
                 'merchant: merchant_charge with an id that does not exist is 42501');
SELECT throws_ok(format('CALL payext.merchant_refund(%s, ''tap-b-2'', 1, ''tap-m-steal-r'')', :m_b), '42501', NULL,
                 'merchant: merchant_refund of the other merchant''s order is 42501');
SELECT throws_ok(format('CALL payext.merchant_settle(%s, ''tap-m-steal-s'')', :m_b), '42501', NULL,
                 'merchant: merchant_settle of the other merchant is 42501');
SELECT throws_ok(format('SELECT * FROM payext.payment_status(%s, ''tap-b-1'')', :m_b), '42501', NULL,
                 'merchant: payment_status of the other merchant''s order is 42501');
SELECT throws_ok(format('SELECT * FROM payext.payment_status(%s, ''tap-no-such-order'')', :m_b), '42501', NULL,
                 'merchant: payment_status of the other merchant is 42501 even for an order that does not exist');
SELECT throws_ok(format('SELECT payext.balance(%s)', :m_b), '42501', NULL,
                 'merchant: balance() of the other merchant is 42501');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, ''tap-m-steal-w'')', :m_b), '42501', NULL,
                 'merchant: withdraw() of the other merchant is 42501');
SELECT throws_ok(format('SELECT payext.withdraw(%s, 1, ''tap-m-own-w'')', :m_a), '42501', NULL,
                 'merchant: withdraw() directly is 42501 even of its own account (it settles instead)');
SELECT throws_ok(format('SELECT payext.balance(%s)', :w_alice), '42501', NULL,
                 'merchant: balance() of a consumer''s wallet is 42501 (README: a merchant may not read wallets)');
SELECT throws_ok(format('SELECT payext.balance(%s)', :sys_cny), '42501', NULL,
                 'merchant: balance() of the system account is 42501');
-- Crafted arguments for its own account: the other's order_ref is unknown here.
SELECT throws_ok(format('CALL payext.merchant_refund(%s, ''tap-b-1'', 1, ''tap-m-cross'')', :m_a), 'PY209', NULL,
                 'merchant: refunding the other merchant''s order_ref under its own account is PY209');
SELECT throws_ok(format('SELECT * FROM payext.payment_status(%s, ''tap-b-1'')', :m_a), 'PY209', NULL,
                 'merchant: payment_status of the other''s order_ref under its own account is PY209');
-- Its own account works.
SELECT is(payext.balance(:m_a), :bal_a0::bigint, 'merchant: balance() of its own account');
SELECT cmp_ok(pg_temp.m_charge(:m_a, :'code_m1', 400, 'tap-m-1'), '>', 0::bigint,
              'merchant: merchant_charge for its own account returns the transfer id');
SELECT is(pg_temp.m_charge(:m_a, :'code_m1', 400, 'tap-m-1'),
          (SELECT p.transfer_id FROM payext.payment_status(:m_a, 'tap-m-1') p),
          'merchant: merchant_charge is idempotent on the order_ref');
SELECT cmp_ok(pg_temp.m_refund(:m_a, 'tap-m-1', 150, 'tap-m-r1'), '>', 0::bigint,
              'merchant: merchant_refund of its own order');
SELECT results_eq(format('SELECT amount, refunded_amount, state FROM payext.payment_status(%s, ''tap-m-1'')', :m_a),
                  $$VALUES (400::bigint, 150::bigint, 'partially_refunded'::text)$$,
                  'merchant: payment_status of its own order');
SELECT is(payext.balance(:m_a), :bal_a0 + 400 - 150::bigint, 'merchant: its balance moved');
SELECT results_eq(format('SELECT amount, transfer_id IS NOT NULL, charges, charged_amount, refunds, refunded_amount FROM pg_temp.m_settle(%s, ''tap-bank-a-1'')', :m_a),
                  format('VALUES (%s::bigint, true, %s::bigint, %s::bigint, 1::bigint, 150::bigint)',
                         :bal_a0 + 400 - 150, :charges_a_today + 1, :charged_a_today + 400),
                  'merchant: merchant_settle pays the whole balance out and summarises the day');
SELECT is(payext.balance(:m_a), 0::bigint, 'merchant: after settling, its balance is 0');
SELECT results_eq(format('SELECT amount, transfer_id IS NOT NULL FROM pg_temp.m_settle(%s, ''tap-bank-a-1'')', :m_a),
                  format('VALUES (%s::bigint, true)', :bal_a0 + 400 - 150),
                  'merchant: merchant_settle is idempotent on bank_ref');
RESET ROLE;
-- B's settlement, then A tries B's bank_ref: nothing of B's comes back.
SET LOCAL ROLE r_shop2;
SELECT results_eq(format('SELECT amount FROM pg_temp.m_settle(%s, ''tap-bank-b-1'')', :m_b),
                  format('VALUES (%s::bigint)', :bal_b0), 'merchant 2: settles its own account');
RESET ROLE;
SET LOCAL ROLE r_shop;
SELECT results_eq(format('SELECT amount, transfer_id FROM pg_temp.m_settle(%s, ''tap-bank-b-1'')', :m_a),
                  $$VALUES (0::bigint, NULL::bigint)$$,
                  'merchant: settling under the other merchant''s bank_ref shows nothing of the other''s withdrawal');
RESET ROLE;
SELECT is(payext.balance(:m_b), 0::bigint, '(merchant 2''s account was settled by merchant 2 only)');
SELECT is((SELECT state FROM payext.payment_code c WHERE c.serial =
             (SELECT code_serial FROM payext.payment p WHERE p.merchant = :m_a AND p.order_ref = 'tap-m-1')), 'used',
          '(the code that paid is used)');

-- What A's role reads: its own rows, through functions; the tables are the
-- admins'.
CREATE TEMP TABLE tap_rls_expect AS
SELECT 'transfer' AS tbl, t.id::text AS k FROM payext.transfer t WHERE :m_a IN (t.debit_account, t.credit_account)
UNION ALL
SELECT 'interaction', i.id::text FROM payext.interaction i WHERE i.public_service_id = 'gh_tap_a'
UNION ALL
SELECT 'association_state', s.consumer FROM payext.association_state s WHERE s.public_service_id = 'gh_tap_a';
GRANT SELECT ON tap_rls_expect TO PUBLIC;
SELECT cmp_ok((SELECT count(*)::int FROM payext.transfer), '>',
              (SELECT count(*)::int FROM tap_rls_expect WHERE tbl = 'transfer'),
              '(the superuser sees more transfers than A''s: the checks below can fail)');
-- Every row count in a query's EXPLAIN ANALYZE, wherever it stands.
CREATE FUNCTION pg_temp.rows_in_plan(q text) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) ' || q INTO plan;
  RETURN (SELECT coalesce(sum(v::numeric), 0)
            FROM jsonb_path_query(plan, 'lax $.** ? (@.type() == "object")') AS n(node),
                 LATERAL (SELECT node -> 'Actual Rows' UNION ALL SELECT node -> 'Rows Removed by Filter'
                          UNION ALL SELECT node -> 'Rows Removed by Index Recheck') AS c(v)
           WHERE v IS NOT NULL);
END
$$;

SET LOCAL ROLE r_shop;
SELECT set_eq(format('SELECT transfer_id::text FROM payext.merchant_transfers(%s)', :m_a),
              $$SELECT k FROM tap_rls_expect WHERE tbl = 'transfer'$$,
              'merchant: merchant_transfers shows exactly the rows of its own account');
SELECT is_empty(format('SELECT * FROM payext.merchant_transfers(%s) WHERE amount = 0 OR currency IS NULL', :m_a),
                'merchant: ... signed, with their currency');
SELECT set_eq(format('SELECT interaction_id::text FROM payext.merchant_interactions(%s)', :m_a),
              $$SELECT k FROM tap_rls_expect WHERE tbl = 'interaction'$$,
              'merchant: merchant_interactions shows exactly its own public-service id''s rows');
SELECT set_eq(format('SELECT consumer FROM payext.merchant_associations(%s)', :m_a),
              $$SELECT k FROM tap_rls_expect WHERE tbl = 'association_state'$$,
              'merchant: merchant_associations shows exactly its own rows');
SELECT throws_ok(format('SELECT * FROM payext.merchant_transfers(%s)', :m_b), '42501', NULL,
                 'merchant: the other merchant''s transfers are 42501');
SELECT throws_ok(format('SELECT * FROM payext.merchant_interactions(%s)', :m_b), '42501', NULL,
                 'merchant: the other merchant''s interactions are 42501');
SELECT throws_ok(format('SELECT * FROM payext.merchant_associations(%s)', :m_b), '42501', NULL,
                 'merchant: the other merchant''s associations are 42501');
SELECT throws_ok('SELECT count(*) FROM payext.transfer', '42501', NULL, 'merchant: the journal itself is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.interaction', '42501', NULL, 'merchant: interaction is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.association_state', '42501', NULL, 'merchant: association_state is 42501');
SELECT throws_ok('ALTER TABLE payext.transfer DISABLE ROW LEVEL SECURITY', '42501', NULL,
                 'merchant: cannot disable row-level security');
SELECT throws_ok('CREATE POLICY tap_all ON payext.transfer FOR SELECT USING (true)', '42501', NULL,
                 'merchant: cannot add a policy');
SELECT throws_ok('SELECT count(*) FROM payext.payment', '42501', NULL, 'merchant: payment is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.refund', '42501', NULL, 'merchant: refund is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.account', '42501', NULL, 'merchant: account is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.payment_code', '42501', NULL, 'merchant: payment_code is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.consumer_merchant', '42501', NULL, 'merchant: consumer_merchant is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.merchant_role', '42501', NULL, 'merchant: merchant_role is 42501');
SELECT is(payext.acting_accounts(), ARRAY[:m_a]::bigint[], 'merchant: acting_accounts() is its own account');
RESET ROLE;

-- Nothing of another merchant, nor of a customer, in a plan: the merchant
-- role cannot run one on the tables (EXPLAIN ANALYZE included), and the
-- plan of its own function counts its own rows only.
SET LOCAL ROLE r_shop;
SET LOCAL enable_seqscan = off;
SELECT throws_ok(format('EXPLAIN (ANALYZE) SELECT * FROM payext.transfer WHERE credit_account = %s', :m_b),
                 '42501', NULL, 'merchant: EXPLAIN ANALYZE of the other merchant''s transfers is 42501');
SELECT throws_ok(format('EXPLAIN (ANALYZE) SELECT * FROM payext.transfer WHERE debit_account = %s', :w_alice),
                 '42501', NULL, 'merchant: EXPLAIN ANALYZE of a customer''s payments is 42501');
SELECT throws_ok($$EXPLAIN (ANALYZE) SELECT * FROM payext.interaction WHERE public_service_id = 'gh_tap_b'$$,
                 '42501', NULL, 'merchant: EXPLAIN ANALYZE of the other merchant''s interactions is 42501');
SELECT is(pg_temp.rows_in_plan(format('SELECT * FROM payext.merchant_transfers(%s) WHERE reference IS NOT NULL OR true', :m_a)),
          (SELECT count(*) FROM tap_rls_expect WHERE tbl = 'transfer')::numeric,
          'merchant: the plan of merchant_transfers counts its own rows and nothing else');
RESET enable_seqscan;
RESET ROLE;

SET LOCAL ROLE r_shop2;
SELECT isnt_empty(format('SELECT * FROM payext.merchant_transfers(%s)', :m_b), 'merchant 2: sees its own transfers');
SELECT isnt_empty(format('SELECT * FROM payext.merchant_associations(%s)', :m_b), 'merchant 2: sees its own associations');
RESET ROLE;

-- A member of the merchant role inherits its mapping; unmapping takes it away.
SET LOCAL ROLE r_till;
SELECT is(payext.balance(:m_a), 0::bigint, 'a member of the merchant role acts for its account');
RESET ROLE;
-- A NOINHERIT member (a pooled login) acts for the account only after SET
-- ROLE, even holding the merchant capability itself.
CREATE ROLE r_pool NOLOGIN NOINHERIT IN ROLE r_shop;
SELECT payext.grant_capability('merchant', 'r_pool') IS NULL AS x \gset
SET LOCAL ROLE r_pool;
SELECT throws_ok(format('SELECT payext.balance(%s)', :m_a), '42501', NULL,
                 'a NOINHERIT member of the merchant role does not act for its account');
SET LOCAL ROLE r_shop;
SELECT is(payext.balance(:m_a), 0::bigint, '... until it sets the role');
RESET ROLE;
SELECT payext.revoke_capability('merchant', 'r_pool') IS NULL AS x \gset
SELECT payext.unmap_merchant_role('r_shop', :m_a) IS NULL AS x \gset
SET LOCAL ROLE r_shop;
SELECT throws_ok(format('CALL payext.merchant_charge(%s, %L, 10, ''tap-m-unmapped'')', :m_a, :'code_m2'), '42501', NULL,
                 'merchant: after unmap_merchant_role, charging for that account is 42501');
SELECT throws_ok(format('SELECT * FROM payext.merchant_transfers(%s)', :m_a), '42501', NULL,
                 'merchant: after unmap_merchant_role, its transfers are 42501');
RESET ROLE;
SELECT payext.map_merchant_role('r_shop', :m_a) IS NULL AS x \gset

---------------------------------------------------------------------------
-- analyst: pseudonyms
---------------------------------------------------------------------------

SET LOCAL ROLE r_analyst;
SELECT lives_ok('SELECT * FROM payext.merchant_summary', 'analyst: merchant_summary');
SELECT lives_ok('SELECT * FROM payext.merchant_daily', 'analyst: merchant_daily');
CREATE TEMP TABLE tap_ps1 AS SELECT * FROM payext.analyst_consumer_merchant;
CREATE TEMP TABLE tap_ps2 AS SELECT * FROM payext.analyst_consumer_merchant;
CREATE TEMP TABLE tap_ps3 AS SELECT * FROM payext.consumer_merchant_pseudonymous();
SELECT throws_ok('SELECT payext.pseudonym(''tap_alice'')', '42501', NULL, 'analyst: pseudonym() is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.consumer_merchant', '42501', NULL, 'analyst: consumer_merchant is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.interaction', '42501', NULL, 'analyst: interaction is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.interaction_pair', '42501', NULL, 'analyst: interaction_pair is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.account', '42501', NULL, 'analyst: account is 42501');
SELECT throws_ok('SELECT count(*) FROM payext.association', '42501', NULL, 'analyst: association is 42501');
RESET ROLE;
SELECT hasnt_column('payext', 'analyst_consumer_merchant', 'consumer', 'analyst_consumer_merchant has no consumer column');
SELECT cmp_ok((SELECT count(*)::int FROM tap_ps1), '=', (SELECT count(*)::int FROM payext.consumer_merchant),
              'analyst: one row per consumer and merchant');
SELECT cmp_ok((SELECT count(*)::int FROM tap_ps1), '>=', 5, '(and there are several)');
SELECT is_empty($$SELECT consumer_pseudonym FROM tap_ps1 WHERE consumer_pseudonym !~ '^[0-9a-f]{32}$'$$,
                'analyst: every pseudonym is 32 hex digits');
SELECT set_eq('SELECT * FROM tap_ps1', 'SELECT * FROM tap_ps2', 'analyst: pseudonyms are stable across calls');
SELECT set_eq('SELECT * FROM tap_ps1', 'SELECT * FROM tap_ps3', 'analyst: the view and the function agree');
SELECT is((SELECT count(DISTINCT consumer_pseudonym)::int FROM tap_ps1),
          (SELECT count(DISTINCT consumer)::int FROM payext.consumer_merchant),
          'analyst: different consumers, different pseudonyms');
SELECT is_empty($$SELECT consumer_pseudonym FROM tap_ps1
                   WHERE consumer_pseudonym IN (SELECT consumer FROM payext.consumer_merchant)$$,
                'analyst: no pseudonym is a social-app id');
SELECT set_eq('SELECT consumer_pseudonym, public_service_id FROM tap_ps1',
              'SELECT payext.pseudonym(consumer), public_service_id FROM payext.consumer_merchant',
              'analyst: the pseudonym of a consumer is payext.pseudonym(consumer), the same at every merchant');
SELECT is_empty($$SELECT c.consumer FROM payext.consumer_merchant c
                   WHERE payext.pseudonym(c.consumer) IN (md5(c.consumer), left(encode(sha256(convert_to(c.consumer, 'UTF8')), 'hex'), 32))$$,
                'analyst: a pseudonym is keyed, not md5 or sha256 of the id');
SELECT isnt(payext.pseudonym('tap_alice'), payext.pseudonym('tap_bob'), 'pseudonym: alice and bob differ');

---------------------------------------------------------------------------
-- admin
---------------------------------------------------------------------------

SET LOCAL ROLE r_admin;
SELECT is((SELECT bool_and(ok) FROM payext.verify_ledger()), true, 'admin: verify_ledger, all true');
SELECT lives_ok('SELECT payext.rotate_signing_key()', 'admin: rotate_signing_key');
SELECT lives_ok(format('SELECT payext.freeze(%s), payext.unfreeze(%s)', :w_bob, :w_bob), 'admin: freeze and unfreeze');
SELECT lives_ok(format('SELECT payext.transfer(%s, %s, 1, ''tap-admin-t'')', :w_alice, :w_bob), 'admin: transfer');
SELECT lives_ok('SELECT payext.set_association_rule(''gh_tap_a'', 2, ''1 day''), payext.evaluate_associations(''gh_tap_a''), payext.drop_association_rule(''gh_tap_a'')',
                'admin: set, evaluate and drop an association rule');
SELECT is(payext.balance(:m_b), 0::bigint, 'admin: balance() of any merchant');
SELECT cmp_ok(payext.balance(:sys_cny), '<=', 0::bigint, 'admin: balance() of a system account (the float)');
RESET ROLE;
SELECT is(pg_temp.run_as('r_admin', 'SELECT count(*) FROM payext.transfer'),
          (SELECT count(*)::text FROM payext.transfer), 'admin: its count of transfers is the superuser''s');
SET LOCAL ROLE r_admin;
SELECT throws_ok('SELECT payext.grant_capability(''admin'', ''r_nobody'')', '42501', NULL,
                 'admin: grant_capability is 42501 (the DBA''s)');
SELECT throws_ok(format('SELECT payext.charge(%s, %L, 10, ''tap-admin-c'')', :m_a, :'code_m2'), '42501', NULL,
                 'admin: charge() is 42501');
SELECT throws_ok('SELECT payext.pseudonym(''tap_alice'')', '42501', NULL, 'admin: pseudonym() is 42501');
RESET ROLE;

---------------------------------------------------------------------------
-- nobody
---------------------------------------------------------------------------

SET LOCAL ROLE r_nobody;
SELECT is(payext.calling_role(), 'r_nobody'::regrole::oid, 'calling_role() is the role after SET ROLE');
SELECT is(payext.caller_has_capability('app'), false, 'nobody: no capability');
SELECT throws_ok(format('SELECT payext.balance(%s)', :w_alice), '42501', NULL, 'nobody: balance is 42501');
SELECT is(payext.format_amount(1234, 'CNY'), '12.34 CNY', 'nobody: format_amount (PUBLIC)');
RESET ROLE;

---------------------------------------------------------------------------
-- grant_capability and revoke_capability
---------------------------------------------------------------------------

SELECT throws_ok('SELECT payext.grant_capability(''superuser'', ''r_nobody'')', 'PY006', NULL,
                 'grant_capability of an unknown capability is PY006');
SELECT throws_ok('SELECT payext.grant_capability(NULL, ''r_nobody'')', 'PY001', NULL,
                 'grant_capability of NULL is PY001');
SELECT throws_ok('SELECT payext.revoke_capability(''nonsense'', ''r_nobody'')', 'PY006',
                 'unknown capability "nonsense"', 'revoke_capability of an unknown capability is PY006');
SELECT throws_ok('SELECT payext.revoke_capability(''app'', NULL)', 'PY001',
                 'argument "grantee" must not be null', 'revoke_capability of NULL is PY001');
SELECT throws_ok(format('SELECT payext.unmap_merchant_role(NULL, %s)', :m_a), 'PY001',
                 'argument "grantee" must not be null', 'unmap_merchant_role of NULL is PY001');
SELECT throws_ok(format('SELECT payext.unmap_merchant_role(''r_shop'', %s)', :w_alice), 'PY111',
                 format('account %s is not a merchant account', :w_alice), 'unmap_merchant_role of a wallet is PY111');
SELECT lives_ok('SELECT payext.grant_capability(''app'', ''r_app''), payext.grant_capability(''app'', ''r_app'')',
                'grant_capability again is harmless');
SELECT payext.grant_capability('app', 'r_both') IS NULL AS x \gset
SELECT payext.grant_capability('merchant', 'r_both') IS NULL AS x \gset
SELECT payext.map_merchant_role('r_both', :m_a) IS NULL AS x \gset
SELECT payext.revoke_capability('app', 'r_both') IS NULL AS x \gset
SET LOCAL ROLE r_both;
SELECT throws_ok('SELECT payext.open_wallet(''tap_both'')', '42501', NULL, 'revoke app: open_wallet is 42501');
SELECT throws_ok(format('SELECT payext.parking_fee(%s, now(), now())', :lot), '42501', NULL,
                 'revoke app: parking_fee (app''s and admin''s, not merchant''s) is 42501');
SELECT lives_ok(format('SELECT payext.balance(%s)', :m_a), 'revoke app: balance stays, merchant still needs it');
SELECT lives_ok(format('SELECT count(*) FROM payext.merchant_transfers(%s)', :m_a), 'revoke app: merchant''s reading functions stay');
RESET ROLE;
SELECT is((SELECT array_agg(capability ORDER BY capability) FROM payext.capability_grant WHERE grantee = 'r_both'::regrole),
          '{merchant}'::text[], 'revoke app: capability_grant keeps merchant only');
SELECT payext.revoke_capability('merchant', 'r_both') IS NULL AS x \gset
SET LOCAL ROLE r_both;
SELECT throws_ok(format('SELECT payext.balance(%s)', :m_a), '42501', NULL, 'revoke merchant too: balance is 42501');
SELECT throws_ok(format('CALL payext.merchant_settle(%s, ''tap-both'')', :m_a), '42501', NULL,
                 'revoke merchant too: merchant_settle is 42501');
SELECT throws_ok(format('SELECT count(*) FROM payext.merchant_transfers(%s)', :m_a), '42501', NULL, 'revoke merchant too: merchant_transfers is 42501');
RESET ROLE;
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.pronamespace = 'payext'::regnamespace AND has_function_privilege('r_both', p.oid, 'EXECUTE')
                     AND NOT has_function_privilege('public', p.oid, 'EXECUTE')$$,
                'after revoking both, r_both can execute nothing PUBLIC cannot');
SELECT payext.revoke_capability('app', 'r_app') IS NULL AS x \gset
SET LOCAL ROLE r_app;
SELECT throws_ok(format('SELECT payext.balance(%s)', :w_alice), '42501', NULL, 'revoke app from r_app: balance is 42501');
RESET ROLE;
SELECT payext.grant_capability('app', 'r_app') IS NULL AS x \gset
-- A role whose name is an injection attempt.
CREATE ROLE "r_evil'; DROP TABLE payext.account; --" NOLOGIN;
SELECT lives_ok($$SELECT payext.grant_capability('app', '"r_evil''; DROP TABLE payext.account; --"')$$,
                'grant_capability to a role named like an injection');
SELECT ok(has_function_privilege('r_evil''; DROP TABLE payext.account; --', 'payext.top_up(bigint, bigint, text)', 'EXECUTE'),
          '... granted to that role');
SELECT lives_ok($$SELECT payext.revoke_capability('app', '"r_evil''; DROP TABLE payext.account; --"')$$,
                'revoke_capability from it');
SELECT ok(NOT has_function_privilege('r_evil''; DROP TABLE payext.account; --', 'payext.top_up(bigint, bigint, text)', 'EXECUTE'),
          '... and taken back');
SELECT has_table('payext', 'account', 'payext.account still exists');

---------------------------------------------------------------------------
-- search_path hijack
---------------------------------------------------------------------------

DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO r_app', current_database()); END $$;
SELECT payext.request_payment(:w_alice) AS hj_code_b \gset
SELECT payext.balance(:m_a) AS hj_bal_a0 \gset
SELECT max(id) AS hj_key0 FROM payext.signing_key \gset
-- Camera times near the server's clock, taken before evil.now() exists.
SELECT now() - interval '3 hours' AS hj_in, now() - interval '1 hour' AS hj_out, now() AS hj_now \gset
SELECT array_agg(consumer_pseudonym || '/' || public_service_id ORDER BY consumer_pseudonym, public_service_id) AS hj_ps0
  FROM payext.consumer_merchant_pseudonymous() \gset

SET LOCAL ROLE r_app;
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.log (what text, by_role text DEFAULT current_user);
GRANT SELECT, INSERT ON evil.log TO PUBLIC;
CREATE FUNCTION evil.note(what text) RETURNS void LANGUAGE sql AS 'INSERT INTO evil.log (what) VALUES ($1)';
CREATE FUNCTION evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('=(bigint,bigint)'); RETURN true; END$f$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq8);
CREATE FUNCTION evil.eq4(integer, integer) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('=(integer,integer)'); RETURN true; END$f$;
CREATE OPERATOR evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.eq4);
CREATE FUNCTION evil.eqt(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('=(text,text)'); RETURN true; END$f$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eqt);
CREATE FUNCTION evil.eqo(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('=(oid,oid)'); RETURN true; END$f$;
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.eqo);
CREATE FUNCTION evil.ne8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('<>(bigint,bigint)'); RETURN false; END$f$;
CREATE OPERATOR evil.<> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.ne8);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('lower'); RETURN $1; END$f$;
CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('upper'); RETURN $1; END$f$;
CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('length'); RETURN 1; END$f$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('now'); RETURN '2000-01-01 00:00Z'; END$f$;
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('format'); RETURN $1; END$f$;
CREATE FUNCTION evil.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('pg_has_role'); RETURN true; END$f$;
CREATE FUNCTION evil.date_trunc(text, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('date_trunc'); RETURN '2000-01-01 00:00Z'; END$f$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note('gen_random_uuid'); RETURN '00000000-0000-0000-0000-000000000000'; END$f$;
-- Tables named like payext's: views whose reading and writing is logged.
CREATE FUNCTION evil.spy(what text) RETURNS SETOF record LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note(what); RETURN; END$f$;
CREATE FUNCTION evil.spy_write() RETURNS trigger LANGUAGE plpgsql AS
  $f$BEGIN PERFORM evil.note(TG_TABLE_NAME); RETURN NULL; END$f$;
CREATE VIEW evil.account AS SELECT * FROM evil.spy('account') AS t(
  id bigint, kind text, owner text, public_service_id text, display_name text, currency text,
  balance bigint, status text, created_at timestamptz);
CREATE VIEW evil.transfer AS SELECT * FROM evil.spy('transfer') AS t(
  id bigint, debit_account bigint, credit_account bigint, amount bigint, currency text, kind text,
  idem_scope bigint, reference text, created_at timestamptz, checksum bytea);
CREATE VIEW evil.signing_key AS SELECT * FROM evil.spy('signing_key') AS t(id integer, secret bytea, created_at timestamptz);
CREATE VIEW evil.pseudonym_key AS SELECT * FROM evil.spy('pseudonym_key') AS t(id integer, secret bytea, created_at timestamptz);
CREATE VIEW evil.merchant_role AS SELECT * FROM evil.spy('merchant_role') AS t(grantee regrole, merchant bigint, mapped_at timestamptz);
CREATE VIEW evil.capability_grant AS SELECT * FROM evil.spy('capability_grant') AS t(grantee regrole, capability text, granted_at timestamptz);
CREATE TRIGGER spy INSTEAD OF INSERT OR UPDATE OR DELETE ON evil.account FOR EACH ROW EXECUTE FUNCTION evil.spy_write();
CREATE TRIGGER spy INSTEAD OF INSERT OR UPDATE OR DELETE ON evil.transfer FOR EACH ROW EXECUTE FUNCTION evil.spy_write();
GRANT SELECT, INSERT, UPDATE, DELETE ON evil.account, evil.transfer, evil.signing_key, evil.pseudonym_key,
  evil.merchant_role, evil.capability_grant TO PUBLIC;
CREATE TEMP VIEW account AS SELECT * FROM evil.account;
GRANT SELECT ON account TO PUBLIC;

SET LOCAL search_path = evil, pg_catalog, public;
-- Control: the look-alikes are live for an unqualified name.
SELECT lower('X') AS hj_ctl1, 1::bigint = 2::bigint AS hj_ctl2, 'a'::text = 'b'::text AS hj_ctl3,
       now() AS hj_ctl4, (SELECT count(*) FROM evil.account) AS hj_ctl5 \gset
SELECT count(*) AS hj_ctl_log FROM evil.log \gset
DELETE FROM evil.log;
-- The app's functions.
SELECT payext.open_wallet('tap_hj_owner') AS hj_w \gset
SELECT payext.open_wallet('tap_hj_owner') AS hj_w2 \gset
SELECT payext.open_wallet('tap_hj_owner', 'USD') AS hj_w_usd \gset
SELECT payext.top_up(:hj_w, 5000, 'tap-hj-top') AS hj_t1 \gset
SELECT payext.top_up(:hj_w, 5000, 'tap-hj-top') AS hj_t1b \gset
SELECT payext.withdraw(:hj_w, 1000, 'tap-hj-wd') AS hj_t2 \gset
SELECT payext.balance(:hj_w) AS hj_bal \gset
SELECT pg_temp.sqlstate_of('SELECT payext.balance(' || :m_a || ')') AS hj_bal_m \gset
SELECT pg_temp.sqlstate_of('SELECT payext.withdraw(' || :m_a || ', 1, ''tap-hj-steal'')') AS hj_wd_m \gset
SELECT pg_temp.sqlstate_of('SELECT payext.withdraw(' || :hj_w || ', 999999, ''tap-hj-overdraw'')') AS hj_overdraw \gset
SELECT payext.request_payment(:hj_w, 2000) AS hj_code \gset
SELECT payext.request_payment(:hj_w) AS hj_code2 \gset
SELECT payext.cancel_payment_code(:'hj_code2') IS NULL AS hj_x \gset
SELECT payext.record_interaction('tap_hj_owner', 'gh_tap_a', 'visit') AS hj_i \gset
SELECT payext.opt_out('tap_hj_owner', 'gh_tap_b') IS NULL AS hj_x \gset
SELECT payext.opt_in('tap_hj_owner', 'gh_tap_b') IS NULL AS hj_x \gset
SELECT payext.opt_out('tap_hj_owner', 'gh_tap_b') IS NULL AS hj_x \gset
SELECT payext.bind_vehicle('tap_hj_owner', 'HJ-001', false) IS NULL AS hj_x \gset
SELECT payext.vehicle_entered(:lot, 'HJ001', :'hj_in') AS hj_stay \gset
SELECT payext.vehicle_exited(:lot, 'hj 001', :'hj_out') AS hj_fee \gset
SELECT payext.parking_fee(:lot, '2026-01-01 10:00Z', '2026-01-01 12:00Z') AS hj_fee2 \gset
SELECT stay AS hj_due_stay, amount_due AS hj_due FROM payext.parking_service_info('tap_hj_owner', :'hj_now') \gset
SELECT payext.pay_parking(:hj_due_stay, :hj_w, :hj_due) AS hj_pp \gset
SELECT payext.unbind_vehicle('tap_hj_owner', 'HJ-001') IS NULL AS hj_x \gset
SELECT payext.caller_has_capability('admin') AS hj_cap_admin, payext.caller_has_capability('app') AS hj_cap_app,
       payext.acting_accounts() AS hj_acting, payext.acting_public_service_ids() AS hj_acting_ps \gset
SELECT payext.format_amount(1234, 'CNY') AS hj_fmt, payext.normalize_plate('hj-002') AS hj_plate \gset
RESET ROLE;
-- The merchant's procedures (the search_path stays evil's).
SET LOCAL ROLE r_shop;
CALL payext.merchant_charge(:m_a, :'hj_code', 1500, 'tap-hj-order') \gset hjc_
CALL payext.merchant_refund(:m_a, 'tap-hj-order', 500, 'tap-hj-refund') \gset hjr_
SELECT state AS hj_state, amount AS hj_st_amount FROM payext.payment_status(:m_a, 'tap-hj-order') \gset
SELECT payext.balance(:m_a) AS hj_bal_a \gset
SELECT pg_temp.sqlstate_of('CALL payext.merchant_charge(' || :m_b || ', ''' || :'hj_code_b' || ''', 10, ''tap-hj-b'')') AS hj_charge_b \gset
SELECT pg_temp.sqlstate_of('SELECT payext.balance(' || :m_b || ')') AS hj_bal_b \gset
SELECT count(*) AS hj_rls_n FROM payext.merchant_transfers(:m_a) \gset
CALL payext.merchant_settle(:m_a, 'tap-hj-settle') \gset hjs_
RESET ROLE;
-- The admin's.
SET LOCAL ROLE r_admin;
SELECT count(*) AS hj_checks, count(*) FILTER (WHERE ok) AS hj_checks_ok FROM payext.verify_ledger() \gset
SELECT payext.rotate_signing_key() AS hj_key \gset
SELECT payext.freeze(:w_carol) IS NULL AS hj_x \gset
SELECT pg_temp.sqlstate_of('SELECT payext.transfer(' || :w_carol || ', ' || :w_bob || ', 1)') AS hj_frozen \gset
SELECT payext.unfreeze(:w_carol) IS NULL AS hj_x \gset
SELECT payext.transfer(:w_alice, :w_bob, 7, 'tap-hj-transfer') AS hj_tr \gset
SELECT payext.open_merchant('gh_tap_hj', 'HJ Shop') AS hj_m \gset
SELECT payext.open_merchant('gh_tap_hj_closed', 'HJ Closed') AS hj_m2 \gset
SELECT payext.close_account(:hj_m2) IS NULL AS hj_x \gset
SELECT payext.set_association_rule('gh_tap_hj', 1, '1 day') IS NULL AS hj_x \gset
SELECT payext.associate('tap_hj_owner', 'gh_tap_hj') IS NULL AS hj_x \gset
SELECT payext.evaluate_associations('gh_tap_hj') AS hj_eval \gset
SELECT payext.drop_association_rule('gh_tap_hj') AS hj_drop \gset
SELECT payext.create_parking_lot(:hj_m, 'HJ Lot', 'UTC', 0, 60, 100) AS hj_lot \gset
SELECT payext.map_merchant_role('r_shop2', :hj_m) IS NULL AS hj_x \gset
SELECT payext.unmap_merchant_role('r_shop2', :hj_m) IS NULL AS hj_x \gset
SELECT payext.balance(:m_b) AS hj_admin_bal_b \gset
SELECT count(*) AS hj_admin_n FROM payext.transfer \gset
RESET ROLE;
-- The analyst's.
SET LOCAL ROLE r_analyst;
SELECT count(*) AS hj_ana_n FROM payext.analyst_consumer_merchant \gset
SELECT count(*) AS hj_sum_n FROM payext.merchant_summary \gset
SELECT count(*) AS hj_daily_n FROM payext.merchant_daily \gset
RESET ROLE;
SET LOCAL search_path TO DEFAULT;

SELECT cmp_ok(:hj_ctl_log::int, '>=', 4,
              'control: with search_path evil first, the look-alikes do run for unqualified names');
SELECT is_empty('SELECT * FROM evil.log', 'search_path hijack: no look-alike ran inside any payext function');
SELECT is(:hj_w2::bigint, :hj_w::bigint, 'hijack: open_wallet found the same wallet again');
SELECT isnt(:hj_w_usd::bigint, :hj_w::bigint, 'hijack: a USD wallet is another one');
SELECT is((SELECT owner FROM payext.account WHERE id = :hj_w), 'tap_hj_owner', 'hijack: the wallet''s owner');
SELECT is(:hj_t1b::bigint, :hj_t1::bigint, 'hijack: top_up idempotent on external_ref');
SELECT is(:hj_bal::bigint, 4000::bigint, 'hijack: top_up 5000, withdraw 1000: balance 4000');
SELECT is(:'hj_bal_m'::text, '42501', 'hijack: balance() of a merchant is still 42501 for the app');
SELECT is(:'hj_wd_m'::text, '42501', 'hijack: withdraw() from a merchant is still 42501 for the app');
SELECT is(:'hj_overdraw'::text, 'PY104', 'hijack: an overdraft is still PY104');
SELECT is((SELECT state FROM payext.payment_code c WHERE c.serial =
             (SELECT code_serial FROM payext.payment p WHERE p.transfer_id = :hjc_transfer_id)), 'used',
          'hijack: the code charged is used');
SELECT is((SELECT count(*)::int FROM payext.payment_code WHERE wallet = :hj_w AND state = 'cancelled'), 1,
          'hijack: cancel_payment_code cancelled the other code');
SELECT is((SELECT consumer || '/' || public_service_id || '/' || kind FROM payext.interaction WHERE id = :hj_i),
          'tap_hj_owner/gh_tap_a/visit', 'hijack: record_interaction stored its row');
SELECT is((SELECT state FROM payext.association_state WHERE consumer = 'tap_hj_owner' AND public_service_id = 'gh_tap_b'),
          'opted_out', 'hijack: opt_out, opt_in, opt_out');
SELECT is(ARRAY[:hj_fee, :hj_fee2, :hj_due]::bigint[], ARRAY[200, 200, 200]::bigint[],
          'hijack: vehicle_exited, parking_fee and parking_service_info agree (200)');
SELECT is((SELECT paid FROM payext.parking_stay WHERE id = :hj_stay), 200::bigint, 'hijack: pay_parking paid the stay');
SELECT is(ARRAY[:'hj_cap_admin', :'hj_cap_app'], ARRAY['f', 't'], 'hijack: caller_has_capability is not fooled');
SELECT is(ARRAY[:'hj_acting', :'hj_acting_ps'], ARRAY['{}', '{}'], 'hijack: acting_accounts() of the app is empty');
SELECT is(ARRAY[:'hj_fmt', :'hj_plate'], ARRAY['12.34 CNY', 'HJ002'], 'hijack: format_amount and normalize_plate');
SELECT results_eq(format('SELECT merchant, order_ref, wallet, amount, refunded FROM payext.payment WHERE transfer_id = %s', :hjc_transfer_id),
                  format($$VALUES (%s::bigint, 'tap-hj-order'::text, %s::bigint, 1500::bigint, 500::bigint)$$, :m_a, :hj_w),
                  'hijack: merchant_charge and merchant_refund stored the right payment');
SELECT is((SELECT amount FROM payext.refund WHERE transfer_id = :hjr_transfer_id), 500::bigint,
          'hijack: the refund row');
SELECT is(ARRAY[:'hj_state', :'hj_st_amount'], ARRAY['partially_refunded', '1500'], 'hijack: payment_status');
SELECT is(:hj_bal_a::bigint, :hj_bal_a0 + 1000 + 200::bigint, 'hijack: the merchant''s balance (charge 1500, refund 500, parking 200)');
SELECT is(ARRAY[:'hj_charge_b', :'hj_bal_b'], ARRAY['42501', '42501'], 'hijack: the merchant still cannot act for B');
SELECT is(:hj_rls_n::int, (SELECT count(*)::int FROM payext.transfer t WHERE :m_a IN (t.debit_account, t.credit_account)) - 1,
          'hijack: merchant_transfers still shows only A''s transfers (all but the settlement after it)');
SELECT is(ARRAY[:hjs_amount, :hjs_charges, :hjs_charged_amount, :hjs_refunds, :hjs_refunded_amount]::bigint[],
          ARRAY[:hj_bal_a, (SELECT count(*) FROM payext.payment WHERE merchant = :m_a),
                (SELECT sum(amount) FROM payext.payment WHERE merchant = :m_a),
                (SELECT count(*) FROM payext.refund WHERE merchant = :m_a),
                (SELECT sum(amount) FROM payext.refund WHERE merchant = :m_a)]::bigint[],
          'hijack: merchant_settle paid the balance out; its summary counts today''s charges and refunds');
SELECT is((SELECT debit_account || '/' || amount || '/' || kind FROM payext.transfer WHERE id = :hjs_transfer_id),
          :m_a || '/' || :hj_bal_a || '/withdraw', 'hijack: the settlement''s transfer');
SELECT is(ARRAY[:hj_checks_ok, :hj_checks]::int[], ARRAY[7, 7], 'hijack: verify_ledger as admin, all 7 checks true');
SELECT cmp_ok(:hj_key::int, '>', :hj_key0::int, 'hijack: rotate_signing_key made a new key');
SELECT is(:'hj_frozen'::text, 'PY102', 'hijack: freeze froze the wallet');
SELECT is((SELECT status FROM payext.account WHERE id = :w_carol), 'active', 'hijack: unfreeze');
SELECT is((SELECT amount || '/' || reference FROM payext.transfer WHERE id = :hj_tr), '7/tap-hj-transfer', 'hijack: transfer');
SELECT is((SELECT status FROM payext.account WHERE id = :hj_m2), 'closed', 'hijack: close_account');
SELECT is((SELECT how FROM payext.association_state WHERE consumer = 'tap_hj_owner' AND public_service_id = 'gh_tap_hj'),
          'manual', 'hijack: associate');
SELECT is(ARRAY[:'hj_eval', :'hj_drop'], ARRAY['0', 't'], 'hijack: evaluate_associations, drop_association_rule');
SELECT is((SELECT operator FROM payext.parking_lot WHERE id = :hj_lot), :hj_m::bigint, 'hijack: create_parking_lot');
SELECT is_empty(format('SELECT * FROM payext.merchant_role WHERE merchant = %s', :hj_m), 'hijack: map then unmap');
SELECT is(:hj_admin_n::int, (SELECT count(*)::int FROM payext.transfer), 'hijack: admin still sees every transfer');
SELECT is(:hj_ana_n::int, (SELECT count(*)::int FROM payext.consumer_merchant), 'hijack: the analyst''s view');
SELECT is(:'hj_ps0', (SELECT array_agg(consumer_pseudonym || '/' || public_service_id ORDER BY consumer_pseudonym, public_service_id)::text
                        FROM payext.consumer_merchant_pseudonymous()
                       WHERE consumer_pseudonym || '/' || public_service_id = ANY (:'hj_ps0'::text[])),
          'hijack: the pseudonyms did not change (no look-alike key)');

---------------------------------------------------------------------------
-- Injection probes
---------------------------------------------------------------------------

CREATE TEMP TABLE tap_probe (n integer PRIMARY KEY, p text NOT NULL);
INSERT INTO tap_probe VALUES
  (1, 'O''Brien'),
  (2, '''); DROP TABLE payext.account; --'),
  (3, 'x''; DELETE FROM payext.transfer; --'),
  (4, 'a;b; SELECT pg_sleep(0);'),
  (5, '-- comment'),
  (6, '/* open comment'),
  (7, 'back\slash\'' \\ \" \x41'),
  (8, '$$ $q$ ; COMMIT; $$'),
  (9, '%s %L %I %1$s %%'),
  (10, '"double""quoted"');
CREATE TEMP TABLE tap_code AS SELECT n, payext.request_payment(:w_alice) AS code FROM tap_probe;

-- seq orders the calls of one probe; must_store: refusal is not enough.
-- sql and chk are format() templates: %1$L the probe, %2$L the result, %3$s n.
CREATE TEMP TABLE tap_inj (seq int, fn text, r text, must_store boolean, sql text, chk text);
INSERT INTO tap_inj VALUES
  (1, 'open_wallet owner', 'r_app', true, 'SELECT payext.open_wallet(%1$L)',
      'SELECT owner = %1$L FROM payext.account WHERE id = %2$L::bigint'),
  (2, 'open_wallet currency', 'r_app', false, 'SELECT payext.open_wallet(''tap_inj_cur'', %1$L)', NULL),
  (3, 'open_merchant public_service_id', 'r_admin', true, 'SELECT payext.open_merchant(%1$L, ''Inj'')',
      'SELECT public_service_id = %1$L FROM payext.account WHERE id = %2$L::bigint'),
  (4, 'open_merchant display_name', 'r_admin', true, 'SELECT payext.open_merchant(''gh_tap_inj_%3$s'', %1$L)',
      'SELECT display_name = %1$L FROM payext.account WHERE id = %2$L::bigint'),
  (5, 'top_up external_ref', 'r_app', true, format('SELECT payext.top_up(%s, 3, %%1$L)', :w_bob),
      'SELECT reference = %1$L AND kind = ''top_up'' FROM payext.transfer WHERE id = %2$L::bigint'),
  (6, 'withdraw external_ref', 'r_app', true, format('SELECT payext.withdraw(%s, 1, %%1$L)', :w_bob),
      'SELECT reference = %1$L AND kind = ''withdraw'' FROM payext.transfer WHERE id = %2$L::bigint'),
  (7, 'transfer reference', 'r_admin', true, format('SELECT payext.transfer(%s, %s, 1, %%1$L)', :w_bob, :w_carol),
      'SELECT reference = %1$L FROM payext.transfer WHERE id = %2$L::bigint'),
  (8, 'cancel_payment_code code', 'r_app', false, 'SELECT payext.cancel_payment_code(%1$L)', NULL),
  (9, 'merchant_charge order_ref', 'r_shop', true,
      format('CALL payext.merchant_charge(%s, (%%4$L), 10, %%1$L)', :m_a),
      'SELECT order_ref = %1$L FROM payext.payment WHERE transfer_id = %2$L::bigint'),
  (10, 'merchant_charge code', 'r_shop', false,
      format('CALL payext.merchant_charge(%s, %%1$L, 10, ''tap-inj-code-%%3$s'')', :m_a), NULL),
  (11, 'merchant_refund order_ref, refund_ref', 'r_shop', true,
      format('CALL payext.merchant_refund(%s, %%1$L, 1, %%1$L)', :m_a),
      'SELECT refund_ref = %1$L FROM payext.refund WHERE transfer_id = %2$L::bigint'),
  (12, 'payment_status order_ref', 'r_shop', true,
      format('SELECT state FROM payext.payment_status(%s, %%1$L)', :m_a),
      'SELECT %2$L = ''partially_refunded'''),
  (13, 'merchant_settle bank_ref', 'r_shop', true,
      format('CALL payext.merchant_settle(%s, ''S'' || %%1$L)', :m_a),
      format('SELECT EXISTS (SELECT 1 FROM payext.transfer WHERE kind = ''withdraw'' AND debit_account = %s AND reference = ''S'' || %%1$L AND amount = %%2$L::bigint)', :m_a)),
  (14, 'record_interaction consumer', 'r_app', true,
      'SELECT payext.record_interaction(%1$L, ''gh_tap_a'', ''visit'')',
      'SELECT consumer = %1$L FROM payext.interaction WHERE id = %2$L::bigint'),
  (15, 'record_interaction public_service_id', 'r_app', true,
      'SELECT payext.record_interaction(''tap_inj'', %1$L, ''visit'')',
      'SELECT public_service_id = %1$L FROM payext.interaction WHERE id = %2$L::bigint'),
  (16, 'record_interaction kind', 'r_app', false,
      'SELECT payext.record_interaction(''tap_inj'', ''gh_tap_a'', %1$L)', NULL),
  (17, 'opt_out consumer, public_service_id', 'r_app', true, 'SELECT payext.opt_out(%1$L, %1$L)',
      'SELECT EXISTS (SELECT 1 FROM payext.association_state WHERE consumer = %1$L AND public_service_id = %1$L AND state = ''opted_out'')'),
  (18, 'opt_in consumer, public_service_id', 'r_app', true, 'SELECT payext.opt_in(%1$L, %1$L)',
      'SELECT NOT EXISTS (SELECT 1 FROM payext.association_state WHERE consumer = %1$L AND public_service_id = %1$L AND state = ''opted_out'')'),
  (19, 'associate consumer, public_service_id', 'r_admin', true, 'SELECT payext.associate(%1$L, %1$L)',
      'SELECT EXISTS (SELECT 1 FROM payext.association_state WHERE consumer = %1$L AND public_service_id = %1$L AND state = ''associated'')'),
  (20, 'set_association_rule public_service_id', 'r_admin', true,
      'SELECT payext.set_association_rule(%1$L, 2, ''1 day'')',
      'SELECT EXISTS (SELECT 1 FROM payext.association_rule WHERE public_service_id = %1$L AND superseded_at IS NULL)'),
  (21, 'evaluate_associations public_service_id', 'r_admin', true,
      'SELECT payext.evaluate_associations(%1$L)', 'SELECT %2$L ~ ''^[0-9]+$'''),
  (22, 'drop_association_rule public_service_id', 'r_admin', true,
      'SELECT payext.drop_association_rule(%1$L)', 'SELECT %2$L = ''true'''),
  (23, 'bind_vehicle owner', 'r_app', true, 'SELECT payext.bind_vehicle(%1$L, ''IJ-%3$s'', false)',
      'SELECT owner = %1$L FROM payext.vehicle WHERE plate = payext.normalize_plate(''IJ-%3$s'')'),
  (24, 'parking_service_info owner', 'r_app', true,
      'SELECT count(*) FROM payext.parking_service_info(%1$L)', 'SELECT %2$L = ''0'''),
  (25, 'unbind_vehicle owner', 'r_app', true, 'SELECT payext.unbind_vehicle(%1$L, ''IJ-%3$s'')',
      'SELECT NOT EXISTS (SELECT 1 FROM payext.vehicle WHERE plate = payext.normalize_plate(''IJ-%3$s''))'),
  (26, 'bind_vehicle plate', 'r_app', false, 'SELECT payext.bind_vehicle(''tap_inj_plate_%3$s'', %1$L)',
      'SELECT owner = ''tap_inj_plate_%3$s'' FROM payext.vehicle WHERE plate = payext.normalize_plate(%1$L)'),
  (27, 'vehicle_entered plate', 'r_app', false,
      format('SELECT payext.vehicle_entered(%s, %%1$L, now() - interval ''2 hours'')', :lot),
      'SELECT plate = payext.normalize_plate(%1$L) FROM payext.parking_stay WHERE id = %2$L::bigint'),
  (28, 'vehicle_exited plate', 'r_app', false,
      format('SELECT payext.vehicle_exited(%s, %%1$L, now() - interval ''1 hour'')', :lot),
      'SELECT %2$L ~ ''^([0-9]+|<null>)$'''),
  (29, 'create_parking_lot name', 'r_admin', true,
      format('SELECT payext.create_parking_lot(%s, %%1$L, ''UTC'', 0, 60, 100)', :m_a),
      'SELECT name = %1$L FROM payext.parking_lot WHERE id = %2$L::bigint'),
  (30, 'create_parking_lot time_zone', 'r_admin', false,
      format('SELECT payext.create_parking_lot(%s, ''Inj'', %%1$L, 0, 60, 100)', :m_a),
      'SELECT time_zone = %1$L FROM payext.parking_lot WHERE id = %2$L::bigint'),
  (31, 'format_amount currency', 'r_nobody', false, 'SELECT payext.format_amount(1, %1$L)', NULL),
  (32, 'normalize_plate plate', 'r_nobody', false, 'SELECT payext.normalize_plate(%1$L)',
      'SELECT %2$L = payext.normalize_plate(%1$L)'),
  (33, 'caller_has_capability capability', 'r_nobody', true, 'SELECT payext.caller_has_capability(%1$L)',
      'SELECT %2$L = ''false'''),
  (34, 'grant_capability capability', current_user, false, 'SELECT payext.grant_capability(%1$L, ''r_nobody'')', NULL),
  (35, 'revoke_capability capability', current_user, false, 'SELECT payext.revoke_capability(%1$L, ''r_nobody'')', NULL),
  (36, 'pseudonym consumer', current_user, true, 'SELECT payext.pseudonym(%1$L)',
      'SELECT %2$L ~ ''^[0-9a-f]{32}$'''),
  (37, 'payment_status amount of the probe''s order', 'r_shop', true,
      format('SELECT amount FROM payext.payment_status(%s, %%1$L)', :m_a), 'SELECT %2$L = ''10''');

CREATE TEMP TABLE tap_inj_run AS
SELECT i.seq, i.fn, i.r, i.must_store, pr.n, pr.p,
       format(i.sql, pr.p, NULL, pr.n, c.code) AS sql, i.chk, NULL::text AS res, NULL::boolean AS ok
  FROM tap_inj i CROSS JOIN tap_probe pr JOIN tap_code c ON c.n = pr.n;
-- Each call, then its check at once (a later call may undo what it stored).
DO $$
DECLARE
  x record;
  res text;
BEGIN
  FOR x IN SELECT * FROM tap_inj_run ORDER BY n, seq LOOP
    res := pg_temp.run_as(x.r, x.sql);
    UPDATE tap_inj_run
       SET res = run_res,
           ok = CASE WHEN run_res LIKE 'ERROR %' THEN NOT x.must_store AND run_res ~ '^ERROR PY[0-4][0-9][0-9] '
                     ELSE x.chk IS NOT NULL AND pg_temp.eval_bool(format(x.chk, x.p, run_res, x.n)) END
      FROM (SELECT res AS run_res) v
     WHERE n = x.n AND seq = x.seq;
  END LOOP;
END
$$;
CREATE TEMP TABLE tap_inj_result AS SELECT seq, fn, n, p, res, ok FROM tap_inj_run;

SELECT is_empty('SELECT fn, n, p, res FROM tap_inj_result WHERE NOT ok ORDER BY seq, n',
                'injection probes: every text argument is stored verbatim or refused with PY0xx-PY4xx');
SELECT cmp_ok((SELECT count(*)::int FROM tap_inj_result WHERE ok AND res NOT LIKE 'ERROR %'), '>=', 250,
              '(most probes were stored, not refused)');
SELECT set_eq($$SELECT relname, relkind FROM pg_class WHERE relnamespace = 'payext'::regnamespace
                  AND relkind IN ('r', 'v', 'm', 'p', 'S')$$,
              'SELECT relname, relkind FROM tap_rel_before',
              'after the probes every relation of payext still exists (and no new one)');
SELECT results_eq('SELECT check_name, ok FROM payext.verify_ledger()',
  $$VALUES ('balances_match_journal', true), ('money_conserved', true),
           ('no_negative_balances', true), ('journal_intact', true),
           ('payments_match_journal', true), ('codes_paid_once', true),
           ('parking_matches_journal', true)$$,
  'verify_ledger() is true after all of it');

---------------------------------------------------------------------------
-- A confused deputy: the app role's own SECURITY DEFINER function, called
-- by a merchant session, cannot lend the merchant's rights to the app.
-- balance() and withdraw() judge the role that invoked them.
---------------------------------------------------------------------------
RESET ROLE;
-- r_shop acts for merchant A again, so only the deputy stands in the way.
SELECT payext.map_merchant_role('r_shop', :m_a) IS NULL AS x \gset
GRANT CREATE ON SCHEMA public TO r_app;
SET ROLE r_app;
CREATE FUNCTION public.tap_deputy(merchant bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER AS $f$ SELECT payext.withdraw($1, 1, 'tap-deputy') $f$;
GRANT EXECUTE ON FUNCTION public.tap_deputy(bigint) TO r_shop;
RESET ROLE;
SET ROLE r_shop;
SELECT throws_ok(format('SELECT public.tap_deputy(%s)', :m_a), '42501',
                 format('permission denied for account %s', :m_a),
                 'an app-owned SECURITY DEFINER function called by a merchant cannot withdraw the merchant''s money');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM payext.transfer WHERE reference = 'tap-deputy'), 0,
          'the deputy moved nothing');

-- relation_rows, PUBLIC's for a router's views, reads as its caller: an
-- app role no more than its own grants let it, an analyst its views, and
-- no role a relation that is not payext's readable, signing keys least.
SET ROLE r_app;
SELECT throws_ok('SELECT count(*) FROM payext.relation_rows(''account'')', '42501', NULL,
                 'relation_rows: the app role reads no account through it');
SELECT throws_ok('SELECT count(*) FROM payext.relation_rows(''merchant_summary'')', '42501', NULL,
                 'relation_rows: nor the analysts'' views');
RESET ROLE;
SET ROLE r_analyst;
SELECT is((SELECT count(*) FROM payext.relation_rows('merchant_summary')),
          (SELECT count(*) FROM payext.merchant_summary),
          'relation_rows: an analyst reads merchant_summary, every row');
RESET ROLE;
SET ROLE r_admin;
SELECT is((SELECT count(*) FROM payext.relation_rows('account') j
            WHERE (j->>'id')::bigint = :m_a AND (j->>'balance')::bigint = (SELECT balance FROM payext.account WHERE id = :m_a)),
          1::bigint, 'relation_rows: an admin reads an account as the table holds it');
RESET ROLE;
SELECT throws_ok('SELECT count(*) FROM payext.relation_rows(''signing_key'')', '42P01', NULL,
                 'relation_rows: signing keys are no readable relation, not even for the owner');
SELECT throws_ok('SELECT count(*) FROM payext.relation_rows(''account; SELECT 1'')', '42P01', NULL,
                 'relation_rows: a name is one of the list, never SQL');

-- The role checks are C since 0.8.0 (src/roles.c): they answer as the
-- PL/pgSQL they replace did, NULLs and unknown roles included; membership
-- counts as privileges do (a NOINHERIT member holds nothing until SET
-- ROLE); a mapping counts from the next statement, and so does its removal.
CREATE ROLE r_c_shop NOLOGIN;
CREATE ROLE r_c_member NOLOGIN IN ROLE r_c_shop;
CREATE ROLE r_c_pool NOLOGIN NOINHERIT IN ROLE r_c_shop;
SELECT payext.grant_capability('merchant', 'r_c_shop') IS NULL AS x \gset
SELECT is(ARRAY[payext.role_has_capability('r_c_shop'::regrole, 'merchant'),
                payext.role_has_capability('r_c_member'::regrole, 'merchant'),
                payext.role_has_capability('r_c_pool'::regrole, 'merchant'),
                payext.role_has_capability('r_c_shop'::regrole, 'admin'),
                payext.role_has_capability('r_admin'::regrole, 'admin'),
                payext.role_has_capability(NULL, 'merchant'),
                payext.role_has_capability('r_c_shop'::regrole, NULL),
                payext.role_has_capability((SELECT min(oid) FROM pg_roles WHERE rolsuper), NULL),
                payext.role_has_capability(0::oid, 'merchant')],
          ARRAY[true, true, false, false, true, false, false, true, false],
          'role_has_capability: grantee, member, NOINHERIT member, other capability, admin, NULL role, NULL capability (a superuser still holds it), no such role');
SELECT payext.map_merchant_role('r_c_shop', :m_b) IS NULL AS x \gset
SELECT is(ARRAY[payext.role_may_act_for('r_c_shop'::regrole, :m_b),
                payext.role_may_act_for('r_c_member'::regrole, :m_b),
                payext.role_may_act_for('r_c_pool'::regrole, :m_b),
                payext.role_may_act_for('r_c_shop'::regrole, :m_a),
                payext.role_may_act_for('r_admin'::regrole, :m_a),
                payext.role_may_act_for('r_admin'::regrole, NULL),
                payext.role_may_act_for('r_c_shop'::regrole, NULL),
                payext.role_may_act_for(NULL, :m_b),
                payext.role_may_act_for(0::oid, :m_b)],
          ARRAY[true, true, false, false, true, true, false, false, false],
          'role_may_act_for: mapped role, member, NOINHERIT member, another merchant, admin, admin with NULL, NULL merchant, NULL role, no such role');
SELECT payext.unmap_merchant_role('r_c_shop', :m_b) IS NULL AS x \gset
SELECT is(payext.role_may_act_for('r_c_member'::regrole, :m_b), false,
          'role_may_act_for: unmapping takes it away at the next statement');
-- The index by merchant is used only while it is what payext made: gone
-- (renamed), the table is read whole; a namesake on another table is
-- ignored (scanning merchant_role through it would read another table's
-- row pointers).
SELECT payext.map_merchant_role('r_c_shop', :m_b) IS NULL AS x \gset
ALTER INDEX payext.merchant_role_merchant_idx RENAME TO merchant_role_merchant_idx_away;
SELECT payext.role_may_act_for('r_c_member'::regrole, :m_b) AS c_without_index \gset
CREATE TABLE payext.role_decoy (merchant bigint);
INSERT INTO payext.role_decoy SELECT g FROM generate_series(1, 1000) g;
CREATE INDEX merchant_role_merchant_idx ON payext.role_decoy (merchant);
SELECT is(ARRAY[:'c_without_index'::boolean,
                payext.role_may_act_for('r_c_member'::regrole, :m_b),
                payext.role_may_act_for('r_c_member'::regrole, :m_a)],
          ARRAY[true, true, false],
          'role_may_act_for: without its index, and with a namesake index on another table, the same answers');

SELECT * FROM finish();
ROLLBACK;
