#!/usr/bin/env bash
# Crash recovery: clients move money while the server is killed (SIGKILL
# through an immediate stop) at a random moment; after the restart, every
# transfer a client saw acknowledged is in the journal exactly once, and the
# ledger verifies.  Several rounds.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh test/crash/run.sh
#
# Needs with_cluster.sh's initdb mode (PAYEXT_PGDATA, PAYEXT_PGCTL).
# PAYEXT_CRASH_ROUNDS (default 3), PAYEXT_CRASH_CLIENTS (default 4).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PAYEXT_PGDATA:?run me through PAYEXT_CLUSTER=initdb scripts/with_cluster.sh}"
rounds=${PAYEXT_CRASH_ROUNDS:-3}
clients=${PAYEXT_CRASH_CLIENTS:-4}
db=payext_crash
work=$(mktemp -d)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

createdb "$db"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payext;
SELECT payext.open_wallet('crash_user_' || g) FROM generate_series(1, 20) AS g;        -- 1..20
SELECT payext.open_merchant('gh_crash_' || g, 'Shop ' || g) FROM generate_series(1, 3) AS g;  -- 21..23
SELECT payext.top_up(g, 10000000, 'crash-seed-' || g) FROM generate_series(1, 20) AS g;
SQL

# One client: top-ups and charges, one statement each, logging what the
# server acknowledged (the id came back) as "reference transfer_id".
client() {
	local c=$1 round=$2 n=0
	while [ "$n" -lt 100000 ]; do
		n=$((n + 1))
		local w=$(( (RANDOM % 20) + 1 )) m=$(( (RANDOM % 3) + 21 )) ref id
		if [ $((n % 2)) = 0 ]; then
			ref="crash-$round-$c-$n-top"
			id=$(q -c "SELECT payext.top_up($w, $((RANDOM + 1)), '$ref')" 2>/dev/null) || return 0
		else
			ref="crash-$round-$c-$n-order"
			id=$(q -c "SELECT payext.charge($m, payext.request_payment($w), $((RANDOM % 500 + 1)), '$ref')" 2>/dev/null) || return 0
		fi
		echo "$ref $id" >>"$work/acked-$round-$c"
	done
}

for round in $(seq 1 "$rounds"); do
	for c in $(seq 1 "$clients"); do
		client "$c" "$round" &
	done
	sleep "0.$(( RANDOM % 9 + 1 ))"
	sleep $(( RANDOM % 3 + 1 ))
	$PAYEXT_PGCTL -D "$PAYEXT_PGDATA" -m immediate stop >/dev/null
	wait
	$PAYEXT_PGCTL -D "$PAYEXT_PGDATA" -l "$PAYEXT_PGDATA/../server.log" -w -t 60 start >/dev/null
	cat "$work"/acked-"$round"-* >"$work/acked-$round" 2>/dev/null || : >"$work/acked-$round"
	acked=$(wc -l <"$work/acked-$round")
	q -c "CREATE TEMP TABLE acked (reference text, id bigint)" \
	  -c "\\copy acked FROM '$work/acked-$round' WITH (DELIMITER ' ')" \
	  -c "SELECT count(*) FROM acked a
	       WHERE (SELECT count(*) FROM payext.transfer t
	               WHERE t.id = a.id AND t.reference = a.reference) <> 1" >"$work/lost"
	lost=$(tail -n 1 "$work/lost")
	bad=$(q -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")
	echo "crash round $round: $acked acknowledged, $lost missing after restart, $bad ledger checks failing"
	if [ "$acked" -lt 10 ] || [ "$lost" != 0 ] || [ "$bad" != 0 ]; then
		q -c "SELECT * FROM payext.verify_ledger()" || true
		echo "crash: FAILED"
		exit 1
	fi
done
echo "crash: every acknowledged transfer survived $rounds kills; the ledger verifies"
