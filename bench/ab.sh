#!/usr/bin/env bash
# A/B of two builds of payext's library in one cluster: the charge pair and
# the PL/pgSQL baseline, with build A and build B in turn, the server
# restarted with each (the library is preloaded, so a new file needs a new
# postmaster).  Prints each round's charge ÷ baseline for both builds, so
# that the machine's drift between rounds cancels in the ratios.
#
#   make && cp payext.so /tmp/b.so; git stash; make && cp payext.so /tmp/a.so; git stash pop
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB \
#       -o checkpoint_timeout=30min bench/ab.sh /tmp/a.so /tmp/b.so
#
# Knobs: AB_ROUNDS (3), AB_SECONDS (15), AB_CLIENTS (8), AB_SCRIPT (charge),
# AB_SYNC (synchronous_commit: off).
# Overwrites the installed payext.so (a release build belongs there after).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/use_build.sh
. bench/use_build.sh
[ $# -eq 2 ] || { echo "usage: $0 A.so B.so" >&2; exit 2; }
rounds=${AB_ROUNDS:-3}
seconds=${AB_SECONDS:-15}
clients=${AB_CLIENTS:-8}
script=${AB_SCRIPT:-charge}
sync=${AB_SYNC:-off}
# shellcheck source=bench/tps.sh
. bench/tps.sh

use "$1"
bench/populate.sh
echo "round build $script naive ratio"
for r in $(seq 1 "$rounds"); do
	for b in A B; do
		if [ $b = A ]; then use "$1"; else use "$2"; fi
		c=$(tps -f "bench/scripts/$script.sql")
		n=$(tps -f bench/scripts/naive.sql)
		echo "$r $b $c $n $(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.3f", c / n }')"
	done
done
