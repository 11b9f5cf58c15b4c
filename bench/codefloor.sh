#!/usr/bin/env bash
# Issuing a code against the least an issue can do, in one cluster: per
# round, pgbench's select-only, payext's issue (bench/scripts/code.sql) and
# the floor, one INSERT of a row into an unlogged copy of
# payext.payment_code (its columns, CHECKs, defaults and three indexes) in
# a statement of its own, with no function, no wallet read, no key and no
# purge.  Prints each round's issue ÷ select-only, floor ÷ select-only and
# issue ÷ floor.  The floor is what an unlogged row and its commit cost;
# what payext adds is the rest.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh -o shared_buffers=1GB \
#       bench/codefloor.sh
#
# Knobs: FLOOR_ROUNDS (3), FLOOR_SECONDS (15), FLOOR_CLIENTS (8),
# FLOOR_SYNC (synchronous_commit: off).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${FLOOR_ROUNDS:-3}
seconds=${FLOOR_SECONDS:-15}
clients=${FLOOR_CLIENTS:-8}
sync=${FLOOR_SYNC:-off}
# shellcheck source=bench/tps.sh
. bench/tps.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench/populate.sh
"$bindir/pgbench" -i -q -s 10 bench >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d bench <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.code_floor;
CREATE UNLOGGED TABLE public.code_floor
  (LIKE payext.payment_code INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
DROP SEQUENCE IF EXISTS public.code_floor_seq;
CREATE SEQUENCE public.code_floor_seq;
SQL
# Distinct 15-digit codes: the serial times an odd number, mod 10^15.
cat >"$work/floor.sql" <<'SQL'
\set w random(1, 100000)
INSERT INTO public.code_floor (serial, code, key_id, wallet, created_at, expires_at)
SELECT s, s * 7919 % 1000000000000000, 1, :w, now(), now() + interval '1 minute'
  FROM nextval('public.code_floor_seq') AS s;
SQL

echo "round select issue floor issue/select floor/select issue/floor"
for r in $(seq 1 "$rounds"); do
	s=$(tps -b select-only)
	i=$(tps -f bench/scripts/code.sql)
	f=$(tps -f "$work/floor.sql")
	echo "$r $s $i $f $(awk -v s="$s" -v i="$i" -v f="$f" \
		'BEGIN { printf "%.3f %.3f %.3f", i / s, f / s, i / f }')"
done
