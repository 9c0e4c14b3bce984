-- Back to one row per (group_id, tx_id): of an xid recorded more than once
-- (it came round), the latest commit is kept.
DELETE FROM tx_resolved r USING tx_resolved n
 WHERE n.group_id = r.group_id AND n.tx_id = r.tx_id AND n.commit_lsn > r.commit_lsn;
ALTER TABLE tx_resolved DROP CONSTRAINT tx_resolved_pkey;
ALTER TABLE tx_resolved DROP COLUMN commit_lsn;
ALTER TABLE tx_resolved ADD PRIMARY KEY (group_id, tx_id);
