-- Interactions and automatic association: the rule at and just below each
-- bound, the window's edges, what does not count, default and specific
-- rules, consent, back-fill, bad input, and the plan that keeps the
-- trigger's cost at O(log n + k).
SET TIME ZONE 'UTC';

-- Interactions, rules and manual associations name merchants that exist.
SELECT count(payext.open_merchant(p, p)) AS merchants
  FROM unnest(ARRAY['gh_assoc_tea', 'gh_assoc_bakery']) AS p;

-- No rule, no association.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 100,
                                 '2026-01-01 10:00') > 0 AS recorded;
SELECT count(*) AS associations FROM payext.association WHERE public_service_id = 'gh_assoc_tea';

-- The tea house: 3 payments within 30 days, together at least 50.00.
SELECT payext.set_association_rule(public_service_id => 'gh_assoc_tea', min_interactions => 3,
                                   within => '30 days', min_total_amount => 5000);
-- Ann: three payments, the first exactly 30 days before the third: out.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 2000, '2026-01-16 10:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 2999, '2026-01-31 10:00') > 0 AS recorded;
SELECT count(*) AS associations FROM payext.association WHERE consumer = 'assoc_ann';
-- (Had the edge been in, that was 3 payments and 50.99.)  One microsecond
-- inside the window makes three, but 0 + 20.00 + 29.99 is one fen short.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 0, '2026-01-01 10:00:00.000001') > 0 AS recorded;
SELECT count(*) AS associations FROM payext.association WHERE consumer = 'assoc_ann';
-- Visits, coupons and refunds are not payments, whatever their amount.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'visit', 0, '2026-01-31 11:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'refund', 99999, '2026-01-31 11:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'coupon_redeemed', 99999, '2026-01-31 11:00') > 0 AS recorded;
SELECT count(*) AS associations FROM payext.association WHERE consumer = 'assoc_ann';
-- One more fen, at the same time as the newest: exactly 50.00, and the
-- association dates from then.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 1, '2026-01-31 10:00') > 0 AS recorded;
SELECT consumer, public_service_id, established_at, how,
       rule_id = (SELECT id FROM payext.association_rule
                   WHERE public_service_id = 'gh_assoc_tea' AND superseded_at IS NULL) AS current_rule
  FROM payext.association WHERE consumer = 'assoc_ann';
-- Once associated, more payments change nothing.
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'payment', 5000, '2026-02-02 09:00') > 0 AS recorded;
SELECT established_at FROM payext.association WHERE consumer = 'assoc_ann';

-- Payments arriving out of order (an offline import) are judged by the
-- windows they fall in: Bob's third payment is imported last but dated
-- first, and the association dates from when history first met the rule.
SELECT payext.record_interaction('assoc_bob', 'gh_assoc_tea', 'payment', 2000, '2026-03-10 12:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_bob', 'gh_assoc_tea', 'payment', 2000, '2026-03-20 12:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_bob', 'gh_assoc_tea', 'payment', 2000, '2026-03-01 12:00') > 0 AS recorded;
SELECT consumer, established_at FROM payext.association WHERE consumer = 'assoc_bob';

-- A default rule serves merchants without their own: 2 payments in 7 days.
SELECT payext.set_association_rule(NULL, 2, '7 days');
SELECT payext.record_interaction('assoc_cat', 'gh_assoc_bakery', 'payment', 1, '2026-04-01 08:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_cat', 'gh_assoc_bakery', 'payment', 1, '2026-04-07 08:00') > 0 AS recorded;
SELECT consumer, public_service_id, established_at FROM payext.association WHERE consumer = 'assoc_cat';
-- ...but not the tea house, whose own rule asks for more.
SELECT payext.record_interaction('assoc_cat', 'gh_assoc_tea', 'payment', 1, '2026-04-01 08:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_cat', 'gh_assoc_tea', 'payment', 1, '2026-04-02 08:00') > 0 AS recorded;
SELECT count(*) AS tea_associations FROM payext.association
 WHERE consumer = 'assoc_cat' AND public_service_id = 'gh_assoc_tea';

-- Consent.  Dan opts out before he meets the bakery's rule: never linked.
SELECT payext.opt_out(consumer => 'assoc_dan', public_service_id => 'gh_assoc_bakery');
SELECT payext.record_interaction('assoc_dan', 'gh_assoc_bakery', 'payment', 1, '2026-04-01 08:00') > 0 AS recorded;
SELECT payext.record_interaction('assoc_dan', 'gh_assoc_bakery', 'payment', 1, '2026-04-02 08:00') > 0 AS recorded;
SELECT count(*) AS dan_associations FROM payext.association WHERE consumer = 'assoc_dan';
SELECT payext.evaluate_associations('gh_assoc_bakery') AS created;
SELECT payext.associate('assoc_dan', 'gh_assoc_bakery');
\echo :SQLSTATE
-- Cat opts out after: the association goes, and stays gone.
SELECT payext.opt_out('assoc_cat', 'gh_assoc_bakery');
SELECT payext.opt_out('assoc_cat', 'gh_assoc_bakery');
SELECT payext.record_interaction('assoc_cat', 'gh_assoc_bakery', 'payment', 1, '2026-04-08 08:00') > 0 AS recorded;
SELECT count(*) AS cat_associations FROM payext.association
 WHERE consumer = 'assoc_cat' AND public_service_id = 'gh_assoc_bakery';
SELECT consumer, public_service_id FROM payext.association_opt_out ORDER BY 1;
-- Opting in again lifts the block; the next payment, or a back-fill, links.
SELECT payext.opt_in('assoc_cat', 'gh_assoc_bakery');
SELECT payext.evaluate_associations('gh_assoc_bakery') AS created;
SELECT consumer, established_at, how FROM payext.association
 WHERE consumer = 'assoc_cat' AND public_service_id = 'gh_assoc_bakery';
