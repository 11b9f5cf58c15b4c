#!/usr/bin/env bash
# The scale benchmark (issue 16): payext behind a PL/Proxy router, on 1, 2
# and 4 partitions, each partition's server pinned to one CPU
# (PAYEXT_PIN_PARTITIONS=1 scripts/with_partitions.sh), 8 pgbench clients,
# synchronous_commit off on the partitions.  Per run, issue + charge
# through the router as the superuser (routed) and as a till's role
# (till: CALL merchant_charge), on 2 partitions or more the pair with
# every order claimed on the payer's partition (local) and on another
# (remote), balance(); on 1 partition also the pair, the till's pair and
# balance() directly against the partition (what the hop costs).  Writes
# bench/results/partitions.txt; bench/NOTES.md says what it means.
#
#   bench/partitions.sh        # BENCH_SECONDS (15), BENCH_PARTITIONS ("1 2 4"),
#                              # BENCH_WARM (0: seconds of routed pairs first),
#                              # BENCH_QUOTA (CPUs each partition may use:
#                              # a cgroup quota, root only; unset: no quota)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-15}
out=bench/results/partitions.txt
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
	echo "bench/partitions.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs"
	echo "8 pgbench clients, ${seconds} s a run${BENCH_WARM:+ after ${BENCH_WARM} s of routed pairs and VACUUM ANALYZE}; partitions pinned to CPU p mod $(nproc)${BENCH_QUOTA:+, each at most ${BENCH_QUOTA} CPU (cgroup quota)}; router and pgbench unpinned"
	echo
	echo "cpu/s: CPU seconds a second by group (router's backends, each partition's, pgbench), over the run less its first 2 s and last 1 s"
	echo
	printf '%-10s %-8s %-10s %10s\n' partitions path script tps
} >"$tmp"
for n in ${BENCH_PARTITIONS:-1 2 4}; do
	PAYEXT_PIN_PARTITIONS=1 BENCH_SECONDS=$seconds scripts/with_partitions.sh "$n" \
		bench/partitions_run.sh "$n" >>"$tmp"
done
cp "$tmp" "$out"
cat "$out"
