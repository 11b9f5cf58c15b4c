-- payext: payment codes, merchant charges and refunds.

---------------------------------------------------------------------------
-- Signing keys: readable by the extension's owner only, never dumped
---------------------------------------------------------------------------

CREATE TABLE payext.signing_key (
  id         integer PRIMARY KEY CHECK (id > 0),
  secret     bytea NOT NULL CHECK (length(secret) = 32),
  created_at timestamptz NOT NULL,
  -- the WAL timeline it was made on: a key older than the server's start
  -- or of another timeline is replaced by the next code (src/codes.c)
  timeline   integer
);
COMMENT ON TABLE payext.signing_key IS
  'keys of the payment codes'' keyed permutation (HMAC-SHA256 rounds). Not dumped: codes die with their keys.';

---------------------------------------------------------------------------
-- Codes, payments, refunds
---------------------------------------------------------------------------

-- Serials of codes: each key permutes the 10^15 numbers of 15 digits, and
-- serials are never reused (the sequence is dumped; request_payment refuses
-- one past 10^15 - 1 with PY214), so a code string never repeats while its
-- key lives.
CREATE SEQUENCE payext.code_serial_seq AS bigint;

-- Live codes.  A code is a bearer token of a minute: what must be durable is
-- its use (payext.payment), not its issue.  So the table is UNLOGGED (no
-- WAL for issuing a code) and not dumped: after a crash or a restore, or on
-- a promoted standby, codes not yet used are simply unknown and the
-- customer shows a fresh one.  Rows are purged some minutes after expiry
-- by request_payment() itself.
CREATE UNLOGGED TABLE payext.payment_code (
  serial     bigint PRIMARY KEY,
  -- the 15 digits the code carries: serial under key_id's permutation
  code       bigint NOT NULL CHECK (code >= 0 AND code < 1000000000000000),
  key_id     integer NOT NULL,
  -- the wallet request_payment() found active.  No foreign key: its lock
  -- (FOR KEY SHARE of the account row, a logged table) was the only WAL
  -- that issuing a code wrote; charge() locks the wallet anyway.
  wallet     bigint NOT NULL,
  max_amount bigint CHECK (max_amount > 0),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  state      text NOT NULL DEFAULT 'issued'
             CHECK (state IN ('issued', 'used', 'cancelled')),
  closed_at  timestamptz,
  CONSTRAINT payment_code_closed CHECK ((state = 'issued') = (closed_at IS NULL))
);
CREATE UNIQUE INDEX payment_code_code_key ON payext.payment_code (code);
CREATE INDEX payment_code_expires_idx ON payext.payment_code (expires_at);
COMMENT ON TABLE payext.payment_code IS
  'live payment codes issued by request_payment(): single use, short-lived, unlogged, not dumped';

