-- payext 0.5.0 -> 0.6.0: payments to one merchant no longer queue on its row.
\echo Use "ALTER EXTENSION payext UPDATE TO '0.6.0'" to load this file. \quit

---------------------------------------------------------------------------
-- Merchant credit buckets
---------------------------------------------------------------------------

-- A charge or a parking payment takes its merchant's row FOR SHARE and adds
-- the amount to one of 16 buckets, picked by backend; whatever takes money
-- from the merchant locks the row FOR NO KEY UPDATE (waiting for those
-- payments) and folds the buckets into the row first.  A merchant's balance
-- is its row's balance plus its buckets; payext.balance() adds them up.
CREATE TABLE payext.merchant_credit (
  account bigint NOT NULL REFERENCES payext.account (id),
  bucket  integer NOT NULL CHECK (bucket >= 0 AND bucket < 16),
  amount  bigint NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (account, bucket)
);
COMMENT ON TABLE payext.merchant_credit IS
  'payments to a merchant not yet folded into its account row; its balance is the row''s plus these';
SELECT pg_catalog.pg_extension_config_dump('payext.merchant_credit', '');
REVOKE ALL ON payext.merchant_credit FROM PUBLIC;

-- Admins read account.balance; a merchant's whole balance is that plus its
-- buckets, so they read the buckets too.  Roles that are admins already get
-- them from grant_capability() run again after the update (the README's
-- Upgrading section): a GRANT made by this script would be recorded as the
-- extension's own initial privilege, and pg_dump would leave it out.
INSERT INTO payext.capability (capability, privilege, object)
VALUES ('admin', 'SELECT', 'TABLE payext.merchant_credit');

