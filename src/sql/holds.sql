-- payext: holds (pre-authorisation).  A hold reserves part of a wallet
-- for one merchant until it is captured, voided or expires; the C code is
-- src/holds.c, the reservation's check src/ledger.c (LedgerHeld).

---------------------------------------------------------------------------
-- Holds and their captures
---------------------------------------------------------------------------

CREATE SEQUENCE payext.hold_id_seq AS bigint;

-- The rows.  state is what was done to the hold: 'open' until a final
-- capture ('captured') or a void ('voided').  Expiry is not a state: an
-- open hold past expires_at holds nothing (payext.hold shows it as
-- 'expired'), without any job having to run.
CREATE TABLE payext.hold_entry (
  id          bigint PRIMARY KEY,
  wallet      bigint NOT NULL,
  merchant    bigint NOT NULL,
  -- in the merchant's order namespace, shared with charges
  order_ref   text NOT NULL,
  -- the payment code it used; NULL for a parking lot's entry hold
  code_serial bigint UNIQUE,
  stay        bigint,
  amount      bigint NOT NULL CHECK (amount > 0),
  captured    bigint NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
  state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'captured', 'voided')),
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL,
  closed_at   timestamptz,
  CONSTRAINT hold_order_key UNIQUE (merchant, order_ref),
  CONSTRAINT hold_closed_when CHECK ((state = 'open') = (closed_at IS NULL)),
  CONSTRAINT hold_made_by CHECK ((code_serial IS NULL) = (stay IS NOT NULL))
);
-- What a wallet's live holds reserve (LedgerHeld): its open holds, by
-- expiry, so that the expired ones are skipped by the index.
CREATE INDEX hold_wallet_open_idx ON payext.hold_entry (wallet, expires_at)
  WHERE state = 'open';
CREATE INDEX hold_stay_idx ON payext.hold_entry (stay) WHERE stay IS NOT NULL;
COMMENT ON TABLE payext.hold_entry IS
  'holds: money of a wallet reserved for a merchant until captured, voided or expired (payext.hold shows them)';

-- Each capture of a hold: its journal transfer (kind 'capture', reference
-- the capture_ref, scoped to the merchant).
CREATE TABLE payext.hold_capture (
  transfer_id bigint PRIMARY KEY,
  hold        bigint NOT NULL REFERENCES payext.hold_entry (id),
  amount      bigint NOT NULL CHECK (amount > 0),
  created_at  timestamptz NOT NULL
);
CREATE INDEX hold_capture_hold_idx ON payext.hold_capture (hold);
COMMENT ON TABLE payext.hold_capture IS 'captures of holds, one journal transfer each';

SELECT pg_catalog.pg_extension_config_dump('payext.hold_entry', '');
SELECT pg_catalog.pg_extension_config_dump('payext.hold_capture', '');
SELECT pg_catalog.pg_extension_config_dump('payext.hold_id_seq', '');

CREATE VIEW payext.hold AS
  SELECT h.id, h.wallet, h.merchant, h.order_ref, h.amount, h.captured,
         CASE WHEN h.state = 'open' AND h.expires_at <= now() THEN 'expired' ELSE h.state END AS state,
         h.expires_at, h.created_at, h.closed_at, h.stay,
         CASE WHEN h.state = 'open' AND h.expires_at > now() THEN h.amount - h.captured ELSE 0 END
           AS holding
    FROM payext.hold_entry h;
COMMENT ON VIEW payext.hold IS
  'holds as of now: open, expired (past expires_at, holding nothing), captured or voided; holding is what it reserves';

---------------------------------------------------------------------------
-- Functions
---------------------------------------------------------------------------

