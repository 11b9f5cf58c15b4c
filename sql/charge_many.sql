-- charge_many(): many charges of one merchant in one call.  Each item is
-- charged or refused exactly as charge() would, on its own, in input order;
-- a refused item changes nothing and does not stop the others.  Errors that
-- are not the item's own (a malformed batch, a missing privilege) end the
-- whole call, and nothing of it is kept.

-- Ids in this file's messages start after 9000, whatever ran before it.
-- MYR is used by no other file, so its system account is made here.
SELECT setval('payext.account_id_seq', 9000), setval('payext.transfer_id_seq', 9000);

SELECT payext.open_wallet('many_ann', 'MYR') AS w \gset
SELECT payext.open_wallet('many_bob', 'MYR') AS w2 \gset
SELECT payext.open_merchant('gh_many_cafe', 'Cafe', 'MYR') AS m \gset
SELECT payext.open_merchant('gh_many_kiosk', 'Kiosk', 'MYR') AS m2 \gset
SELECT payext.top_up(:w, 10000, 'many-bank-1') > 0 AS topped_up,
       payext.top_up(:w2, 500, 'many-bank-2') > 0 AS topped_up_2;

SELECT payext.request_payment(:w) AS c1 \gset
SELECT payext.request_payment(:w, max_amount => 100) AS c_capped \gset
SELECT payext.request_payment(:w) AS c3 \gset
SELECT payext.request_payment(:w2) AS c_poor \gset
SELECT payext.request_payment(:w) AS c5 \gset
-- A made-up code with a right check digit (Damm), as sql/code_guessing.sql
-- makes them: never issued, a guess.
CREATE FUNCTION pg_temp.made_up(n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t int[] := '{{0,3,1,7,5,9,8,6,4,2},{7,0,9,2,1,5,4,8,6,3},{4,2,0,6,8,7,1,3,5,9},
               {1,7,5,0,9,8,3,4,2,6},{6,1,2,3,0,4,5,9,7,8},{3,6,7,4,2,0,9,5,8,1},
               {5,8,6,9,7,2,0,1,3,4},{8,9,4,5,3,6,2,0,1,7},{9,4,3,8,6,1,7,2,0,5},
               {2,5,8,1,4,3,6,7,9,0}}';
  digits text := '00' || lpad((223456789012345 + n)::text, 15, '0');
  i int := 0;
BEGIN
  FOR k IN 1 .. 17 LOOP
    i := t[i + 1][substr(digits, k, 1)::int + 1];
  END LOOP;
  RETURN digits || i::text;
END $$;
SELECT pg_temp.made_up(0) AS never_issued \gset

-- A batch of six: the second is over its code's cap, the fourth more than
-- Bob's wallet holds, the fifth never issued.
CREATE TEMP TABLE first_batch AS
SELECT * FROM payext.charge_many(:m,
  ARRAY[:'c1', :'c_capped', :'c3', :'c_poor', :'never_issued', :'c5'],
  ARRAY[1000, 101, 2000, 501, 10, 3000]::bigint[],
  ARRAY['cafe-1', 'cafe-2', 'cafe-3', 'cafe-4', 'cafe-5', 'cafe-6']);
SELECT item, transfer_id IS NOT NULL AS charged, sqlstate, message FROM first_batch ORDER BY item;
-- Each charged item is its order's journal row; the refused orders have none.
SELECT b.item, t.reference, t.amount, t.debit_account = :w AS from_ann, t.credit_account = :m AS to_cafe
  FROM first_batch b JOIN payext.transfer t ON t.id = b.transfer_id ORDER BY b.item;
SELECT count(*) AS refused_orders_charged FROM payext.transfer
 WHERE idem_scope = :m AND reference IN ('cafe-2', 'cafe-4', 'cafe-5');
-- Money moved for the charged items only; refused codes are not burnt.
SELECT payext.balance(:w) AS ann, payext.balance(:w2) AS bob, payext.balance(:m) AS cafe;
SELECT (SELECT state FROM payext.payment_code WHERE code = substr(:'c_capped', 3, 15)::bigint) AS capped,
       (SELECT state FROM payext.payment_code WHERE code = substr(:'c_poor', 3, 15)::bigint) AS poor,
       (SELECT state FROM payext.payment_code WHERE code = substr(:'c1', 3, 15)::bigint) AS used;

-- The till sends the same batch again (a timeout): the charged items answer
-- with the same transfers, the refused ones are refused again, nothing moves.
SELECT b.item, b.transfer_id IS NOT DISTINCT FROM f.transfer_id AS same_transfer, b.sqlstate
  FROM payext.charge_many(:m,
  ARRAY[:'c1', :'c_capped', :'c3', :'c_poor', :'never_issued', :'c5'],
  ARRAY[1000, 101, 2000, 501, 10, 3000]::bigint[],
  ARRAY['cafe-1', 'cafe-2', 'cafe-3', 'cafe-4', 'cafe-5', 'cafe-6']) b
  JOIN first_batch f USING (item) ORDER BY b.item;
SELECT payext.balance(:w) AS ann, payext.balance(:w2) AS bob, payext.balance(:m) AS cafe;

-- Within one batch: a code twice for one order is one charge; a used code
-- for another order, or another code for a charged order, is refused; the
-- capped code, refused above, now pays within its cap.
SELECT payext.request_payment(:w) AS c7 \gset
SELECT payext.request_payment(:w) AS c8 \gset
SELECT item, transfer_id IS NOT NULL AS charged, sqlstate, message
  FROM payext.charge_many(:m,
  ARRAY[:'c7', :'c7', :'c7', :'c8', :'c_capped'],
  ARRAY[700, 700, 700, 800, 100]::bigint[],
  ARRAY['cafe-7', 'cafe-7', 'cafe-8', 'cafe-7', 'cafe-2'])
 ORDER BY item;