-- A frozen or closed merchant holds no buckets: freeze(), unfreeze() and
-- close_account() fold them first, reading the newest buckets (40001 under
-- REPEATABLE READ for one their snapshot cannot see), and mark the account
-- in payext.status_change, a setting only they (as its owner, in the
-- superuser's context) set for the length of their call.  This guard
-- refuses any other change of a merchant's status: a session still running
-- the 0.5.0 library after ALTER EXTENSION UPDATE, which folds nothing, or an
-- UPDATE by hand.  It fires only when status is assigned, never on the
-- payments' balance updates.
CREATE FUNCTION payext.account_status_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
BEGIN
  IF NEW.kind = 'merchant'
     AND current_setting('payext.status_change', true) IS DISTINCT FROM NEW.id::text THEN
    RAISE EXCEPTION 'the status of merchant account % changes only through payext''s functions', NEW.id
      USING ERRCODE = 'PY112',
            DETAIL = 'freeze(), unfreeze() and close_account() fold the merchant''s credit buckets first.',
            HINT = 'Call them from a session that has loaded payext 0.6.0 or later.';
  END IF;
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION payext.account_status_guard() FROM PUBLIC;
CREATE TRIGGER account_status_guard
  BEFORE UPDATE OF status ON payext.account
  FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION payext.account_status_guard();

COMMENT ON COLUMN payext.account.balance IS
  'in the minor unit; with a merchant''s payext.merchant_credit buckets (payext.balance() adds them), always equals credits minus debits in payext.transfer; NULL for system accounts, whose balance is the journal''s sum';

-- The ledger's checks count the buckets.
CREATE OR REPLACE FUNCTION payext.verify_journal()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp
AS $$
  WITH movement AS (
    SELECT t.debit_account AS account, -t.amount::numeric AS delta FROM payext.transfer t
    UNION ALL
    SELECT t.credit_account, t.amount::numeric FROM payext.transfer t
  ), journal AS (
    SELECT m.account, sum(m.delta) AS balance FROM movement m GROUP BY m.account
  ), held AS (
    -- What each account holds: its row, plus a merchant's buckets.
    SELECT a.id, a.kind, a.currency,
           a.balance::numeric + coalesce(c.amount, 0) AS balance
      FROM payext.account a
      LEFT JOIN (SELECT mc.account, sum(mc.amount) AS amount
                   FROM payext.merchant_credit mc GROUP BY mc.account) c ON c.account = a.id
  ), mismatch AS (
    SELECT a.id, a.balance, coalesce(j.balance, 0) AS journal_balance
      FROM held a LEFT JOIN journal j ON j.account = a.id
     WHERE a.kind <> 'system'
       AND a.balance IS DISTINCT FROM coalesce(j.balance, 0)
  ), orphan AS (
    SELECT j.account FROM journal j
     WHERE NOT EXISTS (SELECT 1 FROM payext.account a WHERE a.id = j.account)
  ), unbalanced AS (
    -- Stored balances of wallets and merchants against the system
    -- accounts' journal sums: the two sides of every currency.
    SELECT a.currency,
           sum(CASE WHEN a.kind = 'system' THEN coalesce(j.balance, 0)
                    ELSE a.balance END) AS total
      FROM held a LEFT JOIN journal j ON j.account = a.id
     GROUP BY a.currency
    HAVING sum(CASE WHEN a.kind = 'system' THEN coalesce(j.balance, 0)
                    ELSE a.balance END) <> 0
  ), negative AS (
    -- The whole balance, and each part on its own: positive buckets must
    -- not hide a negative row.
    SELECT a.id, a.balance FROM held a
     WHERE a.kind <> 'system' AND a.balance < 0
    UNION
    SELECT a.id, a.balance::numeric FROM payext.account a
     WHERE a.kind <> 'system' AND a.balance < 0
    UNION
    SELECT c.account, c.amount::numeric FROM payext.merchant_credit c WHERE c.amount < 0
  ), stray AS (
    -- Buckets belong to active merchants only (freezing and closing fold
    -- them), and a closed account holds nothing.
    SELECT c.account,
           CASE WHEN a.kind <> 'merchant' THEN 'a credit bucket on a ' || a.kind
                ELSE 'a credit bucket on a ' || a.status || ' merchant' END AS what
      FROM payext.merchant_credit c
      JOIN payext.account a ON a.id = c.account
     WHERE a.kind <> 'merchant' OR a.status <> 'active'
    UNION ALL
    SELECT a.id, 'a closed account holding ' || a.balance
      FROM payext.account a WHERE a.status = 'closed' AND a.balance <> 0
  ), altered AS (
    SELECT t.id FROM payext.transfer t
     WHERE t.checksum <> payext.transfer_checksum(
             t.id, t.debit_account, t.credit_account, t.amount, t.currency,
             t.kind, t.idem_scope, t.reference, t.created_at)
        OR EXISTS (SELECT 1 FROM payext.account a
                    WHERE a.id = ANY (ARRAY[t.debit_account, t.credit_account])
                      AND a.currency <> t.currency)
  )
  SELECT 'balances_match_journal',
         NOT EXISTS (SELECT 1 FROM mismatch) AND NOT EXISTS (SELECT 1 FROM orphan)
           AND NOT EXISTS (SELECT 1 FROM stray),
         CASE WHEN EXISTS (SELECT 1 FROM stray)
              THEN (SELECT count(*) FROM stray)::text
                   || ' holding(s) where no money may be, e.g. '
                   || (SELECT string_agg(format('account %s: %s', x.account, x.what), '; ')
                         FROM (SELECT * FROM stray ORDER BY account, what LIMIT 3) x)
              WHEN EXISTS (SELECT 1 FROM orphan)
              THEN (SELECT count(*) FROM orphan)::text
                   || ' account(s) in the journal do not exist, e.g. '
                   || (SELECT string_agg(o.account::text, ', ')
                         FROM (SELECT account FROM orphan ORDER BY account LIMIT 3) o)
              WHEN EXISTS (SELECT 1 FROM mismatch)
              THEN (SELECT count(*) FROM mismatch)::text
                   || ' account(s) differ from the journal, e.g. '
                   || (SELECT string_agg(format('account %s holds %s, journal says %s',
                                                m.id, m.balance, m.journal_balance), '; ')
                         FROM (SELECT * FROM mismatch ORDER BY id LIMIT 3) m)
              ELSE (SELECT count(*) FROM payext.account)::text || ' accounts agree with the journal'
         END
  UNION ALL
  SELECT 'money_conserved',
         NOT EXISTS (SELECT 1 FROM unbalanced),
         coalesce((SELECT string_agg(format('%s sums to %s', u.currency, u.total), '; ' ORDER BY u.currency)
                     FROM unbalanced u),
                  'every currency sums to zero')
  UNION ALL
  SELECT 'no_negative_balances',
         NOT EXISTS (SELECT 1 FROM negative),
         coalesce((SELECT string_agg(format('account %s holds %s', n.id, n.balance), '; ' ORDER BY n.id)
                     FROM (SELECT * FROM negative ORDER BY id LIMIT 3) n),
                  'no wallet or merchant is below zero')
  UNION ALL
  SELECT 'journal_intact',
         NOT EXISTS (SELECT 1 FROM altered),
         CASE WHEN EXISTS (SELECT 1 FROM altered)
              THEN (SELECT count(*) FROM altered)::text || ' transfer(s) altered, e.g. '
                   || (SELECT string_agg(x.id::text, ', ') FROM (SELECT id FROM altered ORDER BY id LIMIT 3) x)
              ELSE (SELECT count(*) FROM payext.transfer)::text || ' transfers match their checksums'
         END
$$;

---------------------------------------------------------------------------
-- parking_fee() without a SET clause
---------------------------------------------------------------------------

-- A SET search_path is a GUC save and restore on every call: most of the
-- time of pricing a million stays.  parking_fee() now keeps the lots it has
-- read for the rest of the query, and reads a lot as its owner under a
-- pinned search_path itself (src/parking.c), so it needs neither SECURITY
-- DEFINER nor the SET.  It writes nothing and reads its lots under the
-- query's snapshot, so it is PARALLEL SAFE: a query pricing many stays is
-- shared among parallel workers, each with its own cache of lots.
ALTER FUNCTION payext.parking_fee(bigint, timestamptz, timestamptz)
  SECURITY INVOKER RESET search_path PARALLEL SAFE;

---------------------------------------------------------------------------
-- verify_ledger() checks what the constraints also enforce
---------------------------------------------------------------------------

-- codes_paid_once now counts the payments of each code (a code with two
-- would have passed while the unique constraint was disabled), and
-- parking_matches_journal checks that no exited stay is paid beyond its fee.
CREATE OR REPLACE FUNCTION payext.verify_payments()
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
  ), orphan_transfer AS (
    SELECT t.id FROM payext.transfer t
     WHERE (t.kind = 'charge' AND NOT EXISTS (SELECT 1 FROM payext.payment p WHERE p.transfer_id = t.id))
        OR (t.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM payext.refund r WHERE r.transfer_id = t.id))
  ), code_payments AS (
    SELECT p.code_serial, count(*) AS n FROM payext.payment p GROUP BY p.code_serial
  ), bad_code AS (
    -- Used if and only if paid, and paid once: counted here, not left to
    -- the unique constraint alone.
    SELECT c.serial FROM payext.payment_code c
      LEFT JOIN code_payments u ON u.code_serial = c.serial
     WHERE (c.state = 'used') <> (u.n IS NOT NULL) OR u.n > 1
  )
  SELECT 'payments_match_journal',
         NOT EXISTS (SELECT 1 FROM bad_payment) AND NOT EXISTS (SELECT 1 FROM bad_refund)
           AND NOT EXISTS (SELECT 1 FROM orphan_transfer),
         CASE WHEN EXISTS (SELECT 1 FROM bad_payment) OR EXISTS (SELECT 1 FROM bad_refund)
                   OR EXISTS (SELECT 1 FROM orphan_transfer)
              THEN format('%s payment(s), %s refund(s) and %s charge or refund transfer(s) disagree',
                          (SELECT count(*) FROM bad_payment), (SELECT count(*) FROM bad_refund),
                          (SELECT count(*) FROM orphan_transfer))
              ELSE format('%s payments and %s refunds agree with the journal',
                          (SELECT count(*) FROM payext.payment), (SELECT count(*) FROM payext.refund))
         END
  UNION ALL
  SELECT 'codes_paid_once',
         NOT EXISTS (SELECT 1 FROM bad_code),
         CASE WHEN EXISTS (SELECT 1 FROM bad_code)
              THEN (SELECT count(*) FROM bad_code)::text || ' code(s) used without one payment, or paid while not used'
              ELSE (SELECT count(*) FROM payext.payment_code WHERE state = 'used')::text
                   || ' used codes, one payment each'
         END
$$;
CREATE OR REPLACE FUNCTION payext.verify_parking()
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
