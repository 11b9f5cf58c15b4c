#!/usr/bin/env bash
# Turns bench/run.sh's CSV files into bench/results/README.md (the table,
# the targets as ratios, the machine) and tps.png (gnuplot, if installed).
#   bench/report.sh [results-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
csv=$out/tps.csv
md=$out/README.md

# tps SCRIPT SYNC CLIENTS -> the figure, or empty
tps() { awk -F, -v s="$1" -v y="$2" -v c="$3" '$1 == s && $2 == y && $3 == c { print $4 }' "$csv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { if (r == "n/a") print "not measured";
	else if ((dir == "min" && r + 0 >= t + 0) || (dir == "max" && r + 0 <= t + 0)) print "met"; else print "**missed**" }'; }

clients=$(awk -F, 'NR > 1 { print $3 }' "$csv" | sort -n -u | tr '\n' ' ')
syncs=$(awk -F, 'NR > 1 { print $2 }' "$csv" | awk '!seen[$0]++' | tr '\n' ' ')
scripts=$(awk -F, 'NR > 1 { print $1 }' "$csv" | awk '!seen[$0]++' | tr '\n' ' ')
describe() {
	case "$1" in
	charge) echo "issue a code, charge it (uniform over 800 merchants)" ;;
	hot) echo "the same, every charge at one merchant" ;;
	assoc) echo "the same, a rule linking on the first payment" ;;
	parking) echo "camera entry, exit with auto-pay" ;;
	code) echo "issue a code" ;;
	many) echo "issue 100 codes, charge them with one charge_many() (a transaction is 100 pairs)" ;;
	naive) echo "baseline: PL/pgSQL + pgcrypto issue and charge" ;;
	floor) echo "payext's rows, written by plain PL/pgSQL with nothing else (bench/floor.sql)" ;;
	floorc) echo "the same rows written by C without the executor (bench/floorc)" ;;
	floorlean) echo "floorc without the payment row (a payment and its journal row as one)" ;;
	tpcb) echo "baseline: pgbench TPC-B" ;;
	select) echo "baseline: pgbench select-only" ;;
	*) echo "$1" ;;
	esac
}

{
	# What this page is and how to make it again; the latest run follows.
	cat <<'INTRO'
# Benchmark results

The latest run of payext's benchmark: its paths (issue a code and charge
it, a hot merchant, association firing, parking entry and exit with
auto-pay) against baselines measured in the same run on the same cluster.
Where the time goes and what each change bought is in
[../NOTES.md](../NOTES.md).

## What is here

| file | what |
| --- | --- |
| `README.md` | this page: the machine, the table, the targets and their verdicts, what the guarantees cost, durable commits |
| `tps.png` | the chart: transactions per second against clients, `synchronous_commit` off and on, log scale |
| `tps.csv` | every pgbench run: script, sync, clients, tps, failed transactions |
| `fee.csv` | `parking_fee` over 1 M stays against a trivial expression, in ms: with parallel workers, then without |
| `growth.csv` | the charge at 8 clients on a small journal, then after growing it: label, journal rows, tps |
| `guarantees.csv` | the charge at 8 clients as installed, without foreign keys, without foreign keys and `CHECK` constraints |
| `fsync.txt` | the disk's `pg_test_fsync` fdatasync rate (ops/s) |
| `writes.txt` | what one issue-and-charge writes, payext against the baseline: heap tuples, index entries and WAL by record type and by relation (`bench/writes.sh`, run on its own; its header names its commit) |
| `partitions.txt` | payext behind a PL/Proxy router on 1, 2 and 4 partitions, routed against direct, with each group's CPU (`bench/partitions.sh`, run on its own; `BENCH_WARM` measures after a warm-up and `ANALYZE`; its header names its commit) |
| `run.log` | the run's log: each pgbench run, the population, the growth, `verify_ledger()` after it |

## How to reproduce

```sh
scripts/quickstart.sh bench     # about 20 minutes on 2 cores
```

It installs what is missing (gnuplot for the chart), builds payext without
assertions, installs it, and runs `bench/run.sh` in a throwaway cluster of
its own (`initdb`, `shared_buffers = 1GB`, `max_connections = 50`,
`max_wal_size = 4GB`, `checkpoint_timeout = 30min`):

