#!/usr/bin/env bash
# The single node's regression stories (sql/*.sql), run through the router
# that PGHOST, PGPORT and PGDATABASE name, on partitions fresh from
# scripts/with_partitions.sh 2 (scripts/run_suites.sh's router suite).
#
# A router must answer like a single node but where partitions show: ids
# carry their partition, verify_ledger() answers for each partition,
# session settings and tables such as payment_code are each partition's
# own, orders are claimed (docs/partitions.md).  So the router's answers
# are not compared with expected/*.out directly: both are normalised
# (stories/normalize.awk: PL/Proxy's prefixes, CONTEXT lines), and the
# difference between them must be exactly the reviewed one in
# stories/<story>.diff.  Any other difference fails, and shows how the
# difference changed.  After a story changes, PAYEXT_STORIES_ACCEPT=1
# writes the new differences, for review line by line before committing.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_CONFIG=${PG_CONFIG:-pg_config}
regress="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
[ -n "${PAYEXT_PARTITIONS:-}" ] || { echo "stories: run inside scripts/with_partitions.sh" >&2; exit 2; }
here=test/router/stories

# In the single node's order (its balances and ids depend on the stories
# before), without the stories about one node's insides: codes (keys,
# live codes, session settings), code_guessing (another database on the
# same server), partition, saga (a partition's own side) and verify
# (tampering with tables by hand).
stories=(accounts association charge_many charges currency events holds ledger merchant_credit parking parking_ops reversal statement zz_bad_input)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sql" "$work/expected"
for s in "${stories[@]}"; do
	cp "sql/$s.sql" "$work/sql/"
	cp "expected/$s.out" "$work/expected/"
done
psql -X -q -v ON_ERROR_STOP=1 -f "$here/setup.sql"

# Every story differs somewhere, so pg_regress reports them all failed;
# what counts is how each differs.  A story that did not run to its end
# (psql died) fails here.
PGOPTIONS="-c search_path=payext_story,pg_catalog,public" \
	"$regress" --use-existing --dbname="$PGDATABASE" --host="$PGHOST" --port="$PGPORT" \
	--user="$PGUSER" --inputdir="$work" --outputdir="$work" "${stories[@]}" >"$work/regress.log" 2>&1 || true
if grep -q "exited with exit code" "$work/regress.log"; then
	cat "$work/regress.log"
	echo "stories: a story did not run to its end through the router"
	exit 1
fi

status=0
for s in "${stories[@]}"; do
	if [ ! -f "$work/results/$s.out" ]; then
		echo "stories: $s did not run"
		status=1
		continue
	fi
	awk -f "$here/normalize.awk" "$work/expected/$s.out" >"$work/$s.node"
	awk -f "$here/normalize.awk" "$work/results/$s.out" >"$work/$s.router"
	diff "$work/$s.node" "$work/$s.router" >"$work/$s.diff" || true
	if [ "${PAYEXT_STORIES_ACCEPT:-0}" = 1 ]; then
		cp "$work/$s.diff" "$here/$s.diff"
		echo "stories: $s: $(grep -c '^[<>]' "$here/$s.diff") lines differ, written to $here/$s.diff for review"
	elif diff -u "$here/$s.diff" "$work/$s.diff" >"$work/$s.change"; then
		echo "stories: $s: the reviewed differences, no other"
	else
		echo "stories: $s differs through the router otherwise than reviewed ($here/$s.diff):"
		cat "$work/$s.change"
		status=1
	fi
done
exit $status
