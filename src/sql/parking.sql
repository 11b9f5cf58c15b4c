-- payext: parking.  Vehicles, lots and their tariffs, stays from plate
-- cameras, and their payment.

---------------------------------------------------------------------------
-- Vehicles
---------------------------------------------------------------------------

CREATE TABLE payext.vehicle (
  plate     text PRIMARY KEY,            -- normalised; one owner per plate
  owner     text NOT NULL,
  auto_pay  boolean NOT NULL DEFAULT false,
  bound_at  timestamptz NOT NULL
);
CREATE INDEX vehicle_owner_idx ON payext.vehicle (owner);
COMMENT ON TABLE payext.vehicle IS 'licence plates bound to social-app users';

-- One row per owner with vehicles: its lock serialises binds of one owner,
-- so that payext.max_vehicles holds under any concurrency.
CREATE TABLE payext.vehicle_owner (
  owner     text PRIMARY KEY,
  vehicles  integer NOT NULL CHECK (vehicles >= 0)
);

---------------------------------------------------------------------------
-- Lots and stays
---------------------------------------------------------------------------

CREATE SEQUENCE payext.parking_lot_id_seq AS bigint;
CREATE TABLE payext.parking_lot (
  id                 bigint PRIMARY KEY,
  operator           bigint NOT NULL REFERENCES payext.account (id),
  name               text NOT NULL,
  currency           text NOT NULL,
  time_zone          text NOT NULL,
  free_minutes       integer NOT NULL CHECK (free_minutes >= 0),
  unit_minutes       integer NOT NULL CHECK (unit_minutes BETWEEN 1 AND 1440),
  day_price          bigint NOT NULL CHECK (day_price >= 0),
  night_price        bigint CHECK (night_price >= 0),
  day_start          time NOT NULL,
  night_start        time NOT NULL,
  cap_24h            bigint CHECK (cap_24h >= 0),
  cap_stay           bigint CHECK (cap_stay >= 0),
  exit_grace_minutes integer NOT NULL CHECK (exit_grace_minutes >= 0),
  created_at         timestamptz NOT NULL,
  -- held on an auto-paying owner's wallet at entry, taken at exit (NULL: none)
  entry_hold         bigint CHECK (entry_hold > 0),
  CONSTRAINT parking_lot_periods CHECK (night_price IS NULL OR day_start <> night_start),
  CONSTRAINT parking_lot_whole_minutes
    CHECK (date_trunc('minute', day_start::interval) = day_start::interval AND
           date_trunc('minute', night_start::interval) = night_start::interval)
);
COMMENT ON TABLE payext.parking_lot IS 'parking lots: operator (a merchant account), time zone and tariff';

CREATE SEQUENCE payext.parking_stay_id_seq AS bigint;
CREATE TABLE payext.parking_stay (
  id          bigint PRIMARY KEY,
  lot         bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate       text NOT NULL,
  entered_at  timestamptz,             -- NULL: an exit seen without its entry
  exited_at   timestamptz,
  fee         bigint CHECK (fee >= 0), -- set at exit
  paid        bigint NOT NULL DEFAULT 0 CHECK (paid >= 0),
  paid_at     timestamptz,             -- the last payment
  -- The plate's owner when it entered (NULL: unbound then); only that owner,
  -- or whoever binds an unbound plate, sees and pays the stay.
  owner_at_entry text,
  state       text NOT NULL
              CHECK (state IN ('open', 'exited', 'exit_without_entry', 'exit_missed', 'exit_unpriced')),
  recorded_at timestamptz NOT NULL,
  CONSTRAINT parking_stay_shape CHECK (
    (state IN ('open', 'exit_missed') AND entered_at IS NOT NULL AND exited_at IS NULL AND fee IS NULL) OR
    (state = 'exited' AND entered_at IS NOT NULL AND exited_at >= entered_at AND fee IS NOT NULL) OR
    (state = 'exit_without_entry' AND entered_at IS NULL AND exited_at IS NOT NULL AND fee IS NULL) OR
    (state = 'exit_unpriced' AND entered_at IS NOT NULL AND exited_at >= entered_at AND fee IS NULL)),
  CONSTRAINT parking_stay_not_overpaid CHECK (fee IS NULL OR paid <= fee)
);
-- One open stay per lot and plate: a repeated entry event finds it.
CREATE UNIQUE INDEX parking_stay_open_key ON payext.parking_stay (lot, plate)
  WHERE state = 'open';
