-- pgsink's own tables. They are created in the schema named in the
-- configuration (postgres.schema, default pgsink): the migration runs with
-- search_path set to it, so names here are unqualified.

-- One row per consumed partition: the next offset to apply and the epoch of
-- its current owner (invariants I1, I2). Written only in the transaction that
-- applies the data it covers.
CREATE TABLE offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    epoch       bigint      NOT NULL CHECK (epoch > 0),
    owner       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Deleted keys and truncated tables, with the source version of the delete,
-- so that an older event (Debezium re-emits them after its restarts, at new
-- offsets) cannot bring a deleted row back (I4). key is the target row's key
-- as PostgreSQL renders it (jsonb_build_array of the key columns), or JSON
-- null for a truncate of the whole table.
CREATE TABLE tombstones (
    target     text        NOT NULL,
    key        jsonb       NOT NULL,
    commit_lsn bigint      NOT NULL,
    lsn        bigint      NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, key)
);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);

-- Outbox event ids already applied to a target: a redelivered or republished
-- event is recognised and skipped.
CREATE TABLE outbox_events (
    target     text        NOT NULL,
    event_id   text        NOT NULL,
    topic      text        NOT NULL,
    partition  integer     NOT NULL,
    "offset"   bigint      NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, event_id)
);
CREATE INDEX outbox_events_applied_at ON outbox_events (applied_at);

-- Records that could not be applied, written in the same transaction that
-- moves the offset past them (I5).
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    target      text,
    key         bytea,
    value       bytea,
    headers     jsonb,
    error       text        NOT NULL,
    error_class text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (group_id, topic, partition, "offset")
);
