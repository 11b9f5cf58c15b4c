-- Payment codes: issuing, the layout, typos, guesses, other partitions,
-- expiry, cancellation, codes lost in a restart, key rotation.  Charges are
-- in charges.sql, throttling of guesses in code_guessing.sql.

-- Ids in this file's messages start after 3000, whatever ran before it.
SELECT setval('payext.account_id_seq', 3000), setval('payext.transfer_id_seq', 3000);

-- A test helper: Damm's check digit, to build well-formed codes by hand.
CREATE FUNCTION pg_temp.damm(digits text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t int[] := '{{0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},
               {1,7,5,0,9,8,3,4,2,6},{6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},
               {5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},{9,4,3,8,6,1,7,2,0,5},
               {2,5,8,1,4,3,6,7,9,0}}';
  i int := 0;
BEGIN
  FOR k IN 1 .. length(digits) LOOP
    i := t[i + 1][substr(digits, k, 1)::int + 1];
  END LOOP;
  RETURN digits || i::text;
END $$;

SELECT payext.open_wallet('codes_carol') AS w \gset
SELECT payext.open_merchant('gh_codes_cafe', 'Codes Cafe') AS m \gset
SELECT payext.top_up(:w, 5000, 'codes-bank-1') > 0 AS topped_up;

-- A code is 18 digits: partition 00, 15 digits that are the code's serial
-- under the key's permutation, check digit.  The first key is made on
-- first use.
SELECT payext.request_payment(wallet => :w) AS code1 \gset
SELECT :'code1' ~ '^[0-9]{18}$' AS eighteen_digits,
       substr(:'code1', 1, 2) AS partition,
       pg_temp.damm(left(:'code1', 17)) = :'code1' AS check_digit_ok;
-- The 15 digits are not the serial, and the next code's are not near them:
-- neither shows how many codes were issued or which comes next.
SELECT payext.request_payment(wallet => :w) AS code1b \gset
SELECT c.code <> c.serial AS serial_hidden,
       (SELECT serial FROM payext.payment_code WHERE code = substr(:'code1b', 3, 15)::bigint) = c.serial + 1
         AS next_serial,
       abs(substr(:'code1b', 3, 15)::bigint - c.code) > 1000000 AS next_code_far
  FROM payext.payment_code c WHERE c.code = substr(:'code1', 3, 15)::bigint;
SELECT count(*) AS keys FROM payext.signing_key;
-- The code's row: bound to the wallet, valid for payext.code_ttl (60 s).
SELECT wallet = :w AS bound_to_wallet, max_amount, expires_at - created_at AS ttl, state
  FROM payext.payment_code ORDER BY serial DESC LIMIT 1;
-- Codes are distinct.
SELECT payext.request_payment(:w) <> :'code1' AS a_new_code_each_time;
-- The review's repeat: 0.7.0 carried the serial mod 10^8, so the code 10^8
-- serials later under the same key was the same string and charged its
-- holder's wallet.  Now the serial is permuted whole: no repeat.
SELECT serial AS s1 FROM payext.payment_code WHERE code = substr(:'code1', 3, 15)::bigint \gset
SELECT setval('payext.code_serial_seq', :s1 + 100000000 - 1) > 0 AS serial_advanced;
SELECT payext.request_payment(:w) AS code1_again \gset
SELECT (SELECT serial FROM payext.payment_code WHERE code = substr(:'code1_again', 3, 15)::bigint) = :s1 + 100000000
         AS serial_plus_ten_to_the_eight,
       :'code1_again' <> :'code1' AS not_the_same_code;
-- A cap and a ttl of the app's choosing.
SELECT payext.request_payment(wallet => :w, max_amount => 1500, ttl => '90 seconds') AS capped \gset
SELECT max_amount, expires_at - created_at AS ttl
  FROM payext.payment_code ORDER BY serial DESC LIMIT 1;
SET payext.code_ttl = '2min';
SELECT payext.request_payment(:w) IS NOT NULL AS issued;
SELECT expires_at - created_at AS ttl FROM payext.payment_code ORDER BY serial DESC LIMIT 1;
RESET payext.code_ttl;

