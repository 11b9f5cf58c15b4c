-- parking.sql: vehicles, lots, the tariff, stays, service info and payment
-- (DESIGN.md, "Parking", and the invariants).
--
-- Proves:
--   - the schema: tables vehicle, vehicle_owner, parking_lot, parking_stay,
--     parking_payment, parking_plate_events and the view parking_anomaly;
--     every parking function of the contract with its exact signature,
--     argument names, defaults, return type and volatility; SECURITY
--     DEFINER with search_path =
--     pg_catalog, payext, pg_temp except the pure normalize_plate, the one
--     of them PUBLIC may execute; no PUBLIC privilege on the tables, view and
--     sequences; user tables registered with pg_extension_config_dump;
--     payext.max_vehicles, payext.max_stay, payext.max_clock_skew and
--     payext.max_auto_pay can be set by a superuser only, within their
--     bounds (pg_settings);
--   - every refusal has its own SQLSTATE and message:
--       PY001 a NULL argument of each function (parking_fee's lot too)
--       PY002 a non-positive payment  PY004 an empty owner or lot name
--       PY401 a plate that is not one ('', 'A', 13 characters, 'AB_12', an
--             emoji, 129 bytes), with the reason in the detail
--       PY402 a plate bound to another user   PY403 too many vehicles
--       PY404 unbinding a plate the user has not bound
--       PY406 a time zone PostgreSQL would read as a POSIX rule (offsets
--             west of UTC: 'UTC+8', 'XYZ+3', '<+08>-8', '+8:00'), an ISO
--             offset not in use, 'localtime'; ISO offsets are kept as zones
--             that price east of UTC (every quarter hour, -12:00 to +14:00)
--       PY405 each lot validation, and a tariff that could charge more
--             than 64 bits over payext.max_stay (the worst case, checked on
--             both sides of its boundary, over 30 days, 36 hours, an hour)
--       PY406 an unknown time zone
--       PY101/PY111 an operator that is missing / not a merchant, a payer
--             that is not a wallet
--       PY407 an unknown lot  PY408 an unknown stay  PY409 a stale amount
--       PY410 nothing due     PY411 another owner's or an unbound plate's stay
--       PY412 exit before entry, an infinite time, a camera time more than
--             payext.max_stay (30 days) old (1970, 4713 BC, 30 days + 1 us)
--             or more than payext.max_clock_skew (5 minutes) ahead; exactly
--             at either bound is accepted
--       PY413 a fee beyond 64 bits   PY105 a wallet of another currency
--       PY415 paying a stay that cannot be priced (its fee beyond 64 bits,
--             or longer than payext.max_stay)
--   - plates are normalised (case, spaces, dashes, middle dots, full-width
--     forms, Unicode NFC);
--   - the tariff, with fixed timestamps, each expected fee worked out by hand
--     from DESIGN.md's three rules in the comments next to it, in a lot in
--     Asia/Shanghai (UTC+8, no DST) and lots in Europe/Berlin across both
--     DST changes of 2026 (03-29 01:00 UTC: 02:00 CET -> 03:00 CEST;
--     10-25 01:00 UTC: 03:00 CEST -> 02:00 CET);
--   - stays from camera events: a repeated entry returns the same id; a
--     repeated exit (same time or within 60 s) returns the same fee and
--     records nothing; an exit without entry returns NULL, is kept, shows in
--     parking_anomaly, is not duplicated by a repeat, and a late entry
--     completes it (also while a newer stay of the plate is open); a
--     repeated entry of an earlier stay returns that stay; a plate entering
--     lot B while open at lot A stays open at both and shows as
--     'open_at_several_lots'; entering the same lot again hours later marks
--     the open stay 'exit_missed'; an unbound plate is priced but listed in
--     nobody's service info; a stay belongs to the plate's owner when it
--     began (whoever binds the plate later neither sees nor pays it);
--   - parking_service_info: open stays priced at `at`, exited unpaid ones,
--     paid ones gone; pay_parking pays exactly what it showed, a retry
--     returns the same transfer; paying before exit leaves
--     exit_grace_minutes to leave at no further charge, leaving later makes
--     the difference due; auto_pay pays at exit from the wallet in the lot's
--     currency when its balance allows and the fee is at most
--     payext.max_auto_pay, otherwise leaves the fee due;
--   - every parking payment leaves a 'payment' interaction with the
--     operator's public_service_id, and verify_ledger() holds at the end.
-- Times that pay_parking compares with (it prices open stays at the
-- transaction's time) are taken relative to now(), which does not move
-- inside the transaction; every other time is fixed.  Everything runs in
-- one transaction that is rolled back.  Names start with tap-pk-.
BEGIN;
SELECT plan(455);
SET LOCAL TIME ZONE 'UTC';
SET LOCAL client_encoding = 'UTF8';
-- Exits without entry raise a WARNING (PY414); keep the TAP stream clean.
SET LOCAL client_min_messages = error;

-- 'SQLSTATE message: detail' of what sql raises, or 'no error'.
CREATE FUNCTION pg_temp.refusal(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  state text;
  message text;
  detail text;
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  RETURN format('%s %s: %s', state, message, detail);
END
$$;

-- Camera events are checked against the server's clock, so the stays'
-- story days, 2026-11-20 and 2026-11-21, are moved by whole days to 12 and
-- 11 days before today: story('2026-11-20 10:00+08') is 10:00 (Shanghai)
-- on the first.  Shanghai keeps UTC+8 all year, so every fee is the same
-- whatever the day.  parking_fee() takes any times: its stays keep theirs.
CREATE TEMP TABLE story_days ON COMMIT DROP AS
SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date - 12 - date '2026-11-20' AS days;
CREATE FUNCTION pg_temp.story(t text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT t::timestamptz + make_interval(hours => 24 * days) FROM story_days $$;

-- A stay as text: "state entered exited fee paid" (times in UTC, moved back
-- to the story's days).
CREATE FUNCTION pg_temp.stay(stay_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%s %s %s %s %s', state,
                coalesce(to_char(entered_at - make_interval(hours => 24 * d.days), 'YYYY-MM-DD HH24:MI:SS.US'), '-'),
                coalesce(to_char(exited_at - make_interval(hours => 24 * d.days), 'YYYY-MM-DD HH24:MI:SS.US'), '-'),
                coalesce(fee::text, '-'), paid)
    FROM payext.parking_stay, story_days d WHERE id = stay_id
$$;

---------------------------------------------------------------------------
-- Schema
---------------------------------------------------------------------------
SELECT has_table('payext', t, format('payext.%s exists', t))
  FROM unnest(ARRAY['vehicle', 'vehicle_owner', 'parking_lot', 'parking_stay', 'parking_payment',
                    'parking_plate_events']::name[]) AS t;
SELECT has_view('payext', 'parking_anomaly', 'payext.parking_anomaly exists');
SELECT columns_are('payext', 'vehicle', ARRAY['plate', 'owner', 'auto_pay', 'bound_at']::name[],
                   'vehicle: plate, owner, auto_pay, bound_at');
SELECT col_is_pk('payext', 'vehicle', 'plate', 'vehicle: one row per plate (a plate has one owner)');
SELECT col_is_pk('payext', 'vehicle_owner', 'owner', 'vehicle_owner: one row per owner');
SELECT has_column('payext', 'parking_lot', c, format('parking_lot.%s exists', c))
  FROM unnest(ARRAY['id', 'operator', 'name', 'currency', 'time_zone', 'free_minutes', 'unit_minutes',
                    'day_price', 'night_price', 'day_start', 'night_start', 'cap_24h', 'cap_stay',
                    'exit_grace_minutes']::name[]) AS c;
SELECT has_column('payext', 'parking_stay', c, format('parking_stay.%s exists', c))
  FROM unnest(ARRAY['id', 'lot', 'plate', 'entered_at', 'exited_at', 'fee', 'paid', 'paid_at', 'state']::name[]) AS c;
SELECT col_type_is('payext', 'parking_stay', c, t, format('parking_stay.%s is %s', c, t))
  FROM (VALUES ('entered_at', 'timestamp with time zone'), ('exited_at', 'timestamp with time zone'),
               ('fee', 'bigint'), ('paid', 'bigint')) AS v(c, t);
SELECT fk_ok('payext', 'parking_lot', 'operator', 'payext', 'account', 'id');
SELECT fk_ok('payext', 'parking_stay', 'lot', 'payext', 'parking_lot', 'id');
SELECT fk_ok('payext', 'parking_payment', 'transfer_id', 'payext', 'transfer', 'id');
SELECT fk_ok('payext', 'parking_payment', 'stay', 'payext', 'parking_stay', 'id');
SELECT is(pg_get_indexdef('payext.parking_stay_open_key'::regclass),
          'CREATE UNIQUE INDEX parking_stay_open_key ON payext.parking_stay USING btree (lot, plate) WHERE (state = ''open''::text)',
          'one open stay per lot and plate (unique, partial)');
SELECT columns_are('payext', 'parking_anomaly', ARRAY['stay', 'lot', 'plate', 'seen_at', 'anomaly']::name[],
                   'parking_anomaly: stay, lot, plate, seen_at, anomaly');
SELECT ok((SELECT extconfig @> ARRAY['payext.vehicle'::regclass, 'payext.vehicle_owner'::regclass,
                                     'payext.parking_lot'::regclass, 'payext.parking_stay'::regclass,
                                     'payext.parking_payment'::regclass, 'payext.parking_plate_events'::regclass,
                                     'payext.parking_lot_id_seq'::regclass,
                                     'payext.parking_stay_id_seq'::regclass]::oid[]
             FROM pg_extension WHERE extname = 'payext'),
          'the parking tables and id sequences are dumped (pg_extension_config_dump)');

CREATE TEMP TABLE contract (fn name, args name[], arglist text, returns text, volatility text) ON COMMIT DROP;
INSERT INTO contract VALUES
  ('bind_vehicle', '{text,text,boolean}', 'owner text, plate text, auto_pay boolean DEFAULT false', 'void', 'volatile'),
  ('unbind_vehicle', '{text,text}', 'owner text, plate text', 'void', 'volatile'),
  ('normalize_plate', '{text}', 'plate text', 'text', 'immutable'),
  ('create_parking_lot',
   '{bigint,text,text,integer,integer,bigint,bigint,time without time zone,time without time zone,bigint,bigint,integer,bigint}',
   'operator bigint, name text, time_zone text, free_minutes integer, unit_minutes integer, day_price bigint, '
   'night_price bigint DEFAULT NULL::bigint, day_start time without time zone DEFAULT ''08:00:00''::time without time zone, '
   'night_start time without time zone DEFAULT ''20:00:00''::time without time zone, cap_24h bigint DEFAULT NULL::bigint, '
   'cap_stay bigint DEFAULT NULL::bigint, exit_grace_minutes integer DEFAULT 15, entry_hold bigint DEFAULT NULL::bigint', 'bigint', 'volatile'),
  ('parking_fee', '{bigint,timestamp with time zone,timestamp with time zone}',
   'lot bigint, entered_at timestamp with time zone, exited_at timestamp with time zone', 'bigint', 'stable'),
  ('vehicle_entered', '{bigint,text,timestamp with time zone}',
   'lot bigint, plate text, at timestamp with time zone DEFAULT now()', 'bigint', 'volatile'),
  ('vehicle_exited', '{bigint,text,timestamp with time zone}',
   'lot bigint, plate text, at timestamp with time zone DEFAULT now()', 'bigint', 'volatile'),
  ('parking_service_info', '{text,timestamp with time zone}',
   'owner text, at timestamp with time zone DEFAULT now()', 'setof record', 'stable'),
  ('pay_parking', '{bigint,bigint,bigint}', 'stay bigint, wallet bigint, amount bigint', 'bigint', 'volatile');

SELECT has_function('payext', fn, args, format('payext.%s(%s) exists', fn, array_to_string(args, ', ')))
  FROM contract ORDER BY fn;
SELECT function_returns('payext', fn, args, returns,
                        format('payext.%s(%s) returns %s', fn, array_to_string(args, ', '), returns))
  FROM contract ORDER BY fn;
SELECT is(pg_get_function_arguments(format('payext.%s(%s)', fn, array_to_string(args, ','))::regprocedure),
          arglist, format('payext.%s argument names and defaults', fn))
  FROM contract ORDER BY fn;
SELECT volatility_is('payext', fn, args, volatility, format('payext.%s is %s', fn, volatility))
  FROM contract ORDER BY fn;
SELECT is(pg_get_function_result('payext.parking_service_info(text, timestamptz)'::regprocedure),
          'TABLE(stay bigint, plate text, lot bigint, entered_at timestamp with time zone, exited_at timestamp with time zone, amount_due bigint, lot_name text, currency text)',
          'parking_service_info returns TABLE(stay, plate, lot, entered_at, exited_at, amount_due, lot_name, currency)');
SELECT is_definer('payext', fn, args, format('payext.%s is SECURITY DEFINER', fn))
  FROM contract WHERE fn NOT IN ('normalize_plate', 'parking_fee') ORDER BY fn;
SELECT isnt_definer('payext', 'normalize_plate', ARRAY['text'], 'payext.normalize_plate (pure) is not SECURITY DEFINER');
SELECT is(p.proconfig, ARRAY['search_path=pg_catalog, payext, pg_temp'],
          format('payext.%s runs with search_path = pg_catalog, payext, pg_temp', c.fn))
  FROM contract c
  JOIN pg_proc p ON p.oid = format('payext.%s(%s)', c.fn, array_to_string(c.args, ','))::regprocedure
 WHERE c.fn NOT IN ('normalize_plate', 'parking_fee') ORDER BY c.fn;
-- parking_fee reads a lot as its owner under a pinned search_path
-- in C, and only when the query has not read it yet; no SET clause, whose
-- GUC save and restore on every row was most of its cost.  The search_path
-- hijack in roles.sql calls it under a hostile path.
SELECT isnt_definer('payext', 'parking_fee', ARRAY['bigint', 'timestamp with time zone', 'timestamp with time zone'],
                    'payext.parking_fee is SECURITY INVOKER (it becomes its owner itself)');
SELECT is(p.proconfig, NULL, 'payext.parking_fee has no SET clause (it pins search_path itself)')
  FROM pg_proc p WHERE p.oid = 'payext.parking_fee(bigint, timestamptz, timestamptz)'::regprocedure;
SELECT function_privs_are('payext', fn, args, 'public', ARRAY[]::name[],
                          format('PUBLIC cannot execute payext.%s', fn))
  FROM contract WHERE fn <> 'normalize_plate' ORDER BY fn;
SELECT function_privs_are('payext', 'normalize_plate', ARRAY['text'], 'public', ARRAY['EXECUTE'],
                          'PUBLIC can execute payext.normalize_plate');
SELECT function_privs_are('payext', 'verify_parking', ARRAY[]::name[], 'public', ARRAY[]::name[],
                          'PUBLIC cannot execute payext.verify_parking');
SELECT table_privs_are('payext', t, 'public', ARRAY[]::name[], format('PUBLIC has no privilege on payext.%s', t))
  FROM unnest(ARRAY['vehicle', 'vehicle_owner', 'parking_lot', 'parking_stay', 'parking_payment',
                    'parking_plate_events', 'parking_anomaly']::name[]) AS t;
SELECT sequence_privs_are('payext', s, 'public', ARRAY[]::name[], format('PUBLIC has no privilege on payext.%s', s))
  FROM unnest(ARRAY['parking_lot_id_seq', 'parking_stay_id_seq']::name[]) AS s;

-- A non-superuser: normalize_plate yes, the rest no, payext.max_vehicles no.
CREATE ROLE tap_pk_nobody NOLOGIN;
SET LOCAL ROLE tap_pk_nobody;
SELECT is(payext.normalize_plate('ab-123'), 'AB123', 'a non-superuser role can call normalize_plate');
SELECT throws_ok($$SELECT payext.bind_vehicle('tap-pk-x', 'AB123')$$, '42501',
                 'permission denied for function bind_vehicle', 'a non-superuser role cannot bind a vehicle');
SELECT throws_ok('SET payext.max_vehicles = 10', '42501',
                 'permission denied to set parameter "payext.max_vehicles"',
                 'a non-superuser role cannot change payext.max_vehicles');
SELECT throws_ok(format('SET payext.%s = %L', name, value), '42501',
                 format('permission denied to set parameter "payext.%s"', name),
                 format('a non-superuser role cannot change payext.%s', name))
  FROM (VALUES ('max_stay', '3650d'), ('max_clock_skew', '1h'), ('max_auto_pay', '2147483647')) AS v(name, value);
RESET ROLE;

---------------------------------------------------------------------------
-- Accounts and lots used below
---------------------------------------------------------------------------
SELECT payext.open_merchant('tap-pk-op', 'TAP Parking') AS op,
       payext.open_merchant('tap-pk-op', 'TAP Parking', 'EUR') AS op_eur,
       payext.open_wallet('tap-pk-alice') AS alice,
       payext.open_wallet('tap-pk-alice', 'EUR') AS alice_eur,
       payext.open_wallet('tap-pk-bob') AS bob,
       payext.open_wallet('tap-pk-erin') AS erin,
       payext.open_wallet('tap-pk-erin', 'EUR') AS erin_eur
\gset
SELECT payext.top_up(:alice, 100000, 'tap-pk-bank-alice') > 0 AS t1,
       payext.top_up(:alice_eur, 10000, 'tap-pk-bank-alice-eur') > 0 AS t2,
       payext.top_up(:bob, 10000, 'tap-pk-bank-bob') > 0 AS t3,
       payext.top_up(:erin, 1000, 'tap-pk-bank-erin-1') > 0 AS t4,
       payext.top_up(:erin_eur, 100000, 'tap-pk-bank-erin-eur') > 0 AS t5
\gset

-- sh: free 15 min, 30-minute units, day 3.00, night 1.00, day 08:00-20:00.
-- shb: the same tariff, another lot.  sh2: the day runs past midnight,
-- 20:00-08:00.  sh3: no night price.  shc: 60-minute units, day 10.00,
-- night 2.00, cap_24h 50.00, cap_stay 80.00.  l7: 7-minute units at 0.01.
-- shg: 60-minute units at 1.00, no night price, exit grace 2 minutes.
-- big: 1440-minute units at 2^62 and long: 1-minute units at 10^15, no
-- cap, made while payext.max_stay was 1 and 6 days (their tariffs could
-- overflow over the default 30 days, so a lot like them can no longer be
-- made with it); longcap: long with cap_stay 9 * 10^18.
-- be (EUR): Europe/Berlin, 60-minute units, day 10.00, night 1.00.
-- bec (EUR): Europe/Berlin, 60-minute units at 10.00, no night, cap_24h 50.00.
SELECT payext.create_parking_lot(:op, 'TAP SH', 'Asia/Shanghai', 15, 30, 300, 100) AS sh,
       payext.create_parking_lot(:op, 'TAP SH-B', 'Asia/Shanghai', 15, 30, 300, 100) AS shb,
       payext.create_parking_lot(:op, 'TAP SH nights', 'Asia/Shanghai', 15, 30, 300, 100,
                                 day_start => '20:00', night_start => '08:00') AS sh2,
       payext.create_parking_lot(:op, 'TAP SH flat', 'Asia/Shanghai', 15, 30, 300) AS sh3,
       payext.create_parking_lot(:op, 'TAP SH caps', 'Asia/Shanghai', 0, 60, 1000, 200,
                                 cap_24h => 5000, cap_stay => 8000) AS shc,
       payext.create_parking_lot(:op, 'TAP SH 7', 'Asia/Shanghai', 0, 7, 1) AS l7,
       payext.create_parking_lot(:op, 'TAP SH grace', 'Asia/Shanghai', 0, 60, 100,
                                 exit_grace_minutes => 2) AS shg,
       payext.create_parking_lot(:op, 'TAP long capped', 'Asia/Shanghai', 0, 1, 1000000000000000,
                                 cap_stay => 9000000000000000000) AS longcap,
       payext.create_parking_lot(:op_eur, 'TAP Berlin', 'Europe/Berlin', 0, 60, 1000, 100) AS be,
       payext.create_parking_lot(:op_eur, 'TAP Berlin capped', 'Europe/Berlin', 0, 60, 1000,
                                 cap_24h => 5000) AS bec
\gset
SET LOCAL payext.max_stay = '1d';
SELECT payext.create_parking_lot(:op, 'TAP big', 'Asia/Shanghai', 0, 1440, 4611686018427387904) AS big \gset
SET LOCAL payext.max_stay = '6d';
SELECT payext.create_parking_lot(:op, 'TAP long', 'Asia/Shanghai', 0, 1, 1000000000000000) AS long \gset
RESET payext.max_stay;
SELECT results_eq(format('SELECT operator, currency, time_zone, free_minutes, unit_minutes, day_price, night_price,
                                  day_start, night_start, cap_24h, cap_stay, exit_grace_minutes
                             FROM payext.parking_lot WHERE id = %s', :sh),
                  format($$VALUES (%s::bigint, 'CNY', 'Asia/Shanghai', 15, 30, 300::bigint, 100::bigint,
                                   '08:00'::time, '20:00'::time, NULL::bigint, NULL::bigint, 15)$$, :op),
                  'a lot keeps its tariff, the defaults (08:00, 20:00, no caps, 15 minutes of grace) and its operator''s currency');

---------------------------------------------------------------------------
-- Settings: camera times
---------------------------------------------------------------------------
SELECT results_eq($$SELECT name, setting, unit, context, vartype, min_val, max_val, boot_val
                      FROM pg_settings WHERE name IN ('payext.max_stay', 'payext.max_clock_skew', 'payext.max_auto_pay')
                     ORDER BY name$$,
                  $$VALUES ('payext.max_auto_pay', '20000', NULL, 'superuser', 'integer', '0', '2147483647', '20000'),
                           ('payext.max_clock_skew', '300', 's', 'superuser', 'integer', '0', '3600', '300'),
                           ('payext.max_stay', '43200', 'min', 'superuser', 'integer', '60', '5270400', '43200')$$,
                  'payext.max_stay: 30 days (an hour to ten years); payext.max_clock_skew: 5 minutes (none to an hour); '
                  'payext.max_auto_pay: 20000 minor units (0 to 2^31 - 1); superuser settings');
SELECT is(current_setting(name), shown, format('%s shows as %s', name, shown))
  FROM (VALUES ('payext.max_stay', '30d'), ('payext.max_clock_skew', '5min')) AS v(name, shown);
SELECT throws_ok(format('SET LOCAL payext.%s = %L', name, value), '22023', msg, format('payext.%s = %s is refused', name, value))
  FROM (VALUES ('max_stay', '59min', '59 min is outside the valid range for parameter "payext.max_stay" (60 .. 5270400)'),
               ('max_stay', '3661d', '5271840 min is outside the valid range for parameter "payext.max_stay" (60 .. 5270400)'),
               ('max_clock_skew', '-1', '-1 s is outside the valid range for parameter "payext.max_clock_skew" (0 .. 3600)'),
               ('max_clock_skew', '61min', '3660 s is outside the valid range for parameter "payext.max_clock_skew" (0 .. 3600)'),
               ('max_auto_pay', '-1', '-1 is outside the valid range for parameter "payext.max_auto_pay" (0 .. 2147483647)'))
       AS v(name, value, msg);

---------------------------------------------------------------------------
-- PY001: NULL arguments
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.%s', call), 'PY001', format('argument "%s" must not be null', name),
                 format('%s with a NULL %s', split_part(call, '(', 1), name))
  FROM (VALUES
    ('owner', $$bind_vehicle(NULL, 'PK1234')$$),
    ('plate', $$bind_vehicle('tap-pk-alice', NULL)$$),
    ('auto_pay', $$bind_vehicle('tap-pk-alice', 'PK1234', NULL)$$),
    ('owner', $$unbind_vehicle(NULL, 'PK1234')$$),
    ('plate', $$unbind_vehicle('tap-pk-alice', NULL)$$),
    ('plate', $$normalize_plate(NULL)$$),
    ('operator', $$create_parking_lot(NULL, 'x', 'Asia/Shanghai', 0, 30, 100)$$),
    ('name', format('create_parking_lot(%s, NULL, %L, 0, 30, 100)', :op, 'Asia/Shanghai')),
    ('time_zone', format('create_parking_lot(%s, %L, NULL, 0, 30, 100)', :op, 'x')),
    ('free_minutes', format('create_parking_lot(%s, %L, %L, NULL, 30, 100)', :op, 'x', 'Asia/Shanghai')),
    ('unit_minutes', format('create_parking_lot(%s, %L, %L, 0, NULL, 100)', :op, 'x', 'Asia/Shanghai')),
    ('day_price', format('create_parking_lot(%s, %L, %L, 0, 30, NULL)', :op, 'x', 'Asia/Shanghai')),
    ('day_start', format('create_parking_lot(%s, %L, %L, 0, 30, 100, day_start => NULL)', :op, 'x', 'Asia/Shanghai')),
    ('night_start', format('create_parking_lot(%s, %L, %L, 0, 30, 100, night_start => NULL)', :op, 'x', 'Asia/Shanghai')),
    ('exit_grace_minutes', format('create_parking_lot(%s, %L, %L, 0, 30, 100, exit_grace_minutes => NULL)', :op, 'x', 'Asia/Shanghai')),
    ('lot', $$parking_fee(NULL, '2026-11-20 10:00+08', '2026-11-20 11:00+08')$$),
    ('entered_at', format('parking_fee(%s, NULL, %L)', :sh, '2026-11-20 11:00+08')),
    ('exited_at', format('parking_fee(%s, %L, NULL)', :sh, '2026-11-20 10:00+08')),
    ('lot', $$vehicle_entered(NULL, 'PK1234', '2026-11-20 10:00+08')$$),
    ('plate', format('vehicle_entered(%s, NULL, %L)', :sh, '2026-11-20 10:00+08')),
    ('at', format('vehicle_entered(%s, %L, NULL)', :sh, 'PK1234')),
    ('lot', $$vehicle_exited(NULL, 'PK1234', '2026-11-20 10:00+08')$$),
    ('plate', format('vehicle_exited(%s, NULL, %L)', :sh, '2026-11-20 10:00+08')),
    ('at', format('vehicle_exited(%s, %L, NULL)', :sh, 'PK1234')),
    ('owner', $$parking_service_info(NULL)$$),
    ('at', $$parking_service_info('tap-pk-alice', NULL)$$),
    ('stay', format('pay_parking(NULL, %s, 100)', :alice)),
    ('wallet', 'pay_parking(1, NULL, 100)'),
    ('amount', format('pay_parking(1, %s, NULL)', :alice))) AS v(name, call);
SELECT lives_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 30, 100, NULL, %L, %L, NULL, NULL, 15)',
                       :op, 'tap-pk-nulls', 'Asia/Shanghai', '08:00', '20:00'),
                'create_parking_lot: night_price, cap_24h and cap_stay may be NULL (none)');
SELECT throws_ok(format('SELECT payext.pay_parking(1, %s, %s)', :alice, amount), 'PY002', 'amount must be positive',
                 format('pay_parking with amount %s', amount))
  FROM unnest(ARRAY[0, -100]) AS amount;
SELECT throws_ok(format('SELECT payext.%s', call), 'PY004', msg, what)
  FROM (VALUES ($$bind_vehicle('', 'PK1234')$$, 'argument "owner" must be 1 to 128 bytes long', 'bind_vehicle with an empty owner'),
               (format('bind_vehicle(%L, %L)', repeat('o', 129), 'PK1234'), 'argument "owner" must be 1 to 128 bytes long', 'bind_vehicle with an owner of 129 bytes'),
               (format('create_parking_lot(%s, %L, %L, 0, 30, 100)', :op, '', 'Asia/Shanghai'), 'argument "name" must be 1 to 256 bytes long', 'create_parking_lot with an empty name'))
       AS v(call, msg, what);

---------------------------------------------------------------------------
-- Plates: normal forms and PY401
---------------------------------------------------------------------------
SELECT is(payext.normalize_plate(input), normal, format('%s: %s', why, normal))
  FROM (VALUES ('粤b-12345', '粤B12345', 'lower case folds, dashes go'),
               ('粤B 12345', '粤B12345', 'spaces go'),
               ('粤Ｂ１２３４５', '粤B12345', 'full-width letters and digits fold'),
               (U&'\4EAC\3000A\00B7\2013123', '京A123', 'ideographic space, middle dot and en dash go'),
               (U&'\1112\1161\11AB' || '12', '한12', 'Hangul jamo compose (NFC) into a syllable'),
               ('ab-cd-ef-gh-ij-kl', 'ABCDEFGHIJKL', '12 characters are the most'),
               ('a-1', 'A1', '2 characters are the least')) AS v(input, normal, why);
SELECT is(pg_temp.refusal(format('SELECT payext.normalize_plate(%L)', input)),
          'PY401 plate is not a licence plate: ' || detail, format('plate %s: %s', label, detail))
  FROM (VALUES ('', 'empty', 'A plate has at least 2 characters.'),
               ('A', '''A''', 'A plate has at least 2 characters.'),
               (' - ', 'only a space and a dash', 'A plate has at least 2 characters.'),
               ('ABCDEFGHIJKLM', '13 characters', 'A plate has at most 12 characters.'),
               ('AB_12', '''AB_12''', 'Plates hold letters A-Z, digits, CJK ideographs and Hangul; spaces, dashes and middle dots are ignored.'),
               (U&'\4EACA\+01F600123', 'an emoji', 'Plates hold letters A-Z, digits, CJK ideographs and Hangul; spaces, dashes and middle dots are ignored.'),
               (repeat('A', 129), '129 bytes', 'It is 129 bytes long.')) AS v(input, label, detail);
SELECT throws_ok(format('SELECT payext.%s', call), 'PY401', 'plate is not a licence plate', what)
  FROM (VALUES ($$bind_vehicle('tap-pk-alice', 'A')$$, 'bind_vehicle refuses a bad plate'),
               ($$unbind_vehicle('tap-pk-alice', 'AB_12')$$, 'unbind_vehicle refuses a bad plate'),
               (format('vehicle_entered(%s, %L, %L)', :sh, '', '2026-11-20 10:00+08'), 'vehicle_entered refuses a bad plate'),
               (format('vehicle_exited(%s, %L, %L)', :sh, 'ABCDEFGHIJKLM', '2026-11-20 10:00+08'), 'vehicle_exited refuses a bad plate'))
       AS v(call, what);

---------------------------------------------------------------------------
-- Binding: one owner per plate (PY402), payext.max_vehicles (PY403), PY404
---------------------------------------------------------------------------
SELECT lives_ok($$SELECT payext.bind_vehicle('tap-pk-alice', 'pka-001')$$, 'alice binds pka-001');
SELECT results_eq($$SELECT plate, owner, auto_pay FROM payext.vehicle WHERE owner = 'tap-pk-alice'$$,
                  $$VALUES ('PKA001', 'tap-pk-alice', false)$$, '... stored normalised, auto_pay off by default');
SELECT payext.bind_vehicle('tap-pk-alice', 'PKA002');
SELECT payext.bind_vehicle('tap-pk-alice', 'PKA003');
SELECT is((SELECT vehicles FROM payext.vehicle_owner WHERE owner = 'tap-pk-alice'), 3, 'alice has 3 vehicles');
SELECT throws_ok($$SELECT payext.bind_vehicle('tap-pk-alice', 'PKA004')$$, 'PY403',
                 'user "tap-pk-alice" may bind at most 3 vehicles', 'a 4th vehicle is refused (payext.max_vehicles = 3)');
SET LOCAL payext.max_vehicles = 4;
SELECT lives_ok($$SELECT payext.bind_vehicle('tap-pk-alice', 'PKA004')$$, 'with payext.max_vehicles = 4 the 4th is bound');
SET LOCAL payext.max_vehicles = 2;
SELECT payext.bind_vehicle('tap-pk-dave', 'PKD001');
SELECT payext.bind_vehicle('tap-pk-dave', 'PKD002');
SELECT throws_ok($$SELECT payext.bind_vehicle('tap-pk-dave', 'PKD003')$$, 'PY403',
                 'user "tap-pk-dave" may bind at most 2 vehicles', 'payext.max_vehicles = 2 refuses a 3rd');
SELECT lives_ok($$SELECT payext.bind_vehicle('tap-pk-dave', 'PKD001')$$,
                'at the limit, binding a plate of one''s own again is fine (nothing new is counted)');
RESET payext.max_vehicles;
-- Binding again changes auto_pay, and only that (frank's PKF001).
SELECT payext.bind_vehicle('tap-pk-frank', 'PKF001');
SELECT payext.bind_vehicle('tap-pk-frank', 'PKF001', auto_pay => false);
SELECT is((SELECT auto_pay FROM payext.vehicle WHERE plate = 'PKF001'), false,
          'bound again with auto_pay => false: auto_pay stays off');
SELECT payext.bind_vehicle('tap-pk-frank', 'pkf-001', auto_pay => true);
SELECT is((SELECT auto_pay FROM payext.vehicle WHERE plate = 'PKF001'), true,
          'bound again (another spelling) with auto_pay => true: auto_pay is on');
SELECT payext.bind_vehicle('tap-pk-frank', 'PKF 001', auto_pay => false);
SELECT is((SELECT auto_pay FROM payext.vehicle WHERE plate = 'PKF001'), false,
          'bound again with auto_pay => false: auto_pay is off again');
SELECT results_eq($$SELECT count(*)::int, (SELECT vehicles FROM payext.vehicle_owner WHERE owner = 'tap-pk-frank')
                      FROM payext.vehicle WHERE owner = 'tap-pk-frank'$$,
                  $$VALUES (1, 1)$$, '... one vehicle still, counted once');
SELECT lives_ok($$SELECT payext.unbind_vehicle('tap-pk-alice', 'PKA004')$$, 'alice unbinds PKA004');
SELECT results_eq($$SELECT (SELECT vehicles FROM payext.vehicle_owner WHERE owner = 'tap-pk-alice'),
                           (SELECT count(*)::int FROM payext.vehicle WHERE owner = 'tap-pk-alice')$$,
                  $$VALUES (3, 3)$$, '... and has 3 vehicles again, counted and bound');
SELECT throws_ok($$SELECT payext.bind_vehicle('tap-pk-bob', 'pka001')$$, 'PY402',
                 'plate PKA001 is bound to another user', 'bob cannot bind alice''s plate');
SELECT throws_ok($$SELECT payext.unbind_vehicle('tap-pk-bob', 'PKA001')$$, 'PY404',
                 'plate PKA001 is not bound to user "tap-pk-bob"', 'bob cannot unbind alice''s plate');
SELECT throws_ok($$SELECT payext.unbind_vehicle('tap-pk-bob', 'PKU001')$$, 'PY404',
                 'plate PKU001 is not bound to user "tap-pk-bob"', 'nor a plate bound to nobody');
SELECT is((SELECT owner FROM payext.vehicle WHERE plate = 'PKA001'), 'tap-pk-alice', 'PKA001 is still alice''s');
SELECT payext.bind_vehicle('tap-pk-bob', 'PKB001');
SELECT payext.bind_vehicle('tap-pk-bob', 'PKB002');
SELECT payext.bind_vehicle('tap-pk-erin', 'PKE001', auto_pay => true);

---------------------------------------------------------------------------
-- PY405, PY406, PY101, PY111: lots
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-bad', 'Asia/Shanghai', args),
                 'PY405', msg, format('create_parking_lot with %s', args))
  FROM (VALUES ('-1, 30, 100', 'free_minutes must be between 0 and 10080'),
               ('10081, 30, 100', 'free_minutes must be between 0 and 10080'),
               ('0, 0, 100', 'unit_minutes must be between 1 and 1440'),
               ('0, 1441, 100', 'unit_minutes must be between 1 and 1440'),
               ('0, 30, -1', 'prices must not be negative'),
               ('0, 30, 100, night_price => -1', 'prices must not be negative'),
               ('0, 30, 100, cap_24h => -1', 'caps must not be negative'),
               ('0, 30, 100, cap_stay => -1', 'caps must not be negative'),
               ($$0, 30, 100, 50, day_start => '09:00', night_start => '09:00'$$,
                'with a night price, day_start and night_start must differ'),
               ($$0, 30, 100, 50, day_start => '08:00:30'$$, 'day_start must be a whole minute from 00:00 to 23:59'),
               ($$0, 30, 100, 50, night_start => '20:00:00.5'$$, 'night_start must be a whole minute from 00:00 to 23:59'),
               ($$0, 30, 100, day_start => '24:00'$$, 'day_start must be a whole minute from 00:00 to 23:59'),
               ('0, 30, 100, exit_grace_minutes => -1', 'exit_grace_minutes must be between 0 and 1440'),
               ('0, 30, 100, exit_grace_minutes => 1441', 'exit_grace_minutes must be between 0 and 1440'))
       AS v(args, msg);
SELECT lives_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-edge', 'Asia/Shanghai', args),
                format('create_parking_lot with %s is accepted', args))
  FROM (VALUES ('10080, 1440, 0, 0, cap_24h => 0, cap_stay => 0, exit_grace_minutes => 1440'),
               ('0, 1, 0, exit_grace_minutes => 0'),
               ($$0, 30, 100, day_start => '09:00', night_start => '09:00'$$)) AS v(args);
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 30, 100)', :op, 'tap-pk-bad', 'Mars/Olympus'),
                 'PY406', 'time zone "Mars/Olympus" is not known', 'create_parking_lot with an unknown time zone');
