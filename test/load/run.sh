#!/usr/bin/env bash
# Multi-client load against the server in PGHOST/PGPORT, once under each
# isolation level.  test/load/driver.c runs 8 clients, each on its own
# connection, mixing top-ups, charges (codes as one statement, one
# transaction or two; capped codes; charge retries; re-use of paid codes;
# batches through charge_many(), with items refused on purpose and resent),
# partial refunds (retries, over-refunds), withdrawals (payouts, cash-outs,
# retries), parking (auto-pay at exit; the app paying what
# parking_service_info shows, and paying again) and, about one call in
# eight, holds (authorize, some expiring within 1-3 s; partial and final
# captures; voids; captures retried; captures and holds refused on
# purpose), retrying 40001/40P01 as a client would.  Each client logs every
# call the server acknowledged.
#
# While it runs, another session calls verify_ledger() every second.  After
# it, test/load/verify.sql proves from the clients' logs that nothing
# acknowledged was lost, nothing was paid twice, and every balance is what
# the acknowledged calls say; that every acknowledged capture is its hold's,
# a hold's captures add up to its captured, never above its amount, and no
# wallet holds less than its live holds reserve.  Then a self-test feeds the
# checker forged acknowledgements (and, on a single node, one forged hold)
# and expects it to fail on each.
#
#   PAYEXT_LOAD_SECONDS (default 10) per isolation level
#   PAYEXT_LOAD_CLIENTS (default 8)
#   PAYEXT_LOAD_SELFTEST (default 1; 0 skips the checker's self-test)
#   PAYEXT_LOAD_ROUTER (default 0; 1: through the router of
#     scripts/with_partitions.sh, in its database PGDATABASE, on fresh
#     partitions: test/router/run.sh runs it so)
#
# Through a router each call runs on its partition in a transaction of
# its own there, at the partition's default level, whatever the client's
# transaction: the load runs once, under READ COMMITTED.  Sagas still in
# flight after it are finished (resume_sagas()) before the checks, which
# then also find every clearing account back at zero.  A merchant's payout
# through a router is PY111 (merchant_settle pays merchants there): the
# driver's payouts are refused, its cash-outs are not.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${PAYEXT_LOAD_SECONDS:-10}
clients=${PAYEXT_LOAD_CLIENTS:-8}
selftest=${PAYEXT_LOAD_SELFTEST:-1}
router=${PAYEXT_LOAD_ROUTER:-0}
driver=$(test/load/build.sh)
work=$(mktemp -d)
if [ "$router" = 1 ]; then
	[ -n "${PAYEXT_PARTITIONS:-}" ] || { echo "load: PAYEXT_LOAD_ROUTER=1 runs inside scripts/with_partitions.sh" >&2; exit 2; }
	db=$PGDATABASE
	levels=("read committed")
	during_run_skip=clearing_matches_sagas
	export PAYEXT_LOAD_ROUTER=on
	trap 'rm -rf "$work"' EXIT
else
	db=payext_load
	levels=("read committed" "repeatable read" "serializable")
	during_run_skip=
	export PAYEXT_LOAD_ROUTER=off
	dropdb --if-exists "$db" >/dev/null 2>&1 || true
	createdb "$db"
	trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
fi
psql_db=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")

