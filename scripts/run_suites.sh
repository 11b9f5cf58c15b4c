#!/usr/bin/env bash
# Runs every test suite against the server in PGHOST/PGPORT, prints what each
# said on failure, and ends with one line: "suites: N passed, M failed".
# Normally called through scripts/test_all.sh, which brings a throwaway
# cluster.  Run one suite with: scripts/run_suites.sh regress
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(lint unit fuzz regress isolation pgtap events diff dump upgrade nopreload pgbouncer router load crash valgrind demo)

passed=0
failed=0
failed_names=()

run_suite() {
	case "$1" in
	# pgindent's formatting, shellcheck, versions that agree; no server.
	lint) scripts/lint.sh ;;
	unit) test/unit/run.sh ;;
	fuzz) test/fuzz/run.sh ;;
	regress) make -s installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= ;;
	isolation) make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS= ;;
	pgtap) test/pgtap/run.sh ;;
	# A psql LISTENing while another session charges, refunds, reverses.
	events) test/events/run.sh ;;
	# Random money operations against a plain PL/pgSQL model of DESIGN.md.
	diff) test/diff/run.sh ;;
	dump) test/dump/roundtrip.sh && test/dump/roles_roundtrip.sh ;;
	# Released scripts unedited; every release updates to a fresh install's schema.
	upgrade) test/upgrade/run.sh ;;
	# A server of its own that does not preload payext.
	nopreload) PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o "shared_preload_libraries=''" test/nopreload/run.sh ;;
	# Through PgBouncer in transaction pooling mode, started on loopback.
	pgbouncer) test/pgbouncer/run.sh ;;
	# Two partitions and a PL/Proxy router, each a cluster of its own: the
	# single node's stories through a router, the router's own suite, and
	# the load driver through a router, each on partitions of their own.
	router)
		scripts/with_partitions.sh 2 test/router/stories.sh &&
			scripts/with_partitions.sh 2 test/router/run.sh &&
			PAYEXT_LOAD_ROUTER=1 scripts/with_partitions.sh 2 test/load/run.sh
		;;
	load) test/load/run.sh ;;
	# A cluster of its own, which it kills and restarts.
	crash) PAYEXT_CLUSTER=initdb scripts/with_cluster.sh test/crash/run.sh ;;
	# The regress suite again, in a cluster of its own whose postmaster runs
	# under valgrind memcheck (about 3 minutes on 2 cores).
	valgrind) test/valgrind/run.sh ;;
	demo) make -s demo PG_CONFIG="$PG_CONFIG" >/dev/null ;;
	*) echo "unknown suite: $1" >&2; return 2 ;;
	esac
}

for suite in "${suites[@]}"; do
	echo "=== suite: $suite"
	start=$SECONDS
	if run_suite "$suite"; then
		passed=$((passed + 1))
		echo "=== suite: $suite passed in $((SECONDS - start)) s"
	else
		failed=$((failed + 1))
		failed_names+=("$suite")
		echo "=== suite: $suite FAILED in $((SECONDS - start)) s"
		for diffs in regression.diffs output_iso/regression.diffs; do
			if [ -s "$diffs" ]; then
				echo "--- $diffs"
				head -n 300 "$diffs"
			fi
		done
	fi
done

[ "$failed" = 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
