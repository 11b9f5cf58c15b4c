-- The README's Upgrading step: every role gets again what its capabilities
-- list (a release may have added objects to them); rows of roles dropped
-- since are passed over.
SELECT count(payext.grant_capability(g.capability, g.grantee))
  FROM payext.capability_grant g
  JOIN pg_catalog.pg_roles r ON r.oid = g.grantee;
