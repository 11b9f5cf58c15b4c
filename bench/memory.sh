#!/usr/bin/env bash
# Memory: a backend's memory (pg_backend_memory_contexts) does not grow over
# 1 M charges.  One psql session (so one backend) charges MEMORY_CHARGES
# payment codes after a warm-up, mostly with charge_many() in batches of
# MEMORY_BATCH, each batch its own transaction (autocommit), with single
# charge() calls and refused items mixed in so that the error paths run too:
#
#   every batch    item 2 over its code's cap (request_payment(max_amount => 50)),
#                  item 3 a typo (wrong check digit), item 10 the code of
#                  item 9 again (used) -- 3 refusals, so 4 subtransactions
#                  and the items before each refusal charged again;
#   every 10th     two items fewer in the batch, and two single charge()
#                  calls instead: one charged, one refused at the top level
#                  (its code used: an ERROR and an aborted transaction).
#
# The same session samples its own memory (pg_backend_memory_contexts shows
# the current backend's contexts) between transactions: before anything,
# after the warm-up (the reference: caches fill at first), every
# MEMORY_SAMPLE_EVERY charges and at the end, with its RssAnon and VmRSS
# from /proc/self/status (read by the backend itself, as superuser).
# Fails when the total bytes at the end exceed the post-warm-up sample by
# more than MEMORY_TOLERANCE_KB (1024: see the note written in the report),
# when verify_ledger() finds anything, or when the charged and refused
# counts differ from what the batches above imply.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o synchronous_commit=off bench/memory.sh
#
# RssAnon and VmRSS are reported, not judged: the C library keeps freed
# memory, and VmRSS counts the shared buffers the backend touched.
#
# Knobs: MEMORY_CHARGES (1000000, measured after the warm-up), MEMORY_BATCH
# (100), MEMORY_WARMUP (10000), MEMORY_SAMPLE_EVERY (100000), MEMORY_WALLETS
# (5000), MEMORY_MERCHANTS (20), MEMORY_TOLERANCE_KB (1024), MEMORY_SEED
# (20000 charges made by the setup, in another session, before ANALYZE),
# MEMORY_OUT (bench/results/memory.txt, the report).  Charge counts must be
# multiples of the batch size.  Takes about 8 minutes on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."

charges=${MEMORY_CHARGES:-1000000}
batch=${MEMORY_BATCH:-100}
warmup=${MEMORY_WARMUP:-10000}
every=${MEMORY_SAMPLE_EVERY:-100000}
wallets=${MEMORY_WALLETS:-5000}
merchants=${MEMORY_MERCHANTS:-20}
tolerance_kb=${MEMORY_TOLERANCE_KB:-1024}
seed=${MEMORY_SEED:-20000}
db=payext_memory
out=${MEMORY_OUT:-bench/results/memory.txt}

die() { echo "memory.sh: $*" >&2; exit 2; }
for v in charges batch warmup every wallets merchants tolerance_kb seed; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
if [ "$batch" -lt 12 ] || [ "$batch" -gt 1000 ]; then die "MEMORY_BATCH must be within 12 .. 1000"; fi
for v in charges every wallets merchants; do
	[ "${!v}" -gt 0 ] || die "$v must be positive"
done
for v in charges warmup every; do
	[ $(( ${!v} % batch )) = 0 ] || die "$v (${!v}) must be a multiple of MEMORY_BATCH ($batch)"
done
[ "$warmup" -gt 0 ] || die "MEMORY_WARMUP must be positive: the reference sample follows it"

mkdir -p "$(dirname "$out")"
# What is measured: the commit, and the library the backends load (it may be
# reinstalled while this runs; a backend keeps the one it loaded).
commit() {
	echo "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src sql 2>/dev/null ||
		echo ' (src/ or sql/ modified in the work tree)')"
}
library() {
	local so
	so="$("${PG_CONFIG:-pg_config}" --pkglibdir)/payext.so"
	echo "$so, sha256 $(sha256sum "$so" | cut -c1-16), installed $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC')"
}
commit_start=$(commit)
library_start=$(library)
work=$(mktemp -d /tmp/payext-memory.XXXXXX)
trap 'rm -rf "$work"' EXIT