-- Time zones: IANA names, or ISO 8601 offsets (east of UTC); what
-- PostgreSQL would read as a POSIX rule (offsets west of UTC) is refused.
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 30, 100)', :op, 'tap-pk-bad', tz),
                 'PY406', format('time zone "%s" %s', tz, msg), format('time zone %s: %s', tz, why))
  FROM (VALUES ('UTC+8', 'is not an IANA time zone', 'a POSIX rule, UTC-8 to PostgreSQL'),
               ('XYZ+3', 'is not an IANA time zone', 'a POSIX rule with a made-up name'),
               ('<+08>-8', 'is not an IANA time zone', 'a POSIX rule in angle brackets'),
               ('EST5EDT,M3.2.0,M11.1.0', 'is not an IANA time zone', 'a POSIX rule with its changes'),
               ('+8:00', 'is not an IANA time zone', 'an offset that is not ISO 8601 (one hour digit)'),
               ('+08:00:00', 'is not an IANA time zone', 'an offset with seconds'),
               ('localtime', 'is not an IANA time zone', 'the server''s own local time'),
               ('posixrules', 'is not an IANA time zone', 'the zone database''s POSIX default'),
               ('+14:15', 'is not a UTC offset in use', 'east of +14:00'),
               ('-12:15', 'is not a UTC offset in use', 'west of -12:00'),
               ('+15', 'is not a UTC offset in use', '15 hours'),
               ('+08:60', 'is not a UTC offset in use', '60 minutes'),
               ('Mars/Olympus', 'is not known', 'no such zone'))
       AS v(tz, msg, why);
