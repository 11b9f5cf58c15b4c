-- association.sql: interactions and automatic association (DESIGN.md,
-- "Interactions and association", and the invariants).
--
-- Proves:
--   - the schema: tables interaction, interaction_pair, association_rule,
--     association_state, the views association, association_opt_out,
--     consumer_merchant, merchant_summary, merchant_daily, the trigger on
--     interaction; every function of the contract with its exact signature,
--     argument names, defaults and return type, SECURITY DEFINER with
--     search_path = pg_catalog, payext, pg_temp, not executable by PUBLIC;
--     no PUBLIC privilege on the tables and views; user tables registered
--     with pg_extension_config_dump;
--   - every refusal has its own SQLSTATE and message:
--       PY001 a NULL argument (record_interaction, set_association_rule's
--             min_interactions, within, min_total_amount, opt_out, opt_in,
--             associate)
--       PY004 an empty or over-long (129 bytes) identifier
--       PY302 a kind that is not a lower-case word ('Visit', '1x', 'a b',
--             33 characters), an occurred_at more than 5 minutes ahead or
--             infinite
--       PY002 a negative amount
--       PY301 a rule out of bounds (min_interactions 0 and 100001, within
--             '0', '-1 day', '3661 days', min_total_amount -1)
--       PY303 associate() after opt_out()
--       PY305 a public-service id no merchant has (record_interaction,
--             set_association_rule, associate)
--   - the rule, with fixed timestamps: exactly min_interactions payments
--     associate, one fewer does not; a total exactly at min_total_amount
--     associates, one minor unit below does not; a payment exactly `within`
--     before the newest is outside the window (t - within, t], one
--     microsecond later inside; visits, coupons and refunds do not count; a
--     merchant's own rule beats the default; no rule, no association;
--     established_at is the occurred_at of the anchor payment (the newest of
--     the window that met the rule, also for a payment imported out of
--     order); rule_id names the rule version that fired;
--   - rules: setting one again supersedes it (one current row per merchant,
--     older versions kept); drop_association_rule is true, then false, and
--     the merchant falls back to the default rule;
--   - consent: opt_out removes the association and blocks it (payments,
--     back-fill, associate); opt_in lifts the block without associating;
--     the next payment or evaluate_associations() associates again;
--   - evaluate_associations() back-fills after a rule change, returns how
--     many it created, creates nothing when run again, honours opt-outs,
--     and with a public_service_id touches that merchant only;
--   - interaction_pair's counts, amounts, first and last agree with the
--     interactions; consumer_merchant, merchant_summary and merchant_daily
--     give the numbers worked out by hand for a small data set.
-- Everything runs in one transaction that is rolled back.  Names start with
-- tap-as- so that nothing else is counted.
BEGIN;
SELECT plan(195);
SET LOCAL TIME ZONE 'UTC';

-- Interactions, rules and manual associations name merchants that exist
-- (PY305 otherwise): every tap-as- name is a merchant's public-service id.
SELECT count(payext.open_merchant(p, p)) FROM unnest(ARRAY[
    'tap-as-a1', 'tap-as-a2', 'tap-as-amt', 'tap-as-ann', 'tap-as-b1',
    'tap-as-b2', 'tap-as-b3', 'tap-as-b4', 'tap-as-bf', 'tap-as-bf2',
    'tap-as-bob', 'tap-as-bounds', 'tap-as-c', 'tap-as-c1', 'tap-as-c9',
    'tap-as-cat', 'tap-as-cnt', 'tap-as-d1', 'tap-as-dan', 'tap-as-dflt',
    'tap-as-e1', 'tap-as-eve', 'tap-as-k1', 'tap-as-kind', 'tap-as-m',
    'tap-as-m1', 'tap-as-n1', 'tap-as-none', 'tap-as-o1', 'tap-as-o2',
    'tap-as-o3', 'tap-as-ok', 'tap-as-v1', 'tap-as-v2', 'tap-as-v3',
    'tap-as-ver', 'tap-as-view', 'tap-as-w-edge', 'tap-as-w-in',
    'tap-as-w-ooo', 'tap-as-w-rev', 'tap-as-win'
  ]) AS p;
SELECT payext.open_merchant(repeat('m', 128), 'a 128-byte public-service id');

-- A payment interaction (void: nothing to print).
CREATE FUNCTION pg_temp.pay(consumer text, psid text, amount bigint, at timestamptz)
RETURNS void LANGUAGE sql AS $$
  SELECT payext.record_interaction(consumer, psid, 'payment', amount, at);
$$;

-- The association of a pair as text, or NULL: "how established_at rule_id".
CREATE FUNCTION pg_temp.assoc(c text, m text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%s %s %s', how, to_char(established_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
                coalesce(rule_id::text, '-'))
    FROM payext.association WHERE consumer = c AND public_service_id = m
$$;

-- The current rule's id of a merchant (NULL: the default).
CREATE FUNCTION pg_temp.rule(m text) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT id FROM payext.association_rule
   WHERE public_service_id IS NOT DISTINCT FROM m AND superseded_at IS NULL
$$;

---------------------------------------------------------------------------
-- Schema
---------------------------------------------------------------------------
SELECT has_table('payext', t, format('payext.%s exists', t))
  FROM unnest(ARRAY['interaction', 'interaction_pair', 'association_rule', 'association_state']::name[]) AS t;
SELECT has_view('payext', v, format('payext.%s exists', v))
  FROM unnest(ARRAY['association', 'association_opt_out', 'consumer_merchant',
                    'merchant_summary', 'merchant_daily']::name[]) AS v;
