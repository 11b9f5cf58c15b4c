#!/usr/bin/env bash
# pg_dump / pg_restore round trip of the role model, as the DBA:
# roles with capabilities and merchant mappings survive with every user row
# (every table and sequence registered with pg_extension_config_dump), the
# privileges on payext's objects are the same afterwards (ACLs and
# has_*_privilege per role), and neither signing_key nor pseudonym_key is in
# the dump (no COPY of them, none of their secret bytes); the restored
# database makes new keys, and each role can do there what it could before
# (and still not what it could not).
# Runs against the server in PGHOST/PGPORT as a superuser (see
# scripts/with_cluster.sh).  Roles are the cluster's: this script makes
# rdump_* roles and drops them again at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

src=payext_rdump_src
dst=payext_rdump_dst
roles=(rdump_app rdump_shop rdump_shop2 rdump_analyst rdump_admin rdump_nobody "rdump shop'3")
work=$(mktemp -d)
export PGOPTIONS='--client-min-messages=warning'
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

drop_all() {
	dropdb --if-exists "$src" >/dev/null 2>&1 || true
	dropdb --if-exists "$dst" >/dev/null 2>&1 || true
	for r in "${roles[@]}"; do
		echo 'DROP ROLE IF EXISTS :"r"' | q -d postgres -v r="$r" >/dev/null 2>&1 || true
	done
}
trap 'rm -rf "$work"; drop_all' EXIT
drop_all

for r in "${roles[@]}"; do
	echo 'CREATE ROLE :"r" NOLOGIN' | q -d postgres -v r="$r"
done
createdb "$src"
q -d "$src" >/dev/null <<'SQL'
CREATE EXTENSION payext;
SELECT payext.open_wallet('rd_alice');                           -- 1
SELECT payext.open_wallet('rd_bob');                             -- 2
SELECT payext.open_merchant('gh_rd_a', 'RD Shop A');             -- 3
SELECT payext.open_merchant('gh_rd_b', 'RD Shop B');             -- 4
SELECT payext.open_merchant('gh_rd_c', 'RD Shop C');             -- 5
SELECT payext.top_up(1, 100000, 'rd-bank-1');
SELECT payext.top_up(2, 50000, 'rd-bank-2');
SELECT payext.set_association_rule(NULL, 2, '1 day');
SELECT payext.charge(3, payext.request_payment(1), 1000, 'rd-a-1');
SELECT payext.charge(3, payext.request_payment(1), 2000, 'rd-a-2');
SELECT payext.charge(4, payext.request_payment(2), 700, 'rd-b-1');
SELECT payext.refund(4, 'rd-b-1', 100, 'rd-b-r1');
SELECT payext.charge(5, payext.request_payment(2), 300, 'rd-c-1');
SELECT payext.record_interaction('rd_carol', 'gh_rd_b', 'visit');
SELECT payext.opt_out('rd_dave', 'gh_rd_a');
SELECT payext.associate('rd_bob', 'gh_rd_a');
SELECT payext.bind_vehicle('rd_alice', 'RD-001', true);
SELECT payext.create_parking_lot(3, 'RD Lot', 'UTC', 0, 60, 100);
SELECT payext.vehicle_entered(1, 'RD001', now() - interval '3 hours');
SELECT payext.vehicle_exited(1, 'RD001', now() - interval '90 minutes');
SELECT payext.withdraw(4, 100, 'rd-payout-b');
SELECT payext.rotate_signing_key();
SELECT payext.request_payment(2);
SELECT payext.grant_capability('app', 'rdump_app');
SELECT payext.grant_capability('merchant', 'rdump_shop');
SELECT payext.grant_capability('merchant', 'rdump_shop2');
SELECT payext.grant_capability('merchant', '"rdump shop''3"');
SELECT payext.grant_capability('analyst', 'rdump_analyst');
SELECT payext.grant_capability('admin', 'rdump_admin');
SELECT payext.grant_capability('app', 'rdump_admin');      -- two capabilities
SELECT payext.map_merchant_role('rdump_shop', 3);
SELECT payext.map_merchant_role('rdump_shop2', 4);
SELECT payext.map_merchant_role('"rdump shop''3"', 5);
SELECT payext.map_merchant_role('"rdump shop''3"', 4);     -- two accounts
SQL

