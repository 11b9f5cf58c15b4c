#!/usr/bin/env bash
# How fast can a malicious till guess payment codes?  Measures the rate at
# which merchant sessions submit made-up codes (right length, right
# partition digits, right check digit, so that each is a real guess and not
# a typo) through merchant_charge, catching every error in a PL/pgSQL loop as
# an attacker would.  What a rate means depends on the code's layout: the
# README's Security section turns it into the expected time to a hit.
#
#   scripts/with_cluster.sh bench/guess.sh [SECONDS [SESSIONS...]]
#
# Runs against the server in PGHOST/PGPORT with payext installed, in a
# database of its own.  Prints one line per session count, then the
# failures payext recorded (code_failure, when the version has it).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
shift || true
sessions=("$@")
[ ${#sessions[@]} -gt 0 ] || sessions=(1 8)
db=payext_guess
export PGOPTIONS='--client-min-messages=warning'
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

dropdb --if-exists "$db"
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT
q <<'SQL'
CREATE EXTENSION payext;
SELECT payext.open_wallet('guess_victim') \gset
SELECT payext.open_merchant('gh_guess_till', 'Guessing Till') AS m \gset
SELECT payext.top_up(1, 100000, 'guess-bank-1');
-- Live codes for the guesses to hit: 1 000 of the victim's.
SELECT count(payext.request_payment(1, ttl => '5 min')) FROM generate_series(1, 1000);
DO $$ BEGIN CREATE ROLE payext_guess_till LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT payext.grant_capability('merchant', 'payext_guess_till');
SELECT payext.map_merchant_role('payext_guess_till', 2);
GRANT CREATE ON SCHEMA public TO payext_guess_till;
SQL
# The code's layout, read from a code the server issued: its partition
# digits stay, the rest is made up.
sample=$(q -c "SELECT payext.request_payment(1)")
prefix=${sample:0:2}

# The attacker's loop: a subtransaction per guess, every error caught.
q <<SQL
SET ROLE payext_guess_till;
CREATE OR REPLACE FUNCTION public.guess_loop(merchant bigint, seconds numeric)
RETURNS TABLE (state text, n bigint) LANGUAGE plpgsql AS \$\$
DECLARE
  damm CONSTANT int[] := '{{0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},{1,7,5,0,9,8,3,4,2,6},{6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},{5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},{9,4,3,8,6,1,7,2,0,5},{2,5,8,1,4,3,6,7,9,0}}';
  stop timestamptz := clock_timestamp() + seconds * interval '1 second';
  total bigint := 0;
  counts jsonb := '{}';
  body text;
  x int;
  tid bigint;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    body := '$prefix' || lpad((floor(random() * 1e15))::bigint::text, 15, '0');
    x := 0;
    FOR i IN 1..17 LOOP
      x := damm[x + 1][substr(body, i, 1)::int + 1];
    END LOOP;
    BEGIN
      CALL payext.merchant_charge(merchant, body || x, 100, 'guess-' || pg_backend_pid() || '-' || total, tid);
      counts := jsonb_set(counts, '{hit}', to_jsonb(coalesce((counts->>'hit')::bigint, 0) + 1));
    EXCEPTION WHEN OTHERS THEN
      counts := jsonb_set(counts, ARRAY[SQLSTATE], to_jsonb(coalesce((counts->>SQLSTATE)::bigint, 0) + 1));
    END;
    total := total + 1;
  END LOOP;
  RETURN QUERY SELECT key, value::bigint FROM jsonb_each_text(counts);
END
\$\$;
SQL

live=$(q -c "SELECT count(*) FROM payext.payment_code WHERE state = 'issued' AND expires_at > now()")
for s in "${sessions[@]}"; do
	dir=$(mktemp -d)
	for i in $(seq 1 "$s"); do
		q -F' ' -c "SET ROLE payext_guess_till" -c "SELECT * FROM public.guess_loop(2, $seconds)" >"$dir/$i" &
	done
	wait
	total=$(cat "$dir"/* | awk '{ n += $2 } END { print n + 0 }')
	states=$(cat "$dir"/* | awk '{ n[$1] += $2 } END { for (s in n) printf " %s=%d", s, n[s] }')
	rm -rf "$dir"
	echo "guess: $s session(s), $seconds s: $total codes submitted, $((total / seconds)) a second; answers:$states; $live live codes"
done
if q -c "SELECT to_regclass('payext.code_failure') IS NOT NULL" | grep -q t; then
	q -c "SELECT 'guess: code_failure: merchant ' || merchant || ', ' || failures || ' failures, blocked until ' || coalesce(blocked_until::text, '-') FROM payext.code_failure"
fi
q -c "SELECT 'guess: payments made by guesses: ' || count(*) FROM payext.payment WHERE order_ref LIKE 'guess-%'"
