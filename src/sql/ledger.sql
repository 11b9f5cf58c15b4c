-- payext: the ledger.  Accounts, the append-only journal, merchant credit
-- buckets, and the functions that move money.

-- USAGE lets roles name payext's objects; each object keeps its own
-- privileges, set at the end of src/sql/roles.sql: nothing is PUBLIC's but a
-- few pure helpers.
GRANT USAGE ON SCHEMA payext TO PUBLIC;

---------------------------------------------------------------------------
-- Currencies (compiled into the module: one source of truth for C and SQL)
---------------------------------------------------------------------------

CREATE FUNCTION payext.currencies(OUT code text, OUT exponent integer, OUT name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'payext_currencies'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 42;
COMMENT ON FUNCTION payext.currencies() IS
  'ISO 4217 currencies payext accepts, with the digits of their minor unit';

CREATE FUNCTION payext.format_amount(amount bigint, currency text)
RETURNS text
AS 'MODULE_PATHNAME', 'payext_format_amount'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.format_amount(bigint, text) IS
  'renders an amount of minor units in the major unit: 1234, ''CNY'' -> ''12.34 CNY''';

---------------------------------------------------------------------------
-- Accounts and the journal
---------------------------------------------------------------------------

CREATE SEQUENCE payext.account_id_seq AS bigint;
CREATE SEQUENCE payext.transfer_id_seq AS bigint;

CREATE TABLE payext.account (
  id                bigint PRIMARY KEY,
  kind              text NOT NULL
                    CHECK (kind IN ('wallet', 'merchant', 'system', 'clearing')),
  owner             text,
  public_service_id text,
  display_name      text,
  currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- NULL for system and clearing accounts: theirs is the journal's sum
  -- (see balance()), of either sign.
  balance           bigint DEFAULT 0,
  status            text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'frozen', 'closed')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  -- A wallet's holds (src/sql/holds.sql) may reserve money until then: the
  -- latest expiry any hold of it had when made.  A merchant's: set by its
  -- first hold (its charges then look for holds under their orders).
  -- NULL: it never had one.
  held_until        timestamptz,
  -- Wallets and merchants never go below zero.  The C code checks first;
  -- this is the last line.
  CONSTRAINT account_balance_not_negative CHECK (balance >= 0),
  CONSTRAINT account_balance_stored CHECK ((kind IN ('system', 'clearing')) = (balance IS NULL)),
  CONSTRAINT account_wallet_has_owner CHECK ((kind = 'wallet') = (owner IS NOT NULL)),
  CONSTRAINT account_merchant_has_psid
    CHECK ((kind = 'merchant') = (public_service_id IS NOT NULL))
);
CREATE UNIQUE INDEX account_wallet_key ON payext.account (owner, currency)
  WHERE kind = 'wallet';
CREATE UNIQUE INDEX account_merchant_key ON payext.account (public_service_id, currency)
  WHERE kind = 'merchant';
CREATE UNIQUE INDEX account_system_key ON payext.account (currency)
  WHERE kind = 'system';
-- Money on its way to or from another partition (src/sql/saga.sql).
CREATE UNIQUE INDEX account_clearing_key ON payext.account (currency)
  WHERE kind = 'clearing';
COMMENT ON TABLE payext.account IS
  'wallets (per owner and currency), merchant accounts (per public-service id and currency), one system account per currency, and one clearing account per currency for sagas between partitions';
COMMENT ON COLUMN payext.account.balance IS
  'in the minor unit; with a merchant''s payext.merchant_credit buckets (payext.balance() adds them), always equals credits minus debits in payext.transfer; NULL for system and clearing accounts, whose balance is the journal''s sum';

CREATE TABLE payext.transfer (
  id             bigint PRIMARY KEY,
  debit_account  bigint NOT NULL REFERENCES payext.account (id),
  credit_account bigint NOT NULL REFERENCES payext.account (id),
  amount         bigint NOT NULL CHECK (amount > 0),
  currency       text NOT NULL,
  kind           text NOT NULL,
  -- A reference is unique within its kind and scope: the merchant for
  -- charges, refunds and parking payments (idem_scope), the user's account
  -- for top-ups and withdrawals (transfer_reference_key says which side),
  -- the whole ledger (idem_scope 0) for administrative transfers.
  idem_scope     bigint NOT NULL DEFAULT 0,
  reference      text,
  created_at     timestamptz NOT NULL,
  checksum       bytea NOT NULL,
  CONSTRAINT transfer_distinct_accounts CHECK (debit_account <> credit_account)
);
-- The scope expression must match ledger.c's ON CONFLICT clause word for
-- word.  A top-up's or withdrawal's reference belongs to its account: two
-- accounts may use one, and a refusal tells nobody about another's.
CREATE UNIQUE INDEX transfer_reference_key
  ON payext.transfer (kind, (CASE kind WHEN 'top_up' THEN credit_account
                                       WHEN 'withdraw' THEN debit_account
                                       ELSE idem_scope END), reference)
  WHERE reference IS NOT NULL;