-- Refusals when issuing.
SELECT payext.request_payment(NULL);
\echo :SQLSTATE
SELECT payext.request_payment(-1);
\echo :SQLSTATE
SELECT payext.request_payment(:m);
\echo :SQLSTATE
SELECT payext.request_payment(:w, 0);
\echo :SQLSTATE
SELECT payext.request_payment(:w, NULL, '0 seconds');
\echo :SQLSTATE
SELECT payext.request_payment(:w, NULL, '-5 seconds');
\echo :SQLSTATE
SELECT payext.request_payment(:w, NULL, '301 seconds');
\echo :SQLSTATE
SELECT payext.request_payment(:w, NULL, '1 day');
\echo :SQLSTATE
SELECT payext.request_payment(:w, NULL, '1 mon -29 days -23 hours');
\echo :SQLSTATE
SELECT payext.freeze(:w);
SELECT payext.request_payment(:w);
\echo :SQLSTATE
SELECT payext.unfreeze(:w);

-- Checking a code, before anything else is read: shape and check digit
-- (PY201), partition (PY202); then 15 digits no key issued (PY203).
SELECT payext.cancel_payment_code('12345');
\echo :SQLSTATE
SELECT payext.cancel_payment_code('01234567890123456x');
\echo :SQLSTATE
SELECT payext.cancel_payment_code(NULL);
\echo :SQLSTATE
-- Every single-digit change of a real code is caught by the check digit.
SELECT count(*) AS typos_caught
  FROM generate_series(1, 18) AS pos, generate_series(0, 9) AS d,
       LATERAL (SELECT overlay(:'code1' PLACING d::text FROM pos FOR 1) AS typo) t
 WHERE t.typo <> :'code1'
   AND t.typo <> pg_temp.damm(left(t.typo, 17));
-- A code of partition 01 or 10, well formed.
SELECT payext.cancel_payment_code(pg_temp.damm('01' || substr(:'code1', 3, 15)));
\echo :SQLSTATE
SELECT payext.cancel_payment_code(pg_temp.damm('10' || substr(:'code1', 3, 15)));
\echo :SQLSTATE
-- Right shape, 15 digits one away from a real code's: never issued.
SELECT pg_temp.damm('00' || lpad(((substr(:'code1', 3, 15)::bigint + 1) % 1000000000000000)::text, 15, '0'))
       AS forged \gset
SELECT payext.cancel_payment_code(:'forged');
\echo :SQLSTATE

-- Cancelling: the code cannot pay afterwards; cancelling again is harmless.
SELECT payext.request_payment(:w) AS code2 \gset
SELECT payext.cancel_payment_code(code => :'code2');
SELECT payext.cancel_payment_code(:'code2');
SELECT state, closed_at IS NOT NULL AS closed FROM payext.payment_code
 WHERE code = substr(:'code2', 3, 15)::bigint;
SELECT payext.charge(:m, :'code2', 100, 'codes-order-1');
\echo :SQLSTATE

-- Expiry: a code of one second is refused two seconds later.
SELECT payext.request_payment(:w, NULL, '1 second') AS short_lived \gset
SELECT pg_sleep(1.5);
SELECT payext.charge(:m, :'short_lived', 100, 'codes-order-2');
\echo :SQLSTATE
-- An expired code can still be cancelled (nothing to gain, nothing lost);
-- it stays expired, and a charge of it is refused as expired still.
SELECT payext.cancel_payment_code(:'short_lived');
SELECT state FROM payext.payment_code WHERE code = substr(:'short_lived', 3, 15)::bigint;
SELECT payext.charge(:m, :'short_lived', 100, 'codes-order-2');
\echo :SQLSTATE

-- Live codes are unlogged: a crash forgets those not yet used, as the
-- purge forgets expired ones.  Such a code is known again from its key
-- and the serials handed out: refused as expired (PY204), not taken for a
-- guess; once paid, as used (PY206), and its own order's retry still gets
-- its transfer.
SELECT relpersistence = 'u' AS unlogged FROM pg_class WHERE oid = 'payext.payment_code'::regclass;
SELECT payext.request_payment(:w) AS lost \gset
DELETE FROM payext.payment_code WHERE code = substr(:'lost', 3, 15)::bigint;
SELECT payext.charge(:m, :'lost', 100, 'codes-order-lost');
\echo :SQLSTATE
SELECT payext.request_payment(:w) AS paid_then_purged \gset
SELECT payext.charge(:m, :'paid_then_purged', 100, 'codes-order-purged') AS purged_transfer \gset
DELETE FROM payext.payment_code WHERE code = substr(:'paid_then_purged', 3, 15)::bigint;
SELECT payext.charge(:m, :'paid_then_purged', 100, 'codes-order-purged') = :purged_transfer AS retry_same_transfer;
SELECT payext.charge(:m, :'paid_then_purged', 100, 'codes-order-other');
\echo :SQLSTATE

