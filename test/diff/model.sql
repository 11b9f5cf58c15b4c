-- test/diff/model.sql: a small, plain model of payext's money paths, written
-- from DESIGN.md (../shared/DESIGN.md, the contract) and the README's SQLSTATE table, for the
-- differential test (test/diff/run.sh, test/diff/driver.sql).
--
-- Every function has payext's name, argument names and SQLSTATEs, and keeps
-- its state in ordinary tables of schema "model": no locks, no buckets, no
-- HMAC, no shared memory.  A refusal is RAISE with payext's SQLSTATE, so the
-- caller's subtransaction undoes whatever the model had begun.  Where DESIGN
-- is silent on which of two refusals wins, the order below is the one
-- docs/codes.md and src/codes.c, src/ledger.c state ("checked in order");
-- each such choice is marked "order:".
--
-- What the model leaves out: codes are not generated here (the driver
-- registers each code payext issues, see request_payment's `issued`);
-- throttling of guesses is counted by the driver, not here (a count that
-- must survive the refusal's rollback); reverse_charge, transfer,
-- settlement, parking (and its entry holds), association, roles and
-- isolation levels.  Holds are modelled (DESIGN.md "Holds", docs/holds.md),
-- their expiry too (a comparison with now()), though the driver makes none
-- expire.

DROP SCHEMA IF EXISTS model CASCADE;
CREATE SCHEMA model;

-- The currencies the driver uses, and a few more; payext knows 42.
CREATE TABLE model.currency (code text PRIMARY KEY);
INSERT INTO model.currency VALUES ('CNY'), ('USD'), ('EUR'), ('JPY'), ('GBP'), ('SGD');

CREATE SEQUENCE model.account_seq;
CREATE SEQUENCE model.transfer_seq;

CREATE TABLE model.account (
  id       bigint PRIMARY KEY,
  kind     text NOT NULL CHECK (kind IN ('wallet', 'merchant', 'system')),
  name     text,                 -- owner, or public-service id; NULL for system
  currency text NOT NULL,
  -- numeric, so that the model's own arithmetic never overflows: the
  -- 64-bit limit is a check below (PY106), not an accident.
  balance  numeric NOT NULL DEFAULT 0,
  status   text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  UNIQUE (kind, name, currency)
);

-- The journal: one row per movement, in order.
CREATE TABLE model.journal (
  id        bigint PRIMARY KEY,
  kind      text NOT NULL,
  debit     bigint NOT NULL,
  credit    bigint NOT NULL,
  amount    bigint NOT NULL CHECK (amount > 0),
  reference text
);

-- Every code payext issued, as the model sees it.
CREATE TABLE model.code (
  code       text PRIMARY KEY,
  wallet     bigint NOT NULL,
  cap        bigint,
  expires_at timestamptz NOT NULL,
  state      text NOT NULL CHECK (state IN ('issued', 'used', 'cancelled'))
);

CREATE TABLE model.payment (
  transfer  bigint PRIMARY KEY,
  merchant  bigint NOT NULL,
  order_ref text NOT NULL,
  wallet    bigint NOT NULL,
  code      text NOT NULL UNIQUE,
  amount    bigint NOT NULL,
  refunded  bigint NOT NULL DEFAULT 0,
  UNIQUE (merchant, order_ref)
);

CREATE TABLE model.refund (
  transfer   bigint PRIMARY KEY,
  merchant   bigint NOT NULL,
  refund_ref text NOT NULL,
  order_ref  text NOT NULL,
  amount     bigint NOT NULL,
  UNIQUE (merchant, refund_ref)
);

-- Holds: money of a wallet reserved for a merchant.  state is what was done
-- to it; an open hold past expires_at holds nothing (expiry is not a state).
CREATE SEQUENCE model.hold_seq;
CREATE TABLE model.hold (
  id         bigint PRIMARY KEY,
  wallet     bigint NOT NULL,
  merchant   bigint NOT NULL,
  order_ref  text NOT NULL,
  code       text NOT NULL UNIQUE,
  amount     bigint NOT NULL CHECK (amount > 0),
  captured   bigint NOT NULL DEFAULT 0,
  state      text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'captured', 'voided')),
  expires_at timestamptz NOT NULL,
  UNIQUE (merchant, order_ref)
);

