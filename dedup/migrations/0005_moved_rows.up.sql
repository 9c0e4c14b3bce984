-- The two halves of a key move that Debezium sends as a delete of the old key
-- and a create of the new one (a primary-key change) may be applied in either
-- order, from different partitions. Under REPLICA IDENTITY DEFAULT the create
-- carries a placeholder for each unchanged TOASTed column, whose value only the
-- old key's row holds. One row per move, written by whichever half comes
-- first and completed by the other:
--   key, commit_lsn, lsn: the old key (rendered as in tombstones) and the
--     move's version, which both halves carry;
--   kept: the old key's row just before the move (to_jsonb of the target
--     row), written by the delete before it deletes the row;
--   new_key, new_commit_lsn, new_lsn, awaiting, copied: the new key, the
--     version its row was written at, the columns the create left unchanged
--     and the values it copied into them (JSON null where none), written by
--     the create, so that a delete applied later can correct them while the
--     new row still holds what was copied.
-- Pruned with the tombstones (retention.tombstones).
CREATE TABLE moved_rows (
    target         text        NOT NULL,
    key            jsonb       NOT NULL,
    commit_lsn     bigint      NOT NULL,
    lsn            bigint      NOT NULL,
    kept           jsonb,
    new_key        jsonb,
    new_commit_lsn bigint,
    new_lsn        bigint,
    awaiting       text[],
    copied         jsonb,
    moved_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, key, commit_lsn, lsn)
);
CREATE INDEX moved_rows_moved_at ON moved_rows (moved_at);
