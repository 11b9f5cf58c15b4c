-- Benchmark population, in the database bench/run.sh made:
--   wallets       1 .. 100 000   (owner 'bw<n>', 1 000 000.00 CNY each)
--   merchants     100 001 .. 101 000 ('gh_b<n>'); 100 001 is the hot one;
--                 the 100 merchants 100 901 .. 101 000 have a rule that
--                 fires on a consumer's first payment (the association run);
--                 2 000 consumers are linked to them before the run
--   parking       5 lots of operator 100 001 .. 100 005, and one bound
--                 vehicle with auto-pay per wallet: plate 'BK<n>'
-- Ids are pinned by the order of creation in a fresh extension.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS payext CASCADE;
CREATE EXTENSION payext;
-- The mark bench/unguard.sql looks for before it drops any constraint.
COMMENT ON DATABASE :"DBNAME" IS 'payext benchmark population (bench/setup.sql), throwaway';

SELECT count(payext.open_wallet('bw' || g)) AS wallets FROM generate_series(1, 100000) g;
SELECT count(payext.open_merchant('gh_b' || g, 'Bench shop ' || g)) AS merchants
  FROM generate_series(1, 1000) g;
SELECT count(payext.top_up(g, 100000000, 'bench-seed-' || g)) AS top_ups
  FROM generate_series(1, 100000) g;
SELECT count(payext.set_association_rule('gh_b' || g, 1, '30 days'))
  FROM generate_series(901, 1000) g;
SELECT count(payext.create_parking_lot(100000 + g, 'Bench lot ' || g, 'Asia/Shanghai',
                                       15, 30, 300, 100, cap_24h => 6000))
  FROM generate_series(1, 5) g;
SELECT count(payext.bind_vehicle('bw' || g, 'BK' || g, auto_pay => true))
  FROM generate_series(1, 100000) g;
-- A month of trade before the run: 20 000 charges (and so codes, payments,
-- interactions, journal rows), so that the planner's statistics describe
-- tables with rows in them, as in production.  (Plans prepared against
-- empty tables choose sequential scans and keep them until autovacuum's
-- first ANALYZE; see bench/NOTES.md.)
SELECT count(payext.charge(100001 + g % 800, payext.request_payment(1 + g * 7 % 100000), 100, 'warm-' || g))
  FROM generate_series(1, 20000) g;
-- And 2 000 at the merchants whose rule links on the first payment, so that
-- associations exist too: ANALYZE of an empty table records it as empty,
-- and plans made then scan it sequentially until autovacuum analyzes it
-- again (without these, the association run measured that, not payext).
SELECT count(payext.charge(100901 + g % 100, payext.request_payment(1 + g * 13 % 100000), 100,
                           'warm-assoc-' || g))
  FROM generate_series(1, 2000) g;
-- And of parking: 10 000 stays entered and left (paid at exit).
SELECT count(payext.vehicle_entered(1 + g % 5, 'BK' || g, now() - interval '3 hours')),
       count(payext.vehicle_exited(1 + g % 5, 'BK' || g, now() - interval '1 hour'))
  FROM generate_series(1, 10000) g;
VACUUM ANALYZE;
