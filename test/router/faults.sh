#!/usr/bin/env bash
# The router's faults, inside scripts/with_partitions.sh 2 (test/router/run.sh
# runs it after the pg_regress story):
#
#  1. Partition 1 down: its calls are PY504 ("cannot be reached; the outcome
#     is unknown, retry with the same reference"), never XX000; partition 0
#     keeps serving, wallets, codes and charges alike.
#  2. Partition 1 back: the retry with the same reference moves the money
#     once; a parking lot made while it was down (PY504) is mended by
#     making it again, which takes up partition 0's half-made lot.
#  3. Partition 1 killed while a top-up waits there for a row lock: PY504;
#     after the restart, the retry with the same reference moves it once.
#  4. Both partitions verify.
#  5. A wallet, and 6. a plate, put on the wrong partition behind the
#     router's back: verify_ledger's placement_owners finds each.
set -euo pipefail

suite=faults
# shellcheck source=test/router/lib.sh
. "$(dirname "$0")/lib.sh"

read -r -a datas <<<"${PAYEXT_PARTITION_DATA:?run inside scripts/with_partitions.sh 2}"
read -r -a uris <<<"$PAYEXT_PARTITIONS"
[ "${#datas[@]}" = 2 ] || fail "needs 2 partitions, has ${#datas[@]}"
# PAYEXT_PGCTL is a command with its arguments (runuser ... pg_ctl).
read -r -a pgctl <<<"$PAYEXT_PGCTL"
p1_stop() { "${pgctl[@]}" -D "${datas[1]}" -m immediate stop >/dev/null; }
p1_start() { "${pgctl[@]}" -D "${datas[1]}" -l "${datas[1]}.log" -w -t 60 start >/dev/null; }

