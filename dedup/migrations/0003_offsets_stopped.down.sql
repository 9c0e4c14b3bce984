ALTER TABLE offsets DROP COLUMN stopped_reason, DROP COLUMN stopped_at;