SELECT is(pg_temp.refusal(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 30, 100)', :op, 'tap-pk-bad', 'UTC+8')),
          'PY406 time zone "UTC+8" is not an IANA time zone: '
          'PostgreSQL would read it as a POSIX rule, whose offsets count west of UTC, the opposite of ISO 8601.',
          'the refusal of a POSIX rule says why');
-- What a lot keeps: the zone database's own spelling of a name; an ISO
-- offset as the Etc zone of whole hours (whose POSIX-style name has the
-- opposite sign) or as a fixed POSIX rule written with the sign PostgreSQL
-- expects.
CREATE TEMP TABLE tz_kept ON COMMIT DROP AS
SELECT given, payext.create_parking_lot(:op, 'tap-pk-zone', given, 0, 30, 300, 100) AS lot, kept
  FROM (VALUES ('Asia/Shanghai', 'Asia/Shanghai'), ('asia/SHANGHAI', 'Asia/Shanghai'), ('EST5EDT', 'EST5EDT'),
               ('UTC', 'UTC'), ('Etc/GMT-8', 'Etc/GMT-8'),
               ('+08:00', 'Etc/GMT-8'), ('+0800', 'Etc/GMT-8'), ('+08', 'Etc/GMT-8'), ('-05:00', 'Etc/GMT+5'),
               ('+14:00', 'Etc/GMT-14'), ('-12:00', 'Etc/GMT+12'), ('+00:00', 'Etc/UTC'), ('-00', 'Etc/UTC'),
               ('+05:30', '<+0530>-05:30'), ('-05:30', '<-0530>+05:30'), ('+0545', '<+0545>-05:45'),
               ('-09:30', '<-0930>+09:30')) AS v(given, kept);
