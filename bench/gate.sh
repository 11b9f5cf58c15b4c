#!/usr/bin/env bash
# A parking gate's questions at a busy lot: suggest_plates() for a
# misread plate and plate_status() for a plate, with 10,000 open stays at
# the lot (and 100,000 stays in all, a tenth of them owed).  Timings, not a
# test: one client, the median of five runs each, as the server timed
# them; and the plan, to show the open stays' match keys are what
# suggest_plates reads.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh bench/gate.sh
#
# Knobs: GATE_OPEN (10000 open stays at the lot), GATE_STAYS (100000 stays
# in all).  Writes bench/results/gate.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

open=${GATE_OPEN:-10000}
stays=${GATE_STAYS:-100000}
out=bench/results/gate.txt
db=bench_gate
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT

start=$SECONDS
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION payext" >/dev/null
op=$(q -c "SELECT payext.open_merchant('gh_gate', 'Gate Parking')")
lot=$(q -c "SELECT payext.create_parking_lot($op, 'Busy', 'Asia/Shanghai', 15, 60, 500)")
# Plates of the shape 粤B + 5 characters of 0-9A-Z; the open stays at the
# lot, and older stays elsewhere, exited, a tenth of them owed.
q -v lot="$lot" -v open="$open" -v stays="$stays" >/dev/null <<'SQL'
SET synchronous_commit = off;
CREATE TEMP TABLE p AS
  SELECT g, '粤B' || string_agg(substr('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ',
                                      1 + get_byte(decode(md5(g || '-' || i), 'hex'), 0) % 34, 1),
                            '' ORDER BY i) AS plate
    FROM generate_series(1, :stays) g, generate_series(1, 5) i GROUP BY g;
INSERT INTO payext.parking_stay (id, lot, plate, entered_at, state, recorded_at)
SELECT nextval('payext.parking_stay_id_seq'), :lot, plate, now() - interval '2 hours', 'open', now()
  FROM (SELECT DISTINCT ON (plate) plate FROM p WHERE g <= :open) x;
INSERT INTO payext.parking_stay (id, lot, plate, entered_at, exited_at, fee, paid, state, recorded_at)
SELECT nextval('payext.parking_stay_id_seq'), :lot, plate, now() - interval '3 days',
       now() - interval '2 days', 500, CASE WHEN g % 10 = 0 THEN 0 ELSE 500 END, 'exited', now()
  FROM p WHERE g > :open;
VACUUM ANALYZE;
SQL
loaded=$((SECONDS - start))
n_open=$(q -c "SELECT count(*) FROM payext.parking_stay WHERE state = 'open'")
n_owed=$(q -c "SELECT count(*) FROM payext.parking_stay WHERE state = 'exited' AND fee > paid")
# A plate that is in, misread: its B as 8, one character dropped.
in_plate=$(q -c "SELECT plate FROM payext.parking_stay WHERE state = 'open' ORDER BY id LIMIT 1 OFFSET 4321")
misread=$(q -c "SELECT replace(left('$in_plate', 6), 'B', '8')")
owed_plate=$(q -c "SELECT plate FROM payext.parking_stay WHERE state = 'exited' AND fee > paid LIMIT 1")

ms() { q -c "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p'; }
median() { sort -n | sed -n 3p; }
found=$(q -c "SELECT string_agg(plate || ' ' || distance, ', ') FROM payext.suggest_plates($lot, '$misread')")
suggest_ms=$(for _ in 1 2 3 4 5; do ms "SELECT * FROM payext.suggest_plates($lot, '$misread')"; done | median)
status_in=$(q -c "SELECT payext.plate_status($lot, '$in_plate')")
status_owed=$(q -c "SELECT payext.plate_status($lot, '$owed_plate')")
status_ms=$(for _ in 1 2 3 4 5; do ms "SELECT payext.plate_status($lot, '$owed_plate')"; done | median)
plan=$(q -c "EXPLAIN (COSTS OFF) SELECT s.id FROM payext.parking_stay s
              WHERE s.state = 'open' AND payext.plate_match_keys(s.plate) && payext.plate_match_keys('$misread')
                AND s.lot = $lot AND payext.plate_distance(s.plate, '$misread') <= 1")

mkdir -p bench/results
{
	echo "# bench/gate.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe --always --dirty)"
	echo "stays: $n_open open at the lot, $n_owed owed, $stays in all (loaded in ${loaded} s)"
	echo "suggest_plates(lot, '$misread') for $in_plate: $found"
	echo "suggest_plates, median of 5: $suggest_ms ms"
	echo "plate_status: $status_in for a plate that is in, $status_owed for an owed one; median of 5: $status_ms ms"
	echo "the lookup's plan:"
	echo "    ${plan//$'\n'/$'\n'    }"
} | tee "$out"
