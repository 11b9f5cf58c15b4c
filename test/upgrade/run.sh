#!/usr/bin/env bash
# The upgrade suite.  Runs against the server in PGHOST/PGPORT as a
# superuser, with payext built and installed (scripts/with_cluster.sh for a
# throwaway server).  It proves:
#
#  1. A released install script is never edited: the frozen copy of the
#     current version in test/upgrade/released/, once it is released, equals
#     the one the Makefile builds from src/sql/, byte for byte.
#  2. For every earlier release R frozen there: a database made with R,
#     holding the rows R's own library wrote (frozen with it, restored as
#     pg_restore restores them), refuses every call of the new library until
#     it is updated (PY008); then ALTER EXTENSION payext UPDATE keeps every
#     row, gives exactly the schema of a fresh CREATE EXTENSION (pg_dump
#     --schema-only --binary-upgrade, which dumps the extension's own
#     objects with their privileges and comments), and the ledger verifies.
#  3. The comparison can fail: two fresh installs compare equal, and one
#     with a changed comment or an extra privilege does not.
#
# Releasing version V: `test/upgrade/run.sh --freeze` in the release commit
# writes test/upgrade/released/payext--V.sql (the built script) and
# payext--V.data.sql (the rows test/upgrade/money.sql makes with V's own
# library).  Installing an old version needs its install script in the
# server's extension directory; this suite copies it there for the length of
# the run (with sudo when not root) and removes it afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
extdir=$("$PG_CONFIG" --sharedir)/extension
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" payext.control)
built=payext--$version.sql
released=test/upgrade/released
export PGOPTIONS='--client-min-messages=warning'

dbs=()
copied=()
as_root=()
[ -w "$extdir" ] || as_root=(sudo)
cleanup() {
	for db in ${dbs[@]+"${dbs[@]}"}; do dropdb --if-exists "$db" >/dev/null 2>&1 || true; done
	psql -X -q -c 'DROP ROLE IF EXISTS payext_upgrade_till' -c 'DROP ROLE IF EXISTS payext_upgrade_admin' \
		>/dev/null 2>&1 || true
	if [ "${shard_set:-0}" = 1 ]; then
		psql -X -q -c 'ALTER SYSTEM RESET payext.shard_id' -c 'SELECT pg_reload_conf()' >/dev/null 2>&1 || true
	fi
	for f in ${copied[@]+"${copied[@]}"}; do "${as_root[@]+"${as_root[@]}"}" rm -f "$f"; done
}
trap cleanup EXIT

q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fresh_db() {
	dropdb --if-exists "$1"
	createdb "$1"
	dbs+=("$1")
}

# The schema of a database as pg_dump's binary-upgrade mode writes it, less
# what differs between any two databases: OIDs, transaction ids, sequence
# positions (data, not schema), and the random \restrict key of newer
# pg_dump releases.
schema_of() {
	"$bindir/pg_dump" --schema-only --binary-upgrade -d "$1" |
		sed -E -e '/^\\(un)?restrict /d' \
			-e '/^SELECT pg_catalog\.binary_upgrade_set_next_/d' \
			-e '/^SELECT pg_catalog\.setval\(/d' \
			-e "s/(binary_upgrade_create_empty_extension\('payext', 'payext', (true|false), '[^']*'), '\{[0-9,]*\}'/\1, '{oids}'/" \
			-e "s/relfrozenxid = '[0-9]+'/relfrozenxid = 'xid'/" \
			-e "s/^WHERE oid = '[0-9]+';/WHERE oid = 'oid';/"
}

# same_schema DB1 DB2: prints the first differences and fails if any.
same_schema() {
	local a b
	a=$(mktemp)
	b=$(mktemp)
	schema_of "$1" >"$a"
	schema_of "$2" >"$b"
	if diff -u "$a" "$b" >"$a.diff"; then
		rm -f "$a" "$b" "$a.diff"
		return 0
	fi
	head -n 60 "$a.diff"
	rm -f "$a" "$b" "$a.diff"
	return 1
}

[ -f "$built" ] || { echo "upgrade: $built is not built (make)" >&2; exit 1; }
# The roles of test/upgrade/money.sql (roles are the cluster's).
psql -X -q -c 'DROP ROLE IF EXISTS payext_upgrade_till' -c 'CREATE ROLE payext_upgrade_till NOLOGIN' \
	-c 'DROP ROLE IF EXISTS payext_upgrade_admin' -c 'CREATE ROLE payext_upgrade_admin NOLOGIN'

