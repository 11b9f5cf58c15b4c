#!/usr/bin/env bash
# Multi-client load against the server in PGHOST/PGPORT: 8 clients mixing
# charges (with association rules firing), refunds, top-ups, withdrawals and
# parking stays with auto-pay, once under each isolation level, pgbench
# retrying 40001/40P01 as a client would; a separate session runs
# verify_ledger() every second during the run, and after each run the money
# invariants are checked (check.sql); a broken one fails the run.
# The full reliability suite (crash rounds, acknowledged-transfer
# accounting, longer storms) is issue 7's.
#   PAYEXT_LOAD_SECONDS (default 10) per isolation level.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${PAYEXT_LOAD_SECONDS:-10}
db=payext_load
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
psql_db=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")

dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT

for level in "read committed" "repeatable read" "serializable"; do
	"${psql_db[@]}" -f test/load/setup.sql >/dev/null
	echo "--- load: $level, 8 clients, $seconds s"
	out=$(mktemp)
	# A separate session checks the ledger every second while the load runs.
	watch_log=$(mktemp)
	(
		end=$((SECONDS + seconds))
		while [ "$SECONDS" -lt "$end" ]; do
			psql -X -q -At -d "$db" -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok" >>"$watch_log" 2>&1 || true
			sleep 1
		done
	) &
	watcher=$!
	# PGOPTIONS splits at spaces; a backslash keeps one.
	if ! PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" \
		"$bindir/pgbench" -n -c 8 -j 2 -T "$seconds" --max-tries=20 \
		-f test/load/mix.sql "$db" >"$out" 2>&1; then
		cat "$out"
		echo "load: pgbench failed under $level"
		exit 1
	fi
	# pgbench retries 40001/40P01 up to 20 times; a transaction still in
	# conflict then is counted as failed (no money moved); any other error
	# aborts the run and fails above.
	grep -E "number of (transactions|failed|transactions retried)|tps =" "$out" || true
	rm -f "$out"
	wait "$watcher"
	checks=$(grep -c . "$watch_log" || true)
	if grep -qv '^0$' "$watch_log"; then
		echo "load: verify_ledger() failed during the run under $level:"
		cat "$watch_log"
		exit 1
	fi
	echo "verify_ledger() during the run: $checks checks, all passed"
	rm -f "$watch_log"
	"${psql_db[@]}" -f test/load/check.sql
done
echo "load: invariants held under every isolation level"
