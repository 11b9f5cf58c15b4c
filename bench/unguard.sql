-- For bench/run.sh only, on its throwaway database: drops what the charge's
-- tables declare beyond payext's own checks, to measure what it costs.
--   psql -v drop=fk     the foreign keys of the tables a charge writes
--   psql -v drop=check  their CHECK constraints, but account_balance_not_negative
-- Never run this on a database that holds money.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT current_database() = 'bench' AS in_bench \gset
\if :in_bench
\else
  \echo 'unguard.sql runs only in the benchmark database "bench"'
  \quit
\endif
SELECT set_config('payext_bench.drop', :'drop', false) IS NOT NULL AS set \gset
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN SELECT conrelid::regclass AS rel, conname
             FROM pg_constraint
            WHERE conrelid IN ('payext.account'::regclass, 'payext.transfer'::regclass,
                               'payext.payment'::regclass, 'payext.payment_code'::regclass,
                               'payext.interaction'::regclass, 'payext.interaction_pair'::regclass,
                               'payext.merchant_credit'::regclass)
              AND contype = CASE current_setting('payext_bench.drop') WHEN 'fk' THEN 'f' ELSE 'c' END
              AND conname <> 'account_balance_not_negative'
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.rel, c.conname);
  END LOOP;
END $$;
