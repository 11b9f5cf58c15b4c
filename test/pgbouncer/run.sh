#!/usr/bin/env bash
# payext behind a real pooler: Debian's PgBouncer in transaction pooling
# mode, started by this script on loopback only (a unix socket in a
# directory of its own and 127.0.0.1 on a free port), in front of the
# server in PGHOST/PGPORT (a superuser in PGUSER), with 2 server
# connections per pool for 8 clients, so that server connections really
# are shared between clients.  It proves, through the pooler:
#
#   1. the payment story with psql (simple protocol): the app requests a
#      code, the till charges it (CALL payext.merchant_charge), refunds
#      part of it, reads payment_status; a retried charge or refund returns
#      the first transfer; a used code is PY206, a charge above the balance
#      PY104, another shop's account 42501 (SQLSTATEs, not just failures);
#   2. a pooled till: a login that is a NOINHERIT member of the till roles
#      can charge, refund and settle only inside
#      BEGIN; SET LOCAL ROLE till; CALL ...; COMMIT;
#      and the role does not outlive the transaction on the shared server
#      connection (a plain SET ROLE does, which the suite shows too);
#   3. a parameterised client: pgbench -M extended (bound parameters, no
#      named prepared statements), 8 clients for 5 s, each script a code
#      requested in one transaction and charged in the next, often on
#      another server connection; with -M prepared, clients run into each
#      other's named statements behind PgBouncer < 1.21 (shown too);
#   4. merchant_refund and merchant_settle through the pooler, retries
#      included;
#
# and afterwards, directly against the server: verify_ledger() passes,
# every currency sums to zero, the charges are exactly the transactions
# pgbench acknowledged, no order was charged twice, no script started with
# a role left over from another client.
#
#   scripts/with_cluster.sh test/pgbouncer/run.sh
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh test/pgbouncer/run.sh
#   PAYEXT_PGBOUNCER_SECONDS (default 5), PAYEXT_PGBOUNCER_CLIENTS (default 8)
#   PAYEXT_PGBOUNCER (default /usr/sbin/pgbouncer; Debian package pgbouncer)
#
# Works with both kinds of cluster of scripts/with_cluster.sh: a socket
# directory in PGHOST (initdb, trust) or TCP to localhost with passwords
# (pg_virtualenv); every role made here has a random password that
# PgBouncer's userlist carries.  PgBouncer refuses to run as root: as root
# it runs as the postgres user, as the server does (scripts/owned_dir.sh).
# Ends with "pgbouncer: ok (...)"; on failure prints PgBouncer's log.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
t0=$SECONDS

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
psql_bin=$bindir/psql
pgbench_bin=$bindir/pgbench
pgbouncer_bin=${PAYEXT_PGBOUNCER:-/usr/sbin/pgbouncer}
seconds=${PAYEXT_PGBOUNCER_SECONDS:-5}
clients=${PAYEXT_PGBOUNCER_CLIENTS:-8}
pool_size=2
db=payext_pgbouncer

[ -x "$pgbouncer_bin" ] || { echo "pgbouncer: $pgbouncer_bin not found (Debian: apt-get install pgbouncer)" >&2; exit 2; }
[ -x "$pgbench_bin" ] || { echo "pgbouncer: $pgbench_bin not found" >&2; exit 2; }

# The server, as PgBouncer will reach it: a socket directory or a host name.
server_host=${PGHOST:-/var/run/postgresql}
server_port=${PGPORT:-5432}

# shellcheck source=scripts/owned_dir.sh
. "$repo/scripts/owned_dir.sh"
# shellcheck source=scripts/ports.sh
. "$repo/scripts/ports.sh"
owned_dir payext-pgbouncer
work=$owned_dir_path
ini=$work/pgbouncer.ini
userlist=$work/userlist.txt
blog=$work/pgbouncer.log
bouncer_job=
port=

fail() {
	echo "pgbouncer: FAILED: $*" >&2
	exit 1
}

