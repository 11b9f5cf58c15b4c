#!/usr/bin/env bash
# A partition killed under load, inside scripts/with_partitions.sh 2
# (test/router/run.sh runs it).  Four sessions on the router call, as fast as
# they can, top-ups of wallets on both partitions and transfers between
# partitions, each under its own reference, and record what each call
# answered.  Meanwhile partition 1's postmaster and every one of its
# processes get SIGKILL (a machine gone), and after a few seconds it is
# started again.  Then:
#
#   - partition 0 kept serving: calls that touch only it succeeded while
#     partition 1 was down;
#   - every call partition 1's loss cut off answered PY504, never XX000 or
#     another code;
#   - every call is sent again with its reference (what a client told
#     "outcome unknown, retry with the same reference" does), and open
#     sagas are resumed; then every reference moved its money exactly once
#     (one journal row per top-up reference, one finished saga or one
#     transfer per transfer reference), every wallet holds its seed plus
#     what its references moved, the clearing accounts add up to zero and
#     both partitions verify.
#
#   PAYEXT_CHAOS_SECONDS (default 8): how long the sessions run
set -euo pipefail
cd "$(dirname "$0")"

seconds=${PAYEXT_CHAOS_SECONDS:-8}
suite=chaos
# shellcheck source=test/router/lib.sh
. ./lib.sh
read -r -a datas <<<"${PAYEXT_PARTITION_DATA:?run inside scripts/with_partitions.sh 2}"
read -r -a uris <<<"$PAYEXT_PARTITIONS"
read -r -a pgctl <<<"$PAYEXT_PGCTL"
[ "${#datas[@]}" = 2 ] || fail "needs 2 partitions"
seed=1000000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Eight wallets, four on each partition, and a table of what each call
# answered (in the router's database; the router stays up throughout).
q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS public.chaos_call, public.chaos_wallet" \
	-c "CREATE TABLE public.chaos_wallet (i integer PRIMARY KEY, id bigint NOT NULL, p integer NOT NULL)" \
	-c "CREATE TABLE public.chaos_call (ref text PRIMARY KEY, kind text NOT NULL, debit bigint,
	                                     credit bigint NOT NULL, amount bigint NOT NULL,
	                                     answer text NOT NULL, at timestamptz NOT NULL)" >/dev/null
for p in 0 1; do
	q -c "INSERT INTO public.chaos_wallet
	      SELECT $p * 4 + row_number() OVER (), payext.open_wallet(o), $p
	        FROM (SELECT o FROM generate_series(1, 1000) g, format('chaos-%s', g) o
	               WHERE payext.route_owner(o) = $p LIMIT 4) s" >/dev/null
done
q -c "SELECT count(payext.top_up(id, $seed, 'chaos-seed')) FROM public.chaos_wallet" >/dev/null

# One session: until its time is up, a top-up of a random wallet, or (one
# call in three) a transfer from a wallet of one partition to one of the
# other; each answer committed as it comes (a procedure).
q -c "CREATE OR REPLACE PROCEDURE public.chaos_session(session integer, seconds integer)
LANGUAGE plpgsql AS \$\$
DECLARE
  stop timestamptz := clock_timestamp() + make_interval(secs => seconds);
  i integer := 0;
  a bigint;
  ap integer;
  b bigint;
  k text;
  answer text;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    i := i + 1;
    SELECT w.id, w.p INTO a, ap FROM public.chaos_wallet w ORDER BY random() LIMIT 1;
    k := CASE WHEN i % 3 = 0 THEN 'transfer' ELSE 'top_up' END;
    IF k = 'transfer' THEN
      SELECT id INTO b FROM public.chaos_wallet w
       WHERE w.p <> ap ORDER BY random() LIMIT 1;
    END IF;
    BEGIN
      IF k = 'top_up' THEN
        PERFORM payext.top_up(a, 3, format('chaos-%s-%s', session, i));
      ELSE
        PERFORM payext.transfer(a, b, 2, format('chaos-%s-%s', session, i));
      END IF;
      answer := 'ok';
    EXCEPTION WHEN OTHERS THEN
      answer := SQLSTATE;
    END;
    INSERT INTO public.chaos_call
      VALUES (format('chaos-%s-%s', session, i), k, CASE WHEN k = 'transfer' THEN a END,
              CASE WHEN k = 'transfer' THEN b ELSE a END, CASE WHEN k = 'transfer' THEN 2 ELSE 3 END,
              answer, clock_timestamp());
    COMMIT;
  END LOOP;
END
\$\$" >/dev/null

pids=()
for s in 1 2 3 4; do
	q -c "SET client_min_messages = warning" -c "CALL public.chaos_session($s, $seconds)" \
		>/dev/null 2>"$work/session-$s.err" &
	pids+=($!)
done
sleep 2
# Partition 1 gone: its postmaster and all its processes, SIGKILL.
pm=$(head -n 1 "${datas[1]}/postmaster.pid")
pkill -9 -P "$pm" 2>/dev/null || true
kill -9 "$pm"
down_at=$(q -c "SELECT clock_timestamp()")
sleep 3
up_at=$(q -c "SELECT clock_timestamp()")
for _ in $(seq 30); do
	"${pgctl[@]}" -D "${datas[1]}" -l "${datas[1]}.log" -w -t 60 start >/dev/null 2>&1 && break
	sleep 1
