-- Back to 0013's rule, which a pgsink that knows only 0013 relies on: the
-- marker is unlogged whatever tx_staged is (that pgsink alters tx_staged
-- alone). Unlogged is safe beside either persistence of tx_staged.
ALTER TABLE tx_staging_marker SET UNLOGGED;
COMMENT ON TABLE tx_staging_marker IS NULL;
COMMENT ON TABLE tx_staged IS NULL;
