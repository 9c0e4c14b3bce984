DROP INDEX tx_staged_first_at;
CREATE INDEX tx_staged_at ON tx_staged (group_id, staged_at);
