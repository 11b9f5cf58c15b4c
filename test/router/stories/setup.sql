-- For the single node's stories through the router (test/router/stories.sh):
-- a story's "SELECT setval('payext.account_id_seq', 1000)" sets that
-- sequence on every partition, so that ids in its messages start after
-- 1000 there too (each partition's with its own high bits).  Test-only:
-- the sessions put schema payext_story before pg_catalog, and a literal
-- resolves to this setval(text, bigint) before pg_catalog's
-- setval(regclass, bigint), which has no such sequence on a router.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS payext_story CASCADE;
CREATE SCHEMA payext_story;
CREATE FUNCTION payext_story.setval_on_all(seq text, value bigint)
RETURNS SETOF bigint LANGUAGE plproxy AS $$
  CLUSTER 'payext_partitions';
  RUN ON ALL;
  SELECT pg_catalog.setval(seq::regclass, value);
$$;
CREATE FUNCTION payext_story.setval(seq text, value bigint)
RETURNS bigint LANGUAGE sql
AS $$ SELECT max(v) FROM payext_story.setval_on_all(seq, value) v $$;