SELECT is(l.time_zone, k.kept, format('time zone %s is kept as %s', k.given, k.kept))
  FROM tz_kept k JOIN payext.parking_lot l ON l.id = k.lot ORDER BY k.lot;
-- Each prices as its offset says: the unit starting 30 minutes before local
-- 08:00 is a night unit (1.00), the next a day unit (3.00), as at the IANA
-- zone of the same offset (no DST in November 2026).
SELECT is(payext.parking_fee(k.lot, t, t + interval '1 hour'), 400::bigint,
          format('%s: 07:30-08:30 local (%s UTC) is a night and a day unit', k.given, t))
  FROM tz_kept k,
       LATERAL (SELECT '2026-11-20 07:30+00'::timestamptz - make_interval(mins => m) AS t
                  FROM (VALUES ('+08:00', 480), ('-05:00', -300), ('+14:00', 840), ('-12:00', -720), ('+05:30', 330),
                               ('-05:30', -330), ('+0545', 345), ('-09:30', -570)) AS o(given, m)
                 WHERE o.given = k.given) AS x
 ORDER BY k.lot;
CREATE TEMP TABLE tz_iana ON COMMIT DROP AS
SELECT name, m, payext.create_parking_lot(:op, 'tap-pk-zone', name, 0, 30, 300, 100) AS lot
  FROM (VALUES ('Asia/Kolkata', 330), ('Asia/Kathmandu', 345), ('America/Bogota', -300), ('Pacific/Kiritimati', 840),
               ('Pacific/Marquesas', -570)) AS z(name, m);
SELECT is(payext.parking_fee(lot, t, t + interval '1 hour'), 400::bigint, format('%s: the same', name))
  FROM tz_iana, LATERAL (SELECT '2026-11-20 07:30+00'::timestamptz - make_interval(mins => m) AS t) AS x
 ORDER BY lot;
-- Every quarter-hour offset from -12:00 to +14:00 prices the same way.
CREATE TEMP TABLE tz_sweep ON COMMIT DROP AS
SELECT m, format('%s%s:%s', CASE WHEN m < 0 THEN '-' ELSE '+' END, lpad((abs(m) / 60)::text, 2, '0'),
                 lpad((abs(m) % 60)::text, 2, '0')) AS iso
  FROM generate_series(-720, 840, 15) AS m;
ALTER TABLE tz_sweep ADD COLUMN lot bigint;
UPDATE tz_sweep SET lot = payext.create_parking_lot(:op, 'tap-pk-sweep', iso, 0, 30, 300, 100);
SELECT is_empty($$SELECT iso FROM tz_sweep,
                         LATERAL (SELECT '2026-11-20 07:30+00'::timestamptz - make_interval(mins => m) AS t) x
                   WHERE payext.parking_fee(lot, t, t + interval '1 hour') <> 400
                      OR payext.parking_fee(lot, t + interval '30 minutes', t + interval '1 hour') <> 300$$,
                'all 105 quarter-hour offsets from -12:00 to +14:00: local 07:30 is night, 08:00 day');
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 30, 100)', :alice, 'tap-pk-bad', 'Asia/Shanghai'),
                 'PY111', format('account %s is not a merchant account', :alice), 'a wallet cannot operate a lot');
SELECT throws_ok(format('SELECT payext.create_parking_lot(999999999, %L, %L, 0, 30, 100)', 'tap-pk-bad', 'Asia/Shanghai'),
                 'PY101', 'account 999999999 does not exist', 'an operator that does not exist');

---------------------------------------------------------------------------
-- PY407, PY412, PY413: pricing refusals
---------------------------------------------------------------------------
SELECT throws_ok(format('SELECT payext.%s', call), 'PY407', 'parking lot 999999999 does not exist', what)
  FROM (VALUES ($$parking_fee(999999999, '2026-11-20 10:00+08', '2026-11-20 11:00+08')$$, 'parking_fee at an unknown lot'),
               ($$vehicle_entered(999999999, 'PKU001', pg_temp.story('2026-11-20 10:00+08'))$$, 'vehicle_entered at an unknown lot'),
               ($$vehicle_exited(999999999, 'PKU001', pg_temp.story('2026-11-20 10:00+08'))$$, 'vehicle_exited at an unknown lot'))
       AS v(call, what);
SELECT throws_ok(format('SELECT payext.%s', call), 'PY412', msg, what)
  FROM (VALUES (format('parking_fee(%s, %L, %L)', :sh, '2026-11-20 12:00+08', '2026-11-20 11:59:59.999999+08'),
                'exit is before entry', 'parking_fee: exit 1 microsecond before entry'),
               (format('parking_fee(%s, %L, %L)', :sh, '-infinity', '2026-11-20 12:00+08'),
                'argument "entered_at" must be a finite time', 'parking_fee from -infinity'),
               (format('parking_fee(%s, %L, %L)', :sh, '2026-11-20 12:00+08', 'infinity'),
                'argument "exited_at" must be a finite time', 'parking_fee to infinity'),
               (format('vehicle_entered(%s, %L, %L)', :sh, 'PKU001', 'infinity'),
                'argument "at" must be a finite time', 'vehicle_entered at infinity'),
               (format('vehicle_exited(%s, %L, %L)', :sh, 'PKU001', '-infinity'),
                'argument "at" must be a finite time', 'vehicle_exited at -infinity'),
               (format('vehicle_entered(%s, %L, now() + interval %L)', :sh, 'PKU001', '5 minutes 0.000001 seconds'),
                'argument "at" is in the future', 'vehicle_entered more than 5 minutes ahead'),
               (format('vehicle_exited(%s, %L, now() + interval %L)', :sh, 'PKU001', '1 hour'),
                'argument "at" is in the future', 'vehicle_exited an hour ahead'),
               (format('vehicle_entered(%s, %L, %L)', :sh, 'PKU001', '1970-01-01 08:00+08'),
                'argument "at" is too far in the past', 'vehicle_entered in 1970'),
               (format('vehicle_entered(%s, %L, %L)', :sh, 'PKU001', '4713-01-01 00:00+00 BC'),
                'argument "at" is too far in the past', 'vehicle_entered in 4713 BC'),
               (format('vehicle_exited(%s, %L, %L)', :sh, 'PKU001', '1970-01-01 10:00+08'),
                'argument "at" is too far in the past', 'vehicle_exited in 1970'),
               (format('vehicle_entered(%s, %L, now() - interval %L)', :sh, 'PKU001', '31 days'),
                'argument "at" is too far in the past', 'vehicle_entered 31 days ago'),
               (format('vehicle_exited(%s, %L, now() - interval %L)', :sh, 'PKU001', '30 days 0.000001 seconds'),
                'argument "at" is too far in the past', 'vehicle_exited 30 days and 1 us ago'),
               ($$parking_service_info('tap-pk-alice', 'infinity')$$,
                'argument "at" must be a finite time', 'parking_service_info at infinity'))
       AS v(call, msg, what);
SELECT lives_ok(format('SELECT payext.vehicle_entered(%s, %L, now() + interval %L)', :shb, 'PKU009', '5 minutes'),
                'vehicle_entered exactly 5 minutes ahead is accepted (clock skew)');
SELECT lives_ok(format('SELECT payext.vehicle_entered(%s, %L, now() - interval %L)', :sh3, 'PKU010', '30 days'),
                'vehicle_entered exactly 30 days ago is accepted (max_stay)');
SELECT is(payext.vehicle_exited(:sh3, 'PKU010', now() - interval '30 days' + interval '1 hour'), 600::bigint,
          '... and its exit an hour later is priced: 2 units at the flat 3.00');
