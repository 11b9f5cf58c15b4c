-- The floor: payext's write set, as plain PL/pgSQL writes it with nothing
-- else.  Tables shaped like payext's (LIKE ... INCLUDING ALL: the same
-- columns, CHECK constraints and indexes; no foreign keys, no triggers),
-- and two functions that write, per issue and charge, exactly the rows
-- payext writes: a code row (unlogged) and its update, the wallet's
-- balance, the merchant's bucket, a journal row, a payment row, an
-- interaction and its pair summary.  No MAC, no checks beyond the CHECK
-- constraints, no locks but the updates', no rule, no idempotency: what
-- any implementation that writes these rows through the executor pays at
-- least.  bench/run.sh runs it next to payext and the baseline.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- Three schemas of the same tables, each warmed alike by bench/populate.sh,
-- so that no script runs on rows another one left: floor (the PL/pgSQL
-- functions below), floorc and floorlean (the C functions at the end).
DO $$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['floor', 'floorc', 'floorlean'] LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
    EXECUTE format('CREATE SCHEMA %I', s);
    EXECUTE format('CREATE TABLE %I.account (LIKE payext.account INCLUDING ALL)', s);
    EXECUTE format('CREATE TABLE %I.merchant_credit (LIKE payext.merchant_credit INCLUDING ALL)', s);
    EXECUTE format('CREATE TABLE %I.transfer (LIKE payext.transfer INCLUDING ALL)', s);
    EXECUTE format('CREATE TABLE %I.payment (LIKE payext.payment INCLUDING ALL)', s);
    EXECUTE format('CREATE UNLOGGED TABLE %I.payment_code (LIKE payext.payment_code INCLUDING ALL)', s);
    EXECUTE format('CREATE TABLE %I.interaction (LIKE payext.interaction INCLUDING ALL)', s);
    EXECUTE format('CREATE TABLE %I.interaction_pair (LIKE payext.interaction_pair INCLUDING ALL)', s);
    EXECUTE format('CREATE SEQUENCE %I.id_seq', s);
    EXECUTE format('INSERT INTO %I.account SELECT * FROM payext.account', s);
  END LOOP;
END $$;

CREATE FUNCTION floor.request_payment(wallet bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  s bigint := nextval('floor.id_seq');
BEGIN
  INSERT INTO floor.payment_code (serial, code, key_id, wallet, created_at, expires_at)
  VALUES (s, s, 1, wallet, now(), now() + interval '60 seconds');
  RETURN s::text;
END $$;

CREATE FUNCTION floor.charge(merchant bigint, code text, amount bigint, order_ref text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
  w bigint;
  owner text;
  psid text;
  t bigint := nextval('floor.id_seq');
BEGIN
  UPDATE floor.payment_code c SET state = 'used', closed_at = now()
   WHERE c.code = charge.code::bigint
  RETURNING c.serial, c.wallet INTO s, w;
  UPDATE floor.account a SET balance = a.balance - charge.amount
   WHERE a.id = w RETURNING a.owner INTO owner;
  SELECT a.public_service_id INTO psid FROM floor.account a WHERE a.id = merchant;
  UPDATE floor.merchant_credit c SET amount = c.amount + charge.amount
   WHERE c.account = merchant AND c.bucket = pg_backend_pid() % 16;
  IF NOT FOUND THEN
    INSERT INTO floor.merchant_credit VALUES (merchant, pg_backend_pid() % 16, charge.amount)
      ON CONFLICT (account, bucket) DO UPDATE SET amount = merchant_credit.amount + excluded.amount;
  END IF;
  INSERT INTO floor.transfer (id, debit_account, credit_account, amount, currency, kind,
                              idem_scope, reference, created_at, checksum)
  VALUES (t, w, merchant, charge.amount, 'CNY', 'charge', merchant, order_ref, now(),
          '\x00112233445566778899aabbccddeeff');
  INSERT INTO floor.payment (transfer_id, merchant, order_ref, wallet, code_serial, amount,
                             created_at, updated_at)
  VALUES (t, merchant, order_ref, w, s, charge.amount, now(), now());
  INSERT INTO floor.interaction (id, consumer, public_service_id, kind, amount, currency,
                                 occurred_at, transfer_id, recorded_at)
  VALUES (t, owner, psid, 'payment', charge.amount, 'CNY', now(), t, now());
  INSERT INTO floor.interaction_pair AS p VALUES (owner, psid, 1, 1, charge.amount, 0, now(), now())
    ON CONFLICT (consumer, public_service_id) DO UPDATE
      SET interactions = p.interactions + 1, payments = p.payments + 1,
          payment_amount = p.payment_amount + excluded.payment_amount, last_at = excluded.last_at;
  RETURN t;
END $$;

-- The same two functions in C without the executor (bench/floorc/), when
-- its module is installed (scripts/quickstart.sh bench installs it):
-- floorc.* write the same rows, floorlean.* all but the payment row (the
-- lower bound of a payment and its journal row as one row).  Each writes
-- into the tables of its own schema.
DO $$
BEGIN
  CREATE FUNCTION floorc.request_payment(wallet bigint) RETURNS text
    AS '$libdir/payext_floor', 'floor_c_request_payment' LANGUAGE C STRICT;
  CREATE FUNCTION floorc.charge(merchant bigint, code text, amount bigint, order_ref text)
    RETURNS bigint AS '$libdir/payext_floor', 'floor_c_charge' LANGUAGE C STRICT;
  CREATE FUNCTION floorlean.request_payment(wallet bigint) RETURNS text
    AS '$libdir/payext_floor', 'floor_c_request_payment' LANGUAGE C STRICT;
  CREATE FUNCTION floorlean.charge(merchant bigint, code text, amount bigint, order_ref text)
    RETURNS bigint AS '$libdir/payext_floor', 'floor_c_charge_lean' LANGUAGE C STRICT;
EXCEPTION WHEN undefined_file THEN
  RAISE NOTICE 'payext_floor is not installed: no floorc and floorlean functions (make -C bench/floorc install)';
END $$;
VACUUM ANALYZE floor.account, floorc.account, floorlean.account;