SELECT columns_are('payext', 'interaction',
                   ARRAY['id', 'consumer', 'public_service_id', 'kind', 'amount', 'currency',
                         'occurred_at', 'transfer_id', 'recorded_at']::name[],
                   'interaction: consumer, public_service_id, kind, amount, occurred_at, transfer id, ...');
SELECT col_type_is('payext', 'interaction', c, t, format('interaction.%s is %s', c, t))
  FROM (VALUES ('consumer', 'text'), ('public_service_id', 'text'), ('kind', 'text'),
               ('amount', 'bigint'), ('occurred_at', 'timestamp with time zone'),
               ('transfer_id', 'bigint')) AS v(c, t);
SELECT col_isnt_fk('payext', 'interaction', 'transfer_id', 'interaction.transfer_id is checked by verify_payments(), not by a foreign key');
SELECT has_column('payext', 'association', c, format('association.%s exists', c))
  FROM unnest(ARRAY['consumer', 'public_service_id', 'established_at', 'how', 'rule_id']::name[]) AS c;
SELECT col_type_is('payext', 'association', 'established_at', 'timestamp with time zone',
                   'association.established_at is timestamptz');
SELECT col_is_pk('payext', 'interaction_pair', ARRAY['consumer', 'public_service_id']::name[],
                 'interaction_pair: one row per consumer and merchant');
SELECT col_is_pk('payext', 'association_state', ARRAY['consumer', 'public_service_id']::name[],
                 'association_state: one row per consumer and merchant (association and opt-out)');
SELECT has_trigger('payext', 'interaction', 'interaction_recorded'::name, 'interaction has its trigger');
SELECT trigger_is('payext', 'interaction', 'interaction_recorded', 'payext', 'interaction_recorded');
SELECT matches(pg_get_triggerdef(t.oid), 'AFTER INSERT ON payext\.interaction FOR EACH ROW ',
               'interaction_recorded fires after each INSERT, per row')
  FROM pg_trigger t WHERE t.tgrelid = 'payext.interaction'::regclass AND t.tgname = 'interaction_recorded';
SELECT ok((SELECT extconfig @> ARRAY['payext.interaction'::regclass, 'payext.interaction_pair'::regclass,
                                     'payext.association_rule'::regclass, 'payext.association_state'::regclass]::oid[]
             FROM pg_extension WHERE extname = 'payext'),
          'interaction, interaction_pair, association_rule and association_state are dumped (pg_extension_config_dump)');

CREATE TEMP TABLE contract (fn name, args name[], arglist text, returns text) ON COMMIT DROP;
INSERT INTO contract VALUES
  ('record_interaction',    '{text,text,text,bigint,timestamp with time zone}',
   'consumer text, public_service_id text, kind text, amount bigint DEFAULT 0, occurred_at timestamp with time zone DEFAULT now()', 'bigint'),
  ('set_association_rule',  '{text,integer,interval,bigint}',
   'public_service_id text, min_interactions integer, within interval, min_total_amount bigint DEFAULT 0', 'void'),
  ('drop_association_rule', '{text}', 'public_service_id text', 'boolean'),
  ('evaluate_associations', '{text}', 'public_service_id text DEFAULT NULL::text', 'integer'),
  ('opt_out',               '{text,text}', 'consumer text, public_service_id text', 'void'),
  ('opt_in',                '{text,text}', 'consumer text, public_service_id text', 'void'),
  ('associate',             '{text,text}', 'consumer text, public_service_id text', 'void');

SELECT has_function('payext', fn, args, format('payext.%s(%s) exists', fn, array_to_string(args, ', ')))
  FROM contract ORDER BY fn;
SELECT function_returns('payext', fn, args, returns,
                        format('payext.%s(%s) returns %s', fn, array_to_string(args, ', '), returns))
  FROM contract ORDER BY fn;
SELECT is(pg_get_function_arguments(format('payext.%s(%s)', fn, array_to_string(args, ','))::regprocedure),
          arglist, format('payext.%s argument names and defaults', fn))
  FROM contract ORDER BY fn;
SELECT is_definer('payext', fn, args, format('payext.%s is SECURITY DEFINER', fn))
  FROM contract ORDER BY fn;
SELECT is(p.proconfig, ARRAY['search_path=pg_catalog, payext, pg_temp'],
          format('payext.%s runs with search_path = pg_catalog, payext, pg_temp', c.fn))
  FROM contract c
  JOIN pg_proc p ON p.oid = format('payext.%s(%s)', c.fn, array_to_string(c.args, ','))::regprocedure
 ORDER BY c.fn;
SELECT function_privs_are('payext', fn, args, 'public', ARRAY[]::name[],
                          format('PUBLIC cannot execute payext.%s', fn))
  FROM contract ORDER BY fn;
SELECT function_privs_are('payext', 'interaction_recorded', ARRAY[]::name[], 'public', ARRAY[]::name[],
                          'PUBLIC cannot execute payext.interaction_recorded');
SELECT table_privs_are('payext', t, 'public', ARRAY[]::name[],
                       format('PUBLIC has no privilege on payext.%s', t))
  FROM unnest(ARRAY['interaction', 'interaction_pair', 'association_rule', 'association_state',
                    'association', 'association_opt_out', 'consumer_merchant',
                    'merchant_summary', 'merchant_daily']::name[]) AS t;