-- big: 1440-minute units at 2^62.  One unit fits, two are 2^63 > INT64_MAX.
SELECT is(payext.parking_fee(:big, '2026-11-20 10:00+08', '2026-11-21 10:00+08'), 4611686018427387904::bigint,
          'one unit at 2^62 is priced');
SELECT throws_ok(format('SELECT payext.parking_fee(%s, %L, %L)', :big, '2026-11-20 10:00+08', '2026-11-21 10:00:00.000001+08'),
                 'PY413', 'the fee of this stay does not fit in 64 bits', 'two units at 2^62 overflow: PY413');
-- long: 1440 units a day at 10^15; 6 days = 8.64 * 10^18 fits, 7 days =
-- 1.008 * 10^19 does not; with cap_stay 9 * 10^18 the 7 days cost the cap.
SELECT is(payext.parking_fee(:long, '2026-11-01 10:00+08', '2026-11-07 10:00+08'), 8640000000000000000::bigint,
          'a 6-day stay of 1-minute units at 10^15 is priced');
SELECT throws_ok(format('SELECT payext.parking_fee(%s, %L, %L)', :long, '2026-11-01 10:00+08', '2026-11-08 10:00+08'),
                 'PY413', 'the fee of this stay does not fit in 64 bits', 'a 7-day stay of them overflows: PY413');
SELECT is(payext.parking_fee(:longcap, '2026-11-01 10:00+08', '2026-11-08 10:00+08'), 9000000000000000000::bigint,
          'with cap_stay the 7-day stay costs the cap');

---------------------------------------------------------------------------
-- PY405: a tariff that could charge more than 64 bits over payext.max_stay
---------------------------------------------------------------------------
-- The worst case: every unit at the dearer price, a 24-hour block capped at
-- cap_24h, the whole at cap_stay.  Over 30 days (the default max_stay),
-- 1-minute units are 43,200 units, hourly ones 720, 7-minute ones 206 a
-- block (the last 5 minutes long), 6,180; INT64_MAX = 9223372036854775807.
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-huge', 'Asia/Shanghai', args),
                 'PY405', 'the tariff could charge more than the largest amount within payext.max_stay',
                 format('%s: refused', why))
  FROM (VALUES ('0, 1, 213503982334602', '1-minute units at INT64_MAX / 43200 + 1'),
               ('0, 1, 0, 213503982334602', '... at night (the dearer price counts)'),
               ('0, 60, 12810238940076078', 'hourly units at INT64_MAX / 720 + 1'),
               ('0, 7, 1492455022144786', '7-minute units at INT64_MAX / 6180 + 1'),
               ('0, 1, 9223372036854775807, cap_24h => 307445734561825861', 'cap_24h INT64_MAX / 30 + 1'),
               ('0, 1, 9223372036854775807, 9223372036854775807', 'INT64_MAX a minute, day and night'))
       AS v(args, why);
SELECT lives_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-edge', 'Asia/Shanghai', args),
                format('%s: accepted', why))
  FROM (VALUES ('0, 1, 213503982334601', '1-minute units at INT64_MAX / 43200'),
               ('0, 1, 0, 213503982334601', '... at night'),
               ('0, 60, 12810238940076077', 'hourly units at INT64_MAX / 720'),
               ('0, 7, 1492455022144785', '7-minute units at INT64_MAX / 6180'),
               ('0, 1, 9223372036854775807, cap_24h => 307445734561825860', 'any price with cap_24h INT64_MAX / 30'),
               ('0, 1, 9223372036854775807, 9223372036854775807, cap_stay => 9223372036854775807', 'any price with a cap_stay'),
               ('0, 1, 0, 0', 'free parking'))
       AS v(args, why);
-- max_stay 36 hours: a full block and half a block (2,160 1-minute units, or
-- two capped blocks); an hour: 60 units, or free within 60 free minutes.
SET LOCAL payext.max_stay = '36h';
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-huge', 'Asia/Shanghai', args),
                 'PY405', 'the tariff could charge more than the largest amount within payext.max_stay',
                 format('max_stay 36 hours, %s: refused', why))
  FROM (VALUES ('0, 1, 4270079646692026', '1-minute units at INT64_MAX / 2160 + 1'),
               ('0, 1, 9223372036854775807, cap_24h => 4611686018427387904', 'cap_24h INT64_MAX / 2 + 1')) AS v(args, why);
SELECT lives_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-edge', 'Asia/Shanghai', args),
                format('max_stay 36 hours, %s: accepted', why))
  FROM (VALUES ('0, 1, 4270079646692025', '1-minute units at INT64_MAX / 2160'),
               ('0, 1, 9223372036854775807, cap_24h => 4611686018427387903', 'cap_24h INT64_MAX / 2')) AS v(args, why);
SET LOCAL payext.max_stay = '1h';
SELECT throws_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-huge', 'Asia/Shanghai', args),
                 'PY405', 'the tariff could charge more than the largest amount within payext.max_stay',
                 format('max_stay an hour, %s: refused', why))
  FROM (VALUES ('0, 1, 153722867280912931', '1-minute units at INT64_MAX / 60 + 1'),
               ('59, 1, 9223372036854775807', '59 free minutes, then 1-minute units at INT64_MAX')) AS v(args, why);
SELECT lives_ok(format('SELECT payext.create_parking_lot(%s, %L, %L, %s)', :op, 'tap-pk-edge', 'Asia/Shanghai', args),
                format('max_stay an hour, %s: accepted', why))
  FROM (VALUES ('0, 1, 153722867280912930', '1-minute units at INT64_MAX / 60 (a full block would overflow)'),
               ('60, 1, 9223372036854775807', '60 free minutes: every stay is free')) AS v(args, why);
RESET payext.max_stay;
SELECT is(pg_temp.refusal(format('SELECT payext.create_parking_lot(%s, %L, %L, 0, 1, 213503982334602)',
                                 :op, 'tap-pk-huge', 'Asia/Shanghai')),
          'PY405 the tariff could charge more than the largest amount within payext.max_stay: '
          'A stay of 30 days (payext.max_stay) could cost more than 9223372036854775807 minor units '
          'at up to 213503982334602 a unit.',
          'the refusal''s detail says how much over how long');

---------------------------------------------------------------------------
-- The tariff (parking_fee), Asia/Shanghai: UTC+8 all year
---------------------------------------------------------------------------
SELECT is(payext.parking_fee(lot, entered::timestamptz, exited::timestamptz), fee::bigint, why)
  FROM (VALUES
    -- Rule 1: at most free_minutes (15) costs 0; beyond, the whole stay from
    -- entry: 15 min + 1 us is one started 30-minute unit from 10:00 (day).
    (:sh, '2026-11-20 10:00+08', '2026-11-20 10:00+08', 0, 'sh: an instant costs 0'),
    (:sh, '2026-11-20 10:00+08', '2026-11-20 10:15+08', 0, 'sh: exactly free_minutes (15) costs 0'),
    (:sh, '2026-11-20 10:00+08', '2026-11-20 10:15:00.000001+08', 300, 'sh: free_minutes + 1 us: one day unit from entry, 3.00'),
    -- Rule 2: every started unit: 10:00-11:00 is 2 units (6.00); 1 us more
    -- starts a third at 11:00 (9.00).
    (:sh, '2026-11-20 10:00+08', '2026-11-20 11:00+08', 600, 'sh: 60 minutes are 2 units, 6.00'),
    (:sh, '2026-11-20 10:00+08', '2026-11-20 11:00:00.000001+08', 900, 'sh: 1 us more starts a 3rd unit, 9.00'),
    -- The price is the period's in which a unit starts: from 19:59 the first
    -- unit (19:59-20:29) starts in the day (3.00); 1 us past 20:29 starts a
    -- second one at 20:29, at night (1.00).
    (:sh, '2026-11-20 19:59+08', '2026-11-20 20:29+08', 300, 'sh: a unit starting at 19:59 is a day unit, 3.00'),
    (:sh, '2026-11-20 19:59+08', '2026-11-20 20:29:00.000001+08', 400, 'sh: ... and the next, from 20:29, a night unit: 4.00'),
    (:sh, '2026-11-20 20:00+08', '2026-11-20 20:30+08', 100, 'sh: a unit starting at 20:00 (night_start) is a night unit'),
    (:sh, '2026-11-20 07:59+08', '2026-11-20 08:29+08', 100, 'sh: a unit starting at 07:59 is a night unit'),
    (:sh, '2026-11-20 08:00+08', '2026-11-20 08:30+08', 300, 'sh: a unit starting at 08:00 (day_start) is a day unit'),
    -- 20:00-08:00 is the day in sh2: 23:00-01:00 is 4 day units (12.00);
    -- 07:30 (day) + 08:00 (night) = 4.00; 19:30 (night) + 20:00 (day) = 4.00.
    (:sh2, '2026-11-20 23:00+08', '2026-11-21 01:00+08', 1200, 'sh2 (day 20:00-08:00): 23:00-01:00 is 4 day units past midnight'),
    (:sh2, '2026-11-21 07:30+08', '2026-11-21 08:30+08', 400, 'sh2: 07:30 is day, 08:00 night'),
    (:sh2, '2026-11-20 19:30+08', '2026-11-20 20:30+08', 400, 'sh2: 19:30 is night, 20:00 day'),
    -- No night price: 19:00-21:00, 4 units at the day price.
    (:sh3, '2026-11-20 19:00+08', '2026-11-20 21:00+08', 1200, 'sh3 (no night price): every unit at the day price'),
    -- Rule 3, shc (60-min units, day 10.00, night 2.00, cap_24h 50.00,
    -- cap_stay 80.00), entry 2026-11-20 10:00.  Block 1 = 11-20 10:00 ..
    -- 11-21 10:00: 10 day units (10..19), 12 night (20..07), 2 day (08, 09)
    -- = 144.00, capped at 50.00.  Block 2 starts 11-21 10:00 (24 h from
    -- entry): its units 10:00 and 11:00 are day: 20.00, so 10:00-12:00 the
    -- next day costs 70.00.  By calendar days it would be 50.00 (11-20:
    -- 10 day + 4 night = 108.00) + 50.00 (11-21 to 12:00: 8 night + 4 day
    -- = 56.00) = 100.00.  Two full blocks are 100.00, capped at 80.00.
    (:shc, '2026-11-20 10:00+08', '2026-11-21 10:00+08', 5000, 'shc: a 24-hour block is capped at cap_24h'),
    (:shc, '2026-11-20 10:00+08', '2026-11-21 10:00:00.000001+08', 6000, 'shc: 1 us into the 2nd block starts a day unit: 60.00'),
    (:shc, '2026-11-20 10:00+08', '2026-11-21 12:00+08', 7000, 'shc: blocks run 24 h from entry, not calendar days: 70.00'),
    (:shc, '2026-11-20 10:00+08', '2026-11-22 10:00+08', 8000, 'shc: two capped blocks (100.00) are capped at cap_stay, 80.00'),
    -- l7, 7-minute units: a full block has ceil(1440 / 7) = 206 units (the
    -- last one 5 minutes long); the block after starts at 24 h, so 24 h 08
    -- min is 206 + 2 = 208 units (not ceil(1448 / 7) = 207).
    (:l7, '2026-11-20 10:00+08', '2026-11-21 10:00+08', 206, 'l7: a full block of 7-minute units is 206 units'),
    (:l7, '2026-11-20 10:00+08', '2026-11-21 10:08+08', 208, 'l7: each block is cut into units from its own start'))
  AS v(lot, entered, exited, fee, why);

