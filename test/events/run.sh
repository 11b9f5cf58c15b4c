#!/usr/bin/env bash
# Events from a real client: a psql session LISTENs on a merchant's channel
# (event_channel()) while another session charges, refunds, reverses,
# captures holds, commits and rolls back.  What the listener received,
# with process ids, the channel's keyed name and times masked, must be
# exactly test/events/expected.out: one JSON notice per committed charge,
# refund, reversal and capture of that merchant, in commit order; none for
# a hold itself, a rolled-back transaction, a refused call, a batch's
# refused item or another merchant.
# Runs against the server in PGHOST/PGPORT (scripts/run_suites.sh: events);
# PAYEXT_EVENTS_ACCEPT=1 rewrites expected.out, for review line by line.
set -euo pipefail
cd "$(dirname "$0")"
db=payext_events
work=$(mktemp -d)
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
dropdb --if-exists "$db" >/dev/null 2>&1 || true
createdb "$db"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

q -c "SET client_min_messages = warning" -c "CREATE EXTENSION payext" \
	-c "SELECT setval('payext.account_id_seq', 100), setval('payext.transfer_id_seq', 100)" >/dev/null
wallet=$(q -c "SELECT payext.open_wallet('ev_ann')")
shop=$(q -c "SELECT payext.open_merchant('gh_ev_shop', 'Shop')")
other=$(q -c "SELECT payext.open_merchant('gh_ev_other', 'Other')")
q -c "SELECT payext.top_up($wallet, 10000, 'ev-bank')" >/dev/null
channel=$(q -c "SELECT payext.event_channel($shop)")
q -c "SELECT payext.event_channel($other)" >/dev/null

# The listener: notices arrive during its sleep; psql prints them after it.
psql -X -d "$db" -c "LISTEN \"$channel\"" -c "SELECT pg_sleep(8)" >"$work/listener.out" 2>&1 &
listener=$!
sleep 1

code() { q -c "SELECT payext.request_payment($wallet)"; }
{
	# A charge, committed; its retry moves nothing and announces nothing.
	c=$(code)
	q -c "SELECT payext.charge($shop, '$c', 1500, 'ev-1')"
	q -c "SELECT payext.charge($shop, '$c', 1500, 'ev-1')"
	# A charge rolled back after it succeeded.
	c=$(code)
	q -c "BEGIN" -c "SELECT payext.charge($shop, '$c', 700, 'ev-2')" -c "ROLLBACK"
	# A refused charge (more than the wallet holds), another merchant's
	# charge, and a batch with one item refused.
	q -c "SELECT payext.charge($shop, '$(code)', 999999, 'ev-3')" || true
	q -c "SELECT payext.charge($other, '$(code)', 200, 'ev-4')"
	q -c "SELECT count(*) FROM payext.charge_many($shop, ARRAY['$(code)', '000000000000000000'],
	       ARRAY[300, 300]::bigint[], ARRAY['ev-5', 'ev-6'])"
	# A refund, and reversals: of a charged order, and of one never charged.
	q -c "SELECT payext.refund($shop, 'ev-1', 500, 'ev-1-r1')"
	q -c "SELECT payext.reverse_charge($shop, 'ev-1')"
	q -c "SELECT payext.reverse_charge($shop, 'ev-7')"
	# A hold announces nothing; its capture is announced (but for a
	# rolled-back one), with the hold's order.
	h=$(q -c "SELECT payext.authorize($shop, '$(code)', 800, 'ev-8')")
	q -c "BEGIN" -c "SELECT payext.capture_hold($shop, $h, 100, 'ev-8-c0')" -c "ROLLBACK"
	q -c "SELECT payext.capture_hold($shop, $h, 300, 'ev-8-c1')"
} >"$work/actor.out" 2>&1
wait "$listener"

# The notices, masked: the channel's name, the process id, the time.
grep '^Asynchronous notification' "$work/listener.out" |
	sed -e "s/$channel/CHANNEL/" -e 's/process with PID [0-9]*/process with PID N/' \
		-e 's/"created_at": "[^"]*"/"created_at": "T"/' >"$work/received.out"
[ "${PAYEXT_EVENTS_ACCEPT:-0}" != 1 ] || cp "$work/received.out" expected.out
if ! diff -u expected.out "$work/received.out"; then
	echo "events: the listener received otherwise than test/events/expected.out"
	cat "$work/listener.out"
	exit 1
fi
# The channel is the merchant's own, stable, and another merchant's differs.
[[ $channel =~ ^payext_events_[0-9a-f]{32}$ ]] || { echo "events: channel $channel"; exit 1; }
[ "$(q -c "SELECT payext.event_channel($shop)")" = "$channel" ] || { echo "events: channel changed"; exit 1; }
[ "$(q -c "SELECT payext.event_channel($other)")" != "$channel" ] || { echo "events: shared channel"; exit 1; }
echo "events: $(grep -c . "$work/received.out") notices, as expected"
