-- For bench/run.sh only, on its throwaway database: drops what the charge's
-- tables declare beyond payext's own checks, to measure what it costs.
--   psql -v drop=fk     the foreign keys of the tables a charge writes
--   psql -v drop=check  their CHECK constraints, but account_balance_not_negative
-- It refuses (exit status 3) any database that bench/setup.sql did not
-- mark as the benchmark's.  Never run it on a database that holds money.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT set_config('payext_bench.drop', :'drop', false) IS NOT NULL AS set \gset
DO $$
DECLARE
  c record;
  what text := current_setting('payext_bench.drop');
BEGIN
  IF shobj_description((SELECT d.oid FROM pg_database d WHERE d.datname = current_database()),
                       'pg_database')
     IS DISTINCT FROM 'payext benchmark population (bench/setup.sql), throwaway' THEN
    RAISE EXCEPTION 'unguard.sql runs only in a database that bench/setup.sql populated';
  END IF;
  IF what NOT IN ('fk', 'check') THEN
    RAISE EXCEPTION 'drop must be fk or check, not %', what;
  END IF;
  FOR c IN SELECT conrelid::regclass AS rel, conname
             FROM pg_constraint
            WHERE conrelid IN ('payext.account'::regclass, 'payext.transfer'::regclass,
                               'payext.payment'::regclass, 'payext.payment_code'::regclass,
                               'payext.interaction'::regclass, 'payext.interaction_pair'::regclass,
                               'payext.merchant_credit'::regclass)
              AND contype = CASE what WHEN 'fk' THEN 'f' ELSE 'c' END
              AND conname <> 'account_balance_not_negative'
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.rel, c.conname);
  END LOOP;
END $$;