# A user of each partition, by the router's hash.
owner_on() { q -c "SELECT o FROM generate_series(1, 1000) g, format('fault-%s', g) o
                    WHERE payext.route_owner(o) = $1 LIMIT 1"; }
w0=$(q -c "SELECT payext.open_wallet('$(owner_on 0)')")
w1=$(q -c "SELECT payext.open_wallet('$(owner_on 1)')")
[ "$(q -c "SELECT payext.partition_of($w0), payext.partition_of($w1)")" = "0|1" ] ||
	fail "wallets not on partitions 0 and 1"
q -c "SELECT payext.top_up($w0, 10000, 'fault-in-0'), payext.top_up($w1, 10000, 'fault-in-1')" >/dev/null
shop=$(q -c "SELECT payext.open_merchant('gh_fault', 'Fault Shop')")

# 1. Partition 1 down.
p1_stop
st=$(sqlstate "SELECT payext.top_up($w1, 100, 'fault-a')")
[ "$st" = PY504 ] || fail "top-up on a stopped partition: $st, not PY504"
st=$(sqlstate "SELECT payext.balance($w1)")
[ "$st" = PY504 ] || fail "balance on a stopped partition: $st, not PY504"
st=$(sqlstate "SELECT * FROM payext.verify_ledger()")
[ "$st" = PY504 ] || fail "verify_ledger with a stopped partition: $st, not PY504"
[ "$(sqlstate "SELECT payext.top_up($w0, 100, 'fault-b')")" = ok ] ||
	fail "partition 0 refused a top-up while partition 1 was down"
code0=$(q -c "SELECT payext.request_payment($w0)")
# An order whose claim, too, is on partition 0 (the claim's partition is a
# hash of the merchant and the reference).
order0=$(q -c "SELECT r FROM generate_series(1, 200) g, format('fault-order-%s', g) r
               WHERE payext.route_reference($shop, r) = 0 LIMIT 1")
[ "$(sqlstate "SELECT payext.charge($shop, '$code0', 300, '$order0')")" = ok ] ||
	fail "partition 0 refused a charge while partition 1 was down"
# The pure helpers answer from whichever partition is up (each call starts
# at a random one).
for _ in 1 2 3 4 5 6; do
	[ "$(q -c "SELECT payext.format_amount(1234, 'CNY'), payext.partition_of($w1),
	                  (SELECT count(*) FROM payext.currencies())")" = "12.34 CNY|1|42" ] ||
		fail "a pure helper failed while partition 1 was down"
done
# A lot made while partition 1 is down: PY504, partition 0's lot made
# already (PL/Proxy's calls are not one transaction).
st=$(sqlstate "SELECT payext.create_parking_lot($shop, 'Fault Park', 'Asia/Shanghai', 0, 30, 100)")
[ "$st" = PY504 ] || fail "a lot made while partition 1 was down: $st, not PY504"
echo "router faults: partition 1 down: its calls PY504, partition 0 served a top-up, a charge and the pure helpers"

# 2. Back: the retry moves the money once.
p1_start
a1=$(q -c "SELECT payext.top_up($w1, 100, 'fault-a')")
a2=$(q -c "SELECT payext.top_up($w1, 100, 'fault-a')")
[ "$a1" = "$a2" ] || fail "the retried top-up gave two transfers: $a1, $a2"
[ "$(q -c "SELECT payext.balance($w1)")" = 10100 ] || fail "after the retry, balance $(q -c "SELECT payext.balance($w1)"), not 10100"
# The lot again: the call mends the first, taking up partition 0's lot.
lot=$(q -c "SELECT payext.create_parking_lot($shop, 'Fault Park', 'Asia/Shanghai', 0, 30, 100)")
[ "$(q -d "${uris[0]}" -c "SELECT count(*) FROM payext.parking_lot WHERE name = 'Fault Park'")" = 1 ] ||
	fail "the lot made again left a second lot on partition 0"
[ "$(q -c "SELECT count(*) FROM payext.lot_map WHERE lot = $lot")" = 2 ] ||
	fail "the lot made again is not on both partitions"
echo "router faults: partition 1 back: the retry with the same reference moved 1.00 once; the lot made again took up partition 0's"

# cut_off AMOUNT REF CUT...: a session on partition 1 holds w1's row, a
# routed top-up of AMOUNT under REF waits for it there, then CUT runs (it
# stops the partition or ends the waiting backend); prints the top-up's
# SQLSTATE.
cut_off() {
	local amount=$1 ref=$2 holder caller
	shift 2
	psql -X -q -d "${uris[1]}" -c "BEGIN" \
		-c "SELECT 1 FROM payext.account WHERE id = $w1 FOR UPDATE" -c "SELECT pg_sleep(60)" \
		>/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 100); do
		[ "$(psql -X -At -d "${uris[1]}" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")" = 1 ] && break
		sleep 0.1
	done
	sqlstate "SELECT payext.top_up($w1, $amount, '$ref')" >"${datas[1]}.inflight" &
	caller=$!
	for _ in $(seq 100); do
		[ "$(psql -X -At -d "${uris[1]}" -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")" = 1 ] && break
		sleep 0.1
	done
	[ "$(psql -X -At -d "${uris[1]}" -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")" = 1 ] ||
		fail "the routed top-up never waited on partition 1"
	"$@"
	wait "$caller" || true
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	cat "${datas[1]}.inflight"
}
terminate_waiter() {
	psql -X -q -At -d "${uris[1]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'" >/dev/null
}

# 3. Killed during a call: partition 1 stops while the top-up waits there.
st=$(cut_off 250 fault-c p1_stop)
[ "$st" = PY504 ] || fail "a top-up cut off by its partition's crash: $st, not PY504"
p1_start
b1=$(q -c "SELECT payext.top_up($w1, 250, 'fault-c')")
b2=$(q -c "SELECT payext.top_up($w1, 250, 'fault-c')")
[ "$b1" = "$b2" ] || fail "the retried top-up gave two transfers: $b1, $b2"
[ "$(q -c "SELECT payext.balance($w1)")" = 10350 ] || fail "after the crash and retry, balance $(q -c "SELECT payext.balance($w1)"), not 10350"
echo "router faults: partition 1 killed during a top-up: PY504; the retry moved 2.50 once"

# 3b. The partition's backend terminated during a call (pg_terminate_backend,
# a fast shutdown, a failover): PY504 too, not the partition's 57P01.
st=$(cut_off 75 fault-d terminate_waiter)
[ "$st" = PY504 ] || fail "a top-up whose partition backend was terminated: $st, not PY504"
d1=$(q -c "SELECT payext.top_up($w1, 75, 'fault-d')")
[ "$(q -c "SELECT payext.top_up($w1, 75, 'fault-d')")" = "$d1" ] || fail "the retried top-up gave two transfers"
[ "$(q -c "SELECT payext.balance($w1)")" = 10425 ] || fail "after the terminated call and retry, balance $(q -c "SELECT payext.balance($w1)"), not 10425"
echo "router faults: partition 1's backend terminated during a top-up: PY504; the retry moved 0.75 once"

# 4. Both partitions verify.
bad=$(q -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")
n=$(q -c "SELECT count(DISTINCT check_name) FROM payext.verify_ledger()")
if [ "$bad" != 0 ] || [ "$n" = 0 ]; then fail "verify_ledger: $bad failing checks of $n"; fi
echo "router faults: ok, verify_ledger holds on both partitions"

# 5. A wallet opened on partition 0 directly, for an owner that hashes to
# partition 1: the router's verify_ledger finds it out of place.
stray=$(owner_on 1)-stray
for _ in $(seq 50); do
	[ "$(q -c "SELECT payext.route_owner('$stray')")" = 0 ] || break
	stray=${stray}x
done
id=$(psql -X -q -At -d "${uris[0]}" -c "SELECT payext.open_wallet('$stray')")
[ "$(q -c "SELECT ok FROM payext.verify_ledger() WHERE check_name = 'placement_owners' AND NOT ok")" = f ] ||
	fail "verify_ledger did not find wallet $id of '$stray' out of place on partition 0"
psql -X -q -d "${uris[0]}" -c "DELETE FROM payext.account WHERE id = $id"
[ "$(q -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")" = 0 ] ||
	fail "verify_ledger still fails after the stray wallet went"
echo "router faults: a wallet on the wrong partition: verify_ledger's placement_owners fails; without it, all hold"

# 6. Likewise a plate bound on partition 0 directly that hashes to
# partition 1.
plate=$(q -c "SELECT pl FROM generate_series(1, 200) g, format('粤F%s', 20000 + g) pl
               WHERE payext.route_plate(pl) = 1 LIMIT 1")
psql -X -q -d "${uris[0]}" -c "SELECT payext.bind_vehicle('fault-plate-owner', '$plate')" >/dev/null
[ "$(q -c "SELECT ok FROM payext.verify_ledger() WHERE check_name = 'placement_owners' AND NOT ok")" = f ] ||
	fail "verify_ledger did not find plate $plate out of place on partition 0"
psql -X -q -d "${uris[0]}" -c "SELECT payext.unbind_vehicle('fault-plate-owner', '$plate')" >/dev/null
[ "$(q -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")" = 0 ] ||
	fail "verify_ledger still fails after the stray plate went"
echo "router faults: a plate bound on the wrong partition: placement_owners fails; unbound, all hold"