-- No foreign keys: charge() writes a payment right after its journal row,
-- whose own keys hold the accounts, and verify_payments() checks the two
-- against each other.  Each key was a statement per charge, a row lock
-- written to the WAL, and, under SERIALIZABLE, a read lock on a page of the
-- journal's primary key that made concurrent charges conflict.
CREATE TABLE payext.payment (
  transfer_id bigint PRIMARY KEY,
  merchant    bigint NOT NULL,
  order_ref   text NOT NULL,
  wallet      bigint NOT NULL,
  -- a code pays at most once (its live row is unlogged: no foreign key)
  code_serial bigint NOT NULL UNIQUE,
  amount      bigint NOT NULL CHECK (amount > 0),
  -- the refunds of a charge never exceed it
  refunded    bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  CONSTRAINT payment_order_key UNIQUE (merchant, order_ref)
);
-- No index on wallet: no query of payext looks payments up by wallet (a
-- wallet's charges are its journal rows, transfer_debit_idx); an index
-- entry per payment for nothing.
COMMENT ON TABLE payext.payment IS
  'merchant charges: which code paid which order, and how much of it is refunded';

CREATE TABLE payext.refund (
  transfer_id bigint PRIMARY KEY REFERENCES payext.transfer (id),
  payment     bigint NOT NULL REFERENCES payext.payment (transfer_id),
  merchant    bigint NOT NULL REFERENCES payext.account (id),
  refund_ref  text NOT NULL,
  amount      bigint NOT NULL CHECK (amount > 0),
  created_at  timestamptz NOT NULL,
  CONSTRAINT refund_ref_key UNIQUE (merchant, refund_ref)
);
CREATE INDEX refund_payment_idx ON payext.refund (payment);
COMMENT ON TABLE payext.refund IS 'refunds, each of part or all of one payment';

SELECT pg_catalog.pg_extension_config_dump('payext.payment', '');
SELECT pg_catalog.pg_extension_config_dump('payext.refund', '');
SELECT pg_catalog.pg_extension_config_dump('payext.code_serial_seq', '');

---------------------------------------------------------------------------
-- Functions
---------------------------------------------------------------------------

-- The functions that move money through codes read and lock rows by key
-- only, and run with enable_seqscan off: on a small table (live codes
-- always are; accounts in a young database) the planner would choose a
-- sequential scan, which under SERIALIZABLE reads every row, and then any
-- two concurrent payments seem to depend on each other
-- (charge_many_serializable.spec).
CREATE FUNCTION payext.request_payment(wallet bigint, max_amount bigint DEFAULT NULL,
                                       ttl interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_request_payment'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.request_payment(bigint, bigint, interval) IS
  'a new single-use payment code of 18 digits for the wallet, valid for ttl (default payext.code_ttl)';

CREATE FUNCTION payext.cancel_payment_code(code text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_cancel_payment_code'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.cancel_payment_code(text) IS
  'withdraws a payment code that has not paid yet';

CREATE FUNCTION payext.charge(merchant bigint, code text, amount bigint, order_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_charge'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.charge(bigint, text, bigint, text) IS
  'a merchant charges a payment code; returns the transfer id; idempotent on (merchant, order_ref)';

CREATE FUNCTION payext.charge_many(merchant bigint, codes text[], amounts bigint[],
                                   order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text, message text)
AS 'MODULE_PATHNAME', 'payext_charge_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.charge_many(bigint, text[], bigint[], text[]) IS
  'charges of one merchant in one call, each charged or refused on its own, in input order';

CREATE FUNCTION payext.refund(merchant bigint, order_ref text, amount bigint, refund_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_refund'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.refund(bigint, text, bigint, text) IS
  'refunds part or all of a charge from the merchant''s balance; idempotent on (merchant, refund_ref)';

-- Orders reverse_charge() refunded in full or closed: one row per order;
-- transfer_id is the reversal's refund, NULL when it moved no money (the
-- order was never charged, or was refunded in full before).  A charge
-- under a closed order is PY215.
CREATE TABLE payext.order_reversal (
  merchant    bigint NOT NULL REFERENCES payext.account (id),
  order_ref   text NOT NULL,
  transfer_id bigint REFERENCES payext.transfer (id),
  reversed_at timestamptz NOT NULL,
  PRIMARY KEY (merchant, order_ref)
);
COMMENT ON TABLE payext.order_reversal IS
  'orders reverse_charge() refunded in full (transfer_id) or closed uncharged (NULL)';
SELECT pg_catalog.pg_extension_config_dump('payext.order_reversal', '');

-- The reversal itself; reverse_charge() (src/sql/roles.sql) checks the
-- caller first.
CREATE FUNCTION payext.reverse_order(merchant bigint, order_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_reverse_order'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.reverse_order(bigint, text) IS
  'behind reverse_charge(): refunds a charged order in full or closes an uncharged one';

-- Merchant accounts whose charges, refunds and reversals are announced by
-- NOTIFY on their channel (src/events.c): event_channel() adds the
-- account the first time its channel is asked for.
CREATE TABLE payext.event_subscription (
  merchant      bigint PRIMARY KEY REFERENCES payext.account (id),
  subscribed_at timestamptz NOT NULL
);
COMMENT ON TABLE payext.event_subscription IS
  'merchant accounts whose payment events are announced (event_channel())';
SELECT pg_catalog.pg_extension_config_dump('payext.event_subscription', '');

-- The channel's name; event_channel() (src/sql/roles.sql) checks the
-- caller first.
CREATE FUNCTION payext.event_channel_name(merchant bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_event_channel_name'
LANGUAGE C STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.event_channel_name(bigint) IS
  'behind event_channel(): the keyed name of a merchant account''s LISTEN channel';

-- payment_status answers only for merchants the caller may act for
-- (require_merchant() is in src/sql/roles.sql).
CREATE FUNCTION payext.payment_status(merchant bigint, order_ref text,
                                      OUT transfer_id bigint, OUT amount bigint,
                                      OUT refunded_amount bigint, OUT state text,
                                      OUT created_at timestamptz, OUT updated_at timestamptz)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF merchant IS NULL OR order_ref IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PY001',
      MESSAGE = format('argument "%s" must not be null',
                       CASE WHEN merchant IS NULL THEN 'merchant' ELSE 'order_ref' END);
  END IF;
  PERFORM payext.require_merchant(merchant);
  SELECT p.transfer_id, p.amount, p.refunded,
         CASE WHEN p.refunded = 0 THEN 'paid'
              WHEN p.refunded < p.amount THEN 'partially_refunded'
              ELSE 'refunded' END,
         p.created_at, p.updated_at
    INTO transfer_id, amount, refunded_amount, state, created_at, updated_at
    FROM payext.payment p
   WHERE p.merchant = payment_status.merchant
     AND p.order_ref = payment_status.order_ref;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PY209',
      MESSAGE = format('merchant %s has no payment for order "%s"', merchant, order_ref),
      HINT = 'Check the merchant account and the order reference.';
  END IF;
END
$$;
COMMENT ON FUNCTION payext.payment_status(bigint, text) IS
  'the state of a charge: paid, partially_refunded or refunded';

-- Codes that passed their check digit but were never issued, per merchant
-- account: kept in shared memory by the library (payext must be in
-- shared_preload_libraries) so that the charge's rollback cannot erase
-- them.  Past payext.code_failure_limit within payext.code_failure_window
-- the merchant charges no code until the window has passed or an admin
-- unblocks it.
CREATE FUNCTION payext.code_failures(OUT merchant bigint, OUT failures integer,
                                     OUT first_at timestamptz, OUT last_at timestamptz,
                                     OUT blocked_until timestamptz, OUT last_code text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'payext_code_failures'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION payext.code_failures() IS
  'merchant accounts that submitted codes never issued, in the current window; behind the view code_failure';

CREATE VIEW payext.code_failure AS
SELECT f.merchant, f.failures, f.first_at, f.last_at, f.blocked_until, f.last_code
  FROM payext.code_failures() f;
COMMENT ON VIEW payext.code_failure IS
  'merchant accounts that submitted payment codes that were never issued, the last of them, and until when they may charge none';

CREATE FUNCTION payext.unblock_charging(merchant bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_unblock_charging'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.unblock_charging(bigint) IS
  'lets a merchant blocked for guessing payment codes charge again, and forgets its failures';

CREATE FUNCTION payext.rotate_signing_key()
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_rotate_signing_key'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.rotate_signing_key() IS
  'starts a new signing key; codes signed by earlier ones stay valid until they expire';

-- Charges and refunds against the journal: part of verify_ledger().
CREATE FUNCTION payext.verify_payments()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH refunded AS (
    SELECT r.payment, sum(r.amount::numeric) AS total FROM payext.refund r GROUP BY r.payment
  ), bad_payment AS (
    SELECT p.transfer_id FROM payext.payment p
      LEFT JOIN payext.transfer t ON t.id = p.transfer_id
      LEFT JOIN refunded r ON r.payment = p.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'charge' OR t.debit_account <> p.wallet
        OR t.credit_account <> p.merchant OR t.amount <> p.amount
        OR t.reference IS DISTINCT FROM p.order_ref
        OR p.refunded::numeric <> coalesce(r.total, 0) OR p.refunded > p.amount
  ), bad_refund AS (
    SELECT r.transfer_id FROM payext.refund r
      JOIN payext.payment p ON p.transfer_id = r.payment
      LEFT JOIN payext.transfer t ON t.id = r.transfer_id
     WHERE t.id IS NULL OR t.kind <> 'refund' OR t.debit_account <> r.merchant
        OR r.merchant <> p.merchant OR t.credit_account <> p.wallet
        OR t.amount <> r.amount OR t.reference IS DISTINCT FROM r.refund_ref
  ), orphan_interaction AS (
    -- an interaction that names a transfer says what the journal says of
    -- it: its amount, currency and time, the wallet's owner, the merchant's
    -- public-service id (a refund's wallet is its credit side)
    SELECT i.id FROM payext.interaction i
      LEFT JOIN payext.transfer t ON t.id = i.transfer_id
      LEFT JOIN payext.account w
        ON w.id = CASE WHEN t.kind = 'refund' THEN t.credit_account ELSE t.debit_account END
      LEFT JOIN payext.account m
        ON m.id = CASE WHEN t.kind = 'refund' THEN t.debit_account ELSE t.credit_account END
     WHERE i.transfer_id IS NOT NULL
       AND (t.id IS NULL OR i.amount <> t.amount OR i.currency IS DISTINCT FROM t.currency
            OR i.occurred_at <> t.created_at OR i.consumer IS DISTINCT FROM w.owner
            OR i.public_service_id IS DISTINCT FROM m.public_service_id)
  ), orphan_transfer AS (
    SELECT t.id FROM payext.transfer t
     WHERE (t.kind = 'charge' AND NOT EXISTS (SELECT 1 FROM payext.payment p WHERE p.transfer_id = t.id))
        OR (t.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM payext.refund r WHERE r.transfer_id = t.id))
  ), code_payments AS (
    -- what used a code: a charge, or a hold (authorize())
    SELECT u.code_serial, count(*) AS n
      FROM (SELECT p.code_serial FROM payext.payment p
            UNION ALL
            SELECT h.code_serial FROM payext.hold_entry h WHERE h.code_serial IS NOT NULL) u
     GROUP BY u.code_serial
  ), bad_code AS (
    -- A live code is used if and only if it paid or held, and no code,
    -- live or purged, is used twice: counted here, not left to the unique
    -- constraints alone.
    SELECT c.serial FROM payext.payment_code c
      LEFT JOIN code_payments u ON u.code_serial = c.serial
     WHERE (c.state = 'used') <> (u.n IS NOT NULL)
    UNION
    SELECT u.code_serial FROM code_payments u WHERE u.n > 1
  )
  SELECT 'payments_match_journal',
         NOT EXISTS (SELECT 1 FROM bad_payment) AND NOT EXISTS (SELECT 1 FROM bad_refund)
           AND NOT EXISTS (SELECT 1 FROM orphan_transfer)
           AND NOT EXISTS (SELECT 1 FROM orphan_interaction),
         CASE WHEN EXISTS (SELECT 1 FROM bad_payment) OR EXISTS (SELECT 1 FROM bad_refund)
                   OR EXISTS (SELECT 1 FROM orphan_transfer)
                   OR EXISTS (SELECT 1 FROM orphan_interaction)
              THEN format('%s payment(s), %s refund(s), %s charge or refund transfer(s) and %s interaction(s) disagree',
                          (SELECT count(*) FROM bad_payment), (SELECT count(*) FROM bad_refund),
                          (SELECT count(*) FROM orphan_transfer),
                          (SELECT count(*) FROM orphan_interaction))
              ELSE format('%s payments and %s refunds agree with the journal',
                          (SELECT count(*) FROM payext.payment), (SELECT count(*) FROM payext.refund))
         END
  UNION ALL
  SELECT 'codes_paid_once',
         NOT EXISTS (SELECT 1 FROM bad_code),
         CASE WHEN EXISTS (SELECT 1 FROM bad_code)
              THEN (SELECT count(*) FROM bad_code)::text || ' code(s) used without one payment, or paid while not used'
              ELSE (SELECT count(*) FROM code_payments)::text || ' codes paid, once each'
         END
$$;
COMMENT ON FUNCTION payext.verify_payments() IS
  'charges and refunds against the journal; part of verify_ledger()';