if [ "${1:-}" = --freeze ]; then
	mkdir -p "$released"
	cp "$built" "$released/payext--$version.sql"
	fresh_db payext_upgrade_freeze
	q -d payext_upgrade_freeze -c 'CREATE EXTENSION payext'
	q -d payext_upgrade_freeze -f test/upgrade/money.sql >/dev/null
	# What pg_dump keeps of the extension's tables, triggers off as
	# pg_restore --disable-triggers has them.
	"$bindir/pg_dump" --data-only --disable-triggers -n payext -d payext_upgrade_freeze |
		sed -E -e '/^\\(un)?restrict /d' >"$released/payext--$version.data.sql"
	echo "upgrade: froze $version in $released/payext--$version.sql and .data.sql"
	exit 0
fi
failures=0
fail() { echo "upgrade: FAILED: $*"; failures=$((failures + 1)); }

# 1. Released scripts are never edited.
if [ -f "$released/payext--$version.sql" ]; then
	if cmp -s "$released/payext--$version.sql" "$built"; then
		echo "upgrade: $built is the released $version, byte for byte"
	else
		fail "$built differs from the released $released/payext--$version.sql"
		diff -u "$released/payext--$version.sql" "$built" | head -n 40 || true
	fi
else
	echo "upgrade: $version is not released yet (no $released/payext--$version.sql)"
fi

# 3. The comparison itself: equal for equal schemas, unequal otherwise.
fresh_db payext_upgrade_a
fresh_db payext_upgrade_b
for db in payext_upgrade_a payext_upgrade_b; do
	q -d "$db" -c 'CREATE EXTENSION payext' \
		-c "SELECT payext.grant_capability('merchant', 'payext_upgrade_till')" \
		-c "SELECT payext.grant_capability('admin', 'payext_upgrade_admin')" \
		-c "SELECT payext.grant_capability('merchant', 'payext_upgrade_admin')" >/dev/null
done
if same_schema payext_upgrade_a payext_upgrade_b >/dev/null; then
	echo "upgrade: self-test: two fresh installs have the same schema"
else
	fail "two fresh installs of $version compare unequal"
fi
q -d payext_upgrade_b -c "COMMENT ON FUNCTION payext.balance(bigint) IS 'changed'"
if same_schema payext_upgrade_a payext_upgrade_b >/dev/null; then
	fail "the comparison missed a changed comment"
else
	echo "upgrade: self-test: a changed comment is a difference"
fi
q -d payext_upgrade_b -c "COMMENT ON FUNCTION payext.balance(bigint) IS NULL" \
	-c 'GRANT EXECUTE ON FUNCTION payext.charge(bigint, text, bigint, text) TO PUBLIC'
if same_schema payext_upgrade_a payext_upgrade_b >/dev/null; then
	fail "the comparison missed a privilege granted to PUBLIC"
else
	echo "upgrade: self-test: a privilege granted to PUBLIC is a difference"
fi

