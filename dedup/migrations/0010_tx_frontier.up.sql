-- apply.transaction.max_staged_bytes: how far a data partition may stage
-- ahead of the resolver (docs/transactions.md, "Staging ahead").
-- tx_frontier: per data partition, the highest Kafka offset of its staged
-- records the resolver applied, written in the resolver's apply transaction.
-- A partition's records are resolved in their offset order (Debezium writes
-- them in commit order), so every record of it staged above that offset is
-- staged and not applied yet: what the partition's stager counts against
-- the bound.
CREATE TABLE tx_frontier (
    group_id     text    NOT NULL,
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    kafka_offset bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
-- tx_resolver_waits: a row while the resolver waits for events not staged
-- yet (the END at end_offset of the transaction topic, whose transaction is
-- incomplete): every stager then stages
-- past the bound, since the records the resolver needs may be held by one
-- that is at its bound (a transaction larger than it). Deleted by the
-- resolver's next apply transaction.
CREATE TABLE tx_resolver_waits (
    group_id   text        PRIMARY KEY,
    end_offset bigint      NOT NULL,
    since      timestamptz NOT NULL DEFAULT now()
);
