#!/usr/bin/env bash
# What a saga costs (issue 16): the router's transfer between two wallets
# of one partition (that partition's transfer, one remote call) against
# one between wallets of two partitions (a saga: first leg and outbox row,
# the outbox read back, second leg, last step: four remote calls, three
# of them writes), on 2 partitions behind a router, 8 pgbench clients,
# synchronous_commit off on the partitions.  Writes bench/results/sagas.txt;
# bench/NOTES.md says what it means.
#
#   bench/sagas.sh        # BENCH_SECONDS (15)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PAYEXT_PARTITIONS:-}" ]; then
	exec scripts/with_partitions.sh 2 "$0" "$@"
fi
seconds=${BENCH_SECONDS:-15}
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
read -r -a uris <<<"$PAYEXT_PARTITIONS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

for uri in "${uris[@]}"; do
	q -d "$uri" -c "ALTER DATABASE $(q -d "$uri" -c 'SELECT current_database()') SET synchronous_commit = off"
done
# 1 024 wallets of 1 000 000.00 on each partition, through the router.
q -c "SET client_min_messages = warning" \
	-c "CREATE TABLE public.bench_wallet (p integer, i integer, id bigint NOT NULL, PRIMARY KEY (p, i))" \
	-c "INSERT INTO public.bench_wallet
	    SELECT w.p, row_number() OVER (PARTITION BY w.p ORDER BY w.o), payext.open_wallet(w.o)
	      FROM (SELECT o, payext.route_owner(o) AS p FROM generate_series(1, 2400) g,
	                   format('saga-bench-%s', g) o) w" \
	-c "DELETE FROM public.bench_wallet WHERE i > 1024" \
	-c "SELECT count(payext.top_up(id, 100000000, 'seed')) FROM public.bench_wallet" \
	-c "ANALYZE public.bench_wallet" >/dev/null
[ "$(q -c "SELECT count(*) FROM public.bench_wallet")" = 2048 ] || { echo "sagas: too few wallets" >&2; exit 1; }
for uri in "${uris[@]}"; do q -d "$uri" -c "VACUUM ANALYZE" >/dev/null; done

# local: both wallets on the payer's partition; saga: the payee on the other.
for kind in local saga; do
	other=':p'
	[ "$kind" = saga ] && other='1 - :p'
	cat >"$work/$kind.sql" <<SQL
\set p random(0, 1)
\set a random(1, 1024)
\set b 1 + (:a + random(0, 1022)) % 1024
\set r random(1, 1000000000000)
SELECT id AS wa FROM public.bench_wallet WHERE p = :p AND i = :a \gset
SELECT id AS wb FROM public.bench_wallet WHERE p = $other AND i = :b \gset
SELECT payext.transfer(:wa, :wb, 1, 'sb' || :client_id || '-' || :r);
SQL
done
{
	echo "bench/sagas.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, 2 partitions, 8 clients, ${seconds} s a run"
	for kind in local saga local saga; do
		out=$("$bindir/pgbench" -n -c 8 -j 2 -T "$seconds" -f "$work/$kind.sql" 2>&1) || { echo "$out" >&2; exit 1; }
		printf '%-6s %10s transfers/s\n' "$kind" "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")"
	done
	echo "open sagas after the runs: $(q -c "SELECT count(*) FROM payext.sagas(true)")"
	echo "verify_ledger: $(q -c "SELECT count(*) FILTER (WHERE NOT ok) || ' failing of ' || count(*) FROM payext.verify_ledger()")"
} | tee bench/results/sagas.txt
