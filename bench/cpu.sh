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
# Knobs: CPU_ROUNDS (3), CPU_PAIRS (5000), CPU_SCRIPT (charge; parking:
# payext's pairs are a bound car's entry and exit with auto-pay, as
# bench/scripts/parking.sql, each run on plates no earlier run used; the
# baseline is still the PL/pgSQL charge).
# Overwrites the installed payext.so (a release build belongs there after).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/use_build.sh
. bench/use_build.sh
[ $# -ge 1 ] || { echo "usage: $0 BUILD.so..." >&2; exit 2; }
rounds=${CPU_ROUNDS:-3}
pairs=${CPU_PAIRS:-5000}
script=${CPU_SCRIPT:-charge}
case $script in charge | parking) ;; *)
	echo "CPU_SCRIPT: charge or parking" >&2
	exit 2
	;;
esac
# the plates of the next parking run: 100 000 bound cars in all
offset=0
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
-- Entry 90 minutes ago, exit now: a priced stay paid from the wallet.
CREATE PROCEDURE public.cpu_parking(n integer, first integer)
LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN first .. first + n - 1 LOOP
    PERFORM payext.vehicle_entered(1 + i % 5, 'BK' || i, clock_timestamp() - interval '90 minutes');
    COMMIT;
    PERFORM payext.vehicle_exited(1 + i % 5, 'BK' || i, clock_timestamp());
    COMMIT;
  END LOOP;
END
$$;
SQL

# cpu_us SCHEMA TAG: CPU microseconds per pair of one backend's run.
cpu_us() {
	local parking=false
	if [ "$script" = parking ] && [ "$1" = payext ]; then
		parking=true
		[ $((offset + pairs)) -le 100000 ] || { echo "cpu.sh: out of bound cars" >&2; exit 2; }
	fi
	psql -X -q -At -v ON_ERROR_STOP=1 -d bench -v schema="$1" -v n="$pairs" -v tag="$2" \
		-v parking="$parking" -v first="$((offset + 1))" <<'SQL' |
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! cut -d' ' -f14,15 /proc/$BACKEND/stat
\if :parking
CALL public.cpu_parking(:n, :first);
\else
CALL public.cpu_pairs(:'schema', :n, :'tag');
\endif
\! cut -d' ' -f14,15 /proc/$BACKEND/stat
SQL
		awk -v pairs="$pairs" -v hz="$ticks" \
			'NR == 1 { b = $1 + $2 } NR == 2 { printf "%.1f", ($1 + $2 - b) * 1e6 / hz / pairs }'
}

echo "round build ${script}_us naive_us ratio"
for r in $(seq 1 "$rounds"); do
	b=0
	for so in "$@"; do
		b=$((b + 1))
		use "$so"
		p=$(cpu_us payext "cpu-$r-$b")
		offset=$((offset + pairs))
		n=$(cpu_us naive "cpu-$r-$b")
		echo "$r $(basename "$so") $p $n $(awk -v p="$p" -v n="$n" 'BEGIN { printf "%.3f", n / p }')"
	done
done