CREATE INDEX parking_stay_plate_idx ON payext.parking_stay (plate, lot, exited_at);
COMMENT ON TABLE payext.parking_stay IS
  'stays from plate camera events: open, exited (with its fee), an exit without entry, an entry whose exit was missed, or an exit that could not be priced';

-- One row per lot and plate that cameras have seen: every camera event
-- upserts it first, so events of one plate at one lot are taken one at a
-- time (READ COMMITTED: the second waits and then sees the first;
-- REPEATABLE READ and SERIALIZABLE: 40001).
CREATE TABLE payext.parking_plate_events (
  lot     bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate   text NOT NULL,
  events  bigint NOT NULL,
  PRIMARY KEY (lot, plate)
);

CREATE TABLE payext.parking_payment (
  transfer_id bigint PRIMARY KEY REFERENCES payext.transfer (id),
  stay        bigint NOT NULL REFERENCES payext.parking_stay (id),
  wallet      bigint NOT NULL REFERENCES payext.account (id),
  amount      bigint NOT NULL CHECK (amount > 0),
  -- 'saga': from a wallet on another partition, through this partition's
  -- clearing account (wallet is then that account; src/sql/saga.sql)
  -- 'validation': a shop's part of the stay, from its merchant account
  -- (wallet is then that account; validate_parking())
  how         text NOT NULL CHECK (how IN ('manual', 'auto', 'saga', 'validation')),
  paid_at     timestamptz NOT NULL
);
CREATE INDEX parking_payment_stay_idx ON payext.parking_payment (stay);
COMMENT ON TABLE payext.parking_payment IS 'payments of stays from wallets, by pay_parking(), automatically at exit, or by a saga from a wallet on another partition';

