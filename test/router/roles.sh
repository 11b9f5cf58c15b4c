#!/usr/bin/env bash
# Roles through the router, inside scripts/with_partitions.sh 2 (test/router/
# run.sh runs it).  A routed call runs on its partition as the calling role
# (PL/Proxy connects as current_user), so the role exists on every
# partition and payext's capabilities there judge it:
#   - an app role opens wallets, tops up, reads balances and issues codes
#     through the router, on both partitions;
#   - it may not charge (bare charge is the owner's on a partition: 42501
#     comes back through the router), nor repoint the router (42501 at the
#     router), nor read the router's merchant table;
#   - balance of a merchant's id at the router works for it (the router
#     reads its own table for it);
#   - a till's refund beyond its account on the order's partition is
#     covered from its account on the other: the cover's first leg runs as
#     the till (merchant_cover: its own money only), the rest as the
#     router's owner (resume_saga, SECURITY DEFINER, which PL/Proxy then
#     connects as); the till can neither aim a cover at another merchant
#     nor run a saga's second leg itself.
set -euo pipefail
suite=roles
# shellcheck source=test/router/lib.sh
. "$(dirname "$0")/lib.sh"
as_app() { psql -X -q -At -v ON_ERROR_STOP=1 -U router_app "$@"; }
sqlstate_app() {
	local out
	if out=$(as_app -v VERBOSITY=sqlstate -c "$1" 2>&1); then echo ok; else
		sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\).*$/\1/p' <<<"$out" | head -n 1
	fi
}
read -r -a uris <<<"${PAYEXT_PARTITIONS:?run inside scripts/with_partitions.sh}"

q -c "CREATE ROLE router_app LOGIN" >/dev/null
for uri in "${uris[@]}"; do
	psql -X -q -d "$uri" -c "CREATE ROLE router_app LOGIN" \
		-c "SELECT payext.grant_capability('app', 'router_app')" >/dev/null
done
shop=$(q -c "SELECT payext.open_merchant('gh_roles', 'Roles Shop')")

for o in roles-a roles-b roles-c roles-d; do
	w=$(as_app -c "SELECT payext.open_wallet('$o')")
	as_app -c "SELECT payext.top_up($w, 500, 'roles-in')" >/dev/null
	[ "$(as_app -c "SELECT payext.balance($w)")" = 500 ] || fail "app's balance of $o"
	code=$(as_app -c "SELECT payext.request_payment($w)")
	st=$(sqlstate_app "SELECT payext.charge($shop, '$code', 100, 'roles-$o')")
	[ "$st" = 42501 ] || fail "app charged through the router: $st, not 42501"
done
[ "$(q -c "SELECT count(DISTINCT payext.partition_of(payext.open_wallet(o)))
           FROM unnest(ARRAY['roles-a', 'roles-b', 'roles-c', 'roles-d']) o")" = 2 ] ||
	fail "the app's wallets did not land on both partitions"
st=$(sqlstate_app "SELECT payext.configure_partitions(ARRAY['host=elsewhere'])")
[ "$st" = 42501 ] || fail "app repointed the router: $st, not 42501"
st=$(sqlstate_app "SELECT count(*) FROM payext.merchant_account")
[ "$st" = 42501 ] || fail "app read the router's merchant table: $st, not 42501"
[ "$(sqlstate_app "SELECT payext.balance($shop)")" = 42501 ] ||
	fail "app read a merchant's balance (payext's balance() is admin's for merchants)"
# A till: a merchant role mapped through the router to the merchant's
# account on every partition, charging and refunding by CALL.
q -c "CREATE ROLE router_till LOGIN" >/dev/null
for uri in "${uris[@]}"; do
	psql -X -q -d "$uri" -c "CREATE ROLE router_till LOGIN" \
		-c "SELECT payext.grant_capability('merchant', 'router_till')" >/dev/null
done
q -c "SELECT payext.map_merchant_role('router_till', $shop)" >/dev/null
other=$(q -c "SELECT payext.open_merchant('gh_roles_other', 'Other Shop')")
as_till() { psql -X -q -At -v ON_ERROR_STOP=1 -U router_till "$@"; }
sqlstate_till() {
	local out
	if out=$(as_till -v VERBOSITY=sqlstate -c "$1" 2>&1); then echo ok; else
		sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\).*$/\1/p' <<<"$out" | head -n 1
	fi
}
total=0
for o in roles-a roles-b roles-c roles-d; do
	w=$(q -c "SELECT payext.open_wallet('$o')")
	code=$(q -c "SELECT payext.request_payment($w)")
	t=$(as_till -c "CALL payext.merchant_charge($shop, '$code', 100, 'till-$o', NULL)")
	[ -n "$t" ] || fail "the till's charge of $o returned no transfer"
	[ "$(as_till -c "CALL payext.merchant_charge($shop, '$code', 100, 'till-$o', NULL)")" = "$t" ] ||
		fail "the till's charge of $o, sent again, gave another transfer"
	total=$((total + 100))
