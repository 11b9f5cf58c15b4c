-- payext: sagas, money moving between two partitions (docs/partitions.md,
-- "Sagas").  A saga moves an amount from an account of this partition to
-- an account of another in two legs, each one local transaction:
--
--   1. saga_send() here: account -> this partition's clearing account, and
--      the saga's row in payext.saga, in one transaction.  The row is the
--      outbox: whatever happens to the router afterwards, the saga is here.
--   2. saga_receive() on the other partition: its clearing account -> the
--      account, or a refusal for good; either way the decision is kept in
--      that partition's payext.saga_inbox and never changes.
--   3. saga_finish() here when the money arrived, or saga_return() when it
--      was refused: clearing -> the account it left.
--
-- Every step is idempotent on the saga's id, so the router, or the worker
-- that resumes open sagas (payext_router's resume_sagas()), simply calls
-- the next step again.  Per currency, the clearing balances of all
-- partitions add up to the money in flight: the open sagas whose second leg
-- has not run yet.

---------------------------------------------------------------------------
-- The outbox and the inbox
---------------------------------------------------------------------------

CREATE TABLE payext.saga (
  id              uuid PRIMARY KEY,
  -- 'transfer': an admin's correction; 'cover': a merchant's money moved
  -- to its own account on another partition (public_service_id), where a
  -- refund needs it; 'parking': a wallet's owner (payer) paying a stay on
  -- another partition to its operator (public_service_id)
  purpose         text NOT NULL CHECK (purpose IN ('transfer', 'cover', 'parking')),
  public_service_id text,
  stay            bigint,
  payer           text,
  account         bigint NOT NULL REFERENCES payext.account (id),
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  to_partition    integer NOT NULL CHECK (to_partition >= 0 AND to_partition <= 99),
  to_account      bigint NOT NULL,
  out_transfer    bigint NOT NULL,
  state           text NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'done', 'returned')),
  -- the second leg's transfer, on to_partition, once the money arrived
  in_transfer     bigint,
  -- the first leg undone, here, once the second was refused, and why
  back_transfer   bigint,
  refused_sqlstate text,
  refused_message text,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  CONSTRAINT saga_done_has_in CHECK ((state = 'done') = (in_transfer IS NOT NULL)),
  CONSTRAINT saga_returned_has_back
    CHECK ((state = 'returned') = (back_transfer IS NOT NULL AND refused_sqlstate IS NOT NULL)),
  CONSTRAINT saga_finished CHECK ((state = 'open') = (finished_at IS NULL)),
  CONSTRAINT saga_names_merchant
    CHECK ((purpose IN ('cover', 'parking')) = (public_service_id IS NOT NULL)),
  CONSTRAINT saga_parking_names_stay
    CHECK ((purpose = 'parking') = (stay IS NOT NULL AND payer IS NOT NULL))
);
CREATE INDEX saga_open_idx ON payext.saga (created_at) WHERE state = 'open';
COMMENT ON TABLE payext.saga IS
  'sagas whose money left this partition (the outbox): open until it arrived (done) or came back (returned)';
SELECT pg_catalog.pg_extension_config_dump('payext.saga', '');

-- A saga's id is its sender's: two partitions may send one id (a
-- reference reused, or chosen to collide), and each is its own saga here.
CREATE TABLE payext.saga_inbox (
  saga            uuid NOT NULL,
  from_partition  integer NOT NULL CHECK (from_partition >= 0 AND from_partition <= 99),
  account         bigint NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  -- a cover's or parking payment's merchant: only its account receives it
  public_service_id text,
  -- a parking payment's stay, and whose wallet paid it
  stay            bigint,
  payer           text,
  outcome         text NOT NULL CHECK (outcome IN ('received', 'refused')),
  transfer        bigint,
  refused_sqlstate text,
  refused_message text,
  decided_at      timestamptz NOT NULL,
  CONSTRAINT saga_inbox_outcome
    CHECK ((outcome = 'received') = (transfer IS NOT NULL AND refused_sqlstate IS NULL)),
  PRIMARY KEY (saga, from_partition)
);
COMMENT ON TABLE payext.saga_inbox IS
  'sagas whose money came to this partition: received, or refused for good; decided once';
