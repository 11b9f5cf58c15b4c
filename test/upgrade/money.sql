-- Money in a database before ALTER EXTENSION UPDATE (test/upgrade/run.sh):
-- every flow leaves rows, using only the API of 0.7.0, the first release.
SET client_min_messages = warning;
SELECT payext.open_wallet('upgrade_erin') AS w \gset
SELECT payext.open_merchant('gh_upgrade_shop', 'Upgrade Shop') AS m \gset
SELECT payext.top_up(:w, 50000, 'upgrade-bank-1');
SELECT payext.charge(:m, payext.request_payment(:w), 1200, 'upgrade-order-1');
SELECT payext.refund(:m, 'upgrade-order-1', 200, 'upgrade-refund-1');
SELECT payext.withdraw(:m, 500, 'upgrade-payout-1');
SELECT payext.request_payment(:w, 900);
SELECT payext.set_association_rule(NULL, 1, '1 day');
SELECT payext.record_interaction('upgrade_erin', 'gh_upgrade_shop', 'visit');
SELECT payext.create_parking_lot(:m, 'Upgrade Lot', 'Asia/Shanghai', 0, 60, 100) AS lot \gset
SELECT payext.bind_vehicle('upgrade_erin', 'UP-0001', auto_pay => true);
SELECT payext.vehicle_entered(:lot, 'UP0001', now() - interval '2 hours');
SELECT payext.vehicle_exited(:lot, 'UP0001', now() - interval '1 minute');
SELECT payext.vehicle_entered(:lot, 'UP0001', now());
-- A till role holding the merchant capability, mapped to the shop: an
-- update must leave it exactly the privileges a fresh install gives it
-- once grant_capability() runs again.  (The role is the cluster's:
-- test/upgrade/run.sh makes it.)
SELECT payext.grant_capability('merchant', 'payext_upgrade_till');
SELECT payext.map_merchant_role('payext_upgrade_till', :m);
SELECT payext.grant_capability('admin', 'payext_upgrade_admin');
-- The admin also holds the merchant capability: an update must not take
-- from it what admin needs.  And a role that held a capability has been
-- dropped since: its capability_grant row names an OID no role has.
SELECT payext.grant_capability('merchant', 'payext_upgrade_admin');
CREATE ROLE payext_upgrade_gone NOLOGIN;
SELECT payext.grant_capability('merchant', 'payext_upgrade_gone');
DROP OWNED BY payext_upgrade_gone;
DROP ROLE payext_upgrade_gone;
SELECT bool_and(ok) AS verifies FROM payext.verify_ledger();
