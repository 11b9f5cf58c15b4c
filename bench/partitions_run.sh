#!/usr/bin/env bash
# One run of bench/partitions.sh, inside scripts/with_partitions.sh N:
# prints "N path script tps" lines.
set -euo pipefail
n=$1
seconds=${BENCH_SECONDS:-15}
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
read -r -a uris <<<"$PAYEXT_PARTITIONS"
work=$(mktemp -d)
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# BENCH_QUOTA=s: each partition's server, its postmaster and every process
# it forks, may use at most s CPUs (a cgroup's CPU quota: cgroup v1's cpu
# controller or cgroup v2's cpu.max; root only).  With s small enough
# that the router and pgbench have CPU to spare, the partitions' quotas,
# not the machine, bound the pairs a second, and N partitions give N
# times the CPU of one.
cgroups=()
cleanup() {
	local g pid
	for g in ${cgroups[@]+"${cgroups[@]}"}; do
		while read -r pid; do
			echo "$pid" >"$(dirname "$g")/cgroup.procs" 2>/dev/null || true
		done <"$g/cgroup.procs"
		rmdir "$g" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
if [ -n "${BENCH_QUOTA:-}" ]; then
	us=$(awk -v s="$BENCH_QUOTA" 'BEGIN { printf "%d", s * 100000 }')
	if [ -w /sys/fs/cgroup/cpu/cgroup.procs ]; then
		root=/sys/fs/cgroup/cpu v2=
	elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
		[ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
		root=/sys/fs/cgroup v2=1
		echo +cpu >"$root/cgroup.subtree_control"
	else
		echo "BENCH_QUOTA: no writable cgroup CPU controller here (root, cgroup v1 cpu or v2 cpu.max)" >&2
		exit 1
	fi
	read -r -a datadirs <<<"$PAYEXT_PARTITION_DATA"
	for p in "${!datadirs[@]}"; do
		g=$root/payext_bench_$$_p$p
		mkdir "$g"
		cgroups+=("$g")
		if [ -n "$v2" ]; then echo "$us 100000" >"$g/cpu.max"; else echo "$us" >"$g/cpu.cfs_quota_us"; fi
		postmaster=$(head -n 1 "${datadirs[$p]}/postmaster.pid")
		for pid in "$postmaster" $(ps -o pid= --ppid "$postmaster"); do
			echo "$pid" >"$g/cgroup.procs"
		done
	done
fi

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
# The same wallets by the partition their id names (its high byte) and a
# number within it, for the scripts that choose where an order is claimed.
q -c "CREATE TABLE public.bench_wallet_at (part integer, k integer, id bigint NOT NULL, PRIMARY KEY (part, k))" \
	-c "INSERT INTO public.bench_wallet_at SELECT id >> 56, row_number() OVER (PARTITION BY id >> 56 ORDER BY i), id FROM public.bench_wallet" \
	-c "ANALYZE public.bench_wallet_at" >/dev/null
# Fewest wallets on any partition: the scripts draw from 1 .. that.
per=$(q -c "SELECT min(c) FROM (SELECT count(*) AS c FROM public.bench_wallet_at GROUP BY part) s")
# bench_till: a till's role, not a superuser, with the app and merchant
# capabilities and mapped to the 8 merchants (on every partition, through
# the router); a role of every cluster, as routed calls run as their caller.
for uri in "${uris[@]}" "$PGDATABASE"; do
	q -d "$uri" -c "DO \$\$ BEGIN CREATE ROLE bench_till LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
done
q -c "SET client_min_messages = warning" \
	-c "SELECT payext.grant_capability('app', 'bench_till')" \
	-c "SELECT payext.grant_capability('merchant', 'bench_till')" \
	-c "SELECT count(payext.map_merchant_role('bench_till', id)) FROM public.bench_shop" \
	-c "GRANT SELECT ON public.bench_wallet, public.bench_shop TO bench_till" >/dev/null
for uri in "${uris[@]}"; do q -d "$uri" -c "VACUUM ANALYZE" >/dev/null; done

# The pair as the superuser (routed), and as the platform's roles make it
# (till): the app's request, the till's CALL merchant_charge (every role
# check runs; bench_till).
pair=$(cat <<'SQL'
\set w random(1, 4096)
\set m random(1, 8)
\set r random(1, 1000000000000)
SELECT id AS wallet FROM public.bench_wallet WHERE i = :w \gset
SELECT id AS shop FROM public.bench_shop WHERE i = :m \gset
SELECT payext.request_payment(:wallet) AS code \gset
SQL
)
printf '%s\n%s\n' "$pair" "SELECT payext.charge(:shop, ':code', 100, 'b' || :client_id || '-' || :r);" >"$work/routed.sql"
printf '%s\n%s\n' "$pair" "CALL payext.merchant_charge(:shop, ':code', 100, 't' || :client_id || '-' || :r);" >"$work/till.sql"
# On 2 partitions or more: the same pair with the order claimed on the
# payer's own partition (local: one remote call, the claim folded into
# the charge) or always on another (remote: the claim a call and a
# transaction of its own there).  Both ask the router where the order is
# claimed (route_reference) first, so they differ only in the claim.
for where in local remote; do
	if [ "$where" = local ]; then at=":c"; else at="(:c + 1) % $n"; fi
	cat >"$work/$where.sql" <<SQL
\\set w random(1, $per)
\\set m random(1, 8)
\\set r random(1, 1000000000000)
SELECT id AS shop, payext.route_reference(id, 'b' || :client_id || '-' || :r) AS c
  FROM public.bench_shop WHERE i = :m \\gset
SELECT id AS wallet FROM public.bench_wallet_at WHERE part = $at AND k = :w \\gset
SELECT payext.request_payment(:wallet) AS code \\gset
SELECT payext.charge(:shop, ':code', 100, 'b' || :client_id || '-' || :r);
SQL
done
# The scripts' own lookups of their wallet and merchant, which run on the
# router: its CPU per pair above includes them, a till's would not.
sed -n '/^\\set [wm] /p; /bench_wallet\|bench_shop/p' "$work/routed.sql" >"$work/lookups.sql"
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
	shift 3
	"$bindir/pgbench" -n -c 8 -j 2 -T "$seconds" "$@" -f "$script" "$conn" >"$work/out" 2>&1 &
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
run routed "$work/till.sql" "$PGDATABASE" -U bench_till
if [ "$n" -gt 1 ]; then
	run routed "$work/local.sql" "$PGDATABASE"
	run routed "$work/remote.sql" "$PGDATABASE"
fi
run routed "$work/balance.sql" "$PGDATABASE"
[ "$n" != 1 ] || run routed "$work/lookups.sql" "$PGDATABASE"
if [ "$n" = 1 ]; then
	# The same, straight to the partition: the ids are its own (the
	# router's merchant id is its account on partition 0).
	q -d "${uris[0]}" -c "CREATE TABLE public.bench_wallet (i integer PRIMARY KEY, id bigint NOT NULL)" \
		-c "CREATE TABLE public.bench_shop (i integer PRIMARY KEY, id bigint NOT NULL)" >/dev/null
	q -c "COPY public.bench_wallet TO STDOUT" | q -d "${uris[0]}" -c "COPY public.bench_wallet FROM STDIN"
	q -c "COPY public.bench_shop TO STDOUT" | q -d "${uris[0]}" -c "COPY public.bench_shop FROM STDIN"
	q -d "${uris[0]}" -c "ANALYZE public.bench_wallet, public.bench_shop" \
		-c "GRANT SELECT ON public.bench_wallet, public.bench_shop TO bench_till" >/dev/null
	run direct "$work/routed.sql" "${uris[0]}"
	run direct "$work/till.sql" "${uris[0]}" -U bench_till
	run direct "$work/balance.sql" "${uris[0]}"
fi
