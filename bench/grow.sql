-- Adds :rows journal rows and :rows payment interactions to the growth
-- database in bulk, the way years of trade would have left them: transfers
-- between the growth wallets in pairs that cancel out (so balances, and
-- verify_ledger(), stay right), each with its checksum, and interactions
-- of every consumer with every merchant over the past year.  The
-- interaction trigger is bypassed for the bulk load (it would evaluate
-- rules that do not exist here) and the per-pair summary is rebuilt from
-- the rows, as the trigger would have kept it.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';

INSERT INTO payext.transfer (id, debit_account, credit_account, amount, currency, kind,
                             idem_scope, reference, created_at, checksum)
SELECT id, d, c, 1, 'CNY', 'transfer', 0, NULL, at,
       payext.transfer_checksum(id, d, c, 1, 'CNY', 'transfer', 0, NULL, at)
  FROM (SELECT nextval('payext.transfer_id_seq') AS id,
               1 + (g / 2) % 2000 AS a, 1 + (g / 2 + 1) % 2000 AS b, g,
               now() - make_interval(secs => (:rows - g) * 3) AS at
          FROM generate_series(0, (:rows / 2) * 2 - 1) g) s,
       LATERAL (SELECT CASE WHEN g % 2 = 0 THEN a ELSE b END AS d,
                       CASE WHEN g % 2 = 0 THEN b ELSE a END AS c) p;

SET session_replication_role = replica;
INSERT INTO payext.interaction (id, consumer, public_service_id, kind, amount, currency,
                                occurred_at, transfer_id, recorded_at)
SELECT nextval('payext.interaction_id_seq'), 'gw' || (1 + g % 2000), 'gh_g' || (1 + g / 2000 % 100),
       'payment', 100, 'CNY', now() - make_interval(secs => (g % 31536000)), NULL,
       now() - make_interval(secs => (g % 31536000))
  FROM generate_series(1, :rows) g;
SET session_replication_role = origin;

INSERT INTO payext.interaction_pair AS p
       (consumer, public_service_id, interactions, payments, payment_amount, refund_amount,
        first_at, last_at)
SELECT consumer, public_service_id, count(*), count(*) FILTER (WHERE kind = 'payment'),
       coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0),
       coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
       min(occurred_at), max(occurred_at)
  FROM payext.interaction GROUP BY 1, 2
ON CONFLICT (consumer, public_service_id) DO UPDATE
   SET interactions = excluded.interactions, payments = excluded.payments,
       payment_amount = excluded.payment_amount, refund_amount = excluded.refund_amount,
       first_at = excluded.first_at, last_at = excluded.last_at;
VACUUM ANALYZE;
