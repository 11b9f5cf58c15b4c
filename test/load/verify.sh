#!/usr/bin/env bash
# Runs the checker (test/load/verify.sql) over the drivers' logs.
#
#   test/load/verify.sh DATABASE exact|crash LOG...
#
# exact: a load run without a crash, so every balance is also recomputed
# from the record; crash: that check is skipped (a call in flight at the
# crash may have happened without an answer).  Exits non-zero when a check
# fails, printing which and a few examples.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ $# -ge 3 ] || { echo "usage: $0 DATABASE exact|crash LOG..." >&2; exit 2; }
db=$1 mode=$2
shift 2
case $mode in
exact) exact=on ;;
crash) exact=off ;;
*) echo "verify.sh: mode must be exact or crash" >&2; exit 2 ;;
esac
# PAYEXT_LOAD_ROUTER=on: the database is a router's (test/load/run.sh).
# A router has no view of the holds' captures: every partition's
# payext.hold_capture (PAYEXT_PARTITIONS) is copied into load.hold_capture
# of the router's database for the checker.
if [ "${PAYEXT_LOAD_ROUTER:-off}" = on ]; then
	read -r -a uris <<<"${PAYEXT_PARTITIONS:?PAYEXT_LOAD_ROUTER=on runs inside scripts/with_partitions.sh}"
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = warning" \
		-c "DROP TABLE IF EXISTS load.hold_capture" \
		-c "CREATE TABLE load.hold_capture (transfer_id bigint, hold bigint, amount bigint)"
	for uri in "${uris[@]}"; do
		psql -X -q -v ON_ERROR_STOP=1 -d "$uri" \
			-c "\\copy (SELECT transfer_id, hold, amount FROM payext.hold_capture) TO STDOUT" |
			psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "\\copy load.hold_capture FROM pstdin"
	done
fi
cat "$@" | psql -X -q -v ON_ERROR_STOP=1 -v exact="$exact" -v router="${PAYEXT_LOAD_ROUTER:-off}" \
	-d "$db" -f test/load/verify.sql