1. the population (`bench/setup.sql`): 100 000 wallets, 1 000 merchants, 5
   parking lots, one bound car with auto-pay per wallet, a rule that links
   on the first payment at the last 100 merchants, a month of trade, then
   `VACUUM ANALYZE`; the PL/pgSQL baseline (`bench/naive.sql`) and pgbench's
   own tables;
2. pgbench, 15 s per run, at 1, 4 and 8 clients, `synchronous_commit` off
   and on, for every script in `bench/scripts/`;
3. `parking_fee` over a million stays against `sum(lot + 1)`, in parallel
   and not;
4. the charge without foreign keys, then without `CHECK` constraints too
   (`bench/unguard.sql`, which runs only in the `bench` database);
5. the charge on a small database, then after 10 million more journal rows
   and interactions (`bench/growth.sql`, `bench/grow.sql`), and
   `verify_ledger()` after it;
6. `bench/report.sh` writes this directory.

Knobs: `BENCH_SECONDS` (15), `BENCH_CLIENTS` (`"1 4 8"`), `BENCH_SYNC`
(`"off on"`), `BENCH_GROWTH_ROWS` (10000000), `BENCH_FEE_ROWS` (1000000),
`BENCH_SCRIPTS` (all). Against a cluster of your own:
`PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB bench/run.sh`.

The machine is shared with other work: compare ratios within one run,
never figures across runs.

## The latest run