psql_d() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql_v() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# -- The population: wallets topped up generously, merchants, and the
# tables the driver writes its tallies and samples to.
dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
start=$SECONDS
psql_d -v wallets="$wallets" -v merchants="$merchants" -v seed="$seed" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payext;
CREATE SCHEMA memtest;
-- Account ids are looked up, not assumed: item i of a batch pays from
-- wallet ((round * batch + i) * 7919) % wallets.
CREATE TABLE memtest.wallet (i int PRIMARY KEY, id bigint NOT NULL);
CREATE TABLE memtest.merchant (i int PRIMARY KEY, id bigint NOT NULL);
INSERT INTO memtest.wallet SELECT g - 1, payext.open_wallet('mw' || g) FROM generate_series(1, :wallets) g;
INSERT INTO memtest.merchant
  SELECT g - 1, payext.open_merchant('gh_mem' || g, 'Memory shop ' || g) FROM generate_series(1, :merchants) g;
-- 1 000 000.00 each: about 1 000 times what a wallet spends in the run.
SELECT count(payext.top_up(id, 100000000, 'mem-seed-' || i)) FROM memtest.wallet;
-- A day of trade before the run, then ANALYZE: plans that payext's
-- backends prepare against empty tables scan them sequentially until
-- autovacuum's first ANALYZE (bench/setup.sql says the same), and the
-- warm-up should settle the caches, not wait for autovacuum.
SELECT count(payext.charge(m.id, payext.request_payment(w.id), 100, 'seed-' || g))
  FROM generate_series(1, :seed) g
  JOIN memtest.wallet w ON w.i = g % :wallets
  JOIN memtest.merchant m ON m.i = g % :merchants;
-- What each charge_many() batch (kind 'many') and each single charge()
-- ('single', 'single-refused') came to.
CREATE TABLE memtest.tally (round int NOT NULL, kind text NOT NULL, items int NOT NULL,
                            charged int NOT NULL, refused int NOT NULL, states text);
-- The driver session's memory, sampled between transactions.
CREATE TABLE memtest.sample (seq serial, label text NOT NULL, charges bigint NOT NULL,
                             at timestamptz NOT NULL, pid int NOT NULL, total_bytes bigint NOT NULL,
                             used_bytes bigint NOT NULL, contexts int NOT NULL,
                             rss_anon_kb bigint, vm_rss_kb bigint);
-- All its contexts, before anything, after the warm-up and at the end.
CREATE TABLE memtest.context (label text NOT NULL, name text, ident text, parent text,
                              level int, total_bytes bigint, used_bytes bigint);
SQL
psql_d -c "VACUUM ANALYZE" >/dev/null
setup_s=$((SECONDS - start))
seeded=$(psql_v -c "SELECT count(*) FROM payext.transfer WHERE kind = 'charge'")

# Can a backend read its own /proc/self/status (Linux, superuser)?
if psql_v -c "SELECT pg_read_file('/proc/self/status') ~ 'VmRSS'" 2>/dev/null | grep -qx t; then
	rss_anon="(SELECT substring(s FROM 'RssAnon:\\s+(\\d+)')::bigint FROM pg_read_file('/proc/self/status') s)"
	vm_rss="(SELECT substring(s FROM 'VmRSS:\\s+(\\d+)')::bigint FROM pg_read_file('/proc/self/status') s)"
else
	rss_anon=NULL
	vm_rss=NULL
fi

# -- The driver: one psql script, one statement a transaction.
rounds=$(( (warmup + charges) / batch ))
warm_round=$(( warmup / batch ))
every_rounds=$(( every / batch ))
driver=$work/driver.sql
# The sampling statements, LABEL and CHARGES filled in by the driver's maker.
export MEMORY_SAMPLE_SQL="INSERT INTO memtest.sample (label, charges, at, pid, total_bytes, used_bytes,
    contexts, rss_anon_kb, vm_rss_kb)
  SELECT 'LABEL', CHARGES, clock_timestamp(), pg_backend_pid(), sum(total_bytes), sum(used_bytes),
         count(*), $rss_anon, $vm_rss
    FROM pg_backend_memory_contexts;"
