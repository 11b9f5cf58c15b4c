#!/usr/bin/env bash
# A till's charge against the superuser's: bench/scripts/charge.sql as
# the superuser, then bench/scripts/till.sql as bench_till, a role with the
# app and merchant capabilities mapped to the benchmark's 800 merchants
# (request_payment, then CALL merchant_charge: every role check runs).
# Rounds alternate in one cluster; the ratio is the till's ÷ the
# superuser's.  bench/NOTES.md, "a till's charge, not the superuser's".
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB bench/till.sh
#
# Knobs: TILL_ROUNDS (2), TILL_SECONDS (15), TILL_CLIENTS (8),
# TILL_SYNC (synchronous_commit: off).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${TILL_ROUNDS:-2}
seconds=${TILL_SECONDS:-15}
clients=${TILL_CLIENTS:-8}
sync=${TILL_SYNC:-off}

bench/populate.sh >/dev/null
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_till') THEN
    CREATE ROLE bench_till LOGIN;
  END IF;
END $$;
SELECT payext.grant_capability('merchant', 'bench_till');
SELECT payext.grant_capability('app', 'bench_till');
SELECT count(payext.map_merchant_role('bench_till', m)) FROM generate_series(100001, 100800) m;
SQL

# shellcheck source=bench/tps.sh
. bench/tps.sh
echo "round superuser till ratio"
for r in $(seq 1 "$rounds"); do
	s=$(tps -f bench/scripts/charge.sql)
	t=$(tps -U bench_till -f bench/scripts/till.sql)
	echo "$r $s $t $(awk -v s="$s" -v t="$t" 'BEGIN { printf "%.3f", t / s }')"
done
psql -X -q -At -d bench -c "SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok"
