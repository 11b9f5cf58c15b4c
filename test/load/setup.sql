-- Population for the load test: 200 wallets with money, 20 merchants, a
-- parking lot, bound vehicles with auto-pay, an association rule.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS payext CASCADE;
DROP SCHEMA IF EXISTS load CASCADE;
CREATE EXTENSION payext;
CREATE SCHEMA load;

SELECT payext.open_wallet('load_user_' || g) FROM generate_series(1, 200) AS g;          -- 1..200
SELECT payext.open_merchant('gh_load_' || g, 'Shop ' || g) FROM generate_series(1, 20) AS g;  -- 201..220
SELECT payext.top_up(g, 100000, 'load-seed-' || g) FROM generate_series(1, 200) AS g;
SELECT payext.create_parking_lot(201, 'Load Lot', 'Asia/Shanghai', 0, 15, 100, 50);
SELECT payext.bind_vehicle('load_user_' || g, 'LD' || g, auto_pay => true) FROM generate_series(1, 200) AS g;
SELECT payext.set_association_rule(NULL, 3, '30 days');

-- A call that a client makes; a refusal of payext's own (PY...) is an
-- answer, not a failure: it is counted and the client goes on.  Conflicts
-- (40001, 40P01) are raised again for pgbench to retry the transaction.
CREATE TABLE load.refusal (code text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION load.try(call text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'SELECT ' || call;
EXCEPTION WHEN OTHERS THEN
  IF SQLSTATE LIKE 'PY%' THEN
    INSERT INTO load.refusal AS f VALUES (SQLSTATE, 1)
      ON CONFLICT (code) DO UPDATE SET n = f.n + 1;
  ELSE
    RAISE;
  END IF;
END $$;
