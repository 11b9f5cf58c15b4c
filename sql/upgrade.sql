-- Upgrading: a database on 0.1.0 with money in it is updated to 0.2.0,
-- 0.3.0, 0.4.0 and 0.5.0; nothing is lost, the journal still verifies, and each new API
-- works (also with the newest library under the older SQL).
-- (In a database of its own, so that the other stories keep theirs.)
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS payext_upgrade;
CREATE DATABASE payext_upgrade;
\c payext_upgrade
SET client_min_messages = warning;

CREATE EXTENSION payext VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
SELECT payext.open_wallet('upgrade_erin') AS w \gset
SELECT payext.open_merchant('gh_upgrade_shop', 'Upgrade Shop') AS m \gset
SELECT payext.top_up(:w, 5000, 'upgrade-bank-1') AS t1 \gset
SELECT payext.transfer(:w, :m, 1200, 'upgrade-adj-1') > 0 AS moved;
SELECT to_regprocedure('payext.charge(bigint,text,bigint,text)') IS NULL AS no_charge_yet;
SELECT count(*) AS checks_in_0_1_0 FROM payext.verify_ledger();

ALTER EXTENSION payext UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
-- The money is where it was, and replays still answer.
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS merchant;
SELECT payext.top_up(:w, 5000, 'upgrade-bank-1') = :t1 AS replay_after_update;
-- The new API: a code, a charge, a refund.
SELECT payext.request_payment(:w) AS code \gset
SELECT payext.charge(:m, :'code', 800, 'upgrade-order-1') > 0 AS charged;
SELECT payext.refund(:m, 'upgrade-order-1', 300, 'upgrade-refund-1') > 0 AS refunded;
SELECT payext.balance(:w) AS wallet, payext.balance(:m) AS merchant;
SELECT check_name, ok FROM payext.verify_ledger();
ALTER EXTENSION payext UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
-- Charges before the update left no interactions (there were none to
-- leave); those after it do, and rules apply to them.
SELECT count(*) AS interactions FROM payext.interaction;
SELECT payext.set_association_rule(NULL, 1, '1 day');
SELECT payext.charge(:m, payext.request_payment(:w), 100, 'upgrade-order-2') > 0 AS charged;
SELECT consumer, public_service_id, how FROM payext.association;
SELECT check_name, ok FROM payext.verify_ledger();
ALTER EXTENSION payext UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
SELECT payext.create_parking_lot(:m, 'Upgrade Lot', 'Asia/Shanghai', 0, 60, 100) AS lot \gset
SELECT payext.bind_vehicle('upgrade_erin', 'UP-0001', auto_pay => true);
SELECT payext.vehicle_entered(:lot, 'UP0001', '2026-11-20 10:00+08') > 0 AS entered;
SELECT payext.vehicle_exited(:lot, 'UP0001', '2026-11-20 12:00+08') AS fee;
SELECT payext.balance(:w) AS wallet;
SELECT check_name, ok FROM payext.verify_ledger();
ALTER EXTENSION payext UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
-- The role model: capabilities and merchant mappings start empty; the
-- superuser still acts for every merchant.
SELECT count(*) AS grants FROM payext.capability_grant;
SELECT payext.balance(:m) AS merchant;
SELECT check_name, ok FROM payext.verify_ledger();
-- The new tables are dumped, the keys are not; nothing new is PUBLIC's.
SELECT array_agg(c.relname::text ORDER BY c.relname) AS dumped
  FROM pg_extension e, unnest(e.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
 WHERE e.extname = 'payext';
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'payext'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;
-- A role that is an admin before the update reads the buckets after it.
CREATE ROLE payext_upgrade_admin;
SELECT payext.grant_capability('admin', 'payext_upgrade_admin');
ALTER EXTENSION payext UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'payext';
-- The update grants nothing (a GRANT in an extension script would be taken
-- for the extension's own and left out of dumps): admins get the buckets
-- when grant_capability() runs again, as the README's Upgrading says.
SELECT has_table_privilege('payext_upgrade_admin', 'payext.merchant_credit', 'SELECT')
       AS admin_reads_buckets_before;
SELECT count(payext.grant_capability('admin', grantee))
  FROM payext.capability_grant WHERE capability = 'admin';
SELECT has_table_privilege('payext_upgrade_admin', 'payext.merchant_credit', 'SELECT')
       AS admin_reads_buckets;
-- None of that is an initial privilege of the extension: pg_dump keeps it.
SELECT count(*) AS init_privs_of_admin
  FROM pg_init_privs i, aclexplode(i.initprivs) a
 WHERE a.grantee = 'payext_upgrade_admin'::regrole;
-- Merchants are paid through credit buckets: a charge after the update
-- lands in one, the balance counts it, a withdrawal folds it, and the
-- ledger still verifies.
SELECT payext.balance(:m) AS merchant_before;
SELECT payext.charge(:m, payext.request_payment(:w), 100, 'upgrade-order-3') > 0 AS charged;
SELECT payext.balance(:m) AS merchant,
       (SELECT sum(amount) FROM payext.merchant_credit) AS in_buckets;
SELECT payext.withdraw(:m, 100, 'upgrade-payout-1') > 0 AS paid_out;
SELECT payext.balance(:m) AS merchant,
       (SELECT count(*) FROM payext.merchant_credit) AS buckets;
SELECT check_name, ok FROM payext.verify_ledger();
SELECT 'merchant_credit' = ANY (
         SELECT c.relname::text
           FROM pg_extension e, unnest(e.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
          WHERE e.extname = 'payext') AS buckets_dumped;

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE payext_upgrade;
DROP ROLE payext_upgrade_admin;