---------------------------------------------------------------------------
-- PY001: NULL arguments
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.record_interaction(%s)', args), 'PY001',
                 format('argument "%s" must not be null', name), format('record_interaction with a NULL %s', name))
  FROM (VALUES ('consumer',          $$NULL, 'tap-as-m', 'visit', 0, now()$$),
               ('public_service_id', $$'tap-as-c', NULL, 'visit', 0, now()$$),
               ('kind',              $$'tap-as-c', 'tap-as-m', NULL, 0, now()$$),
               ('amount',            $$'tap-as-c', 'tap-as-m', 'visit', NULL, now()$$),
               ('occurred_at',       $$'tap-as-c', 'tap-as-m', 'visit', 0, NULL$$)) AS v(name, args);
SELECT throws_ok(format('SELECT payext.set_association_rule(%s)', args), 'PY001',
                 format('argument "%s" must not be null', name), format('set_association_rule with a NULL %s', name))
  FROM (VALUES ('min_interactions', $$'tap-as-m', NULL, '1 day', 0$$),
               ('within',           $$'tap-as-m', 1, NULL, 0$$),
               ('min_total_amount', $$'tap-as-m', 1, '1 day', NULL$$)) AS v(name, args);
SELECT throws_ok(format('SELECT payext.%s(%s)', fn, args), 'PY001',
                 format('argument "%s" must not be null', name), format('%s with a NULL %s', fn, name))
  FROM unnest(ARRAY['opt_out', 'opt_in', 'associate']) AS fn,
       (VALUES ('consumer', $$NULL, 'tap-as-m'$$),
               ('public_service_id', $$'tap-as-c', NULL$$)) AS v(name, args)
 ORDER BY fn, name;

---------------------------------------------------------------------------
-- PY004: identifiers must be 1 to 128 bytes
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.%s', call), 'PY004',
                 format('argument "%s" must be 1 to 128 bytes long', name), format('%s: %s', name, what))
  FROM (VALUES ('consumer', 'empty', $$record_interaction('', 'tap-as-m', 'visit')$$),
               ('consumer', '129 bytes', format('record_interaction(%L, %L, %L)', repeat('c', 129), 'tap-as-m', 'visit')),
               ('public_service_id', 'empty', $$record_interaction('tap-as-c', '', 'visit')$$),
               ('public_service_id', '129 bytes', format('record_interaction(%L, %L, %L)', 'tap-as-c', repeat('m', 129), 'visit')),
               ('public_service_id', 'empty (a rule)', $$set_association_rule('', 1, '1 day')$$),
               ('public_service_id', 'empty (opt_out)', $$opt_out('tap-as-c', '')$$),
               ('consumer', '129 bytes (associate)', format('associate(%L, %L)', repeat('c', 129), 'tap-as-m')),
               ('public_service_id', 'empty (evaluate_associations)', $$evaluate_associations('')$$)) AS v(name, what, call);
SELECT lives_ok(format('SELECT payext.record_interaction(%L, %L, %L)', repeat('c', 128), repeat('m', 128), 'visit'),
                'identifiers of exactly 128 bytes are accepted');

---------------------------------------------------------------------------
-- PY302: a bad kind, a bad time; PY002: a negative amount
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.record_interaction(%L, %L, %L)', 'tap-as-c', 'tap-as-m', kind), 'PY302',
                 format('interaction kind "%s" is not a lower-case word', kind), format('kind %s: %s', kind, why))
  FROM (VALUES ('Visit', 'upper case'), ('1x', 'starts with a digit'), ('a b', 'a space'),
               (repeat('k', 33), '33 characters')) AS v(kind, why);
SELECT lives_ok(format('SELECT payext.record_interaction(%L, %L, %L)', 'tap-as-c', 'tap-as-m', repeat('k', 32)),
                'a kind of 32 characters is accepted');
SELECT throws_ok(format('SELECT payext.record_interaction(%L, %L, %L, 0, %s)', 'tap-as-c', 'tap-as-m', 'visit', at), 'PY302',
                 'occurred_at must be a finite time not in the future', format('occurred_at %s', at))
  FROM (VALUES ($$now() + interval '5 minutes 0.000001 seconds'$$), ($$now() + interval '1 hour'$$),
               ($$'infinity'$$), ($$'-infinity'$$)) AS v(at);
SELECT lives_ok($$SELECT payext.record_interaction('tap-as-c', 'tap-as-m', 'visit', 0, now() + interval '5 minutes')$$,
                'occurred_at exactly 5 minutes ahead is accepted (clock skew)');
SELECT throws_ok($$SELECT payext.record_interaction('tap-as-c', 'tap-as-m', 'payment', -1)$$, 'PY002',
                 'amount must not be negative', 'record_interaction with amount -1');
SELECT lives_ok($$SELECT payext.record_interaction('tap-as-c', 'tap-as-m', 'visit', 0)$$,
                'an interaction may have amount 0 (a visit)');

---------------------------------------------------------------------------
-- PY301: rules out of bounds
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.set_association_rule(%L, %s)', 'tap-as-m', args), 'PY301', msg, what)
  FROM (VALUES ($$0, '1 day'$$, 'min_interactions must be between 1 and 100000', 'min_interactions 0'),
               ($$100001, '1 day'$$, 'min_interactions must be between 1 and 100000', 'min_interactions 100001'),
               ($$1, '0'$$, 'within must be between 1 second and the rule window''s limit', 'within 0'),
               ($$1, '-1 day'$$, 'within must be between 1 second and the rule window''s limit', 'within -1 day'),
               ($$1, '3661 days'$$, 'within must be between 1 second and the rule window''s limit', 'within 3661 days'),
               ($$1, '1 day', -1$$, 'min_total_amount must not be negative', 'min_total_amount -1')) AS v(args, msg, what);