---------------------------------------------------------------------------
-- The tariff across DST, Europe/Berlin
---------------------------------------------------------------------------
SELECT is(payext.parking_fee(lot, entered::timestamptz, exited::timestamptz), fee::bigint, why)
  FROM (VALUES
    -- be: 60-minute units, day 10.00 (08:00-20:00 local), night 1.00.
    -- Spring: entry 03-28 12:00 CET = 11:00 UTC, exit 03-29 13:00 CEST =
    -- 11:00 UTC: one block of 24 real hours, units starting 11:00 UTC + k h.
    --   11..18 UTC on 03-28 = 12:00..19:00 CET          8 day
    --   19..00 UTC          = 20:00..01:00 CET          6 night
    --   01..05 UTC on 03-29 = 03:00..07:00 CEST         5 night
    --   06..10 UTC          = 08:00..12:00 CEST         5 day
    -- 13 day + 11 night = 131.00 (with the winter offset kept, 06:00 UTC
    -- would be 07:00, night: 12 + 12 = 132.00).
    (:be, '2026-03-28 12:00+01', '2026-03-29 13:00+02', 14100, 'be: 24 h across the spring change: 13 day + 11 night units'),
    (:be, '2026-03-29 08:00+02', '2026-03-29 08:30+02', 1000, 'be: a unit starting at 08:00 CEST after the change is a day unit'),
    (:be, '2026-03-29 07:00+02', '2026-03-29 08:00+02', 100, 'be: a unit starting at 07:00 CEST (05:00 UTC) is a night unit'),
    -- 01:30 CET to 03:30 CEST is one real hour (00:30-01:30 UTC): one unit.
    (:be, '2026-03-29 01:30+01', '2026-03-29 03:30+02', 100, 'be: 01:30 CET to 03:30 CEST is one real hour, one unit'),
    -- Autumn: entry 10-24 12:00 CEST = 10:00 UTC, exit 10-25 11:00 CET =
    -- 10:00 UTC, 24 real hours:
    --   10..17 UTC on 10-24 = 12:00..19:00 CEST         8 day
    --   18..00 UTC          = 20:00..02:00 CEST         7 night
    --   01..06 UTC on 10-25 = 02:00..07:00 CET          6 night
    --   07..09 UTC          = 08:00..10:00 CET          3 day
    -- 11 day + 13 night = 123.00.
    (:be, '2026-10-24 12:00+02', '2026-10-25 11:00+01', 12300, 'be: 24 h across the autumn change: 11 day + 13 night units'),
    (:be, '2026-10-25 08:00+01', '2026-10-25 08:30+01', 1000, 'be: a unit starting at 08:00 CET after the change is a day unit'),
    (:be, '2026-10-25 02:30+02', '2026-10-25 02:30+01', 100, 'be: 02:30 CEST to 02:30 CET is one real hour, one unit'),
    -- Ten blocks from 03-25 12:00 CET (11:00 UTC) to 04-04 13:00 CEST
    -- (11:00 UTC): blocks 1-3 all CET: 8 day (12..19) + 12 night + 4 day
    -- (08..11) = 12 day, 12 night = 132.00 each; block 4 is the one above,
    -- 141.00; blocks 5-10 all CEST, units from 13:00 local: 7 day (13..19)
    -- + 12 night + 5 day (08..12) = 132.00 each.  9 * 132.00 + 141.00.
    (:be, '2026-03-25 12:00+01', '2026-04-04 13:00+02', 132900, 'be: ten 24-hour blocks, one of them across the change'),
    -- bec: 60-minute units at 10.00, cap_24h 50.00.  Blocks are 24 real
    -- hours: 03-28 12:00 CET = 11:00 UTC to 03-29 12:30 CEST = 10:30 UTC is
    -- 23.5 hours, one block (50.00); a 24 *local* hours block would end at
    -- 12:00 CEST and start a second (60.00).  The second block starts at
    -- 03-29 11:00 UTC = 13:00 CEST.
    (:bec, '2026-03-28 12:00+01', '2026-03-29 12:30+02', 5000, 'bec: spring, 12:00 CET to 12:30 CEST is 23.5 h, one capped block'),
    (:bec, '2026-03-28 12:00+01', '2026-03-29 13:00+02', 5000, 'bec: spring, 24 real hours end at 13:00 CEST: still one block'),
    (:bec, '2026-03-28 12:00+01', '2026-03-29 13:00:00.000001+02', 6000, 'bec: spring, 1 us later a second block starts'),
    -- Autumn: 10-24 12:00 CEST = 10:00 UTC to 10-25 11:30 CET = 10:30 UTC
    -- is 24.5 hours: two blocks (50.00 + 10.00), though the local clock
    -- shows less than 24 hours.
    (:bec, '2026-10-24 12:00+02', '2026-10-25 11:30+01', 6000, 'bec: autumn, 12:00 CEST to 11:30 CET is 24.5 h, two blocks'),
    (:bec, '2026-10-24 12:00+02', '2026-10-25 11:00+01', 5000, 'bec: autumn, 24 real hours end at 11:00 CET: one block'))
  AS v(lot, entered, exited, fee, why);

---------------------------------------------------------------------------
-- Stays: repeated entries and exits
---------------------------------------------------------------------------
SELECT payext.vehicle_entered(:sh, 'pka 001', pg_temp.story('2026-11-20 10:00+08')) AS st1 \gset
SELECT is(payext.vehicle_entered(:sh, 'PKA-001', pg_temp.story('2026-11-20 10:00+08')), :st1::bigint,
          'a repeated entry (another spelling of the plate) returns the same stay');
SELECT is(pg_temp.stay(:st1), 'open 2026-11-20 02:00:00.000000 - - 0', '... which is open, entered at 10:00+08');
SELECT results_eq($$SELECT stay, plate, lot, entered_at, exited_at, amount_due, lot_name, currency
                      FROM payext.parking_service_info('tap-pk-alice', pg_temp.story('2026-11-20 11:00+08'))$$,
                  format($$VALUES (%s::bigint, 'PKA001', %s::bigint, pg_temp.story('2026-11-20 10:00+08'), NULL::timestamptz,
                                   600::bigint, 'TAP SH', 'CNY')$$, :st1, :sh),
                  'service info shows the open stay priced at `at`: 10:00-11:00 is 6.00');
SELECT is(payext.vehicle_exited(:sh, 'PKA001', pg_temp.story('2026-11-20 12:00+08')), 1200::bigint,
          'the exit at 12:00 returns the fee: 4 day units, 12.00');
SELECT is(pg_temp.stay(:st1), 'exited 2026-11-20 02:00:00.000000 2026-11-20 04:00:00.000000 1200 0',
          '... the stay is exited with its fee, unpaid (alice has no auto_pay)');
SELECT is(payext.vehicle_exited(:sh, 'PKA001', pg_temp.story(at)), 1200::bigint,
          format('a repeated exit at %s returns the same fee', at))
  FROM unnest(ARRAY['2026-11-20 12:00+08', '2026-11-20 12:00:30+08', '2026-11-20 12:01+08', '2026-11-20 11:59+08']) AS at;
SELECT results_eq($$SELECT count(*)::int, max(exited_at) FROM payext.parking_stay WHERE plate = 'PKA001'$$,
                  $$VALUES (1, pg_temp.story('2026-11-20 12:00+08'))$$, '... and records nothing: one stay, exited at 12:00');
SELECT is(payext.vehicle_entered(:sh, 'PKA001', pg_temp.story('2026-11-20 10:00+08')), :st1::bigint,
          'the entry event repeated after the exit returns the same stay');
SELECT is(payext.vehicle_exited(:sh, 'PKA001', pg_temp.story('2026-11-20 12:01:00.000001+08')), NULL,
          'an exit 60 s + 1 us after the last one is not a repeat: an exit without entry (NULL)');

---------------------------------------------------------------------------
-- Exits without entry, late entries, several lots
---------------------------------------------------------------------------
SELECT is(payext.vehicle_exited(:sh, 'PKA002', pg_temp.story('2026-11-20 15:00+08')), NULL, 'an exit without entry returns NULL');
SELECT id AS st2 FROM payext.parking_stay WHERE plate = 'PKA002' \gset
SELECT is(pg_temp.stay(:st2), 'exit_without_entry - 2026-11-20 07:00:00.000000 - 0', '... and is recorded');
SELECT results_eq($$SELECT stay, lot, plate, seen_at, anomaly FROM payext.parking_anomaly WHERE plate = 'PKA002'$$,
                  format($$VALUES (%s::bigint, %s::bigint, 'PKA002', pg_temp.story('2026-11-20 15:00+08'), 'exit_without_entry')$$, :st2, :sh),
                  '... and shows in parking_anomaly');
SELECT is_empty($$SELECT 1 FROM payext.parking_service_info('tap-pk-alice', pg_temp.story('2026-11-21 10:00+08')) WHERE plate = 'PKA002'$$,
                'an exit without entry (no fee yet) is not in service info');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 600)', :st2, :alice), 'PY410',
                 format('nothing is due for parking stay %s', :st2), 'nor can it be paid');
SELECT is(payext.vehicle_exited(:sh, 'PKA002', pg_temp.story('2026-11-20 15:00+08')), NULL, 'the exit without entry repeated: NULL again');
SELECT is((SELECT count(*)::int FROM payext.parking_stay WHERE plate = 'PKA002'), 1,
          '... and not recorded twice (repeated camera events are not duplicated)');
SELECT is(payext.vehicle_entered(:sh, 'PKA002', pg_temp.story('2026-11-20 14:00+08')), :st2::bigint,
          'a late entry (14:00) completes the exit without entry: same stay');
SELECT is(pg_temp.stay(:st2), 'exited 2026-11-20 06:00:00.000000 2026-11-20 07:00:00.000000 600 0',
          '... now exited, priced 14:00-15:00: 2 day units, 6.00');
SELECT is_empty($$SELECT 1 FROM payext.parking_anomaly WHERE plate = 'PKA002'$$, '... and no longer an anomaly');
SELECT is(payext.vehicle_entered(:sh, 'PKA002', pg_temp.story('2026-11-20 14:00+08')), :st2::bigint,
          'the late entry repeated returns the same stay');
-- A late entry while a newer stay of the plate is open at the same lot.
SELECT is(payext.vehicle_exited(:sh, 'PKU003', pg_temp.story('2026-11-20 12:00+08')), NULL, 'PKU003 leaves at 12:00 without an entry');
SELECT id AS st_u3 FROM payext.parking_stay WHERE plate = 'PKU003' \gset
SELECT payext.vehicle_entered(:sh, 'PKU003', pg_temp.story('2026-11-20 13:00+08')) AS st_u3b \gset
SELECT is(payext.vehicle_entered(:sh, 'PKU003', pg_temp.story('2026-11-20 11:00+08')), :st_u3::bigint,
          'the late entry of 11:00 completes the 12:00 exit, though the plate is open again since 13:00');
SELECT is(pg_temp.stay(:st_u3), 'exited 2026-11-20 03:00:00.000000 2026-11-20 04:00:00.000000 600 0',
          '... priced 11:00-12:00: 2 day units, 6.00');
SELECT is(pg_temp.stay(:st_u3b), 'open 2026-11-20 05:00:00.000000 - - 0', '... and the newer stay stays open');
-- A repeated entry event of an earlier stay, once a newer one is open.
SELECT payext.vehicle_entered(:sh, 'PKU004', pg_temp.story('2026-11-20 08:00+08')) AS st_u4 \gset
SELECT is(payext.vehicle_exited(:sh, 'PKU004', pg_temp.story('2026-11-20 09:00+08')), 600::bigint, 'PKU004 stays 08:00-09:00: 6.00');
SELECT payext.vehicle_entered(:sh, 'PKU004', pg_temp.story('2026-11-20 10:00+08')) AS st_u4b \gset
SELECT is(payext.vehicle_entered(:sh, 'PKU004', pg_temp.story('2026-11-20 08:00+08')), :st_u4::bigint,
          'the 08:00 entry repeated after a new entry at 10:00 returns the 08:00 stay, not the open one');

SELECT payext.vehicle_entered(:sh, 'PKA003', pg_temp.story('2026-11-21 09:00+08')) AS st3a \gset
SELECT payext.vehicle_entered(:shb, 'PKA003', pg_temp.story('2026-11-21 09:30+08')) AS st3b \gset
SELECT isnt(:st3b::bigint, :st3a::bigint, 'an entry at lot B while open at lot A is a new stay');
SELECT results_eq($$SELECT id, state FROM payext.parking_stay WHERE plate = 'PKA003' ORDER BY id$$,
                  format($$VALUES (%s::bigint, 'open'), (%s::bigint, 'open')$$, :st3a, :st3b), '... both stay open');
