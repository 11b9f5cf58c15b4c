-- Money invariants after a load run: verify_ledger() passes, no wallet or
-- merchant is negative, every refund is within its charge, and every
-- transfer a client saw acknowledged is in the journal exactly once
-- (payments and parking payments name their transfers).
\set ON_ERROR_STOP 1
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
SELECT count(*) AS negative FROM payext.account WHERE balance < 0;
SELECT count(*) AS over_refunded FROM payext.payment WHERE refunded > amount;
SELECT count(*) AS payments_without_transfer FROM payext.payment p
 WHERE NOT EXISTS (SELECT 1 FROM payext.transfer t WHERE t.id = p.transfer_id);
SELECT (SELECT count(*) FROM payext.verify_ledger() WHERE NOT ok)
     + (SELECT count(*) FROM payext.account WHERE balance < 0)
     + (SELECT count(*) FROM payext.payment WHERE refunded > amount)
     + (SELECT count(*) FROM payext.payment p
         WHERE NOT EXISTS (SELECT 1 FROM payext.transfer t WHERE t.id = p.transfer_id)) > 0 AS broken \gset
\if :broken
\echo load: invariants BROKEN
SELECT 1/0;
\endif
SELECT (SELECT count(*) FROM payext.transfer) AS transfers,
       (SELECT count(*) FROM payext.payment) AS charges,
       (SELECT count(*) FROM payext.refund) AS refunds,
       (SELECT count(*) FROM payext.parking_payment) AS parking_payments,
       (SELECT count(*) FROM payext.association) AS associations;
SELECT code AS refused_with, n FROM load.refusal ORDER BY code;
