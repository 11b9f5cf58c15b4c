-- payext: interactions between consumers and merchants, and automatic
-- association with the merchant's official account.

---------------------------------------------------------------------------
-- Interactions
---------------------------------------------------------------------------

CREATE SEQUENCE payext.interaction_id_seq AS bigint;

CREATE TABLE payext.interaction (
  id                bigint PRIMARY KEY,
  consumer          text NOT NULL,
  public_service_id text NOT NULL,
  kind              text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
  amount            bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
  currency          text CHECK (currency ~ '^[A-Z]{3}$'),
  occurred_at       timestamptz NOT NULL,
  -- the payment that made it; no foreign key, as for payext.payment
  -- (verify_payments() checks it)
  transfer_id       bigint,
  recorded_at       timestamptz NOT NULL
);
-- The rule's window: a range scan of one pair's payments, O(log n + k).
CREATE INDEX interaction_pair_payments_idx
  ON payext.interaction (consumer, public_service_id, occurred_at) INCLUDE (amount)
  WHERE kind = 'payment';
-- Analysts' per-merchant, per-day questions.
CREATE INDEX interaction_merchant_day_idx
  ON payext.interaction (public_service_id, ((occurred_at AT TIME ZONE 'UTC')::date));
-- No index on transfer_id: no query of payext looks an interaction up by
-- its transfer; an index entry per payment for nothing.
COMMENT ON TABLE payext.interaction IS
  'what happened between a consumer (social-app id) and a merchant (public-service id): payments, refunds, visits, ...';

-- One row per consumer and merchant, kept by the interaction trigger: the
-- analysts' per-pair figures, and the row whose lock serialises the rule's
-- evaluation for one pair.
CREATE TABLE payext.interaction_pair (
  consumer          text NOT NULL,
  public_service_id text NOT NULL,
  interactions      bigint NOT NULL,
  payments          bigint NOT NULL,
  payment_amount    numeric NOT NULL,
  refund_amount     numeric NOT NULL,
  first_at          timestamptz NOT NULL,
  last_at           timestamptz NOT NULL,
  PRIMARY KEY (consumer, public_service_id)
);
CREATE INDEX interaction_pair_merchant_idx ON payext.interaction_pair (public_service_id);
COMMENT ON TABLE payext.interaction_pair IS
  'per consumer and merchant: counts, amounts, first and last interaction (kept by a trigger)';

---------------------------------------------------------------------------
-- Rules, associations, consent
---------------------------------------------------------------------------

CREATE SEQUENCE payext.association_rule_id_seq AS bigint;

-- Every version of every rule is kept, so that an association names the
-- rule that made it; the current one has superseded_at NULL.
CREATE TABLE payext.association_rule (
  id                bigint PRIMARY KEY,
  public_service_id text,           -- NULL: the default rule
  min_interactions  integer NOT NULL CHECK (min_interactions BETWEEN 1 AND 100000),
  within            interval NOT NULL CHECK (within >= interval '1 second'),
  min_total_amount  bigint NOT NULL DEFAULT 0 CHECK (min_total_amount >= 0),
  created_at        timestamptz NOT NULL,
  superseded_at     timestamptz
);
CREATE UNIQUE INDEX association_rule_current_key
  ON payext.association_rule (public_service_id) NULLS NOT DISTINCT
  WHERE superseded_at IS NULL;
COMMENT ON TABLE payext.association_rule IS
  'association rules, every version; public_service_id NULL is the default for merchants without one';

-- Association and consent in one row per consumer and merchant, so that
-- an opt-out and an automatic association racing each other meet at the
-- primary key: whichever comes second waits for the first and then does
-- nothing (READ COMMITTED) or gets 40001 (REPEATABLE READ, SERIALIZABLE).
CREATE TABLE payext.association_state (
  consumer          text NOT NULL,
  public_service_id text NOT NULL,
  state             text NOT NULL CHECK (state IN ('associated', 'opted_out')),
  established_at    timestamptz,
  how               text CHECK (how IN ('auto', 'manual')),
  rule_id           bigint REFERENCES payext.association_rule (id),
  changed_at        timestamptz NOT NULL,
  PRIMARY KEY (consumer, public_service_id),
  CONSTRAINT association_state_associated
    CHECK ((state = 'associated') = (established_at IS NOT NULL AND how IS NOT NULL)),
  CONSTRAINT association_state_rule_if_auto
    CHECK ((how = 'auto') = (rule_id IS NOT NULL))
);
CREATE INDEX association_state_merchant_idx
  ON payext.association_state (public_service_id, ((established_at AT TIME ZONE 'UTC')::date))
  WHERE state = 'associated';