SELECT results_eq($$SELECT stay, lot, seen_at, anomaly FROM payext.parking_anomaly WHERE plate = 'PKA003' ORDER BY stay$$,
                  format($$VALUES (%s::bigint, %s::bigint, pg_temp.story('2026-11-21 09:00+08'), 'open_at_several_lots'),
                                  (%s::bigint, %s::bigint, pg_temp.story('2026-11-21 09:30+08'), 'open_at_several_lots')$$,
                         :st3a, :sh, :st3b, :shb),
                  '... and parking_anomaly lists both as open_at_several_lots');

-- In again at the same lot, later, while open: the open stay's exit was missed.
SELECT payext.vehicle_entered(:sh, 'PKU005', pg_temp.story('2026-11-20 08:00+08')) AS st_u5 \gset
SELECT payext.vehicle_entered(:sh, 'PKU005', pg_temp.story('2026-11-20 18:00+08')) AS st_u5b \gset
SELECT isnt(:st_u5b::bigint, :st_u5::bigint, 'an entry at the same lot hours after an open one is a new stay');
SELECT results_eq($$SELECT id, state FROM payext.parking_stay WHERE plate = 'PKU005' ORDER BY id$$,
                  format($$VALUES (%s::bigint, 'exit_missed'), (%s::bigint, 'open')$$, :st_u5, :st_u5b),
                  '... the first one''s exit was missed; the new one is open');
SELECT results_eq($$SELECT stay, seen_at, anomaly FROM payext.parking_anomaly WHERE plate = 'PKU005'$$,
                  format($$VALUES (%s::bigint, pg_temp.story('2026-11-20 08:00+08'), 'exit_missed')$$, :st_u5),
                  '... and parking_anomaly lists it as exit_missed');

---------------------------------------------------------------------------
-- Unbound plates
---------------------------------------------------------------------------
SELECT payext.vehicle_entered(:sh, 'PKU001', pg_temp.story('2026-11-20 10:00+08')) AS st_u1 \gset
SELECT is(payext.vehicle_exited(:sh, 'PKU001', pg_temp.story('2026-11-20 11:00+08')), 600::bigint, 'an unbound plate''s stay is priced');
SELECT is_empty($$SELECT 1 FROM payext.parking_service_info('tap-pk-alice', pg_temp.story('2026-11-21 10:00+08')) WHERE plate LIKE 'PKU%'
                  UNION ALL SELECT 1 FROM payext.parking_service_info('tap-pk-bob', pg_temp.story('2026-11-21 10:00+08')) WHERE plate LIKE 'PKU%'
                  UNION ALL SELECT 1 FROM payext.parking_service_info('tap-pk-erin', pg_temp.story('2026-11-21 10:00+08')) WHERE plate LIKE 'PKU%'$$,
                'unbound plates are in nobody''s service info');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 600)', :st_u1, :alice), 'PY411',
                 format('plate PKU001 is not bound to the owner of wallet %s', :alice),
                 'an unbound plate''s stay cannot be paid from a wallet');
-- A stay belongs to the plate's owner when it began: gina's stay, once
-- hank has bound the plate, is neither his to see nor his to pay.
SELECT payext.open_wallet('tap-pk-hank') AS hank \gset
SELECT payext.top_up(:hank, 10000, 'tap-pk-bank-hank') > 0 AS t7 \gset
SELECT payext.bind_vehicle('tap-pk-gina', 'PKG001');
SELECT payext.vehicle_entered(:sh, 'PKG001', pg_temp.story('2026-11-20 10:00+08')) AS st_g1 \gset
SELECT is(payext.vehicle_exited(:sh, 'PKG001', pg_temp.story('2026-11-20 11:00+08')), 600::bigint, 'gina''s PKG001 stays 10:00-11:00: 6.00');
SELECT payext.unbind_vehicle('tap-pk-gina', 'PKG001');
SELECT payext.bind_vehicle('tap-pk-hank', 'PKG001', auto_pay => true);
SELECT is_empty($$SELECT 1 FROM payext.parking_service_info('tap-pk-hank')$$,
                'hank, who bound PKG001 after gina''s stay, does not see that stay');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 600)', :st_g1, :hank), 'PY411',
                 format('plate PKG001 is not bound to the owner of wallet %s', :hank), '... nor can he pay it');

---------------------------------------------------------------------------
-- Service info and pay_parking
---------------------------------------------------------------------------
-- At 11-21 10:00: st1 (exited, 12.00), st2 (exited, 6.00), st3a open since
-- 09:00 (2 day units, 6.00), st3b open at lot B since 09:30 (30 min > 15
-- free: 1 day unit, 3.00); ordered by entry.
SELECT results_eq($$SELECT stay, plate, lot, entered_at, exited_at, amount_due, lot_name, currency
                      FROM payext.parking_service_info('tap-pk-alice', pg_temp.story('2026-11-21 10:00+08'))$$,
                  format($$VALUES (%s::bigint, 'PKA001', %s::bigint, pg_temp.story('2026-11-20 10:00+08'), pg_temp.story('2026-11-20 12:00+08'), 1200::bigint, 'TAP SH', 'CNY'),
                                  (%s::bigint, 'PKA002', %s::bigint, pg_temp.story('2026-11-20 14:00+08'), pg_temp.story('2026-11-20 15:00+08'), 600::bigint, 'TAP SH', 'CNY'),
                                  (%s::bigint, 'PKA003', %s::bigint, pg_temp.story('2026-11-21 09:00+08'), NULL::timestamptz, 600::bigint, 'TAP SH', 'CNY'),
                                  (%s::bigint, 'PKA003', %s::bigint, pg_temp.story('2026-11-21 09:30+08'), NULL::timestamptz, 300::bigint, 'TAP SH-B', 'CNY')$$,
                         :st1, :sh, :st2, :sh, :st3a, :sh, :st3b, :shb),
                  'service info: exited unpaid stays with their fee, open ones priced at `at`');
SELECT results_eq($$SELECT stay, amount_due FROM payext.parking_service_info('tap-pk-alice', pg_temp.story('2026-11-21 09:10+08')) WHERE plate = 'PKA003'$$,
                  format('VALUES (%s::bigint, 0::bigint), (%s::bigint, 0::bigint)', :st3a, :st3b),
                  'at 09:10 the open stays owe nothing: 10 minutes are free, the other has not begun');
SELECT is_empty($$SELECT 1 FROM payext.parking_service_info('tap-pk-carol')$$, 'a user without vehicles has no rows');
-- Within the free minutes nothing is due: frank's PKF001 entered 5 minutes ago.
SELECT payext.open_wallet('tap-pk-frank') AS frank,
       payext.vehicle_entered(:sh, 'PKF001', now() - interval '5 minutes') AS st_f1
\gset
SELECT results_eq($$SELECT stay, amount_due FROM payext.parking_service_info('tap-pk-frank')$$,
                  format('VALUES (%s::bigint, 0::bigint)', :st_f1), 'an open stay within the free minutes shows 0 due');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 300)', :st_f1, :frank), 'PY410',
                 format('nothing is due for parking stay %s', :st_f1), '... and paying it is refused: nothing is due');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 1200)', :st1, :alice_eur), 'PY105',
                 format('accounts %s and %s hold different currencies', :alice_eur, :op),
                 'a CNY stay cannot be paid from alice''s EUR wallet');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 1199)', :st1, :alice), 'PY409',
                 format('the amount due for parking stay %s has changed', :st1), 'a stale amount (11.99 for 12.00) is refused');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 1200)', :st1, :bob), 'PY411',
                 format('plate PKA001 is not bound to the owner of wallet %s', :bob), 'bob cannot pay alice''s stay');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 1200)', :st1, :op), 'PY111',
                 format('account %s is not a wallet account', :op), 'a merchant account cannot pay a stay');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, 999999999, 1200)', :st1), 'PY101',
                 'account 999999999 does not exist', 'a wallet that does not exist');
SELECT throws_ok(format('SELECT payext.pay_parking(999999999, %s, 1200)', :alice), 'PY408',
                 'parking stay 999999999 does not exist', 'a stay that does not exist');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s), payext.balance(%s)', :alice, :alice_eur, :op),
                  $$VALUES (100000::bigint, 10000::bigint, 0::bigint)$$, 'the refusals moved nothing');
SELECT payext.pay_parking(stay => :st1, wallet => :alice, amount => 1200) AS t_st1 \gset
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s)', :alice, :op),
                  $$VALUES (98800::bigint, 1200::bigint)$$, 'pay_parking moves the 12.00 from alice to the operator');
SELECT results_eq(format('SELECT transfer_id, stay, wallet, amount, how, paid_at = now() FROM payext.parking_payment WHERE stay = %s', :st1),
                  format($$VALUES (%s::bigint, %s::bigint, %s::bigint, 1200::bigint, 'manual', true)$$, :t_st1, :st1, :alice),
                  '... one manual parking payment');
SELECT results_eq(format('SELECT debit_account, credit_account, amount, kind FROM payext.transfer WHERE id = %s', :t_st1),
                  format($$VALUES (%s::bigint, %s::bigint, 1200::bigint, 'parking')$$, :alice, :op),
                  '... journaled as a parking transfer from the wallet to the operator');
SELECT is(pg_temp.stay(:st1), 'exited 2026-11-20 02:00:00.000000 2026-11-20 04:00:00.000000 1200 1200', '... the stay is paid');
SELECT is(payext.pay_parking(:st1, :alice, 1200), :t_st1::bigint, 'the same payment again (a retry) returns the same transfer');
SELECT results_eq(format('SELECT payext.balance(%s), (SELECT count(*)::int FROM payext.parking_payment WHERE stay = %s)', :alice, :st1),
                  $$VALUES (98800::bigint, 1)$$, '... and moves nothing');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 100)', :st1, :alice), 'PY410',
                 format('nothing is due for parking stay %s', :st1), 'another payment of a paid stay: nothing is due');
SELECT is_empty(format('SELECT 1 FROM payext.parking_service_info(%L, %L) WHERE stay = %s', 'tap-pk-alice', pg_temp.story('2026-11-21 10:00+08'), :st1),
                'a paid stay is gone from service info');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 600)', :st2, :alice), 'alice pays the 6.00 of the late-entry stay');

---------------------------------------------------------------------------
-- Paying before exit: exit_grace_minutes (shg: 1.00 an hour, grace 2 min)
---------------------------------------------------------------------------
-- Entered exactly one hour before now(): one unit is due now; paid at
-- now(), leaving up to now() + 2 min costs nothing more; later, the second
-- unit (started at entry + 60 min) is due.
SELECT payext.vehicle_entered(:shg, 'PKB001', now() - interval '1 hour') AS st_b1,
       payext.vehicle_entered(:shg, 'PKB002', now() - interval '1 hour') AS st_b2
\gset
SELECT results_eq($$SELECT stay, amount_due FROM payext.parking_service_info('tap-pk-bob') ORDER BY stay$$,
                  format('VALUES (%s::bigint, 100::bigint), (%s::bigint, 100::bigint)', :st_b1, :st_b2),
                  'bob''s two open stays owe one unit each now');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 100)', :st_b1, :bob), 'bob pays PKB001 before leaving');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 100)', :st_b2, :bob), 'bob pays PKB002 before leaving');
SELECT results_eq(format($$SELECT amount_due FROM payext.parking_service_info('tap-pk-bob', now() + interval %L) WHERE stay = %s$$, at, :st_b1),
                  format('VALUES (%s::bigint)', due), format('after paying, PKB001 owes %s at now() + %s', due, at))
  FROM (VALUES ('0', 0), ('2 minutes', 0), ('2 minutes 0.000001 seconds', 100)) AS v(at, due);
SELECT is(payext.vehicle_exited(:shg, 'PKB001', now() + interval '1 minute'), 100::bigint,
          'leaving within the grace: the fee is what was paid');
SELECT results_eq(format('SELECT state, fee, paid FROM payext.parking_stay WHERE id = %s', :st_b1),
                  $$VALUES ('exited', 100::bigint, 100::bigint)$$, '... exited, nothing more due');
