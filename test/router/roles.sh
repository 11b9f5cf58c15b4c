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
#     reads its own table for it).
set -euo pipefail
fail() { echo "router roles: FAILED: $*" >&2; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
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
echo "router roles: an app role works on both partitions through the router; charging (42501 from the partition), repointing the router and reading its merchant table (42501 at the router) are refused"