SELECT pg_catalog.pg_extension_config_dump('payext.vehicle', '');
SELECT pg_catalog.pg_extension_config_dump('payext.vehicle_owner', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_lot', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_stay', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_payment', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_plate_events', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_lot_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_stay_id_seq', '');

-- Stays that need a person: exits without entry, entries whose exit was
-- missed (the plate entered the same lot again), plates open at more than
-- one lot, and exits that could not be priced (a stay longer than
-- payext.max_stay, or a fee beyond 64 bits).
CREATE VIEW payext.parking_anomaly AS
SELECT s.id AS stay, s.lot, s.plate, s.exited_at AS seen_at, 'exit_without_entry'::text AS anomaly
  FROM payext.parking_stay s
 WHERE s.state = 'exit_without_entry'
UNION ALL
SELECT s.id, s.lot, s.plate, s.entered_at, 'exit_missed'
  FROM payext.parking_stay s
 WHERE s.state = 'exit_missed'
UNION ALL
SELECT s.id, s.lot, s.plate, s.entered_at, 'open_at_several_lots'
  FROM payext.parking_stay s
 WHERE s.state = 'open'
   AND EXISTS (SELECT 1 FROM payext.parking_stay o
                WHERE o.plate = s.plate AND o.state = 'open' AND o.lot <> s.lot)
UNION ALL
SELECT s.id, s.lot, s.plate, s.exited_at, 'exit_unpriced'
  FROM payext.parking_stay s
 WHERE s.state = 'exit_unpriced';
COMMENT ON VIEW payext.parking_anomaly IS
  'camera events that need a person: exits without entry, missed exits, plates open at several lots, exits that could not be priced';

---------------------------------------------------------------------------
-- Functions
---------------------------------------------------------------------------

CREATE FUNCTION payext.bind_vehicle(owner text, plate text, auto_pay boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_bind_vehicle'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.bind_vehicle(text, text, boolean) IS
  'binds a plate to a user (again: changes auto_pay); at most payext.max_vehicles per user';

CREATE FUNCTION payext.unbind_vehicle(owner text, plate text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_unbind_vehicle'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.unbind_vehicle(text, text) IS 'unbinds a plate from its owner';

CREATE FUNCTION payext.normalize_plate(plate text)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_normalize_plate'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.normalize_plate(text) IS
  'a plate''s normal form: NFC, upper case, no spaces or dashes';

CREATE FUNCTION payext.create_parking_lot(operator bigint, name text, time_zone text,
                                          free_minutes integer, unit_minutes integer,
                                          day_price bigint, night_price bigint DEFAULT NULL,
                                          day_start time DEFAULT '08:00',
                                          night_start time DEFAULT '20:00',
                                          cap_24h bigint DEFAULT NULL,
                                          cap_stay bigint DEFAULT NULL,
                                          exit_grace_minutes integer DEFAULT 15,
                                          entry_hold bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_create_parking_lot'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.create_parking_lot(bigint, text, text, integer, integer, bigint, bigint, time, time, bigint, bigint, integer, bigint) IS
  'a parking lot of an operator (a merchant account) with its tariff (and entry hold); returns its id';

-- No SECURITY DEFINER and no SET clause: a SET search_path is a GUC save and
-- restore on every call, most of the time of pricing a million stays.
-- parking_fee() keeps the lots it has read for the rest of the query, and
-- reads a lot as its owner under a pinned search_path itself (src/parking.c).
-- It writes nothing and reads its lots under the query's snapshot, so it is
-- PARALLEL SAFE: a query pricing many stays is shared among parallel
-- workers, each with its own cache of lots.
CREATE FUNCTION payext.parking_fee(lot bigint, entered_at timestamptz, exited_at timestamptz)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_parking_fee'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.parking_fee(bigint, timestamptz, timestamptz) IS
  'what a stay at the lot costs, by its tariff';

CREATE FUNCTION payext.vehicle_entered(lot bigint, plate text, at timestamptz DEFAULT now())
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_vehicle_entered'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.vehicle_entered(bigint, text, timestamptz) IS
  'a camera saw a plate enter; returns the stay id (the same one for a repeated event)';

CREATE FUNCTION payext.vehicle_exited(lot bigint, plate text, at timestamptz DEFAULT now())
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_vehicle_exited'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.vehicle_exited(bigint, text, timestamptz) IS
  'a camera saw a plate leave; returns what the stay cost (NULL for an exit without entry or one that cannot be priced), paying it with auto-pay';

CREATE FUNCTION payext.parking_service_info(owner text, at timestamptz DEFAULT now())
RETURNS TABLE (stay bigint, plate text, lot bigint, entered_at timestamptz,
               exited_at timestamptz, amount_due bigint, lot_name text, currency text)
AS 'MODULE_PATHNAME', 'payext_parking_service_info'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.parking_service_info(text, timestamptz) IS
  'a row per open or unpaid stay of the owner''s bound vehicles, with what is due at `at` (NULL: it cannot be priced)';

CREATE FUNCTION payext.pay_parking(stay bigint, wallet bigint, amount bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_pay_parking'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.pay_parking(bigint, bigint, bigint) IS
  'pays what parking_service_info showed; a stale amount is refused; returns the transfer id';

-- Parking payments against the journal and their stays: part of
-- verify_ledger().
CREATE FUNCTION payext.verify_parking()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH paid AS (
    SELECT p.stay, sum(p.amount::numeric) AS total FROM payext.parking_payment p GROUP BY p.stay
  ), bad_payment AS (
    SELECT p.transfer_id FROM payext.parking_payment p
      JOIN payext.parking_stay s ON s.id = p.stay
      JOIN payext.parking_lot l ON l.id = s.lot
      LEFT JOIN payext.transfer t ON t.id = p.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'parking' OR t.debit_account <> p.wallet
        OR t.credit_account <> l.operator OR t.amount <> p.amount
  ), bad_stay AS (
    SELECT s.id FROM payext.parking_stay s LEFT JOIN paid ON paid.stay = s.id
     WHERE s.paid::numeric <> coalesce(paid.total, 0)
        -- an exited stay is never paid more than its fee
        OR (s.fee IS NOT NULL AND s.paid > s.fee)
  ), orphan_transfer AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.kind = 'parking'
       AND NOT EXISTS (SELECT 1 FROM payext.parking_payment p WHERE p.transfer_id = t.id)
    UNION ALL
    -- a validation's discount is its shop's payment of the stay
    SELECT v.id FROM payext.parking_validation v
      LEFT JOIN payext.parking_payment p ON p.transfer_id = v.transfer_id
     WHERE (v.discount > 0) <> (p.transfer_id IS NOT NULL)
        OR (p.transfer_id IS NOT NULL
            AND (p.stay <> v.stay OR p.wallet <> v.merchant OR p.amount <> v.discount
                 OR p.how <> 'validation'))
  )
  SELECT 'parking_matches_journal',
         NOT EXISTS (SELECT 1 FROM bad_payment) AND NOT EXISTS (SELECT 1 FROM bad_stay)
           AND NOT EXISTS (SELECT 1 FROM orphan_transfer),
         CASE WHEN EXISTS (SELECT 1 FROM bad_payment) OR EXISTS (SELECT 1 FROM bad_stay)
                   OR EXISTS (SELECT 1 FROM orphan_transfer)
              THEN format('%s parking payment(s), %s stay(s) and %s parking transfer(s) disagree',
                          (SELECT count(*) FROM bad_payment), (SELECT count(*) FROM bad_stay),
                          (SELECT count(*) FROM orphan_transfer))
              ELSE format('%s parking payments agree with the journal and their stays',
                          (SELECT count(*) FROM payext.parking_payment))
         END
$$;
COMMENT ON FUNCTION payext.verify_parking() IS
  'parking payments against the journal and their stays; part of verify_ledger()';

---------------------------------------------------------------------------
-- Parking as operators run it: arrears, passes, blocked plates, misread
-- plates (entry holds are src/parking.c's, on payext.hold_entry)
---------------------------------------------------------------------------

-- Exited stays still owed (arrears): what a gate asks about by plate.
CREATE INDEX parking_stay_owed_idx ON payext.parking_stay (plate)
  WHERE state = 'exited' AND fee > paid;

-- A plate's match keys: its confusion key (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B as
-- one) and that key less any one character.  Two plates within one edit
-- share a key, so the open stays' keys, indexed, find the candidates for
-- a misread plate (src/plate.c).
CREATE FUNCTION payext.plate_match_keys(plate text)
RETURNS text[]
AS 'MODULE_PATHNAME', 'payext_plate_match_keys'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION payext.plate_match_keys(text) IS
  'a plate''s confusion key and its one-character deletions: plates within one edit share one';

CREATE FUNCTION payext.plate_distance(a text, b text)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_plate_distance'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION payext.plate_distance(text, text) IS
  'edits between two plates, the camera''s confusions counting as none: 0, 1, or 2 for two or more';

CREATE INDEX parking_stay_match_idx ON payext.parking_stay
  USING gin (payext.plate_match_keys(plate)) WHERE state = 'open';

CREATE SEQUENCE payext.parking_pass_id_seq AS bigint;
CREATE TABLE payext.parking_pass (
  id          bigint PRIMARY KEY,
  lot         bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate       text NOT NULL,           -- normalised
  valid_from  timestamptz NOT NULL,
  valid_until timestamptz NOT NULL,
  pass_ref    text NOT NULL,
  granted_at  timestamptz NOT NULL,
  CONSTRAINT parking_pass_span CHECK (valid_from < valid_until),
  CONSTRAINT parking_pass_ref_key UNIQUE (lot, pass_ref)
);
CREATE INDEX parking_pass_plate_idx ON payext.parking_pass (lot, plate, valid_until);
COMMENT ON TABLE payext.parking_pass IS
  'passes (a month''s parking): the part of a stay inside one costs nothing';

CREATE TABLE payext.parking_block (
  lot        bigint NOT NULL REFERENCES payext.parking_lot (id),
  plate      text NOT NULL,            -- normalised
  blocked_at timestamptz NOT NULL,
  PRIMARY KEY (lot, plate)
);
COMMENT ON TABLE payext.parking_block IS 'plates a lot refuses at its gate (plate_status() says blocked)';

SELECT pg_catalog.pg_extension_config_dump('payext.parking_pass', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_pass_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_block', '');

-- A new id of this partition from one of parking's sequences ('pass').
CREATE FUNCTION payext.parking_next_id(what text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_parking_next_id'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION payext.parking_next_id(text) IS
  'a new id, carrying this partition, for a parking pass';

-- The lot's row, or PY407; its operator's roles (and admins) only.
CREATE FUNCTION payext.require_lot_operator(lot bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  operator bigint;
BEGIN
  IF lot IS NULL THEN
    RAISE EXCEPTION 'argument "lot" must not be null' USING ERRCODE = 'PY001';
  END IF;
  SELECT l.operator INTO operator FROM payext.parking_lot l WHERE l.id = require_lot_operator.lot;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
  END IF;
  PERFORM payext.require_merchant(operator);
  RETURN operator;
END
$$;
COMMENT ON FUNCTION payext.require_lot_operator(bigint) IS
  'PY407 for an unknown lot, 42501 unless the caller may act for its operator; returns the operator';

-- A pass of the plate at the lot for [valid_from, valid_until); the part
-- of a stay inside it costs nothing.  Idempotent on (lot, pass_ref): again
-- with the same plate and span, the same pass; with others, PY417.
CREATE FUNCTION payext.grant_parking_pass(lot bigint, plate text, valid_from timestamptz,
                                          valid_until timestamptz, pass_ref text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text;
  id bigint;
  old payext.parking_pass;
BEGIN
  IF plate IS NULL OR valid_from IS NULL OR valid_until IS NULL OR pass_ref IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null',
      CASE WHEN plate IS NULL THEN 'plate' WHEN valid_from IS NULL THEN 'valid_from'
           WHEN valid_until IS NULL THEN 'valid_until' ELSE 'pass_ref' END
      USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  p := payext.normalize_plate(plate);
  IF length(pass_ref) NOT BETWEEN 1 AND 128 OR pass_ref ~ '[[:cntrl:]]' OR pass_ref <> btrim(pass_ref) THEN
    RAISE EXCEPTION 'argument "pass_ref" is not a reference' USING ERRCODE = 'PY004',
      DETAIL = 'A reference has 1 to 128 characters, no control characters and no surrounding spaces.';
  END IF;
  IF NOT isfinite(valid_from) OR NOT isfinite(valid_until) OR valid_from >= valid_until THEN
    RAISE EXCEPTION 'a pass runs from valid_from up to a later valid_until' USING ERRCODE = 'PY416',
      DETAIL = format('It would run from %s to %s.', valid_from, valid_until);
  END IF;
  INSERT INTO payext.parking_pass AS x
    VALUES (payext.parking_next_id('pass'), grant_parking_pass.lot, p, valid_from, valid_until,
            pass_ref, now())
    ON CONFLICT ON CONSTRAINT parking_pass_ref_key DO NOTHING
    RETURNING x.id INTO id;
  IF id IS NOT NULL THEN
    RETURN id;
  END IF;
  SELECT * INTO old FROM payext.parking_pass x
   WHERE x.lot = grant_parking_pass.lot AND x.pass_ref = grant_parking_pass.pass_ref;
  IF old.plate = p AND old.valid_from = grant_parking_pass.valid_from
     AND old.valid_until = grant_parking_pass.valid_until THEN
    RETURN old.id;
  END IF;
  RAISE EXCEPTION 'pass reference "%" was already used for another pass', pass_ref
    USING ERRCODE = 'PY417',
          DETAIL = format('Pass %s of the lot was granted under it.', old.id),
          HINT = 'A retry repeats the plate and the span; a new pass needs a new reference.';
END
$$;
COMMENT ON FUNCTION payext.grant_parking_pass(bigint, text, timestamptz, timestamptz, text) IS
  'a pass of a plate at a lot (the part of a stay inside it is free); idempotent on (lot, pass_ref)';

CREATE FUNCTION payext.block_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF plate IS NULL THEN
    RAISE EXCEPTION 'argument "plate" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  INSERT INTO payext.parking_block VALUES (block_plate.lot, payext.normalize_plate(plate), now())
    ON CONFLICT ON CONSTRAINT parking_block_pkey DO NOTHING;
END
$$;
COMMENT ON FUNCTION payext.block_plate(bigint, text) IS
  'the lot refuses the plate at its gate (again: nothing more)';

CREATE FUNCTION payext.unblock_plate(lot bigint, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF plate IS NULL THEN
    RAISE EXCEPTION 'argument "plate" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM payext.require_lot_operator(lot);
  DELETE FROM payext.parking_block b
   WHERE b.lot = unblock_plate.lot AND b.plate = payext.normalize_plate(unblock_plate.plate);
END
$$;
COMMENT ON FUNCTION payext.unblock_plate(bigint, text) IS 'the lot takes the plate again';

-- What a gate needs to know of a plate at its lot, in this order:
-- 'blocked' (the lot refuses it), 'arrears' (its owner owes an exited
-- stay at any lot; an unbound plate, one of its own), 'pass' (a valid pass
-- at this lot now), else 'normal'.  A few index lookups: the block, the
-- plate's owner, the owner's plates' owed stays (parking_stay_owed_idx),
-- the pass.
CREATE FUNCTION payext.plate_status(lot bigint, plate text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text;
  o text;
BEGIN
  IF lot IS NULL OR plate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN lot IS NULL THEN 'lot' ELSE 'plate' END
      USING ERRCODE = 'PY001';
  END IF;
  p := payext.normalize_plate(plate);
  -- An app (the gates' backend) asks at any lot; a merchant role only at
  -- its operators' lots: another's blocks and passes are not its to read.
  IF payext.caller_has_capability('app') OR payext.caller_has_capability('admin') THEN
    IF NOT EXISTS (SELECT 1 FROM payext.parking_lot l WHERE l.id = plate_status.lot) THEN
      RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
    END IF;
  ELSE
    PERFORM payext.require_lot_operator(lot);
  END IF;
  IF EXISTS (SELECT 1 FROM payext.parking_block b WHERE b.lot = plate_status.lot AND b.plate = p) THEN
    RETURN 'blocked';
  END IF;
  SELECT v.owner INTO o FROM payext.vehicle v WHERE v.plate = p;
  IF (o IS NULL AND EXISTS (SELECT 1 FROM payext.parking_stay s
                             WHERE s.plate = p AND s.state = 'exited' AND s.fee > s.paid
                               AND s.owner_at_entry IS NULL))
     OR (o IS NOT NULL AND EXISTS (SELECT 1 FROM payext.vehicle v
                                     JOIN payext.parking_stay s ON s.plate = v.plate
                                    WHERE v.owner = o AND s.state = 'exited' AND s.fee > s.paid
                                      AND (s.owner_at_entry IS NULL OR s.owner_at_entry = o))) THEN
    RETURN 'arrears';
  END IF;
  IF EXISTS (SELECT 1 FROM payext.parking_pass x
              WHERE x.lot = plate_status.lot AND x.plate = p
                AND x.valid_until > now() AND x.valid_from <= now()) THEN
    RETURN 'pass';
  END IF;
  RETURN 'normal';
END
$$;
COMMENT ON FUNCTION payext.plate_status(bigint, text) IS
  'what a gate does with a plate: blocked, arrears, pass or normal';

-- Pays the owner's owed stays (exited, unpaid), oldest exit first, each
-- from the owner's wallet in its lot's currency, until one it cannot pay;
-- a stay in a currency the owner has no wallet in is passed over.
-- Returns how many it paid.  The stays are locked first, in id order, then
-- paid one by one (pay_parking()), so that it takes locks in the order a
-- payment of one stay does.
CREATE FUNCTION payext.settle_arrears(owner text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  s record;
  w bigint;
  n integer := 0;
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  PERFORM 1 FROM payext.vehicle v JOIN payext.parking_stay x ON x.plate = v.plate
   WHERE v.owner = settle_arrears.owner AND x.state = 'exited' AND x.fee > x.paid
     AND (x.owner_at_entry IS NULL OR x.owner_at_entry = v.owner)
   ORDER BY x.id
     FOR UPDATE OF x;
  FOR s IN
    SELECT x.id, x.fee - x.paid AS due, l.currency
      FROM payext.vehicle v JOIN payext.parking_stay x ON x.plate = v.plate
      JOIN payext.parking_lot l ON l.id = x.lot
     WHERE v.owner = settle_arrears.owner AND x.state = 'exited' AND x.fee > x.paid
       AND (x.owner_at_entry IS NULL OR x.owner_at_entry = v.owner)
     ORDER BY x.exited_at, x.id
  LOOP
    SELECT a.id INTO w FROM payext.account a
     WHERE a.kind = 'wallet' AND a.owner = settle_arrears.owner AND a.currency = s.currency;
    -- (no wallet in that currency: that stay waits, the others are paid)
    CONTINUE WHEN w IS NULL;
    BEGIN
      PERFORM payext.pay_parking(s.id, w, s.due);
      n := n + 1;
    EXCEPTION WHEN SQLSTATE 'PY104' OR SQLSTATE 'PY102' OR SQLSTATE 'PY103' THEN
      EXIT;
    END;
  END LOOP;
  RETURN n;
END
$$;
COMMENT ON FUNCTION payext.settle_arrears(text) IS
  'pays the owner''s owed stays, oldest first, while the wallet allows; returns how many';

-- Shops' validations: a merchant pays part of its customer's stay.  The
-- discount is paid to the operator when the stay is paid (src/parking.c,
-- validate_parking): its fee is known only then.
CREATE SEQUENCE payext.parking_validation_id_seq AS bigint;
CREATE TABLE payext.parking_validation (
  id             bigint PRIMARY KEY,
  stay           bigint NOT NULL REFERENCES payext.parking_stay (id),
  merchant       bigint NOT NULL REFERENCES payext.account (id),
  kind           text NOT NULL CHECK (kind IN ('amount', 'minutes', 'percent', 'free')),
  value          bigint NOT NULL CHECK (value >= 0),
  validation_ref text NOT NULL,
  -- pending until the stay is paid; then applied (discount paid, perhaps
  -- 0), or unfunded (the shop could not pay it then: the owner paid all)
  state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'unfunded')),
  discount       bigint CHECK (discount >= 0),
  transfer_id    bigint,
  created_at     timestamptz NOT NULL,
  applied_at     timestamptz,
  CONSTRAINT parking_validation_once UNIQUE (stay, merchant),
  CONSTRAINT parking_validation_ref_key UNIQUE (merchant, validation_ref),
  CONSTRAINT parking_validation_settled
    CHECK ((state = 'pending') = (applied_at IS NULL) AND (state = 'pending') = (discount IS NULL))
);
COMMENT ON TABLE payext.parking_validation IS
  'shops paying part of their customers'' stays: pending until the stay is paid, then applied or unfunded';
SELECT pg_catalog.pg_extension_config_dump('payext.parking_validation', '');
SELECT pg_catalog.pg_extension_config_dump('payext.parking_validation_id_seq', '');

CREATE FUNCTION payext.validate_parking(stay bigint, merchant bigint, kind text, value bigint,
                                        validation_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_validate_parking'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.validate_parking(bigint, bigint, text, bigint, text) IS
  'a shop pays part of a stay (amount, minutes from entry, percent, or free) when it is paid; once per shop and stay; idempotent on (merchant, validation_ref)';

-- Open stays at the lot whose plate is within one edit of the plate read
-- (the camera's confusions counting as none), nearest first: for an exit
-- without an entry.  The lot's open stays' match keys are indexed
-- (parking_stay_match_idx).  (Rows of a type, not OUT parameters: the
-- plate read and the plates found are both named plate.)
CREATE TYPE payext.plate_suggestion AS (plate text, stay bigint, entered_at timestamptz,
                                        distance integer);
CREATE FUNCTION payext.suggest_plates(lot bigint, plate text)
RETURNS SETOF payext.plate_suggestion
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  seen text;
BEGIN
  IF lot IS NULL OR plate IS NULL THEN
    RAISE EXCEPTION 'argument "%" must not be null', CASE WHEN lot IS NULL THEN 'lot' ELSE 'plate' END
      USING ERRCODE = 'PY001';
  END IF;
  seen := payext.normalize_plate(plate);
  -- Another operator's open stays are not a merchant role's to read.
  IF payext.caller_has_capability('app') OR payext.caller_has_capability('admin') THEN
    IF NOT EXISTS (SELECT 1 FROM payext.parking_lot l WHERE l.id = suggest_plates.lot) THEN
      RAISE EXCEPTION 'parking lot % does not exist', lot USING ERRCODE = 'PY407';
    END IF;
  ELSE
    PERFORM payext.require_lot_operator(lot);
  END IF;
  RETURN QUERY
    SELECT s.plate, s.id, s.entered_at, payext.plate_distance(s.plate, seen)
      FROM payext.parking_stay s
     WHERE s.state = 'open' AND payext.plate_match_keys(s.plate) && payext.plate_match_keys(seen)
       AND s.lot = suggest_plates.lot AND payext.plate_distance(s.plate, seen) <= 1
     ORDER BY 4, s.entered_at DESC, s.id;
END
$$;
COMMENT ON FUNCTION payext.suggest_plates(bigint, text) IS
  'open stays at the lot whose plate is within one edit of the one read (0/O, 8/B... as none), nearest first';

---------------------------------------------------------------------------
-- Vehicle slots: payext.max_vehicles across partitions
---------------------------------------------------------------------------

-- Behind a router a plate's binding lives on the plate's partition, which
-- counts only the plates bound there.  The owner's partition keeps one
-- slot per plate the owner has bound anywhere, and refuses a slot past
-- payext.max_vehicles: the router reserves the slot before it binds, and
-- releases it when the binding is refused or undone.  A single node never
-- uses them.
CREATE TABLE payext.vehicle_slot (
  owner        text NOT NULL,
  plate        text NOT NULL,          -- normalised
  reserved_at  timestamptz NOT NULL,
  PRIMARY KEY (owner, plate)
);
COMMENT ON TABLE payext.vehicle_slot IS
  'behind a router: the plates an owner of this partition has bound on any partition, at most payext.max_vehicles';
SELECT pg_catalog.pg_extension_config_dump('payext.vehicle_slot', '');

-- One row per owner with slots: its upsert serialises one owner's
-- reservations, so that the limit holds under any concurrency.
CREATE TABLE payext.vehicle_slot_owner (
  owner  text PRIMARY KEY,
  slots  integer NOT NULL CHECK (slots >= 0)
);
SELECT pg_catalog.pg_extension_config_dump('payext.vehicle_slot_owner', '');

-- Reserves the owner's slot for the plate (again: nothing more); PY403
-- past payext.max_vehicles.  Returns the slots the owner holds.
CREATE FUNCTION payext.reserve_vehicle_slot(owner text, plate text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
DECLARE
  p text := payext.normalize_plate(plate);
  n integer;
BEGIN
  IF owner IS NULL THEN
    RAISE EXCEPTION 'argument "owner" must not be null' USING ERRCODE = 'PY001';
  END IF;
  INSERT INTO payext.vehicle_slot VALUES (reserve_vehicle_slot.owner, p, now()) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT o.slots INTO n FROM payext.vehicle_slot_owner o WHERE o.owner = reserve_vehicle_slot.owner;
    RETURN n;
  END IF;
  INSERT INTO payext.vehicle_slot_owner AS o VALUES (reserve_vehicle_slot.owner, 1)
    ON CONFLICT ON CONSTRAINT vehicle_slot_owner_pkey DO UPDATE SET slots = o.slots + 1
    RETURNING o.slots INTO n;
  IF n > pg_catalog.current_setting('payext.max_vehicles')::integer THEN
    RAISE EXCEPTION 'user "%" may bind at most % vehicles', owner,
      pg_catalog.current_setting('payext.max_vehicles')
      USING ERRCODE = 'PY403',
            DETAIL = 'The limit is set by payext.max_vehicles, counted over every partition.',
            HINT = 'Unbind a vehicle first.';
  END IF;
  RETURN n;
END
$$;
COMMENT ON FUNCTION payext.reserve_vehicle_slot(text, text) IS
  'behind a router: reserves one of the owner''s payext.max_vehicles slots for a plate on any partition';

CREATE FUNCTION payext.release_vehicle_slot(owner text, plate text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  DELETE FROM payext.vehicle_slot s
   WHERE s.owner = release_vehicle_slot.owner
     AND s.plate = payext.normalize_plate(release_vehicle_slot.plate);
  IF FOUND THEN
    UPDATE payext.vehicle_slot_owner o SET slots = o.slots - 1
     WHERE o.owner = release_vehicle_slot.owner;
  END IF;
END
$$;
COMMENT ON FUNCTION payext.release_vehicle_slot(text, text) IS
  'behind a router: gives an owner''s slot for a plate back (none: nothing)';
