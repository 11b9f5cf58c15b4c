-- The rows of every table that pg_dump keeps for payext, one line per table:
-- its name, its row count and an md5 of its rows in a fixed order.  Read
-- from the catalog, so that a table a release adds is counted too.
-- (test/upgrade/run.sh compares this before and after an update.)  A row
-- is its JSON without its nulls: a column an update adds, null in the rows
-- it finds, changes no row (0.8.0's account.held_until).
SELECT format('SELECT %L AS relation, count(*) AS n, md5(coalesce(string_agg(jsonb_strip_nulls(to_jsonb(t))::text, %L ORDER BY jsonb_strip_nulls(to_jsonb(t))::text), %L)) AS rows FROM %s t',
              c.relname, '|', '', c.oid::regclass)
  FROM pg_extension e, unnest(e.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
 WHERE e.extname = 'payext' AND c.relkind = 'r'
 ORDER BY c.relname
\gexec