# Every table and sequence pg_dump is told to keep, plus the role tables by
# name (so that a change to extconfig cannot hide them), row by row.
snapshot() {
	local db=$1 rel
	for rel in $(q -d "$db" -c "SELECT c.oid::regclass::text FROM pg_extension e, unnest(e.extconfig) c
	                              WHERE e.extname = 'payext' ORDER BY 1"); do
		echo "== $rel"
		case $(q -d "$db" -c "SELECT relkind FROM pg_class WHERE oid = '$rel'::regclass") in
		S) q -d "$db" -c "SELECT last_value, is_called FROM $rel" ;;
		*) q -d "$db" -c "SELECT t::text FROM $rel t ORDER BY 1" ;;
		esac
	done
	echo "== role tables"
	q -d "$db" -c "SELECT grantee::text, capability FROM payext.capability_grant ORDER BY 1, 2" \
		-c "SELECT grantee::text, merchant FROM payext.merchant_role ORDER BY 1, 2" \
		-c "SELECT capability, privilege, object FROM payext.capability ORDER BY 1, 2, 3"
}
# The privileges on payext's objects: the ACLs themselves, and per role what
# has_*_privilege says it may use.
grants() {
	q -d "$1" -c "SELECT 'schema', nspacl::text FROM pg_namespace WHERE nspname = 'payext'" \
		-c "SELECT p.oid::regprocedure::text, coalesce(p.proacl::text, '-') FROM pg_proc p
		     WHERE p.pronamespace = 'payext'::regnamespace ORDER BY 1" \
		-c "SELECT c.oid::regclass::text, coalesce(c.relacl::text, '-') FROM pg_class c
		     WHERE c.relnamespace = 'payext'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S') ORDER BY 1" \
		-c "SELECT r.rolname, 'EXECUTE', p.oid::regprocedure::text FROM pg_roles r, pg_proc p
		     WHERE r.rolname LIKE 'rdump%' AND p.pronamespace = 'payext'::regnamespace
		       AND has_function_privilege(r.oid, p.oid, 'EXECUTE') ORDER BY 1, 3" \
		-c "SELECT r.rolname, 'SELECT', c.oid::regclass::text FROM pg_roles r, pg_class c
		     WHERE r.rolname LIKE 'rdump%' AND c.relnamespace = 'payext'::regnamespace
		       AND c.relkind IN ('r', 'v', 'm') AND has_table_privilege(r.oid, c.oid, 'SELECT') ORDER BY 1, 3"
}
snapshot "$src" >"$work/rows_before"
grants "$src" >"$work/grants_before"
q -d "$src" -c "SELECT encode(secret, 'hex') FROM payext.signing_key
                UNION ALL SELECT encode(secret, 'hex') FROM payext.pseudonym_key" >"$work/secrets"
q -d "$src" -c "SET ROLE rdump_analyst" -c "SELECT consumer_pseudonym FROM payext.analyst_consumer_merchant" \
	| sort -u >"$work/pseudonyms_before"

pg_dump -Fc -f "$work/dump" "$src"
pg_restore -f - "$work/dump" >"$work/dump.sql"
createdb "$dst"
pg_restore --exit-on-error -d "$dst" "$work/dump"
snapshot "$dst" >"$work/rows_after"
grants "$dst" >"$work/grants_after"

fail=0
bad() { echo "roles dump: $*" >&2; fail=1; }

# Rows.
if ! diff -u "$work/rows_before" "$work/rows_after"; then
	bad "rows differ after restore"
fi
for rel in payext.account payext.transfer payext.payment payext.refund payext.interaction \
	payext.association_state payext.parking_stay payext.capability_grant payext.merchant_role; do
	grep -qx "== $rel" "$work/rows_before" || bad "$rel was not in the snapshot"
done
[ "$(sed -n '/^== payext.capability_grant$/,/^==/p' "$work/rows_before" | grep -c '^(')" = 7 ] \
	|| bad "capability_grant does not hold the 7 grants made"
[ "$(sed -n '/^== payext.merchant_role$/,/^==/p' "$work/rows_before" | grep -c '^(')" = 4 ] \
	|| bad "merchant_role does not hold the 4 mappings made"
grep -q "rdump shop'3" "$work/rows_after" || bad "the mapping of the role with a quote in its name is gone"

# Grants.
if ! diff -u "$work/grants_before" "$work/grants_after"; then
	bad "privileges differ after restore"
