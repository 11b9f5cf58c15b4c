#!/usr/bin/env bash
# Differential test of the money paths: random sequences of operations
# (open_wallet, open_merchant, top_up, withdraw, request_payment,
# cancel_payment_code, charge, charge_many, refund, freeze, unfreeze,
# close_account; and holds: authorize, capture_hold, void_hold,
# available_balance, about 15 % of the operations) go to payext and to a small model of DESIGN.md in plain
# PL/pgSQL (test/diff/model.sql); after every operation the driver
# (test/diff/driver.sql) compares the SQLSTATEs, what came back, the new
# journal rows, every balance, available balance and status, and the guesses
# counted against merchants.  The first divergence fails the run with its seed, the
# operation, both outcomes and the operations before it.  A seed draws the
# same operations on every run, up to the clock: halfway through each seed
# the driver sleeps a second so that short-lived codes expire, and which
# codes have expired steers some later choices.
#
# Runs against the server in PGHOST/PGPORT/PGUSER (a superuser: it creates
# and drops the extension, and sets payext's SUSET settings), in a database
# of its own that is created fresh and dropped afterwards.  Expects payext
# installed and, for the comparison of guess counts, preloaded.
#
#   test/diff/run.sh                                # seeds 1..20, 300 operations each
#   PAYEXT_DIFF_SEEDS="7" test/diff/run.sh          # one seed (as a failure says)
#   PAYEXT_DIFF_SEEDS="$(seq -s ' ' 1 100)" PAYEXT_DIFF_OPS=1000 test/diff/run.sh
#   PAYEXT_DIFF_VERBOSE=1 test/diff/run.sh          # also the outcomes of each operation
#   scripts/with_cluster.sh test/diff/run.sh        # in a throwaway cluster
set -euo pipefail
cd "$(dirname "$0")/../.."

db=${PAYEXT_DIFF_DB:-payext_diff}
ops=${PAYEXT_DIFF_OPS:-300}
read -r -a seeds <<<"${PAYEXT_DIFF_SEEDS:-$(seq -s ' ' 1 20)}"
psql_db=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")

dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT

"${psql_db[@]}" -c 'SET client_min_messages = warning' \
	-f test/diff/model.sql -f test/diff/driver.sql

# Guesses are counted in shared memory, which needs the preload; the limit
# is set so high that no merchant is ever blocked, and the window so long
# that no count lapses during the run.  Without the preload, throttling is
# off (charges would be PY007) and the counts are not compared.
if psql -X -At -d "$db" -c 'SHOW shared_preload_libraries' | grep -qw payext; then
	limit=100000
else
	limit=0
	echo "diff: payext is not preloaded; guess counts are not compared"
fi

start=$SECONDS
for seed in "${seeds[@]}"; do
	# A fresh extension per seed (ids from 1, no codes, no keys), in a
	# session of its own.  The model assumes the default code validity
	# (60 s, at most 5 min): pinned here, whatever the server says.
	if ! "${psql_db[@]}" \
		-c 'SET client_min_messages = warning' \
		-c 'DROP EXTENSION IF EXISTS payext CASCADE' \
		-c 'CREATE EXTENSION payext' \
		-c "SET payext.code_ttl = '60s'" \
		-c "SET payext.max_code_ttl = '5min'" \
		-c "SET payext.code_failure_limit = $limit" \
		-c "SET payext.code_failure_window = '1d'" \
		-c 'SET payext.code_failure_log_level = debug1' \
		-c 'SET synchronous_commit = off' \
		-c "CALL diff.run($seed, $ops)"; then
		echo "diff: FAILED at seed $seed (rerun: PAYEXT_DIFF_SEEDS=$seed test/diff/run.sh)"
		exit 1
	fi
done

# PAYEXT_DIFF_VERBOSE=1: the outcomes of each operation too.
if [ "${PAYEXT_DIFF_VERBOSE:-0}" = 1 ]; then
	psql -X -At -d "$db" -c "SELECT format('  %-20s %s', what, string_agg(format('%s %s', sqlstate, n), ', ' ORDER BY sqlstate)) FROM diff.counts GROUP BY what ORDER BY what"
fi
psql -X -At -d "$db" -v secs=$((SECONDS - start)) <<'SQL'
SELECT format('diff: payext and the model agree: %s seeds, %s operations (%s charge_many items) in %s s; SQLSTATEs: %s',
              (SELECT count(*) FROM diff.runs), (SELECT sum(ops) FROM diff.runs),
              coalesce((SELECT sum(n) FROM diff.counts WHERE what = 'charge_many item'), 0), :'secs',
              (SELECT string_agg(format('%s %s', sqlstate, n), ', ' ORDER BY sqlstate)
                 FROM (SELECT sqlstate, sum(n) AS n FROM diff.counts GROUP BY sqlstate) s));
SQL