-- An account's movements in time order, for balance_at() and statements
-- (by created_at, the transaction's start): one entry per side, as before
-- 0.8.0, eight bytes wider.
CREATE INDEX transfer_debit_idx ON payext.transfer (debit_account, created_at);
CREATE INDEX transfer_credit_idx ON payext.transfer (credit_account, created_at);
COMMENT ON TABLE payext.transfer IS
  'the journal: one row per movement of money, append-only';
COMMENT ON COLUMN payext.transfer.checksum IS
  'first 16 bytes of SHA-256 over the row''s other columns (payext.transfer_checksum)';

CREATE FUNCTION payext.journal_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'payext_journal_guard'
LANGUAGE C;
COMMENT ON FUNCTION payext.journal_guard() IS
  'refuses UPDATE, DELETE and TRUNCATE on the journal';

CREATE TRIGGER transfer_append_only
  BEFORE UPDATE OR DELETE ON payext.transfer
  FOR EACH ROW EXECUTE FUNCTION payext.journal_guard();
CREATE TRIGGER transfer_no_truncate
  BEFORE TRUNCATE ON payext.transfer
  FOR EACH STATEMENT EXECUTE FUNCTION payext.journal_guard();

-- pg_dump keeps user data; the module-compiled currency list needs no dump.
SELECT pg_catalog.pg_extension_config_dump('payext.account', '');
SELECT pg_catalog.pg_extension_config_dump('payext.transfer', '');
SELECT pg_catalog.pg_extension_config_dump('payext.account_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payext.transfer_id_seq', '');

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

-- A frozen or closed merchant holds no buckets: freeze(), unfreeze() and
-- close_account() fold them first, reading the newest buckets (40001 under
-- REPEATABLE READ for one their snapshot cannot see), and mark the account
-- in payext.status_change, a setting only they (as its owner, in the
-- superuser's context) set for the length of their call.  This guard
-- refuses any other change of a merchant's status (an UPDATE by hand, or a
-- library that does not fold).  It fires only when status is assigned,
-- never on the payments' balance updates.
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
            HINT = 'Use payext.freeze(), payext.unfreeze() or payext.close_account().';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER account_status_guard
  BEFORE UPDATE OF status ON payext.account
  FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION payext.account_status_guard();

---------------------------------------------------------------------------
-- Ledger functions
---------------------------------------------------------------------------

CREATE FUNCTION payext.open_wallet(owner text, currency text DEFAULT 'CNY')
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_open_wallet'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.open_wallet(text, text) IS
  'the wallet of a social-app user in a currency, opened on first call';

CREATE FUNCTION payext.open_merchant(public_service_id text, display_name text,
                                     currency text DEFAULT 'CNY')
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_open_merchant'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.open_merchant(text, text, text) IS
  'the account of a merchant (by public-service id) in a currency, opened on first call';

CREATE FUNCTION payext.top_up(wallet bigint, amount bigint, external_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_top_up'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.top_up(bigint, bigint, text) IS
  'money in from outside; returns the transfer id; idempotent on external_ref';

-- balance() and withdraw() judge the role that invoked them (which may be
-- the owner of a SECURITY DEFINER function in between), not the session's
-- role: they are SECURITY INVOKER and switch to the owner themselves, so that
-- a function of another role cannot lend its caller's rights (a confused
-- deputy).
CREATE FUNCTION payext.withdraw(account bigint, amount bigint, external_ref text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_withdraw'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.withdraw(bigint, bigint, text) IS
  'money out to the outside; returns the transfer id; idempotent on external_ref';

CREATE FUNCTION payext.transfer(debit_account bigint, credit_account bigint,
                                amount bigint, reference text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_transfer'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.transfer(bigint, bigint, bigint, text) IS
  'administrative transfer between two user accounts; idempotent on reference when one is given';

CREATE FUNCTION payext.balance(account bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_balance'
LANGUAGE C STABLE
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.balance(bigint) IS
  'the balance of an account in its currency''s minor unit';

CREATE FUNCTION payext.freeze(account bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_freeze'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.freeze(bigint) IS
  'stops an account from paying and being paid';

CREATE FUNCTION payext.unfreeze(account bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_unfreeze'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.unfreeze(bigint) IS
  'lets a frozen account pay and be paid again';

CREATE FUNCTION payext.close_account(account bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_close_account'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.close_account(bigint) IS
  'closes an account for good; its balance must be zero';

CREATE FUNCTION payext.transfer_checksum(id bigint, debit_account bigint,
                                         credit_account bigint, amount bigint,
                                         currency text, kind text, idem_scope bigint,
                                         reference text, created_at timestamptz)
RETURNS bytea
AS 'MODULE_PATHNAME', 'payext_transfer_checksum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payext.transfer_checksum(bigint, bigint, bigint, bigint, text, text, bigint, text, timestamptz) IS
  'the checksum a journal row carries; verify_ledger() recomputes it';


-- The ledger's own checks; verify_ledger() (src/sql/views.sql) adds those of
-- every other concern.
CREATE FUNCTION payext.verify_journal()
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
     WHERE a.kind NOT IN ('system', 'clearing')
       AND a.balance IS DISTINCT FROM coalesce(j.balance, 0)
  ), orphan AS (
    SELECT j.account FROM journal j
     WHERE NOT EXISTS (SELECT 1 FROM payext.account a WHERE a.id = j.account)
  ), unbalanced AS (
    -- Stored balances of wallets and merchants against the journal sums
    -- of the system and clearing accounts: the sides of every currency.
    SELECT a.currency,
           sum(CASE WHEN a.kind IN ('system', 'clearing') THEN coalesce(j.balance, 0)
                    ELSE a.balance END) AS total
      FROM held a LEFT JOIN journal j ON j.account = a.id
     GROUP BY a.currency
    HAVING sum(CASE WHEN a.kind IN ('system', 'clearing') THEN coalesce(j.balance, 0)
                    ELSE a.balance END) <> 0
  ), negative AS (
    -- The whole balance, and each part on its own: positive buckets must
    -- not hide a negative row.
    SELECT a.id, a.balance FROM held a
     WHERE a.kind NOT IN ('system', 'clearing') AND a.balance < 0
    UNION
    SELECT a.id, a.balance::numeric FROM payext.account a
     WHERE a.kind NOT IN ('system', 'clearing') AND a.balance < 0
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
COMMENT ON FUNCTION payext.verify_journal() IS
  'the ledger''s own checks; part of verify_ledger()';