fi
[ "$(grep -c '^rdump_app|EXECUTE|' "$work/grants_after")" -ge 16 ] || bad "rdump_app has too few functions after restore"
check_priv() { # role object privilege expected
	local got
	got=$(q -d "$dst" -v r="$1" -v o="$2" -v p="$3" <<'SQL'
SELECT CASE WHEN :'p' = 'SELECT' THEN has_table_privilege(:'r', :'o', 'SELECT')
            ELSE has_function_privilege(:'r', :'o', 'EXECUTE') END
SQL
)
	[ "$got" = "$4" ] || bad "after restore, $1 $3 on $2 is $got, not $4"
}
check_priv rdump_app 'payext.top_up(bigint, bigint, text)' EXECUTE t
check_priv rdump_app 'payext.charge(bigint, text, bigint, text)' EXECUTE f
check_priv rdump_shop 'payext.merchant_charge(bigint, text, bigint, text, bigint)' EXECUTE t
check_priv rdump_shop 'payext.transfer' SELECT f
check_priv rdump_shop 'payext.merchant_transfers(bigint)' EXECUTE t
check_priv rdump_shop 'payext.payment' SELECT f
check_priv rdump_analyst 'payext.analyst_consumer_merchant' SELECT t
check_priv rdump_analyst 'payext.pseudonym(text)' EXECUTE f
check_priv rdump_admin 'payext.verify_ledger()' EXECUTE t
check_priv rdump_admin 'payext.open_wallet(text, text)' EXECUTE t
check_priv rdump_admin 'payext.signing_key' SELECT f
check_priv rdump_admin 'payext.pseudonym_key' SELECT f
check_priv rdump_nobody 'payext.balance(bigint)' EXECUTE f
check_priv public 'payext.top_up(bigint, bigint, text)' EXECUTE f

# Secrets: not in the dump, not in the restored database.
[ "$(wc -l <"$work/secrets")" = 3 ] || bad "expected 2 signing keys and 1 pseudonym key in the source"
if grep -qiE 'COPY payext\.(signing_key|pseudonym_key)|INSERT INTO payext\.(signing_key|pseudonym_key)' "$work/dump.sql"; then
	bad "the dump holds key rows"
fi
if pg_restore -l "$work/dump" | grep -iE 'TABLE DATA.*(signing_key|pseudonym_key)'; then
	bad "the dump's table of contents lists key data"