SELECT pg_catalog.pg_extension_config_dump('payext.saga_inbox', '');

-- One leg: between a wallet or merchant of this partition and the
-- partition's clearing account (ledger.c).  Granted to nobody.
CREATE FUNCTION payext.clearing_transfer(account bigint, amount bigint, kind text, saga uuid,
                                         scope bigint DEFAULT 0)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_clearing_transfer'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.clearing_transfer(bigint, bigint, text, uuid, bigint) IS
  'one leg of a saga (clearing_out, clearing_in, clearing_back; a received leg''s reference within its sender''s partition, scope); only the saga functions call it';

-- A parking saga's second leg (src/parking.c): the clearing account pays
-- the stay's operator, after pay_parking's checks.  Granted to nobody.
CREATE FUNCTION payext.parking_receive(stay bigint, amount bigint, payer text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_parking_receive'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.parking_receive(bigint, bigint, text) IS
  'a parking saga''s second leg: this partition''s clearing account pays the stay; only saga_receive calls it';

-- Which merchant account a stay pays, its currency, and what it has been
-- paid so far: what a router needs to start a parking saga from a wallet
-- elsewhere (and to name it, so that a retry resumes it).
CREATE FUNCTION payext.stay_payee(stay bigint,
    OUT operator bigint, OUT public_service_id text, OUT currency text, OUT paid bigint)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  SELECT l.operator, a.public_service_id, l.currency, s.paid
    INTO operator, public_service_id, currency, paid
    FROM payext.parking_stay s
    JOIN payext.parking_lot l ON l.id = s.lot
    JOIN payext.account a ON a.id = l.operator
   WHERE s.id = stay_payee.stay;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'parking stay % does not exist', stay USING ERRCODE = 'PY408';
  END IF;
END
$$;
COMMENT ON FUNCTION payext.stay_payee(bigint) IS
  'the operator account a parking stay pays, its public-service id, currency, and what it has been paid';

-- After an exit on this partition: the stay it closed, when something is
-- due within payext.max_auto_pay and the plate's owner asked for
-- automatic payment but has no wallet here in the lot's currency (with
-- one here, the exit has paid it already, or found too little): what a
-- router needs to pay it from the owner's wallet on another partition.
CREATE FUNCTION payext.auto_pay_elsewhere(lot bigint, plate text, at timestamptz,
    OUT stay bigint, OUT owner text, OUT amount bigint, OUT currency text,
    OUT operator bigint, OUT public_service_id text, OUT paid bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT s.id, v.owner, s.fee - s.paid, l.currency, l.operator, a.public_service_id, s.paid
    FROM payext.parking_stay s
    JOIN payext.parking_lot l ON l.id = s.lot
    JOIN payext.account a ON a.id = l.operator
    JOIN payext.vehicle v ON v.plate = s.plate AND v.auto_pay
   WHERE s.lot = $1 AND s.plate = payext.normalize_plate($2) AND s.exited_at = $3
     AND s.state = 'exited' AND s.fee > s.paid
     AND coalesce(s.owner_at_entry, '') IN ('', v.owner)
     AND s.fee - s.paid <= pg_catalog.current_setting('payext.max_auto_pay')::bigint
     AND NOT EXISTS (SELECT 1 FROM payext.account w
                      WHERE w.kind = 'wallet' AND w.owner = v.owner AND w.currency = l.currency)
   ORDER BY s.id DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION payext.auto_pay_elsewhere(bigint, text, timestamptz) IS
  'the stay an exit closed, when its automatic payment must come from the owner''s wallet on another partition';

-- A user's wallet in a currency, or NULL: no wallet is opened.
CREATE FUNCTION payext.wallet_of(owner text, currency text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  SELECT a.id FROM payext.account a
   WHERE a.kind = 'wallet' AND a.owner = $1 AND a.currency = $2
$$;
COMMENT ON FUNCTION payext.wallet_of(text, text) IS
  'a user''s wallet in a currency, or NULL (opens none)';

-- Arguments present (PY001), and the other side of the saga a partition
-- other than this one, which its account's id names when one is given
-- (PY501).
CREATE FUNCTION payext.check_saga_args(names text[], present boolean[],
                                       other_partition integer, other_account bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  FOR i IN 1 .. array_length(names, 1) LOOP
    IF NOT present[i] THEN
      RAISE EXCEPTION 'argument "%" must not be null', names[i] USING ERRCODE = 'PY001';
    END IF;
  END LOOP;
  IF other_partition < 0 OR other_partition > 99
     OR other_partition = payext.current_partition()
     OR (other_account IS NOT NULL
         AND payext.partition_of(other_account) <> other_partition) THEN
    RAISE EXCEPTION 'partition % is not the other side of a saga from partition %',
      CASE WHEN other_partition BETWEEN 0 AND 9 THEN '0' ELSE '' END || other_partition,
      lpad(payext.current_partition()::text, 2, '0')
      USING ERRCODE = 'PY501',
            DETAIL = CASE WHEN other_account IS NULL THEN 'It is this partition, or out of range.'
                          ELSE format('Account %s carries partition %s.', other_account,
                                      lpad(payext.partition_of(other_account)::text, 2, '0')) END,
            HINT = 'A saga moves money between two different partitions.';
  END IF;
END
$$;

---------------------------------------------------------------------------
-- The legs
---------------------------------------------------------------------------

-- A saga's id: derived from the paying partition, the purpose, the paying
-- account and the caller's key, so that no saga of another account can
-- take an id that a saga of this one will need (the keys a router uses
-- are predictable: a reference, an order).  The router derives it the
-- same way.
CREATE FUNCTION payext.saga_id_of(from_partition integer, purpose text, account bigint, key uuid)
RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT encode(substring(sha256(convert_to(format('payext.saga:%s:%s:%s:%s', $1, $2, $3, $4),
                                            'UTF8')) FROM 1 FOR 16), 'hex')::uuid
$$;
COMMENT ON FUNCTION payext.saga_id_of(integer, text, bigint, uuid) IS
  'a saga''s id, from its paying partition, purpose, paying account and the caller''s key';

-- Leg 1: takes the amount from the account into this partition's clearing
-- account and records the saga under the id derived from the caller's key
-- (saga), atomically.  Again with the same key and arguments it returns
-- the first leg's transfer; with other arguments it is PY107.  Called by
-- saga_send (an admin's transfer), merchant_cover (a merchant's own money)
-- and parking_saga_send (the app), which say who may.
CREATE FUNCTION payext.saga_start(saga uuid, purpose text, account bigint, amount bigint,
                                  to_partition integer, to_account bigint,
                                  public_service_id text DEFAULT NULL, stay bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  sid uuid := payext.saga_id_of(payext.current_partition(), purpose, account, saga);
  s payext.saga;
  t bigint;
BEGIN
  PERFORM payext.check_saga_args(ARRAY['saga', 'account', 'amount', 'to_partition', 'to_account'],
                                 ARRAY[saga IS NOT NULL, account IS NOT NULL, amount IS NOT NULL,
                                       to_partition IS NOT NULL, to_account IS NOT NULL],
                                 to_partition, to_account);
  SELECT * INTO s FROM payext.saga g WHERE g.id = sid;
  IF NOT FOUND THEN
    -- A concurrent send of the same saga waits at the journal's reference
    -- index and then finds this one's transfer (or PY107).
    t := payext.clearing_transfer(account, amount, 'clearing_out', sid);
    INSERT INTO payext.saga (id, purpose, public_service_id, stay, payer, account, amount,
                             currency, to_partition, to_account, out_transfer, created_at)
    SELECT sid, purpose,
           CASE purpose WHEN 'cover' THEN a.public_service_id
                        WHEN 'parking' THEN saga_start.public_service_id END,
           saga_start.stay, CASE WHEN purpose = 'parking' THEN a.owner END,
           account, amount, a.currency, to_partition, to_account, t, now()
      FROM payext.account a WHERE a.id = saga_start.account
    ON CONFLICT (id) DO NOTHING;
    SELECT * INTO STRICT s FROM payext.saga g WHERE g.id = sid;
  END IF;
  IF (s.purpose, s.account, s.amount, s.to_partition, s.to_account, s.stay)
     IS DISTINCT FROM (purpose, account, amount, to_partition, to_account, stay) THEN
    RAISE EXCEPTION 'saga % was already sent with other arguments', sid
      USING ERRCODE = 'PY107',
            DETAIL = CASE WHEN s.account = saga_start.account
                          THEN format('It moves %s to account %s.', s.amount, s.to_account)
                          ELSE 'It moves money of another account.' END,
            HINT = 'A retry must repeat the original arguments; a new transfer needs a new reference.';
  END IF;
  RETURN s.out_transfer;
END
$$;
COMMENT ON FUNCTION payext.saga_start(uuid, text, bigint, bigint, integer, bigint, text, bigint) IS
  'a saga''s first leg, for saga_send and merchant_cover: the account pays the clearing account, and the saga is recorded';

CREATE FUNCTION payext.saga_send(saga uuid, account bigint, amount bigint,
                                 to_partition integer, to_account bigint)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$ SELECT payext.saga_start($1, 'transfer', $2, $3, $4, $5) $$;
COMMENT ON FUNCTION payext.saga_send(uuid, bigint, bigint, integer, bigint) IS
  'a transfer''s first leg to another partition: the account pays this partition''s clearing account, and the saga is recorded (idempotent)';

-- A merchant's money to its own account on another partition, where a
-- refund needs more than is there: the caller must act for the account
-- (42501), which must be a merchant's (PY111), and only an account of the
-- same public-service id will receive it (saga_receive).
CREATE FUNCTION payext.merchant_cover(saga uuid, account bigint, amount bigint,
                                      to_partition integer, to_account bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  PERFORM payext.require_merchant(account);
  IF NOT EXISTS (SELECT 1 FROM payext.account a
                  WHERE a.id = merchant_cover.account AND a.kind = 'merchant') THEN
    RAISE EXCEPTION 'account % is not a merchant account', account
      USING ERRCODE = 'PY111',
            DETAIL = 'A cover moves a merchant''s money between its own accounts.';
  END IF;
  RETURN payext.saga_start(saga, 'cover', account, amount, to_partition, to_account);
END
$$;
COMMENT ON FUNCTION payext.merchant_cover(uuid, bigint, bigint, integer, bigint) IS
  'a merchant''s money to its own account on another partition (a saga''s first leg), for a refund there';

-- A stay on another partition paid from a wallet here: the wallet pays
-- this partition's clearing account, and the stay's partition (the
-- stay's id names it) pays its operator, the merchant account of
-- public_service_id there, once it has checked the plate is the wallet
-- owner's and the amount is what is due (parking_receive); otherwise the
-- money comes back.  The app's, as pay_parking is.
CREATE FUNCTION payext.parking_saga_send(saga uuid, wallet bigint, amount bigint, stay bigint,
                                         operator bigint, public_service_id text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF stay IS NULL OR operator IS NULL OR public_service_id IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN stay IS NULL THEN 'stay' WHEN operator IS NULL THEN 'operator'
           ELSE 'public_service_id' END USING ERRCODE = 'PY001';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM payext.account a
                  WHERE a.id = parking_saga_send.wallet AND a.kind = 'wallet') THEN
    RAISE EXCEPTION 'account % is not a wallet account', wallet
      USING ERRCODE = 'PY111',
            DETAIL = 'A stay is paid from a wallet of the user the vehicle is bound to.';
  END IF;
  IF payext.partition_of(operator) <> payext.partition_of(stay) THEN
    RAISE EXCEPTION 'operator % is not on the partition of stay %', operator, stay
      USING ERRCODE = 'PY501';
  END IF;
  RETURN payext.saga_start(saga, 'parking', wallet, amount, payext.partition_of(stay), operator,
                           public_service_id, stay);
END
$$;
COMMENT ON FUNCTION payext.parking_saga_send(uuid, bigint, bigint, bigint, bigint, text) IS
  'a parking payment''s first leg, for a stay on another partition: the wallet pays this partition''s clearing account';

-- Leg 2: pays the account from this partition's clearing account, or
-- refuses for good (any of payext's own errors: a closed or frozen account,
-- another currency, an overflow; for a cover, an account that is not the
-- merchant's of public_service_id).  The decision is kept and returned again
-- to every later call; a transient error (a lost lock race, 40001) is
-- raised instead and decides nothing.
CREATE FUNCTION payext.saga_receive(saga uuid, from_partition integer, account bigint,
                                    amount bigint, currency text,
                                    public_service_id text DEFAULT NULL,
                                    stay bigint DEFAULT NULL, payer text DEFAULT NULL)
RETURNS TABLE (outcome text, transfer bigint, refused_sqlstate text, refused_message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  r payext.saga_inbox;
  t bigint;
  st text;
  msg text;
  have text;
BEGIN
  PERFORM payext.check_saga_args(ARRAY['saga', 'from_partition', 'account', 'amount', 'currency'],
                                 ARRAY[saga IS NOT NULL, from_partition IS NOT NULL,
                                       account IS NOT NULL, amount IS NOT NULL,
                                       currency IS NOT NULL],
                                 from_partition, NULL);
  -- One decision per saga: concurrent receives of one saga take turns.
  PERFORM pg_catalog.pg_advisory_xact_lock(
    ('x' || pg_catalog.left(pg_catalog.replace(saga::text, '-', ''), 16))::bit(64)::bigint);
  SELECT * INTO r FROM payext.saga_inbox i
   WHERE i.saga = saga_receive.saga AND i.from_partition = saga_receive.from_partition;
  IF NOT FOUND THEN
    BEGIN
      SELECT a.currency INTO have FROM payext.account a WHERE a.id = saga_receive.account;
      IF have IS DISTINCT FROM currency AND have IS NOT NULL THEN
        RAISE EXCEPTION 'account % holds %, not %', account, have, currency
          USING ERRCODE = 'PY105';
      END IF;
      IF saga_receive.public_service_id IS NOT NULL AND have IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM payext.account a
                          WHERE a.id = saga_receive.account AND a.kind = 'merchant'
                            AND a.public_service_id = saga_receive.public_service_id) THEN
        RAISE EXCEPTION 'account % is not an account of merchant %', account,
          saga_receive.public_service_id
          USING ERRCODE = 'PY111',
                DETAIL = 'A cover or a parking payment goes to its merchant''s account only.';
      END IF;
      IF saga_receive.stay IS NULL THEN
        t := payext.clearing_transfer(account, amount, 'clearing_in', saga, from_partition);
      ELSE
        IF NOT EXISTS (SELECT 1 FROM payext.parking_stay s
                         JOIN payext.parking_lot l ON l.id = s.lot
                        WHERE s.id = saga_receive.stay AND l.operator = saga_receive.account) THEN
          RAISE EXCEPTION 'account % is not the operator of parking stay %', account,
            saga_receive.stay USING ERRCODE = 'PY408';
        END IF;
        t := payext.parking_receive(saga_receive.stay, amount, coalesce(payer, ''));
      END IF;
    EXCEPTION WHEN OTHERS THEN
      IF SQLSTATE NOT LIKE 'PY%' THEN
        RAISE;
      END IF;
      st := SQLSTATE;
      msg := SQLERRM;
    END;
    INSERT INTO payext.saga_inbox
      VALUES (saga, from_partition, account, amount, currency, public_service_id, stay, payer,
              CASE WHEN t IS NULL THEN 'refused' ELSE 'received' END, t, st, msg, now())
    RETURNING * INTO STRICT r;
  END IF;
  IF (r.account, r.amount, r.currency, r.public_service_id, r.stay, r.payer)
     IS DISTINCT FROM (account, amount, currency, public_service_id, stay, payer) THEN
    RAISE EXCEPTION 'saga % was already received with other arguments', saga
      USING ERRCODE = 'PY107',
            DETAIL = format('It came from partition %s.', lpad(r.from_partition::text, 2, '0'));
  END IF;
  RETURN QUERY SELECT r.outcome, r.transfer, r.refused_sqlstate, r.refused_message;
END
$$;
COMMENT ON FUNCTION payext.saga_receive(uuid, integer, bigint, bigint, text, text, bigint, text) IS
  'a saga''s second leg: this partition''s clearing account pays the account, or refuses for good; decided once';

-- The saga's row, locked for its last step; PY506 when it did not start
-- here.
CREATE FUNCTION payext.lock_saga(saga uuid)
RETURNS payext.saga
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
BEGIN
  SELECT * INTO s FROM payext.saga g WHERE g.id = lock_saga.saga FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'saga % did not start on this partition', saga USING ERRCODE = 'PY506';
  END IF;
  RETURN s;
END
$$;
COMMENT ON FUNCTION payext.lock_saga(uuid) IS
  'a saga''s row, locked for saga_finish or saga_return';

-- Step 3 when the money arrived: the saga is done.
CREATE FUNCTION payext.saga_finish(saga uuid, in_transfer bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
BEGIN
  IF saga IS NULL OR in_transfer IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN saga IS NULL THEN 'saga' ELSE 'in_transfer' END USING ERRCODE = 'PY001';
  END IF;
  s := payext.lock_saga(saga);
  IF s.state = 'open' THEN
    UPDATE payext.saga g SET state = 'done', in_transfer = saga_finish.in_transfer,
                             finished_at = now()
     WHERE g.id = saga_finish.saga;
    -- A parking payment is a payment of the payer, whose interactions live
    -- here, on the partition of the payer's hash.
    -- (Best effort: an operator this partition does not know, PY305,
    -- leaves the money delivered and the saga done, without it.)
    IF s.purpose = 'parking' THEN
      BEGIN
        PERFORM payext.record_interaction(s.payer, s.public_service_id, 'payment', s.amount, now());
      EXCEPTION WHEN SQLSTATE 'PY305' THEN
        RAISE WARNING 'payext: the parking payment of saga % is not an interaction: %', saga, SQLERRM;
      END;
    END IF;
    RETURN 'done';
  END IF;
  IF s.state = 'done' AND s.in_transfer = saga_finish.in_transfer THEN
    RETURN 'done';
  END IF;
  RAISE EXCEPTION 'saga % is already %', saga, s.state
    USING ERRCODE = 'PY507',
          DETAIL = CASE WHEN s.state = 'done'
                        THEN format('Its money arrived as transfer %s.', s.in_transfer)
                        ELSE format('Its money came back as transfer %s.', s.back_transfer) END;
END
$$;
COMMENT ON FUNCTION payext.saga_finish(uuid, bigint) IS
  'marks a saga whose money arrived (transfer in_transfer on the other partition) done';

-- Step 3 when the other partition refused: the money comes back.
CREATE FUNCTION payext.saga_return(saga uuid, refused_sqlstate text, refused_message text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s payext.saga;
  t bigint;
BEGIN
  IF saga IS NULL OR refused_sqlstate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN saga IS NULL THEN 'saga' ELSE 'refused_sqlstate' END USING ERRCODE = 'PY001';
  END IF;
  s := payext.lock_saga(saga);
  IF s.state = 'returned' THEN
    RETURN s.back_transfer;
  END IF;
  IF s.state = 'done' THEN
    RAISE EXCEPTION 'saga % is already done', saga
      USING ERRCODE = 'PY507',
            DETAIL = format('Its money arrived as transfer %s.', s.in_transfer);
  END IF;
  t := payext.clearing_transfer(s.account, s.amount, 'clearing_back', saga);
  UPDATE payext.saga g
     SET state = 'returned', back_transfer = t, refused_sqlstate = saga_return.refused_sqlstate,
         refused_message = saga_return.refused_message, finished_at = now()
   WHERE g.id = saga_return.saga;
  RETURN t;
END
$$;
COMMENT ON FUNCTION payext.saga_return(uuid, text, text) IS
  'gives a refused saga''s money back to the account it left, and keeps why it was refused';

---------------------------------------------------------------------------
-- Verification
---------------------------------------------------------------------------

-- Each saga's legs against the journal: the outbox's and the inbox's
-- transfers exist as they say, and no clearing leg lacks its saga.  Only
-- where a clearing account exists: a single node never has one.
CREATE FUNCTION payext.verify_sagas()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH leg AS (
    SELECT t.id, t.kind, t.reference,
           CASE WHEN t.kind = 'clearing_out' THEN t.debit_account ELSE t.credit_account END AS account,
           t.amount
      FROM payext.transfer t
     WHERE t.kind IN ('clearing_out', 'clearing_in', 'clearing_back')
        OR (t.kind = 'parking'
            AND t.debit_account IN (SELECT a.id FROM payext.account a WHERE a.kind = 'clearing'))
  ), expected AS (
    SELECT s.id::text AS saga, 'clearing_out' AS kind, s.out_transfer AS id, s.account, s.amount
      FROM payext.saga s
    UNION ALL
    SELECT s.id::text, 'clearing_back', s.back_transfer, s.account, s.amount
      FROM payext.saga s WHERE s.back_transfer IS NOT NULL
    UNION ALL
    -- a parking payment's second leg is the stay's own payment
    SELECT i.saga::text, CASE WHEN i.stay IS NULL THEN 'clearing_in' ELSE 'parking' END,
           i.transfer, i.account, i.amount
      FROM payext.saga_inbox i WHERE i.transfer IS NOT NULL
  ), wrong AS (
    SELECT coalesce(e.saga, l.reference) AS saga,
           CASE WHEN l.id IS NULL THEN 'its ' || e.kind || ' leg is not in the journal'
                WHEN e.id IS NULL THEN 'a ' || l.kind || ' leg (transfer ' || l.id || ') has no saga'
                ELSE 'its ' || e.kind || ' leg differs from the journal' END AS what
      FROM expected e
      FULL JOIN leg l ON l.id = e.id
     WHERE l.id IS NULL OR e.id IS NULL
        OR (l.kind, l.account, l.amount) IS DISTINCT FROM (e.kind, e.account, e.amount)
        OR (l.kind <> 'parking' AND l.reference IS DISTINCT FROM e.saga)
  )
  SELECT 'sagas_match_journal',
         NOT EXISTS (SELECT 1 FROM wrong),
         coalesce((SELECT (SELECT count(*) FROM wrong)::text || ' saga leg(s) wrong, e.g. '
                          || string_agg(format('saga %s: %s', w.saga, w.what), '; ')
                     FROM (SELECT * FROM wrong ORDER BY saga, what LIMIT 3) w
                    HAVING count(*) > 0),
                  format('%s saga(s) sent (%s open), %s received here, all in the journal',
                         (SELECT count(*) FROM payext.saga),
                         (SELECT count(*) FROM payext.saga WHERE state = 'open'),
                         (SELECT count(*) FROM payext.saga_inbox)))
   WHERE EXISTS (SELECT 1 FROM payext.account a WHERE a.kind = 'clearing')
      OR EXISTS (SELECT 1 FROM payext.saga) OR EXISTS (SELECT 1 FROM payext.saga_inbox)
$$;
COMMENT ON FUNCTION payext.verify_sagas() IS
  'checks every saga''s legs against the journal (a row only where sagas ever ran); part of verify_ledger()';
