-- One row per table snapshot whose end pgsink has applied: the target, the
-- topic it comes from, and the snapshot's version (commit_lsn, lsn), which
-- every record of that snapshot carries. Written in the transaction that
-- applies the table's last snapshot record (I1). watermarks are the topic's
-- partitions' high watermarks read after that; once every partition's
-- offset row has reached its watermark, every snapshot record of the table
-- has been applied, and the rows of target older than the snapshot, which it
-- did not read, are swept (deleted) in one transaction that sets swept and
-- swept_at: exactly once.
CREATE TABLE snapshots (
    group_id   text        NOT NULL,
    target     text        NOT NULL,
    topic      text        NOT NULL,
    commit_lsn bigint      NOT NULL,
    lsn        bigint      NOT NULL,
    ended_at   timestamptz NOT NULL DEFAULT now(),
    watermarks bigint[],
    swept      bigint,
    swept_at   timestamptz,
    PRIMARY KEY (group_id, target, topic, commit_lsn, lsn)
);
CREATE INDEX snapshots_pending ON snapshots (group_id) WHERE swept_at IS NULL;
