-- tx_staging_marker now has tx_staged's persistence: pgsink run alters both
-- in one transaction and, at start, makes the marker as tx_staged when they
-- differ (docs/transactions.md, "Unlogged staging"), so that a crash of the
-- target in logged mode, which keeps tx_staged, is no longer taken for a
-- reset that rewinds every partition. Nothing here alters the marker: on a
-- live fleet an ALTER would queue behind a resolver's long apply, and every
-- staging transaction behind it (see 0012); the start-up step has a lock
-- timeout and goes on without it.
--
-- This version is also a fence: a pgsink that knows only 0013 keeps the
-- marker unlogged and alters tx_staged alone, which beside a marker made
-- logged leaves an unlogged tx_staged whose crash no one sees. Its
-- migrate step refuses a schema at a version it has no file for. The
-- comments tell an operator who alters either table by hand to alter both.
COMMENT ON TABLE tx_staged IS 'pgsink: ALTER TABLE ... SET LOGGED or UNLOGGED only together with tx_staging_marker, in one transaction (docs/transactions.md, Unlogged staging)';
COMMENT ON TABLE tx_staging_marker IS 'pgsink: has the persistence of tx_staged; ALTER both in one transaction (docs/transactions.md, Unlogged staging)';
