package dedup

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TombstonesTable is the quoted, schema-qualified delete-tombstone ledger
// of pgsink's tables in schema: one row per deleted key and its version,
// which the version guard consults (I4).
func TombstonesTable(schema string) string {
	return pgx.Identifier{schema, "tombstones"}.Sanitize()
}

// MovedRowsTable is the quoted, schema-qualified ledger of key moves
// (Debezium's delete + create of a primary-key change) whose create left
// columns unchanged: what the old key's row held, for the new key's row.
func MovedRowsTable(schema string) string {
	return pgx.Identifier{schema, "moved_rows"}.Sanitize()
}

// OutboxEventsTable is the quoted, schema-qualified outbox event-id ledger
// of pgsink's tables in schema: one row per applied outbox event.
func OutboxEventsTable(schema string) string {
	return pgx.Identifier{schema, "outbox_events"}.Sanitize()
}

// Forget deletes inside tx every ledger entry of target (schema.table), so
// that a replay rebuilding it from nothing is refused neither by its old
// deletes nor by its old event ids, and sweeps again after the snapshots
// it replays (a swept snapshot end would not).
func (l Ledgers) Forget(ctx context.Context, tx DB, target string) error {
	for _, ledger := range []struct{ name, table string }{{"tombstones", l.tombstones}, {"moved_rows", l.movedRows}, {"outbox_events", l.outboxEvents}, {"snapshots", l.snapshots}} {
		if _, err := tx.Exec(ctx, "DELETE FROM "+ledger.table+" WHERE target = $1", target); err != nil {
			return fmt.Errorf("clear %s of %s: %w", ledger.name, target, err)
		}
	}
	return nil
}
