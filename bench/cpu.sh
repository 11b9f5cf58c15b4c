#!/usr/bin/env bash
# CPU time per issue-and-charge, of builds of payext's library against the
# PL/pgSQL baseline, in one cluster: for each build the server is restarted
# with it, and one backend runs CPU_PAIRS pairs of payext's and then of the
# baseline's (each pair its own two transactions, as bench/scripts/charge.sql
# and naive.sql: a procedure that commits after each call).  The backend's
# user + system time (from /proc) is divided by the pairs.  One backend and
# its own CPU time: far less noisy than throughput on a shared machine,
# though it leaves out what the client and the other backends cost.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB \
#       -o checkpoint_timeout=30min bench/cpu.sh /tmp/a.so /tmp/b.so
#
# Knobs: CPU_ROUNDS (3), CPU_PAIRS (5000).
# Overwrites the installed payext.so (a release build belongs there after).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/use_build.sh
. bench/use_build.sh
[ $# -ge 1 ] || { echo "usage: $0 BUILD.so..." >&2; exit 2; }
rounds=${CPU_ROUNDS:-3}
pairs=${CPU_PAIRS:-5000}
ticks=$(getconf CLK_TCK)

use "$1"
bench/populate.sh
psql -X -q -v ON_ERROR_STOP=1 -d bench <<'SQL'
CREATE PROCEDURE public.cpu_pairs(schema text, n integer, tag text)
LANGUAGE plpgsql AS $$
DECLARE
  c text;
BEGIN
  FOR i IN 1 .. n LOOP
    EXECUTE format('SELECT %I.request_payment($1)', schema)
      INTO c USING 1 + (i * 7919) % 100000;
    COMMIT;
    EXECUTE format('SELECT %I.charge($1, $2, 100, $3)', schema)
      USING 100001 + (i * 31) % 800, c, tag || '-' || i;
    COMMIT;
  END LOOP;
END
$$;
SQL

# cpu_us SCHEMA TAG: CPU microseconds per pair of one backend's run.
cpu_us() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d bench -v schema="$1" -v n="$pairs" -v tag="$2" <<'SQL' |
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! cut -d' ' -f14,15 /proc/$BACKEND/stat
CALL public.cpu_pairs(:'schema', :n, :'tag');
\! cut -d' ' -f14,15 /proc/$BACKEND/stat
SQL
		awk -v pairs="$pairs" -v hz="$ticks" \
			'NR == 1 { b = $1 + $2 } NR == 2 { printf "%.1f", ($1 + $2 - b) * 1e6 / hz / pairs }'
}

echo "round build payext_us naive_us ratio"
for r in $(seq 1 "$rounds"); do
	b=0
	for so in "$@"; do
		b=$((b + 1))
		use "$so"
		p=$(cpu_us payext "cpu-$r-$b")
		n=$(cpu_us naive "cpu-$r-$b")
		echo "$r $(basename "$so") $p $n $(awk -v p="$p" -v n="$n" 'BEGIN { printf "%.3f", n / p }')"
	done
done
