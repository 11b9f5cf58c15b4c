#!/usr/bin/env bash
# The benchmark: payext's paths and their baselines on one throwaway cluster,
# in one run, so that the ratios between them mean something on a shared,
# noisy machine.  Writes bench/results/: README.md (the table, the targets,
# the machine), tps.csv, tps.png (gnuplot, when installed).
#
#   scripts/quickstart.sh bench          # installs, builds (release), runs this
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB bench/run.sh
#
# Knobs: BENCH_SECONDS (15 per pgbench run), BENCH_CLIENTS ("1 4 8"),
# BENCH_SYNC ("off on"), BENCH_GROWTH_ROWS (10000000 journal rows and as
# many interactions), BENCH_FEE_ROWS (1000000 stays), BENCH_SCRIPTS (all).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_SECONDS:-15}
clients_list=${BENCH_CLIENTS:-1 4 8}
sync_list=${BENCH_SYNC:-off on}
growth_rows=${BENCH_GROWTH_ROWS:-10000000}
fee_rows=${BENCH_FEE_ROWS:-1000000}
scripts=${BENCH_SCRIPTS:-charge many hot assoc parking code naive floor floorc floorlean tpcb select}
out=bench/results
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
mkdir -p "$out"
csv=$out/tps.csv
log=$out/run.log
: >"$log"
say() { echo "$*" | tee -a "$log"; }
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }

say "== bench: $(date -u '+%Y-%m-%d %H:%M UTC'), ${seconds}s per run, clients: $clients_list, synchronous_commit: $sync_list"

# -- The population (bench/setup.sql, bench/naive.sql, pgbench -i).
start=$SECONDS
bench/populate.sh
"$bindir/pgbench" -i -q -s 10 bench >>"$log" 2>&1
say "population loaded in $((SECONDS - start)) s"
# floorc and floorlean need bench/floorc's module (scripts/quickstart.sh
# bench installs it; or make -C bench/floorc install).
if [ "$(psql_b -At -c "SELECT to_regproc('floorc.charge') IS NULL")" = t ]; then
	case " $scripts " in *" floorc "* | *" floorlean "*)
		say "bench/floorc is not installed: floorc and floorlean are left out"
		scripts=$(tr ' ' '\n' <<<"$scripts" | grep -vx 'floorc\|floorlean' | paste -sd' ' -) ;;
	esac
fi

# -- pgbench_run SYNC CLIENTS ARG...: one pgbench run of BENCH_SECONDS on
# the bench database; prints its report, or logs it and fails.
pgbench_run() {
	local sync=$1 clients=$2 res
	shift 2
	res=$(PGOPTIONS="-c synchronous_commit=$sync" "$bindir/pgbench" -n \
		-c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$seconds" "$@" bench 2>&1) ||
		{ echo "$res" >>"$log"; echo "pgbench failed: $*" >&2; return 1; }
	echo "$res"
}
tps_of() { sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

# -- One script's run: prints tps; appends "script,sync,clients,tps,failed".
run_one() {
	local script=$1 sync=$2 clients=$3 args=() res tps failed
	case "$script" in
	tpcb) args=(-b tpcb-like) ;;
	select) args=(-b select-only) ;;
	*) args=(-f "bench/scripts/$script.sql") ;;
	esac
	res=$(pgbench_run "$sync" "$clients" "${args[@]}")
	tps=$(tps_of <<<"$res")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$res")
	echo "$script,$sync,$clients,$tps,${failed:-0}" >>"$csv"
	printf '%-8s sync=%-3s clients=%s  tps=%10.1f\n' "$script" "$sync" "$clients" "$tps" | tee -a "$log"
}

echo "script,sync,clients,tps,failed" >"$csv"
for sync in $sync_list; do
	for clients in $clients_list; do
		for script in $scripts; do
			run_one "$script" "$sync" "$clients"
		done
	done
done

# -- parking_fee over many stays against the same query with a trivial
# built-in expression in its place (best of three each).
say "== parking_fee over $fee_rows stays"
psql_b -c "DROP TABLE IF EXISTS stay_sample" \
	-c "CREATE TABLE stay_sample AS
	      SELECT 1 + g % 5 AS lot,
	             t AS entered_at,
	             t + make_interval(mins => ((g::bigint * 7919) % 4320)::int) AS exited_at
	        FROM generate_series(1, $fee_rows) g,
	             LATERAL (SELECT timestamptz '2026-01-01 00:00+08'
	                             + make_interval(mins => ((g::bigint * 104729) % 525600)::int) AS t) s" \
	-c "VACUUM ANALYZE stay_sample" >/dev/null