INTRO
	echo "Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); every figure below"
	echo "comes from one run on one throwaway cluster. Transactions per second;"
	echo "a charge script's transaction is one issue-and-charge (two SQL transactions)."
	echo "The run measured commit $(git rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)')" \
		"(see [../NOTES.md](../NOTES.md) for what changed since)."
	echo
	echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)),"
	echo "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory, $(uname -sr),"
	echo "$("${PG_CONFIG:-pg_config}" --version), shared with other work (so: ratios, not absolutes)."
	echo
	header="| script |"
	rule="| --- |"
	for y in $syncs; do for c in $clients; do
		header="$header sync $y, $c cl. |"
		rule="$rule ---: |"
	done; done
	echo "$header"
	echo "$rule"
	for s in $scripts; do
		row="| \`$s\`: $(describe "$s") |"
		for y in $syncs; do for c in $clients; do
			row="$row $(tps "$s" "$y" "$c" | awk '{ printf "%.0f", $1 }') |"
		done; done
		echo "$row"
	done
	echo
	echo "### Targets (8 clients, synchronous_commit off)"
	echo
	echo "| target | measured | verdict |"
	echo "| --- | --- | --- |"
	r=$(ratio "$(tps charge off 8)" "$(tps naive off 8)")
	echo "| issue + charge ≥ 2.0× the PL/pgSQL baseline | $r× | $(verdict "$r" 2.0 min) |"
	r=$(ratio "$(tps charge off 8)" "$(tps select off 8)")
	echo "| issue + charge ≥ 0.35× pgbench select-only | $r× | $(verdict "$r" 0.35 min) |"
	r=$(ratio "$(tps code off 8)" "$(tps select off 8)")
	echo "| issuing a code alone ≥ 0.5× pgbench select-only | $r× | $(verdict "$r" 0.5 min) |"
	r=$(ratio "$(awk -v t="$(tps many off 8)" 'BEGIN { if (t != "") print 100 * t }')" "$(tps charge off 8)")
	echo "| \`charge_many\` in batches of 100 ≥ 3× single calls, per charge | $r× | $(verdict "$r" 3.0 min) |"
	r=$(ratio "$(tps hot off 8)" "$(tps charge off 8)")
	echo "| hot merchant ≥ 0.8× uniform | $r× | $(verdict "$r" 0.8 min) |"
	if [ -n "$(tps charge on 8)" ]; then
		r=$(ratio "$(tps charge on 8)" "$(tps naive on 8)")
		echo "| synchronous_commit on: issue + charge ≥ 1.5× the baseline | $r× | $(verdict "$r" 1.5 min) |"
		r=$(ratio "$(tps hot on 8)" "$(tps charge on 8)")
		echo "| synchronous_commit on: hot merchant ≥ 0.8× uniform | $r× | $(verdict "$r" 0.8 min) |"
	fi
	if [ -s "$out/growth.csv" ]; then
		small=$(awk -F, '$1 == "small" { print $3 }' "$out/growth.csv")
		big=$(awk -F, '$1 == "big" { print $3 }' "$out/growth.csv")
		rows=$(awk -F, '$1 == "big" { print $2 }' "$out/growth.csv")
		r=$(ratio "$big" "$small")
		echo "| charge at $rows journal rows ≥ 0.8× at 10 k | $r× ($(printf '%.0f' "$big") vs $(printf '%.0f' "$small") tps) | $(verdict "$r" 0.8 min) |"
	fi
	if [ -s "$out/fee.csv" ]; then
		fee=$(cut -d, -f2 "$out/fee.csv")
		trivial=$(cut -d, -f4 "$out/fee.csv")
		r=$(ratio "$fee" "$trivial")
		echo "| \`parking_fee\` over 1 M stays ≤ 3× a trivial expression | $r× ($fee vs $trivial ms) | $(verdict "$r" 3 max) |"
		fee_serial=$(cut -d, -f6 "$out/fee.csv")
		trivial_serial=$(cut -d, -f8 "$out/fee.csv")
		if [ -n "$fee_serial" ]; then
			r=$(ratio "$fee_serial" "$trivial_serial")
			echo "| the same without parallel workers | $r× ($fee_serial vs $trivial_serial ms) | $(verdict "$r" 3 max) |"
		fi
	fi
	if [ -n "$(tps floor off 8)" ]; then
		echo
		echo "What stands in the way: payext's own rows, written by plain PL/pgSQL with no"
		echo "check, MAC or rule (\`floor\`), ran $(ratio "$(tps floor off 8)" "$(tps naive off 8)")× the baseline; payext ran"
		echo "$(ratio "$(tps charge off 8)" "$(tps floor off 8)")× that floor. 2× the baseline asks for $(ratio "$(awk -v t="$(tps naive off 8)" 'BEGIN { print 2 * t }')" "$(tps floor off 8)")× the floor."
	fi
	if [ -n "$(tps floorc off 8)" ]; then
		echo "Without the executor (\`floorc\`, C straight into the heap and the indexes) the"
		echo "same rows ran $(ratio "$(tps floorc off 8)" "$(tps naive off 8)")× the baseline, and without the payment row"
		echo "(\`floorlean\`) $(ratio "$(tps floorlean off 8)" "$(tps naive off 8)")×: the most an executor-free payext could reach"
		echo "with this write set, before any read, check or MAC of its own."
	fi
	echo
	naive8=$(tps naive off 8)
	code8=$(tps code off 8)
	tpcb8=$(tps tpcb off 8)
	select8=$(tps select off 8)
	if [ -n "$naive8" ] && [ -n "$code8" ] && [ -n "$tpcb8" ] && [ -n "$select8" ]; then
		half=$(awk -v t="$code8" 'BEGIN { print t / 2 }')
		echo "For scale, in the same run: 2.0× the baseline would be $(awk -v t="$naive8" 'BEGIN { printf "%.0f", 2 * t }')"
		echo "issue-and-charge pairs a second, $(awk -v t="$naive8" 'BEGIN { printf "%.0f", 4 * t }') SQL transactions. Issuing a code alone,"
		echo "the lighter of the two (one insert), ran $(printf '%.0f' "$code8") a second (\`code\`): were a charge no"
		echo "dearer than issuing a code, the pair would run $(printf '%.0f' "$half") a second,"
		echo "$(ratio "$half" "$naive8")× the baseline. pgbench's own TPC-B, one write transaction,"
		echo "reached $(ratio "$tpcb8" "$select8")× select-only."
		echo
	fi
	if [ -s "$out/guarantees.csv" ]; then
		echo "### What the declared guarantees cost the charge (8 clients, synchronous_commit off)"
		echo
		echo "The uniform charge as installed, then without the foreign keys of the"
		echo 'tables it writes, then without their CHECK constraints too (but'
		# shellcheck disable=SC2016 # the backquotes are Markdown, not commands
		echo '`balance >= 0`), by `bench/unguard.sql` on the benchmark'"'"'s database.'
		# shellcheck disable=SC2016
		echo 'payext keeps both; `bench/NOTES.md` says why.'
		echo
		echo "| variant | tps | ÷ as installed | ÷ PL/pgSQL baseline |"
		echo "| --- | ---: | ---: | ---: |"
		all=$(awk -F, '$1 == "all" { print $2 }' "$out/guarantees.csv")
		while IFS=, read -r variant t; do
			[ "$variant" = variant ] && continue
			case "$variant" in
			all) label="as installed" ;;
			no_fk) label="without foreign keys" ;;
			no_fk_no_check) label="without foreign keys and CHECK constraints" ;;
			*) label=$variant ;;
			esac
			echo "| $label | $(printf '%.0f' "$t") | $(ratio "$t" "$all")× | $(ratio "$t" "$naive8")× |"
		done <"$out/guarantees.csv"
		echo
	fi
	if [ -s "$out/fsync.txt" ] && [ -n "$(tps charge on 8)" ]; then
		fsync=$(cat "$out/fsync.txt")
		echo "### Durable commits (synchronous_commit on)"
		echo
		echo "The disk: pg_test_fsync measures $fsync fdatasync/s, the most commits one"
		echo "client can make per second. A charge script's transaction commits twice."
		echo
		echo "| | 1 client | 8 clients | 8 ÷ 1 (what group commit buys) |"
		echo "| --- | ---: | ---: | ---: |"
		for s in charge naive tpcb; do
			one=$(tps "$s" on 1)
			eight=$(tps "$s" on 8)
			[ -n "$one" ] || continue
			echo "| \`$s\` commits/s | $(awk -v t="$one" -v k="$s" 'BEGIN { printf "%.0f", t * (k == "tpcb" ? 1 : 2) }') | $(awk -v t="$eight" -v k="$s" 'BEGIN { printf "%.0f", t * (k == "tpcb" ? 1 : 2) }') | $(ratio "$eight" "$one")× |"
		done
		echo
		c1=$(awk -v t="$(tps charge on 1)" 'BEGIN { printf "%.0f", 2 * t }')
		c8=$(awk -v t="$(tps charge on 8)" 'BEGIN { printf "%.0f", 2 * t }')
		echo "The charge commits $c1 times a second with one client, $(ratio "$c1" "$fsync")× the disk's"
		echo "$fsync fdatasyncs, and $c8 times with 8 clients, $(ratio "$c8" "$fsync")×. One client waits"
		echo "for each flush on top of its CPU work ($(tps charge on 1 | awk '{ printf "%.0f", $1 }') pairs a second, against"
		echo "$(tps charge off 1 | awk '{ printf "%.0f", $1 }') without waiting); with 8 clients one fdatasync carries several"
		echo "backends' commits, and the 2 CPUs, not the disk, become the limit."
		echo
	fi
	echo "Chart: [tps.png](tps.png). Raw figures: [tps.csv](tps.csv), [fee.csv](fee.csv),"
	echo "[growth.csv](growth.csv), [guarantees.csv](guarantees.csv); the run's log: [run.log](run.log)."
} >"$md"

