#!/usr/bin/env bash
# A merchant's statement and balance_at at 10 M journal rows: how long a
# day's statement of a merchant with millions of movements takes, and a
# balance at an instant before and after its day's checkpoint.  Timings,
# not a test: one client, the median of five runs each.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh bench/statement.sh
#
# Knobs: STATEMENT_ROWS (10000000 journal rows, a fifth of them the big
# merchant's, over a year).  Writes bench/results/statement.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${STATEMENT_ROWS:-10000000}
out=bench/results/statement.txt
db=bench_statement
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT

start=$SECONDS
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION payext" >/dev/null
q -c "SELECT count(payext.open_wallet('sw' || g)) FROM generate_series(1, 1000) g" \
	-c "SELECT count(payext.open_merchant('gh_s' || g, 'Shop ' || g)) FROM generate_series(1, 5) g" >/dev/null
big=$(q -c "SELECT id FROM payext.account WHERE public_service_id = 'gh_s1'")
# Pairs that cancel out (money there and back), a year of them, every
# fifth pair the big merchant's with a wallet, the others between wallets.
q -v rows="$rows" -v big="$big" >/dev/null <<'SQL'
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
INSERT INTO payext.transfer (id, debit_account, credit_account, amount, currency, kind,
                             idem_scope, reference, created_at, checksum)
SELECT id, d, c, 100, 'CNY', 'transfer', 0, NULL, at,
       payext.transfer_checksum(id, d, c, 100, 'CNY', 'transfer', 0, NULL, at)
  FROM (SELECT nextval('payext.transfer_id_seq') AS id, g,
               CASE WHEN (g / 2) % 5 = 0 THEN :big ELSE 1 + (g / 2) % 1000 END AS a,
               1 + (g / 2 + 7) % 1000 AS b,
               now() - interval '366 days' + make_interval(secs => g * (31536000.0 / :rows)) AS at
          FROM generate_series(0, (:rows / 2) * 2 - 1) g) s,
       LATERAL (SELECT CASE WHEN g % 2 = 0 THEN b ELSE a END AS d,
                       CASE WHEN g % 2 = 0 THEN a ELSE b END AS c) p;
VACUUM ANALYZE;
SQL
loaded=$((SECONDS - start))
journal=$(q -c "SELECT count(*) FROM payext.transfer")
mine=$(q -c "SELECT count(*) FROM payext.transfer WHERE $big IN (debit_account, credit_account)")

# ms of one statement, as the server timed it.
ms() { q -c "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p'; }
median() { sort -n | sed -n 3p; }
day="date_trunc('day', now() - interval '100 days', 'UTC')"
# The merchant's history summed without a checkpoint (what balance_at
# costs once per day asked about), then balance_at's first call, which
# keeps the day's checkpoint, then the calls after it.
history_ms=$(ms "SELECT payext.journal_sum($big, '-infinity', $day)")
first_at=$(ms "SELECT payext.balance_at($big, $day)")
checkpoints=$(q -c "SELECT count(*) FROM payext.balance_checkpoint WHERE account = $big")
lines=$(q -c "SELECT count(*) FROM payext.merchant_statement($big, $day, $day + interval '1 day')")
at_ms=$(for _ in 1 2 3 4 5; do ms "SELECT payext.balance_at($big, $day + interval '13 hours')"; done | median)
stmt_ms=$(for _ in 1 2 3 4 5; do ms "SELECT count(*) FROM payext.merchant_statement($big, $day, $day + interval '1 day')"; done | median)
stmt_csv_ms=$(for _ in 1 2 3 4 5; do ms "SELECT * FROM payext.merchant_statement($big, $day, $day + interval '1 day', 'all')"; done | median)
ok=$(q -c "SELECT bool_and(ok) FROM payext.verify_ledger()")

mkdir -p bench/results
{
	echo "# bench/statement.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe --always --dirty)"
	echo "journal rows: $journal (loaded in ${loaded} s); the big merchant's: $mine"
	echo "a day's statement: $lines lines"
	echo "the merchant's history before that day, summed from its first movement: $history_ms ms"
	echo "balance_at at the day's start, first call (sums that history, keeps a checkpoint): $first_at ms"
	echo "checkpoints kept: $checkpoints"
	echo "balance_at inside that day, after (median of 5): $at_ms ms"
	echo "merchant_statement, one day, counted (median of 5): $stmt_ms ms"
	echo "merchant_statement, one day, every column (median of 5): $stmt_csv_ms ms"
	echo "verify_ledger() all ok: $ok"
} | tee "$out"
