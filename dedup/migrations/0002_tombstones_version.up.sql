-- The newest tombstone of all, found with one index descent: the upsert
-- skips the per-key tombstone probe for every staged row newer than it,
-- which in a forward-moving stream is nearly every row. It leads with the
-- version, not the target, so that the per-key probe, which filters on
-- target and key, can only use the primary key (a target-led index is as
-- good as the primary key to a planner that has no statistics for a new
-- target, and it picked it, scanning every tombstone of the target per row).
CREATE INDEX tombstones_version ON tombstones (commit_lsn, lsn);