SELECT is_empty($$SELECT 1 FROM payext.association_rule WHERE public_service_id = 'tap-as-m'$$,
                'the refused rules left nothing');
SELECT lives_ok($$SELECT payext.set_association_rule('tap-as-bounds', 100000, '3660 days', 0)$$,
                'a rule at the upper bounds (100000 payments, 3660 days) is accepted');
SELECT lives_ok($$SELECT payext.set_association_rule('tap-as-bounds', 1, '1 second')$$,
                'a rule at the lower bounds (1 payment, 1 second) is accepted');

---------------------------------------------------------------------------
-- No rule, no association
---------------------------------------------------------------------------
SELECT is_empty($$SELECT 1 FROM payext.association_rule WHERE public_service_id IS NULL$$,
                'precondition: there is no default rule yet');
SELECT payext.record_interaction('tap-as-n1', 'tap-as-none', 'payment', 100, '2025-04-01 10:00+00') AS n1 \gset
SELECT ok(payext.record_interaction('tap-as-n1', 'tap-as-none', 'payment', 100, '2025-04-02 10:00+00') > :n1,
          'record_interaction returns the new interaction''s id; ids grow');
SELECT pg_temp.pay('tap-as-n1', 'tap-as-none', 100, '2025-04-03 10:00+00');
SELECT is(pg_temp.assoc('tap-as-n1', 'tap-as-none'), NULL, 'a merchant without a rule (and no default): no association');

---------------------------------------------------------------------------
-- min_interactions: 3 payments within 30 days
---------------------------------------------------------------------------
SELECT payext.set_association_rule(public_service_id => 'tap-as-cnt', min_interactions => 3, within => '30 days');
SELECT pg_temp.rule('tap-as-cnt') AS r_cnt \gset
SELECT pg_temp.pay('tap-as-c1', 'tap-as-cnt', 100, '2025-03-01 10:00+00');
SELECT pg_temp.pay('tap-as-c1', 'tap-as-cnt', 100, '2025-03-02 10:00+00');
SELECT is(pg_temp.assoc('tap-as-c1', 'tap-as-cnt'), NULL, 'two payments of three: not associated');
SELECT pg_temp.pay('tap-as-c1', 'tap-as-cnt', 100, '2025-03-03 10:00+00');
SELECT is(pg_temp.assoc('tap-as-c1', 'tap-as-cnt'), 'auto 2025-03-03 10:00:00.000000 ' || :r_cnt,
          'exactly three: associated (auto), established at the third payment, by the merchant''s rule');
SELECT pg_temp.pay('tap-as-c1', 'tap-as-cnt', 100, '2025-03-04 10:00+00');
SELECT is(pg_temp.assoc('tap-as-c1', 'tap-as-cnt'), 'auto 2025-03-03 10:00:00.000000 ' || :r_cnt,
          'a further payment changes nothing');

---------------------------------------------------------------------------
-- min_total_amount: 1 payment within 30 days, at least 50.00
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-amt', 1, '30 days', 5000);
SELECT pg_temp.rule('tap-as-amt') AS r_amt \gset
SELECT pg_temp.pay('tap-as-a1', 'tap-as-amt', 4999, '2025-03-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-a1', 'tap-as-amt'), NULL, '49.99 of 50.00: not associated');
SELECT pg_temp.pay('tap-as-a2', 'tap-as-amt', 5000, '2025-03-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-a2', 'tap-as-amt'), 'auto 2025-03-01 10:00:00.000000 ' || :r_amt,
          'exactly 50.00: associated');
SELECT pg_temp.pay('tap-as-a1', 'tap-as-amt', 1, '2025-03-02 10:00+00');
SELECT is(pg_temp.assoc('tap-as-a1', 'tap-as-amt'), 'auto 2025-03-02 10:00:00.000000 ' || :r_amt,
          'one more fen in the window makes 50.00: associated at that payment');

---------------------------------------------------------------------------
-- The window (t - within, t]: 2 payments within 30 days
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-win', 2, '30 days');
SELECT pg_temp.rule('tap-as-win') AS r_win \gset
SELECT pg_temp.pay('tap-as-w-edge', 'tap-as-win', 100, '2025-01-01 10:00+00');
SELECT pg_temp.pay('tap-as-w-edge', 'tap-as-win', 100, '2025-01-31 10:00+00');
SELECT is(pg_temp.assoc('tap-as-w-edge', 'tap-as-win'), NULL,
          'a payment exactly 30 days before the newest is outside the window');
SELECT pg_temp.pay('tap-as-w-in', 'tap-as-win', 100, '2025-01-01 10:00:00.000001+00');
SELECT pg_temp.pay('tap-as-w-in', 'tap-as-win', 100, '2025-01-31 10:00+00');
SELECT is(pg_temp.assoc('tap-as-w-in', 'tap-as-win'), 'auto 2025-01-31 10:00:00.000000 ' || :r_win,
          'one microsecond later it is inside: associated at the newest');
SELECT pg_temp.pay('tap-as-w-rev', 'tap-as-win', 100, '2025-01-31 10:00+00');
SELECT pg_temp.pay('tap-as-w-rev', 'tap-as-win', 100, '2025-01-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-w-rev', 'tap-as-win'), NULL,
          'the same edge with the older payment recorded last: outside');
SELECT pg_temp.pay('tap-as-w-ooo', 'tap-as-win', 100, '2025-03-10 12:00+00');
SELECT pg_temp.pay('tap-as-w-ooo', 'tap-as-win', 100, '2025-03-05 12:00+00');
SELECT is(pg_temp.assoc('tap-as-w-ooo', 'tap-as-win'), 'auto 2025-03-10 12:00:00.000000 ' || :r_win,
          'a payment imported out of order: established at the anchor, the newest payment of the window');