fi
while read -r hex; do
	[ ${#hex} = 64 ] || bad "a key is not 32 bytes"
	if grep -qiF "$hex" "$work/dump.sql" || grep -qiF "${hex:0:16}" "$work/dump.sql"; then
		bad "a secret's bytes are in the dump"
	fi
	if [ "$(q -d "$dst" -c "SELECT count(*) FROM (SELECT secret FROM payext.signing_key
	          UNION ALL SELECT secret FROM payext.pseudonym_key) k WHERE encode(k.secret, 'hex') = '$hex'")" != 0 ]; then
		bad "a secret of the source is in the restored database"
	fi
done <"$work/secrets"
# (the check can see them: the source's own plain dump of a key table would show the bytes)
q -d "$src" -c "COPY (SELECT secret FROM payext.pseudonym_key) TO STDOUT" | grep -qiF "$(sed -n 3p "$work/secrets")" \
	|| bad "the secret-bytes check cannot see a key in COPY output"
[ "$(q -d "$dst" -c "SELECT count(*) FROM payext.signing_key")" = 0 ] || bad "signing keys were restored"
[ "$(q -d "$dst" -c "SELECT count(*) FROM payext.pseudonym_key")" = 1 ] || bad "the restored database has no pseudonym key"
q -d "$dst" -c "SET ROLE rdump_analyst" -c "SELECT consumer_pseudonym FROM payext.analyst_consumer_merchant" \
	| sort -u >"$work/pseudonyms_after"
[ -s "$work/pseudonyms_after" ] || bad "the analyst sees no pseudonyms after restore"
if [ -n "$(comm -12 "$work/pseudonyms_before" "$work/pseudonyms_after")" ]; then
	bad "pseudonyms survived the restore (the pseudonym key was carried over)"
fi

# The restored database works for each role, and refuses what it refused.
state() { # role sql: ok or the SQLSTATE
	q -d "$dst" -v r="$1" -v s="$2" <<'SQL'
CREATE FUNCTION pg_temp.st(q text) RETURNS text LANGUAGE plpgsql AS
  $f$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$f$;
SET ROLE :"r";
SELECT pg_temp.st(:'s');
SQL
}
expect() { # description got want
	[ "$2" = "$3" ] || bad "$1: got '$2', want '$3'"
}
code=$(q -d "$dst" -c "SET ROLE rdump_app" -c "SELECT payext.request_payment(1)")
[[ "$code" =~ ^[0-9]{18}$ ]] || bad "rdump_app cannot request a code after restore: $code"
expect "app top_up" "$(state rdump_app "SELECT payext.top_up(1, 500, 'rd-after-1')")" ok
expect "app balance of a wallet" "$(q -d "$dst" -c "SET ROLE rdump_app" -c "SELECT payext.balance(2)")" \
	"$(q -d "$dst" -c "SELECT balance FROM payext.account WHERE id = 2")"
expect "app balance of a merchant" "$(state rdump_app "SELECT payext.balance(3)")" 42501
expect "app withdraw from a merchant" "$(state rdump_app "SELECT payext.withdraw(3, 1, 'rd-steal')")" 42501
expect "app reads signing_key" "$(state rdump_app "SELECT * FROM payext.signing_key")" 42501
expect "shop charges as A" "$(state rdump_shop "CALL payext.merchant_charge(3, '$code', 100, 'rd-after-order')")" ok
tid=$(q -d "$dst" -c "SET ROLE rdump_shop" -c "CALL payext.merchant_charge(3, '$code', 100, 'rd-after-order')")
[[ "$tid" =~ ^[0-9]+$ ]] || bad "rdump_shop cannot charge after restore: $tid"
expect "shop charge is the same order again" "$(q -d "$dst" -c "SELECT transfer_id FROM payext.payment WHERE order_ref = 'rd-after-order'")" "$tid"
expect "shop payment_status" "$(q -d "$dst" -c "SET ROLE rdump_shop" -c "SELECT state FROM payext.payment_status(3, 'rd-a-1')")" paid
expect "shop charges as B" "$(state rdump_shop "CALL payext.merchant_charge(4, '$code', 100, 'rd-steal-order')")" 42501
expect "shop refunds for B" "$(state rdump_shop "CALL payext.merchant_refund(4, 'rd-b-1', 1, 'rd-steal-refund')")" 42501
expect "shop balance of B" "$(state rdump_shop "SELECT payext.balance(4)")" 42501
expect "shop reads payment" "$(state rdump_shop "SELECT * FROM payext.payment")" 42501
expect "shop's transfers" "$(q -d "$dst" -c "SET ROLE rdump_shop" -c "SELECT count(*) FROM payext.merchant_transfers(3)")" \
	"$(q -d "$dst" -c "SELECT count(*) FROM payext.transfer WHERE 3 IN (debit_account, credit_account)")"
expect "shop asks for B's transfers" "$(q -d "$dst" -c "SET ROLE rdump_shop" -c "SELECT count(*) FROM payext.merchant_transfers(4)" 2>&1 | grep -o 'permission denied for merchant account 4')" \
	"permission denied for merchant account 4"
expect "shop's interactions" "$(q -d "$dst" -c "SET ROLE rdump_shop" -c "SELECT count(*) FROM payext.merchant_interactions(3)")" \
	"$(q -d "$dst" -c "SELECT count(*) FROM payext.interaction WHERE public_service_id = 'gh_rd_a'")"
expect "shop2's associations" "$(q -d "$dst" -c "SET ROLE rdump_shop2" -c "SELECT count(*) FROM payext.merchant_associations(4)")" \
	"$(q -d "$dst" -c "SELECT count(*) FROM payext.association_state WHERE public_service_id = 'gh_rd_b'")"
expect "shop 3 acts for B and C" "$(q -d "$dst" -c "SET ROLE \"rdump shop'3\"" -c "SELECT payext.acting_accounts()")" "{4,5}"
expect "shop 3 settles C" "$(state "rdump shop'3" "CALL payext.merchant_settle(5, 'rd-after-settle')")" ok
expect "shop2 settles A" "$(state rdump_shop2 "CALL payext.merchant_settle(3, 'rd-steal-settle')")" 42501
expect "analyst reads the view" "$(state rdump_analyst "SELECT * FROM payext.analyst_consumer_merchant")" ok
expect "analyst calls pseudonym()" "$(state rdump_analyst "SELECT payext.pseudonym('rd_alice')")" 42501
expect "analyst reads pseudonym_key" "$(state rdump_analyst "SELECT * FROM payext.pseudonym_key")" 42501
expect "admin verify_ledger" "$(q -d "$dst" -c "SET ROLE rdump_admin" -c "SELECT bool_and(ok) FROM payext.verify_ledger()")" t
expect "admin sees every transfer" "$(q -d "$dst" -c "SET ROLE rdump_admin" -c "SELECT count(*) FROM payext.transfer")" \
	"$(q -d "$dst" -c "SELECT count(*) FROM payext.transfer")"
expect "admin reads signing_key" "$(state rdump_admin "SELECT * FROM payext.signing_key")" 42501
expect "nobody top_up" "$(state rdump_nobody "SELECT payext.top_up(1, 1, 'rd-nobody')")" 42501
expect "grant_capability after restore" "$(state "$(q -d "$dst" -c 'SELECT current_user')" "SELECT payext.grant_capability('bogus', 'rdump_nobody')")" PY006
q -d "$dst" -c "SELECT payext.revoke_capability('app', 'rdump_admin')" >/dev/null
expect "revoke app from admin keeps admin's balance" "$(state rdump_admin "SELECT payext.balance(3)")" ok
expect "revoke app from admin takes open_wallet" "$(state rdump_admin "SELECT payext.open_wallet('rd_x')")" 42501
expect "verify_ledger after all of it" "$(q -d "$dst" -c "SELECT bool_and(ok) FROM payext.verify_ledger()")" t

if [ "$fail" = 0 ]; then
	echo "roles dump: ok"
fi
exit "$fail"
