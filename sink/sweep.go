package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// Snapshot reconciliation: every record of one Debezium snapshot carries the
// snapshot's version, and a snapshot rewrites each row it reads at that
// version (newer than anything streamed before it). Once every record of a
// table's snapshot is applied, the target rows still older than the snapshot
// were not read by it: the source no longer has them. The table's last
// snapshot record is recorded (dedup.Snapshots) in the transaction that
// applies it; the connector sweeps once every partition of the topic has
// passed its share. See docs/internals.md, "Snapshot reconciliation".

// reconciles reports whether a snapshot of t sweeps what it did not read.
func (t *Table) reconciles() bool {
	return t.Reconcile && t.Outbox == nil && t.Deletes != DeleteIgnore
}

// SweepSkipReason says why a completed snapshot of a table that takes
// deletes is not followed by a sweep.
type SweepSkipReason string

const (
	// SweepOff: snapshot.reconcile is false, as for a table whose
	// snapshots read only part of it. Debezium's records do not say so.
	SweepOff SweepSkipReason = "reconcile_off"
	// SweepNoPositions: apply.offsets: kafka keeps no positions in
	// PostgreSQL to tell when every partition has passed the snapshot.
	SweepNoPositions SweepSkipReason = "kafka_offsets"
)

// sweepSkipped says why a completed snapshot of t is not swept, or "" if
// it is, or if t takes no deletes (outbox tables, deletes: ignore), for
// which a sweep means nothing.
func (a *Applier) sweepSkipped(t *Table) SweepSkipReason {
	switch {
	case t.Outbox != nil || t.Deletes == DeleteIgnore:
		return ""
	case !t.Reconcile:
		return SweepOff
	case a.opts.KafkaOffsets:
		return SweepNoPositions
	}
	return ""
}

// queueSnapshotEnds records, in the span's transaction, the snapshot ends
// whose last record the span applies, and counts those no sweep follows.
func (a *Applier) queueSnapshotEnds(x *txn, s span) {
	for i := s.lo; i < s.hi; i++ {
		it := &s.batch.Items[i]
		if it.Err != nil || it.Table == nil || !it.Change.SnapshotMark.EndsTable() {
			continue
		}
		if reason := a.sweepSkipped(it.Table); reason != "" {
			x.stats.countUnswept(reason, 1)
			continue
		}
		if !it.Table.reconciles() {
			continue
		}
		a.snapshots.QueueEnd(x.queue, dedup.SnapshotEnd{
			Group: s.batch.Claim.Group, Target: it.Table.Ref(), Topic: it.Record.Topic,
			CommitLSN: it.Change.Version.CommitLSN, LSN: it.Change.Version.LSN,
		})
	}
}

// Snapshots is the store of snapshot ends the Applier records.
func (a *Applier) Snapshots() dedup.Snapshots { return a.snapshots }

// Sweep deletes, in one transaction, the rows of t older than the snapshot
// end e, the way t takes deletes (hard: with tombstones; soft: marked), if
// e is due (dedup.Snapshots.LockForSweep); it returns how many rows it
// swept, or dedup.ErrNotSweepable.
func (a *Applier) Sweep(ctx context.Context, t *Table, e dedup.SnapshotEnd) (int64, error) {
	if t.Ref() != e.Target {
		return 0, fmt.Errorf("sink: sweep %s with table %s", e, t.Ref())
	}
	var swept int64
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if err := a.snapshots.LockForSweep(ctx, tx, e); err != nil {
			return err
		}
		if t.reconciles() {
			v := debezium.Version{CommitLSN: e.CommitLSN, LSN: e.LSN}
			args := []any{v.CommitLSN, v.LSN, sweptVersion(v).LSN}
			if t.Deletes == DeleteHard {
				args = append(args, t.Ref())
			}
			if err := tx.QueryRow(ctx, a.statementsFor(t).sweep(), args...).Scan(&swept); err != nil {
				return fmt.Errorf("sink: sweep %s: %w", e, err)
			}
		}
		return a.snapshots.MarkSwept(ctx, tx, e, swept)
	})
	if err != nil && !errors.Is(err, dedup.ErrNotSweepable) {
		return 0, err
	}
	return swept, err
}

// sweptVersion is the version a swept row's tombstone (or soft-delete
// marker) gets: just below the snapshot's, so that it stops every older
// event of the key, and a record of the snapshot itself applied after the
// sweep (one a producer retry appended past a watermark) still brings its
// row back. LSNs are 8-byte aligned, so no event has this version.
func sweptVersion(v debezium.Version) debezium.Version {
	return debezium.Version{CommitLSN: v.CommitLSN, LSN: v.LSN - 1}
}

// sweep is the statement that deletes the table's rows older than the
// snapshot version ($1, $2), marked or tombstoned at ($1, $3), and returns
// how many. $4 is the table's ledger name (hard deletes only).
func (st *statements) sweep() string {
	t := st.table
	// The guard's comparison, also where a test breaks the guard on purpose
	// (noGuard): a sweep without it would delete the snapshot's own rows.
	older := fmt.Sprintf("(coalesce(t.%s, -1), coalesce(t.%s, -1)) < ($1, $2)", q(t.CommitColumn), q(t.LSNColumn))
	if t.Deletes == DeleteSoft {
		return "WITH swept AS (\n    UPDATE " + t.Ident() + " AS t\n       SET " + q(t.SoftDeleteColumn) + " = true, " + q(t.CommitColumn) + " = $1, " + q(t.LSNColumn) + " = $3\n" +
			"     WHERE " + older + " AND t." + q(t.SoftDeleteColumn) + " IS DISTINCT FROM true\n     RETURNING 1)\n" +
			"SELECT count(*) FROM swept"
	}
	return "WITH swept AS (\n    DELETE FROM " + t.Ident() + " AS t\n     WHERE " + older + "\n     RETURNING " + st.keyJSON("t") + " AS key),\n" +
		"ledgered AS (\n    INSERT INTO " + st.ledger + " AS tb (target, key, commit_lsn, lsn)\n    SELECT $4, swept.key, $1, $3 FROM swept\n" + tombstoneConflict + ")\n" +
		"SELECT count(*) FROM swept"
}

// TableOf returns the target table of topic, reading its catalog the first
// time, for a sweep that no batch of this instance has routed yet. target
// is the table's Ref as the snapshot end recorded it: when the record
// decides a topic's target, the topic alone does not name the table.
func (r *Router) TableOf(ctx context.Context, topic, target string) (*Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.routes[topic]; ok && rt.table != nil {
		return rt.table, nil
	}
	tc, err := r.cfg.Resolve(topic)
	if err != nil {
		return nil, err
	}
	if tc.Target.TableName.IsZero() {
		// The snapshot end was recorded under this topic's rule, whose
		// options apply to every table it derives.
		schema, name, ok := strings.Cut(target, ".")
		if !ok {
			return nil, fmt.Errorf("sink: snapshot end of topic %q names no schema-qualified target: %q", topic, target)
		}
		derived := *tc
		derived.Target.TableName = config.TableName{Schema: schema, Name: name}
		tc = &derived
	}
	if tbl, ok := r.tables[tc.Target.String()]; ok {
		return tbl, nil
	}
	tbl, err := r.read(ctx, tc)
	if err != nil {
		return nil, err
	}
	r.tables[tc.Target.String()] = tbl
	return tbl, nil
}
