-- apply.transaction.staging: unlogged (docs/transactions.md, "Unlogged
-- staging"). PostgreSQL empties every UNLOGGED table at crash recovery, and
-- a promoted standby holds none of their rows, while the stagers' offsets
-- (logged) say their records are staged. tx_staging_marker is UNLOGGED:
-- emptied together with tx_staged, so a marker missing or behind
-- tx_staging_generation (logged) means staged records may be lost. One of
-- each per schema, as tx_staged is.
CREATE TABLE tx_staging_generation (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation bigint  NOT NULL
);
CREATE UNLOGGED TABLE tx_staging_marker (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation bigint  NOT NULL
);
-- tx_staging_partitions: per data partition, the generation its latest
-- staging transaction checked the marker against, written in that
-- transaction (so by the partition's owner, behind its offsets
-- compare-and-set), and the lowest offset it ever staged: a partition
-- staged under an older generation rewinds to its frontier (tx_frontier's
-- offset + 1), or, with nothing of it applied yet, to first_offset.
CREATE TABLE tx_staging_partitions (
    group_id     text    NOT NULL,
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    generation   bigint  NOT NULL,
    first_offset bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
-- Generation 1 for what is staged already: no partition rewinds on upgrade.
-- A partition with records staged and none applied (no tx_frontier row)
-- keeps the lowest of them as where it would rewind to.
INSERT INTO tx_staging_generation (generation) VALUES (1);
INSERT INTO tx_staging_marker (generation) VALUES (1);
INSERT INTO tx_staging_partitions (group_id, topic, partition, generation, first_offset)
SELECT group_id, topic, partition, 1, min(kafka_offset) FROM tx_staged GROUP BY group_id, topic, partition;
