#!/usr/bin/env bash
# What one issue-and-charge writes: heap tuples and index entries per table
# (pg_stat_user_tables), and WAL (records, bytes, full-page images, by
# record type from pg_waldump --stats), for payext and for the PL/pgSQL
# baseline, over the same number of pairs in one cluster.  Counts, not
# speed: one client, so that nothing else writes in the measured range.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh bench/writes.sh
#
# Needs the initdb mode (PAYEXT_PGDATA: pg_waldump reads the cluster's WAL
# directory).  Knobs: WRITES_PAIRS (1000 measured pairs per script, after
# as many to warm up).  Writes bench/results/writes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=${WRITES_PAIRS:-1000}
out=bench/results/writes.txt
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
: "${PAYEXT_PGDATA:?run under PAYEXT_CLUSTER=initdb scripts/with_cluster.sh}"
mkdir -p bench/results
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
psql_v() { psql -X -At -v ON_ERROR_STOP=1 -d bench "$@"; }

bench/populate.sh

# The per-table counters, as "schema.table ins upd hot del" lines.
counters() {
	psql_v -F ' ' -c "SELECT pg_stat_clear_snapshot()" -c "
	    SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
	      FROM pg_stat_user_tables
	     WHERE schemaname IN ('payext', 'naive')
	     ORDER BY 1" | sed -n '/ /p'
}

# measure NAME SCRIPT: warm up, then PAIRS pairs of SCRIPT in one session.
measure() {
	local name=$1 script=$2 before after lsn0 lsn1 wal0 wal1 nidx
	PGOPTIONS="-c synchronous_commit=off" "$bindir/pgbench" -n -c 1 -t "$pairs" \
		-f "$script" bench >/dev/null
	psql_b -c CHECKPOINT
	before=$(counters)
	wal0=$(psql_v -c "SELECT wal_records || ' ' || wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")
	lsn0=$(psql_v -c "SELECT pg_current_wal_insert_lsn()")
	PGOPTIONS="-c synchronous_commit=off" "$bindir/pgbench" -n -c 1 -t "$pairs" \
		-f "$script" bench >/dev/null
	lsn1=$(psql_v -c "SELECT pg_current_wal_insert_lsn()")
	sleep 1 # pgbench's backend reports its counters as it exits
	after=$(counters)
	wal1=$(psql_v -c "SELECT wal_records || ' ' || wal_fpi || ' ' || wal_bytes FROM pg_stat_wal")

	{
		echo "== $name: $pairs pairs of $script, figures per pair"
		echo
		echo "WAL: $(psql_v -c "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / $pairs.0)") bytes" \
			"(the insert position's advance; checkpoint just before, so full-page images included)"
		echo
		echo "table                          inserts  updates  (HOT)  deletes  index entries"
		# Index entries: an insert adds one to every index, a non-HOT update
		# one to every index, a HOT update none (partial indexes are counted
		# as if full: an upper bound).
		join <(echo "$before") <(echo "$after") | while read -r rel i0 u0 h0 d0 i1 u1 h1 d1; do
			[ "$i1$u1$d1" = "$i0$u0$d0" ] && continue
			nidx=$(psql_v -c "SELECT count(*) FROM pg_index WHERE indrelid = '$rel'::regclass")
			awk -v r="$rel" -v i=$((i1 - i0)) -v u=$((u1 - u0)) -v h=$((h1 - h0)) \
				-v d=$((d1 - d0)) -v n="$nidx" -v p="$pairs" 'BEGIN {
				printf "%-30s %7.2f  %7.2f  %5.2f  %7.2f  %13.2f\n",
				       r, i / p, u / p, h / p, d / p, n * (i + u - h) / p }'
		done
		echo
		echo "pg_waldump --stats=record over the range (records and bytes per pair):"
		"$bindir/pg_waldump" --stats=record -p "$PAYEXT_PGDATA/pg_wal" -s "$lsn0" -e "$lsn1" 2>/dev/null |
			awk -v p="$pairs" '
				# Type N (%) record-size (%) FPI-size (%) combined (%)
				{ gsub(/\([^)]*\)/, "") }
				NF == 5 && $2 ~ /^[0-9]+$/ && $2 > 0 {
					n += $2; b += $5; f += $4
					printf "  %-32s %7.2f records %9.1f bytes (of which FPI %8.1f)\n",
					       $1, $2 / p, $5 / p, $4 / p }
				END {
					printf "  %-32s %7.2f records %9.1f bytes (of which FPI %8.1f); without FPI %.1f bytes\n",
					       "(all)", n / p, b / p, f / p, (b - f) / p }' | sort -k4 -n -r
		echo
		echo "row locks (Heap/LOCK) and index entries (Btree/INSERT_LEAF) per pair, by relation:"
		"$bindir/pg_waldump" -p "$PAYEXT_PGDATA/pg_wal" -s "$lsn0" -e "$lsn1" 2>/dev/null |
			sed -n 's;^rmgr: \(Heap\|Btree\) .*desc: \(LOCK\|INSERT_LEAF\) .*blkref #0: rel [0-9]*/[0-9]*/\([0-9]*\) .*;\2 \3;p' |
			sort | uniq -c | while read -r n what node; do
			printf '  %-12s %-44s %6.2f\n' "$what" \
				"$(psql_v -c "SELECT coalesce(pg_filenode_relation(0, $node)::text, '$node')")" \
				"$(awk -v n="$n" -v p="$pairs" 'BEGIN { print n / p }')"
		done
		echo
		echo "pg_stat_wal: $wal0 -> $wal1 (records, full-page images, bytes)"
		echo
	} | tee -a "$out"
}

echo "# bench/writes.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" | tee "$out"
measure payext bench/scripts/charge.sql
measure baseline bench/scripts/naive.sql
measure "payext, issue only" bench/scripts/code.sql
echo "verify_ledger(): $(psql_v -c "SELECT bool_and(ok) FROM payext.verify_ledger()")" | tee -a "$out"