---------------------------------------------------------------------------
-- Only payments count
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-kind', 2, '30 days');
SELECT pg_temp.rule('tap-as-kind') AS r_kind \gset
SELECT pg_temp.pay('tap-as-k1', 'tap-as-kind', 100, '2025-06-01 10:00+00');
SELECT payext.record_interaction('tap-as-k1', 'tap-as-kind', 'visit', 0, '2025-06-02 10:00+00') > 0 AS visit,
       payext.record_interaction('tap-as-k1', 'tap-as-kind', 'refund', 100, '2025-06-03 10:00+00') > 0 AS refund,
       payext.record_interaction('tap-as-k1', 'tap-as-kind', 'coupon_redeemed', 9999, '2025-06-04 10:00+00') > 0 AS coupon
\gset
SELECT is(pg_temp.assoc('tap-as-k1', 'tap-as-kind'), NULL,
          'a payment, a visit, a refund and a coupon: one payment, not associated');
SELECT results_eq($$SELECT interactions, payments, payment_amount, refund_amount, first_at, last_at
                      FROM payext.interaction_pair WHERE consumer = 'tap-as-k1' AND public_service_id = 'tap-as-kind'$$,
                  $$VALUES (4::bigint, 1::bigint, 100::numeric, 100::numeric,
                            '2025-06-01 10:00+00'::timestamptz, '2025-06-04 10:00+00'::timestamptz)$$,
                  'interaction_pair: 4 interactions, 1 payment of 1.00, refunds 1.00, first and last');
SELECT pg_temp.pay('tap-as-k1', 'tap-as-kind', 100, '2025-06-05 10:00+00');
SELECT is(pg_temp.assoc('tap-as-k1', 'tap-as-kind'), 'auto 2025-06-05 10:00:00.000000 ' || :r_kind,
          'the second payment associates');

---------------------------------------------------------------------------
-- The default rule, and a merchant's own rule beating it
---------------------------------------------------------------------------
SELECT payext.set_association_rule(NULL, 1, '1 day');
SELECT pg_temp.rule(NULL) AS r_def \gset
SELECT pg_temp.pay('tap-as-d1', 'tap-as-dflt', 100, '2025-07-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-d1', 'tap-as-dflt'), 'auto 2025-07-01 10:00:00.000000 ' || :r_def,
          'a merchant without a rule of its own follows the default rule');
SELECT pg_temp.pay('tap-as-c9', 'tap-as-cnt', 100, '2025-07-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-c9', 'tap-as-cnt'), NULL,
          'a merchant''s own rule (3 payments) beats the default (1 payment)');
SELECT is(pg_temp.assoc('tap-as-n1', 'tap-as-none'), NULL,
          'a new default rule alone does not re-evaluate history');

---------------------------------------------------------------------------
-- Rule versions; drop_association_rule
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-ver', 2, '30 days');
SELECT pg_temp.rule('tap-as-ver') AS r_v1 \gset
SELECT pg_temp.pay('tap-as-v1', 'tap-as-ver', 100, '2025-05-01 10:00+00');
SELECT pg_temp.pay('tap-as-v1', 'tap-as-ver', 100, '2025-05-02 10:00+00');
SELECT payext.set_association_rule('tap-as-ver', 3, '30 days', 0);
SELECT pg_temp.rule('tap-as-ver') AS r_v2 \gset
SELECT results_eq(format($$SELECT id, min_interactions, within, superseded_at IS NULL, superseded_at = now()
                             FROM payext.association_rule WHERE public_service_id = %L ORDER BY id$$, 'tap-as-ver'),
                  format($$VALUES (%s::bigint, 2, '30 days'::interval, false, true),
                                  (%s::bigint, 3, '30 days'::interval, true, NULL::boolean)$$, :r_v1, :r_v2),
                  'setting a rule again keeps the old version, superseded now, and one current version');
SELECT is(pg_temp.assoc('tap-as-v1', 'tap-as-ver'), 'auto 2025-05-02 10:00:00.000000 ' || :r_v1,
          'an association keeps the rule version that made it');
SELECT pg_temp.pay('tap-as-v2', 'tap-as-ver', 100, '2025-05-01 10:00+00');
SELECT pg_temp.pay('tap-as-v2', 'tap-as-ver', 100, '2025-05-02 10:00+00');
SELECT is(pg_temp.assoc('tap-as-v2', 'tap-as-ver'), NULL, 'the new version asks for 3: two payments are not enough');
SELECT pg_temp.pay('tap-as-v2', 'tap-as-ver', 100, '2025-05-03 10:00+00');
SELECT is(pg_temp.assoc('tap-as-v2', 'tap-as-ver'), 'auto 2025-05-03 10:00:00.000000 ' || :r_v2,
          'the third payment associates, naming the new version');
SELECT is(payext.drop_association_rule('tap-as-ver'), true, 'drop_association_rule: true when there was a rule');
SELECT is(payext.drop_association_rule('tap-as-ver'), false, 'drop_association_rule again: false');
SELECT is((SELECT count(*)::int FROM payext.association_rule WHERE public_service_id = 'tap-as-ver' AND superseded_at IS NULL),
          0, 'the merchant has no current rule');
SELECT is((SELECT count(*)::int FROM payext.association_rule WHERE public_service_id = 'tap-as-ver'),
          2, '... and both versions are kept');
