#!/usr/bin/env bash
# Load through the router, inside scripts/with_partitions.sh 2 (test/router/
# run.sh runs it): pgbench clients issue codes and charge them through the
# router, the wallets spread over both partitions by their owners' hash, one
# merchant with an account on each; one transaction in ten moves money
# between two wallets (a saga across partitions), one in ten parks a car
# that pays at exit (a parking saga when the plate's partition is not the
# driver's).  Then, from the partitions themselves:
# every charge pgbench saw acknowledged is one payment (none lost, none
# twice, at most the last in flight unacknowledged), money is conserved
# across the partitions (what the wallets lost
# is what the merchant's accounts hold), and both partitions verify.
#
#   PAYEXT_ROUTER_LOAD_SECONDS (default 5), PAYEXT_ROUTER_LOAD_CLIENTS (8)
set -euo pipefail
cd "$(dirname "$0")"

seconds=${PAYEXT_ROUTER_LOAD_SECONDS:-5}
clients=${PAYEXT_ROUTER_LOAD_CLIENTS:-8}
wallets=64
seed=100000
suite=load
# shellcheck source=test/router/lib.sh
. ./lib.sh
read -r -a uris <<<"${PAYEXT_PARTITIONS:?run inside scripts/with_partitions.sh}"
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The population, through the router: wallets (their ids in a table of the
# router's database, for pgbench) and one merchant.
q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS public.load_wallet" \
	-c "CREATE TABLE public.load_wallet (i integer PRIMARY KEY, id bigint NOT NULL)" \
	-c "INSERT INTO public.load_wallet
	    SELECT g, payext.open_wallet('load-' || g) FROM generate_series(1, $wallets) g" \
	-c "SELECT count(payext.top_up(id, $seed, 'load-seed')) FROM public.load_wallet" >/dev/null
shop=$(q -c "SELECT payext.open_merchant('gh_load', 'Load Shop')")
# A car park on every partition, and a driver per client whose wallet is
# on the partition of its name's hash; each parking transaction binds a
# new plate (on the partition of its own hash) with automatic payment.
park=$(q -c "SELECT payext.open_merchant('gh_load_park', 'Load Park')")
lot=$(q -c "SELECT payext.create_parking_lot($park, 'Load Park', 'Asia/Shanghai', 0, 30, 100)")
q -c "SET client_min_messages = warning" -c "DROP SEQUENCE IF EXISTS public.load_plate_seq" \
	-c "CREATE SEQUENCE public.load_plate_seq" \
	-c "SELECT count(payext.top_up(payext.open_wallet('lpark-' || g), $seed, 'lpark-seed'))
	      FROM generate_series(0, $clients - 1) g" >/dev/null
spread=$(q -c "SELECT string_agg(n::text, '/' ORDER BY p) FROM (SELECT payext.partition_of(id) p, count(*) n
                FROM public.load_wallet GROUP BY 1) s")

cat >"$work/charge.sql" <<EOF
\set w random(1, $wallets)
\set r random(1, 1000000000000)
SELECT id AS wallet FROM public.load_wallet WHERE i = :w \gset
SELECT payext.request_payment(:wallet) AS code \gset
SELECT payext.charge($shop, ':code', 100, 'load-' || :client_id || '-' || :r);
EOF
# One transaction in ten is a batch of two through charge_many(); the
# division fails the transaction (and pgbench) unless both items charged.
cat >"$work/batch.sql" <<EOF
\set w1 random(1, $wallets)
\set w2 random(1, $wallets)
\set r random(1, 1000000000000)
SELECT id AS wa FROM public.load_wallet WHERE i = :w1 \gset
SELECT id AS wb FROM public.load_wallet WHERE i = :w2 \gset
SELECT payext.request_payment(:wa) AS ca \gset
SELECT payext.request_payment(:wb) AS cb \gset
SELECT 1 / (count(*) - 1)::integer FROM payext.charge_many($shop, ARRAY[':ca', ':cb'], ARRAY[100, 100]::bigint[],
       ARRAY['load-b' || :client_id || '-' || :r || '-1', 'load-b' || :client_id || '-' || :r || '-2'])
 WHERE transfer_id IS NOT NULL;
EOF
# And one in ten a transfer of 0.50 between two wallets, a saga when they
# are on different partitions (half the time), under its own reference.
cat >"$work/transfer.sql" <<EOF
\set w1 random(1, $wallets)
\set w2 1 + (:w1 + random(0, $wallets - 2)) % $wallets
\set r random(1, 1000000000000)
SELECT id AS wa FROM public.load_wallet WHERE i = :w1 \gset
SELECT id AS wb FROM public.load_wallet WHERE i = :w2 \gset
SELECT payext.transfer(:wa, :wb, 50, 'load-t' || :client_id || '-' || :r);
EOF
# And one in ten parks: a new plate bound with automatic payment, an
# entry 40 minutes ago, an exit a minute ago (2 units of 1.00), paid at
# exit from the driver's wallet, by a parking saga when the plate and the
# driver are on different partitions; then the plate is unbound.
cat >"$work/parking.sql" <<EOF
SELECT 'LP' || nextval('public.load_plate_seq') AS plate \gset
SELECT payext.bind_vehicle('lpark-' || :client_id, ':plate', true);
SELECT payext.vehicle_entered($lot, ':plate', now() - interval '40 minutes');
SELECT payext.vehicle_exited($lot, ':plate', now() - interval '1 minute');
SELECT payext.unbind_vehicle('lpark-' || :client_id, ':plate');
EOF
start=$(q -c "SELECT now()")
out=$("$bindir/pgbench" -n -c "$clients" -j 2 -T "$seconds" -f "$work/charge.sql@7" \
	-f "$work/batch.sql@1" -f "$work/transfer.sql@1" -f "$work/parking.sql@1" 2>&1) ||
	{ echo "$out"; fail "pgbench failed"; }
singles=$(sed -n '/^SQL script 1:/,/^SQL script 2:/s/^ - \([0-9]*\) transactions.*/\1/p' <<<"$out")
batches=$(sed -n '/^SQL script 2:/,/^SQL script 3:/s/^ - \([0-9]*\) transactions.*/\1/p' <<<"$out")
transfers=$(sed -n '/^SQL script 3:/,/^SQL script 4:/s/^ - \([0-9]*\) transactions.*/\1/p' <<<"$out")
parked=$(sed -n '/^SQL script 4:/,$s/^ - \([0-9]*\) transactions.*/\1/p' <<<"$out")
# A saga a client was in when the time ran out is finished, as the worker
# would.
q -c "SELECT payext.resume_sagas('0')" >/dev/null
sagas=$(q -c "SELECT count(*) FROM payext.sagas() WHERE created_at >= '$start'")
[ "$(q -c "SELECT count(*) FROM payext.sagas(true)")" = 0 ] || fail "sagas left open"
[ "$(q -c "SELECT sum(balance) FROM generate_series(0, payext.router_partitions() - 1) p,
                                  payext.clearing_on(p)")" = 0 ] ||
	fail "the clearing accounts do not add up to zero"
[ "$sagas" -gt 0 ] || fail "no transfer crossed partitions"
[ "$sagas" -le "$((transfers + parked + clients))" ] ||
	fail "$sagas sagas for $transfers transfers and $parked stays acknowledged"
acked=$((singles + 2 * batches))
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
if [ -z "$acked" ] || [ "$acked" = 0 ]; then
	echo "$out"
	fail "no transaction processed"
fi

# From the partitions: payments, what wallets lost, what the merchant holds.
payments=0
lost=0
stays=0
paid_stays=0
fees=0
drivers_lost=0
for uri in "${uris[@]}"; do
	read -r n p f d < <(psql -X -q -At -F ' ' -d "$uri" -c "
		SELECT count(*), count(*) FILTER (WHERE s.state = 'exited' AND s.paid = s.fee),
		       coalesce(sum(s.paid), 0),
		       (SELECT coalesce(sum($seed - balance), 0) FROM payext.account
		         WHERE kind = 'wallet' AND owner LIKE 'lpark-%')
		  FROM payext.parking_stay s JOIN payext.parking_lot l ON l.id = s.lot
		 WHERE l.name = 'Load Park'")
	stays=$((stays + n))
	paid_stays=$((paid_stays + p))
	fees=$((fees + f))
	drivers_lost=$((drivers_lost + d))
	read -r n l < <(psql -X -q -At -F ' ' -d "$uri" -c "
		SELECT (SELECT count(*) FROM payext.payment WHERE order_ref LIKE 'load-%'),
		       (SELECT coalesce(sum($seed - balance), 0) FROM payext.account
		         WHERE kind = 'wallet' AND owner LIKE 'load-%')")
	payments=$((payments + n))
	lost=$((lost + l))
	bad=$(psql -X -q -At -d "$uri" -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")
	[ "$bad" = 0 ] || fail "verify_ledger fails on $uri"
done
[ "$(q -c "SELECT ok FROM payext.verify_ledger() WHERE check_name = 'clearing_matches_sagas'")" = t ] ||
	fail "the router's clearing_matches_sagas fails"
held=$(q -c "SELECT payext.balance($shop)")
# pgbench counts a transaction only once it has its answer; one in flight
# when the time is up (at most a batch of two per client) may have been
# charged unacknowledged.  Nothing acknowledged may be missing, nothing may
# be charged beyond that.
[ "$payments" -ge "$acked" ] ||
	fail "pgbench acknowledged $acked charges, the partitions hold only $payments payments"
[ "$payments" -le $((acked + 2 * clients)) ] ||
	fail "the partitions hold $payments payments, more than the $acked acknowledged and $((2 * clients)) in flight"
[ "$lost" = $((payments * 100)) ] || fail "wallets lost $lost, $payments payments of 100 were made"
[ "$held" = "$lost" ] || fail "the merchant holds $held, the wallets lost $lost"
[ "$parked" -gt 0 ] || fail "no stay was parked"
if [ "$stays" -lt "$parked" ] || [ "$stays" -gt $((parked + clients)) ]; then
	fail "pgbench acknowledged $parked stays, the partitions hold $stays"
fi
[ "$paid_stays" = "$stays" ] || fail "$stays stays, only $paid_stays paid in full at exit"
[ "$fees" = $((stays * 200)) ] || fail "$stays stays of 2.00 paid $fees"
[ "$drivers_lost" = "$fees" ] || fail "the drivers lost $drivers_lost, the stays were paid $fees"
[ "$(q -c "SELECT payext.balance($park)")" = "$fees" ] || fail "the car park does not hold the $fees paid"
echo "router load: $clients clients, ${seconds} s, $acked charges acknowledged ($singles single, $batches batches of 2; $payments payments, $((payments - acked)) in flight at the end), $transfers transfers and $parked stays paid at exit ($sagas sagas across partitions) (${failed:-0} failed, $tps a second) over wallets $spread on partitions 0/1: each charge one payment, the merchant's accounts hold what the wallets lost (transfers net to zero), every stay paid once, the car park holds what the drivers lost, the clearing accounts add up to zero, every partition verifies"
