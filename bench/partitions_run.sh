#!/usr/bin/env bash
# One run of bench/partitions.sh, inside scripts/with_partitions.sh N:
# prints "N path script tps" lines.
set -euo pipefail
n=$1
seconds=${BENCH_SECONDS:-15}
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
read -r -a uris <<<"$PAYEXT_PARTITIONS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

for uri in "${uris[@]}"; do
	q -d "$uri" -c "ALTER DATABASE $(q -d "$uri" -c 'SELECT current_database()') SET synchronous_commit = off"
done
# 4 096 wallets of 1 000 000.00 and 8 merchants, through the router.
q -c "SET client_min_messages = warning" \
	-c "CREATE TABLE public.bench_wallet (i integer PRIMARY KEY, id bigint NOT NULL)" \
	-c "INSERT INTO public.bench_wallet SELECT g, payext.open_wallet('bench-' || g) FROM generate_series(1, 4096) g" \
	-c "SELECT count(payext.top_up(id, 100000000, 'seed')) FROM public.bench_wallet" \
	-c "CREATE TABLE public.bench_shop (i integer PRIMARY KEY, id bigint NOT NULL)" \
	-c "INSERT INTO public.bench_shop SELECT g, payext.open_merchant('gh_bench_' || g, 'Shop ' || g) FROM generate_series(1, 8) g" \
	-c "ANALYZE public.bench_wallet, public.bench_shop" >/dev/null
for uri in "${uris[@]}"; do q -d "$uri" -c "VACUUM ANALYZE" >/dev/null; done

cat >"$work/routed.sql" <<'SQL'
\set w random(1, 4096)
\set m random(1, 8)
\set r random(1, 1000000000000)
SELECT id AS wallet FROM public.bench_wallet WHERE i = :w \gset
SELECT id AS shop FROM public.bench_shop WHERE i = :m \gset
SELECT payext.request_payment(:wallet) AS code \gset
SELECT payext.charge(:shop, ':code', 100, 'b' || :client_id || '-' || :r);
SQL
cat >"$work/balance.sql" <<'SQL'
\set w random(1, 4096)
SELECT id AS wallet FROM public.bench_wallet WHERE i = :w \gset
SELECT payext.balance(:wallet);
SQL
# cpu_ticks: "group ticks" lines, the CPU time (utime + stime, in clock
# ticks) of every live postgres backend by its database (router or
# payext_p<p>) and of pgbench.
cpu_ticks() {
	local pid args stat fields g
	declare -A total=()
	for pid in /proc/[0-9]*; do
		mapfile -d '' args 2>/dev/null <"$pid/cmdline" || continue
		case "${args[*]:-}" in
		"postgres: "*" payext_router "*) g=router ;;
		"postgres: "*" payext_p"*)
			g=${args[*]#postgres: * }
			g=${g%% *} ;;
		*pgbench*) g=pgbench ;;
		*) continue ;;
		esac
		read -r stat 2>/dev/null <"$pid/stat" || continue
		read -r -a fields <<<"${stat##*) }"
		total[$g]=$((${total[$g]:-0} + fields[11] + fields[12]))
	done
	for g in "${!total[@]}"; do echo "$g ${total[$g]}"; done
}
run() {
	local label=$1 script=$2 conn=$3 res tps
	"$bindir/pgbench" -n -c 8 -j 2 -T "$seconds" -f "$script" "$conn" >"$work/out" 2>&1 &
	local bench=$!
	sleep 2
	cpu_ticks >"$work/cpu0"
	sleep $((seconds - 3))
	cpu_ticks >"$work/cpu1"
	wait "$bench" || { cat "$work/out" >&2; exit 1; }
	res=$(cat "$work/out")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$res")
	# CPU seconds a second (of $(nproc)), by group, over the middle of the run.
	cpu=$(awk -v secs=$((seconds - 3)) -v hz="$(getconf CLK_TCK)" \
		'NR == FNR { a[$1] = $2; next } { printf "%s %.2f  ", $1, ($2 - a[$1]) / hz / secs }' \
		"$work/cpu0" "$work/cpu1" | tr -s ' ')
	printf '%-10s %-8s %-10s %10.1f   cpu/s: %s\n' "$n" "$label" "$(basename "$script" .sql)" "$tps" "$cpu"
}
# BENCH_WARM=s: first s seconds of routed pairs, then VACUUM ANALYZE of
# every partition, so that plans are made for tables of a run's size
# rather than fresh ones (bench/NOTES.md, "the claim in C").
if [ "${BENCH_WARM:-0}" -gt 0 ]; then
	"$bindir/pgbench" -n -c 8 -j 2 -T "$BENCH_WARM" -f "$work/routed.sql" "$PGDATABASE" >/dev/null 2>&1
	for uri in "${uris[@]}"; do q -d "$uri" -c "VACUUM ANALYZE" >/dev/null; done
fi
run routed "$work/routed.sql" "$PGDATABASE"
run routed "$work/balance.sql" "$PGDATABASE"
if [ "$n" = 1 ]; then
	# The same, straight to the partition: the ids are its own (the
	# router's merchant id is its account on partition 0).
	q -d "${uris[0]}" -c "CREATE TABLE public.bench_wallet (i integer PRIMARY KEY, id bigint NOT NULL)" \
		-c "CREATE TABLE public.bench_shop (i integer PRIMARY KEY, id bigint NOT NULL)" >/dev/null
	q -c "COPY public.bench_wallet TO STDOUT" | q -d "${uris[0]}" -c "COPY public.bench_wallet FROM STDIN"
	q -c "COPY public.bench_shop TO STDOUT" | q -d "${uris[0]}" -c "COPY public.bench_shop FROM STDIN"
	q -d "${uris[0]}" -c "ANALYZE public.bench_wallet, public.bench_shop" >/dev/null
	run direct "$work/routed.sql" "${uris[0]}"
	run direct "$work/balance.sql" "${uris[0]}"
fi