-- Each capture: its journal transfer, under (merchant, capture_ref).
CREATE TABLE model.capture (
  transfer    bigint PRIMARY KEY,
  merchant    bigint NOT NULL,
  capture_ref text NOT NULL,
  hold        bigint NOT NULL,
  amount      bigint NOT NULL,
  UNIQUE (merchant, capture_ref)
);

CREATE FUNCTION model.reset() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE model.account, model.journal, model.code, model.payment, model.refund,
           model.hold, model.capture;
  PERFORM setval('model.account_seq', 1, false);
  PERFORM setval('model.transfer_seq', 1, false);
  PERFORM setval('model.hold_seq', 1, false);
END $$;

-- An account by its natural key, as the driver and the comparison name it:
-- wallet:<owner>:<currency>, merchant:<psid>:<currency>, system:<currency>.
CREATE FUNCTION model.label(account_id bigint) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE a.kind WHEN 'system' THEN 'system:' || a.currency
                     ELSE a.kind || ':' || a.name || ':' || a.currency END
    FROM model.account a WHERE a.id = account_id
$$;

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

CREATE FUNCTION model.refuse(state text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'model refuses: %', state USING ERRCODE = state;
END $$;

CREATE FUNCTION model.max_balance() RETURNS numeric LANGUAGE sql IMMUTABLE AS
  $$ SELECT 9223372036854775807::numeric $$;

-- An identifier or reference: 1..max_bytes bytes, no control (Cc, U+2028/9)
-- or format (Cf) character, no space at either end.  NULL: PY001.  Covers
-- every character the driver generates, not all of Unicode.
CREATE FUNCTION model.check_ident(s text, max_bytes integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF s IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  IF octet_length(s) = 0 OR octet_length(s) > max_bytes THEN PERFORM model.refuse('PY004'); END IF;
  IF s ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]'
     OR s ~ '^[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]'
     OR s ~ '[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]$' THEN
    PERFORM model.refuse('PY004');
  END IF;
END $$;

-- An amount: NULL PY001, not positive PY002.
CREATE FUNCTION model.check_amount(a bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF a IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  IF a <= 0 THEN PERFORM model.refuse('PY002'); END IF;
END $$;

-- ISO 4217, upper case; 'usd' is USD.
CREATE FUNCTION model.check_currency(c text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF c IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  IF NOT EXISTS (SELECT 1 FROM model.currency k WHERE k.code = upper(c)) THEN
    PERFORM model.refuse('PY003');
  END IF;
  RETURN upper(c);
END $$;

-- The Damm check digit of a string of digits (0 when the string, check
-- digit included, is right).
CREATE FUNCTION model.damm(digits text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  t integer[] := '{{0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},
                   {1,7,5,0,9,8,3,4,2,6},{6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},
                   {5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},{9,4,3,8,6,1,7,2,0,5},
                   {2,5,8,1,4,3,6,7,9,0}}';
  i integer := 0;
BEGIN
  FOR k IN 1 .. length(digits) LOOP
    i := t[i + 1][substr(digits, k, 1)::integer + 1];
  END LOOP;
  RETURN i;
END $$;

-- A code's shape: 18 digits whose check digit is right (PY201), of
-- partition 00 (PY202).
CREATE FUNCTION model.check_code(c text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF c IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  IF octet_length(c) <> 18 OR c !~ '^[0-9]{18}$' OR model.damm(c) <> 0 THEN
    PERFORM model.refuse('PY201');
  END IF;
  IF left(c, 2) <> '00' THEN PERFORM model.refuse('PY202'); END IF;
END $$;

-- An account that must exist (PY101), and not be a system account (PY111).
CREATE FUNCTION model.user_account(account_id bigint) RETURNS model.account LANGUAGE plpgsql AS $$
DECLARE
  a model.account;
BEGIN
  SELECT * INTO a FROM model.account x WHERE x.id = account_id;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  IF a.kind = 'system' THEN PERFORM model.refuse('PY111'); END IF;
  RETURN a;
END $$;

-- A frozen (PY102) or closed (PY103) account can neither pay nor be paid.
CREATE FUNCTION model.check_active(a model.account) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF a.status = 'frozen' THEN PERFORM model.refuse('PY102'); END IF;
  IF a.status = 'closed' THEN PERFORM model.refuse('PY103'); END IF;
END $$;

CREATE FUNCTION model.system_account(cur text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  sid bigint;
BEGIN
  SELECT x.id INTO sid FROM model.account x WHERE x.kind = 'system' AND x.currency = cur;
  IF sid IS NULL THEN
    sid := nextval('model.account_seq');
    INSERT INTO model.account (id, kind, name, currency) VALUES (sid, 'system', NULL, cur);
  END IF;
  RETURN sid;
END $$;

-- Appends a journal row and moves the balances; every check was made.
CREATE FUNCTION model.post(p_kind text, p_debit bigint, p_credit bigint, p_amount bigint,
                           p_reference text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  tid bigint := nextval('model.transfer_seq');
BEGIN
  INSERT INTO model.journal (id, kind, debit, credit, amount, reference)
  VALUES (tid, p_kind, p_debit, p_credit, p_amount, p_reference);
  UPDATE model.account x SET balance = x.balance - p_amount WHERE x.id = p_debit;
  UPDATE model.account x SET balance = x.balance + p_amount WHERE x.id = p_credit;
  RETURN tid;
END $$;

-- What an account's live holds reserve: open holds not past their expiry,
-- their amount less what was captured (0 for anything but a wallet).
CREATE FUNCTION model.held(account_id bigint) RETURNS numeric LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(h.amount - h.captured), 0) FROM model.hold h
   WHERE h.wallet = account_id AND h.state = 'open' AND h.expires_at > now()
$$;

---------------------------------------------------------------------------
-- Accounts
---------------------------------------------------------------------------

CREATE FUNCTION model.open_account(p_kind text, p_name text, p_currency text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  aid bigint;
BEGIN
  SELECT x.id INTO aid FROM model.account x
   WHERE x.kind = p_kind AND x.name = p_name AND x.currency = p_currency;
  IF aid IS NULL THEN
    aid := nextval('model.account_seq');
    INSERT INTO model.account (id, kind, name, currency) VALUES (aid, p_kind, p_name, p_currency);
  END IF;
  RETURN aid;
END $$;

-- One wallet per (owner, currency); again: the same id.
CREATE FUNCTION model.open_wallet(owner text, currency text DEFAULT 'CNY') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  cur text;
BEGIN
  PERFORM model.check_ident(owner, 128);
  cur := model.check_currency(currency);
  RETURN model.open_account('wallet', owner, cur);
END $$;

-- One merchant account per (public_service_id, currency); again: the same id.
CREATE FUNCTION model.open_merchant(public_service_id text, display_name text,
                                    currency text DEFAULT 'CNY') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  cur text;
BEGIN
  PERFORM model.check_ident(public_service_id, 128);
  PERFORM model.check_ident(display_name, 256);
  cur := model.check_currency(currency);
  RETURN model.open_account('merchant', public_service_id, cur);
END $$;

-- freeze, unfreeze, close_account: nothing to do when already there; closed
-- is final (PY103); closing needs a zero balance (PY108).
CREATE FUNCTION model.set_status(account_id bigint, target text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  a model.account;
BEGIN
  IF account_id IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  a := model.user_account(account_id);
  IF a.status = target THEN RETURN; END IF;
  IF a.status = 'closed' THEN PERFORM model.refuse('PY103'); END IF;
  IF target = 'closed' AND a.balance <> 0 THEN PERFORM model.refuse('PY108'); END IF;
  UPDATE model.account x SET status = target WHERE x.id = account_id;
END $$;

CREATE FUNCTION model.freeze(account bigint) RETURNS void LANGUAGE sql AS
  $$ SELECT model.set_status(account, 'frozen') $$;
CREATE FUNCTION model.unfreeze(account bigint) RETURNS void LANGUAGE sql AS
  $$ SELECT model.set_status(account, 'active') $$;
CREATE FUNCTION model.close_account(account bigint) RETURNS void LANGUAGE sql AS
  $$ SELECT model.set_status(account, 'closed') $$;

---------------------------------------------------------------------------
-- Money in and out: idempotent on (account, external_ref)
---------------------------------------------------------------------------

-- order: arguments; the account (PY101; system or not a wallet: PY111); a
-- replay (same ref: same transfer, or PY107 for other arguments), before the
-- account's state, so that a retry of a success still answers while the
-- account is frozen (docs/ledger.md); state; overflow.
CREATE FUNCTION model.top_up(wallet bigint, amount bigint, external_ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  a model.account;
  sid bigint;
  j model.journal;
BEGIN
  IF wallet IS NULL OR amount IS NULL OR external_ref IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(external_ref, 128);
  a := model.user_account(wallet);
  IF a.kind <> 'wallet' THEN PERFORM model.refuse('PY111'); END IF;
  sid := model.system_account(a.currency);
  SELECT * INTO j FROM model.journal x
   WHERE x.kind = 'top_up' AND x.credit = wallet AND x.reference = external_ref;
  IF FOUND THEN
    IF j.debit = sid AND j.amount = amount THEN RETURN j.id; END IF;
    PERFORM model.refuse('PY107');
  END IF;
  PERFORM model.check_active(a);
  IF a.balance + amount > model.max_balance() THEN PERFORM model.refuse('PY106'); END IF;
  RETURN model.post('top_up', sid, wallet, amount, external_ref);
END $$;

CREATE FUNCTION model.withdraw(account bigint, amount bigint, external_ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  a model.account;
  sid bigint;
  j model.journal;
BEGIN
  IF account IS NULL OR amount IS NULL OR external_ref IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(external_ref, 128);
  a := model.user_account(account);
  sid := model.system_account(a.currency);
  SELECT * INTO j FROM model.journal x
   WHERE x.kind = 'withdraw' AND x.debit = account AND x.reference = external_ref;
  IF FOUND THEN
    IF j.credit = sid AND j.amount = amount THEN RETURN j.id; END IF;
    PERFORM model.refuse('PY107');
  END IF;
  PERFORM model.check_active(a);
  -- against the available balance (a wallet's live holds are not its to take)
  IF a.balance - model.held(a.id) < amount THEN PERFORM model.refuse('PY104'); END IF;
  RETURN model.post('withdraw', account, sid, amount, external_ref);
END $$;

---------------------------------------------------------------------------
-- Payment codes
---------------------------------------------------------------------------

-- payext makes the code; the driver passes it in as `issued` (NULL when
-- payext refused).  The model decides whether a code was due, and checks
-- the one payext gave: 18 digits, partition 00, a right check digit, never
-- seen before (MD001 otherwise: a broken promise, not a payext SQLSTATE).
CREATE FUNCTION model.request_payment(wallet bigint, max_amount bigint DEFAULT NULL,
                                      ttl interval DEFAULT NULL, issued text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  a model.account;
BEGIN
  IF wallet IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  IF max_amount IS NOT NULL THEN PERFORM model.check_amount(max_amount); END IF;
  -- 1 s .. payext.max_code_ttl (default 5 min)
  IF ttl IS NOT NULL AND (ttl < interval '1 second' OR ttl > interval '5 minutes') THEN
    PERFORM model.refuse('PY212');
  END IF;
  SELECT * INTO a FROM model.account x WHERE x.id = wallet;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  IF a.kind <> 'wallet' THEN PERFORM model.refuse('PY111'); END IF;
  PERFORM model.check_active(a);
  IF issued IS NULL THEN
    RETURN NULL;                -- due, but payext gave none: the outcomes differ
  END IF;
  IF issued !~ '^00[0-9]{16}$' OR model.damm(issued) <> 0 THEN
    RAISE EXCEPTION 'payext issued a malformed code %', issued USING ERRCODE = 'MD001';
  END IF;
  IF EXISTS (SELECT 1 FROM model.code c WHERE c.code = issued) THEN
    RAISE EXCEPTION 'payext issued code % twice', issued USING ERRCODE = 'MD001';
  END IF;
  -- valid for ttl, by default payext.code_ttl (60 s), in transaction time
  INSERT INTO model.code (code, wallet, cap, expires_at, state)
  VALUES (issued, wallet, max_amount, now() + coalesce(ttl, interval '60 seconds'), 'issued');
  RETURN issued;
END $$;

-- The user withdraws a code not yet used.  Never issued: PY203 (not
-- counted: no merchant); used: PY206; cancelled or expired: harmless
-- (docs/codes.md).
CREATE FUNCTION model.cancel_payment_code(code text) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  c model.code;
BEGIN
  PERFORM model.check_code(code);
  SELECT * INTO c FROM model.code x WHERE x.code = code;
  IF NOT FOUND THEN PERFORM model.refuse('PY203'); END IF;
  IF c.state = 'used' THEN PERFORM model.refuse('PY206'); END IF;
  -- An issued code past its expiry stays as it is: a later charge of it
  -- is PY204 (expired), not PY205 (DESIGN.md: "withdraws a code not yet
  -- used"; an expired one is withdrawn already).
  IF c.state = 'issued' AND c.expires_at > now() THEN
    UPDATE model.code x SET state = 'cancelled' WHERE x.code = code;
  END IF;
END $$;

-- A charge whose arguments were checked.  order: as docs/codes.md ("What a
-- charge checks, in order") has it: the code's shape; the merchant account; the
-- code: never issued (PY203), used (the same request: its transfer; the same
-- order at another amount PY208; else PY206), cancelled (PY205), expired
-- (PY204), over its cap (PY207); the order charged before with another code
-- (PY208); the accounts' states, wallet first (PY102, PY103); currencies
-- (PY105); funds (PY104); overflow (PY106).  A refusal burns nothing.
CREATE FUNCTION model.charge_checked(p_merchant bigint, p_code text, p_amount bigint,
                                     p_order_ref text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  m model.account;
  w model.account;
  c model.code;
  p model.payment;
  tid bigint;
BEGIN
  PERFORM model.check_code(p_code);
  SELECT * INTO m FROM model.account x WHERE x.id = p_merchant;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  IF m.kind <> 'merchant' THEN PERFORM model.refuse('PY111'); END IF;
  SELECT * INTO c FROM model.code x WHERE x.code = p_code;
  IF NOT FOUND THEN PERFORM model.refuse('PY203'); END IF;
  IF c.state = 'used' THEN
    SELECT * INTO p FROM model.payment x WHERE x.code = p_code;
    IF p.merchant = p_merchant AND p.order_ref = p_order_ref THEN
      IF p.amount = p_amount THEN RETURN p.transfer; END IF;
      PERFORM model.refuse('PY208');
    END IF;
    PERFORM model.refuse('PY206');
  END IF;
  IF c.state = 'cancelled' THEN PERFORM model.refuse('PY205'); END IF;
  IF c.expires_at <= now() THEN PERFORM model.refuse('PY204'); END IF;
  IF c.cap IS NOT NULL AND p_amount > c.cap THEN PERFORM model.refuse('PY207'); END IF;
  -- orders are shared with holds: a charge of a held order is PY608
  IF EXISTS (SELECT 1 FROM model.hold x WHERE x.merchant = p_merchant AND x.order_ref = p_order_ref) THEN
    PERFORM model.refuse('PY608');
  END IF;
  IF EXISTS (SELECT 1 FROM model.payment x WHERE x.merchant = p_merchant AND x.order_ref = p_order_ref) THEN
    PERFORM model.refuse('PY208');
  END IF;
  SELECT * INTO w FROM model.account x WHERE x.id = c.wallet;
  PERFORM model.check_active(w);
  PERFORM model.check_active(m);
  IF w.currency <> m.currency THEN PERFORM model.refuse('PY105'); END IF;
  IF w.balance - model.held(w.id) < p_amount THEN PERFORM model.refuse('PY104'); END IF;
  IF m.balance + p_amount > model.max_balance() THEN PERFORM model.refuse('PY106'); END IF;
  tid := model.post('charge', w.id, m.id, p_amount, p_order_ref);
  UPDATE model.code x SET state = 'used' WHERE x.code = p_code;
  INSERT INTO model.payment (transfer, merchant, order_ref, wallet, code, amount)
  VALUES (tid, m.id, p_order_ref, w.id, p_code, p_amount);
  RETURN tid;
END $$;

CREATE FUNCTION model.charge(merchant bigint, code text, amount bigint, order_ref text)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
  IF merchant IS NULL OR code IS NULL OR amount IS NULL OR order_ref IS NULL THEN
    PERFORM model.refuse('PY001');
  END IF;
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(order_ref, 128);
  RETURN model.charge_checked(merchant, code, amount, order_ref);
END $$;

-- Each item charged or refused as charge() would, on its own, in input
-- order.  A malformed batch is refused whole: arrays of more than one
-- dimension or of different lengths PY009, more than 1000 items PY010.
CREATE FUNCTION model.charge_many(merchant bigint, codes text[], amounts bigint[], order_refs text[])
RETURNS TABLE (item integer, transfer_id bigint, sqlstate text) LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  n integer;
  tid bigint;
  err text;
BEGIN
  IF merchant IS NULL OR codes IS NULL OR amounts IS NULL OR order_refs IS NULL THEN
    PERFORM model.refuse('PY001');
  END IF;
  IF coalesce(array_ndims(codes), 1) > 1 OR coalesce(array_ndims(amounts), 1) > 1
     OR coalesce(array_ndims(order_refs), 1) > 1 THEN
    PERFORM model.refuse('PY009');
  END IF;
  n := cardinality(codes);
  IF cardinality(amounts) <> n OR cardinality(order_refs) <> n THEN PERFORM model.refuse('PY009'); END IF;
  IF n > 1000 THEN PERFORM model.refuse('PY010'); END IF;
  FOR i IN 1 .. n LOOP
    BEGIN
      IF codes[i] IS NULL OR amounts[i] IS NULL OR order_refs[i] IS NULL THEN
        PERFORM model.refuse('PY001');
      END IF;
      PERFORM model.check_amount(amounts[i]);
      PERFORM model.check_ident(order_refs[i], 128);
      tid := model.charge_checked(merchant, codes[i], amounts[i], order_refs[i]);
      err := NULL;
    EXCEPTION WHEN OTHERS THEN
      tid := NULL;
      err := SQLSTATE;          -- the handler's own SQLSTATE variable
    END;
    RETURN QUERY SELECT i, tid, err;
  END LOOP;
END $$;

-- order: arguments (order_ref, amount, refund_ref: payext checks them in
-- that order); the order (PY209, also for an account that is no merchant);
-- the refund_ref used before (its refund: the same transfer; another order
-- or amount PY211); what is left of the charge (PY210); the accounts'
-- states, merchant first; the merchant's funds (PY104); overflow (PY106).
CREATE FUNCTION model.refund(merchant bigint, order_ref text, amount bigint, refund_ref text)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  p model.payment;
  r model.refund;
  m model.account;
  w model.account;
  tid bigint;
BEGIN
  IF merchant IS NULL OR order_ref IS NULL OR amount IS NULL OR refund_ref IS NULL THEN
    PERFORM model.refuse('PY001');
  END IF;
  PERFORM model.check_ident(order_ref, 128);
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(refund_ref, 128);
  SELECT * INTO p FROM model.payment x WHERE x.merchant = merchant AND x.order_ref = order_ref;
  IF NOT FOUND THEN PERFORM model.refuse('PY209'); END IF;
  SELECT * INTO r FROM model.refund x WHERE x.merchant = merchant AND x.refund_ref = refund_ref;
  IF FOUND THEN
    IF r.order_ref = order_ref AND r.amount = amount THEN RETURN r.transfer; END IF;
    PERFORM model.refuse('PY211');
  END IF;
  IF amount > p.amount - p.refunded THEN PERFORM model.refuse('PY210'); END IF;
  SELECT * INTO m FROM model.account x WHERE x.id = merchant;
  SELECT * INTO w FROM model.account x WHERE x.id = p.wallet;
  PERFORM model.check_active(m);
  PERFORM model.check_active(w);
  IF m.balance < amount THEN PERFORM model.refuse('PY104'); END IF;
  IF w.balance + amount > model.max_balance() THEN PERFORM model.refuse('PY106'); END IF;
  tid := model.post('refund', merchant, p.wallet, amount, refund_ref);
  UPDATE model.payment x SET refunded = x.refunded + amount WHERE x.transfer = p.transfer;
  INSERT INTO model.refund (transfer, merchant, refund_ref, order_ref, amount)
  VALUES (tid, merchant, refund_ref, order_ref, amount);
  RETURN tid;
END $$;

-- payment_status, as the model sees it: transfer, amount, refunded, state.
CREATE FUNCTION model.payment_status(merchant bigint, order_ref text,
                                     OUT transfer_id bigint, OUT amount bigint,
                                     OUT refunded_amount bigint, OUT state text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  p model.payment;
BEGIN
  IF merchant IS NULL OR order_ref IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  SELECT * INTO p FROM model.payment x WHERE x.merchant = merchant AND x.order_ref = order_ref;
  IF NOT FOUND THEN PERFORM model.refuse('PY209'); END IF;
  transfer_id := p.transfer;
  amount := p.amount;
  refunded_amount := p.refunded;
  state := CASE WHEN p.refunded = 0 THEN 'paid'
                WHEN p.refunded < p.amount THEN 'partially_refunded'
                ELSE 'refunded' END;
END $$;


---------------------------------------------------------------------------
-- Holds (DESIGN.md "Holds (pre-authorisation)", docs/holds.md)
---------------------------------------------------------------------------

-- The balance less what live holds reserve (a merchant's, a system
-- account's: its balance).
CREATE FUNCTION model.available_balance(account bigint) RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  a model.account;
BEGIN
  IF account IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  SELECT * INTO a FROM model.account x WHERE x.id = account;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  RETURN a.balance - model.held(a.id);
END $$;

-- order: arguments (PY001; amount PY002; order_ref PY004, also one starting
-- "parking:"; expires_in outside 1 s .. 30 days PY606, NULL: 7 days); the
-- code's shape; the merchant account (PY101, PY111); the order: held before
-- (the same code and amount: that hold; else PY208), charged before (PY208);
-- the code: never issued (PY203, a guess), used (PY206), cancelled (PY205),
-- expired (PY204), over its cap (PY207); the accounts' states, wallet first;
-- currencies (PY105); the wallet's available balance (PY104).  Uses the
-- code up; moves no money.
CREATE FUNCTION model.authorize(merchant bigint, code text, amount bigint, order_ref text,
                                expires_in interval DEFAULT '7 days') RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  m model.account;
  w model.account;
  c model.code;
  h model.hold;
  hid bigint;
BEGIN
  IF merchant IS NULL OR code IS NULL OR amount IS NULL OR order_ref IS NULL THEN
    PERFORM model.refuse('PY001');
  END IF;
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(order_ref, 128);
  IF order_ref LIKE 'parking:%' THEN PERFORM model.refuse('PY004'); END IF;
  expires_in := coalesce(expires_in, interval '7 days');
  IF expires_in < interval '1 second' OR expires_in > interval '30 days' THEN
    PERFORM model.refuse('PY606');
  END IF;
  PERFORM model.check_code(code);
  SELECT * INTO m FROM model.account x WHERE x.id = merchant;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  IF m.kind <> 'merchant' THEN PERFORM model.refuse('PY111'); END IF;
  SELECT * INTO h FROM model.hold x WHERE x.merchant = merchant AND x.order_ref = order_ref;
  IF FOUND THEN
    IF h.code = code AND h.amount = amount THEN RETURN h.id; END IF;
    PERFORM model.refuse('PY208');
  END IF;
  IF EXISTS (SELECT 1 FROM model.payment x WHERE x.merchant = merchant AND x.order_ref = order_ref) THEN
    PERFORM model.refuse('PY208');
  END IF;
  SELECT * INTO c FROM model.code x WHERE x.code = code;
  IF NOT FOUND THEN PERFORM model.refuse('PY203'); END IF;
  IF c.state = 'used' THEN PERFORM model.refuse('PY206'); END IF;
  IF c.state = 'cancelled' THEN PERFORM model.refuse('PY205'); END IF;
  IF c.expires_at <= now() THEN PERFORM model.refuse('PY204'); END IF;
  IF c.cap IS NOT NULL AND amount > c.cap THEN PERFORM model.refuse('PY207'); END IF;
  SELECT * INTO w FROM model.account x WHERE x.id = c.wallet;
  PERFORM model.check_active(w);
  PERFORM model.check_active(m);
  IF w.currency <> m.currency THEN PERFORM model.refuse('PY105'); END IF;
  IF w.balance - model.held(w.id) < amount THEN PERFORM model.refuse('PY104'); END IF;
  hid := nextval('model.hold_seq');
  INSERT INTO model.hold (id, wallet, merchant, order_ref, code, amount, expires_at)
  VALUES (hid, w.id, m.id, order_ref, code, amount, now() + expires_in);
  UPDATE model.code x SET state = 'used' WHERE x.code = code;
  RETURN hid;
END $$;

-- order: arguments (PY001, final too; amount PY002; capture_ref PY004); the
-- merchant account (PY101, PY111); the hold, the merchant's (PY601); the
-- capture_ref used before (the same hold and amount: its transfer; else
-- PY607); the hold voided (PY603), captured (PY604), expired (PY602); above
-- its remainder (PY605); then the transfer's checks, wallet first: states,
-- overflow (PY106).  final, or the whole amount captured: 'captured'.
CREATE FUNCTION model.capture_hold(merchant bigint, hold bigint, amount bigint, capture_ref text,
                                   final boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  m model.account;
  w model.account;
  h model.hold;
  k model.capture;
  tid bigint;
BEGIN
  IF merchant IS NULL OR hold IS NULL OR amount IS NULL OR capture_ref IS NULL OR final IS NULL THEN
    PERFORM model.refuse('PY001');
  END IF;
  PERFORM model.check_amount(amount);
  PERFORM model.check_ident(capture_ref, 128);
  SELECT * INTO m FROM model.account x WHERE x.id = merchant;
  IF NOT FOUND THEN PERFORM model.refuse('PY101'); END IF;
  IF m.kind <> 'merchant' THEN PERFORM model.refuse('PY111'); END IF;
  SELECT * INTO h FROM model.hold x WHERE x.id = hold AND x.merchant = merchant;
  IF NOT FOUND THEN PERFORM model.refuse('PY601'); END IF;
  SELECT * INTO k FROM model.capture x WHERE x.merchant = merchant AND x.capture_ref = capture_ref;
  IF FOUND THEN
    IF k.hold = hold AND k.amount = amount THEN RETURN k.transfer; END IF;
    PERFORM model.refuse('PY607');
  END IF;
  IF h.state = 'voided' THEN PERFORM model.refuse('PY603'); END IF;
  IF h.state = 'captured' THEN PERFORM model.refuse('PY604'); END IF;
  IF h.expires_at <= now() THEN PERFORM model.refuse('PY602'); END IF;
  IF amount > h.amount - h.captured THEN PERFORM model.refuse('PY605'); END IF;
  UPDATE model.hold x
     SET captured = x.captured + amount,
         state = CASE WHEN final OR x.captured + amount = x.amount THEN 'captured' ELSE 'open' END
   WHERE x.id = hold;
  SELECT * INTO w FROM model.account x WHERE x.id = h.wallet;
  PERFORM model.check_active(w);
  PERFORM model.check_active(m);
  IF m.balance + amount > model.max_balance() THEN PERFORM model.refuse('PY106'); END IF;
  tid := model.post('capture', w.id, m.id, amount, capture_ref);
  INSERT INTO model.capture (transfer, merchant, capture_ref, hold, amount)
  VALUES (tid, merchant, capture_ref, hold, amount);
  RETURN tid;
END $$;

-- Releases what the hold still reserves and returns it: 0 when it was
-- voided already or has expired; a captured hold PY604; another merchant's
-- or no hold PY601 (whatever the account is).
CREATE FUNCTION model.void_hold(merchant bigint, hold bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  h model.hold;
BEGIN
  IF merchant IS NULL OR hold IS NULL THEN PERFORM model.refuse('PY001'); END IF;
  SELECT * INTO h FROM model.hold x WHERE x.id = hold AND x.merchant = merchant;
  IF NOT FOUND THEN PERFORM model.refuse('PY601'); END IF;
  IF h.state = 'voided' THEN RETURN 0; END IF;
  IF h.state = 'captured' THEN PERFORM model.refuse('PY604'); END IF;
  UPDATE model.hold x SET state = 'voided' WHERE x.id = hold;
  RETURN CASE WHEN h.expires_at <= now() THEN 0 ELSE h.amount - h.captured END;
END $$;
