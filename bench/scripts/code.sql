-- Code issuance alone.
\set w random(1, 100000)
SELECT payext.request_payment(:w);
