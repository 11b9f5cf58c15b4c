#!/usr/bin/env bash
# Sagas under faults, inside scripts/with_partitions.sh 2 (test/router/run.sh
# runs it after faults.sh).  Each case moves money from a wallet of
# partition 1 to one of partition 0 with the router's transfer:
#
#  1. The receiving partition down: the call is PY504 and the money is in
#     flight on partition 1's clearing account; once the partition is back,
#     the retry with the same reference delivers it, once.
#  2. The saga worker (resume_sagas) terminated while the second leg waits
#     on partition 0: the next run finishes the saga, once.
#  3. The router killed (kill -9, via an immediate stop) while the second
#     leg waits: the client learns nothing; after the restart nobody
#     retries, and pg_cron's job finishes the saga within two minutes.
#  4. Afterwards each partition's legs match its journal, every currency's
#     clearing balances add up to zero, and the wallets hold exactly what
#     the three sagas moved.
set -euo pipefail

suite=sagas
# shellcheck source=test/router/lib.sh
. "$(dirname "$0")/lib.sh"

read -r -a datas <<<"${PAYEXT_PARTITION_DATA:?run inside scripts/with_partitions.sh 2}"
read -r -a uris <<<"$PAYEXT_PARTITIONS"
[ "${#datas[@]}" = 2 ] || fail "needs 2 partitions, has ${#datas[@]}"
read -r -a pgctl <<<"$PAYEXT_PGCTL"
router=${PAYEXT_ROUTER_DATA:?}
p0_stop() { "${pgctl[@]}" -D "${datas[0]}" -m immediate stop >/dev/null; }
p0_start() { "${pgctl[@]}" -D "${datas[0]}" -l "${datas[0]}.log" -w -t 60 start >/dev/null; }
router_kill() { "${pgctl[@]}" -D "$router" -m immediate stop >/dev/null; }
router_start() { "${pgctl[@]}" -D "$router" -l "$router.log" -w -t 60 start >/dev/null; }
[ "$(q -c "SELECT count(*) FROM cron.job WHERE jobname = 'payext-resume-sagas'")" = 1 ] ||
	fail "the router has no pg_cron job payext-resume-sagas (is postgresql-15-cron installed?)"

owner_on() { q -c "SELECT o FROM generate_series(1, 1000) g, format('saga-fault-%s', g) o
                    WHERE payext.route_owner(o) = $1 LIMIT 1"; }
w0=$(q -c "SELECT payext.open_wallet('$(owner_on 0)')")
w1=$(q -c "SELECT payext.open_wallet('$(owner_on 1)')")
q -c "SELECT payext.top_up($w1, 10000, 'saga-fault-in')" >/dev/null
balances() { q -c "SELECT payext.balance($w1) || ' ' || payext.balance($w0)"; }
saga_state() { # REF: the state of the saga of w1's transfer REF (on partition 1)
	q -c "SELECT state FROM payext.saga_on(1, payext.saga_id_of(1, 'transfer', $w1,
	                                                            payext.saga_id('transfer', '$1')))"
}

# 1. The receiving partition down.
p0_stop
st=$(sqlstate "SELECT payext.transfer($w1, $w0, 100, 'sf-1')")
[ "$st" = PY504 ] || fail "a transfer to a stopped partition: $st, not PY504"
[ "$(saga_state sf-1)" = open ] || fail "saga sf-1 is $(saga_state sf-1), not open"
[ "$(q -d "${uris[1]}" -c "SELECT payext.balance($w1)")" = 9900 ] ||
	fail "the money did not leave partition 1 while partition 0 was down"
p0_start
t1=$(q -c "SELECT payext.transfer($w1, $w0, 100, 'sf-1')")
[ "$(q -c "SELECT payext.transfer($w1, $w0, 100, 'sf-1')")" = "$t1" ] ||
	fail "the retried transfer gave another transfer"
[ "$(balances)" = "9900 100" ] || fail "after the retry: $(balances), not 9900 100"
echo "router sagas: receiving partition down: PY504, money in flight; the retry delivered 1.00 once"

# hold_w0 CMD...: a session on partition 0 holds w0's row while CMD runs in
# the background and its second leg waits there for the lock; then runs
# what follows on the command line of the caller (see below).
holder=
hold_w0() {
	psql -X -q -d "${uris[0]}" -c "BEGIN" \
		-c "SELECT 1 FROM payext.account WHERE id = $w0 FOR UPDATE" -c "SELECT pg_sleep(60)" \
		>/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 100); do
		[ "$(q -d "${uris[0]}" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")" = 1 ] && return
		sleep 0.1
	done
	fail "the holding session never started"
}
wait_for_leg_2() {
	for _ in $(seq 150); do
		[ "$(q -d "${uris[0]}" -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")" = 1 ] && return
		sleep 0.1
	done
	fail "the second leg never waited on partition 0"
}
release_w0() {
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	q -d "${uris[0]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	                       WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
}

# 2. The worker terminated mid-saga.  The saga's first leg ran alone (as if
# a router had been lost after it), then the worker's second leg waits.
q -c "SELECT payext.saga_send_on(1, payext.saga_id('transfer', 'sf-2'), $w1, 200, 0, $w0)" >/dev/null
hold_w0
psql -X -q -c "SET application_name = 'saga-worker'" -c "SELECT payext.resume_sagas('0')" >/dev/null 2>&1 &
worker=$!
wait_for_leg_2
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'saga-worker'" >/dev/null
wait "$worker" || true
release_w0
[ "$(saga_state sf-2)" = open ] || fail "saga sf-2 is $(saga_state sf-2) after its worker died, not open"
[ "$(q -c "SELECT payext.resume_sagas('0')")" -ge 1 ] || fail "the next worker finished nothing"
[ "$(saga_state sf-2)" = "done" ] || fail "saga sf-2 is $(saga_state sf-2), not done"
[ "$(balances)" = "9700 300" ] || fail "after the worker's rerun: $(balances), not 9700 300"
echo "router sagas: worker terminated during the second leg: the next run delivered 2.00 once"

# 3. The router killed mid-saga; nobody retries; pg_cron finishes it.
hold_w0
psql -X -q -c "SELECT payext.transfer($w1, $w0, 400, 'sf-3')" >/dev/null 2>&1 &
caller=$!
wait_for_leg_2
router_kill
wait "$caller" && fail "the transfer returned although its router was killed"
release_w0
router_start
for _ in $(seq 150); do
	[ "$(saga_state sf-3)" = "done" ] && break
	sleep 1
done
[ "$(saga_state sf-3)" = "done" ] || fail "saga sf-3 is $(saga_state sf-3) 150 s after the router's restart, not done"
[ "$(balances)" = "9300 700" ] || fail "after pg_cron's run: $(balances), not 9300 700"
echo "router sagas: router killed during the second leg: pg_cron's job delivered 4.00 once"

# 4. Everything verifies; nothing is in flight.
bad=$(q -c "SELECT string_agg(check_name || ': ' || detail, '; ') FROM payext.verify_ledger() WHERE NOT ok")
[ -z "$bad" ] || fail "verify_ledger: $bad"
[ "$(q -c "SELECT count(*) FROM payext.sagas(true)")" = 0 ] || fail "sagas still open"
[ "$(q -c "SELECT sum(balance) FROM generate_series(0, 1) p, payext.clearing_on(p)")" = 0 ] ||
	fail "the clearing accounts do not add up to zero"
echo "router sagas: ok, every leg in its journal, the clearing accounts add up to zero"