CREATE FUNCTION payext.authorize(merchant bigint, code text, amount bigint, order_ref text,
                                 expires_in interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_authorize'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.authorize(bigint, text, bigint, text, interval) IS
  'a merchant reserves an amount of the wallet behind a payment code; returns the hold id; idempotent on (merchant, order_ref), shared with charges';

CREATE FUNCTION payext.capture_hold(merchant bigint, hold bigint, amount bigint,
                                    capture_ref text, final boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_capture_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.capture_hold(bigint, bigint, bigint, text, boolean) IS
  'takes up to a hold''s remainder to the merchant (a journal transfer); final releases the rest; idempotent on (merchant, capture_ref)';

CREATE FUNCTION payext.void_hold(merchant bigint, hold bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_void_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
SET enable_seqscan = off;
COMMENT ON FUNCTION payext.void_hold(bigint, bigint) IS
  'releases what a hold still reserves, and returns it (0 when it reserved nothing any more)';

-- The balance less what live holds reserve, for whoever may read the
-- account's balance.  Not SECURITY DEFINER, as balance() is not: the C
-- code becomes the owner itself after it has noted the invoker, whose
-- right to read the account it judges (a SECURITY DEFINER function would
-- see the owner as its invoker and answer anyone).
CREATE FUNCTION payext.available_balance(account bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_available_balance'
LANGUAGE C STABLE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.available_balance(bigint) IS
  'an account''s balance less what its live holds reserve: what charges, withdrawals and new holds may take';

-- Holds against the journal and the wallets: part of verify_ledger().
CREATE FUNCTION payext.verify_holds()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH captured AS (
    SELECT c.hold, sum(c.amount::numeric) AS total FROM payext.hold_capture c GROUP BY c.hold
  ), bad_hold AS (
    -- captures add up to what the hold says, never above it; a capture's
    -- transfer is a 'capture' from the hold's wallet to its merchant
    SELECT h.id FROM payext.hold_entry h LEFT JOIN captured c ON c.hold = h.id
     WHERE coalesce(c.total, 0) <> h.captured OR h.captured > h.amount
    UNION
    SELECT c.hold FROM payext.hold_capture c
      JOIN payext.hold_entry h ON h.id = c.hold
      LEFT JOIN payext.transfer t ON t.id = c.transfer_id
     WHERE t.id IS NULL OR t.debit_account <> h.wallet
        -- an entry hold is taken by the stay's payment (src/parking.c)
        OR t.kind <> CASE WHEN h.stay IS NULL THEN 'capture' ELSE 'parking' END
        OR t.credit_account <> h.merchant OR t.amount <> c.amount
    UNION
    -- the wallet says it may hold at least until the hold expires, and the
    -- merchant that it has holds (so that its charges look for them)
    SELECT h.id FROM payext.hold_entry h JOIN payext.account a ON a.id = h.wallet
     WHERE h.state = 'open' AND (a.held_until IS NULL OR a.held_until < h.expires_at)
    UNION
    SELECT h.id FROM payext.hold_entry h JOIN payext.account m ON m.id = h.merchant
     WHERE m.held_until IS NULL
  ), orphan_capture AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.kind = 'capture'
       AND NOT EXISTS (SELECT 1 FROM payext.hold_capture c WHERE c.transfer_id = t.id)
  ), live AS (
    SELECT h.wallet, sum((h.amount - h.captured)::numeric) AS holding
      FROM payext.hold_entry h
     WHERE h.state = 'open' AND h.expires_at > now()
     GROUP BY h.wallet
  ), overheld AS (
    -- a live hold on a wallet that is closed, or that holds less than its
    -- live holds reserve
    SELECT a.id, a.status, a.balance, l.holding FROM live l JOIN payext.account a ON a.id = l.wallet
     WHERE a.status = 'closed' OR a.balance::numeric < l.holding
  )
  -- (rows only where there are holds or captures, as verify_checkpoints())
  , anything AS (
    SELECT EXISTS (SELECT 1 FROM payext.hold_entry)
           OR EXISTS (SELECT 1 FROM payext.transfer t WHERE t.kind = 'capture') AS yes
  )
  SELECT 'holds_match_journal',
         NOT EXISTS (SELECT 1 FROM bad_hold) AND NOT EXISTS (SELECT 1 FROM orphan_capture),
         CASE WHEN EXISTS (SELECT 1 FROM bad_hold) OR EXISTS (SELECT 1 FROM orphan_capture)
              THEN format('%s hold(s) and %s capture transfer(s) disagree, e.g. hold %s',
                          (SELECT count(*) FROM bad_hold), (SELECT count(*) FROM orphan_capture),
                          (SELECT min(id) FROM bad_hold))
              ELSE format('%s holds and %s captures agree with the journal',
                          (SELECT count(*) FROM payext.hold_entry),
                          (SELECT count(*) FROM payext.hold_capture))
         END
    FROM anything WHERE anything.yes
  UNION ALL
  SELECT 'available_not_negative',
         NOT EXISTS (SELECT 1 FROM overheld),
         coalesce((SELECT string_agg(format('wallet %s (%s) holds %s, its live holds reserve %s',
                                            o.id, o.status, o.balance, o.holding), '; ' ORDER BY o.id)
                     FROM (SELECT * FROM overheld ORDER BY id LIMIT 3) o),
                  format('%s wallet(s) with live holds, none reserving more than it holds',
                         (SELECT count(*) FROM live)))
    FROM anything WHERE anything.yes
$$;
COMMENT ON FUNCTION payext.verify_holds() IS
  'holds against the journal and the wallets (rows only where there are any); part of verify_ledger()';
