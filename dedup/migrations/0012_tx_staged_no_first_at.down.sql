CREATE INDEX tx_staged_first_at ON tx_staged (group_id, staged_at) WHERE total_order = 1;
