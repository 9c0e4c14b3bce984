-- tx_resolved keyed by the commit position too: Debezium's transaction id is
-- "<txId>:<lsn>" with txId PostgreSQL's 32-bit xid, which comes round again
-- after about 2^32 transactions; keyed by the xid alone, a group resolving
-- that many within retention.tombstones could meet an id still recorded and
-- pass the new transaction's END over as applied. commit_lsn is the LSN part
-- of the END's id (the transaction's commit position): an END is applied
-- when (tx_id, commit_lsn) is recorded, and a record of a transaction is of
-- a recorded one when its own LSN (source.lsn) is below that commit_lsn.
-- Rows recorded before this migration have commit_lsn 0, which matches every
-- END and record of their xid, as before, until retention.tombstones prunes
-- them (docs/transactions.md, Tables).
ALTER TABLE tx_resolved ADD COLUMN commit_lsn bigint NOT NULL DEFAULT 0;
ALTER TABLE tx_resolved DROP CONSTRAINT tx_resolved_pkey;
ALTER TABLE tx_resolved ADD PRIMARY KEY (group_id, tx_id, commit_lsn);