# 2. Every earlier release, with its own library's rows, updates to exactly
# the current schema and keeps every row.
earlier=0
for script in $(find "$released" -name 'payext--*.sql' ! -name '*.data.sql' 2>/dev/null | sort -V); do
	old=${script##*/payext--}
	old=${old%.sql}
	[ "$old" != "$version" ] || continue
	[ "$(printf '%s\n%s\n' "$old" "$version" | sort -V | head -n 1)" = "$old" ] || continue
	earlier=$((earlier + 1))
	if [ ! -f "$extdir/payext--$old.sql" ]; then
		"${as_root[@]+"${as_root[@]}"}" cp "$script" "$extdir/payext--$old.sql"
		copied+=("$extdir/payext--$old.sql")
	fi
	fresh_db payext_upgrade_old
	q -d payext_upgrade_old -c "CREATE EXTENSION payext VERSION '$old'"
	[ -f "$released/payext--$old.data.sql" ] ||
		fail "$old has no frozen rows ($released/payext--$old.data.sql)"
	[ ! -f "$released/payext--$old.data.sql" ] ||
		q -d payext_upgrade_old -f "$released/payext--$old.data.sql" >/dev/null
	# The roles get the privileges of their capabilities as $old granted them.
	q -d payext_upgrade_old -f test/upgrade/regrant.sql >/dev/null
	before=$(q -d payext_upgrade_old -f test/upgrade/rows.sql)
	# The new library refuses the old SQL, whatever the call.
	state=$(q -d payext_upgrade_old -f test/upgrade/probe.sql 2>&1 | sed -n 's/.*WARNING: *//p')
	[ "$state" = PY008 ] || fail "$old before the update: a call answered ${state:-nothing}, not PY008"
	q -d payext_upgrade_old -c 'ALTER EXTENSION payext UPDATE'
	# Before anything is granted again: the till lost the tables, the admin
	# (a merchant too) kept the journal.
	privs=$(q -d payext_upgrade_old -c "SELECT has_table_privilege('payext_upgrade_till', 'payext.transfer', 'SELECT'),
	                                           has_table_privilege('payext_upgrade_admin', 'payext.transfer', 'SELECT')")
	[ "$privs" = "f|t" ] || fail "$old -> $version: till and admin SELECT on the journal: $privs, not f|t"
	# What the README's Upgrading asks after an update.
	q -d payext_upgrade_old -f test/upgrade/regrant.sql >/dev/null
	now=$(q -d payext_upgrade_old -c "SELECT extversion FROM pg_extension WHERE extname = 'payext'")
	[ "$now" = "$version" ] || fail "$old updated to $now, not $version"
	after=$(q -d payext_upgrade_old -f test/upgrade/rows.sql)
	# Tables pg_dump keeps in both versions keep every row; a table that the
	# update stops dumping (0.8.0's live codes) is the release's to drop.
	both=$(comm -12 <(echo "$before" | cut -d'|' -f1 | LC_ALL=C sort) \
		<(echo "$after" | cut -d'|' -f1 | LC_ALL=C sort))
	kept_before=$(awk -F'|' 'NR == FNR { keep[$1]; next } $1 in keep' <(echo "$both") <(echo "$before"))
	kept_after=$(awk -F'|' 'NR == FNR { keep[$1]; next } $1 in keep' <(echo "$both") <(echo "$after"))
	[ "$kept_before" = "$kept_after" ] ||
		fail "$old -> $version changed rows: $(diff <(echo "$kept_before") <(echo "$kept_after") | head -n 6)"
	bad=$(q -d payext_upgrade_old -c "SELECT string_agg(check_name, ' ') FROM payext.verify_ledger() WHERE NOT ok")
	[ -z "$bad" ] || fail "$old -> $version: verify_ledger() fails $bad"
	if same_schema payext_upgrade_a payext_upgrade_old; then
		echo "upgrade: $old -> $version: PY008 before the update; after it the schema of a fresh $version, $(echo "$after" | awk -F'|' '{ n += $2 } END { print n }') rows kept, the ledger verifies"
	else
		fail "$old -> $version differs from a fresh install of $version (diff above: - fresh, + updated)"
	fi
done
[ "$earlier" != 0 ] || echo "upgrade: no release before $version to update from"

# 4. 0.7.0's server-wide partition number (payext.shard_id) becomes the
# database's own (payext.partition_info) in the update to 0.8.0.
if [ -f "$extdir/payext--0.7.0.sql" ] && [ "$(printf '%s\n' 0.8.0 "$version" | sort -V | head -n 1)" = 0.8.0 ]; then
	shard_set=1
	q -c 'ALTER SYSTEM SET payext.shard_id = 3' -c 'SELECT pg_reload_conf()' >/dev/null
	for _ in $(seq 50); do
		[ "$(q -c 'SHOW payext.shard_id')" = 3 ] && break
		sleep 0.1
	done
	fresh_db payext_upgrade_shard
	q -d payext_upgrade_shard -c "CREATE EXTENSION payext VERSION '0.7.0'" \
		-c 'ALTER EXTENSION payext UPDATE TO '"'0.8.0'" -c 'ALTER EXTENSION payext UPDATE'
	q -c 'ALTER SYSTEM RESET payext.shard_id' -c 'SELECT pg_reload_conf()' >/dev/null
	shard_set=0
	got=$(q -d payext_upgrade_shard -c "SELECT payext.current_partition(), payext.partition_of(payext.open_wallet('shard-ann'))")
	if [ "$got" = "3|3" ]; then
		echo "upgrade: 0.7.0 with payext.shard_id = 3 -> $version: the database is partition 3, and its new ids carry 3"
	else
		fail "0.7.0 with payext.shard_id = 3 -> $version: partition and new id's partition $got, not 3|3"
	fi
fi

[ "$failures" = 0 ] || { echo "upgrade: $failures failure(s)"; exit 1; }
echo "upgrade: ok"
