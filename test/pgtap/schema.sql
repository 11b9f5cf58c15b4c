-- schema.sql: the shape of payext's SQL contract (DESIGN.md, "SQL contract").
--
-- Proves that CREATE EXTENSION payext gives: the payext schema; the account
-- and transfer tables with their columns, types, primary keys and unique
-- indexes; the journal's append-only triggers; every ledger function of the
-- contract with its exact signature, argument names and defaults, and return
-- type; SECURITY DEFINER functions pinned to search_path = pg_catalog,
-- payext, pg_temp; and privileges: PUBLIC may use the schema and call the
-- two pure helpers (format_amount, currencies) and nothing else; a fresh
-- non-superuser role cannot move money.
-- Behaviour (errors, happy paths) is in ledger.sql.
BEGIN;
SELECT plan(192);

---------------------------------------------------------------------------
-- Schema and tables
---------------------------------------------------------------------------
SELECT has_schema('payext');
SELECT has_extension('payext');

SELECT has_table('payext', 'account', 'payext.account exists');
SELECT has_column('payext', 'account', c, format('account.%s exists', c))
  FROM unnest(ARRAY['id', 'kind', 'owner', 'public_service_id', 'display_name',
                    'currency', 'balance', 'status', 'created_at']) AS c;
SELECT col_type_is('payext', 'account', c, t, format('account.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('kind', 'text'), ('owner', 'text'),
               ('public_service_id', 'text'), ('display_name', 'text'),
               ('currency', 'text'), ('balance', 'bigint'), ('status', 'text'),
               ('created_at', 'timestamp with time zone')) AS v(c, t);
SELECT col_not_null('payext', 'account', c, format('account.%s is NOT NULL', c))
  FROM unnest(ARRAY['id', 'kind', 'currency', 'status', 'created_at']) AS c;
SELECT col_is_null('payext', 'account', 'balance',
                   'account.balance is nullable: system accounts store none');
SELECT has_pk('payext', 'account', 'account has a primary key');
SELECT col_is_pk('payext', 'account', 'id', 'account''s primary key is id');

SELECT has_table('payext', 'transfer', 'payext.transfer (the journal) exists');
SELECT has_column('payext', 'transfer', c, format('transfer.%s exists', c))
  FROM unnest(ARRAY['id', 'debit_account', 'credit_account', 'amount', 'currency',
                    'kind', 'idem_scope', 'reference', 'created_at', 'checksum']) AS c;
SELECT col_type_is('payext', 'transfer', c, t, format('transfer.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('debit_account', 'bigint'),
               ('credit_account', 'bigint'), ('amount', 'bigint'),
               ('currency', 'text'), ('kind', 'text'), ('idem_scope', 'bigint'),
               ('reference', 'text'), ('created_at', 'timestamp with time zone'),
               ('checksum', 'bytea')) AS v(c, t);
SELECT col_not_null('payext', 'transfer', c, format('transfer.%s is NOT NULL', c))
  FROM unnest(ARRAY['id', 'debit_account', 'credit_account', 'amount', 'currency',
                    'kind', 'created_at', 'checksum']) AS c;
SELECT has_pk('payext', 'transfer', 'transfer has a primary key');
SELECT col_is_pk('payext', 'transfer', 'id', 'transfer''s primary key is id');
SELECT fk_ok('payext', 'transfer', 'debit_account', 'payext', 'account', 'id');
SELECT fk_ok('payext', 'transfer', 'credit_account', 'payext', 'account', 'id');

---------------------------------------------------------------------------
-- Unique indexes: one wallet per (owner, currency), one merchant account per
-- (public-service id, currency), one system account per currency, one
-- journal row per (kind, scope, reference).
---------------------------------------------------------------------------
SELECT has_index('payext', 'account', i, cols, format('index %s on (%s)', i, array_to_string(cols, ', ')))
  FROM (VALUES ('account_wallet_key', ARRAY['owner', 'currency']),
               ('account_merchant_key', ARRAY['public_service_id', 'currency']),
               ('account_system_key', ARRAY['currency'])) AS v(i, cols);
SELECT index_is_unique('payext', 'account', i, format('%s is unique', i))
  FROM unnest(ARRAY['account_wallet_key', 'account_merchant_key', 'account_system_key']) AS i;
SELECT is(regexp_replace(pg_get_indexdef('payext.transfer_reference_key'::regclass), '\s+', ' ', 'g'),
          'CREATE UNIQUE INDEX transfer_reference_key ON payext.transfer USING btree (kind, '
          '( CASE kind WHEN ''top_up''::text THEN credit_account WHEN ''withdraw''::text THEN debit_account ELSE idem_scope END), '
          'reference) WHERE (reference IS NOT NULL)',
          'index transfer_reference_key on (kind, the reference''s account or idem_scope, reference)');
SELECT index_is_unique('payext', 'transfer', 'transfer_reference_key',
                       'transfer_reference_key is unique');
SELECT is(pg_get_expr(x.indpred, x.indrelid), pred,
          format('%s applies to %s', i, pred))
  FROM (VALUES ('account_wallet_key', '(kind = ''wallet''::text)'),
               ('account_merchant_key', '(kind = ''merchant''::text)'),
               ('account_system_key', '(kind = ''system''::text)'),
               ('transfer_reference_key', '(reference IS NOT NULL)')) AS v(i, pred)
  LEFT JOIN pg_index x ON x.indexrelid = ('payext.' || i)::regclass;

---------------------------------------------------------------------------
-- The journal is append-only
---------------------------------------------------------------------------
SELECT has_trigger('payext', 'transfer', 'transfer_append_only'::name, 'transfer has trigger transfer_append_only');
SELECT trigger_is('payext', 'transfer', 'transfer_append_only', 'payext', 'journal_guard');
SELECT matches(pg_get_triggerdef(t.oid), 'BEFORE (DELETE OR UPDATE|UPDATE OR DELETE) ON payext\.transfer FOR EACH ROW ',
               'transfer_append_only fires before each UPDATE and DELETE')
  FROM pg_trigger t WHERE t.tgrelid = 'payext.transfer'::regclass AND t.tgname = 'transfer_append_only';
SELECT has_trigger('payext', 'transfer', 'transfer_no_truncate'::name, 'transfer has trigger transfer_no_truncate');
SELECT trigger_is('payext', 'transfer', 'transfer_no_truncate', 'payext', 'journal_guard');
SELECT matches(pg_get_triggerdef(t.oid), 'BEFORE TRUNCATE ON payext\.transfer FOR EACH STATEMENT ',
               'transfer_no_truncate fires before TRUNCATE')
  FROM pg_trigger t WHERE t.tgrelid = 'payext.transfer'::regclass AND t.tgname = 'transfer_no_truncate';
SELECT is((SELECT count(*)::int FROM pg_trigger
            WHERE tgrelid = 'payext.transfer'::regclass AND NOT tgisinternal AND tgenabled = 'O'),
          2, 'both journal triggers are enabled');

---------------------------------------------------------------------------
-- Functions: signatures, argument names and defaults (clients use named
-- notation), return types
---------------------------------------------------------------------------
CREATE TEMP TABLE contract (fn name, args name[], arglist text, returns text, definer boolean)
  ON COMMIT DROP;
INSERT INTO contract VALUES
  ('open_wallet',   '{text,text}',             'owner text, currency text DEFAULT ''CNY''::text', 'bigint', true),
  ('open_merchant', '{text,text,text}',        'public_service_id text, display_name text, currency text DEFAULT ''CNY''::text', 'bigint', true),
  ('top_up',        '{bigint,bigint,text}',    'wallet bigint, amount bigint, external_ref text', 'bigint', true),
  -- withdraw and balance switch to the owner themselves (see roles.c), so
  -- that they judge the role that invoked them: SECURITY INVOKER, pinned path.
  ('withdraw',      '{bigint,bigint,text}',    'account bigint, amount bigint, external_ref text', 'bigint', false),
  ('transfer',      '{bigint,bigint,bigint,text}', 'debit_account bigint, credit_account bigint, amount bigint, reference text DEFAULT NULL::text', 'bigint', true),
  ('balance',       '{bigint}',                'account bigint', 'bigint', false),
  ('freeze',        '{bigint}',                'account bigint', 'void', true),
  ('unfreeze',      '{bigint}',                'account bigint', 'void', true),
  ('close_account', '{bigint}',                'account bigint', 'void', true),
  ('verify_ledger', '{}',                      '', 'setof record', true),
  ('reverse_charge', '{bigint,text}',         'merchant bigint, order_ref text', 'bigint', true),
  ('event_channel', '{bigint}',                'merchant bigint', 'text', true),
  ('balance_at',    '{bigint,"timestamp with time zone"}', 'account bigint, at timestamp with time zone', 'bigint', true),
  ('merchant_statement', '{bigint,"timestamp with time zone","timestamp with time zone",text}', 'merchant bigint, from_at timestamp with time zone, to_at timestamp with time zone, kind text DEFAULT ''all''::text', 'setof payext.statement_line', true),
  ('format_amount', '{bigint,text}',           'amount bigint, currency text', 'text', false),
  ('currencies',    '{}',                      'OUT code text, OUT exponent integer, OUT name text', 'setof record', false);

SELECT has_function('payext', fn, args, format('payext.%s(%s) exists', fn, array_to_string(args, ', ')))
  FROM contract ORDER BY fn;
SELECT function_returns('payext', fn, args, returns,
                        format('payext.%s(%s) returns %s', fn, array_to_string(args, ', '), returns))
  FROM contract ORDER BY fn;
SELECT is(pg_get_function_arguments(format('payext.%s(%s)', fn, array_to_string(args, ','))::regprocedure),
          arglist, format('payext.%s argument names and defaults', fn))
  FROM contract ORDER BY fn;
SELECT is(pg_get_function_result('payext.verify_ledger()'::regprocedure),
          'TABLE(check_name text, ok boolean, detail text)',
          'verify_ledger() returns TABLE(check_name text, ok boolean, detail text)');
SELECT volatility_is('payext', 'format_amount', ARRAY['bigint', 'text'], 'immutable');
SELECT volatility_is('payext', 'balance', ARRAY['bigint'], 'stable');

---------------------------------------------------------------------------
-- SECURITY DEFINER, with a pinned search_path
---------------------------------------------------------------------------
SELECT is_definer('payext', fn, args, format('payext.%s is SECURITY DEFINER', fn))
  FROM contract WHERE definer ORDER BY fn;
SELECT isnt_definer('payext', fn, args, format('payext.%s is not SECURITY DEFINER', fn))
  FROM contract WHERE NOT definer ORDER BY fn;
SELECT is(p.proconfig, ARRAY['search_path=pg_catalog, payext, pg_temp'] || CASE WHEN p.proname IN ('request_payment', 'cancel_payment_code', 'charge', 'charge_claimed', 'charge_many', 'refund', 'reverse_order', 'authorize', 'capture_hold', 'void_hold') THEN ARRAY['enable_seqscan=off'] ELSE '{}'::text[] END,
          format('payext.%s runs with search_path = pg_catalog, payext, pg_temp', c.fn))
  FROM contract c
  JOIN pg_proc p ON p.oid = format('payext.%s(%s)', c.fn, array_to_string(c.args, ','))::regprocedure
 WHERE c.definer OR c.fn IN ('balance', 'withdraw') ORDER BY c.fn;
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p
   WHERE p.pronamespace = 'payext'::regnamespace AND p.prosecdef
     AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, payext, pg_temp'] || CASE WHEN p.proname IN ('request_payment', 'cancel_payment_code', 'charge', 'charge_claimed', 'charge_many', 'refund', 'reverse_order', 'authorize', 'capture_hold', 'void_hold') THEN ARRAY['enable_seqscan=off'] ELSE '{}'::text[] END
$$, 'no SECURITY DEFINER function in payext lacks the pinned search_path');

---------------------------------------------------------------------------
-- Privileges of PUBLIC
---------------------------------------------------------------------------
SELECT schema_privs_are('payext', 'public', ARRAY['USAGE'], 'PUBLIC may use schema payext, not create in it');
SELECT function_privs_are('payext', fn, args, 'public', ARRAY[]::name[],
                          format('PUBLIC cannot execute payext.%s', fn))
  FROM contract WHERE fn NOT IN ('format_amount', 'currencies') ORDER BY fn;
SELECT function_privs_are('payext', fn, args, 'public', ARRAY['EXECUTE'],
                          format('PUBLIC can execute payext.%s', fn))
  FROM contract WHERE fn IN ('format_amount', 'currencies') ORDER BY fn;
SELECT set_eq($$
  SELECT p.proname::text FROM pg_proc p
   WHERE p.pronamespace = 'payext'::regnamespace
     AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, ARRAY['currencies', 'format_amount', 'normalize_plate', 'calling_role',
        'caller_has_capability', 'acting_accounts', 'acting_public_service_ids',
        'current_partition', 'partition_of', 'code_partition', 'owner_hash', 'owner_partition',
        'relation_rows'],
'PUBLIC executes only the pure helpers (routing ones included), what row-level security policies call about the caller itself, and relation_rows (the caller''s own privileges)');
SELECT table_privs_are('payext', t, 'public', ARRAY[]::name[],
                       format('PUBLIC has no privilege on payext.%s', t))
  FROM unnest(ARRAY['account', 'transfer']) AS t;
SELECT sequence_privs_are('payext', s, 'public', ARRAY[]::name[],
                          format('PUBLIC has no privilege on payext.%s', s))
  FROM unnest(ARRAY['account_id_seq', 'transfer_id_seq']) AS s;

---------------------------------------------------------------------------
-- A fresh non-superuser role (dropped again by the ROLLBACK)
---------------------------------------------------------------------------
CREATE ROLE payext_tap_nobody NOLOGIN;
SELECT isnt_superuser('payext_tap_nobody');
-- Something to be refused: a real wallet, opened by the superuser.
CREATE TEMP TABLE tap_ids ON COMMIT DROP AS SELECT payext.open_wallet('tap-schema-owner') AS wallet;
GRANT SELECT ON tap_ids TO payext_tap_nobody;
SET LOCAL ROLE payext_tap_nobody;
SELECT throws_ok(format('SELECT payext.top_up(%s, 100, %L)', (SELECT wallet FROM tap_ids), 'tap-nobody'),
                 '42501', 'permission denied for function top_up',
                 'a non-superuser role cannot call top_up');
SELECT throws_ok(format('SELECT payext.balance(%s)', (SELECT wallet FROM tap_ids)),
                 '42501', 'permission denied for function balance',
                 'a non-superuser role cannot read a balance');
SELECT throws_ok('SELECT count(*) FROM payext.transfer', '42501',
                 'permission denied for table transfer',
                 'a non-superuser role cannot read the journal');
SELECT is(payext.format_amount(1234, 'CNY'), '12.34 CNY',
          'a non-superuser role can call format_amount');
SELECT is((SELECT exponent FROM payext.currencies() WHERE code = 'JPY'), 0,
          'a non-superuser role can call currencies');
RESET ROLE;
SELECT is(payext.balance((SELECT wallet FROM tap_ids)), 0::bigint,
          'the refused top_up moved nothing');

SELECT * FROM finish();
ROLLBACK;