COMMENT ON TABLE payext.association_state IS
  'per consumer and merchant: associated (by rule or by hand) or opted out; see the views association and association_opt_out';

CREATE VIEW payext.association AS
SELECT s.consumer, s.public_service_id, s.established_at, s.how, s.rule_id,
       s.changed_at AS created_at
  FROM payext.association_state s
 WHERE s.state = 'associated';
COMMENT ON VIEW payext.association IS
  'consumers linked to a merchant''s official account: by rule (auto, with the rule version that fired) or by hand (manual)';

CREATE VIEW payext.association_opt_out AS
SELECT s.consumer, s.public_service_id, s.changed_at AS opted_out_at
  FROM payext.association_state s
 WHERE s.state = 'opted_out';
COMMENT ON VIEW payext.association_opt_out IS
  'consumers who refused association with a merchant; no rule links them while listed';

SELECT pg_catalog.pg_extension_config_dump('payext.interaction', '');
SELECT pg_catalog.pg_extension_config_dump('payext.interaction_pair', '');
SELECT pg_catalog.pg_extension_config_dump('payext.association_rule', '');
SELECT pg_catalog.pg_extension_config_dump('payext.association_state', '');
SELECT pg_catalog.pg_extension_config_dump('payext.interaction_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payext.association_rule_id_seq', '');

---------------------------------------------------------------------------
-- The trigger and the functions
---------------------------------------------------------------------------

CREATE FUNCTION payext.interaction_recorded()
RETURNS trigger
AS 'MODULE_PATHNAME', 'payext_interaction_recorded'
LANGUAGE C
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.interaction_recorded() IS
  'keeps interaction_pair and evaluates the association rule, in the interaction''s transaction';

CREATE TRIGGER interaction_recorded
  AFTER INSERT ON payext.interaction
  FOR EACH ROW EXECUTE FUNCTION payext.interaction_recorded();

CREATE FUNCTION payext.record_interaction(consumer text, public_service_id text, kind text,
                                          amount bigint DEFAULT 0,
                                          occurred_at timestamptz DEFAULT now())
RETURNS bigint
AS 'MODULE_PATHNAME', 'payext_record_interaction'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.record_interaction(text, text, text, bigint, timestamptz) IS
  'records an interaction that happened elsewhere (a visit, a coupon, an offline purchase); returns its id';

CREATE FUNCTION payext.set_association_rule(public_service_id text, min_interactions integer,
                                            within interval, min_total_amount bigint DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_set_association_rule'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.set_association_rule(text, integer, interval, bigint) IS
  'the rule that links a consumer to a merchant; public_service_id NULL sets the default rule';

CREATE FUNCTION payext.drop_association_rule(public_service_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'payext_drop_association_rule'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.drop_association_rule(text) IS
  'retires a merchant''s rule (NULL: the default); existing associations stay; true if there was one';

CREATE FUNCTION payext.evaluate_associations(public_service_id text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'payext_evaluate_associations'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.evaluate_associations(text) IS
  're-evaluates history against the current rules (one merchant, or all); returns how many associations it created';

CREATE FUNCTION payext.opt_out(consumer text, public_service_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_opt_out'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.opt_out(text, text) IS
  'removes the consumer''s association with the merchant and keeps it from being made again';

CREATE FUNCTION payext.opt_in(consumer text, public_service_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_opt_in'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.opt_in(text, text) IS
  'lifts an opt-out; the next payment, or evaluate_associations(), may associate again';

CREATE FUNCTION payext.associate(consumer text, public_service_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'payext_associate'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, payext, pg_temp;
COMMENT ON FUNCTION payext.associate(text, text) IS
  'links a consumer to a merchant by hand (refused when the consumer opted out)';
