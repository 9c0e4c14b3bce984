package dedup

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SnapshotEnd is one table snapshot whose last record pgsink applied: the
// rows of Target older than Version were not read by it and are swept once
// every partition of Topic has applied its share (see docs/internals.md,
// "Snapshot reconciliation").
type SnapshotEnd struct {
	Group, Target, Topic string
	CommitLSN, LSN       int64
	// Watermarks are the topic's partitions' high watermarks read after the
	// end was recorded, by partition number; nil until read.
	Watermarks []int64
}

func (s SnapshotEnd) String() string {
	return fmt.Sprintf("snapshot of %s from %s at (%d, %d)", s.Target, s.Topic, s.CommitLSN, s.LSN)
}

// Snapshots stores snapshot ends in the snapshots table of a schema.
type Snapshots struct {
	table, offsets string // quoted, schema-qualified
}

// NewSnapshots returns the store for pgsink's tables in schema.
func NewSnapshots(schema string) Snapshots {
	return Snapshots{table: snapshotsTable(schema), offsets: pgx.Identifier{schema, "offsets"}.Sanitize()}
}

func snapshotsTable(schema string) string { return pgx.Identifier{schema, "snapshots"}.Sanitize() }

// QueueEnd queues, in the transaction that applies a table's last snapshot
// record, the record of that snapshot's end. A redelivery of the record
// records nothing new.
func (s Snapshots) QueueEnd(b *pgx.Batch, e SnapshotEnd) {
	b.Queue("INSERT INTO "+s.table+" (group_id, target, topic, commit_lsn, lsn) VALUES ($1, $2, $3, $4, $5)\n"+
		"ON CONFLICT DO NOTHING", e.Group, e.Target, e.Topic, e.CommitLSN, e.LSN)
}

// Pending lists the group's snapshot ends not swept yet, oldest first.
func (s Snapshots) Pending(ctx context.Context, db Querier, group string) ([]SnapshotEnd, error) {
	rows, err := db.Query(ctx, "SELECT target, topic, commit_lsn, lsn, watermarks FROM "+s.table+
		"\n WHERE group_id = $1 AND swept_at IS NULL ORDER BY commit_lsn, lsn", group)
	if err != nil {
		return nil, fmt.Errorf("dedup: list snapshot ends: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SnapshotEnd, error) {
		e := SnapshotEnd{Group: group}
		err := r.Scan(&e.Target, &e.Topic, &e.CommitLSN, &e.LSN, &e.Watermarks)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("dedup: list snapshot ends: %w", err)
	}
	return out, nil
}

// SetWatermarks stores the watermarks of a snapshot end that has none yet.
func (s Snapshots) SetWatermarks(ctx context.Context, db DB, e SnapshotEnd, marks []int64) error {
	_, err := db.Exec(ctx, "UPDATE "+s.table+" SET watermarks = $6"+s.where()+" AND watermarks IS NULL",
		e.Group, e.Target, e.Topic, e.CommitLSN, e.LSN, marks)
	if err != nil {
		return fmt.Errorf("dedup: %s: store watermarks: %w", e, err)
	}
	return nil
}

func (s Snapshots) where() string {
	return "\n WHERE group_id = $1 AND target = $2 AND topic = $3 AND commit_lsn = $4 AND lsn = $5"
}

// ErrNotSweepable says a snapshot end cannot be swept now: another
// transaction holds it, it was swept already, or a partition of its topic
// has not reached its watermark.
var ErrNotSweepable = errors.New("snapshot end not sweepable now")

// LockForSweep locks the snapshot end inside tx and checks that it is due:
// not swept, with watermarks, and every partition of its topic stored at or
// past its watermark. It returns ErrNotSweepable otherwise. The lock and
// MarkSwept in the same transaction make the sweep happen exactly once.
func (s Snapshots) LockForSweep(ctx context.Context, tx DB, e SnapshotEnd) error {
	var due bool
	err := tx.QueryRow(ctx, "SELECT s.watermarks IS NOT NULL AND NOT EXISTS (\n"+
		"    SELECT FROM unnest(s.watermarks) WITH ORDINALITY AS w(mark, n)\n"+
		"     WHERE w.mark > coalesce((SELECT o.next_offset FROM "+s.offsets+" AS o\n"+
		"                               WHERE o.group_id = s.group_id AND o.topic = s.topic AND o.partition = w.n - 1), 0))\n"+
		"  FROM "+s.table+" AS s"+s.where()+" AND s.swept_at IS NULL\n   FOR UPDATE SKIP LOCKED",
		e.Group, e.Target, e.Topic, e.CommitLSN, e.LSN).Scan(&due)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !due) {
		return ErrNotSweepable
	}
	if err != nil {
		return fmt.Errorf("dedup: %s: lock: %w", e, err)
	}
	return nil
}

// MarkSwept records, in the sweep's transaction, that e swept n rows; older
// unswept ends of the same target and topic are covered by it and are
// marked swept with nothing.
func (s Snapshots) MarkSwept(ctx context.Context, tx DB, e SnapshotEnd, n int64) error {
	_, err := tx.Exec(ctx, "UPDATE "+s.table+" SET swept = CASE WHEN (commit_lsn, lsn) = ($4, $5) THEN $6 ELSE 0 END, swept_at = now()\n"+
		" WHERE group_id = $1 AND target = $2 AND topic = $3 AND (commit_lsn, lsn) <= ($4, $5) AND swept_at IS NULL",
		e.Group, e.Target, e.Topic, e.CommitLSN, e.LSN, n)
	if err != nil {
		return fmt.Errorf("dedup: %s: mark swept: %w", e, err)
	}
	return nil
}
