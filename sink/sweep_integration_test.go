//go:build integration

package sink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// snapshotBatch is a batch of snapshot reads at one version, the last one
// carrying the table's last-record mark.
func (f *fixture) snapshotBatch(version int64, ids ...int64) *sink.Batch {
	var events []ev
	for _, id := range ids {
		events = append(events, ev{debezium.OpRead, id, "snap", "n", version})
	}
	b := f.batch(events...)
	for i := range b.Items {
		b.Items[i].Change.Snapshot = true
		b.Items[i].Change.SnapshotMark = debezium.SnapshotRow
	}
	b.Items[len(b.Items)-1].Change.SnapshotMark = debezium.SnapshotLastOfTable
	return b
}

// pendingEnd returns the one snapshot end recorded and not swept.
func (f *fixture) pendingEnd() dedup.SnapshotEnd {
	f.t.Helper()
	pending, err := dedup.NewSnapshots(schema).Pending(context.Background(), f.pool, "g")
	if err != nil || len(pending) != 1 {
		f.t.Fatalf("pending snapshot ends: %v, %v; want one", pending, err)
	}
	return pending[0]
}

func (f *fixture) sweep(e dedup.SnapshotEnd) (int64, error) {
	return f.applier.Sweep(context.Background(), f.table, e)
}

// TestSweepDeletesWhatTheSnapshotDidNotRead: after a snapshot at version
// 100 that read keys 1 and 3, keys 2 and 4 (streamed before it) are swept
// with tombstones, once every partition passed its watermark, exactly once;
// key 5, streamed after the snapshot began, stays; an old event of a swept
// key stays out, a record of the snapshot itself applied late comes in.
func TestSweepDeletesWhatTheSnapshotDidNotRead(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.table.Reconcile = true
	ctx := context.Background()
	f.apply(ev{debezium.OpCreate, 1, "a", "n", 10}, ev{debezium.OpCreate, 2, "b", "n", 20},
		ev{debezium.OpCreate, 3, "c", "n", 30}, ev{debezium.OpCreate, 4, "d", "n", 40})
	if _, err := f.applier.Apply(ctx, f.snapshotBatch(100, 1, 3)); err != nil {
		t.Fatal(err)
	}
	f.apply(ev{debezium.OpCreate, 5, "e", "n", 150})

	e := f.pendingEnd()
	if e.Target != f.table.Ref() || e.Topic != "src.public.orders" || e.CommitLSN != 100 || e.LSN != 100 || e.Watermarks != nil {
		t.Fatalf("snapshot end %+v", e)
	}
	if _, err := f.sweep(e); !errors.Is(err, dedup.ErrNotSweepable) {
		t.Fatalf("sweep without watermarks: %v, want ErrNotSweepable", err)
	}
	snaps := dedup.NewSnapshots(schema)
	if err := snaps.SetWatermarks(ctx, f.pool, e, []int64{f.storedOffset() + 1}); err != nil {
		t.Fatal(err)
	}
	e = f.pendingEnd()
	if _, err := f.sweep(e); !errors.Is(err, dedup.ErrNotSweepable) {
		t.Fatalf("sweep before the partition reached its watermark: %v, want ErrNotSweepable", err)
	}
	f.apply(ev{debezium.OpUpdate, 5, "e2", "n", 160}) // the partition reaches the watermark
	n, err := f.sweep(e)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v; want 2 rows", n, err)
	}
	f.want("1:snap:n@100 3:snap:n@100 5:e2:n@160")
	if _, err := f.sweep(e); !errors.Is(err, dedup.ErrNotSweepable) {
		t.Fatalf("second sweep: %v, want ErrNotSweepable", err)
	}
	var tombstones int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tombstones WHERE target = $1 AND commit_lsn = 100 AND lsn = 99`, f.table.Ref()).Scan(&tombstones); err != nil || tombstones != 2 {
		t.Fatalf("sweep tombstones: %d, %v; want 2", tombstones, err)
	}
	if st := f.apply(ev{debezium.OpUpdate, 2, "old", "n", 25}); st.Stale != 1 {
		t.Fatalf("old event of a swept key: %+v, want stale", st)
	}
	if _, err := f.applier.Apply(ctx, f.snapshotBatch(100, 4)); err != nil {
		t.Fatal(err)
	}
	f.want("1:snap:n@100 3:snap:n@100 4:snap:n@100 5:e2:n@160")
}

// TestSweepSoft marks the rows a snapshot did not read deleted, at a version
// just below the snapshot's, and counts none twice.
func TestSweepSoft(t *testing.T) {
	f := newFixture(t, sink.DeleteSoft, false)
	f.table.Reconcile = true
	ctx := context.Background()
	f.apply(ev{debezium.OpCreate, 1, "a", "n", 10}, ev{debezium.OpCreate, 2, "b", "n", 20})
	if _, err := f.applier.Apply(ctx, f.snapshotBatch(100, 1)); err != nil {
		t.Fatal(err)
	}
	e := f.pendingEnd()
	if err := dedup.NewSnapshots(schema).SetWatermarks(ctx, f.pool, e, []int64{f.storedOffset()}); err != nil {
		t.Fatal(err)
	}
	n, err := f.sweep(f.pendingEnd())
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1 row", n, err)
	}
	f.want("1:snap:n@100 2:b:n@99 deleted")
}

// TestSweepOptOut: a table with snapshot.reconcile off records no snapshot
// end, so nothing is swept, and the completed snapshot is counted as not
// reconciled.
func TestSweepOptOut(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 2, "b", "n", 20})
	st, err := f.applier.Apply(context.Background(), f.snapshotBatch(100, 1))
	if err != nil {
		t.Fatal(err)
	}
	if n := st.UnsweptSnapshots[sink.SweepOff]; n != 1 || len(st.UnsweptSnapshots) != 1 {
		t.Fatalf("unswept snapshots %v, want one %s", st.UnsweptSnapshots, sink.SweepOff)
	}
	pending, err := dedup.NewSnapshots(schema).Pending(context.Background(), f.pool, "g")
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending snapshot ends: %v, %v; want none", pending, err)
	}
	f.want("1:snap:n@100 2:b:n@20")
}
