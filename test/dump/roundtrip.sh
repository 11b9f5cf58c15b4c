#!/usr/bin/env bash
# pg_dump / pg_restore round trip: every user row of payext survives, the id
# sequences go on where they stopped, and the restored ledger verifies.
# Runs against the server in PGHOST/PGPORT (see scripts/with_cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

src=payext_dump_src
dst=payext_dump_dst
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists "$src" >/dev/null 2>&1 || true; dropdb --if-exists "$dst" >/dev/null 2>&1 || true' EXIT
export PGOPTIONS='--client-min-messages=warning'
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

dropdb --if-exists "$src"; dropdb --if-exists "$dst"
createdb "$src"
q -d "$src" >/dev/null <<'SQL'
CREATE EXTENSION payext;
SELECT payext.open_wallet('dump_alice');
SELECT payext.open_wallet('dump_bob', 'USD');
SELECT payext.open_merchant('gh_dump_shop', 'Dump Shop');
SELECT payext.top_up(1, 10000, 'dump-bank-1');
SELECT payext.top_up(2, 500, 'dump-bank-2');
SELECT payext.transfer(1, 3, 1234, 'dump-adj-1');
SELECT payext.withdraw(3, 1000, 'dump-payout-1');
SELECT payext.withdraw(2, 500, 'dump-cashout-1');
SELECT payext.close_account(2);
SELECT payext.set_association_rule(NULL, 1, '1 day');
SELECT payext.record_interaction('dump_carol', 'gh_dump_shop', 'visit');
SELECT payext.opt_out('dump_dave', 'gh_dump_shop');
SELECT payext.bind_vehicle('dump_alice', 'DUMP-01', true);
SELECT payext.create_parking_lot(3, 'Dump Lot', 'Asia/Shanghai', 0, 60, 100);
SELECT payext.vehicle_entered(1, 'DUMP01', now() - interval '3 hours');
SELECT payext.vehicle_exited(1, 'DUMP01', now() - interval '90 minutes');
SELECT payext.vehicle_entered(1, 'DUMP01', now() - interval '1 hour');
SELECT payext.charge(3, payext.request_payment(1), 700, 'dump-order-1');
SELECT payext.refund(3, 'dump-order-1', 200, 'dump-refund-1');
SQL
oldcode=$(q -d "$src" -c "SELECT payext.request_payment(1, 500)")
q -d "$src" -c "SELECT payext.freeze(1)" >/dev/null

snapshot() {
	q -d "$1" -c "SELECT * FROM payext.account ORDER BY id" \
		-c "SELECT * FROM payext.transfer ORDER BY id" \
		-c "SELECT * FROM payext.payment ORDER BY transfer_id" \
		-c "SELECT * FROM payext.refund ORDER BY transfer_id" \
		-c "SELECT * FROM payext.interaction ORDER BY id" \
		-c "SELECT * FROM payext.interaction_pair ORDER BY 1, 2" \
		-c "SELECT * FROM payext.association_rule ORDER BY id" \
		-c "SELECT * FROM payext.association_state ORDER BY 1, 2" \
		-c "SELECT * FROM payext.vehicle ORDER BY 1" \
		-c "SELECT * FROM payext.vehicle_owner ORDER BY 1" \
		-c "SELECT * FROM payext.parking_lot ORDER BY 1" \
		-c "SELECT * FROM payext.parking_stay ORDER BY 1" \
		-c "SELECT * FROM payext.parking_payment ORDER BY 1"
}
snapshot "$src" >"$work/before"
pg_dump -Fc -f "$work/dump" "$src"
createdb "$dst"
pg_restore --exit-on-error -d "$dst" "$work/dump"
snapshot "$dst" >"$work/after"

fail=0
if ! diff -u "$work/before" "$work/after"; then
	echo "dump: rows differ after restore" >&2
	fail=1
fi
[ "$(wc -l <"$work/before")" -ge 27 ] || { echo "dump: too few rows captured" >&2; fail=1; }

# Signing secrets never leave the server: the restored database has none,
# makes a new key on first use, and a code signed before the dump is refused.
keys=$(q -d "$dst" -c "SELECT count(*) FROM payext.signing_key")
[ "$keys" = 0 ] || { echo "dump: $keys signing key(s) were restored" >&2; fail=1; }
# Nor do live codes: bearer tokens of a minute, unlogged, never dumped.
live=$(q -d "$dst" -c "SELECT count(*) FROM payext.payment_code")
[ "$live" = 0 ] || { echo "dump: $live live payment code(s) were restored" >&2; fail=1; }
if pg_restore -f - "$work/dump" | grep -qi 'COPY payext.payment_code'; then
	echo "dump: the dump holds live payment codes" >&2
	fail=1
fi
if pg_restore -f - "$work/dump" | grep -qi 'signing_key.*secret\|COPY payext.signing_key'; then
	echo "dump: the dump holds signing keys" >&2
	fail=1
fi

bad=$(q -d "$dst" -c "SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok")
[ "$bad" = 0 ] || { echo "dump: verify_ledger() fails after restore" >&2; fail=1; }

# The restored ledger goes on: new ids follow the old ones, idempotency holds,
# and the journal is still append-only.
next=$(q -d "$dst" -c "SELECT payext.unfreeze(1)" -c "SELECT payext.top_up(1, 1, 'dump-bank-3')")
maxold=$(q -d "$src" -c "SELECT max(id) FROM payext.transfer")
[ "$next" -gt "$maxold" ] || { echo "dump: transfer id $next does not follow $maxold" >&2; fail=1; }
again=$(q -d "$dst" -c "SELECT payext.top_up(1, 10000, 'dump-bank-1')")
[ "$again" = 1 ] || { echo "dump: replay after restore returned $again, not 1" >&2; fail=1; }
refusal=$(q -d "$dst" -c "SELECT payext.charge(3, '$oldcode', 100, 'dump-order-3')" 2>&1 || true)
case "$refusal" in
*"payment code is not valid"*) ;;
*) echo "dump: a code signed before the dump was not refused: $refusal" >&2; fail=1 ;;
esac
code=$(q -d "$dst" -c "SELECT payext.request_payment(1)")
charged=$(q -d "$dst" -c "SELECT payext.charge(3, '$code', 100, 'dump-order-2') > 0")
[ "$charged" = t ] || { echo "dump: a new code did not charge after restore" >&2; fail=1; }
if q -d "$dst" -c "SELECT payext.refund(3, 'dump-order-1', 501, 'dump-refund-2')" >/dev/null 2>&1; then
	echo "dump: a refund beyond the restored charge was accepted" >&2
	fail=1
fi
if q -d "$dst" -c "DELETE FROM payext.transfer" >/dev/null 2>&1; then
	echo "dump: the restored journal accepted a DELETE" >&2
	fail=1
fi

if [ "$fail" = 0 ]; then
	echo "dump: ok ($(grep -c . "$work/before") rows round-tripped)"
fi
exit "$fail"