-- Issuing purges: among any 64 codes a backend issues, one deletes the
-- live codes that expired more than five minutes before (up to 512 of
-- them), and no other.  Two codes aged by hand: one a second past the five
-- minutes, one a second short of them.
SELECT payext.request_payment(:w) AS aged_out \gset
SELECT payext.request_payment(:w) AS aged_in \gset
UPDATE payext.payment_code
   SET created_at = now() - interval '6 minutes 1 second',
       expires_at = now() - interval '5 minutes 1 second'
 WHERE code = substr(:'aged_out', 3, 15)::bigint;
UPDATE payext.payment_code
   SET created_at = now() - interval '5 minutes 59 seconds',
       expires_at = now() - interval '4 minutes 59 seconds'
 WHERE code = substr(:'aged_in', 3, 15)::bigint;
SELECT count(payext.request_payment(:w)) AS issued FROM generate_series(1, 64);
SELECT count(*) FILTER (WHERE code = substr(:'aged_out', 3, 15)::bigint) AS aged_out_left,
       count(*) FILTER (WHERE code = substr(:'aged_in', 3, 15)::bigint) AS aged_in_left
  FROM payext.payment_code;

-- A key made before the server started, or on another WAL timeline (a
-- promoted standby), is replaced by the next code: after a crash with
-- asynchronous commit or a failover the serial sequence may hand out
-- serials again, and under a new key they give other strings.
SELECT payext.request_payment(:w) AS before_restart \gset
SELECT max(id) AS key_before_restart FROM payext.signing_key \gset
UPDATE payext.signing_key SET created_at = pg_postmaster_start_time() - interval '1 second'
 WHERE id = :key_before_restart;
SELECT payext.request_payment(:w) IS NOT NULL AS issued_after_restart;
SELECT max(id) = :key_before_restart + 1 AS new_key_after_restart FROM payext.signing_key;
UPDATE payext.signing_key SET timeline = timeline + 1 WHERE id = :key_before_restart + 1;
SELECT payext.request_payment(:w) IS NOT NULL AS issued_on_another_timeline;
SELECT max(id) = :key_before_restart + 2 AS new_key_after_promotion FROM payext.signing_key;
SELECT payext.request_payment(:w) IS NOT NULL AS issued_again;
SELECT max(id) = :key_before_restart + 2 AS same_key_while_fresh FROM payext.signing_key;
SELECT payext.charge(:m, :'before_restart', 100, 'codes-order-restart') > 0 AS old_code_still_pays;

-- Rotation: new codes use the new key; earlier codes stay valid.
SELECT payext.request_payment(:w) AS before_rotation \gset
SELECT payext.rotate_signing_key() AS new_key \gset
SELECT :new_key = (SELECT max(id) FROM payext.signing_key) AS newest_key;
SELECT payext.request_payment(:w) AS after_rotation \gset
SELECT key_id = :new_key AS signed_by_new_key FROM payext.payment_code
 WHERE code = substr(:'after_rotation', 3, 15)::bigint;
SELECT payext.charge(:m, :'before_rotation', 100, 'codes-order-3') > 0 AS old_key_still_pays;
SELECT payext.charge(:m, :'after_rotation', 100, 'codes-order-4') > 0 AS new_key_pays;
SELECT payext.rotate_signing_key() = :new_key + 1 AS ids_increase;

-- Nothing above moved money but the four charges.
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS merchant;
SELECT state, count(*) FROM payext.payment_code WHERE wallet = :w GROUP BY state ORDER BY state;

-- Serials end at 10^15 - 1: the next code is refused (PY214), never a
-- repeat.  (The sequence is put back for the stories after this one.)
SELECT last_value AS serial_now FROM payext.code_serial_seq \gset
SELECT setval('payext.code_serial_seq', 999999999999999) > 0 AS at_the_end;
SELECT payext.request_payment(:w);
\echo :SQLSTATE
SELECT setval('payext.code_serial_seq', :serial_now) > 0 AS put_back;

-- The secrets: 32 bytes each, and never part of a dump.
SELECT bool_and(length(secret) = 32) AS thirty_two_bytes FROM payext.signing_key;
SELECT 'payext.signing_key'::regclass <> ALL (extconfig) AS not_dumped
  FROM pg_extension WHERE extname = 'payext';

SELECT check_name, ok FROM payext.verify_ledger();