export MEMORY_CONTEXTS_SQL="INSERT INTO memtest.context
  SELECT 'LABEL', name, ident, parent, level, total_bytes, used_bytes FROM pg_backend_memory_contexts;"
{
	cat <<'SQL'
\set ON_ERROR_STOP 1
\set VERBOSITY terse
SET client_min_messages = warning;
SQL
	# shellcheck disable=SC2016 # an awk program: its $ are awk's
	awk -v rounds="$rounds" -v b="$batch" -v warm="$warm_round" -v every="$every_rounds" \
		-v nw="$wallets" -v nm="$merchants" -v q="'" '
	function fill(sql, label, round) {
		gsub(/LABEL/, label, sql); gsub(/CHARGES/, round * b, sql); return sql
	}
	function sample(label, round) { print fill(ENVIRON["MEMORY_SAMPLE_SQL"], label, round) }
	function contexts(label) { print fill(ENVIRON["MEMORY_CONTEXTS_SQL"], label, 0) }
	function lit(s) { return q s q }
	BEGIN {
		sample("begin", 0); contexts("begin")
		for (r = 1; r <= rounds; r++) {
			n = (r % 10 == 0) ? b - 2 : b
			m = "(SELECT id FROM memtest.merchant WHERE i = " (r % nm) ")"
			# Item 2 capped below its amount, item 3 a typo, item 10 the code of item 9.
			printf "SELECT array_agg(CASE g WHEN 3 THEN left(c, 17) || (right(c, 1)::int + 1) %% 10\n" \
			       "                       WHEN 10 THEN prev ELSE c END ORDER BY g) AS codes\n" \
			       "  FROM (SELECT g, c, lag(c) OVER (ORDER BY g) AS prev\n" \
			       "          FROM (SELECT g, payext.request_payment(w.id, max_amount => CASE WHEN g = 2 THEN 50 END) AS c\n" \
			       "                  FROM generate_series(1, %d) g\n" \
			       "                  JOIN memtest.wallet w ON w.i = ((%d::bigint * %d + g) * 7919) %% %d) s) s \\gset\n",
			       n, r, b, nw
			printf "INSERT INTO memtest.tally\n" \
			       "SELECT %d, %s, count(*), count(transfer_id), count(*) - count(transfer_id),\n" \
			       "       string_agg(DISTINCT sqlstate, %s ORDER BY sqlstate)\n" \
			       "  FROM payext.charge_many(%s, :%s, ARRAY(SELECT 100 + g FROM generate_series(1, %d) g)::bigint[],\n" \
			       "                          ARRAY(SELECT %s || g FROM generate_series(1, %d) g));\n",
			       r, lit("many"), lit(","), m, lit("codes"), n, lit("mem-" r "-"), n
			if (r % 10 == 0) {
				w = "(SELECT id FROM memtest.wallet WHERE i = " ((r * 31) % nw) ")"
				m = "(SELECT id FROM memtest.merchant WHERE i = " (int(r / 10) % nm) ")"
				printf "SELECT payext.request_payment(%s) AS code \\gset\n", w
				printf "INSERT INTO memtest.tally SELECT %d, %s, 1, 1, 0, NULL FROM payext.charge(%s, :%s, 77, %s) t;\n",
				       r, lit("single"), m, lit("code"), lit("mem-" r "-single")
				# The same code for another order: refused, the transaction aborted.
				printf "\\set ON_ERROR_STOP 0\n"
				printf "SELECT payext.charge(%s, :%s, 77, %s);\n", m, lit("code"), lit("mem-" r "-again")
				printf "\\set ON_ERROR_STOP 1\n"
				printf "INSERT INTO memtest.tally VALUES (%d, %s, 1, 0, 1, :%s);\n",
				       r, lit("single-refused"), lit("SQLSTATE")
			}
			if (r == warm) { sample("start", r); contexts("start") }
			else if (r > warm && (r - warm) % every == 0 && r != rounds) sample("charges", r)
		}
		sample("end", rounds); contexts("end")
	}'
} >"$driver"

echo "memory.sh: $setup_s s of setup; $warmup warm-up and $charges measured charges in batches of $batch, one session" >&2
start=$SECONDS
psql -X -q -d "$db" -f "$driver" >"$work/driver.out" 2>"$work/driver.err" || {
	tail -n 20 "$work/driver.err" >&2
	die "the driver session failed"
}
run_s=$((SECONDS - start))

# -- Checks: the counts that the batches imply, the ledger, the refusals.
tenth=$(( rounds / 10 ))
expect_charged=$(( rounds * (batch - 3) - tenth ))
expect_refused=$(( rounds * 3 + tenth ))
charged=$(psql_v -c "SELECT count(*) - $seeded FROM payext.transfer WHERE kind = 'charge'")
read -r tally_items tally_charged tally_refused < <(psql_v -F ' ' -c \
	"SELECT sum(items), sum(charged), sum(refused) FROM memtest.tally")