-- By hand.
SELECT payext.associate('assoc_eve', 'gh_assoc_bakery');
SELECT payext.associate('assoc_eve', 'gh_assoc_bakery');
SELECT consumer, how, rule_id FROM payext.association WHERE consumer = 'assoc_eve';

-- Back-fill after a rule change: the tea house now asks for 2 in 30 days.
SELECT payext.set_association_rule('gh_assoc_tea', 2, '30 days');
SELECT count(*) AS rule_versions, count(*) FILTER (WHERE superseded_at IS NULL) AS current
  FROM payext.association_rule WHERE public_service_id = 'gh_assoc_tea';
SELECT payext.evaluate_associations('gh_assoc_tea') AS created;
SELECT payext.evaluate_associations('gh_assoc_tea') AS created_again;
SELECT payext.evaluate_associations() AS created_anywhere;
SELECT consumer, established_at FROM payext.association
 WHERE public_service_id = 'gh_assoc_tea' ORDER BY consumer;
SELECT payext.drop_association_rule('gh_assoc_tea') AS dropped,
       payext.drop_association_rule('gh_assoc_tea') AS dropped_again;

-- Charges and refunds leave interactions of their own.
SELECT payext.open_wallet('assoc_fay', 'GBP') AS w \gset
SELECT payext.open_merchant('gh_assoc_pub', 'The Pub', 'GBP') AS m \gset
SELECT payext.top_up(:w, 10000, 'assoc-bank-1') > 0 AS topped_up;
SELECT payext.charge(:m, payext.request_payment(:w), 1200, 'pub-1') AS t1 \gset
SELECT payext.refund(:m, 'pub-1', 200, 'pub-1-r') AS r1 \gset
SELECT kind, consumer, public_service_id, amount, currency,
       transfer_id = :t1 AS is_charge, transfer_id = :r1 AS is_refund,
       occurred_at = recorded_at AS at_transfer_time
  FROM payext.interaction WHERE public_service_id = 'gh_assoc_pub' ORDER BY id;
-- The default rule (2 in 7 days) links Fay at her second charge.
SELECT payext.charge(:m, payext.request_payment(:w), 300, 'pub-2') > 0 AS charged;
SELECT consumer, how FROM payext.association WHERE public_service_id = 'gh_assoc_pub';

-- Analysts' views.
SELECT consumer, interactions, payments, payment_amount, refund_amount,
       first_at, last_at, associated, how, opted_out
  FROM payext.consumer_merchant WHERE public_service_id = 'gh_assoc_bakery' ORDER BY consumer;
SELECT * FROM payext.merchant_summary WHERE public_service_id = 'gh_assoc_bakery';
SELECT * FROM payext.merchant_daily WHERE public_service_id = 'gh_assoc_bakery' ORDER BY day;

-- Bad input: each refusal has its own SQLSTATE.
SELECT payext.set_association_rule('gh_assoc_tea', 0, '1 day');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 100001, '1 day');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 1, '0 seconds');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 1, '-1 day');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 1, '3661 days');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 1, '1 month');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', 1, '1 day', -1);
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_tea', NULL, '1 day');
\echo :SQLSTATE
SELECT payext.set_association_rule('', 1, '1 day');
\echo :SQLSTATE
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'Visit');
\echo :SQLSTATE
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'visit', -1);
\echo :SQLSTATE
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'visit', 0, now() + interval '1 hour');
\echo :SQLSTATE
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_tea', 'visit', 0, 'infinity');
\echo :SQLSTATE
SELECT payext.record_interaction('assoc_ann', NULL, 'visit');
\echo :SQLSTATE
SELECT payext.opt_out('assoc_ann', '');
\echo :SQLSTATE
-- A public-service id no merchant has: no history, rule or association
-- collects under a look-alike of a real one (PY305).
SELECT payext.record_interaction('assoc_ann', 'gh_assoc_te', 'visit');
\echo :SQLSTATE
SELECT payext.set_association_rule('gh_assoc_te', 1, '1 day');
\echo :SQLSTATE
SELECT payext.associate('assoc_ann', 'gh_assoc_te');
\echo :SQLSTATE
-- ... nor under one that differs by an invisible character (PY004).
SELECT payext.record_interaction('assoc_ann', E'gh_assoc\u200Btea', 'visit');
\echo :SQLSTATE
SELECT payext.associate(E'assoc_\u202Eann', 'gh_assoc_tea');
\echo :SQLSTATE

-- The trigger's window query, among 40 000 other interactions: an index
-- range scan of one pair's payments, not a scan of anybody's history.
INSERT INTO payext.interaction (id, consumer, public_service_id, kind, amount,
                                occurred_at, recorded_at)
SELECT -g, 'assoc_crowd_' || (g % 2000), 'gh_assoc_crowd_' || (g % 50), 'payment', 1,
       '2026-01-01'::timestamptz + g * interval '1 minute', '2026-01-01'
  FROM generate_series(1, 40000) AS g;
ANALYZE payext.interaction;
EXPLAIN (COSTS OFF)
SELECT occurred_at, amount FROM payext.interaction
 WHERE consumer = 'assoc_ann' AND public_service_id = 'gh_assoc_tea' AND kind = 'payment'
   AND occurred_at > '2026-01-01' AND occurred_at < '2026-03-01'
 ORDER BY occurred_at;

-- The default rule goes, so that the stories after this one start without.
SELECT payext.drop_association_rule(NULL) AS dropped_default;
