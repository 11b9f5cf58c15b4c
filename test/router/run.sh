#!/usr/bin/env bash
# The router suite: test/router/sql/*.sql against the router that PGHOST,
# PGPORT and PGDATABASE name, run by pg_regress on the existing database.
# Run it inside scripts/with_partitions.sh 2 (scripts/run_suites.sh does).
set -euo pipefail
cd "$(dirname "$0")"
PG_CONFIG=${PG_CONFIG:-pg_config}
regress="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
[ -n "${PAYEXT_PARTITIONS:-}" ] || { echo "router: run inside scripts/with_partitions.sh" >&2; exit 2; }
rm -rf results regression.diffs regression.out
# In story order: each story's balances depend on the ones before.
tests=(router saga parking)
for f in sql/*.sql; do
	[[ " ${tests[*]} " == *" $(basename "$f" .sql) "* ]] || { echo "router: $f is not in run.sh's list" >&2; exit 2; }
done
"$regress" --use-existing --dbname="$PGDATABASE" --host="$PGHOST" --port="$PGPORT" \
	--user="$PGUSER" --inputdir=. --outputdir=. "${tests[@]}" || {
	[ ! -f regression.diffs ] || cat regression.diffs
	exit 1
}
# Then load through the router, and the faults: a partition down, and
# killed during a call; then sagas cut off by a partition, by their
# worker's end, and by the router's; then a partition killed under load.
./load.sh
./roles.sh
./faults.sh
./sagas.sh
./chaos.sh
