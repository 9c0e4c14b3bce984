ALTER TABLE offsets DROP COLUMN source_ts, DROP COLUMN source_applied_at;