if command -v gnuplot >/dev/null 2>&1; then
	data=$(mktemp -d)
	for y in $syncs; do for s in $scripts; do
		awk -F, -v s="$s" -v y="$y" '$1 == s && $2 == y { print $3, $4 }' "$csv" | sort -n >"$data/$y-$s.dat"
	done; done
	{
		echo "set terminal pngcairo size 1200,500 noenhanced font ',10'"
		echo "set output '$out/tps.png'"
		echo "set multiplot layout 1,$(wc -w <<<"$syncs")"
		echo "set logscale y"
		echo "set xlabel 'clients'"
		echo "set ylabel 'tps'"
		echo "set key outside right"
		echo "set grid"
		echo "set xtics ($(tr ' ' '\n' <<<"$clients" | grep . | paste -sd, -))"
		for y in $syncs; do
			echo "set title 'synchronous_commit = $y'"
			plot="plot"
			for s in $scripts; do
				plot="$plot '$data/$y-$s.dat' using 1:2 with linespoints title '$s',"
			done
			echo "${plot%,}"
		done
		echo "unset multiplot"
	} >"$data/plot.gp"
	if ! gnuplot "$data/plot.gp" 2>/dev/null; then
		sed -i 's/pngcairo/png/' "$data/plot.gp"
		gnuplot "$data/plot.gp"
	fi
	rm -rf "$data"
fi
echo "bench: results in $md"