SELECT count(*) AS cafe_7_transfers FROM payext.transfer WHERE idem_scope = :m AND reference = 'cafe-7';
SELECT payext.balance(:w) AS ann, payext.balance(:m) AS cafe;

-- Items are checked as charge() checks its arguments.
SELECT item, transfer_id, sqlstate, message
  FROM payext.charge_many(:m,
  ARRAY[NULL, :'c8', :'c8', :'c8', :'c8', :'c8'],
  ARRAY[100, NULL, 100, 0, -5, 100]::bigint[],
  ARRAY['cafe-9', 'cafe-9', NULL, 'cafe-9', 'cafe-9', repeat('x', 129)])
 ORDER BY item;

-- Another merchant's and no merchant's account: every item refused.
SELECT item, sqlstate, message FROM payext.charge_many(:w, ARRAY[:'c8'], ARRAY[100]::bigint[], ARRAY['x-1']);
SELECT item, sqlstate, message FROM payext.charge_many(1, ARRAY[:'c8'], ARRAY[100]::bigint[], ARRAY['x-1']);

-- An empty batch charges nothing and answers nothing.
SELECT count(*) AS rows FROM payext.charge_many(:m, '{}', '{}', '{}');

-- A malformed batch is refused whole: nothing of it is charged.
SELECT * FROM payext.charge_many(NULL, ARRAY[:'c8'], ARRAY[100]::bigint[], ARRAY['cafe-9']);
\echo :SQLSTATE
SELECT * FROM payext.charge_many(:m, NULL, ARRAY[100]::bigint[], ARRAY['cafe-9']);
\echo :SQLSTATE
SELECT * FROM payext.charge_many(:m, ARRAY[:'c8'], ARRAY[100, 200]::bigint[], ARRAY['cafe-9']);
\echo :SQLSTATE
SELECT * FROM payext.charge_many(:m, ARRAY[[:'c8']], ARRAY[100]::bigint[], ARRAY['cafe-9']);
\echo :SQLSTATE
SELECT * FROM payext.charge_many(:m, array_fill(:'c8'::text, ARRAY[1001]),
                                 array_fill(1::bigint, ARRAY[1001]), array_fill('cafe-9'::text, ARRAY[1001]));
\echo :SQLSTATE
SELECT (SELECT state FROM payext.payment_code WHERE code = substr(:'c8', 3, 15)::bigint) AS c8_state;

-- A batch in a transaction that rolls back: nothing of it stays.
BEGIN;
SELECT count(transfer_id) AS charged FROM payext.charge_many(:m, ARRAY[:'c8'], ARRAY[800]::bigint[], ARRAY['cafe-9']);
ROLLBACK;
SELECT payext.balance(:w) AS ann, payext.balance(:m) AS cafe,
       (SELECT state FROM payext.payment_code WHERE code = substr(:'c8', 3, 15)::bigint) AS c8_state;

-- The throttle counts guesses in input order.  With a limit of 3, the
-- fourth guess blocks the merchant: the item before it, charged before the
-- block, stays charged; the item after it is refused (PY213).
SET payext.code_failure_limit = 3;
SELECT payext.request_payment(:w) AS c10 \gset
SELECT payext.request_payment(:w) AS c11 \gset
SELECT item, transfer_id IS NOT NULL AS charged, sqlstate
  FROM payext.charge_many(:m2,
  ARRAY[pg_temp.made_up(1), pg_temp.made_up(2), pg_temp.made_up(3), :'c10', pg_temp.made_up(4), :'c11'],
  ARRAY[1, 1, 1, 100, 1, 100]::bigint[],
  ARRAY['k-1', 'k-2', 'k-3', 'k-4', 'k-5', 'k-6'])
 ORDER BY item;
SELECT payext.balance(:m2) AS kiosk;
SELECT payext.unblock_charging(:m2);
RESET payext.code_failure_limit;

-- Who may call it: not PUBLIC; a merchant role through
-- merchant_charge_many(), for the merchant accounts it is mapped to only.
CREATE ROLE many_till;
SELECT payext.grant_capability('merchant', 'many_till');
SELECT payext.map_merchant_role('many_till', :m);
SET ROLE many_till;
SELECT * FROM payext.charge_many(:m, ARRAY[:'c11'], ARRAY[100]::bigint[], ARRAY['cafe-10']);
\echo :SQLSTATE
SELECT * FROM payext.merchant_charge_many(:m2, ARRAY[:'c11'], ARRAY[100]::bigint[], ARRAY['cafe-10']);
\echo :SQLSTATE
SELECT item, transfer_id IS NOT NULL AS charged, sqlstate
  FROM payext.merchant_charge_many(:m, ARRAY[:'c11'], ARRAY[100]::bigint[], ARRAY['cafe-10']);
RESET ROLE;
SELECT payext.unmap_merchant_role('many_till', :m);
SELECT payext.revoke_capability('merchant', 'many_till');
DROP ROLE many_till;

-- The books balance.
SELECT payext.balance(:w) AS ann, payext.balance(:w2) AS bob,
       payext.balance(:m) AS cafe, payext.balance(:m2) AS kiosk;
SELECT check_name, detail FROM payext.verify_ledger() WHERE NOT ok;
