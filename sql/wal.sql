-- What payext's calls write to the WAL, read with pg_walinspect.
--
-- Issuing a code writes no WAL of its own: its row is in an unlogged table,
-- so its commit does not wait for the disk under synchronous_commit.  Not
-- even when the wallet's heap page is due for pruning: an index fetch
-- prunes such a page (heap_page_prune_opt) and logs it, and before 0.8.0
-- the issue's read of the wallet did, in 35 % of a benchmark's issues
-- (bench/NOTES.md).  payext's read leaves the prune to the page's writers.
CREATE EXTENSION pg_walinspect;
-- No vacuum of payext.account between the probes below.
ALTER TABLE payext.account SET (autovacuum_enabled = false);

SELECT payext.open_wallet('wal_walker') AS w \gset
-- One transaction, a hundred versions of the wallet's row: its own
-- versions are not pruned while it runs, and are dead once it commits.
SELECT count(payext.top_up(:w, 1, 'wal-' || i)) AS topped_up
  FROM generate_series(1, 100) AS i;

SELECT pg_relation_filenode('payext.account') AS account_node \gset
SELECT pg_current_wal_insert_lsn() AS before_issue \gset
SELECT payext.request_payment(:w) IS NOT NULL AS issued;
SELECT pg_current_wal_insert_lsn() AS after_issue \gset
CHECKPOINT;  -- pg_walinspect reads what is on disk
-- What the issue logged for payext.account: nothing.
SELECT count(*) AS account_records_of_the_issue
  FROM pg_get_wal_records_info(:'before_issue', :'after_issue')
 WHERE block_ref ~ ('/' || :account_node || ' ');

-- The page was due: the executor's read of the same row prunes it.  (Had
-- it not been, the count above could not have failed.)
SET enable_seqscan = off;
SELECT balance = 100 AS read_by_the_executor FROM payext.account WHERE id = :w;
RESET enable_seqscan;
SELECT pg_current_wal_insert_lsn() AS after_read \gset
CHECKPOINT;
SELECT count(*) > 0 AS the_read_pruned
  FROM pg_get_wal_records_info(:'after_issue', :'after_read')
 WHERE block_ref ~ ('/' || :account_node || ' ')
   AND record_type = 'PRUNE';

ALTER TABLE payext.account RESET (autovacuum_enabled);

-- A parking exit with auto-pay writes its stay twice (closed, then paid)
-- and its payment row without the executor.  Neither the payment row's
-- foreign keys are checked again (its transfer is the exit's own, its stay
-- and wallet locked) nor the stay's key to its lot on the second update
-- (unchanged, and checked when the stay was inserted): no row lock of
-- payext.transfer or payext.parking_lot in the exit's WAL (before 0.8.0,
-- one each).
SELECT payext.open_merchant('gh_wal_park', 'WAL Parking') AS op \gset
SELECT payext.create_parking_lot(:op, 'WAL Lot', 'UTC', 0, 60, 200, 200) AS lot \gset
SELECT payext.top_up(:w, 1000, 'wal-park') > 0 AS topped_up;
SELECT payext.bind_vehicle('wal_walker', 'WAL-1', true);
SELECT payext.vehicle_entered(:lot, 'WAL-1', now() - interval '90 minutes') > 0 AS entered;
SELECT pg_current_wal_insert_lsn() AS before_exit \gset
SELECT payext.vehicle_exited(:lot, 'WAL-1') AS fee;
SELECT pg_current_wal_insert_lsn() AS after_exit \gset
CHECKPOINT;
SELECT t.rel, count(r.*) FILTER (WHERE r.record_type = 'LOCK') AS row_locks,
       count(r.*) FILTER (WHERE r.record_type ~ 'UPDATE') AS updates
  FROM unnest(ARRAY['transfer', 'parking_lot', 'parking_stay']) AS t (rel)
  LEFT JOIN pg_get_wal_records_info(:'before_exit', :'after_exit') AS r
    ON r.block_ref ~ ('/' || pg_relation_filenode('payext.' || t.rel) || ' ')
 GROUP BY t.rel ORDER BY t.rel;
SELECT payext.balance(:w) = 1100 - 400 AS paid_from_the_wallet;

-- The car enters again: its stay is inserted without the executor, and
-- what the stay's foreign key's check took is taken still, the lot's row
-- locked FOR KEY SHARE: the entry's one row lock of payext.parking_lot.
-- (The plate's event counter at the lot exists since the first entry, so
-- its update locks no lot.)  Its owner at entry is the plate's.
SELECT pg_current_wal_insert_lsn() AS before_entry \gset
SELECT payext.vehicle_entered(:lot, 'WAL-1') AS stay \gset
SELECT pg_current_wal_insert_lsn() AS after_entry \gset
CHECKPOINT;
SELECT t.rel, count(r.*) FILTER (WHERE r.record_type = 'LOCK') AS row_locks,
       count(r.*) FILTER (WHERE r.record_type ~ 'INSERT') AS inserts,
       count(r.*) FILTER (WHERE r.record_type ~ 'UPDATE') AS updates
  FROM unnest(ARRAY['parking_lot', 'parking_plate_events', 'parking_stay']) AS t (rel)
  LEFT JOIN pg_get_wal_records_info(:'before_entry', :'after_entry') AS r
    ON r.block_ref ~ ('/' || pg_relation_filenode('payext.' || t.rel) || ' ')
 GROUP BY t.rel ORDER BY t.rel;
SELECT state, owner_at_entry, paid, fee, exited_at FROM payext.parking_stay WHERE id = :stay;

-- A payment that meets its merchant's rule makes the association without
-- the executor; the rule's row is locked FOR KEY SHARE still, as the
-- association's foreign key's check locks it: one row lock of
-- payext.association_rule in the charge's WAL, one association row.
SELECT payext.open_merchant('gh_wal_shop', 'WAL Shop') AS shop \gset
SELECT payext.set_association_rule('gh_wal_shop', 1, '1 day') IS NOT NULL AS ruled;
SELECT payext.request_payment(:w) AS code \gset
SELECT pg_current_wal_insert_lsn() AS before_charge \gset
SELECT payext.charge(:shop, :'code', 100, 'wal-assoc') > 0 AS charged;
SELECT pg_current_wal_insert_lsn() AS after_charge \gset
CHECKPOINT;
SELECT t.rel, count(r.*) FILTER (WHERE r.record_type = 'LOCK') AS row_locks,
       count(r.*) FILTER (WHERE r.record_type ~ 'INSERT') AS inserts
  FROM unnest(ARRAY['association_rule', 'association_state']) AS t (rel)
  LEFT JOIN pg_get_wal_records_info(:'before_charge', :'after_charge') AS r
    ON r.block_ref ~ ('/' || pg_relation_filenode('payext.' || t.rel) || ' ')
 GROUP BY t.rel ORDER BY t.rel;
SELECT consumer, public_service_id, how FROM payext.association WHERE public_service_id = 'gh_wal_shop';

DROP EXTENSION pg_walinspect;
