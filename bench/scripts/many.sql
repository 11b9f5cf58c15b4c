-- charge_many in batches of 100: the app side issues 100 codes (one
-- statement, any of 100 000 wallets), the till charges them in one call.
-- A transaction of this script is 100 issue-and-charge pairs, as charge.sql's
-- is one; compare 100 × its tps with charge.sql's.
\set m random(100001, 100800)
\set r random(1, 1000000000000)
SELECT array_agg(payext.request_payment(1 + (random() * 99999)::int)) AS codes
  FROM generate_series(1, 100) \gset
SELECT count(transfer_id) AS charged
  FROM payext.charge_many(:m, ':codes', array_fill(100::bigint, ARRAY[100]),
                          ARRAY(SELECT 'b' || :client_id || '-' || :r || '-' || g
                                  FROM generate_series(1, 100) g));
