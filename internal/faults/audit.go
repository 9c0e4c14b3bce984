package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/debezium"
)

// AuditEnv turns on the apply audit when set to 1: every record a
// transaction applies or dead-letters is also inserted into
// <schema>.apply_audit, whose UNIQUE (topic, partition, offset) makes any
// double apply fail loudly. For tests and fault drills; it costs a write
// per record.
const AuditEnv = "PGSINK_TEST_AUDIT"

// BreakEnv breaks pgsink on purpose for the fault suite's self-test:
// "no-version-guard" makes every write ignore the stored row version (I3).
// Never set it anywhere else.
const BreakEnv = "PGSINK_TEST_BREAK"

func AuditTable(schema string) string { return pgx.Identifier{schema, "apply_audit"}.Sanitize() }

// CreateAudit creates the audit table if needed. Instances start together,
// and CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL (the loser of
// the race fails on pg_type or pg_class): a transaction-scoped advisory lock
// makes the creators take turns.
func CreateAudit(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, schema string) error {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "pgsink.apply_audit:"+schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+AuditTable(schema)+` (
			topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(), UNIQUE (topic, partition, "offset"))`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create apply audit table: %w", err)
	}
	return nil
}

// AuditHook returns the sink's BeforeCommit hook, which queues the audit rows
// into the transaction's last pipeline.
func AuditHook(schema string) func(b *pgx.Batch, records []debezium.Record) {
	table := AuditTable(schema)
	return func(b *pgx.Batch, records []debezium.Record) {
		if len(records) == 0 {
			return
		}
		topics := make([]string, len(records))
		partitions := make([]int32, len(records))
		offsets := make([]int64, len(records))
		for i, r := range records {
			topics[i], partitions[i], offsets[i] = r.Topic, r.Partition, r.Offset
		}
		b.Queue(`INSERT INTO `+table+` (topic, partition, "offset") SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])`,
			topics, partitions, offsets).Fn = func(br pgx.BatchResults) error {
			_, err := br.Exec()
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
				// Not wrapped: a unique violation here means a record was
				// applied twice, which must stop the instance, not be
				// isolated into the dead letters like a bad record.
				return fmt.Errorf("apply audit: a record applied twice: %v", err)
			}
			if err != nil {
				// Anything else (the connection lost in a PostgreSQL
				// restart) is the transaction's failure like any other:
				// wrapped, so the sink retries it as it would its own
				// statements.
				return fmt.Errorf("apply audit: %w", err)
			}
			return nil
		}
	}
}

// AuditRewound forgets, in tx, the audit rows of a partition's records in
// [to, from): a rewind after a reset of the staging table reads them again
// (dedup.RewindStaging), as a replay does, and the audit must not take
// that for a double apply.
func AuditRewound(ctx context.Context, tx pgx.Tx, schema, topic string, partition int32, from, to int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+AuditTable(schema)+` WHERE topic = $1 AND partition = $2 AND "offset" >= $3 AND "offset" < $4`,
		topic, partition, to, from); err != nil {
		return fmt.Errorf("apply audit: forget the rewound records: %w", err)
	}
	return nil
}
