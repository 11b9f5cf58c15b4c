-- The checker of the load and crash tests: proves, from the clients' own
-- record of what the server acknowledged, that nothing acknowledged was
-- lost and nothing was paid twice (nor a hold captured beyond what it
-- holds); and, independently of verify_ledger(), that the ledger adds up
-- and no wallet holds less than its live holds reserve.  Run by
-- test/load/verify.sh:
--
--   cat LOGDIR/*.acks | psql -v exact=on|off -f test/load/verify.sql
--
-- Standard input: the drivers' .acks lines (format in test/load/driver.c).
-- exact=on (a load run without a crash) also recomputes every balance from
-- the opening balances and the acknowledged calls.  Every check that finds
-- something adds rows to `failure`; any row fails the run (exit status 3).
--
-- router=on: the load ran through a router (test/load/run.sh's router
-- mode), and this runs on the router's database.  Its relations are views
-- of every partition's rows, read once into temporary tables of the same
-- names (the relations are named unqualified, temporary ones first); a
-- merchant's or a lot's id at the router stands for its account or lot on
-- each partition (payext.merchant_account, payext.lot_map), and a stay
-- paid from a wallet of another partition is paid through the stay
-- partition's clearing account.  On a single node each id is its own.
-- A router has no view of the holds' captures: verify.sh copies every
-- partition's payext.hold_capture into load.hold_capture first.
--
-- Holds are read once, at the start (payext.hold shows them as of now():
-- a short hold may expire while the checks run).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\if :{?router}
\else
\set router off
\endif
SET search_path = pg_temp, payext, pg_catalog;
\if :router
CREATE TEMP TABLE account AS SELECT * FROM payext.account;
CREATE TEMP TABLE transfer AS SELECT * FROM payext.transfer;
CREATE TEMP TABLE payment AS SELECT * FROM payext.payment;
CREATE TEMP TABLE refund AS SELECT * FROM payext.refund;
CREATE TEMP TABLE merchant_credit AS SELECT * FROM payext.merchant_credit;
CREATE TEMP TABLE parking_stay AS SELECT * FROM payext.parking_stay;
CREATE TEMP TABLE parking_payment AS SELECT * FROM payext.parking_payment;
-- A router has no live codes to read: none, as after their purge.
CREATE TEMP TABLE payment_code (serial bigint, code bigint);
CREATE TEMP TABLE merchant_map AS
SELECT merchant, partition_number AS part, account FROM payext.merchant_account;
CREATE TEMP TABLE lot_ids AS SELECT lot, local_lot FROM payext.lot_map;
CREATE TEMP TABLE hold_capture AS SELECT transfer_id, hold, amount FROM load.hold_capture;
CREATE INDEX ON transfer (id);
ANALYZE account, transfer, payment, refund, merchant_credit, parking_stay, parking_payment;
\else
CREATE TEMP TABLE hold_capture AS SELECT transfer_id, hold, amount FROM payext.hold_capture;
CREATE TEMP TABLE merchant_map AS
SELECT id AS merchant, 0 AS part, id AS account FROM payext.account WHERE kind = 'merchant';
CREATE TEMP TABLE lot_ids AS SELECT id AS lot, id AS local_lot FROM payext.parking_lot;
\endif
CREATE INDEX ON merchant_map (merchant, part);
CREATE TEMP TABLE hold AS SELECT * FROM payext.hold;
CREATE INDEX ON hold (id);
CREATE INDEX ON hold (wallet);
CREATE INDEX ON hold_capture (transfer_id);
CREATE INDEX ON hold_capture (hold);
ANALYZE merchant_map, hold, hold_capture;

CREATE TEMP TABLE ack (
  client      text,
  call        text,     -- top_up, charge_retry, auto_pay, exit, ... (driver.c)
  kind        text,     -- the journal's kind of the returned transfer; NULL: camera events
  ref         text,     -- external_ref, order_ref, refund_ref, or the plate
  transfer_id bigint,
  wallet      bigint,
  merchant    bigint,   -- merchant account, or the lot's operator
  amount      bigint,   -- what moved; the fee for an exit
  code        text,     -- the payment code of a charge or a hold
  order_ref   text,     -- the charge a refund belongs to; a capture's hold's order
  stay        bigint,
  lot         bigint,
  at_epoch    bigint,
  hold        bigint    -- the hold of an authorize, a capture, a void
);
\copy ack FROM pstdin
CREATE INDEX ON ack (transfer_id);

-- Each acknowledged movement of money and the call it answers: retries of
-- one call (same reference) share a key, and must share one transfer.  A
-- stay is one call: this workload pays a stay once, at exit or after it.
-- merchant_here: the merchant's account on the transfer's partition.
CREATE TEMP VIEW ack_money AS
SELECT a.*,
       coalesce((SELECT mm.account FROM merchant_map mm
                  WHERE mm.merchant = a.merchant AND mm.part = a.transfer_id >> 56),
                a.merchant) AS merchant_here,
       CASE a.kind
         WHEN 'top_up'   THEN format('top_up %s', a.ref)
         WHEN 'withdraw' THEN format('withdraw %s', a.ref)
         WHEN 'charge'   THEN format('charge %s %s', a.merchant, a.order_ref)
         WHEN 'refund'   THEN format('refund %s %s', a.merchant, a.ref)
         WHEN 'parking'  THEN format('parking stay %s', a.stay)
         WHEN 'capture'  THEN format('capture %s %s', a.merchant, a.ref)
       END AS call_key
  FROM ack a
 WHERE a.transfer_id IS NOT NULL;

-- One acknowledged transfer per id (retries collapsed).
CREATE TEMP TABLE ack_transfer AS
SELECT DISTINCT ON (transfer_id) * FROM ack_money ORDER BY transfer_id, call;

CREATE TEMP TABLE failure (check_name text, detail text);

-- What each account holds: its row's balance, plus, for a merchant, the
-- payments still in its credit buckets (payext.balance() adds the
-- same).  NULL for system accounts, which store none.
CREATE TEMP VIEW held AS
SELECT a.id, a.kind, a.currency,
       a.balance::numeric + coalesce((SELECT sum(c.amount) FROM merchant_credit c
                                       WHERE c.account = a.id), 0) AS balance
  FROM account a;

-- 1. The extension's own verdict; with holds in the database, their checks
-- among it.
CREATE TEMP TABLE verified AS SELECT * FROM payext.verify_ledger();
INSERT INTO failure
SELECT 'verify_ledger', v.check_name || ': ' || v.detail
  FROM verified v WHERE NOT v.ok;
INSERT INTO failure
SELECT 'verify_ledger', format('no check %s, though there are %s holds', n, (SELECT count(*) FROM hold))
  FROM unnest(ARRAY['holds_match_journal', 'available_not_negative']) AS n
 WHERE EXISTS (SELECT 1 FROM hold) AND NOT EXISTS (SELECT 1 FROM verified v WHERE v.check_name = n);

-- 2. No wallet or merchant below zero.
INSERT INTO failure
SELECT 'negative_balance', format('%s account %s holds %s', a.kind, a.id, a.balance)
  FROM held a WHERE a.kind NOT IN ('system', 'clearing') AND a.balance < 0;
INSERT INTO failure
SELECT 'negative_balance', format('bucket %s of merchant %s holds %s', c.bucket, c.account, c.amount)
  FROM merchant_credit c WHERE c.amount < 0;

-- 3. The journal balances, recomputed here rather than trusted to
-- verify_ledger().  The journal is single-row double entry: each transfer
-- debits one account and credits another by the same amount.  So "debits
-- equal credits per currency" holds if every row is well-formed (amount
-- above zero, two different accounts, both of the row's currency) and,
-- summed per account currency, the debits and credits of all accounts
-- cancel out (a row joining two currencies would leave one side short).
INSERT INTO failure
SELECT 'journal_row_malformed',
       format('transfer %s: %s -> %s, %s %s', t.id, t.debit_account, t.credit_account, t.amount, t.currency)
  FROM transfer t
  LEFT JOIN account d ON d.id = t.debit_account
  LEFT JOIN account c ON c.id = t.credit_account
 WHERE t.amount <= 0 OR t.debit_account = t.credit_account
    OR d.id IS NULL OR c.id IS NULL
    OR d.currency <> t.currency OR c.currency <> t.currency;

INSERT INTO failure
SELECT 'debits_differ_from_credits',
       format('%s: debits %s, credits %s', x.currency, x.debits, x.credits)
  FROM (SELECT a.currency,
               sum(CASE WHEN a.id = t.debit_account THEN t.amount::numeric ELSE 0 END) AS debits,
               sum(CASE WHEN a.id = t.credit_account THEN t.amount::numeric ELSE 0 END) AS credits
          FROM transfer t
          JOIN account a ON a.id IN (t.debit_account, t.credit_account)
         GROUP BY a.currency) x
 WHERE x.debits <> x.credits;

-- ... and every stored balance is what the journal says (credits - debits).
INSERT INTO failure
SELECT 'balance_differs_from_journal',
       format('account %s holds %s, its journal says %s', a.id, a.balance, coalesce(j.net, 0))
  FROM held a
  LEFT JOIN (SELECT m.account, sum(m.delta) AS net
               FROM (SELECT debit_account AS account, -amount::numeric AS delta FROM transfer
                     UNION ALL
                     SELECT credit_account, amount::numeric FROM transfer) m
              GROUP BY m.account) j ON j.account = a.id
 WHERE a.kind NOT IN ('system', 'clearing') AND a.balance IS DISTINCT FROM coalesce(j.net, 0);

-- The journal's rows per (kind, scope, reference), counted once: looked up
-- per acknowledged call below (a count per call over the journal would take
-- time quadratic in the run's length).
CREATE TEMP TABLE transfer_reference AS
SELECT kind, idem_scope, reference, count(*) AS n
  FROM transfer WHERE reference IS NOT NULL GROUP BY kind, idem_scope, reference;
CREATE INDEX ON transfer_reference (kind, idem_scope, reference);
ANALYZE transfer_reference;

-- 4. Nothing acknowledged was lost: every acknowledged transfer id is in
-- the journal, once, as the movement the client asked for (kind, the
-- reference in its scope, accounts, amount), and its one row under that
-- reference; charges, refunds and parking payments also have their rows.
INSERT INTO failure
SELECT 'acknowledged_not_in_journal',
       format('%s %s %s: transfer %s %s', a.client, a.call, a.ref, a.transfer_id,
              CASE WHEN t.id IS NULL THEN 'is missing'
                   ELSE format('is %s %s (scope %s) %s -> %s %s', t.kind, t.reference,
                               t.idem_scope, t.debit_account, t.credit_account, t.amount) END)
  FROM ack_money a
  LEFT JOIN transfer t ON t.id = a.transfer_id
  LEFT JOIN account d ON d.id = t.debit_account
 WHERE t.id IS NULL
    OR t.kind IS DISTINCT FROM a.kind
    OR t.amount IS DISTINCT FROM a.amount
    OR NOT CASE a.kind
         WHEN 'top_up' THEN t.idem_scope = 0 AND t.reference = a.ref
                            AND t.credit_account = a.wallet
         WHEN 'withdraw' THEN t.idem_scope = 0 AND t.reference = a.ref
                            AND t.debit_account = coalesce(a.merchant_here, a.wallet)
         WHEN 'charge' THEN t.idem_scope = a.merchant_here AND t.reference = a.order_ref
                            AND t.debit_account = a.wallet AND t.credit_account = a.merchant_here
         WHEN 'refund' THEN t.idem_scope = a.merchant_here AND t.reference = a.ref
                            AND t.debit_account = a.merchant_here AND t.credit_account = a.wallet
         WHEN 'capture' THEN t.idem_scope = a.merchant_here AND t.reference = a.ref
                            AND t.debit_account = a.wallet AND t.credit_account = a.merchant_here
         -- parking references are 'stay-<stay>-<paid before>'; from a wallet
         -- of another partition, through the stay partition's clearing account
         WHEN 'parking' THEN t.idem_scope = a.merchant_here AND split_part(t.reference, '-', 2) = a.stay::text
                            AND (t.debit_account = a.wallet
                                 OR (d.kind = 'clearing' AND a.wallet >> 56 <> t.id >> 56))
                            AND t.credit_account = a.merchant_here
         ELSE false
       END
    OR coalesce((SELECT r.n FROM transfer_reference r
                  WHERE r.kind = t.kind AND r.idem_scope = t.idem_scope
                    AND r.reference = t.reference), 0) <> 1
    OR (a.kind = 'charge' AND NOT EXISTS (
          SELECT 1 FROM payment p LEFT JOIN payment_code pc ON pc.serial = p.code_serial
           WHERE p.transfer_id = a.transfer_id AND p.merchant = a.merchant_here
             AND p.order_ref = a.order_ref AND p.wallet = a.wallet AND p.amount = a.amount
             -- digits 3-17 of a code are its live row's code; the row may be
             -- gone (unlogged: a crash; or purged after expiry)
             AND (a.code IS NULL OR pc.serial IS NULL OR pc.code = substr(a.code, 3, 15)::bigint)))
    OR (a.kind = 'refund' AND NOT EXISTS (
          SELECT 1 FROM refund r JOIN payment p ON p.transfer_id = r.payment
           WHERE r.transfer_id = a.transfer_id AND r.refund_ref = a.ref AND r.amount = a.amount
             AND p.merchant = a.merchant_here AND p.order_ref = a.order_ref))
    OR (a.kind = 'parking' AND NOT EXISTS (
          SELECT 1 FROM parking_payment pp
           WHERE pp.transfer_id = a.transfer_id AND pp.stay = a.stay
             AND (pp.wallet = a.wallet OR pp.how = 'saga') AND pp.amount = a.amount));

-- ... and every acknowledged camera event: the stay exists, at its lot and
-- plate; an acknowledged exit left it exited with the fee it answered.
INSERT INTO failure
SELECT 'acknowledged_stay_changed',
       format('%s %s stay %s (plate %s, lot %s): %s', a.client, a.call, a.stay, a.ref, a.lot,
              coalesce(format('%s, fee %s', s.state, s.fee), 'missing'))
  FROM ack a
  LEFT JOIN parking_stay s ON s.id = a.stay
 WHERE (a.call LIKE 'enter%' OR a.call LIKE 'exit%')
   AND (s.id IS NULL OR s.lot NOT IN (SELECT l.local_lot FROM lot_ids l WHERE l.lot = a.lot)
        OR s.plate <> payext.normalize_plate(a.ref)
        OR (a.call LIKE 'exit%' AND (s.state <> 'exited' OR s.fee IS DISTINCT FROM coalesce(a.amount, 0))));

-- 5. One transfer answers one call: an id acknowledged for two different
-- calls means two requests were answered with one movement.
INSERT INTO failure
SELECT 'transfer_for_two_calls',
       format('transfer %s answered %s', a.transfer_id, string_agg(DISTINCT a.call_key, ' and '))
  FROM ack_money a GROUP BY a.transfer_id HAVING count(DISTINCT a.call_key) > 1;

-- 6. One call, one transfer: every retry (same reference, same request)
-- was answered with the first transfer; two ids mean it was done twice.
INSERT INTO failure
SELECT 'call_done_twice',
       format('%s answered with transfers %s', a.call_key,
              string_agg(DISTINCT a.transfer_id::text, ', '))
  FROM ack_money a GROUP BY a.call_key HAVING count(DISTINCT a.transfer_id) > 1;

-- 7. A code pays once: in the client's record (one order per code) and in
-- the database (one payment per code serial).
INSERT INTO failure
SELECT 'code_paid_twice', format('code %s paid %s', a.code, string_agg(DISTINCT a.call_key, ' and '))
  FROM ack_money a WHERE a.kind = 'charge' AND a.code IS NOT NULL
 GROUP BY a.code HAVING count(DISTINCT a.call_key) > 1;
INSERT INTO failure
SELECT 'code_paid_twice', format('code serial %s of partition %s has %s payments',
                                 p.code_serial, p.transfer_id >> 56, count(*))
  FROM payment p GROUP BY p.transfer_id >> 56, p.code_serial HAVING count(*) > 1;

-- 8. An order is charged once per merchant (the database's rows; the
-- client's side is check 6).
-- (Behind a router, once over all the merchant's accounts.)
INSERT INTO failure
SELECT 'order_paid_twice', format('merchant %s order %s has %s payments', m.merchant, p.order_ref, count(*))
  FROM payment p
  JOIN merchant_map m ON m.account = p.merchant
 GROUP BY m.merchant, p.order_ref HAVING count(*) > 1;

-- 9. A stay is paid once.  In the database: its payments add up to its
-- paid, never above its fee, and a stay of this workload (one the clients
-- saw enter) has at most one payment.  In the client's record: what it
-- saw paid for a stay is at most the fee its exit answered.
INSERT INTO failure
SELECT 'stay_paid_twice',
       format('stay %s: fee %s, paid %s, %s payment(s) adding up to %s', s.id, s.fee, s.paid, x.n, x.total)
  FROM parking_stay s
  JOIN (SELECT pp.stay, count(*) AS n, sum(pp.amount::numeric) AS total
          FROM parking_payment pp GROUP BY pp.stay) x ON x.stay = s.id
 WHERE x.total <> s.paid OR x.total > coalesce(s.fee, s.paid)
    OR (x.n > 1 AND s.id IN (SELECT a.stay FROM ack a WHERE a.call LIKE 'enter%'));
INSERT INTO failure
SELECT 'stay_paid_twice', format('stay %s: the clients saw %s paid, its exit answered a fee of %s',
                                 p.stay, p.total, e.fee)
  FROM (SELECT t.stay, sum(t.amount) AS total FROM ack_transfer t WHERE t.kind = 'parking'
         GROUP BY t.stay) p
  JOIN (SELECT a.stay, max(a.amount) AS fee FROM ack a WHERE a.call LIKE 'exit%' GROUP BY a.stay) e
    ON e.stay = p.stay
 WHERE p.total > coalesce(e.fee, 0);

-- 10. Refunds never exceed their charge: in the database (refund rows
-- against the payment, and the payment's refunded column) and in the
-- client's record (acknowledged refunds against the acknowledged charge).
INSERT INTO failure
SELECT 'refunds_exceed_charge',
       format('payment %s (order %s): amount %s, refunded %s, refund rows %s', p.transfer_id,
              p.order_ref, p.amount, p.refunded, coalesce(r.total, 0))
  FROM payment p
  LEFT JOIN (SELECT payment, sum(amount::numeric) AS total FROM refund GROUP BY payment) r
    ON r.payment = p.transfer_id
 WHERE coalesce(r.total, 0) > p.amount OR p.refunded > p.amount
    OR p.refunded::numeric <> coalesce(r.total, 0);
INSERT INTO failure
SELECT 'refunds_exceed_charge',
       format('order %s at merchant %s: charged %s, the clients saw %s refunded',
              r.order_ref, r.merchant, c.amount, r.total)
  FROM (SELECT t.merchant, t.order_ref, sum(t.amount) AS total FROM ack_transfer t
         WHERE t.kind = 'refund' GROUP BY t.merchant, t.order_ref) r
  LEFT JOIN (SELECT DISTINCT merchant, order_ref, amount FROM ack_transfer WHERE kind = 'charge') c
    ON c.merchant = r.merchant AND c.order_ref = r.order_ref
 WHERE c.amount IS NOT NULL AND r.total > c.amount;

-- 11. Load runs without a crash: every call either came back acknowledged
-- (and is in the record), was refused, or was rolled back by a conflict; no
-- one else moves money.  So each wallet and merchant holds exactly its
-- opening balance plus what the acknowledged transfers moved.  (After a
-- crash, a call in flight may have committed without an answer: skipped.)
\if :exact
INSERT INTO failure
SELECT 'balance_differs_from_record',
       format('account %s holds %s; opening %s and the acknowledged calls say %s',
              a.id, a.balance, o.balance, o.balance + coalesce(d.delta, 0))
  FROM held a
  JOIN load.opening o ON o.account = a.id
  LEFT JOIN (SELECT m.account, sum(m.delta) AS delta
               FROM (SELECT t.wallet AS account,
                            CASE t.kind WHEN 'top_up' THEN t.amount WHEN 'refund' THEN t.amount
                                        ELSE -t.amount END AS delta
                       FROM ack_transfer t WHERE t.wallet IS NOT NULL
                     UNION ALL
                     SELECT t.merchant_here,
                            CASE t.kind WHEN 'charge' THEN t.amount WHEN 'parking' THEN t.amount
                                        WHEN 'capture' THEN t.amount ELSE -t.amount END
                       FROM ack_transfer t WHERE t.merchant IS NOT NULL) m
              GROUP BY m.account) d ON d.account = a.id
 WHERE a.balance <> o.balance + coalesce(d.delta, 0);
INSERT INTO failure
SELECT 'balance_differs_from_record', format('account %s opened after the set-up', a.id)
  FROM account a
 WHERE a.kind NOT IN ('system', 'clearing')
   AND NOT EXISTS (SELECT 1 FROM load.opening o WHERE o.account = a.id);
\endif

-- 12. A batch item refused for its code (charge_many_refused: the code
-- paid another order, PY206, or the amount was above its cap, PY207)
-- changed nothing, and no later call may pay its order either (the client
-- never sends it another way): the order has no payment and no charge in
-- the journal.  (A refusal for funds, PY104, is not recorded: a retry may
-- charge it.)
INSERT INTO failure
SELECT 'refused_item_charged',
       format('%s: order %s at merchant %s (code %s, amount %s) was refused, but has %s',
              a.client, a.order_ref, a.merchant, a.code, a.amount,
              CASE WHEN p.transfer_id IS NOT NULL THEN format('payment %s', p.transfer_id)
                   ELSE format('transfer %s', t.id) END)
  FROM ack a
  LEFT JOIN merchant_map m ON m.merchant = a.merchant
  LEFT JOIN payment p ON p.merchant = m.account AND p.order_ref = a.order_ref
  LEFT JOIN transfer t ON t.kind = 'charge' AND t.idem_scope = m.account
                             AND t.reference = a.order_ref
 WHERE a.call = 'charge_many_refused' AND (p.transfer_id IS NOT NULL OR t.id IS NOT NULL);

-- 13. Holds.  The clients' record against the holds and their captures.
-- A hold's merchant is the merchant's account on the hold's partition.
CREATE TEMP VIEW ack_hold AS
SELECT a.*,
       coalesce((SELECT mm.account FROM merchant_map mm
                  WHERE mm.merchant = a.merchant AND mm.part = a.hold >> 56),
                a.merchant) AS merchant_here
  FROM ack a
 WHERE a.hold IS NOT NULL;

-- Every hold a call was answered with is there, as asked for (wallet,
-- merchant, order; an authorize's amount); a void left it voided, a final
-- capture captured.  (capture_refused lines name the merchant that tried.)
INSERT INTO failure
SELECT 'acknowledged_hold_changed',
       format('%s %s order %s: hold %s %s', a.client, a.call, a.order_ref, a.hold,
              CASE WHEN h.id IS NULL THEN 'is missing'
                   ELSE format('is wallet %s, merchant %s, amount %s, order %s, %s', h.wallet,
                               h.merchant, h.amount, h.order_ref, h.state) END)
  FROM ack_hold a
  LEFT JOIN hold h ON h.id = a.hold
 WHERE a.call <> 'capture_refused'
   AND (h.id IS NULL OR h.wallet <> a.wallet OR h.merchant <> a.merchant_here
        OR h.order_ref <> a.order_ref
        OR (a.call LIKE 'authorize%' AND h.amount <> a.amount)
        OR (a.call LIKE 'void%' AND h.state <> 'voided')
        OR (a.call = 'capture_final' AND h.state <> 'captured'));

-- An order is held once: in the client's record (one hold per order, its
-- retries answered with it) and in the database (no order both held and
-- charged: they share the merchant's orders).
INSERT INTO failure
SELECT 'order_held_twice', format('merchant %s order %s answered holds %s', a.merchant, a.order_ref,
                                  string_agg(DISTINCT a.hold::text, ', '))
  FROM ack_hold a WHERE a.call LIKE 'authorize%'
 GROUP BY a.merchant, a.order_ref HAVING count(DISTINCT a.hold) > 1;
INSERT INTO failure
SELECT 'order_held_twice', format('merchant %s order %s is hold %s and payment %s',
                                  mh.merchant, h.order_ref, h.id, p.transfer_id)
  FROM hold h
  JOIN merchant_map mh ON mh.account = h.merchant
  JOIN merchant_map mp ON mp.merchant = mh.merchant
  JOIN payment p ON p.merchant = mp.account AND p.order_ref = h.order_ref;

-- Every acknowledged capture is in hold_capture, once, for its hold and
-- amount (its journal row is check 4's, its one transfer per capture_ref
-- checks 5 and 6's).
INSERT INTO failure
SELECT 'capture_not_in_holds',
       format('%s %s %s: transfer %s (hold %s, %s) %s', a.client, a.call, a.ref, a.transfer_id,
              a.hold, a.amount,
              CASE WHEN hc.transfer_id IS NULL THEN 'is no capture'
                   ELSE format('is a capture of hold %s for %s', hc.hold, hc.amount) END)
  FROM ack_money a
  LEFT JOIN hold_capture hc ON hc.transfer_id = a.transfer_id
 WHERE a.kind = 'capture'
   AND (hc.transfer_id IS NULL OR hc.hold IS DISTINCT FROM a.hold OR hc.amount <> a.amount);
INSERT INTO failure
SELECT 'capture_not_in_holds', format('transfer %s is %s captures', hc.transfer_id, count(*))
  FROM hold_capture hc GROUP BY hc.transfer_id HAVING count(*) > 1;

-- A hold's captured is what its captures add up to, never above its
-- amount.  In the database; and in the client's record: the distinct
-- acknowledged captures of a hold add up to its captured (after a crash
-- at most to it: a capture in flight may have happened unanswered), and a
-- hold whose acknowledged captures took all of it is captured.
INSERT INTO failure
SELECT 'hold_captured_wrong',
       format('hold %s: amount %s, captured %s, its captures add up to %s (%s)', h.id, h.amount,
              h.captured, coalesce(c.total, 0), coalesce(c.n, 0))
  FROM hold h
  LEFT JOIN (SELECT hc.hold, count(*) AS n, sum(hc.amount::numeric) AS total
               FROM hold_capture hc GROUP BY hc.hold) c ON c.hold = h.id
 WHERE h.captured <> coalesce(c.total, 0) OR h.captured > h.amount OR h.captured < 0;
INSERT INTO failure
SELECT 'hold_captured_wrong',
       format('hold %s: amount %s, captured %s, %s; the clients saw %s captured', h.id, h.amount,
              h.captured, h.state, a.total)
  FROM (SELECT t.hold, sum(t.amount) AS total FROM ack_transfer t
         WHERE t.kind = 'capture' GROUP BY t.hold) a
  LEFT JOIN hold h ON h.id = a.hold
 WHERE h.id IS NULL OR a.total > h.captured
    OR (:'exact' = 'on' AND a.total <> h.captured)
    OR (a.total = h.amount AND h.state <> 'captured');

-- A capture refused for its hold (PY601-PY605) moved nothing: no capture
-- under its capture_ref.
INSERT INTO failure
SELECT 'refused_capture_moved',
       format('%s: capture %s of hold %s by merchant %s was refused, but has %s transfer(s)',
              a.client, a.ref, a.hold, a.merchant, r.n)
  FROM ack_hold a
  JOIN transfer_reference r ON r.kind = 'capture' AND r.idem_scope = a.merchant_here
                           AND r.reference = a.ref
 WHERE a.call = 'capture_refused';

-- No wallet's balance is below what its live holds reserve, and
-- available_balance() says so for every wallet.  (On a single node also
-- that available_balance() is the balance less the live holds, both as of
-- one now(); behind a router each partition has its own.)
INSERT INTO failure
SELECT 'available_negative',
       format('wallet %s holds %s, its live holds reserved %s; available_balance() says %s',
              x.id, x.balance, x.holding, x.available)
  FROM (SELECT a.id, a.balance,
               coalesce((SELECT sum(h.holding) FROM hold h WHERE h.wallet = a.id), 0) AS holding,
               payext.available_balance(a.id) AS available
          FROM account a WHERE a.kind = 'wallet') x
 WHERE x.available < 0 OR x.balance < x.holding;
\if :router
\else
INSERT INTO failure
SELECT 'available_negative',
       format('wallet %s: available_balance() says %s, its balance less its live holds is %s',
              x.id, x.available, x.expected)
  FROM (SELECT a.id, payext.available_balance(a.id) AS available,
               a.balance - coalesce((SELECT sum(h.holding) FROM payext.hold h WHERE h.wallet = a.id), 0)
                 AS expected
          FROM payext.account a WHERE a.kind = 'wallet') x
 WHERE x.available <> x.expected;
\endif

-- What was checked: acknowledged calls per kind, one line.
SELECT 'verify: ' || (SELECT count(*) FROM ack) || ' acknowledged calls ('
       || (SELECT string_agg(call || '=' || n, ' ' ORDER BY call)
             FROM (SELECT call, count(*) AS n FROM ack GROUP BY call) c)
       || '); ' || (SELECT count(*) FROM ack_transfer) || ' distinct transfers acknowledged, '
       || (SELECT count(*) FROM transfer) || ' in the journal, '
       || (SELECT count(*) FROM payext.association) || ' associations; '
       || (SELECT count(*) FROM hold) || ' holds ('
       || coalesce((SELECT string_agg(state || '=' || n, ' ' ORDER BY state)
                      FROM (SELECT state, count(*) AS n FROM hold GROUP BY state) s), '')
       || '), ' || (SELECT count(*) FROM hold_capture) || ' captures'
       || CASE WHEN :'exact' = 'on' THEN '; balances recomputed from the record'
               ELSE '; balances not recomputed (crash)' END AS summary
\gset
\echo :summary

SELECT count(*) > 0 AS failed FROM failure \gset
\if :failed
SELECT check_name, count(*) AS failures, (array_agg(detail ORDER BY detail))[1:3] AS examples
  FROM failure GROUP BY check_name ORDER BY check_name;
\echo 'verify: FAILED: the acknowledged calls and the database disagree'
DO $$ BEGIN RAISE EXCEPTION 'verify failed'; END $$;
\endif
\echo 'verify: every check passed'