SELECT is(pg_temp.assoc('tap-as-v2', 'tap-as-ver'), 'auto 2025-05-03 10:00:00.000000 ' || :r_v2,
          'dropping a rule leaves its associations');
SELECT pg_temp.pay('tap-as-v3', 'tap-as-ver', 100, '2025-05-01 10:00+00');
SELECT is(pg_temp.assoc('tap-as-v3', 'tap-as-ver'), 'auto 2025-05-01 10:00:00.000000 ' || :r_def,
          'after the drop, the merchant follows the default rule');

---------------------------------------------------------------------------
-- Consent
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-ok', 2, '30 days');
SELECT pg_temp.rule('tap-as-ok') AS r_ok \gset
SELECT pg_temp.pay('tap-as-o1', 'tap-as-ok', 100, '2025-08-01 10:00+00');
SELECT pg_temp.pay('tap-as-o1', 'tap-as-ok', 100, '2025-08-02 10:00+00');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), 'auto 2025-08-02 10:00:00.000000 ' || :r_ok, 'o1 is associated');
SELECT lives_ok($$SELECT payext.opt_in('tap-as-o1', 'tap-as-ok')$$, 'opt_in without an opt-out is harmless');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), 'auto 2025-08-02 10:00:00.000000 ' || :r_ok,
          '... and leaves the association');
SELECT lives_ok($$SELECT payext.opt_out(consumer => 'tap-as-o1', public_service_id => 'tap-as-ok')$$, 'opt_out');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), NULL, 'opt_out removes the association');
SELECT results_eq($$SELECT consumer, opted_out_at FROM payext.association_opt_out WHERE public_service_id = 'tap-as-ok'$$,
                  $$VALUES ('tap-as-o1'::text, now())$$, 'association_opt_out lists the opt-out, at the transaction''s time');
SELECT lives_ok($$SELECT payext.opt_out('tap-as-o1', 'tap-as-ok')$$, 'opt_out again is harmless');
SELECT pg_temp.pay('tap-as-o1', 'tap-as-ok', 100, '2025-08-03 10:00+00');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), NULL, 'a payment meeting the rule does not associate an opted-out consumer');
SELECT is(payext.evaluate_associations('tap-as-ok'), 0, 'evaluate_associations skips the opted-out consumer');
SELECT throws_ok($$SELECT payext.associate('tap-as-o1', 'tap-as-ok')$$, 'PY303',
                 'consumer "tap-as-o1" opted out of merchant "tap-as-ok"', 'associate after opt_out: PY303');

-- PY305: a public-service id that no merchant has collects nothing.
SELECT throws_ok($$SELECT payext.record_interaction('tap-as-c', 'tap-as-nobody', 'visit')$$, 'PY305',
                 'no merchant has public-service id "tap-as-nobody"', 'an interaction with an unknown merchant: PY305');
SELECT throws_ok($$SELECT payext.set_association_rule('tap-as-nobody', 1, '1 day')$$, 'PY305',
                 'no merchant has public-service id "tap-as-nobody"', 'a rule of an unknown merchant: PY305');
SELECT throws_ok($$SELECT payext.associate('tap-as-c', 'tap-as-nobody')$$, 'PY305',
                 'no merchant has public-service id "tap-as-nobody"', 'an association with an unknown merchant: PY305');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), NULL, '... and nothing was associated');
SELECT lives_ok($$SELECT payext.opt_in(consumer => 'tap-as-o1', public_service_id => 'tap-as-ok')$$, 'opt_in');
SELECT is_empty($$SELECT 1 FROM payext.association_opt_out WHERE consumer = 'tap-as-o1'$$, 'opt_in lifts the opt-out');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), NULL, '... but does not associate by itself');
SELECT pg_temp.pay('tap-as-o1', 'tap-as-ok', 100, '2025-08-04 10:00+00');
SELECT is(pg_temp.assoc('tap-as-o1', 'tap-as-ok'), 'auto 2025-08-04 10:00:00.000000 ' || :r_ok,
          'the next payment associates again');
SELECT pg_temp.pay('tap-as-o2', 'tap-as-ok', 100, '2025-08-01 10:00+00');
SELECT pg_temp.pay('tap-as-o2', 'tap-as-ok', 100, '2025-08-02 10:00+00');
SELECT payext.opt_out('tap-as-o2', 'tap-as-ok');
SELECT payext.opt_in('tap-as-o2', 'tap-as-ok');
SELECT is(pg_temp.assoc('tap-as-o2', 'tap-as-ok'), NULL, 'o2 opted out and in again: not associated');
SELECT is(payext.evaluate_associations('tap-as-ok'), 1, 'evaluate_associations associates o2 again');
SELECT is(pg_temp.assoc('tap-as-o2', 'tap-as-ok'), 'auto 2025-08-02 10:00:00.000000 ' || :r_ok,
          '... established when the rule was first met');
SELECT payext.opt_out('tap-as-o3', 'tap-as-ok');
SELECT pg_temp.pay('tap-as-o3', 'tap-as-ok', 100, '2025-08-01 10:00+00');
SELECT pg_temp.pay('tap-as-o3', 'tap-as-ok', 100, '2025-08-02 10:00+00');
SELECT is(pg_temp.assoc('tap-as-o3', 'tap-as-ok'), NULL, 'opting out before the first interaction blocks too');
SELECT lives_ok($$SELECT payext.associate(consumer => 'tap-as-m1', public_service_id => 'tap-as-ok')$$, 'associate by hand');
SELECT lives_ok($$SELECT payext.associate('tap-as-m1', 'tap-as-ok')$$, 'associate again is harmless');
SELECT results_eq($$SELECT how, established_at, rule_id FROM payext.association
                     WHERE consumer = 'tap-as-m1' AND public_service_id = 'tap-as-ok'$$,
                  $$VALUES ('manual'::text, now(), NULL::bigint)$$,
                  'a manual association: how manual, now, no rule');

