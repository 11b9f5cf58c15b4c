-- The baseline: the same issue-and-charge path as a team without payext
-- would write it, in PL/pgSQL with pgcrypto.  A code is a serial and a
-- truncated HMAC-SHA256 of it; a charge checks the MAC, burns the code,
-- takes the money with UPDATE ... WHERE balance >= amount, credits the
-- merchant, appends a journal row, records the payment and an
-- interaction, and counts the pair's recent payments against the
-- merchant's rule.  Same population as setup.sql: wallets 1 .. 100 000,
-- merchants 100 001 .. 101 000, rules at 100 901 .. 101 000.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS naive CASCADE;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA naive;

CREATE TABLE naive.account (
  id bigint PRIMARY KEY,
  owner text NOT NULL UNIQUE,
  is_merchant boolean NOT NULL,
  balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE naive.signing_key (id int PRIMARY KEY, secret bytea NOT NULL);
CREATE TABLE naive.code (
  serial bigint PRIMARY KEY,
  wallet bigint NOT NULL REFERENCES naive.account,
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE SEQUENCE naive.code_serial;
CREATE TABLE naive.journal (
  id bigserial PRIMARY KEY,
  debit bigint NOT NULL, credit bigint NOT NULL, amount bigint NOT NULL,
  kind text NOT NULL, reference text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, reference)
);
CREATE TABLE naive.payment (
  journal_id bigint PRIMARY KEY REFERENCES naive.journal,
  merchant bigint NOT NULL, order_ref text NOT NULL, wallet bigint NOT NULL,
  amount bigint NOT NULL,
  UNIQUE (merchant, order_ref)
);
CREATE TABLE naive.interaction (
  consumer bigint NOT NULL, merchant bigint NOT NULL,
  amount bigint NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON naive.interaction (consumer, merchant, occurred_at);
CREATE TABLE naive.rule (merchant bigint PRIMARY KEY, min_payments int NOT NULL, within interval NOT NULL);
CREATE TABLE naive.association (
  consumer bigint, merchant bigint, established_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, merchant)
);

INSERT INTO naive.signing_key VALUES (1, public.gen_random_bytes(32));
INSERT INTO naive.account SELECT g, 'bw' || g, false, 100000000 FROM generate_series(1, 100000) g;
INSERT INTO naive.account SELECT 100000 + g, 'gh_b' || g, true, 0 FROM generate_series(1, 1000) g;
INSERT INTO naive.rule SELECT 100000 + g, 1, '30 days' FROM generate_series(901, 1000) g;

CREATE FUNCTION naive.mac(serial bigint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT lpad((('x' || substr(encode(public.hmac(convert_to(serial::text, 'UTF8'), k.secret, 'sha256'), 'hex'), 1, 12))::bit(48)::bigint
               % 10000000)::text, 7, '0')
    FROM naive.signing_key k WHERE k.id = 1
$$;

CREATE FUNCTION naive.request_payment(wallet bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  s bigint := nextval('naive.code_serial');
BEGIN
  INSERT INTO naive.code (serial, wallet, expires_at) VALUES (s, wallet, now() + interval '60 seconds');
  RETURN lpad(s::text, 11, '0') || naive.mac(s);
END $$;

CREATE FUNCTION naive.charge(merchant bigint, code text, amount bigint, order_ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
  w bigint;
  jid bigint;
  r naive.rule;
  n bigint;
BEGIN
  IF code !~ '^[0-9]{18}$' THEN
    RAISE EXCEPTION 'malformed code' USING ERRCODE = '22023';
  END IF;
  s := substr(code, 1, 11)::bigint;
  IF substr(code, 12, 7) <> naive.mac(s) THEN
    RAISE EXCEPTION 'invalid code' USING ERRCODE = '22023';
  END IF;
  UPDATE naive.code c SET used_at = now()
   WHERE c.serial = s AND c.used_at IS NULL AND c.expires_at > now()
  RETURNING c.wallet INTO w;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'code used or expired' USING ERRCODE = '22023';
  END IF;
  UPDATE naive.account a SET balance = a.balance - amount
   WHERE a.id = w AND a.balance >= amount;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'insufficient funds' USING ERRCODE = '22023';
  END IF;
  UPDATE naive.account a SET balance = a.balance + amount WHERE a.id = merchant AND a.is_merchant;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such merchant' USING ERRCODE = '22023';
  END IF;
  INSERT INTO naive.journal (debit, credit, amount, kind, reference)
    VALUES (w, merchant, amount, 'charge', merchant || ':' || order_ref)
  RETURNING id INTO jid;
  INSERT INTO naive.payment VALUES (jid, merchant, order_ref, w, amount);
  INSERT INTO naive.interaction (consumer, merchant, amount) VALUES (w, merchant, amount);
  SELECT * INTO r FROM naive.rule WHERE rule.merchant = charge.merchant;
  IF FOUND THEN
    SELECT count(*) INTO n FROM naive.interaction i
     WHERE i.consumer = w AND i.merchant = charge.merchant
       AND i.occurred_at > now() - r.within;
    IF n >= r.min_payments THEN
      INSERT INTO naive.association (consumer, merchant) VALUES (w, charge.merchant)
        ON CONFLICT DO NOTHING;
    END IF;
  END IF;
  RETURN jid;
END $$;
VACUUM ANALYZE naive.account;