for level in "${levels[@]}"; do
	tag=${level// /_}
	logs=$work/$tag
	mkdir -p "$logs"
	"${psql_db[@]}" -v router="$PAYEXT_LOAD_ROUTER" -f test/load/setup.sql >/dev/null
	echo "--- load: $level, $clients clients, $seconds s"

	# A separate session checks the ledger every second while the load runs.
	# Behind a router, clearing_matches_sagas is exact only at rest (the
	# router reads the partitions one after another while sagas move:
	# docs/partitions.md, "Sagas"); it is checked after the run.
	watch_log=$work/watch-$tag
	(
		end=$((SECONDS + seconds))
		while [ "$SECONDS" -lt "$end" ]; do
			psql -X -q -At -d "$db" -c "SELECT count(*) || coalesce(' ' || string_agg(check_name || ': ' || detail, '; '), '')
			                              FROM payext.verify_ledger() WHERE NOT ok AND check_name <> ALL ('{$during_run_skip}')" >>"$watch_log" 2>&1 || true
			sleep 1
		done
	) &
	watcher=$!

	# Any error but a PY refusal or an exhausted retry, or any broken
	# promise a client sees (a retry answered with another transfer, a paid
	# code accepted again, ...), fails the driver.
	if ! "$driver" -d "dbname=$db" -c "$clients" -T "$seconds" -i "$level" -t "$tag" -o "$logs"; then
		wait "$watcher" || true
		echo "load: the driver failed under $level"
		exit 1
	fi
	wait "$watcher"
	checks=$(grep -c . "$watch_log" || true)
	if grep -qv '^0$' "$watch_log"; then
		echo "load: verify_ledger() failed during the run under $level:"
		cat "$watch_log"
		exit 1
	fi
	echo "verify_ledger() during the run: $checks checks, all passed"

	# Behind a router: every saga the run left in flight is finished, and
	# then no money is in flight (the clearing accounts hold none).
	if [ "$router" = 1 ]; then
		"${psql_db[@]}" -c "SELECT payext.resume_sagas()" >/dev/null
		open=$(psql -X -At -d "$db" -c "SELECT count(*) FROM payext.sagas(true)")
		clearing=$(psql -X -At -d "$db" -c "SELECT count(*) FROM payext.verify_ledger() WHERE check_name = 'clearing_matches_sagas' AND NOT ok")
		sagas=$(psql -X -At -d "$db" -c "SELECT count(*) FROM payext.sagas()")
		if [ "$open" != 0 ] || [ "$clearing" != 0 ]; then
			echo "load: $open sagas still open after resume_sagas(), clearing check failed $clearing times"
			exit 1
		fi
		echo "sagas: $sagas, all closed; the clearing accounts match"
	fi

	if ! test/load/verify.sh "$db" exact "$logs"/*.acks; then
		echo "load: FAILED under $level"
		exit 1
	fi
done

# The checker's self-test, on the last run's logs and database: each forged
# acknowledgement must make it fail, naming the check that caught it.
if [ "$selftest" = 1 ]; then
	charge=$(awk -F'\t' '$2 == "charge" { print; exit }' "$logs"/*.acks)
	[ -n "$charge" ] || { echo "load: self-test: no acknowledged charge to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ order tid wallet merchant amount code _ <<<"$charge"
	missing=$(psql -X -At -d "$db" -c "SELECT max(id) + 1000 FROM payext.transfer")
	N='\N'
	forged_line() { local IFS=$'\t'; echo "$*"; }
	expect_caught() {
		local what=$1 check=$2 line=$3 out=$work/selftest.out
		# (no line: the database is what was forged)
		if [ -n "$line" ]; then printf '%s\n' "$line" >"$work/forged.acks"; else : >"$work/forged.acks"; fi
		if test/load/verify.sh "$db" exact "$logs"/*.acks "$work/forged.acks" >"$out" 2>&1; then
			echo "load: self-test: the checker accepted $what"
			exit 1
		fi
		# The failing checks: the first column of the checker's table.
		fired=$(awk -F'|' '/^ [a-z_]+ +\|/ { gsub(/ /, "", $1); printf "%s ", $1 }' "$out")
		if [[ " $fired" != *" $check "* ]]; then
			cat "$out"
			echo "load: self-test: $what was not caught by $check"
			exit 1
		fi
		echo "self-test: $what: caught (${fired% })"
	}
	# A top-up acknowledged but not in the journal (a lost transfer).
	expect_caught "a lost top-up" acknowledged_not_in_journal \
		"$(forged_line selftest top_up top_up selftest-lost "$missing" "$wallet" "$N" 500 "$N" "$N" "$N" "$N" "$N" "$N")"
	# The same code and transfer acknowledged for another order.
	expect_caught "a code paid twice" code_paid_twice \
		"$(forged_line selftest charge charge selftest-order "$tid" "$wallet" "$merchant" "$amount" "$code" selftest-order "$N" "$N" "$N" "$N")"
	# The same order answered with a second transfer.
	expect_caught "an order charged twice" call_done_twice \
		"$(forged_line selftest charge_retry charge "$order" "$missing" "$wallet" "$merchant" "$amount" "$code" "$order" "$N" "$N" "$N" "$N")"
	# A refund beyond its charge, acknowledged.
	expect_caught "a refund beyond its charge" refunds_exceed_charge \
		"$(forged_line selftest refund refund selftest-refund "$missing" "$wallet" "$merchant" $((amount + 1)) "$N" "$order" "$N" "$N" "$N" "$N")"
	# The same lost top-up seen from the balances: the wallet holds less
	# than its opening balance and the acknowledged calls say.
	expect_caught "a top-up missing from the balances" balance_differs_from_record \
		"$(forged_line selftest top_up top_up selftest-lost "$missing" "$wallet" "$N" 500 "$N" "$N" "$N" "$N" "$N" "$N")"
	# The charge's transfer acknowledged once more, for a top-up.
	expect_caught "one transfer answering two calls" transfer_for_two_calls \
		"$(forged_line selftest top_up top_up selftest-shared "$tid" "$wallet" "$N" "$amount" "$N" "$N" "$N" "$N" "$N" "$N")"
	# An item of a batch refused for its code (charge_many_refused) whose
	# order was charged after all.
	batch_line=$(awk -F'\t' '$2 == "charge_many" { print; exit }' "$logs"/*.acks)
	[ -n "$batch_line" ] || { echo "load: self-test: no acknowledged batch item to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ b_order _ b_wallet b_merchant b_amount b_code _ <<<"$batch_line"
	expect_caught "a refused batch item charged" refused_item_charged \
		"$(forged_line selftest charge_many_refused "$N" "$b_order" "$N" "$b_wallet" "$b_merchant" "$b_amount" "$b_code" "$b_order" "$N" "$N" "$N" "$N")"
	# Parking: an acknowledged exit (its stay, plate, lot and fee) ...
	exit_line=$(awk -F'\t' '$2 == "exit" { print; exit }' "$logs"/*.acks)
	[ -n "$exit_line" ] || { echo "load: self-test: no acknowledged exit to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ plate _ owner operator fee _ _ stay lot at _ <<<"$exit_line"
	# ... paid once more than its fee, by an acknowledged payment ...
	expect_caught "a stay paid beyond its fee" stay_paid_twice \
		"$(forged_line selftest pay_parking parking "$plate" "$missing" "$owner" "$operator" $((fee + 1)) "$N" "$N" "$stay" "$lot" "$at" "$N")"
	# ... and its exit answered with another fee than the stay has.
	expect_caught "an exit whose fee changed" acknowledged_stay_changed \
		"$(forged_line selftest exit "$N" "$plate" "$N" "$owner" "$operator" $((fee + 1)) "$N" "$N" "$stay" "$lot" "$at" "$N")"
	# A stay paid at exit (auto-pay) paid again by hand: each payment fits
	# the fee, the two together do not.
	auto_line=$(awk -F'\t' '$2 == "auto_pay" && $8 > 0 { print; exit }' "$logs"/*.acks)
	[ -n "$auto_line" ] || { echo "load: self-test: no acknowledged auto-pay to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ a_plate _ a_owner a_operator a_amount _ _ a_stay a_lot a_at _ <<<"$auto_line"
	expect_caught "a stay paid twice" stay_paid_twice \
		"$(forged_line selftest pay_parking parking "$a_plate" "$missing" "$a_owner" "$a_operator" "$a_amount" "$N" "$N" "$a_stay" "$a_lot" "$a_at" "$N")"
	# Holds: a final capture (its hold is captured) and another hold.
	cap_line=$(awk -F'\t' '$2 == "capture_final" { print; exit }' "$logs"/*.acks)
	[ -n "$cap_line" ] || { echo "load: self-test: no acknowledged final capture to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ c_ref c_tid c_wallet c_merchant c_amount _ c_order _ _ _ c_hold <<<"$cap_line"
	auth_line=$(awk -F'\t' -v h="$c_hold" '$2 == "authorize" && $14 != h { print; exit }' "$logs"/*.acks)
	[ -n "$auth_line" ] || { echo "load: self-test: no acknowledged hold to forge from"; exit 1; }
	IFS=$'\t' read -r _ _ _ a_order _ a_wallet a_merchant a_amount a_code _ _ _ _ a_hold <<<"$auth_line"
	# The capture's transfer acknowledged as a capture of another hold.
	expect_caught "a capture of the wrong hold" capture_not_in_holds \
		"$(forged_line selftest capture capture "$c_ref" "$c_tid" "$c_wallet" "$c_merchant" "$c_amount" "$N" "$c_order" "$N" "$N" "$N" "$a_hold")"
	# One capture more than the hold has, acknowledged.
	expect_caught "a capture the hold does not count" hold_captured_wrong \
		"$(forged_line selftest capture capture selftest-capture "$missing" "$c_wallet" "$c_merchant" "$c_amount" "$N" "$c_order" "$N" "$N" "$N" "$c_hold")"
	# A void acknowledged for the captured hold.
	expect_caught "a void that did not stick" acknowledged_hold_changed \
		"$(forged_line selftest void "$N" "$c_order" "$N" "$c_wallet" "$c_merchant" "$N" "$N" "$c_order" "$N" "$N" "$N" "$c_hold")"
	# The other hold's order answered with the captured hold too.
	expect_caught "an order held twice" order_held_twice \
		"$(forged_line selftest authorize_retry "$N" "$a_order" "$N" "$a_wallet" "$a_merchant" "$a_amount" "$a_code" "$a_order" "$N" "$N" "$N" "$c_hold")"
	# The capture's reference refused, yet it moved money.
	expect_caught "a refused capture that moved money" refused_capture_moved \
		"$(forged_line selftest capture_refused "$N" "$c_ref" "$N" "$c_wallet" "$c_merchant" "$c_amount" "$N" "$c_order" "$N" "$N" "$N" "$c_hold")"
	# Not an acknowledgement but the database: a live hold made to reserve
	# more than its wallet holds, then put back.  (On a single node: behind
	# a router the rows are the partitions'.)
	if [ "$router" != 1 ]; then
		read -r big_hold big_amount < <(psql -X -At -F ' ' -d "$db" -c "SELECT id, amount FROM payext.hold
			WHERE state = 'open' AND expires_at > now() + interval '10 minutes' ORDER BY id LIMIT 1")
		[ -n "${big_hold:-}" ] || { echo "load: self-test: no live hold to forge from"; exit 1; }
		"${psql_db[@]}" -c "UPDATE payext.hold_entry h SET amount = h.amount + a.balance + 1
		                      FROM payext.account a WHERE a.id = h.wallet AND h.id = $big_hold"
		expect_caught "a live hold above its wallet's balance" available_negative ""
		"${psql_db[@]}" -c "UPDATE payext.hold_entry SET amount = $big_amount WHERE id = $big_hold"
	fi
fi
if [ "$router" = 1 ]; then
	echo "load: invariants held through the router"
else
	echo "load: invariants held under every isolation level"
fi