# best_ms QUERY [SETTING]: the best of three execution times, in ms.
best_ms() {
	local best="" ms
	for _ in 1 2 3; do
		ms=$(psql -X -At -d bench -c "${2:-SELECT}" -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $1" |
			sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p')
		if [ -z "$best" ] || awk "BEGIN{exit !($ms < $best)}"; then best=$ms; fi
	done
	echo "$best"
}
# Both queries as the planner runs them (in parallel: parking_fee is
# PARALLEL SAFE), and both again without parallel workers.
fee_q="SELECT sum(payext.parking_fee(lot, entered_at, exited_at)) FROM stay_sample"
trivial_q="SELECT sum(lot + 1) FROM stay_sample"
serial="SET max_parallel_workers_per_gather = 0"
fee_ms=$(best_ms "$fee_q")
trivial_ms=$(best_ms "$trivial_q")
fee_serial_ms=$(best_ms "$fee_q" "$serial")
trivial_serial_ms=$(best_ms "$trivial_q" "$serial")
echo "parking_fee,$fee_ms,trivial,$trivial_ms,parking_fee_serial,$fee_serial_ms,trivial_serial,$trivial_serial_ms" >"$out/fee.csv"
say "parking_fee: $fee_ms ms; trivial expression: $trivial_ms ms (without parallel workers: $fee_serial_ms and $trivial_serial_ms ms)"

# -- What payext's declared guarantees cost the charge: the uniform charge at
# 8 clients (synchronous_commit off) as installed, again without the
# foreign keys of the tables it writes, and again without their CHECK
# constraints too but for account_balance_not_negative (bench/unguard.sql).
# A measurement only: the database is dropped right after, and payext
# keeps both (bench/NOTES.md says why).
if [ "${BENCH_GUARANTEES:-1}" = 1 ]; then
	say "== what the foreign keys and CHECK constraints cost the charge"
	guard_csv=$out/guarantees.csv
	echo "variant,tps" >"$guard_csv"
	for variant in all no_fk no_fk_no_check; do
		case "$variant" in
		no_fk) psql_b -v drop=fk -f bench/unguard.sql >/dev/null ;;
		no_fk_no_check) psql_b -v drop=check -f bench/unguard.sql >/dev/null ;;
		esac
		tps=$(pgbench_run off 8 -f bench/scripts/charge.sql | tps_of)
		echo "$variant,$tps" >>"$guard_csv"
		say "charge, 8 clients, $variant: tps $tps"
	done
fi

# -- Growth: the uniform charge at 8 clients (synchronous_commit off) with
# about 10 000 journal rows, then again after adding BENCH_GROWTH_ROWS
# journal rows and as many interactions.
say "== growth: 10 000 journal rows, then $growth_rows more"
dropdb --if-exists bench >/dev/null 2>&1 || true
createdb bench
psql_b -f bench/growth.sql >/dev/null
growth_run() { pgbench_run off 8 -f bench/scripts/growth.sql | tps_of; }
small_rows=$(psql -X -At -d bench -c "SELECT count(*) FROM payext.transfer")
small_tps=$(growth_run)
say "journal rows: $small_rows, tps: $small_tps"
start=$SECONDS
psql_b -v rows="$growth_rows" -f bench/grow.sql >/dev/null
big_rows=$(psql -X -At -d bench -c "SELECT count(*) FROM payext.transfer")
say "grown to $big_rows journal rows in $((SECONDS - start)) s"
big_tps=$(growth_run)
say "journal rows: $big_rows, tps: $big_tps"
echo "small,$small_rows,$small_tps" >"$out/growth.csv"
echo "big,$big_rows,$big_tps" >>"$out/growth.csv"
ledger_ok=$(psql -X -At -d bench -c "SELECT bool_and(ok) FROM payext.verify_ledger()")
say "verify_ledger() after growth: $ledger_ok"

# -- The disk's commit rate, for the synchronous_commit=on figures.
fsync_rate=$("$bindir/pg_test_fsync" -s 2 -f "${PAYEXT_PGDATA:-/tmp}/bench_fsync.tmp" 2>/dev/null |
	sed -n 's/^ *fdatasync *\([0-9.]*\) ops\/sec.*/\1/p' | head -n 1 || true)
echo "${fsync_rate:-unknown}" >"$out/fsync.txt"
say "pg_test_fsync, fdatasync (the WAL's wal_sync_method): ${fsync_rate:-unknown} ops/s"

bench/report.sh "$out"