done
[ "$(as_till -c "SELECT payext.balance($shop)")" = "$total" ] || fail "the till's balance is not $total"
as_till -c "CALL payext.merchant_refund($shop, 'till-roles-a', 40, 'till-r-1', NULL)" >/dev/null
[ "$(as_till -c "SELECT refunded_amount FROM payext.payment_status($shop, 'till-roles-a')")" = 40 ] ||
	fail "the till's refund is not in payment_status"
as_till -c "CALL payext.merchant_settle($shop, 'till-bank')" >/dev/null
[ "$(as_till -c "SELECT payext.balance($shop)")" = 0 ] || fail "the till's settlement left money behind"
# A refund beyond the merchant's account on the order's partition: the
# till's own money on the other partition covers it.  The cover's first
# leg runs as the till (its own money only), the rest as the router's
# owner (resume_saga): the till has no admin capability anywhere.
wallet_on() { q -c "SELECT payext.open_wallet(o) FROM unnest(ARRAY['roles-a', 'roles-b', 'roles-c', 'roles-d']) o
                    WHERE payext.route_owner(o) = $1 LIMIT 1"; }
code=$(q -c "SELECT payext.request_payment($(wallet_on 0))")
as_till -c "CALL payext.merchant_charge($shop, '$code', 100, 'till-cover-0', NULL)" >/dev/null
as_till -c "CALL payext.merchant_settle($shop, 'till-bank-2')" >/dev/null
code=$(q -c "SELECT payext.request_payment($(wallet_on 1))")
as_till -c "CALL payext.merchant_charge($shop, '$code', 100, 'till-cover-1', NULL)" >/dev/null
r=$(as_till -c "CALL payext.merchant_refund($shop, 'till-cover-0', 60, 'till-cover-r', NULL)")
[ "$(q -c "SELECT payext.partition_of($r)")" = 0 ] || fail "the covered refund did not run on partition 0"
[ "$(as_till -c "SELECT string_agg(payext.balance_on(a.partition_number, a.account)::text, ' '
                                  ORDER BY a.partition_number)
                  FROM payext.merchant_accounts($shop) a")" = "0 40" ] ||
	fail "after the covered refund, the merchant's accounts are not 0 and 40"
[ "$(q -c "SELECT state FROM payext.sagas() WHERE amount = 60 AND from_partition = 1")" = "done" ] ||
	fail "the till's cover is not a finished saga"
# The till cannot aim a cover at another merchant, nor drive a saga's
# second leg itself.
st=$(sqlstate_till "SELECT payext.merchant_cover_on(1, gen_random_uuid(),
                      (SELECT account FROM payext.merchant_accounts($other) WHERE partition_number = 1),
                      10, 0, $shop)")
[ "$st" = 42501 ] || fail "the till sent another merchant's money: $st, not 42501"
st=$(sqlstate_till "SELECT * FROM payext.saga_receive_on(0, gen_random_uuid(), 1, $shop, 10, 'CNY', NULL, NULL, NULL)")
[ "$st" = 42501 ] || fail "the till ran a saga's second leg: $st, not 42501"
w=$(q -c "SELECT payext.open_wallet('roles-a')")
code=$(q -c "SELECT payext.request_payment($w)")
st=$(sqlstate_till "CALL payext.merchant_charge($other, '$code', 100, 'till-other', NULL)")
[ "$st" = 42501 ] || fail "the till charged for another merchant: $st, not 42501"
st=$(sqlstate_till "SELECT payext.balance($other)")
[ "$st" = 42501 ] || fail "the till read another merchant's balance: $st, not 42501"
q -c "SELECT payext.unmap_merchant_role('router_till', $shop)" >/dev/null
code=$(q -c "SELECT payext.request_payment($w)")
st=$(sqlstate_till "CALL payext.merchant_charge($shop, '$code', 100, 'till-after', NULL)")
[ "$st" = 42501 ] || fail "the till charged after its mapping went: $st, not 42501"
# A role the partitions do not know: 42501 from the router (retrying cannot
# help), not PY504.
q -c "CREATE ROLE router_ghost LOGIN" >/dev/null
st=$(psql -X -q -At -U router_ghost -v VERBOSITY=sqlstate -c "SELECT payext.balance($shop)" 2>&1 |
	sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\).*$/\1/p' | head -n 1 || true)
[ "$st" = 42501 ] || fail "a role unknown to the partitions: $st, not 42501"
echo "router roles: a role the partitions do not know: 42501"
echo "router roles: a till mapped through the router charges, refunds (covered from its other partition) and settles by CALL on both partitions; another merchant's, a cover aimed at another merchant, a second leg, and after unmapping, 42501"
echo "router roles: an app role works on both partitions through the router; charging (42501 from the partition), repointing the router and reading its merchant table (42501 at the router) are refused"