# Directly against the server, as the superuser.
direct() { "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

stop_bouncer() {
	local pid
	[ -n "$bouncer_job" ] || return 0
	pid=$(cat "$work/pgbouncer.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
	elif kill -0 "$bouncer_job" 2>/dev/null; then
		kill -TERM "$bouncer_job" 2>/dev/null || true
	fi
	wait "$bouncer_job" 2>/dev/null || true
	bouncer_job=
}

cleanup() {
	status=$?
	stop_bouncer
	if [ "$status" != 0 ] && [ -f "$blog" ]; then
		echo "--- pgbouncer log (last 80 lines) ---" >&2
		tail -n 80 "$blog" >&2 || true
	fi
	"$psql_bin" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	"$psql_bin" -X -q -d postgres \
		-c "DROP ROLE IF EXISTS pgb_pool, pgb_app, pgb_till_tea, pgb_till_bakery" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Files PgBouncer reads hold passwords: readable by its user only.
private_file() {
	chmod 600 "$1"
	if [ "$(id -u)" = 0 ]; then chown "$owner" "$1"; fi
}
random_password() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

declare -A password
for role in pgb_app pgb_till_tea pgb_till_bakery pgb_pool pgb_admin; do
	password[$role]=$(random_password)
done

# --- the database, its roles and its money (directly, as the superuser)
echo "--- pgbouncer: setting up $db"
"$psql_bin" -X -q -v ON_ERROR_STOP=1 -d postgres \
	-v app_pw="${password[pgb_app]}" -v tea_pw="${password[pgb_till_tea]}" \
	-v bakery_pw="${password[pgb_till_bakery]}" -v pool_pw="${password[pgb_pool]}" <<EOF
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $db WITH (FORCE);
DROP ROLE IF EXISTS pgb_pool, pgb_app, pgb_till_tea, pgb_till_bakery;
-- The social app's backend, and one till login per shop.
CREATE ROLE pgb_app LOGIN PASSWORD :'app_pw';
CREATE ROLE pgb_till_tea LOGIN PASSWORD :'tea_pw';
CREATE ROLE pgb_till_bakery LOGIN PASSWORD :'bakery_pw';
-- The pooled service's login: a member of the app and of both tills, but
-- NOINHERIT, so that it holds none of their rights until a transaction
-- picks one with SET LOCAL ROLE.
CREATE ROLE pgb_pool LOGIN NOINHERIT PASSWORD :'pool_pw';
GRANT pgb_app, pgb_till_tea, pgb_till_bakery TO pgb_pool;
CREATE DATABASE $db;
EOF

wallets=40
direct -v wallets="$wallets" <<'EOF' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION payext;
SELECT payext.grant_capability('app', 'pgb_app');
SELECT payext.grant_capability('merchant', 'pgb_till_tea');
SELECT payext.grant_capability('merchant', 'pgb_till_bakery');
SELECT payext.open_merchant('gh_pgb_tea', 'Pooled Teahouse');
SELECT payext.open_merchant('gh_pgb_bakery', 'Pooled Bakery');
SELECT payext.map_merchant_role('pgb_till_tea', a.id)
  FROM payext.account a WHERE a.public_service_id = 'gh_pgb_tea';
SELECT payext.map_merchant_role('pgb_till_bakery', a.id)
  FROM payext.account a WHERE a.public_service_id = 'gh_pgb_bakery';
-- Alice for the stories; the load's wallets, opened in one statement.
SELECT payext.open_wallet('pgb_alice');
SELECT payext.top_up(payext.open_wallet('pgb_alice'), 10000, 'pgb-alice-seed');
SELECT payext.open_wallet('pgb_user_' || g) FROM generate_series(1, :wallets) AS g;
SELECT payext.top_up(a.id, 10000000, 'pgb-seed-' || a.id)
  FROM payext.account a WHERE a.owner LIKE 'pgb\_user\_%' ORDER BY a.id;
-- What the load's clients committed, written in each charge's transaction.
CREATE SCHEMA pgb;
CREATE TABLE pgb.served (
  client int NOT NULL, n int NOT NULL,
  role_before_issue text NOT NULL, role_before_charge text NOT NULL,
  issued_on int NOT NULL, charged_on int NOT NULL,
  wallet bigint NOT NULL, amount bigint NOT NULL,
  order_ref text NOT NULL, transfer_id bigint NOT NULL,
  PRIMARY KEY (client, n)
);
GRANT USAGE ON SCHEMA pgb TO pgb_till_tea;
GRANT INSERT ON pgb.served TO pgb_till_tea;
EOF
tea=$(direct -c "SELECT id FROM payext.account WHERE public_service_id = 'gh_pgb_tea'")
bakery=$(direct -c "SELECT id FROM payext.account WHERE public_service_id = 'gh_pgb_bakery'")
alice=$(direct -c "SELECT id FROM payext.account WHERE owner = 'pgb_alice'")
IFS='|' read -r wallet_lo wallet_hi wallet_n < <(direct -c \
	"SELECT min(id), max(id), count(*) FROM payext.account WHERE owner LIKE 'pgb\_user\_%'")
[ $((wallet_hi - wallet_lo + 1)) = "$wallet_n" ] || fail "the load's wallets are not consecutive ids"

# --- PgBouncer, on loopback only
# Three pools on the one database: the main one ($db), a one-connection
# pool for the pooled till (so that consecutive transactions are known to
# share a server connection), and one for -M prepared's collisions.
write_config() {
	cat >"$ini" <<EOF
[databases]
$db = host=$server_host port=$server_port dbname=$db
till_one = host=$server_host port=$server_port dbname=$db pool_size=1
prepared_demo = host=$server_host port=$server_port dbname=$db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $work
pidfile = $work/pgbouncer.pid
auth_type = scram-sha-256
auth_file = $userlist
admin_users = pgb_admin
pool_mode = transaction
max_client_conn = 16
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
server_login_retry = 1
log_connections = 0
log_disconnections = 0
EOF
	private_file "$ini"
}
: >"$userlist"
for role in "${!password[@]}"; do
	printf '"%s" "%s"\n' "$role" "${password[$role]}" >>"$userlist"
done
private_file "$userlist"

# A client through PgBouncer: ROLE, then the command; over the unix socket,
# or TCP to 127.0.0.1 with via_tcp.
via() {
	local role=$1 dbname=$2
	shift 2
	PGHOST=$work PGPORT=$port PGUSER=$role PGPASSWORD=${password[$role]} PGDATABASE=$dbname "$@"
}
via_tcp() {
	local role=$1 dbname=$2
	shift 2
	PGHOST=127.0.0.1 PGPORT=$port PGUSER=$role PGPASSWORD=${password[$role]} PGDATABASE=$dbname "$@"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started=
for _ in 1 2 3 4 5; do
	pick_ports 1
	port=$ports_base
	if [ "$port" = "$server_port" ] || port_in_use "$port"; then continue; fi
	write_config
	rm -f "$work/pgbouncer.pid"
	as_owner "$pgbouncer_bin" "$ini" >>"$blog" 2>&1 &
	bouncer_job=$!
	for _ in $(seq 1 50); do
		if ! kill -0 "$bouncer_job" 2>/dev/null; then break; fi
		if via pgb_admin pgbouncer "$psql_bin" -X -q -At -c 'SHOW VERSION' >/dev/null 2>&1; then
			started=1
			break
		fi
		sleep 0.2
	done
	[ -z "$started" ] || break
	stop_bouncer
done
[ -n "$started" ] || fail "PgBouncer did not start"
bouncer_version=$(via pgb_admin pgbouncer "$psql_bin" -X -q -At -c 'SHOW VERSION' | sed -E 's/^PgBouncer ([0-9.]+).*/\1/')
echo "--- pgbouncer: PgBouncer $bouncer_version on $work/.s.PGSQL.$port and 127.0.0.1:$port, pool_mode transaction, $pool_size server connections per pool"

# q ROLE SQL...: through the pooler's main pool, one value per line.
q() {
	local role=$1
	shift
	local args=()
	for sql in "$@"; do args+=(-c "$sql"); done
	via "$role" "$db" "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 "${args[@]}"
}
# expect_error SQLSTATE ROLE DBNAME SQL: the statement fails with exactly that SQLSTATE.
expect_error() {
	local state=$1 role=$2 dbname=$3 sql=$4 err
	if err=$(via "$role" "$dbname" "$psql_bin" -X -q -At -v VERBOSITY=sqlstate -c "$sql" 2>&1); then
		fail "expected $state, but it succeeded: $sql"
	fi
	[ "$(grep -m1 '^ERROR:' <<<"$err" | sed -E 's/^ERROR: +//')" = "$state" ] ||
		fail "expected $state from: $sql; got: $err"
}
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"
}

# --- 1. the payment story, through the pooler, each call its own client
echo "--- pgbouncer: the payment story (psql, simple protocol)"
code=$(q pgb_app "SELECT payext.request_payment(wallet => $alice)")
[[ $code =~ ^[0-9]{18}$ ]] || fail "not a payment code: $code"
charge="CALL payext.merchant_charge(merchant => $tea, code => '$code', amount => 1200, order_ref => 'story-1')"
tid=$(q pgb_till_tea "$charge")
[[ $tid =~ ^[0-9]+$ ]] || fail "merchant_charge gave no transfer id: $tid"
expect_eq "the charge retried" "$(q pgb_till_tea "$charge")" "$tid"
refund="CALL payext.merchant_refund(merchant => $tea, order_ref => 'story-1', amount => 200, refund_ref => 'story-1-r1')"
rid=$(q pgb_till_tea "$refund")
if ! [[ $rid =~ ^[0-9]+$ ]] || [ "$rid" = "$tid" ]; then fail "merchant_refund gave no new transfer id: $rid"; fi
expect_eq "the refund retried" "$(q pgb_till_tea "$refund")" "$rid"
expect_eq "payment_status" "$(q pgb_till_tea "SELECT transfer_id, amount, refunded_amount, state
	FROM payext.payment_status(merchant => $tea, order_ref => 'story-1')")" "$tid|1200|200|partially_refunded"
expect_error PY210 pgb_till_tea "$db" \
	"CALL payext.merchant_refund(merchant => $tea, order_ref => 'story-1', amount => 1001, refund_ref => 'story-1-r2')"
expect_error PY206 pgb_till_tea "$db" \
	"CALL payext.merchant_charge(merchant => $tea, code => '$code', amount => 100, order_ref => 'story-2')"
code2=$(q pgb_app "SELECT payext.request_payment(wallet => $alice)")
expect_error PY104 pgb_till_tea "$db" \
	"CALL payext.merchant_charge(merchant => $tea, code => '$code2', amount => 9001, order_ref => 'story-2')"
expect_error 42501 pgb_till_tea "$db" \
	"CALL payext.merchant_charge(merchant => $bakery, code => '$code2', amount => 500, order_ref => 'story-2')"
# Neither refusal burnt the code.
tid2=$(q pgb_till_tea "CALL payext.merchant_charge(merchant => $tea, code => '$code2', amount => 500, order_ref => 'story-2')")
[[ $tid2 =~ ^[0-9]+$ ]] || fail "a refused charge burnt its code"
expect_eq "alice's balance, seen by the app" "$(q pgb_app "SELECT payext.balance($alice)")" 8500
echo "charge $tid, retry: same; refund $rid, retry: same; status partially_refunded; PY210, PY206, PY104, 42501 refused; balance 8500"

# --- 2. a pooled till: one login, SET LOCAL ROLE per transaction
echo "--- pgbouncer: a pooled till (SET LOCAL ROLE over a one-connection pool)"
code3=$(q pgb_app "SELECT payext.request_payment(wallet => $alice)")
# The pool's login holds no merchant rights of its own (NOINHERIT) ...
expect_error 42501 pgb_pool till_one \
	"CALL payext.merchant_charge(merchant => $bakery, code => '$code3', amount => 300, order_ref => 'pooled-1')"
# ... and acting as one till, it cannot act for another till's shop.
expect_error 42501 pgb_pool till_one "BEGIN; SET LOCAL ROLE pgb_till_tea;
	CALL payext.merchant_charge(merchant => $bakery, code => '$code3', amount => 300, order_ref => 'pooled-1'); COMMIT"
cat >"$work/pooled.sql" <<EOF
SELECT current_user AS before_user, pg_backend_pid() AS before_pid \gset
BEGIN;
SET LOCAL ROLE pgb_till_bakery;
SELECT current_user AS in_user, pg_backend_pid() AS in_pid \gset
CALL payext.merchant_charge(merchant => $bakery, code => '$code3', amount => 300, order_ref => 'pooled-1') \gset
COMMIT;
SELECT current_user AS after_user, pg_backend_pid() AS after_pid \gset
BEGIN;
SET LOCAL ROLE pgb_till_bakery;
CALL payext.merchant_refund(merchant => $bakery, order_ref => 'pooled-1', amount => 50, refund_ref => 'pooled-1-r1');
COMMIT;
-- A failed transaction rolls the role back too.
BEGIN;
SET LOCAL ROLE pgb_till_bakery;
\set ON_ERROR_STOP 0
SELECT 1 / 0;
\set ON_ERROR_STOP 1
ROLLBACK;
SELECT current_user AS rolled_back_user, pg_backend_pid() AS rolled_back_pid \gset
\echo :before_user :before_pid :in_user :in_pid :transfer_id :after_user :after_pid :rolled_back_user :rolled_back_pid
EOF
out=$(via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -f "$work/pooled.sql" 2>"$work/pooled.err") ||
	{ cat "$work/pooled.err" >&2; fail "the pooled till's transactions"; }
read -r before_user before_pid in_user in_pid pooled_tid after_user after_pid rb_user rb_pid <<<"$(tail -n1 <<<"$out")"
expect_eq "the login before SET LOCAL ROLE" "$before_user" pgb_pool
expect_eq "current_user inside the transaction" "$in_user" pgb_till_bakery
expect_eq "current_user in the next transaction" "$after_user" pgb_pool
expect_eq "current_user after a rolled back transaction" "$rb_user" pgb_pool
if [ "$before_pid $in_pid $after_pid" != "$in_pid $after_pid $rb_pid" ]; then
	fail "the one-connection pool used several server connections ($before_pid $in_pid $after_pid $rb_pid)"
fi
[[ $pooled_tid =~ ^[0-9]+$ ]] || fail "the pooled till's charge gave no transfer id"
expect_eq "the pooled till's payment" "$(direct -c "SELECT amount, refunded FROM payext.payment WHERE transfer_id = $pooled_tid")" "300|50"
# A plain SET ROLE, by contrast, stays on the server connection for the
# next client of the pool: the leak that SET LOCAL ROLE avoids.
leak_pid=$(via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -c "SET ROLE pgb_till_bakery" -c "SELECT pg_backend_pid()")
leaked=$(via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -c "SELECT current_user || ' ' || pg_backend_pid()")
expect_eq "a plain SET ROLE seen by the next client" "$leaked" "pgb_till_bakery $leak_pid"
via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -c "RESET ROLE" >/dev/null
expect_eq "after RESET ROLE" "$(via pgb_pool till_one "$psql_bin" -X -q -At -c "SELECT current_user")" pgb_pool
# Settling through the pooled till, and its retry.
settle="BEGIN; SET LOCAL ROLE pgb_till_bakery;
	CALL payext.merchant_settle(merchant => $bakery, bank_ref => 'pgb-bakery-settle-1'); COMMIT"
IFS='|' read -r s_amount s_tid s_charges s_charged s_refunds s_refunded < <(via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -c "$settle")
expect_eq "the bakery's settlement" "$s_amount $s_charges $s_charged $s_refunds $s_refunded" "250 1 300 1 50"
expect_eq "the settlement retried" "$(via pgb_pool till_one "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -c "$settle" | cut -d'|' -f1,2)" "250|$s_tid"
expect_eq "the bakery's balance after settling" "$(direct -c "SELECT payext.balance($bakery)")" 0
echo "server connection $in_pid: pgb_pool -> pgb_till_bakery inside, pgb_pool after COMMIT and after ROLLBACK; a plain SET ROLE leaked to the next client; settled 250 (retry: same transfer)"

# --- 3. why not -M prepared: a named statement lives on one server
# connection, and clients share them.  Each of 4 clients prepares its
# statement under pgbench's one name on one of 2 server connections, so at
# least 2 find it there already; pgbench 15 reports the error and goes on
# (every client prepared the same text), a driver that prepares different
# statements under one name, or expects its own on a fresh connection,
# would not.
if [ "$(printf '%s\n' "$bouncer_version" 1.21 | sort -V | head -n1)" != 1.21 ]; then
	echo "--- pgbouncer: pgbench -M prepared through PgBouncer $bouncer_version (named statements collide)"
	printf 'SELECT 1;\n' >"$work/select.sql"
	via_tcp pgb_app prepared_demo "$pgbench_bin" -n -M prepared -c 4 -j 1 -t 3 -f "$work/select.sql" \
		>"$work/prepared.out" 2>&1 || true
	collisions=$(grep -Ec 'prepared statement "[^"]+" (already exists|does not exist)' "$work/prepared.out" || true)
	if [ "$collisions" -lt $((4 - pool_size)) ]; then
		cat "$work/prepared.out"
		fail "pgbench -M prepared: $collisions named-statement errors through PgBouncer $bouncer_version, expected at least $((4 - pool_size))"
	fi
	echo "$collisions x $(grep -Eo 'prepared statement "[^"]+" (already exists|does not exist)' "$work/prepared.out" | head -n1)"
fi

# --- 4. the parameterised client: pgbench -M extended
echo "--- pgbouncer: pgbench -M extended, $clients clients, $seconds s, 127.0.0.1:$port"
cat >"$work/charge.sql" <<'EOF'
-- A code requested by the app in one transaction and charged by the till
-- in the next, each under SET LOCAL ROLE, every value a bound parameter.
\set wallet random(:wallet_lo, :wallet_hi)
\set amount random(1, 500)
\set n :n + 1
BEGIN;
SELECT current_user AS role_before_issue \gset
SET LOCAL ROLE pgb_app;
SELECT payext.request_payment(wallet => :wallet, max_amount => :amount) AS code, pg_backend_pid() AS issued_on \gset
COMMIT;
BEGIN;
SELECT current_user AS role_before_charge \gset
SET LOCAL ROLE pgb_till_tea;
CALL payext.merchant_charge(merchant => :tea, code => :code, amount => :amount, order_ref => 'pgb-' || :client_id || '-' || :n) \gset
INSERT INTO pgb.served (client, n, role_before_issue, role_before_charge, issued_on, charged_on, wallet, amount, order_ref, transfer_id)
VALUES (:client_id, :n, :role_before_issue, :role_before_charge, :issued_on, pg_backend_pid(), :wallet, :amount, 'pgb-' || :client_id || '-' || :n, :transfer_id);
COMMIT;
EOF
bench_rc=0
via_tcp pgb_pool "$db" "$pgbench_bin" -n -M extended -c "$clients" -j 2 -T "$seconds" \
	-D n=0 -D tea="$tea" -D wallet_lo="$wallet_lo" -D wallet_hi="$wallet_hi" \
	-f "$work/charge.sql" >"$work/pgbench.out" 2>&1 || bench_rc=$?
acked=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/pgbench.out")
failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$work/pgbench.out")
if [ "$bench_rc" != 0 ] || [ -z "$acked" ] || [ "${failed:-0}" != 0 ] || [ "$acked" = 0 ]; then
	cat "$work/pgbench.out"
	fail "pgbench through the pooler (exit $bench_rc)"
fi
grep -E '^(query mode|number of clients|number of transactions actually|number of failed|latency average|tps)' "$work/pgbench.out"

# --- 5. refunds and the teahouse's settlement through the pooler
echo "--- pgbouncer: merchant_refund and merchant_settle for the load's shop"
refunded=0
while IFS='|' read -r order amount; do
	r=$(q pgb_till_tea "CALL payext.merchant_refund(merchant => $tea, order_ref => '$order', amount => $amount, refund_ref => '$order-r')")
	expect_eq "a refund retried" "$(q pgb_till_tea "CALL payext.merchant_refund(merchant => $tea, order_ref => '$order', amount => $amount, refund_ref => '$order-r')")" "$r"
	refunded=$((refunded + amount))
done < <(direct -c "SELECT order_ref, amount FROM pgb.served ORDER BY client, n LIMIT 3")
expect_eq "the refunded orders' state" "$(direct -c "SELECT count(*) FROM payext.payment p JOIN (SELECT order_ref FROM pgb.served ORDER BY client, n LIMIT 3) s USING (order_ref) WHERE p.merchant = $tea AND p.refunded = p.amount")" 3
day_before=$(direct -c "SELECT date_trunc('day', now() AT TIME ZONE 'UTC')")
tea_balance=$(direct -c "SELECT payext.balance($tea)")
IFS='|' read -r s_amount s_tid s_charges s_charged s_refunds s_refunded < <(q pgb_till_tea \
	"CALL payext.merchant_settle(merchant => $tea, bank_ref => 'pgb-tea-settle-1')")
expect_eq "the teahouse's settlement" "$s_amount" "$tea_balance"
expect_eq "the teahouse's settlement retried" "$(q pgb_till_tea "CALL payext.merchant_settle(merchant => $tea, bank_ref => 'pgb-tea-settle-1')" | cut -d'|' -f1,2)" "$s_amount|$s_tid"
expect_eq "the teahouse's balance after settling" "$(q pgb_till_tea "SELECT payext.balance($tea)")" 0
if [ "$day_before" = "$(direct -c "SELECT date_trunc('day', now() AT TIME ZONE 'UTC')")" ]; then
	expect_eq "the settlement's day" "$s_charges $s_charged $s_refunds $s_refunded" \
		"$(direct -c "SELECT (SELECT count(*) || ' ' || coalesce(sum(amount), 0) FROM payext.payment WHERE merchant = $tea)
			|| ' ' || (SELECT count(*) || ' ' || coalesce(sum(amount), 0) FROM payext.refund WHERE merchant = $tea)")"
fi
echo "3 orders refunded in full (retries: same transfer), $refunded in all; settled $s_amount: $s_charges charges, $s_refunds refunds today"

# --- 6. afterwards, directly against the server
echo "--- pgbouncer: checks against the server"
bad=$(direct -c "SELECT check_name || ': ' || detail FROM payext.verify_ledger() WHERE NOT ok")
[ -z "$bad" ] || fail "verify_ledger(): $bad"
expect_eq "verify_ledger()" "$(direct -c "SELECT bool_and(ok) FROM payext.verify_ledger()")" t
# Every currency sums to zero: user and merchant balances against the
# system accounts' side of the journal.
expect_eq "currencies that do not sum to zero" "$(direct <<'EOF'
SELECT count(*) FROM (
  SELECT a.currency,
         sum(CASE WHEN a.kind = 'system'
                  THEN (SELECT coalesce(sum(CASE WHEN t.credit_account = a.id THEN t.amount ELSE -t.amount END), 0)
                          FROM payext.transfer t WHERE a.id IN (t.debit_account, t.credit_account))
                  ELSE payext.balance(a.id) END) AS total
    FROM payext.account a GROUP BY a.currency) c
 WHERE total <> 0
EOF
)" 0
expect_eq "charges recorded by the clients' transactions" "$(direct -c "SELECT count(*) FROM pgb.served")" "$acked"
expect_eq "the load's charges in payext.payment" \
	"$(direct -c "SELECT count(*) FROM payext.payment WHERE merchant = $tea AND order_ref LIKE 'pgb-%'")" "$acked"
expect_eq "acknowledged charges that are the journal's" "$(direct -c "SELECT count(*) FROM pgb.served s
	JOIN payext.payment p ON p.transfer_id = s.transfer_id AND p.order_ref = s.order_ref
	 AND p.merchant = $tea AND p.wallet = s.wallet AND p.amount = s.amount
	JOIN payext.transfer t ON t.id = s.transfer_id AND t.kind = 'charge' AND t.amount = s.amount")" "$acked"
expect_eq "orders charged twice" "$(direct -c "SELECT count(*) FROM (SELECT 1 FROM payext.payment
	GROUP BY merchant, order_ref HAVING count(*) > 1) d")" 0
expect_eq "charge transfers twice for one order" "$(direct -c "SELECT count(*) FROM (SELECT 1 FROM payext.transfer
	WHERE kind = 'charge' GROUP BY idem_scope, reference HAVING count(*) > 1) d")" 0
expect_eq "scripts that started with another role" "$(direct -c "SELECT count(*) FROM pgb.served
	WHERE role_before_issue <> 'pgb_pool' OR role_before_charge <> 'pgb_pool'")" 0
IFS='|' read -r n_clients n_servers n_moved < <(direct -c "SELECT count(DISTINCT client),
	count(DISTINCT charged_on), count(*) FILTER (WHERE issued_on <> charged_on) FROM pgb.served")
expect_eq "clients that charged" "$n_clients" "$clients"
[ "$n_servers" -le "$pool_size" ] || fail "$n_servers server connections charged, more than the pool's $pool_size"

echo "pgbouncer: ok ($acked charges by $n_clients pgbench clients (-M extended) over $n_servers server connections," \
	"$n_moved charged on another connection than issued them; SET LOCAL ROLE never leaked; ledger verifies;" \
	"$((SECONDS - t0)) s)"
