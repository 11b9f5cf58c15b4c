--
-- Partitions: a database's number, fixed for life, and what a router
-- routes by (DESIGN.md, "More than one node").  Concurrency:
-- test/specs/partition_fixed.spec.
--
\set VERBOSITY default
SET client_min_messages = notice;

-- This database hands out ids under partition 0 (had the tests before this
-- one not done so already, this wallet would): its number can be fixed at
-- 0, never changed to another.
SELECT payext.current_partition();
SELECT payext.open_wallet('part-first') > 0 AS opened;
-- (terse: the sequences used so far depend on the tests run before)
\set VERBOSITY terse
SELECT payext.set_partition(5);
\set VERBOSITY default
SELECT payext.set_partition(0);
SELECT payext.set_partition(0);
SELECT number FROM payext.partition_info;
SELECT payext.set_partition(5);
-- Out of range, null.
SELECT payext.set_partition(100);
SELECT payext.set_partition(-1);
SELECT payext.set_partition(NULL);

-- The partition of an id: its high bits.
SELECT payext.partition_of(payext.open_wallet('part-ann'));
SELECT payext.partition_of((99::bigint << 56) | 12345) AS p99,
       payext.partition_of(1) AS p0;
SELECT payext.partition_of(0);
SELECT payext.partition_of(-1);
SELECT payext.partition_of((100::bigint << 56) | 1);
SELECT payext.partition_of(NULL);

-- A code's partition: its first two digits, once the check digit holds.
SELECT payext.code_partition(payext.request_payment(payext.open_wallet('part-ann')));
SELECT payext.code_partition('12345');
SELECT payext.code_partition('000000000000000001');
SELECT payext.code_partition(NULL);

-- owner_hash is the first four bytes of SHA-256 over the id's UTF-8
-- bytes, big-endian, as a signed integer: computed here apart, with
-- PostgreSQL's sha256().
SELECT o, payext.owner_hash(o) = ('x' || left(encode(sha256(convert_to(o, 'UTF8')), 'hex'), 8))::bit(32)::integer AS same
  FROM unnest(ARRAY['ann', 'ben', 'wx_7f3a9c', '用户一', repeat('z', 128)]) AS o;
-- Fixed values: a router and every partition must agree on them forever.
SELECT payext.owner_hash('ann') AS ann, payext.owner_hash('ben') AS ben;
-- owner_partition among n partitions: the hash as unsigned, modulo n; for
-- a power of two, the low bits PL/Proxy's RUN ON owner_hash(...) takes.
SELECT o, payext.owner_partition(o, 4) AS of_4,
       payext.owner_partition(o, 4) = (payext.owner_hash(o) & 3) AS as_plproxy,
       payext.owner_partition(o, 100) AS of_100,
       payext.owner_partition(o, 100) = ((payext.owner_hash(o)::bigint & 4294967295) % 100)::integer AS unsigned_mod
  FROM unnest(ARRAY['ann', 'ben', 'cat', 'dan']) AS o;
SELECT payext.owner_partition('ann', 1);
-- Bad owners are refused as open_wallet refuses them; bad counts too.
SELECT payext.owner_hash(' ann');
SELECT payext.owner_hash(E'an\u200bn');
SELECT payext.owner_hash('');
SELECT payext.owner_partition('ann', 0);
SELECT payext.owner_partition('ann', 101);
SELECT payext.owner_partition('ann', NULL);

-- A database of its own, fixed at 7 before its first id: its ids and
-- codes carry 7, and a code of 7 is not charged on partition 0.
\set regress_db :DBNAME
CREATE DATABASE payext_partition_seven;
\c payext_partition_seven
SET client_min_messages = warning;
CREATE EXTENSION payext;
RESET client_min_messages;
SELECT payext.current_partition();
SELECT payext.set_partition(7);
SELECT payext.set_partition(7);
SELECT payext.set_partition(8);
-- Not by hand either: a backend that kept 7 would go on making ids of 7.
UPDATE payext.partition_info SET number = 8;
DELETE FROM payext.partition_info;
TRUNCATE payext.partition_info;
SELECT payext.current_partition();
SELECT payext.open_wallet('seven-ann') AS wallet \gset
SELECT payext.open_merchant('gh_seven', 'Seven Shop') AS shop \gset
SELECT payext.partition_of(:wallet) AS wallet_partition,
       payext.partition_of(:shop) AS shop_partition,
       payext.partition_of(payext.top_up(:wallet, 1000, 'seven-in')) AS transfer_partition;
SELECT payext.request_payment(:wallet) AS code \gset
SELECT left(:'code', 2) AS digits, payext.code_partition(:'code') AS code_partition;
SELECT payext.partition_of(payext.charge(:shop, :'code', 300, 'seven-1')) AS charge_partition;
SELECT payext.balance(:wallet) AS wallet_balance;
-- verify_placement: every id here carries 7; as one of 8 partitions, the
-- wallet's owner must hash to 7 (it does not: 'seven-ann' hashes to
-- owner_partition('seven-ann', 8)); a row with an id of another partition
-- is caught.
SELECT payext.owner_partition('seven-ann', 8) AS seven_ann_of_8;
SELECT * FROM payext.verify_placement(NULL);
SELECT * FROM payext.verify_placement(8);
INSERT INTO payext.interaction (id, consumer, public_service_id, kind, amount, occurred_at, recorded_at)
VALUES (42, 'seven-ann', 'gh_seven', 'visit', 0, now(), now());
SELECT * FROM payext.verify_placement(NULL);
SELECT payext.request_payment(:wallet) AS code7 \gset
\c :regress_db
-- The regression database is partition 0: the code of 7 goes elsewhere.
SELECT payext.charge(payext.open_merchant('gh_part_zero', 'Zero Shop'), :'code7', 100, 'zero-1');
DROP DATABASE payext_partition_seven;