odd_batches=$(psql_v -c "SELECT count(*) FROM memtest.tally WHERE kind = 'many' AND refused <> 3")
refusals=$(psql_v -F ' ' -c "SELECT kind, coalesce(states, '-'), count(*) FROM memtest.tally
                              WHERE refused > 0 GROUP BY 1, 2 ORDER BY 1, 2")
top_errors=$(grep -c 'ERROR' "$work/driver.err" || true)
bad_checks=$(psql_v -F ' | ' -c "SELECT check_name, detail FROM payext.verify_ledger() WHERE NOT ok")

# -- The samples, and the verdict on the total bytes.
samples=$(psql_v -F ' ' -c "
	SELECT s.label, s.charges - $warmup,
	       round(extract(epoch FROM s.at - w.at))::bigint,
	       s.total_bytes, s.total_bytes - w.total_bytes, s.used_bytes, s.used_bytes - w.used_bytes,
	       s.contexts, coalesce(s.rss_anon_kb::text, '-'), coalesce(s.vm_rss_kb::text, '-'), s.pid
	  FROM memtest.sample s, memtest.sample w
	 WHERE w.label = 'start' ORDER BY s.seq")
pids=$(awk '{ print $11 }' <<<"$samples" | sort -u | wc -l)
read -r start_total end_total start_used end_used < <(psql_v -F ' ' -c "
	SELECT w.total_bytes, e.total_bytes, w.used_bytes, e.used_bytes
	  FROM memtest.sample w, memtest.sample e WHERE w.label = 'start' AND e.label = 'end'")
growth=$(( end_total - start_total ))
cache_total=$(psql_v -c "SELECT coalesce(sum(total_bytes), 0) FROM memtest.context
                         WHERE label = 'start' AND name = 'CacheMemoryContext'")
# Total bytes that rose at every sample since 'start' (three rises at least)
# look like a leak even within the tolerance.
climb=$(awk '$1 != "begin" { if (seen && $4 > last) up++; else if (seen) flat++; last = $4; seen = 1 }
	END { if (up >= 3 && !flat) print "the total bytes rose at every one of the " up " samples after start" }' <<<"$samples")
tolerance=$(( tolerance_kb * 1024 ))

failures=()
[ "$pids" = 1 ] || failures+=("the samples come from $pids backends, not one")
[ "$growth" -le "$tolerance" ] ||
	failures+=("total bytes grew by $growth after the warm-up, more than the tolerance of $tolerance")
[ -z "$bad_checks" ] || failures+=("verify_ledger() failed: $bad_checks")
[ "$charged" = "$expect_charged" ] || failures+=("$charged charge transfers in the journal, $expect_charged expected")
[ "$tally_charged" = "$expect_charged" ] && [ "$tally_refused" = "$expect_refused" ] &&
	[ "$tally_items" = $((warmup + charges)) ] ||
	failures+=("the driver counted $tally_items items, $tally_charged charged and $tally_refused refused;" \
		"expected $((warmup + charges)), $expect_charged and $expect_refused")
[ "$odd_batches" = 0 ] || failures+=("$odd_batches batches did not refuse exactly their 3 bad items")
[ "$top_errors" = "$tenth" ] || failures+=("$top_errors top-level errors, $tenth expected (one per 10th round)")

kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
{
	echo "payext: a backend's memory over $charges charges"
	echo
	echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit:     $commit_start at the start$(
		[ "$(commit)" = "$commit_start" ] || echo "; $(commit) at the end")"
	echo "library:    $library_start$(
		[ "$(library)" = "$library_start" ] || echo "; replaced during the run (the driver kept the old one): $(library)")"
	echo "extension:  payext $(psql_v -c "SELECT extversion FROM pg_extension WHERE extname = 'payext'")"
	echo "postgres:   $(psql_v -c "SELECT version()")"
	echo "settings:   $(psql_v -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
	                               WHERE name IN ('shared_buffers', 'synchronous_commit', 'work_mem')")"
	echo "population: $wallets wallets, $merchants merchants, $seeded charges before ANALYZE (setup $setup_s s)"
	echo "driver:     bench/memory.sh: one psql session (pid $(awk 'NR == 1 { print $11 }' <<<"$samples")), autocommit;"
	echo "            $((rounds)) rounds of $batch charges: a charge_many() batch (codes issued by"
	echo "            request_payment() in the statement before), items 2, 3 and 10 refused (over cap, typo,"
	echo "            used); every 10th round 2 items fewer and 2 single charge() calls, one refused"
	echo "run:        $warmup warm-up + $charges measured charges in $run_s s" \
		"($(awk -v n=$((warmup + charges)) -v s="$run_s" 'BEGIN { printf "%.0f", s ? n / s : 0 }') charges/s," \
		"issue included)"
	echo
	echo "Samples (pg_backend_memory_contexts of the driver session, between transactions;"
	echo "charges counted from the end of the warm-up, seconds from the 'start' sample; kB;"
	echo "+total and +used: since 'start'; RssAnon and VmRSS from /proc/<pid>/status):"
	echo
	printf '%-8s %9s %6s %11s %9s %11s %9s %8s %9s %9s\n' \
		label charges s total +total used +used contexts RssAnon VmRSS
	while read -r label n secs total dtotal used dused ctx anon rss _; do
		printf '%-8s %9s %6s %11s %9s %11s %9s %8s %9s %9s\n' "$label" "$n" "$secs" "$(kb "$total")" \
			"$(kb "$dtotal")" "$(kb "$used")" "$(kb "$dused")" "$ctx" "$anon" "$rss"
	done <<<"$samples"
	for label in start end; do
		echo
		echo "Top 10 contexts by total bytes, '$label':"
		echo
		psql -X -d "$db" -P footer=off -c "
			SELECT name, left(ident, 40) AS ident, parent, level, total_bytes, used_bytes
			  FROM memtest.context WHERE label = '$label' ORDER BY total_bytes DESC, name LIMIT 10"
	done
	echo "Contexts by name (and parent) whose count, total or used bytes (by 1 kB) changed"
	echo "from 'start' to 'end':"
	echo
	changed=$(psql -X -d "$db" -P footer=off -c "
		SELECT name, parent, coalesce(s.n, 0) AS n_start, coalesce(e.n, 0) AS n_end,
		       coalesce(s.total, 0) AS total_start, coalesce(e.total, 0) AS total_end,
		       coalesce(e.total, 0) - coalesce(s.total, 0) AS delta_total,
		       coalesce(e.used, 0) - coalesce(s.used, 0) AS delta_used
		  FROM (SELECT name, coalesce(parent, '') AS parent, count(*) n, sum(total_bytes) total,
		               sum(used_bytes) used
		          FROM memtest.context WHERE label = 'start' GROUP BY 1, 2) s
		  FULL JOIN (SELECT name, coalesce(parent, '') AS parent, count(*) n, sum(total_bytes) total,
		                    sum(used_bytes) used
		               FROM memtest.context WHERE label = 'end' GROUP BY 1, 2) e USING (name, parent)
		 WHERE coalesce(e.total, 0) <> coalesce(s.total, 0) OR coalesce(e.n, 0) <> coalesce(s.n, 0)
		    OR abs(coalesce(e.used, 0) - coalesce(s.used, 0)) >= 1024
		 ORDER BY abs(coalesce(e.total, 0) - coalesce(s.total, 0)) DESC,
		          abs(coalesce(e.used, 0) - coalesce(s.used, 0)) DESC, 1, 2 LIMIT 20")
	if [ "$(wc -l <<<"$changed")" -le 2 ]; then echo "  (none)"; echo; else echo "$changed"; echo; fi
	echo "Ledger:"
	echo
	echo "  charge transfers in the journal, less the setup's $seeded: $charged (expected $expect_charged)"
	echo "  items driven: $tally_items; charged $tally_charged, refused $tally_refused (expected $expect_refused)"
	echo "  refusals (kind, SQLSTATEs, count):"
	while read -r line; do echo "    $line"; done <<<"$refusals"
	echo "  verify_ledger(): $(if [ -z "$bad_checks" ]; then echo "every check ok"; else echo "$bad_checks"; fi)"
	echo
	echo "Verdict:"
	echo
	echo "  total bytes after the warm-up $(kb "$start_total") kB, at the end $(kb "$end_total") kB:" \
		"growth $(kb "$growth") kB (used bytes: $(kb $((end_used - start_used))) kB)," \
		"tolerance $tolerance_kb kB"
	echo "  The tolerance is absolute, not 10 %: after the warm-up the backend holds about"
	echo "  $(( start_total / 1024 )) kB, of which CacheMemoryContext is $(( cache_total / 1024 )) kB; AllocSet blocks double (up"
	echo "  to 8 MB), so that context's next block is about as large as it is now, and an entry"
	echo "  cached once (a relation rebuilt after autovacuum's ANALYZE, say) may take one without"
	echo "  any leak: 10 % ($(( start_total / 10240 )) kB) would call that a leak.  1 MB still catches a leak"
	echo "  of one byte a charge over 1 M charges (about 100 bytes a batch of 100)."
	if [ -n "$climb" ]; then echo "  Warning: $climb"; fi
	if [ ${#failures[@]} = 0 ]; then
		echo "  PASS"
	else
		echo "  FAIL"
		printf '  - %s\n' "${failures[@]}"
	fi
} >"$out"
cat "$out"
[ ${#failures[@]} = 0 ]
