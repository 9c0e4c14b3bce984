-- The source commit time (Debezium's source.ts_us / ts_ms) of the newest
-- change each batch applied, and when that batch applied it, written in the
-- batch's transaction together with the position: `pgsink status` reads
-- from them how far the target is behind the source, from any machine.
ALTER TABLE offsets ADD COLUMN source_ts timestamptz, ADD COLUMN source_applied_at timestamptz;