-- Behind a router, a merchant's order_ref and refund_ref are claimed for
-- one partition (concurrency: test/specs/partition_claim_race.spec), under
-- the merchant's account on the partition the claim goes to.  The first
-- claim wins; kinds are claimed apart.
SELECT payext.open_merchant('gh_claim_a', 'Claim A') AS claim_a,
       payext.open_merchant('gh_claim_b', 'Claim B') AS claim_b \gset
SELECT payext.claim_reference(:claim_a, 'order', 'o-1', 3) AS first,
       payext.claim_reference(:claim_a, 'order', 'o-1', 5) AS second,
       payext.claim_reference(:claim_a, 'refund', 'o-1', 5) AS refund_kind,
       payext.claim_reference(:claim_b, 'order', 'o-1', 7) AS other_merchant;
SELECT payext.claimed_partition(:claim_a, 'order', 'o-1') AS claimed,
       payext.claimed_partition(:claim_a, 'order', 'o-2') AS unclaimed;
SELECT payext.claim_reference(NULL, 'order', 'o-1', 3);
SELECT payext.claim_reference(:claim_a, 'order', NULL, 3);
SELECT payext.claim_reference(:claim_a, 'order', 'o-1', 100);
-- An account of another partition is not claimed under here.
SELECT payext.claim_reference((5::bigint << 56) | 1, 'order', 'o-1', 3);
\set VERBOSITY terse
SELECT payext.claim_reference(:claim_a, 'other', 'o-1', 3);
SELECT payext.claim_reference(:claim_a, 'order', '', 3);
\set VERBOSITY default
-- A merchant role claims only for the accounts it acts for.
CREATE ROLE part_till;
SELECT payext.grant_capability('merchant', 'part_till');
SELECT payext.map_merchant_role('part_till', :claim_a);
SET ROLE part_till;
SELECT payext.claim_reference(:claim_a, 'order', 'o-till', 2) AS till_claims_its_own;
\set VERBOSITY sqlstate
SELECT payext.claim_reference(:claim_b, 'order', 'o-till', 2);
SELECT payext.claimed_partition(:claim_b, 'order', 'o-1');
\set VERBOSITY default
RESET ROLE;
SELECT payext.unmap_merchant_role('part_till', :claim_a);
SELECT payext.revoke_capability('merchant', 'part_till');
DROP ROLE part_till;
-- A router's charge whose order's claim belongs here (charge_claimed, in
-- C since 0.8.0): the claim and the charge in one transaction.  An order
-- claimed for another partition is refused (PY208); a refused charge
-- leaves no claim; a retry of a charged order returns its transfer.
SELECT payext.open_wallet('claim-payer') AS claim_payer \gset
SELECT payext.top_up(:claim_payer, 1000, 'claim-in') > 0 AS topped_up;
SELECT payext.request_payment(:claim_payer) AS claim_code \gset
SELECT payext.charge_claimed(:claim_a, :'claim_code', 100, 'o-1');
SELECT payext.require_claim_here(:claim_a, 'o-1');
\set VERBOSITY sqlstate
SELECT payext.charge_claimed(:claim_a, :'claim_code', 5000, 'o-here');
SELECT payext.require_claim_here(:claim_a, NULL);
\set VERBOSITY default
SELECT payext.claimed_partition(:claim_a, 'order', 'o-here') IS NULL AS refused_left_no_claim;
SELECT payext.charge_claimed(:claim_a, :'claim_code', 100, 'o-here') AS claimed_transfer \gset
SELECT payext.charge_claimed(:claim_a, :'claim_code', 100, 'o-here') = :claimed_transfer AS retry_returns_it,
       payext.claimed_partition(:claim_a, 'order', 'o-here') AS holder,
       payext.balance(:claim_payer) AS payer_balance;
-- A DBA's trigger on the claims: the claim's row goes through SPI, the
-- trigger fires (for the second claim too: a BEFORE trigger fires before
-- the conflict is found), and the first claim still wins.
CREATE FUNCTION public.claim_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'claiming % % for %', NEW.kind, NEW.reference, NEW.partition_number;
  RETURN NEW;
END
$$;
CREATE TRIGGER claim_seen BEFORE INSERT ON payext.reference_claim
  FOR EACH ROW EXECUTE FUNCTION public.claim_seen();
SELECT payext.claim_reference(:claim_a, 'order', 'o-trig', 4) AS first,
       payext.claim_reference(:claim_a, 'order', 'o-trig', 6) AS second;
DROP TRIGGER claim_seen ON payext.reference_claim;
-- A trigger that drops the claim's row: an error (PY901), not a claim that
-- nobody holds, nor a loop (the timeout fails the test if it spins).
CREATE OR REPLACE FUNCTION public.claim_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NULL;
END
$$;
CREATE TRIGGER claim_seen BEFORE INSERT ON payext.reference_claim
  FOR EACH ROW EXECUTE FUNCTION public.claim_seen();
SET statement_timeout = '20s';
\set VERBOSITY sqlstate
SELECT payext.claim_reference(:claim_a, 'order', 'o-dropped', 4);
\set VERBOSITY default
RESET statement_timeout;
DROP TRIGGER claim_seen ON payext.reference_claim;
DROP FUNCTION public.claim_seen();
DELETE FROM payext.reference_claim;
