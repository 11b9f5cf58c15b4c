-- A call of the library, answered by its SQLSTATE as a WARNING.
DO $$
BEGIN
  PERFORM payext.open_wallet('upgrade_probe');
  RAISE WARNING '00000';
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING '%', SQLSTATE;
END
$$;