---------------------------------------------------------------------------
-- evaluate_associations after a rule change
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-bf', 5, '30 days');
SELECT payext.set_association_rule('tap-as-bf2', 5, '30 days');
DO $$
BEGIN
  PERFORM pg_temp.pay('tap-as-b1', 'tap-as-bf', 100, '2025-09-01 10:00+00');
  PERFORM pg_temp.pay('tap-as-b1', 'tap-as-bf', 100, '2025-09-02 10:00+00');
  PERFORM pg_temp.pay('tap-as-b2', 'tap-as-bf', 100, '2025-09-01 10:00+00');
  PERFORM pg_temp.pay('tap-as-b2', 'tap-as-bf', 100, '2025-10-20 10:00+00');
  PERFORM pg_temp.pay('tap-as-b2', 'tap-as-bf', 100, '2025-10-25 10:00+00');
  PERFORM pg_temp.pay('tap-as-b3', 'tap-as-bf', 100, '2025-09-01 10:00+00');
  PERFORM payext.record_interaction('tap-as-b3', 'tap-as-bf', 'visit', 0, '2025-09-02 10:00+00');
  PERFORM pg_temp.pay('tap-as-b4', 'tap-as-bf', 100, '2025-09-01 10:00+00');
  PERFORM pg_temp.pay('tap-as-b4', 'tap-as-bf', 100, '2025-09-02 10:00+00');
  PERFORM payext.opt_out('tap-as-b4', 'tap-as-bf');
  PERFORM pg_temp.pay('tap-as-e1', 'tap-as-bf2', 100, '2025-09-01 10:00+00');
  PERFORM pg_temp.pay('tap-as-e1', 'tap-as-bf2', 100, '2025-09-02 10:00+00');
END
$$;
SELECT is_empty($$SELECT 1 FROM payext.association WHERE public_service_id IN ('tap-as-bf', 'tap-as-bf2')$$,
                'under 5 payments in 30 days nobody is associated');
SELECT payext.set_association_rule('tap-as-bf', 2, '30 days');
SELECT payext.set_association_rule('tap-as-bf2', 2, '30 days');
SELECT pg_temp.rule('tap-as-bf') AS r_bf, pg_temp.rule('tap-as-bf2') AS r_bf2 \gset
SELECT is_empty($$SELECT 1 FROM payext.association WHERE public_service_id IN ('tap-as-bf', 'tap-as-bf2')$$,
                'a rule change alone associates nobody');
SELECT is(payext.evaluate_associations(public_service_id => 'tap-as-bf'), 2,
          'evaluate_associations(tap-as-bf) after the change to 2 in 30 days creates 2');
SELECT results_eq($$SELECT consumer, how, established_at, rule_id FROM payext.association
                     WHERE public_service_id = 'tap-as-bf' ORDER BY consumer$$,
                  format($$VALUES ('tap-as-b1'::text, 'auto'::text, '2025-09-02 10:00+00'::timestamptz, %s::bigint),
                                  ('tap-as-b2', 'auto', '2025-10-25 10:00+00', %s)$$, :r_bf, :r_bf),
                  'b1 and b2, at the first moment their history met the new rule; not b3 (one payment), not b4 (opted out)');
SELECT is(payext.evaluate_associations('tap-as-bf'), 0, 'run again, it creates nothing');
SELECT is(pg_temp.assoc('tap-as-e1', 'tap-as-bf2'), NULL, 'with a public_service_id it touched no other merchant');
SELECT is(payext.evaluate_associations(), 2,
          'evaluate_associations() for all: e1 at tap-as-bf2, and n1 at tap-as-none, now under the default rule');
SELECT is(pg_temp.assoc('tap-as-e1', 'tap-as-bf2'), 'auto 2025-09-02 10:00:00.000000 ' || :r_bf2, 'e1 is associated');
SELECT is(pg_temp.assoc('tap-as-n1', 'tap-as-none'), 'auto 2025-04-01 10:00:00.000000 ' || :r_def,
          'n1 is associated by the default rule, at its first payment');
SELECT is(payext.evaluate_associations(), 0, 'evaluate_associations() again creates nothing');
SELECT is(pg_temp.assoc('tap-as-b4', 'tap-as-bf'), NULL, 'b4 stays opted out');

---------------------------------------------------------------------------
-- interaction_pair agrees with the interactions
---------------------------------------------------------------------------
SELECT results_eq($$SELECT consumer, public_service_id, interactions, payments, payment_amount, refund_amount,
                           first_at, last_at
                      FROM payext.interaction_pair WHERE public_service_id LIKE 'tap-as-%'
                     ORDER BY 1, 2$$,
                  $$SELECT consumer, public_service_id, count(*), count(*) FILTER (WHERE kind = 'payment'),
                           coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0)::numeric,
                           coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0)::numeric,
                           min(occurred_at), max(occurred_at)
                      FROM payext.interaction WHERE public_service_id LIKE 'tap-as-%'
                     GROUP BY 1, 2 ORDER BY 1, 2$$,
                  'interaction_pair: counts, amounts, first and last of every pair agree with interaction');
