#!/usr/bin/env bash
# payext on a server that does not preload it: test/nopreload/sql, run by
# pg_regress against the server in PGHOST/PGPORT, which must not preload
# payext (scripts/run_suites.sh starts one: with_cluster.sh -o
# "shared_preload_libraries=''").
set -euo pipefail
cd "$(dirname "$0")"
PG_CONFIG=${PG_CONFIG:-pg_config}
regress="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
rm -rf results regression.diffs regression.out
"$regress" --dbname=payext_nopreload --inputdir=. --outputdir=. nopreload || {
	[ ! -f regression.diffs ] || cat regression.diffs
	exit 1
}
