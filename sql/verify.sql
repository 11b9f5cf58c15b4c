-- verify_ledger() finds what the constraints would have stopped, when they
-- were not there: each tampering runs as the superuser inside a
-- transaction that is rolled back, and the check that must see it says
-- false.  (The journal's own checks are in ledger.sql.)
SET TIME ZONE 'UTC';
-- Ids in this file's messages start after 7000, whatever ran before it.
-- NZD is used by no other file.
SELECT setval('payext.account_id_seq', 7000), setval('payext.transfer_id_seq', 7000),
       setval('payext.parking_lot_id_seq', 7000), setval('payext.parking_stay_id_seq', 7000);

SELECT payext.open_wallet('verify_vic', 'NZD') AS w \gset
SELECT payext.open_merchant('gh_verify_shop', 'Shop', 'NZD') AS m \gset
SELECT payext.top_up(:w, 100000, 'verify-bank-1') > 0 AS topped_up;
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(:m, :'code', 1000, 'verify-order-1') AS t1 \gset
SELECT payext.create_parking_lot(:m, 'Verify Lot', 'UTC', 0, 60, 200) AS lot \gset
SELECT payext.bind_vehicle('verify_vic', 'VF-001', auto_pay => true);
SELECT payext.vehicle_entered(:lot, 'VF001', now() - interval '3 hours') AS stay \gset
SELECT payext.vehicle_exited(:lot, 'VF001', now() - interval '90 minutes') AS fee;
SELECT fee, paid, state FROM payext.parking_stay WHERE id = :stay;
SELECT check_name, ok FROM payext.verify_ledger();

-- A code paid twice: a second payment row for the same code (its own
-- transfer, so that the journal and the balances agree).
BEGIN;
ALTER TABLE payext.payment DROP CONSTRAINT payment_code_serial_key;
INSERT INTO payext.transfer (id, debit_account, credit_account, amount, currency, kind,
                             idem_scope, reference, created_at, checksum)
SELECT 7999, :w, :m, 1000, 'NZD', 'charge', :m, 'verify-order-2', t.created_at,
       payext.transfer_checksum(7999, :w, :m, 1000, 'NZD', 'charge', :m, 'verify-order-2', t.created_at)
  FROM payext.transfer t WHERE t.id = :t1;
INSERT INTO payext.payment (transfer_id, merchant, order_ref, wallet, code_serial, amount,
                            created_at, updated_at)
SELECT 7999, merchant, 'verify-order-2', wallet, code_serial, amount, created_at, updated_at
  FROM payext.payment WHERE transfer_id = :t1;
UPDATE payext.account SET balance = balance + CASE id WHEN :w THEN -1000 ELSE 1000 END
 WHERE id IN (:w, :m);
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- A payment without its journal row, and an interaction naming a transfer
-- that is not in the journal: no foreign key stops either (charge() writes
-- them with their journal row), so verify_ledger() must see them.
BEGIN;
INSERT INTO payext.payment (transfer_id, merchant, order_ref, wallet, code_serial, amount,
                            created_at, updated_at)
VALUES (7998, :m, 'verify-order-3', :w, 999999999, 500, now(), now());
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;
BEGIN;
INSERT INTO payext.interaction (id, consumer, public_service_id, kind, amount, currency,
                                occurred_at, transfer_id, recorded_at)
VALUES (7997, 'verify_vic', 'gh_verify_shop', 'payment', 500, 'NZD',
        now() - interval '1 day', 7997, now() - interval '1 day');
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;
-- The charge's own interaction, altered: another amount.
BEGIN;
UPDATE payext.interaction SET amount = amount + 1 WHERE transfer_id = :t1;
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- An exited stay paid beyond its fee: the fee lowered under what was paid.
BEGIN;
ALTER TABLE payext.parking_stay DROP CONSTRAINT parking_stay_not_overpaid;
UPDATE payext.parking_stay SET fee = paid - 1 WHERE id = :stay;
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- A negative merchant row hidden by its buckets: the sum is right, the row
-- is not (each part is counted on its own).
SELECT balance AS row_balance, payext.balance(id) AS balance FROM payext.account WHERE id = :m;
BEGIN;
ALTER TABLE payext.account DROP CONSTRAINT account_balance_not_negative;
UPDATE payext.account SET balance = balance - 500 WHERE id = :m;
UPDATE payext.merchant_credit SET amount = amount + 500
 WHERE (account, bucket) = (SELECT account, min(bucket) FROM payext.merchant_credit
                             WHERE account = :m GROUP BY account);
SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- A credit bucket on a wallet (buckets are merchants' only), the wallet's
-- row lowered by as much.
BEGIN;
INSERT INTO payext.merchant_credit (account, bucket, amount) VALUES (:w, 0, 100);
UPDATE payext.account SET balance = balance - 100 WHERE id = :w;
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- A merchant closed with money in its buckets by an UPDATE that checks the
-- row alone, under any isolation level: the guard on account.status
-- refuses any change of a merchant's status that payext's own functions did
-- not make, closing and freezing alike ...
BEGIN;
UPDATE payext.account SET status = 'closed' WHERE id = :m;
\echo :SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
UPDATE payext.account SET status = 'frozen' WHERE id = :m;
\echo :SQLSTATE
ROLLBACK;
-- ... while freeze() and unfreeze() go through, folding the buckets ...
BEGIN;
SELECT payext.freeze(:m);
SELECT status, balance, (SELECT count(*) FROM payext.merchant_credit WHERE account = :m) AS buckets
  FROM payext.account WHERE id = :m;
SELECT payext.unfreeze(:m);
ROLLBACK;
-- ... and a setting of the same name set by hand is refused to ordinary
-- roles (only payext's functions, as its owner, set it).
CREATE ROLE verify_nobody;
SET ROLE verify_nobody;
SET payext.status_change = '1';
\echo :SQLSTATE
RESET ROLE;
DROP ROLE verify_nobody;
-- Without the guard, verify_ledger() sees such a close.
BEGIN;
ALTER TABLE payext.account DISABLE TRIGGER account_status_guard;
UPDATE payext.account SET status = 'closed' WHERE id = :m;
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

-- A closed wallet that still holds money.
BEGIN;
UPDATE payext.account SET status = 'closed' WHERE id = :w;
SELECT check_name, ok, detail FROM payext.verify_ledger() WHERE NOT ok;
ROLLBACK;

SELECT check_name, ok FROM payext.verify_ledger() WHERE NOT ok;
