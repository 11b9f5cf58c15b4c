-- test/diff/driver.sql: the differential test's driver (schema "diff").
--
-- diff.run(seed, ops) draws `ops` random operations from setseed(seed)
-- and random(), and sends each to payext and to the model of
-- test/diff/model.sql with the same arguments (only account and hold ids
-- differ: each side has its own, matched by natural key, holds by the
-- authorize that made them).  Each call runs in its own
-- subtransaction and ends in a SQLSTATE ('00000' for success).  After every
-- operation, and each in its own transaction (so that now() moves and
-- short-lived codes expire in both alike), the driver compares:
--   - the SQLSTATEs, and for charge_many the SQLSTATE of every item;
--   - what came back: the same account (open_*), the same transfer (a
--     transfer id maps to the model's by the journal row both appended, so
--     a replay must answer with the transfer of the first call);
--   - the journal rows both appended: kind, debit and credit account,
--     amount, reference, in order;
--   - every account's balance and status, and every wallet's
--     available_balance (payext's, through the API);
--   - after charges, the guesses payext counted against the merchant
--     (payext.code_failure) against the PY203 refusals the model gave it.
-- After the last operation it compares the whole journal, payment_status
-- of every order tried, every hold (state, captured, holding), the balances as payext.balance() gives them, and
-- runs payext.verify_ledger().  The first
-- difference raises an error naming the seed, the operation, both outcomes
-- and the operations before it.
--
-- Everything that touches payext is PL/pgSQL, bound at run time, so that
-- run.sh can drop and create the extension under these functions.

DROP SCHEMA IF EXISTS diff CASCADE;
CREATE SCHEMA diff;

-- Kept across seeds: what the run exercised.
CREATE TABLE diff.counts (
  what     text NOT NULL,
  sqlstate text NOT NULL,
  n        bigint NOT NULL,
  PRIMARY KEY (what, sqlstate)
);
CREATE TABLE diff.runs (seed integer PRIMARY KEY, ops integer NOT NULL);

-- Per seed.  The accounts the operations use, by natural key.
CREATE TABLE diff.slot (
  label    text PRIMARY KEY,
  kind     text NOT NULL,
  name     text NOT NULL,
  currency text NOT NULL,
  px       bigint,                -- payext's id
  md       bigint                 -- the model's id
);
-- Codes payext issued (and the model registered), in order.
CREATE TABLE diff.codes (n serial PRIMARY KEY, code text NOT NULL, wallet text NOT NULL);
-- Every money call made, for replays.
CREATE TABLE diff.hist (
  n      bigserial PRIMARY KEY,
  op     text NOT NULL,
  acct   text,
  code   text,
  amount bigint,
  ref    text,
  ref2   text,
  state  text NOT NULL
);
-- payext's transfer id -> the model's, from journal rows that matched.
CREATE TABLE diff.tmap (px bigint PRIMARY KEY, md bigint NOT NULL UNIQUE);
-- The last journal rows compared.
CREATE TABLE diff.cursor (px bigint NOT NULL, md bigint NOT NULL);
-- PY203 refusals the model gave each merchant (guesses payext must count).
CREATE TABLE diff.guesses (acct text PRIMARY KEY, n integer NOT NULL);
-- Holds both sides made, by the authorize that made them: n is the driver's
-- handle (a call's `hold`), px and md each side's id.
CREATE TABLE diff.holds (
  n    serial PRIMARY KEY,
  px   bigint NOT NULL UNIQUE,
  md   bigint NOT NULL UNIQUE,
  acct text NOT NULL,            -- the merchant's slot
  ref  text NOT NULL             -- its order
);
-- The operations of the seed, for the report of a divergence.
CREATE TABLE diff.oplog (n integer PRIMARY KEY, call text, px text, md text);

-- One generated operation.
CREATE TYPE diff.call AS (
  op      text,     -- the function's name, in payext and in model
  kind    text,     -- transfer | account | code | void | batch | hold | value
  acct    text,     -- the account argument: a slot label, nobody, system:XXX, or NULL
  args    text,     -- named arguments; @ACCT@ stands for the account's id
  code    text,
  amount  bigint,
  ref     text,
  ref2    text,
  codes   text[],
  amounts bigint[],
  refs    text[],
  hold    integer   -- a diff.holds handle for @HOLD@ (0: no such hold; NULL: NULL)
);

CREATE FUNCTION diff.reset() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE diff.slot, diff.codes, diff.hist, diff.tmap, diff.cursor, diff.guesses, diff.oplog,
           diff.holds;
  PERFORM setval('diff.codes_n_seq', 1, false);
  PERFORM setval('diff.holds_n_seq', 1, false);
  PERFORM setval('diff.hist_n_seq', 1, false);
  INSERT INTO diff.cursor VALUES (0, 0);
  -- Four CNY wallets, two USD ones (one of an owner who has a CNY one), two
  -- CNY merchants and a USD one.
  INSERT INTO diff.slot (label, kind, name, currency) VALUES
    ('wallet:u1:CNY', 'wallet', 'u1', 'CNY'),
    ('wallet:u2:CNY', 'wallet', 'u2', 'CNY'),
    ('wallet:u3:CNY', 'wallet', 'u3', 'CNY'),
    ('wallet:u4:CNY', 'wallet', 'u4', 'CNY'),
    ('wallet:u1:USD', 'wallet', 'u1', 'USD'),
    ('wallet:u5:USD', 'wallet', 'u5', 'USD'),
    ('merchant:gh_m1:CNY', 'merchant', 'gh_m1', 'CNY'),
    ('merchant:gh_m2:CNY', 'merchant', 'gh_m2', 'CNY'),
    ('merchant:gh_m3:USD', 'merchant', 'gh_m3', 'USD');
END $$;

---------------------------------------------------------------------------
-- Random choices
---------------------------------------------------------------------------

CREATE FUNCTION diff.rnd(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT lo + floor(random() * (hi - lo + 1))::bigint $$;

CREATE FUNCTION diff.pick(choices text[]) RETURNS text LANGUAGE sql VOLATILE AS
  $$ SELECT choices[1 + floor(random() * cardinality(choices))::integer] $$;

CREATE FUNCTION diff.slot_of(p_kind text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  labels text[];
BEGIN
  SELECT array_agg(s.label ORDER BY s.label) INTO labels FROM diff.slot s
   WHERE p_kind IS NULL OR s.kind = p_kind;
  RETURN diff.pick(labels);
END $$;

-- A wallet argument: mostly a wallet, sometimes a merchant, no account, a
-- system account, NULL.
CREATE FUNCTION diff.wallet_target() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
BEGIN
  RETURN CASE WHEN r < 0.22 THEN diff.whale()
              WHEN r < 0.88 THEN diff.slot_of('wallet')
              WHEN r < 0.92 THEN diff.slot_of('merchant')
              WHEN r < 0.95 THEN 'nobody'
              WHEN r < 0.98 THEN diff.pick('{system:CNY,system:USD}')
              ELSE NULL END;
END $$;

CREATE FUNCTION diff.merchant_target() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
BEGIN
  RETURN CASE WHEN r < 0.90 THEN diff.slot_of('merchant')
              WHEN r < 0.94 THEN diff.slot_of('wallet')
              WHEN r < 0.97 THEN 'nobody'
              ELSE NULL END;
END $$;

CREATE FUNCTION diff.account_target() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
BEGIN
  RETURN CASE WHEN r < 0.92 THEN diff.slot_of(NULL)
              WHEN r < 0.95 THEN 'nobody'
              WHEN r < 0.98 THEN diff.pick('{system:CNY,system:USD}')
              ELSE NULL END;
END $$;

-- An amount: mostly small, sometimes larger, zero, negative, NULL, or huge:
-- 2^62 (two of those overflow a balance) and 2^58 .. 2^60, around the
-- headroom a merchant's credit bucket may take ((2^63 - 1 - balance) / 16).
CREATE FUNCTION diff.amount() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
BEGIN
  RETURN CASE WHEN r < 0.82 THEN diff.rnd(1, 3000)
              WHEN r < 0.88 THEN diff.rnd(3001, 20000)
              WHEN r < 0.91 THEN 0
              WHEN r < 0.94 THEN -diff.rnd(1, 100)
              WHEN r < 0.96 THEN NULL
              ELSE diff.huge() END;
END $$;

-- 2^62, or 2^58 .. 2^60 give or take one.
CREATE FUNCTION diff.huge() RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT (ARRAY[4611686018427387904, 4611686018427387904, 288230376151711744,
                576460752303423488, 576460752303423489, 1152921504606846976,
                1152921504606846975])[diff.rnd(1, 7)]
$$;

-- The whale: one wallet that mostly tops up and pays huge amounts, so that
-- merchants' balances (row plus credit buckets) and its own reach 2^63.
CREATE FUNCTION diff.whale() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'wallet:u4:CNY' $$;

-- A reference: mostly fresh, sometimes unusual but valid (not ASCII, an
-- inner space, 128 bytes: the same one each time, so it recurs), sometimes
-- one payext must refuse (PY004: empty, 129 bytes, a control or format
-- character, a space at an end), or NULL.
CREATE FUNCTION diff.ref(prefix text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
BEGIN
  IF r < 0.92 THEN
    RETURN prefix;
  ELSIF r < 0.95 THEN
    RETURN (ARRAY[prefix || '-订单', 'ref ' || prefix, repeat('r', 128)])[diff.rnd(1, 3)];
  END IF;
  RETURN (ARRAY['', ' lead', 'trail ', E'tab\there', 'zw' || U&'\200B' || 'sp',
                repeat('r', 129), 'nbsp' || U&'\00A0', U&'\3000' || 'ideo',
                'rlo' || U&'\202E' || 'x', 'ls' || U&'\2028' || 'x', 'soft' || U&'\00AD' || 'hy',
                NULL])[diff.rnd(1, 12)];
END $$;

-- The Damm check digit of 17 digits.
CREATE FUNCTION diff.with_check_digit(digits text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT digits || model.damm(digits)::text $$;

-- A code nobody issued, with a right check digit: a guess (partition 00),
-- or a code of another partition.
CREATE FUNCTION diff.made_up(partition text) RETURNS text LANGUAGE sql VOLATILE AS
  $$ SELECT diff.with_check_digit(partition || lpad(diff.rnd(0, 999999999999999)::text, 15, '0')) $$;

-- A code payext issued, the recent ones likelier; mostly one still live
-- (as the model sees it: this only steers the choice) of a wallet in the
-- given currency, as a till in that currency is mostly shown; sometimes one
-- that expired unused.
CREATE FUNCTION diff.code_pick(p_currency text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pool text[];
  r double precision := random();
  live boolean := r < 0.65;
  expired boolean := r >= 0.65 AND r < 0.72;
  same boolean := random() < 0.85;
BEGIN
  SELECT array_agg(d.code ORDER BY d.n) INTO pool
    FROM diff.codes d JOIN model.code m ON m.code = d.code JOIN model.account a ON a.id = m.wallet
   WHERE (NOT live OR (m.state = 'issued' AND m.expires_at > now()))
     AND (NOT expired OR (m.state = 'issued' AND m.expires_at <= now()))
     AND (NOT same OR p_currency IS NULL OR a.currency = p_currency);
  IF pool IS NULL THEN
    SELECT array_agg(d.code ORDER BY d.n) INTO pool FROM diff.codes d;
  END IF;
  IF pool IS NULL THEN
    RETURN diff.made_up('00');
  END IF;
  RETURN pool[cardinality(pool) - floor(random() ^ 2 * cardinality(pool))::integer];
END $$;

-- A code as a till submits it: mostly issued ones; guesses, typos (one
-- digit changed), swaps of neighbours, other partitions, malformed, NULL.
CREATE FUNCTION diff.code_gen(p_currency text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r double precision := random();
  c text;
  k integer;
BEGIN
  IF r < 0.78 THEN
    RETURN diff.code_pick(p_currency);
  ELSIF r < 0.85 THEN
    RETURN diff.made_up('00');
  ELSIF r < 0.92 THEN
    c := diff.code_pick();
    k := diff.rnd(1, 17)::integer;
    IF r < 0.89 OR substr(c, k, 1) = substr(c, k + 1, 1) THEN
      -- one digit changed
      k := diff.rnd(1, 18)::integer;
      RETURN overlay(c PLACING ((substr(c, k, 1)::integer + diff.rnd(1, 9)) % 10)::text FROM k FOR 1);
    END IF;
    -- neighbours k and k + 1 swapped
    RETURN overlay(c PLACING substr(c, k + 1, 1) || substr(c, k, 1) FROM k FOR 2);
  ELSIF r < 0.95 THEN
    RETURN diff.made_up(lpad(diff.rnd(1, 99)::text, 2, '0'));
  ELSIF r < 0.98 THEN
    c := diff.code_pick();
    RETURN (ARRAY['12345', left(c, 17), c || '0', 'abcdefghijklmnopqr', ''])[diff.rnd(1, 5)];
  END IF;
  RETURN NULL;
END $$;

-- A random earlier call of op (NULL when there is none).
CREATE FUNCTION diff.hist_pick(p_op text, p_state text DEFAULT NULL) RETURNS diff.hist
LANGUAGE plpgsql AS $$
DECLARE
  cnt integer;
  h diff.hist;
BEGIN
  SELECT count(*) INTO cnt FROM diff.hist x
   WHERE x.op = p_op AND (p_state IS NULL OR x.state = p_state);
  IF cnt = 0 THEN
    RETURN NULL;
  END IF;
  SELECT * INTO h FROM diff.hist x
   WHERE x.op = p_op AND (p_state IS NULL OR x.state = p_state)
   ORDER BY x.n OFFSET floor(random() * cnt)::integer LIMIT 1;
  RETURN h;
END $$;

---------------------------------------------------------------------------
-- Operations
---------------------------------------------------------------------------

-- One charge as a till sends it (for charge and charge_many's items):
-- sometimes a replay of an earlier charge, exact or changed.
CREATE FUNCTION diff.charge_item(n integer, tag text, merchant text,
                                 OUT code text, OUT amount bigint, OUT order_ref text,
                                 OUT acct text)
LANGUAGE plpgsql AS $$
DECLARE
  h diff.hist;
  r double precision;
BEGIN
  acct := merchant;
  IF random() < 0.18 THEN
    h := diff.hist_pick('charge', CASE WHEN random() < 0.7 THEN '00000' END);
    IF h.n IS NOT NULL THEN
      code := h.code;
      amount := h.amount;
      order_ref := h.ref;
      acct := coalesce(merchant, h.acct);
      r := random();
      IF r < 0.55 THEN
        acct := h.acct;                               -- the same request again
      ELSIF r < 0.70 THEN
        acct := h.acct;                               -- the same order, another amount
        amount := coalesce(h.amount, 0) + diff.rnd(1, 9);
      ELSIF r < 0.85 THEN
        acct := h.acct;                               -- the same code, another order
        order_ref := 'o-' || n || tag;
      END IF;                                         -- else: another merchant
      RETURN;
    END IF;
  END IF;
  code := diff.code_gen((SELECT s.currency FROM diff.slot s WHERE s.label = merchant));
  amount := CASE WHEN random() < 0.8 AND EXISTS (SELECT 1 FROM diff.codes d
                                                  WHERE d.code = charge_item.code AND d.wallet = diff.whale())
                 THEN diff.huge() ELSE diff.amount() END;
  IF random() < 0.88 THEN
    order_ref := diff.ref('o-' || n || tag);
  ELSE
    -- an order_ref used before (mostly one that was charged), here or at
    -- another merchant
    h := diff.hist_pick(CASE WHEN random() < 0.35 THEN 'authorize' ELSE 'charge' END,
                        CASE WHEN random() < 0.8 THEN '00000' END);    -- a held order: PY608
    order_ref := coalesce(h.ref, 'o-' || n || tag);
    IF random() < 0.2 THEN
      -- a refund_ref of the merchant: refunds are another namespace
      h := diff.hist_pick('refund', '00000');
      order_ref := coalesce(h.ref2, order_ref);
    END IF;
    IF merchant IS NOT NULL AND h.acct IS NOT NULL AND random() < 0.7 THEN
      acct := h.acct;
    END IF;
  END IF;
END $$;

-- A hold both sides made, the recent ones likelier: mostly one the model
-- has open; 0 (no such hold) when there is none, and now and then anyway.
CREATE FUNCTION diff.hold_pick() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  pool integer[];
  open_only boolean := random() < 0.7;
BEGIN
  IF random() < 0.04 THEN
    RETURN 0;
  END IF;
  SELECT array_agg(d.n ORDER BY d.n) INTO pool
    FROM diff.holds d JOIN model.hold m ON m.id = d.md
   WHERE NOT open_only OR m.state = 'open';
  IF pool IS NULL THEN
    SELECT array_agg(d.n ORDER BY d.n) INTO pool FROM diff.holds d;
  END IF;
  IF pool IS NULL THEN
    RETURN 0;
  END IF;
  RETURN pool[cardinality(pool) - floor(random() ^ 2 * cardinality(pool))::integer];
END $$;

-- The hold argument on one side (NULL stays NULL; 0 is a hold nobody made).
CREATE FUNCTION diff.hold_id(side text, handle integer) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN handle IS NULL THEN NULL
              WHEN handle = 0 THEN 987654321
              ELSE (SELECT CASE side WHEN 'px' THEN d.px ELSE d.md END FROM diff.holds d WHERE d.n = handle) END
$$;

CREATE FUNCTION diff.gen(n integer) RETURNS diff.call LANGUAGE plpgsql AS $$
DECLARE
  c diff.call;
  s diff.slot;
  h diff.hist;
  r double precision;
  r2 double precision;
  cap bigint;
  ttl text;
  k integer;
  remaining bigint;
  it record;
  hd diff.holds;
BEGIN
  -- The first operations open every account.
  SELECT * INTO s FROM diff.slot x ORDER BY x.label OFFSET n - 1 LIMIT 1;
  IF n <= (SELECT count(*) FROM diff.slot) THEN
    c.acct := s.label;
    c.kind := 'account';
    IF s.kind = 'wallet' THEN
      c.op := 'open_wallet';
      c.args := format('owner => %L, currency => %L', s.name, s.currency);
    ELSE
      c.op := 'open_merchant';
      c.args := format('public_service_id => %L, display_name => %L, currency => %L',
                       s.name, 'Shop ' || s.name, s.currency);
    END IF;
    RETURN c;
  END IF;

  -- [0, 94.6): the operations before holds; [94.6, 111): holds (15 %).
  r := random() * 111;
  r2 := random();
  IF r < 14 THEN
    -------------------------------------------------------------- top_up
    c.op := 'top_up';
    c.kind := 'transfer';
    h := diff.hist_pick('top_up');
    IF r2 < 0.15 AND h.n IS NOT NULL THEN
      c.acct := h.acct; c.amount := h.amount; c.ref := h.ref;
      r2 := random();
      IF r2 < 0.25 THEN
        c.amount := coalesce(h.amount, 0) + diff.rnd(1, 50);    -- PY107
      ELSIF r2 < 0.4 THEN
        c.acct := diff.slot_of('wallet');      -- the reference on another wallet
      END IF;
    ELSE
      c.acct := diff.wallet_target();
      c.amount := CASE WHEN c.acct = diff.whale() AND random() < 0.8 THEN diff.huge()
                       WHEN random() < 0.75 THEN diff.rnd(500, 8000)
                       ELSE diff.amount() END;
      c.ref := diff.ref('tu-' || n);
    END IF;
    c.args := format('wallet => @ACCT@, amount => %s, external_ref => %s',
                     quote_nullable(c.amount), quote_nullable(c.ref));
  ELSIF r < 21 THEN
    -------------------------------------------------------------- withdraw
    c.op := 'withdraw';
    c.kind := 'transfer';
    h := diff.hist_pick('withdraw');
    IF r2 < 0.15 AND h.n IS NOT NULL THEN
      c.acct := h.acct; c.amount := h.amount; c.ref := h.ref;
      IF random() < 0.3 THEN
        c.amount := coalesce(h.amount, 0) + diff.rnd(1, 50);
      END IF;
    ELSE
      c.acct := diff.account_target();
      c.amount := CASE WHEN random() < 0.85 THEN diff.rnd(1, 2000) ELSE diff.amount() END;
      c.ref := diff.ref('wd-' || n);
      IF r2 < 0.25 THEN
        -- a top-up's reference on its wallet: withdrawals are another namespace
        h := diff.hist_pick('top_up', '00000');
        IF h.n IS NOT NULL THEN
          c.acct := h.acct; c.ref := h.ref;
        END IF;
      END IF;
    END IF;
    c.args := format('account => @ACCT@, amount => %s, external_ref => %s',
                     quote_nullable(c.amount), quote_nullable(c.ref));
  ELSIF r < 36 THEN
    -------------------------------------------------------------- request_payment
    c.op := 'request_payment';
    c.kind := 'code';
    c.acct := diff.wallet_target();
    cap := CASE WHEN r2 < 0.55 OR c.acct = diff.whale() THEN NULL
                WHEN r2 < 0.92 THEN diff.rnd(1, 3000)
                WHEN r2 < 0.96 THEN 0
                ELSE -diff.rnd(1, 9) END;
    r2 := random();
    ttl := CASE WHEN r2 < 0.70 THEN NULL
                WHEN r2 < 0.82 THEN '1 second'
                WHEN r2 < 0.90 THEN '2 seconds'
                WHEN r2 < 0.93 THEN '5 minutes'
                ELSE diff.pick('{0.5 seconds,301 seconds,-1 seconds,1 day}') END;
    c.amount := cap;
    c.ref := ttl;
    c.args := format('wallet => @ACCT@, max_amount => %s, ttl => %s',
                     quote_nullable(cap), quote_nullable(ttl));
  ELSIF r < 38 THEN
    -------------------------------------------------------------- cancel_payment_code
    c.op := 'cancel_payment_code';
    c.kind := 'void';
    c.code := CASE WHEN r2 < 0.8 THEN diff.code_pick() ELSE diff.code_gen() END;
    c.args := format('code => %s', quote_nullable(c.code));
  ELSIF r < 66 THEN
    -------------------------------------------------------------- charge
    c.op := 'charge';
    c.kind := 'transfer';
    SELECT * INTO it FROM diff.charge_item(n, '', diff.merchant_target());
    c.acct := it.acct; c.code := it.code; c.amount := it.amount; c.ref := it.order_ref;
    c.args := format('merchant => @ACCT@, code => %s, amount => %s, order_ref => %s',
                     quote_nullable(c.code), quote_nullable(c.amount), quote_nullable(c.ref));
  ELSIF r < 72 THEN
    -------------------------------------------------------------- charge_many
    c.op := 'charge_many';
    c.kind := 'batch';
    c.acct := diff.merchant_target();
    c.codes := '{}'; c.amounts := '{}'; c.refs := '{}';
    FOR i IN 1 .. diff.rnd(0, 6) LOOP
      IF i > 1 AND random() < 0.15 THEN
        -- an earlier item of this batch again, or its code for another order
        k := diff.rnd(1, i - 1)::integer;
        c.codes := c.codes || c.codes[k];
        c.amounts := c.amounts || c.amounts[k];
        c.refs := c.refs || CASE WHEN random() < 0.5 THEN c.refs[k] ELSE 'o-' || n || '-' || i END;
      ELSE
        SELECT * INTO it FROM diff.charge_item(n, '-' || i, c.acct);
        c.codes := c.codes || it.code;
        c.amounts := c.amounts || it.amount;
        c.refs := c.refs || it.order_ref;
      END IF;
    END LOOP;
    -- A malformed batch now and then: refused whole.
    IF r2 < 0.03 AND cardinality(c.amounts) > 0 THEN
      c.amounts := c.amounts[1:cardinality(c.amounts) - 1];          -- PY009
    ELSIF r2 < 0.045 AND cardinality(c.codes) > 0 THEN
      c.args := format('merchant => @ACCT@, codes => %s, amounts => %s, order_refs => %s',
                       quote_nullable(ARRAY[c.codes]), quote_nullable(c.amounts),
                       quote_nullable(c.refs));                        -- PY009
      RETURN c;
    ELSIF r2 < 0.055 THEN
      c.codes := NULL;                                                 -- PY001
    ELSIF r2 < 0.06 THEN
      c.codes := array_fill(diff.made_up('00'), ARRAY[1001]);          -- PY010
      c.amounts := array_fill(1::bigint, ARRAY[1001]);
      c.refs := array_fill('o-' || n, ARRAY[1001]);
    END IF;
    c.args := format('merchant => @ACCT@, codes => %s, amounts => %s, order_refs => %s',
                     quote_nullable(c.codes), quote_nullable(c.amounts), quote_nullable(c.refs));
  ELSIF r < 84 THEN
    -------------------------------------------------------------- refund
    c.op := 'refund';
    c.kind := 'transfer';
    h := diff.hist_pick('charge', '00000');
    IF r2 < 0.85 AND h.n IS NOT NULL THEN
      c.acct := CASE WHEN random() < 0.05 THEN diff.slot_of('merchant') ELSE h.acct END;
      c.ref := h.ref;
      SELECT p.amount - p.refunded INTO remaining
        FROM model.payment p WHERE model.label(p.merchant) = h.acct AND p.order_ref = h.ref;
      remaining := coalesce(remaining, h.amount);
      r2 := random();
      c.amount := CASE WHEN r2 < 0.40 THEN diff.rnd(1, greatest(remaining, 1))
                       WHEN r2 < 0.65 THEN remaining
                       WHEN r2 < 0.80 THEN remaining + diff.rnd(1, 10)
                       WHEN r2 < 0.85 THEN diff.amount()
                       ELSE diff.rnd(1, 3000) END;
      r2 := random();
      c.ref2 := CASE WHEN random() < 0.1 THEN c.ref ELSE diff.ref('r-' || n) END;
      IF r2 < 0.3 THEN
        h := diff.hist_pick('refund', CASE WHEN random() < 0.7 THEN '00000' END);
        IF h.n IS NOT NULL THEN
          c.ref2 := h.ref2;
          IF r2 < 0.18 THEN
            -- the same refund again
            c.acct := h.acct; c.ref := h.ref; c.amount := h.amount;
          END IF;
        END IF;
      END IF;
    ELSE
      c.acct := diff.merchant_target();
      c.ref := diff.pick(ARRAY['o-nope-' || n, 'o-' || diff.rnd(1, n), '', NULL]);
      c.amount := diff.amount();
      c.ref2 := diff.ref('r-' || n);
    END IF;
    c.args := format('merchant => @ACCT@, order_ref => %s, amount => %s, refund_ref => %s',
                     quote_nullable(c.ref), quote_nullable(c.amount), quote_nullable(c.ref2));
  ELSIF r < 91.6 THEN
    -------------------------------------------------------------- freeze, unfreeze, close
    c.op := CASE WHEN r < 85.2 THEN 'freeze' WHEN r < 91.2 THEN 'unfreeze' ELSE 'close_account' END;
    c.kind := 'void';
    c.acct := diff.account_target();
    c.args := 'account => @ACCT@';
  ELSIF r < 94.6 THEN
    -------------------------------------------------------------- open again
    c.kind := 'account';
    c.acct := diff.slot_of(NULL);
    SELECT * INTO s FROM diff.slot x WHERE x.label = c.acct;
    r2 := random();
    IF r2 < 0.5 THEN
      NULL;                                       -- the same account again
    ELSIF r2 < 0.65 THEN
      s.currency := lower(s.currency);            -- 'usd' is USD
    ELSIF r2 < 0.75 THEN
      s.name := 'new' || n;                       -- a new account
      c.acct := NULL;
    ELSE
      c.acct := NULL;                             -- refused
      IF random() < 0.5 THEN
        s.name := diff.pick(ARRAY['', ' ' || s.name, s.name || E'\n', NULL]);
      ELSE
        s.currency := diff.pick('{ZZZ,CN,CNYY,NULL}');
      END IF;
    END IF;
    IF s.kind = 'wallet' THEN
      c.op := 'open_wallet';
      c.args := format('owner => %s, currency => %s', quote_nullable(s.name), quote_nullable(s.currency));
    ELSE
      c.op := 'open_merchant';
      c.args := format('public_service_id => %s, display_name => %s, currency => %s',
                       quote_nullable(s.name),
                       quote_nullable(CASE WHEN random() < 0.9 THEN 'Shop ' || n ELSE '' END),
                       quote_nullable(s.currency));
    END IF;
  ELSIF r < 101 OR (r < 109 AND NOT EXISTS (SELECT 1 FROM diff.holds)) THEN
    -------------------------------------------------------------- authorize
    -- (also instead of a capture or a void while there is no hold yet)
    c.op := 'authorize';
    c.kind := 'hold';
    h := diff.hist_pick('authorize', CASE WHEN random() < 0.7 THEN '00000' END);
    IF r2 < 0.15 AND h.n IS NOT NULL THEN
      c.acct := h.acct; c.code := h.code; c.amount := h.amount; c.ref := h.ref;
      r2 := random();
      IF r2 < 0.25 THEN
        c.amount := coalesce(h.amount, 0) + diff.rnd(1, 9);           -- the same order, another amount
      ELSIF r2 < 0.45 THEN
        c.code := diff.code_pick((SELECT x.currency FROM diff.slot x WHERE x.label = h.acct));
      END IF;                                                         -- else: the same request again
    ELSE
      c.acct := diff.merchant_target();
      -- mostly a code payext issued (a hold is mostly asked for with a live one)
      c.code := CASE WHEN random() < 0.5 THEN diff.code_pick((SELECT x.currency FROM diff.slot x WHERE x.label = c.acct))
                     ELSE diff.code_gen((SELECT x.currency FROM diff.slot x WHERE x.label = c.acct)) END;
      c.amount := CASE WHEN random() < 0.8 AND EXISTS (SELECT 1 FROM diff.codes d
                                                        WHERE d.code = c.code AND d.wallet = diff.whale())
                       THEN diff.huge() ELSE diff.amount() END;
      r2 := random();
      IF r2 < 0.2 THEN
        -- an order used before: charged (PY208) or held (the same or PY208)
        h := diff.hist_pick(CASE WHEN random() < 0.6 THEN 'charge' ELSE 'authorize' END, '00000');
        c.ref := coalesce(h.ref, 'h-' || n);
        IF c.acct IS NOT NULL AND h.acct IS NOT NULL AND random() < 0.8 THEN
          c.acct := h.acct;
        END IF;
      ELSIF r2 < 0.22 THEN
        c.ref := 'parking:' || n;                                     -- PY004
      ELSE
        c.ref := diff.ref('h-' || n);
      END IF;
    END IF;
    -- Long enough that no hold expires during a run (expiry is not driven).
    r2 := random();
    c.ref2 := CASE WHEN r2 < 0.86 THEN '1 day' WHEN r2 < 0.96 THEN NULL
                   ELSE diff.pick('{0.5 seconds,31 days,-1 hours}') END;   -- NULL: 7 days; PY606
    c.args := format('merchant => @ACCT@, code => %s, amount => %s, order_ref => %s, expires_in => %s',
                     quote_nullable(c.code), quote_nullable(c.amount), quote_nullable(c.ref),
                     quote_nullable(c.ref2));
  ELSIF r < 106.4 THEN
    -------------------------------------------------------------- capture_hold
    c.op := 'capture_hold';
    c.kind := 'transfer';
    h := diff.hist_pick('capture_hold', CASE WHEN random() < 0.7 THEN '00000' END);
    IF r2 < 0.2 AND h.n IS NOT NULL THEN
      -- a capture_ref used before
      c.acct := h.acct; c.hold := h.code::integer; c.amount := h.amount; c.ref := h.ref;
      c.ref2 := (ARRAY['true', 'false'])[diff.rnd(1, 2)];
      r2 := random();
      IF r2 < 0.25 THEN
        c.amount := coalesce(h.amount, 0) + diff.rnd(1, 9);           -- PY607
      ELSIF r2 < 0.5 THEN
        c.hold := diff.hold_pick();                                   -- PY607, or PY601
      END IF;                                                         -- else: the same capture again
    ELSE
      c.hold := diff.hold_pick();
      SELECT * INTO hd FROM diff.holds d WHERE d.n = c.hold;
      r2 := random();
      c.acct := CASE WHEN hd.n IS NULL OR r2 < 0.07 THEN diff.slot_of('merchant')   -- another's: PY601
                     WHEN r2 < 0.10 THEN diff.slot_of('wallet')                     -- PY111
                     WHEN r2 < 0.11 THEN 'nobody'
                     WHEN r2 < 0.12 THEN NULL
                     ELSE hd.acct END;
      SELECT m.amount - m.captured INTO remaining FROM model.hold m WHERE m.id = hd.md;
      remaining := coalesce(remaining, 1000);
      r2 := random();
      c.amount := CASE WHEN r2 < 0.40 THEN diff.rnd(1, greatest(remaining, 1))
                       WHEN r2 < 0.65 THEN remaining
                       WHEN r2 < 0.80 THEN remaining + diff.rnd(1, 10)      -- PY605
                       WHEN r2 < 0.88 THEN diff.amount()
                       ELSE diff.rnd(1, 3000) END;
      c.ref := diff.ref('c-' || n);
      r2 := random();
      c.ref2 := CASE WHEN r2 < 0.48 THEN 'true' WHEN r2 < 0.98 THEN 'false' ELSE NULL END;
    END IF;
    IF random() < 0.03 THEN
      c.hold := NULL;                                                 -- PY001
    END IF;
    c.args := format('merchant => @ACCT@, hold => @HOLD@, amount => %s, capture_ref => %s, final => %s',
                     quote_nullable(c.amount), quote_nullable(c.ref), quote_nullable(c.ref2));
  ELSIF r < 109 THEN
    -------------------------------------------------------------- void_hold
    c.op := 'void_hold';
    c.kind := 'value';
    c.hold := diff.hold_pick();
    SELECT * INTO hd FROM diff.holds d WHERE d.n = c.hold;
    c.acct := CASE WHEN hd.n IS NULL OR r2 < 0.10 THEN diff.slot_of('merchant')
                   WHEN r2 < 0.13 THEN diff.slot_of('wallet')
                   WHEN r2 < 0.15 THEN NULL
                   ELSE hd.acct END;
    IF random() < 0.03 THEN
      c.hold := NULL;
    END IF;
    c.args := 'merchant => @ACCT@, hold => @HOLD@';
  ELSE
    -------------------------------------------------------------- available_balance
    c.op := 'available_balance';
    c.kind := 'value';
    c.acct := diff.account_target();
    c.args := 'account => @ACCT@';
  END IF;
  RETURN c;
END $$;

---------------------------------------------------------------------------
-- Calling both sides
---------------------------------------------------------------------------

-- The id of an account argument on one side ('px' or 'md').
CREATE FUNCTION diff.acct_id(side text, target text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  id bigint;
BEGIN
  IF target IS NULL THEN
    RETURN NULL;
  ELSIF target = 'nobody' THEN
    RETURN 987654321;
  ELSIF target LIKE 'system:%' THEN
    IF side = 'px' THEN
      SELECT a.id INTO id FROM payext.account a
       WHERE a.kind = 'system' AND a.currency = substr(target, 8);
    ELSE
      SELECT a.id INTO id FROM model.account a
       WHERE a.kind = 'system' AND a.currency = substr(target, 8);
    END IF;
    RETURN coalesce(id, 987654321);
  END IF;
  SELECT CASE side WHEN 'px' THEN s.px ELSE s.md END INTO id FROM diff.slot s WHERE s.label = target;
  RETURN id;
END $$;

-- payext's natural key of an account.
CREATE FUNCTION diff.px_label(account_id bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  l text;
BEGIN
  SELECT CASE a.kind WHEN 'system' THEN 'system:' || a.currency
                     WHEN 'wallet' THEN 'wallet:' || a.owner || ':' || a.currency
                     ELSE a.kind || ':' || a.public_service_id || ':' || a.currency END
    INTO l FROM payext.account a WHERE a.id = account_id;
  RETURN l;
END $$;

-- One call, in its own subtransaction: its SQLSTATE ('00000': success) and
-- its result as text (a charge_many's rows as JSON), or the error message.
CREATE FUNCTION diff.invoke(fn text, args text, batch boolean, OUT state text, OUT val text)
LANGUAGE plpgsql AS $$
DECLARE
  detail text;
  hint text;
BEGIN
  IF batch THEN
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_array(r.item, r.transfer_id, r.sqlstate,'
                   ' to_jsonb(r) -> ''message'') ORDER BY r.item), ''[]'')::text FROM %s(%s) r', fn, args)
       INTO val;
  ELSE
    EXECUTE format('SELECT (%s(%s))::text', fn, args) INTO val;
  END IF;
  state := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  state := SQLSTATE;
  val := concat_ws(' / ', SQLERRM, nullif(detail, ''), nullif(hint, ''));
END $$;

---------------------------------------------------------------------------
-- Comparing
---------------------------------------------------------------------------

-- The journal rows appended since the last comparison, on both sides, as
-- kind|debit|credit|amount|reference; matched rows map payext's transfer id
-- to the model's.  NULL when they agree.
CREATE FUNCTION diff.sync_journal() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  cur diff.cursor;
  px_ids bigint[];
  px_rows text[];
  md_ids bigint[];
  md_rows text[];
BEGIN
  SELECT * INTO cur FROM diff.cursor;
  SELECT coalesce(array_agg(t.id ORDER BY t.id), '{}'),
         coalesce(array_agg(concat_ws('|', t.kind, diff.px_label(t.debit_account),
                                      diff.px_label(t.credit_account), t.amount,
                                      coalesce(t.reference, '(null)')) ORDER BY t.id), '{}')
    INTO px_ids, px_rows
    FROM payext.transfer t WHERE t.id > cur.px;
  SELECT coalesce(array_agg(j.id ORDER BY j.id), '{}'),
         coalesce(array_agg(concat_ws('|', j.kind, model.label(j.debit), model.label(j.credit),
                                      j.amount, coalesce(j.reference, '(null)')) ORDER BY j.id), '{}')
    INTO md_ids, md_rows
    FROM model.journal j WHERE j.id > cur.md;
  IF px_rows IS DISTINCT FROM md_rows THEN
    FOR i IN 1 .. greatest(cardinality(px_rows), cardinality(md_rows)) LOOP
      IF px_rows[i] IS DISTINCT FROM md_rows[i] THEN
        RETURN format('journal differs: payext appended %s row(s), the model %s; row %s: payext %s, model %s',
                      cardinality(px_rows), cardinality(md_rows), i,
                      coalesce(px_rows[i], '(none)'), coalesce(md_rows[i], '(none)'));
      END IF;
    END LOOP;
  END IF;
  IF cardinality(px_ids) > 0 THEN
    INSERT INTO diff.tmap (px, md) SELECT p, m FROM unnest(px_ids, md_ids) AS u(p, m);
    UPDATE diff.cursor SET px = px_ids[cardinality(px_ids)], md = md_ids[cardinality(md_ids)];
  END IF;
  RETURN NULL;
END $$;

-- Whether payext's transfer px is the model's md (the same journal row).
CREATE FUNCTION diff.same_transfer(px bigint, md bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  mapped bigint;
BEGIN
  SELECT t.md INTO mapped FROM diff.tmap t WHERE t.px = same_transfer.px;
  IF mapped IS NULL THEN
    RETURN format('payext answered with transfer %s, which matches no journal row', px);
  ELSIF mapped IS DISTINCT FROM md THEN
    RETURN format('payext answered with transfer %s (the model''s %s), the model with its transfer %s',
                  px, mapped, md);
  END IF;
  RETURN NULL;
END $$;

-- Every user account's balance and status, by natural key.  After each
-- operation from the relations (a merchant's balance is its row's plus its
-- credit buckets, README), which is cheap; at the end of a seed through
-- payext.balance(), the API, whose privilege checks cost more.
CREATE FUNCTION diff.compare_accounts(via_api boolean DEFAULT false) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d text;
BEGIN
  WITH px AS (
    SELECT CASE a.kind WHEN 'wallet' THEN 'wallet:' || a.owner
                       ELSE 'merchant:' || a.public_service_id END || ':' || a.currency AS label,
           CASE WHEN via_api THEN payext.balance(a.id)::numeric
                ELSE a.balance + coalesce((SELECT sum(c.amount) FROM payext.merchant_credit c
                                            WHERE c.account = a.id), 0) END AS balance,
           a.status,
           CASE WHEN a.kind = 'wallet' THEN payext.available_balance(a.id)::numeric END AS available
      FROM payext.account a WHERE a.kind <> 'system'
  ), md AS (
    SELECT a.kind || ':' || a.name || ':' || a.currency AS label, a.balance, a.status,
           CASE WHEN a.kind = 'wallet' THEN a.balance - model.held(a.id) END AS available
      FROM model.account a WHERE a.kind <> 'system'
  )
  SELECT string_agg(format('%s: payext %s (%s, available %s), model %s (%s, available %s)', label,
                           coalesce(px.balance::text, 'no account'), px.status, px.available,
                           coalesce(md.balance::text, 'no account'), md.status, md.available),
                    '; ' ORDER BY label)
    INTO d
    FROM px FULL JOIN md USING (label)
   WHERE px.balance IS DISTINCT FROM md.balance OR px.status IS DISTINCT FROM md.status
      OR px.available IS DISTINCT FROM md.available;
  RETURN CASE WHEN d IS NOT NULL THEN 'accounts differ: ' || d END;
END $$;

-- The guesses payext counts against a merchant slot, against the model's.
CREATE FUNCTION diff.compare_guesses(target text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  px_n integer;
  md_n integer;
BEGIN
  IF current_setting('payext.code_failure_limit')::integer = 0
     OR NOT EXISTS (SELECT 1 FROM diff.slot s WHERE s.label = target AND s.kind = 'merchant') THEN
    RETURN NULL;
  END IF;
  SELECT coalesce(sum(f.failures), 0) INTO px_n FROM payext.code_failure f
   WHERE f.merchant = diff.acct_id('px', target);
  SELECT coalesce(sum(g.n), 0) INTO md_n FROM diff.guesses g WHERE g.acct = target;
  IF px_n <> md_n THEN
    RETURN format('payext counts %s guess(es) against %s, the model %s', px_n, target, md_n);
  END IF;
  RETURN NULL;
END $$;

-- DESIGN: "Errors that a merchant can see never reveal a customer's wallet
-- id".  A wallet named in a charge's or refund's error text (message,
-- detail, hint), other than the account the merchant passed itself.
CREATE FUNCTION diff.names_wallet(txt text, own bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  w bigint;
BEGIN
  SELECT m[1]::bigint INTO w
    FROM regexp_matches(coalesce(txt, ''), 'account (\d+)', 'g') m
   WHERE m[1]::bigint IS DISTINCT FROM own
     AND EXISTS (SELECT 1 FROM payext.account a WHERE a.id = m[1]::bigint AND a.kind = 'wallet')
   LIMIT 1;
  RETURN CASE WHEN w IS NOT NULL THEN format('the merchant''s error names wallet %s: %s', w, txt) END;
END $$;

-- Outcome and result of one operation.
CREATE FUNCTION diff.compare(c diff.call, px_state text, px_val text, md_state text, md_val text,
                             px_acct bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d text;
  px_items jsonb;
  md_items jsonb;
  p jsonb;
  m jsonb;
  s diff.slot;
BEGIN
  IF px_state <> md_state THEN
    RETURN 'outcomes differ';
  END IF;
  IF c.op IN ('charge', 'refund', 'authorize', 'capture_hold') AND px_state <> '00000' THEN
    d := diff.names_wallet(px_val, px_acct);
  ELSIF c.op = 'charge_many' AND px_state = '00000' THEN
    SELECT string_agg(e ->> 3, ' | ') INTO d FROM jsonb_array_elements(px_val::jsonb) e;
    d := diff.names_wallet(d, px_acct);
  END IF;
  IF d IS NOT NULL THEN
    RETURN d;
  END IF;
  d := diff.sync_journal();
  IF d IS NOT NULL THEN
    RETURN d;
  END IF;
  IF px_state = '00000' THEN
    IF c.kind = 'transfer' THEN
      d := diff.same_transfer(px_val::bigint, md_val::bigint);
    ELSIF c.kind = 'value' THEN
      IF px_val IS DISTINCT FROM md_val THEN
        d := format('payext returned %s, the model %s', px_val, md_val);
      END IF;
    ELSIF c.kind = 'hold' THEN
      -- a hold made before must be answered with that hold, a new one be new
      SELECT format('payext answered with hold %s, which was the model''s %s; the model with %s',
                    px_val, x.md, md_val)
        INTO d FROM diff.holds x WHERE x.px = px_val::bigint AND x.md <> md_val::bigint;
      IF d IS NULL THEN
        SELECT format('the model answered with its hold %s, which was payext''s %s; payext with %s',
                      md_val, x.px, px_val)
          INTO d FROM diff.holds x WHERE x.md = md_val::bigint AND x.px <> px_val::bigint;
      END IF;
    ELSIF c.kind = 'account' THEN
      IF diff.px_label(px_val::bigint) IS DISTINCT FROM model.label(md_val::bigint) THEN
        d := format('payext opened %s, the model %s', diff.px_label(px_val::bigint),
                    model.label(md_val::bigint));
      END IF;
      SELECT * INTO s FROM diff.slot x WHERE x.label = diff.px_label(px_val::bigint);
      IF s.px IS NOT NULL AND s.px <> px_val::bigint THEN
        d := format('payext answered %s with account %s, first with %s', s.label, px_val, s.px);
      END IF;
    ELSIF c.kind = 'batch' THEN
      px_items := px_val::jsonb;
      md_items := md_val::jsonb;
      IF jsonb_array_length(px_items) <> jsonb_array_length(md_items) THEN
        RETURN format('payext answered %s item(s), the model %s',
                      jsonb_array_length(px_items), jsonb_array_length(md_items));
      END IF;
      FOR i IN 0 .. jsonb_array_length(px_items) - 1 LOOP
        p := px_items -> i;
        m := md_items -> i;
        IF (p ->> 0) IS DISTINCT FROM (m ->> 0) OR (p ->> 2) IS DISTINCT FROM (m ->> 2) THEN
          RETURN format('item %s: payext %s, model %s', i + 1, p, m);
        END IF;
        IF (p ->> 1) IS NOT NULL OR (m ->> 1) IS NOT NULL THEN
          d := diff.same_transfer((p ->> 1)::bigint, (m ->> 1)::bigint);
          IF d IS NOT NULL THEN
            RETURN format('item %s: %s', i + 1, d);
          END IF;
        END IF;
      END LOOP;
    END IF;
    IF d IS NOT NULL THEN
      RETURN d;
    END IF;
  END IF;
  d := diff.compare_accounts();
  IF d IS NOT NULL THEN
    RETURN d;
  END IF;
  IF c.op IN ('charge', 'charge_many', 'authorize') THEN
    RETURN diff.compare_guesses(c.acct);
  END IF;
  RETURN NULL;
END $$;

---------------------------------------------------------------------------
-- Bookkeeping
---------------------------------------------------------------------------

CREATE FUNCTION diff.count(what text, state text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO diff.counts AS k (what, sqlstate, n) VALUES (what, state, 1)
  ON CONFLICT (what, sqlstate) DO UPDATE SET n = k.n + 1
$$;

CREATE FUNCTION diff.record(c diff.call, state text, px_val text, md_val text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
  item_state text;
BEGIN
  PERFORM diff.count(c.op, state);
  IF c.op = 'open_wallet' OR c.op = 'open_merchant' THEN
    IF state = '00000' THEN
      UPDATE diff.slot s SET px = px_val::bigint, md = md_val::bigint
       WHERE s.label = diff.px_label(px_val::bigint) AND s.px IS NULL;
    END IF;
  ELSIF c.op = 'request_payment' THEN
    IF state = '00000' THEN
      INSERT INTO diff.codes (code, wallet) VALUES (px_val, c.acct);
    END IF;
  ELSIF c.op = 'charge_many' THEN
    IF state = '00000' THEN
      FOR item IN SELECT e FROM jsonb_array_elements(px_val::jsonb) e LOOP
        item_state := coalesce(item ->> 2, '00000');
        PERFORM diff.count('charge_many item', item_state);
        INSERT INTO diff.hist (op, acct, code, amount, ref, state)
        VALUES ('charge', c.acct, c.codes[(item ->> 0)::integer], c.amounts[(item ->> 0)::integer],
                c.refs[(item ->> 0)::integer], item_state);
      END LOOP;
    END IF;
  ELSIF c.op IN ('top_up', 'withdraw', 'charge', 'refund', 'authorize') THEN
    INSERT INTO diff.hist (op, acct, code, amount, ref, ref2, state)
    VALUES (c.op, c.acct, c.code, c.amount, c.ref, c.ref2, state);
    IF c.op = 'authorize' AND state = '00000'
       AND NOT EXISTS (SELECT 1 FROM diff.holds x WHERE x.px = px_val::bigint) THEN
      INSERT INTO diff.holds (px, md, acct, ref) VALUES (px_val::bigint, md_val::bigint, c.acct, c.ref);
    END IF;
  ELSIF c.op = 'capture_hold' AND c.hold IS NOT NULL THEN
    -- the hold's handle as `code`
    INSERT INTO diff.hist (op, acct, code, amount, ref, ref2, state)
    VALUES (c.op, c.acct, c.hold::text, c.amount, c.ref, c.ref2, state);
  END IF;
END $$;

-- The model's PY203 refusals of a charge or charge_many: guesses that payext
-- must have counted against the merchant, whatever became of the call.
CREATE FUNCTION diff.tally_guesses(c diff.call, md_state text, md_val text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  k integer := 0;
BEGIN
  IF c.op IN ('charge', 'authorize') AND md_state = 'PY203' THEN
    k := 1;
  ELSIF c.op = 'charge_many' AND md_state = '00000' THEN
    SELECT count(*) INTO k FROM jsonb_array_elements(md_val::jsonb) e WHERE e ->> 2 = 'PY203';
  END IF;
  IF k > 0 THEN
    INSERT INTO diff.guesses AS g VALUES (c.acct, k)
    ON CONFLICT (acct) DO UPDATE SET n = g.n + k;
  END IF;
END $$;

-- One operation, both sides, compared.  NULL when they agree, else the report.
CREATE FUNCTION diff.step(p_seed integer, p_n integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c diff.call;
  px_id bigint;
  md_id bigint;
  px_args text;
  md_args text;
  px record;
  md record;
  d text;
  shown text;
  context text;
BEGIN
  c := diff.gen(p_n);
  px_id := diff.acct_id('px', c.acct);
  md_id := diff.acct_id('md', c.acct);
  px_args := replace(replace(c.args, '@ACCT@', quote_nullable(px_id)),
                     '@HOLD@', quote_nullable(diff.hold_id('px', c.hold)));
  md_args := replace(replace(c.args, '@ACCT@', quote_nullable(md_id)),
                     '@HOLD@', quote_nullable(diff.hold_id('md', c.hold)));
  SELECT * INTO px FROM diff.invoke('payext.' || c.op, px_args, c.kind = 'batch');
  IF c.op = 'request_payment' THEN
    md_args := md_args || ', issued => '
               || quote_nullable(CASE WHEN px.state = '00000' THEN px.val END);
  END IF;
  SELECT * INTO md FROM diff.invoke('model.' || c.op, md_args, c.kind = 'batch');

  shown := format('%s(%s)%s', c.op, px_args,
                  CASE WHEN c.acct IS NOT NULL THEN format(' [%s; model id %s]', c.acct, md_id) ELSE '' END);
  INSERT INTO diff.oplog VALUES (p_n, shown, px.state || ' ' || coalesce(px.val, ''),
                                 md.state || ' ' || coalesce(md.val, ''));
  PERFORM diff.tally_guesses(c, md.state, md.val);
  d := diff.compare(c, px.state, px.val, md.state, md.val, px_id);
  IF d IS NOT NULL THEN
    SELECT string_agg(format('  #%s %s -> payext %s | model %s', o.n, o.call, o.px, o.md), E'\n' ORDER BY o.n)
      INTO context FROM diff.oplog o WHERE o.n BETWEEN p_n - 8 AND p_n - 1;
    RETURN format(E'DIVERGENCE at seed %s, operation %s: %s\n  operation: %s\n  payext: %s %s\n  model:  %s %s\n'
                  'the operations before it:\n%s\nrerun: PAYEXT_DIFF_SEEDS=%s test/diff/run.sh',
                  p_seed, p_n, d, shown, px.state, coalesce(px.val, ''), md.state, coalesce(md.val, ''),
                  coalesce(context, '  (none)'), p_seed);
  END IF;
  PERFORM diff.record(c, px.state, px.val, md.val);
  RETURN NULL;
END $$;

-- After the last operation: the whole journal, the status of every order
-- tried, the guesses of every merchant, and payext's own verification.
CREATE FUNCTION diff.final(p_seed integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d text;
  px_rows text[];
  md_rows text[];
  o record;
  px record;
  md record;
  px_state text;
  md_state text;
  px_id bigint;
  md_id bigint;
BEGIN
  SELECT array_agg(concat_ws('|', coalesce((SELECT m.md FROM diff.tmap m WHERE m.px = t.id)::text, '?'),
                             t.kind, diff.px_label(t.debit_account), diff.px_label(t.credit_account),
                             t.amount, coalesce(t.reference, '(null)')) ORDER BY t.id)
    INTO px_rows FROM payext.transfer t;
  SELECT array_agg(concat_ws('|', j.id, j.kind, model.label(j.debit), model.label(j.credit),
                             j.amount, coalesce(j.reference, '(null)')) ORDER BY j.id)
    INTO md_rows FROM model.journal j;
  IF px_rows IS DISTINCT FROM md_rows THEN
    RETURN format('DIVERGENCE at seed %s, at the end: the journals differ (payext %s rows, model %s)',
                  p_seed, cardinality(px_rows), cardinality(md_rows));
  END IF;

  FOR o IN SELECT DISTINCT h.acct, h.ref FROM diff.hist h
            WHERE h.op = 'charge' AND h.acct IN (SELECT s.label FROM diff.slot s WHERE s.kind = 'merchant')
            ORDER BY 1, 2 LOOP
    px_id := diff.acct_id('px', o.acct);
    md_id := diff.acct_id('md', o.acct);
    BEGIN
      SELECT r.transfer_id, r.amount, r.refunded_amount, r.state INTO px
        FROM payext.payment_status(merchant => px_id, order_ref => o.ref) r;
      px_state := '00000';
    EXCEPTION WHEN OTHERS THEN
      px_state := SQLSTATE;
    END;
    BEGIN
      SELECT r.transfer_id, r.amount, r.refunded_amount, r.state INTO md
        FROM model.payment_status(merchant => md_id, order_ref => o.ref) r;
      md_state := '00000';
    EXCEPTION WHEN OTHERS THEN
      md_state := SQLSTATE;
    END;
    IF px_state <> md_state THEN
      d := format('payment_status(%s, %s): payext %s, model %s', o.acct, o.ref, px_state, md_state);
    ELSIF px_state = '00000' THEN
      IF (px.amount, px.refunded_amount, px.state) IS DISTINCT FROM (md.amount, md.refunded_amount, md.state) THEN
        d := format('payment_status(%s, %s): payext %s/%s/%s, model %s/%s/%s', o.acct, o.ref,
                    px.amount, px.refunded_amount, px.state, md.amount, md.refunded_amount, md.state);
      ELSE
        d := diff.same_transfer(px.transfer_id, md.transfer_id);
      END IF;
    END IF;
    IF d IS NOT NULL THEN
      RETURN format('DIVERGENCE at seed %s, at the end: %s', p_seed, d);
    END IF;
  END LOOP;

  -- Every hold: what was done to it, what it captured, what it holds now.
  SELECT string_agg(format('hold %s (model %s, %s %s): payext %s/%s/%s, model %s/%s/%s', x.px, x.md,
                           x.acct, x.ref, p.state, p.captured, p.holding, m.state, m.captured, m.holding),
                    '; ' ORDER BY x.n)
    INTO d
    FROM diff.holds x
    LEFT JOIN payext.hold p ON p.id = x.px
    LEFT JOIN (SELECT h.id, h.captured,
                      CASE WHEN h.state = 'open' AND h.expires_at <= now() THEN 'expired' ELSE h.state END AS state,
                      CASE WHEN h.state = 'open' AND h.expires_at > now() THEN h.amount - h.captured ELSE 0 END AS holding
                 FROM model.hold h) m ON m.id = x.md
   WHERE (p.state, p.captured, p.holding) IS DISTINCT FROM (m.state, m.captured, m.holding);
  IF d IS NOT NULL THEN
    RETURN format('DIVERGENCE at seed %s, at the end: holds differ: %s', p_seed, d);
  END IF;
  IF (SELECT count(*) FROM payext.hold_entry) <> (SELECT count(*) FROM model.hold) THEN
    RETURN format('DIVERGENCE at seed %s, at the end: payext has %s hold(s), the model %s', p_seed,
                  (SELECT count(*) FROM payext.hold_entry), (SELECT count(*) FROM model.hold));
  END IF;

  FOR o IN SELECT s.label FROM diff.slot s WHERE s.kind = 'merchant' ORDER BY 1 LOOP
    d := diff.compare_guesses(o.label);
    IF d IS NOT NULL THEN
      RETURN format('DIVERGENCE at seed %s, at the end: %s', p_seed, d);
    END IF;
  END LOOP;

  d := diff.compare_accounts(via_api => true);
  IF d IS NOT NULL THEN
    RETURN format('DIVERGENCE at seed %s, at the end: %s', p_seed, d);
  END IF;

  SELECT string_agg(v.check_name || ': ' || v.detail, '; ') INTO d
    FROM payext.verify_ledger() v WHERE NOT v.ok;
  IF d IS NOT NULL THEN
    RETURN format('seed %s: payext.verify_ledger() fails: %s', p_seed, d);
  END IF;
  RETURN NULL;
END $$;

-- One seed: a fresh model and driver state (run.sh made payext fresh), then
-- ops operations, each in its own transaction.  Halfway, the clock moves on
-- by p_pause seconds, so that the codes issued with a ttl of 1 or 2 seconds
-- before it have expired after it (PY204), in payext and in the model alike:
-- both judge expiry by the transaction's time, now().
CREATE PROCEDURE diff.run(p_seed integer, p_ops integer, p_pause double precision DEFAULT 1.0)
LANGUAGE plpgsql AS $$
DECLARE
  d text;
BEGIN
  PERFORM model.reset();
  PERFORM diff.reset();
  -- Guess counts live in shared memory, by merchant id; ids start again in
  -- each seed's fresh extension.
  PERFORM payext.unblock_charging(i) FROM generate_series(1, 100) i;
  PERFORM setseed(p_seed / 2147483647.0);
  COMMIT;
  FOR n IN 1 .. p_ops LOOP
    IF n = p_ops / 2 AND p_pause > 0 THEN
      PERFORM pg_sleep(p_pause);
      COMMIT;
    END IF;
    d := diff.step(p_seed, n);
    IF d IS NOT NULL THEN
      RAISE EXCEPTION '%', d;
    END IF;
    COMMIT;
  END LOOP;
  d := diff.final(p_seed);
  IF d IS NOT NULL THEN
    RAISE EXCEPTION '%', d;
  END IF;
  INSERT INTO diff.runs VALUES (p_seed, p_ops);
END $$;