done
q -d "${uris[1]}" -c "SELECT 1" >/dev/null || fail "partition 1 did not come back"
for pid in "${pids[@]}"; do wait "$pid" || { cat "$work"/session-*.err >&2; fail "a session failed"; }; done

# What the sessions saw.
read -r calls ok unreachable other < <(q -F ' ' -c "
	SELECT count(*), count(*) FILTER (WHERE answer = 'ok'), count(*) FILTER (WHERE answer = 'PY504'),
	       count(*) FILTER (WHERE answer NOT IN ('ok', 'PY504'))
	  FROM public.chaos_call")
[ "$other" = 0 ] || fail "$other calls answered neither ok nor PY504: $(q -c "SELECT string_agg(DISTINCT answer, ', ') FROM public.chaos_call WHERE answer NOT IN ('ok', 'PY504')")"
[ "$unreachable" -gt 0 ] || fail "no call met the stopped partition (PY504)"
served=$(q -c "SELECT count(*) FROM public.chaos_call c JOIN public.chaos_wallet w ON w.id = c.credit
               WHERE c.kind = 'top_up' AND w.p = 0 AND c.answer = 'ok'
                 AND c.at > '$down_at' AND c.at < '$up_at'")
[ "$served" -gt 0 ] || fail "partition 0 served no top-up while partition 1 was down"
cut_p0=$(q -c "SELECT count(*) FROM public.chaos_call c JOIN public.chaos_wallet w ON w.id = c.credit
               WHERE c.kind = 'top_up' AND w.p = 0 AND c.answer <> 'ok'")
[ "$cut_p0" = 0 ] || fail "$cut_p0 top-ups of partition 0 failed while partition 1 was down"

# Everything that did not answer ok, sent again with its reference; then
# whatever saga is still open, finished.
q -c "DO \$\$
DECLARE c record;
BEGIN
  FOR c IN SELECT * FROM public.chaos_call WHERE answer <> 'ok' ORDER BY ref LOOP
    IF c.kind = 'top_up' THEN
      PERFORM payext.top_up(c.credit, c.amount, c.ref);
    ELSE
      PERFORM payext.transfer(c.debit, c.credit, c.amount, c.ref);
    END IF;
  END LOOP;
END \$\$" >/dev/null
q -c "SELECT payext.resume_sagas('0')" >/dev/null

# Exactly once: top-ups by their journal rows on their partition, transfers
# by their finished sagas (all of them cross partitions).
topups=$(q -c "SELECT count(*) FROM public.chaos_call WHERE kind = 'top_up'")
transfers=$(q -c "SELECT count(*) FROM public.chaos_call WHERE kind = 'transfer'")
rows=0
for uri in "${uris[@]}"; do
	n=$(q -d "$uri" -c "SELECT count(*) FROM payext.transfer WHERE kind = 'top_up' AND reference LIKE 'chaos-_%-%'")
	rows=$((rows + n))
done
[ "$rows" = "$topups" ] || fail "$topups top-up references, $rows journal rows"
done_sagas=$(q -c "WITH expected AS (
                      SELECT payext.saga_id_of(w.p, 'transfer', c.debit,
                                               payext.saga_id('transfer', c.ref)) AS id
                        FROM public.chaos_call c JOIN public.chaos_wallet w ON w.id = c.debit
                       WHERE c.kind = 'transfer')
                    SELECT count(*) FROM payext.sagas() s JOIN expected e ON e.id = s.id
                     WHERE s.state = 'done'")
[ "$done_sagas" = "$transfers" ] || fail "$transfers transfer references, $done_sagas finished sagas"
[ "$(q -c "SELECT count(*) FROM payext.sagas(true)")" = 0 ] || fail "sagas left open"
wrong=$(q -c "SELECT count(*) FROM public.chaos_wallet w
               WHERE payext.balance(w.id) <> $seed
                     + coalesce((SELECT sum(amount) FROM public.chaos_call c WHERE c.credit = w.id), 0)
                     - coalesce((SELECT sum(amount) FROM public.chaos_call c WHERE c.debit = w.id), 0)")
[ "$wrong" = 0 ] || fail "$wrong wallets do not hold their seed plus what their references moved"
bad=$(q -c "SELECT string_agg(check_name || ': ' || detail, '; ') FROM payext.verify_ledger() WHERE NOT ok")
[ -z "$bad" ] || fail "verify_ledger: $bad"
[ "$(q -c "SELECT sum(balance) FROM generate_series(0, 1) p, payext.clearing_on(p)")" = 0 ] ||
	fail "the clearing accounts do not add up to zero"
q -c "DROP PROCEDURE public.chaos_session(integer, integer)" -c "DROP TABLE public.chaos_call, public.chaos_wallet" >/dev/null
echo "router chaos: 4 sessions, ${seconds} s, partition 1 killed (SIGKILL, all its processes) for 3 s: $calls calls ($ok ok, $unreachable PY504, none other), partition 0 served $served top-ups meanwhile; resent by reference, each of $topups top-ups and $transfers transfers between partitions moved its money once, the wallets and clearing accounts agree, both partitions verify"