SELECT is(payext.vehicle_exited(:shg, 'PKB002', now() + interval '3 minutes'), 200::bigint,
          'leaving after the grace: the fee is the tariff''s, 2 units');
SELECT results_eq($$SELECT stay, amount_due FROM payext.parking_service_info('tap-pk-bob')$$,
                  format('VALUES (%s::bigint, 100::bigint)', :st_b2), '... and the difference, 1.00, is due');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 100)', :st_b2, :bob), 'bob pays the difference');
SELECT results_eq(format('SELECT state, fee, paid FROM payext.parking_stay WHERE id = %s', :st_b2),
                  $$VALUES ('exited', 200::bigint, 200::bigint)$$, '... paid in full');
SELECT is_empty($$SELECT 1 FROM payext.parking_service_info('tap-pk-bob')$$, 'bob owes nothing');
SELECT is(payext.balance(:bob), 9700::bigint, 'bob paid 1.00 (PKB001) + 1.00 and 1.00 (PKB002): 3.00 in all');

---------------------------------------------------------------------------
-- Automatic payment at exit (erin: PKE001 with auto_pay; 10.00 CNY and
-- 1000.00 EUR)
---------------------------------------------------------------------------
SELECT payext.vehicle_entered(:sh, 'PKE001', pg_temp.story('2026-11-20 10:00+08')) AS st_e1 \gset
SELECT is(payext.vehicle_exited(:sh, 'PKE001', pg_temp.story('2026-11-20 12:00+08')), 1200::bigint,
          'auto_pay, the wallet short (10.00 for 12.00): the exit still returns the fee');
SELECT results_eq(format('SELECT fee, paid, payext.balance(%s) FROM payext.parking_stay WHERE id = %s', :erin, :st_e1),
                  $$VALUES (1200::bigint, 0::bigint, 1000::bigint)$$, '... nothing is paid, not even in part');
SELECT results_eq($$SELECT stay, amount_due FROM payext.parking_service_info('tap-pk-erin')$$,
                  format('VALUES (%s::bigint, 1200::bigint)', :st_e1), '... and the fee is due');
SELECT payext.top_up(:erin, 5000, 'tap-pk-bank-erin-2') > 0 AS t6 \gset
SELECT payext.vehicle_entered(:sh, 'PKE001', pg_temp.story('2026-11-20 13:00+08')) AS st_e2 \gset
SELECT is(payext.vehicle_exited(:sh, 'PKE001', pg_temp.story('2026-11-20 14:00+08')), 600::bigint,
          'auto_pay with the balance there: the exit returns the fee, 6.00');
SELECT results_eq(format('SELECT s.fee, s.paid, p.wallet, p.amount, p.how FROM payext.parking_stay s
                            JOIN payext.parking_payment p ON p.stay = s.id WHERE s.id = %s', :st_e2),
                  format($$VALUES (600::bigint, 600::bigint, %s::bigint, 600::bigint, 'auto')$$, :erin),
                  '... paid automatically from erin''s CNY wallet');
SELECT payext.vehicle_entered(:be, 'PKE001', pg_temp.story('2026-11-20 10:00+01')) AS st_e3 \gset
SELECT is(payext.vehicle_exited(:be, 'PKE001', pg_temp.story('2026-11-20 12:00+01')), 2000::bigint,
          'at the Berlin lot (EUR): 2 day units, 20.00');
SELECT results_eq(format('SELECT p.wallet, p.amount, p.how, s.paid FROM payext.parking_stay s
                            JOIN payext.parking_payment p ON p.stay = s.id WHERE s.id = %s', :st_e3),
                  format($$VALUES (%s::bigint, 2000::bigint, 'auto', 2000::bigint)$$, :erin_eur),
                  '... paid from erin''s wallet in the lot''s currency, EUR');
SELECT results_eq(format('SELECT payext.balance(%s), payext.balance(%s), payext.balance(%s)', :erin, :erin_eur, :op_eur),
                  $$VALUES (5400::bigint, 98000::bigint, 2000::bigint)$$, 'erin: 60.00 - 6.00 CNY, 1000.00 - 20.00 EUR');
SELECT results_eq($$SELECT stay, amount_due, currency FROM payext.parking_service_info('tap-pk-erin')$$,
                  format($$VALUES (%s::bigint, 1200::bigint, 'CNY')$$, :st_e1), 'only the short stay is still due');
SELECT is((SELECT paid FROM payext.parking_stay WHERE id = :st1), 1200::bigint,
          'without auto_pay (alice) nothing was paid at exit: her stay was paid by pay_parking alone');

---------------------------------------------------------------------------
-- Exits that cannot be priced: kept as anomalies (PY415), never lost
---------------------------------------------------------------------------
-- ivy's PKI001 stays 7 days at long (made under a max_stay of 6 days: 1440
-- units a day at 10^15, 7 days overflow); PKI002 stays 30 days (exactly
-- payext.max_stay) at sh3 (flat 3.00 per 30 minutes, no auto-pay), then
-- 29 days 23 hours once payext.max_stay is 29 days.
SELECT payext.open_wallet('tap-pk-ivy') AS ivy \gset
SELECT payext.top_up(:ivy, 10000000, 'tap-pk-bank-ivy') > 0 AS t8 \gset
SELECT payext.bind_vehicle('tap-pk-ivy', 'PKI001', auto_pay => true);
SELECT payext.bind_vehicle('tap-pk-ivy', 'PKI002');
SELECT payext.vehicle_entered(:long, 'PKI001', now() - interval '7 days') AS st_i1 \gset
SELECT payext.vehicle_entered(:sh3, 'PKI002', now() - interval '30 days') AS st_i2 \gset
SELECT results_eq($$SELECT plate, amount_due FROM payext.parking_service_info('tap-pk-ivy') ORDER BY stay$$,
                  $$VALUES ('PKI001', NULL::bigint), ('PKI002', 432000::bigint)$$,
                  'service info lists an open stay it cannot price without an amount, and the others with theirs');
SELECT throws_ok(format('SELECT payext.pay_parking(%s, %s, 1)', :st_i1, :ivy), 'PY415',
                 format('parking stay %s cannot be priced', :st_i1), 'pay_parking of a stay that cannot be priced: PY415');
SELECT is(payext.vehicle_exited(:long, 'PKI001', now()), NULL, 'an exit whose fee overflows returns NULL (PY415 warning)');
SELECT is(pg_temp.refusal(format('SELECT payext.vehicle_exited(%s, %L, now())', :long, 'PKI001')), 'no error',
          '... a repeated exit event is no error');
SELECT is((SELECT count(*)::int FROM payext.parking_stay WHERE plate = 'PKI001'), 1, '... and records nothing more');
SELECT results_eq(format('SELECT state, fee, entered_at, exited_at, paid FROM payext.parking_stay WHERE id = %s', :st_i1),
                  $$VALUES ('exit_unpriced', NULL::bigint, now() - interval '7 days', now(), 0::bigint)$$,
                  '... the stay is kept: exit_unpriced, its times, no fee, nothing paid');
SELECT results_eq(format('SELECT stay, lot, plate, seen_at, anomaly FROM payext.parking_anomaly WHERE stay = %s', :st_i1),
                  format($$VALUES (%s::bigint, %s::bigint, 'PKI001', now(), 'exit_unpriced')$$, :st_i1, :long),
                  '... and shows in parking_anomaly as exit_unpriced, seen at its exit');
SELECT is(payext.vehicle_exited(:sh3, 'PKI002', now()), 432000::bigint,
          'a stay of exactly payext.max_stay (30 days) is priced: 1440 units at 3.00');
SELECT payext.vehicle_entered(:sh3, 'PKI002', now() - interval '30 days' + interval '1 hour') AS st_i3 \gset
SET LOCAL payext.max_stay = '29d';
SELECT is(payext.vehicle_exited(:sh3, 'PKI002', now()), NULL,
          'with payext.max_stay at 29 days, a stay of 29 days 23 hours is not priced at exit');
RESET payext.max_stay;
SELECT results_eq(format('SELECT state, fee FROM payext.parking_stay WHERE id = %s', :st_i3),
                  $$VALUES ('exit_unpriced', NULL::bigint)$$, '... it is exit_unpriced');
SELECT results_eq($$SELECT plate, exited_at IS NOT NULL, amount_due FROM payext.parking_service_info('tap-pk-ivy') ORDER BY stay$$,
                  $$VALUES ('PKI001', true, NULL::bigint), ('PKI002', true, 432000::bigint), ('PKI002', true, NULL::bigint)$$,
                  'ivy''s listing: the exits that could not be priced without an amount, the other with its fee');
SELECT is(payext.balance(:ivy), 10000000::bigint, 'nothing was taken from ivy''s wallet');

-- payext.max_auto_pay (20000): at shg (1.00 an hour), 200 hours are paid
-- at exit, 201 hours are not and stay due.
SELECT payext.bind_vehicle('tap-pk-ivy', 'PKI003', auto_pay => true);
SELECT payext.vehicle_entered(:shg, 'PKI003', now() - interval '401 hours') AS st_i4 \gset
SELECT is(payext.vehicle_exited(:shg, 'PKI003', now() - interval '201 hours'), 20000::bigint, 'a 200-hour stay costs 200.00');
SELECT results_eq(format('SELECT fee, paid FROM payext.parking_stay WHERE id = %s', :st_i4),
                  $$VALUES (20000::bigint, 20000::bigint)$$, '... paid at exit: exactly payext.max_auto_pay');
SELECT payext.vehicle_entered(:shg, 'PKI003', now() - interval '201 hours') AS st_i5 \gset
SELECT is(payext.vehicle_exited(:shg, 'PKI003', now()), 20100::bigint, 'a 201-hour stay costs 201.00');
SELECT results_eq(format('SELECT fee, paid FROM payext.parking_stay WHERE id = %s', :st_i5),
                  $$VALUES (20100::bigint, 0::bigint)$$, '... not paid at exit: above payext.max_auto_pay');
SELECT results_eq(format('SELECT amount_due FROM payext.parking_service_info(%L) WHERE stay = %s', 'tap-pk-ivy', :st_i5),
                  $$VALUES (20100::bigint)$$, '... and due for ivy to pay');
SELECT lives_ok(format('SELECT payext.pay_parking(%s, %s, 20100)', :st_i5, :ivy), '... which she does');
SELECT is(payext.balance(:ivy), 10000000 - 20000 - 20100::bigint, 'ivy paid 200.00 at exit and 201.00 herself');

---------------------------------------------------------------------------
-- Interactions and the ledger
---------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM payext.parking_payment), 9, 'nine parking payments in all');
SELECT is_empty($$
  SELECT p.transfer_id FROM payext.parking_payment p
    JOIN payext.account w ON w.id = p.wallet
    LEFT JOIN payext.interaction i ON i.transfer_id = p.transfer_id
   WHERE i.id IS NULL OR i.kind <> 'payment' OR i.public_service_id <> 'tap-pk-op'
      OR i.consumer <> w.owner OR i.amount <> p.amount OR i.currency <> w.currency
$$, 'each parking payment left a payment interaction with the operator''s public_service_id');
SELECT results_eq($$SELECT consumer, count(*)::int, sum(amount)::bigint FROM payext.interaction
                     WHERE public_service_id = 'tap-pk-op' AND kind = 'payment' GROUP BY consumer ORDER BY consumer$$,
                  $$VALUES ('tap-pk-alice', 2, 1800::bigint), ('tap-pk-bob', 3, 300::bigint), ('tap-pk-erin', 2, 2600::bigint),
                           ('tap-pk-ivy', 2, 40100::bigint)$$,
                  'interactions per consumer: alice 18.00, bob 3.00, erin 6.00 CNY + 20.00 EUR (minor units summed), ivy 401.00');
SELECT results_eq('SELECT check_name, ok FROM payext.verify_ledger() ORDER BY check_name',
                  $$VALUES ('balances_match_journal', true), ('codes_paid_once', true), ('journal_intact', true),
                           ('money_conserved', true), ('no_negative_balances', true),
                           ('parking_matches_journal', true), ('payments_match_journal', true)$$,
                  'verify_ledger(): every check holds, parking_matches_journal included');

SELECT * FROM finish();
ROLLBACK;
