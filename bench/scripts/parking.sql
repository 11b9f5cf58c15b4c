-- A camera sees a bound car enter, another sees it leave 1 to 600 minutes
-- later; the wallet pays the operator at exit (auto-pay).  Two
-- transactions.  The lot is the plate's, so each plate has at most one
-- open stay; event times move forward per client.
\set w random(1, 100000)
\set lot 1 + :w % 5
\set minutes random(1, 600)
SELECT payext.vehicle_entered(:lot, 'BK' || :w, now() - make_interval(mins => :minutes));
SELECT payext.vehicle_exited(:lot, 'BK' || :w, now());
