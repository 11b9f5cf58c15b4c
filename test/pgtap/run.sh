#!/usr/bin/env bash
# Runs the pgTAP suite (test/pgtap/*.sql) with pg_prove against the server
# that PGHOST/PGPORT/PGUSER point at, in a database of its own that is
# created fresh and dropped afterwards.  The role must be a superuser (the
# tests create a role and look at catalogs).  Expects payext installed.
#
#   test/pgtap/run.sh                      # every file
#   test/pgtap/run.sh test/pgtap/ledger.sql  # some files
#   scripts/with_cluster.sh test/pgtap/run.sh  # in a throwaway cluster
#
# Exits non-zero when a test fails or the setup does.
set -euo pipefail
cd "$(dirname "$0")/../.."

db=${PAYEXT_TAP_DB:-payext_tap}
admin_db=${PGDATABASE:-postgres}
psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -d "$admin_db")

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/pgtap/*.sql)

drop_db() {
	"${psql_admin[@]}" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\""
}
trap drop_db EXIT

drop_db
"${psql_admin[@]}" -c "CREATE DATABASE \"$db\""
psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
	-c 'CREATE EXTENSION pgtap' \
	-c 'CREATE EXTENSION payext'

pg_prove -d "$db" "${files[@]}"
