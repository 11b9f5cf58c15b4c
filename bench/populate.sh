#!/usr/bin/env bash
# The benchmark's population in a fresh database "bench": payext's
# (bench/setup.sql, with its month of trade), the PL/pgSQL baseline's
# (bench/naive.sql) and the floors' (bench/floor.sql: floor, and floorc
# and floorlean when bench/floorc is installed), each with its own
# month of 20 000 charges, then VACUUM ANALYZE.  Run by bench/run.sh and bench/writes.sh, in the cluster
# that PGHOST and PGPORT name.
set -euo pipefail
cd "$(dirname "$0")/.."

psql_b() { psql -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
dropdb --if-exists bench >/dev/null 2>&1 || true
createdb bench
psql_b -f bench/setup.sql >/dev/null
psql_b -f bench/naive.sql >/dev/null
psql_b -f bench/floor.sql >/dev/null
psql_b -c "SELECT count(naive.charge(100001 + g % 800, naive.request_payment(1 + g * 7 % 100000), 100, 'warm-' || g))
             FROM generate_series(1, 20000) g" \
	-c "SELECT count(floor.charge(100001 + g % 800, floor.request_payment(1 + g * 7 % 100000), 100, 'warm-' || g))
             FROM generate_series(1, 20000) g" >/dev/null
# The floor without the executor, when bench/floorc is installed, alike.
for s in floorc floorlean; do
	if [ "$(psql_b -At -c "SELECT to_regproc('$s.charge') IS NOT NULL")" = t ]; then
		psql_b -c "SELECT count($s.charge(100001 + g % 800, $s.request_payment(1 + g * 7 % 100000), 100, 'warm-' || g))
		             FROM generate_series(1, 20000) g" >/dev/null
	fi
done
psql_b -c "VACUUM ANALYZE" >/dev/null
