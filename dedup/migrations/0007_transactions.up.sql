-- apply.consistency: transaction (docs/transactions.md).
-- tx_staged: the records of source transactions, staged by the partitions
-- that consume them, each in the transaction that moves its partition's
-- offset past it (I1), as the raw Kafka record, so that the resolver applies
-- them through the same decoder and statements as a batch. Keyed by the
-- transaction and the event's place in it, so a record Debezium re-emits at a
-- new offset is staged once. dead marks a record the stager dead-lettered:
-- counted towards its transaction's END, applied by no one. Rows are deleted
-- by the resolver's transaction that applies them.
CREATE TABLE tx_staged (
    group_id        text        NOT NULL,
    tx_id           bigint      NOT NULL,
    total_order     bigint      NOT NULL,
    data_collection text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    record_ts       timestamptz,
    record_key      bytea,
    record_value    bytea,
    headers         jsonb       NOT NULL DEFAULT '[]',
    dead            boolean     NOT NULL DEFAULT false,
    staged_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, tx_id, total_order)
);
CREATE INDEX tx_staged_at ON tx_staged (group_id, staged_at);
-- tx_resolved: the source transactions the resolver applied, written in the
-- transaction that applies them; a record of one of them is never staged
-- again (a replay, a re-emission), and an END of one is passed over. Pruned
-- with the tombstones (retention.tombstones).
CREATE TABLE tx_resolved (
    group_id    text        NOT NULL,
    tx_id       bigint      NOT NULL,
    event_count bigint      NOT NULL,
    resolved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, tx_id)
);
CREATE INDEX tx_resolved_at ON tx_resolved (resolved_at);
-- consistency_modes: the apply.consistency a group's positions were made
-- under, set at start: a switch that would stall or lose records is refused
-- (positions of partition mode under transaction mode: their transactions
-- were never staged).
CREATE TABLE consistency_modes (
    group_id    text        PRIMARY KEY,
    consistency text        NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