SELECT results_eq($$SELECT interactions, payments, payment_amount, first_at, last_at FROM payext.interaction_pair
                     WHERE consumer = 'tap-as-c1' AND public_service_id = 'tap-as-cnt'$$,
                  $$VALUES (4::bigint, 4::bigint, 400::numeric, '2025-03-01 10:00+00'::timestamptz, '2025-03-04 10:00+00'::timestamptz)$$,
                  'c1 at tap-as-cnt: 4 payments of 1.00, 1 to 4 March');

---------------------------------------------------------------------------
-- Views for analysts: tap-as-view, 2 payments within 7 days
--   ann  pay 10.00 05-01 09:00, pay 20.00 05-03 23:30  -> auto at 05-03 23:30
--   bob  visit 05-01 12:00, pay 5.00 05-02 08:00, refund 2.00 05-02 09:00
--   cat  pay 3.00 05-02 10:00, pay 4.00 05-20 10:00   (18 days apart: no)
--   dan  pay 1.00 05-03 00:00, then associated by hand (now)
--   eve  opts out, then pays 1.00 05-01 10:00 and 1.00 05-01 11:00
---------------------------------------------------------------------------
SELECT payext.set_association_rule('tap-as-view', 2, '7 days');
DO $$
BEGIN
  PERFORM pg_temp.pay('tap-as-ann', 'tap-as-view', 1000, '2025-05-01 09:00+00');
  PERFORM pg_temp.pay('tap-as-ann', 'tap-as-view', 2000, '2025-05-03 23:30+00');
  PERFORM payext.record_interaction('tap-as-bob', 'tap-as-view', 'visit', 0, '2025-05-01 12:00+00');
  PERFORM pg_temp.pay('tap-as-bob', 'tap-as-view', 500, '2025-05-02 08:00+00');
  PERFORM payext.record_interaction('tap-as-bob', 'tap-as-view', 'refund', 200, '2025-05-02 09:00+00');
  PERFORM pg_temp.pay('tap-as-cat', 'tap-as-view', 300, '2025-05-02 10:00+00');
  PERFORM pg_temp.pay('tap-as-cat', 'tap-as-view', 400, '2025-05-20 10:00+00');
  PERFORM pg_temp.pay('tap-as-dan', 'tap-as-view', 100, '2025-05-03 00:00+00');
  PERFORM payext.associate('tap-as-dan', 'tap-as-view');
  PERFORM payext.opt_out('tap-as-eve', 'tap-as-view');
  PERFORM pg_temp.pay('tap-as-eve', 'tap-as-view', 100, '2025-05-01 10:00+00');
  PERFORM pg_temp.pay('tap-as-eve', 'tap-as-view', 100, '2025-05-01 11:00+00');
END
$$;
SELECT results_eq($$SELECT consumer, interactions, payments, payment_amount, refund_amount, first_at, last_at,
                           associated, established_at, how, opted_out
                      FROM payext.consumer_merchant WHERE public_service_id = 'tap-as-view' ORDER BY consumer$$,
                  $$VALUES ('tap-as-ann'::text, 2::bigint, 2::bigint, 3000::numeric, 0::numeric,
                            '2025-05-01 09:00+00'::timestamptz, '2025-05-03 23:30+00'::timestamptz,
                            true, '2025-05-03 23:30+00'::timestamptz, 'auto'::text, false),
                           ('tap-as-bob', 3, 1, 500, 200, '2025-05-01 12:00+00', '2025-05-02 09:00+00', false, NULL, NULL, false),
                           ('tap-as-cat', 2, 2, 700, 0, '2025-05-02 10:00+00', '2025-05-20 10:00+00', false, NULL, NULL, false),
                           ('tap-as-dan', 1, 1, 100, 0, '2025-05-03 00:00+00', '2025-05-03 00:00+00', true, now(), 'manual', false),
                           ('tap-as-eve', 2, 2, 200, 0, '2025-05-01 10:00+00', '2025-05-01 11:00+00', false, NULL, NULL, true)$$,
                  'consumer_merchant for tap-as-view');
SELECT results_eq($$SELECT consumers, interactions, payments, repeat_consumers, associated_consumers,
                           conversion_rate, payment_amount, refund_amount
                      FROM payext.merchant_summary WHERE public_service_id = 'tap-as-view'$$,
                  $$VALUES (5::bigint, 10::numeric, 8::numeric, 3::bigint, 2::bigint, 0.4000::numeric,
                            4500::numeric, 200::numeric)$$,
                  'merchant_summary for tap-as-view: 5 consumers, 10 interactions, 8 payments, 3 with 2+ payments (ann, cat, eve), 2 associated (ann, dan), 0.4, 45.00 paid, 2.00 refunded');
SELECT results_eq($$SELECT day, interactions, payments, consumers, repeat_consumers, new_associations,
                           associated_consumers, conversion_rate, payment_amount, refund_amount
                      FROM payext.merchant_daily WHERE public_service_id = 'tap-as-view' ORDER BY day$$,
                  $$VALUES ('2025-05-01'::date, 4::bigint, 3::bigint, 3::bigint, 0::bigint, 0::bigint, 1::bigint, 0.3333::numeric, 1200::numeric, 0::numeric),
                           ('2025-05-02', 3, 2, 2, 1, 0, 0, 0.0000, 800, 200),
                           ('2025-05-03', 2, 2, 2, 1, 1, 2, 1.0000, 2100, 0),
                           ('2025-05-20', 1, 1, 1, 1, 0, 0, 0.0000, 400, 0)$$,
                  'merchant_daily for tap-as-view (UTC days; repeat = seen before that day)');

SELECT * FROM finish();
ROLLBACK;
