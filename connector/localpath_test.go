package connector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/txlocal"
)

// nothingStaged is a frontierReader of a partition with nothing staged.
type nothingStaged struct{}

func (nothingStaged) FrontierOf(context.Context, dedup.PartitionID) (dedup.Frontier, error) {
	return dedup.Frontier{Applied: -1}, nil
}

func (nothingStaged) StagedBytesAbove(context.Context, dedup.PartitionID, int64) (int64, int64, error) {
	return 0, 0, nil
}

// directWorker is a data partition under the local path, its resolver local.
func directWorker(t *testing.T, a *fakeApplier) (*worker, *txlocal.Store) {
	t.Helper()
	store := txlocal.New(1<<20, 1<<20)
	store.SetResolver(true)
	w := newWorker(t, config.Batch{MaxRecords: 10, MaxWait: config.Duration(time.Millisecond)}, 0, a, func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.local = advancingApplier{a}, nothingStaged{}, 1<<20, store
		d.metrics.Tx.store.Store(store) // as the runner does
	})
	return w, store
}

// held waits until the store holds n records of the worker's partition for
// transaction 1, takes them as the resolver does, and returns them.
func held(t *testing.T, store *txlocal.Store, n int) *txlocal.Taken {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for time.Now().Before(deadline) {
		if tk := store.Take(map[int64]bool{1: true}); tk != nil {
			if len(tk.Parts[0].Items) == n {
				return tk
			}
			tk.Done(false)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the store never held %d records of the partition", n)
	return nil
}

// TestDirectPartitionHandsOver: a direct partition's records of a source
// transaction go to the store, not to its applier, and its offsets row is
// not moved for them; once the resolver committed them, its own batch of a
// record without transaction metadata starts from the row as the resolver
// left it; such a record after records held makes it leave: it reads again
// from the row's position (a seek), and applies nothing meanwhile. Fails
// without the local path (the records are applied by the worker).
func TestDirectPartitionHandsOver(t *testing.T) {
	a := newFakeApplier()
	w, store := directWorker(t, a)
	w.start()
	w.queue(0, 0, "tx:1", "tx:2")
	tk := held(t, store, 2)
	none(t, a.calls, "an apply of records handed to the resolver")
	if p := tk.Applying(); p[0].Claim.NextOffset != 0 || p[0].Next() != 2 {
		t.Fatalf("taken from %d to %d, want from 0 (the row) to 2", p[0].Claim.NextOffset, p[0].Next())
	}
	tk.Done(true) // the resolver committed them and moved the row to 2

	w.queue(0, 2, "plain")
	got := next(t, a.calls, "the worker's own batch")
	if got.from != 2 || got.next != 3 || len(got.offsets) != 1 {
		t.Fatalf("own batch from %d to %d with %v, want from 2 (the row as the resolver left it) to 3", got.from, got.next, got.offsets)
	}

	w.queue(0, 3, "tx:3", "plain")
	if seek := next(t, w.poll.seeks, "a seek after leaving"); seek != 3 {
		t.Fatalf("left and read again from %d, want 3: the row's position, past nothing unapplied", seek)
	}
	none(t, a.calls, "an apply when leaving")
	if _, _, ok := store.Direct(w.id); ok {
		t.Fatal("still direct after leaving")
	}
}

// TestDirectPartitionRevoked: revoked with records held, the partition
// drops them from the store (once no apply holds them) and gives their
// bytes back to the buffer budget; its row stays where it was, for the
// next owner to read them again.
func TestDirectPartitionRevoked(t *testing.T) {
	a := newFakeApplier()
	w, store := directWorker(t, a)
	w.start()
	w.queue(0, 0, "tx:1", "tx:2")
	tk := held(t, store, 2)
	stopped := make(chan struct{})
	go func() { w.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("the revoked worker returned while an apply held its records")
	case <-time.After(100 * time.Millisecond):
	}
	tk.Done(false)
	<-stopped
	if _, _, ok := store.Direct(w.id); ok {
		t.Fatal("the revoked partition is still in the store")
	}
	none(t, a.calls, "an apply")
	if n := w.unreleased(); n != 0 {
		t.Fatalf("%d bytes of the buffer budget not given back", n)
	}
}

// queueTombstone hands the worker a tombstone (a record that writes nothing)
// at offset.
func queueTombstone(w *worker, offset int64) {
	m := message(offset, "")
	m.Value = nil
	w.queued += messageBytes(m)
	if !w.in.offer(envelope{msg: m, gen: 0, at: w.at, cost: messageBytes(m)}) {
		panic("queue full")
	}
}

// TestDirectPartitionPassesTombstones: a direct partition's last records
// are tombstones (a delete's, after its transaction's records). Held behind
// records of a transaction, the resolver's apply that takes those moves the
// row past the tombstones too; with nothing held, the worker moves its row
// past them itself. Either way the position reaches the topic's end. Fails
// without Store.Passed and the worker's empty batch (the row stays before
// the tombstones, and the bench's latency run never saw its end).
func TestDirectPartitionPassesTombstones(t *testing.T) {
	a := newFakeApplier()
	w, store := directWorker(t, a)
	w.start()
	w.queue(0, 0, "tx:1", "tx:2")
	queueTombstone(w, 2)
	deadline := time.Now().Add(testWait)
	var tk *txlocal.Taken
	for time.Now().Before(deadline) {
		if tk = store.Take(map[int64]bool{1: true}); tk != nil && tk.Parts[0].Next() == 3 {
			break
		}
		if tk != nil {
			tk.Done(false)
			tk = nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	if tk == nil {
		t.Fatal("the resolver's take never covered the tombstone at 2")
	}
	tk.Done(true)
	if claim, _, _ := store.Direct(w.id); claim.NextOffset != 3 {
		t.Fatalf("row at %d after the apply, want 3: past the tombstone", claim.NextOffset)
	}
	queueTombstone(w, 3)
	got := next(t, a.calls, "the worker's batch past a tombstone with nothing held")
	if got.from != 3 || got.next != 4 || len(got.offsets) != 0 {
		t.Fatalf("batch from %d to %d with %v, want an empty one from 3 to 4", got.from, got.next, got.offsets)
	}
}

// TestDirectPartitionHoleJudgedFromWhatItHandedOver: a direct partition's
// own claim stays where it entered while the resolver moves its row past
// the records it handed over; a hole mark whose low watermark is that row
// (the partition needs nothing below it) must not stop it, and one above
// it stops it where its row stands, out of the direct state.
func TestDirectPartitionHoleJudgedFromWhatItHandedOver(t *testing.T) {
	a := newFakeApplier()
	w, store := directWorker(t, a)
	w.start()
	w.queue(0, 0, "tx:1", "tx:2")
	held(t, store, 2).Done(true) // the row moved to 2 with them
	w.queueHole(0, 2)
	w.queue(0, 2, "tx:3")
	held(t, store, 1).Done(false)
	none(t, w.poll.stops, "a stop of a partition not behind the low watermark")

	w.queueHole(0, 10)
	reason := next(t, w.poll.stops, "the stop at a real hole")
	if !strings.Contains(reason, "next offset 2, Kafka now holds from 10") {
		t.Errorf("stopped with %q, want it at offset 2, where its row stands (the record it held dropped)", reason)
	}
	if _, _, ok := store.Direct(w.id); ok {
		t.Error("the stopped partition is still direct: the resolver could move its row past the stop")
	}
}

// queueKeyed hands the worker a record of key at offset; an empty value is
// a tombstone.
func queueKeyed(w *worker, offset int64, key, value string) {
	m := message(offset, value)
	m.Key = []byte(key)
	if value == "" {
		m.Value = nil
	}
	w.queued += messageBytes(m)
	if !w.in.offer(envelope{msg: m, gen: w.gen.Load(), at: w.at, cost: messageBytes(m)}) {
		panic("queue full")
	}
}

// awaitDirect waits until the worker's partition is direct (or not) by its
// gauge, pgsink_transaction_direct_partition.
func awaitDirect(t *testing.T, w *worker, want float64) {
	t.Helper()
	g := w.metrics.Tx.Direct.WithLabelValues(w.labels[0], w.labels[1])
	deadline := time.Now().Add(testWait)
	for value(g) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pgsink_transaction_direct_partition = %v, want %v", value(g), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDirectPartitionMetrics: pgsink_transaction_direct_partition is 0
// while the partition stages, 1 once it entered the direct state, 0 again
// when it leaves; each leave counts once in
// pgsink_transaction_direct_leaves_total under its cause, and no other;
// pgsink_transaction_direct_held_records and _bytes show the records held,
// and 0 once the leave dropped them.
func TestDirectPartitionMetrics(t *testing.T) {
	for _, tc := range []struct {
		cause txlocal.Cause
		leave func(*worker, *txlocal.Store)
	}{
		{txlocal.CauseNoTransaction, func(w *worker, _ *txlocal.Store) { w.queue(0, 2, "plain") }},
		{txlocal.CauseInterleaved, func(w *worker, _ *txlocal.Store) { w.queue(0, 2, "tx2:1", "tx:3") }},
		{txlocal.CauseResolverWait, func(w *worker, s *txlocal.Store) {
			s.LeaveAll(txlocal.Leaving{Cause: txlocal.CauseResolverWait, Why: "test"})
			w.queue(0, 2, "tx:3")
		}},
		{txlocal.CauseResolverGone, func(w *worker, s *txlocal.Store) {
			s.SetResolver(false)
			w.queue(0, 2, "tx:3")
		}},
		{txlocal.CauseRevoked, func(w *worker, _ *txlocal.Store) { w.stop() }},
	} {
		t.Run(string(tc.cause), func(t *testing.T) {
			a := newFakeApplier()
			w, store := directWorker(t, a)
			w.start()
			awaitDirect(t, w, 0)
			w.queue(0, 0, "tx:1", "tx:2")
			held(t, store, 2).Done(false)
			awaitDirect(t, w, 1)
			if n, b := value(w.metrics.Tx.heldRecords), value(w.metrics.Tx.heldBytes); n != 2 || b <= 0 {
				t.Errorf("pgsink_transaction_direct_held_records = %v, _bytes = %v; want the 2 records held and their bytes", n, b)
			}
			tc.leave(w, store)
			if tc.cause != txlocal.CauseRevoked {
				next(t, w.poll.seeks, "a seek after leaving")
			}
			awaitDirect(t, w, 0)
			if n, b := value(w.metrics.Tx.heldRecords), value(w.metrics.Tx.heldBytes); n != 0 || b != 0 {
				t.Errorf("after the leave: pgsink_transaction_direct_held_records = %v, _bytes = %v; want 0: dropped", n, b)
			}
			for _, c := range txlocal.Causes {
				want := 0.0
				if c == tc.cause {
					want = 1
				}
				if n := value(w.metrics.Tx.DirectLeaves.WithLabelValues(testTopic, string(c))); n != want {
					t.Errorf("pgsink_transaction_direct_leaves_total{reason=%q} = %v, want %v", c, n, want)
				}
			}
		})
	}
}

// TestDirectLeaveAtAnAppliedDeletesTombstone: the resolver applied records
// up to a delete (key b) and moved the row just past it, onto its
// tombstone; the partition held a later transaction's record and leaves.
// It reads again from the tombstone, which follows the delete the resolver
// applied: no compacted delete is counted. A tombstone there of another
// key (its delete removed by log compaction) still counts. The first case
// fails without Left.Before (the worker compared the tombstone with the
// last record it read, c, and counted it).
func TestDirectLeaveAtAnAppliedDeletesTombstone(t *testing.T) {
	for _, tc := range []struct {
		tombstoneKey string
		want         float64 // counted when read again
	}{{"b", 0}, {"x", 1}} {
		t.Run(tc.tombstoneKey, func(t *testing.T) {
			a := newFakeApplier()
			w, store := directWorker(t, a)
			w.start()
			queueKeyed(w, 0, "a", "tx:1")
			queueKeyed(w, 1, "b", "tx:2") // the delete of b
			queueKeyed(w, 2, tc.tombstoneKey, "")
			queueKeyed(w, 3, "c", "tx2:1")
			var tk *txlocal.Taken
			for deadline := time.Now().Add(testWait); tk == nil || len(tk.Parts[0].Items) < 3; time.Sleep(5 * time.Millisecond) {
				if tk != nil {
					tk.Done(false)
				}
				if time.Now().After(deadline) {
					t.Fatal("the store never held the 3 records")
				}
				tk = store.Take(map[int64]bool{1: true, 2: true})
			}
			tk.Keep(map[int64]bool{1: true}) // transaction 2's END not read yet
			if p := tk.Applying(); len(p) != 1 || p[0].Next() != 2 {
				t.Fatalf("the resolver's apply takes %+v, want transaction 1's records, the row to 2", p)
			}
			tk.Done(true)
			compacted := w.metrics.CompactedDeletes.WithLabelValues(testTopic)
			before := value(compacted) // the first read of the tombstone counted as it stood
			store.LeaveAll(txlocal.Leaving{Cause: txlocal.CauseResolverWait, Why: "test"})
			queueKeyed(w, 4, "d", "tx2:2")
			if seek := next(t, w.poll.seeks, "a seek after leaving"); seek != 2 {
				t.Fatalf("reads again from %d, want 2 (the row, at the tombstone)", seek)
			}
			w.gen.Add(1)
			w.seeking.Store(false)
			queueKeyed(w, 2, tc.tombstoneKey, "")
			queueKeyed(w, 3, "c", "tx2:1")
			queueKeyed(w, 4, "d", "tx2:2")
			if got := next(t, a.calls, "the staged batch read again"); got.from != 2 {
				t.Fatalf("batch from %d, want from 2", got.from)
			}
			for got := (applied{}); got.next != 5; {
				got = next(t, a.calls, "the batches read again, up to 5")
			}
			if n := value(compacted) - before; n != tc.want {
				t.Errorf("pgsink_compacted_deletes_total rose by %v reading again, want %v (the tombstone at 2 of key %s after the applied record of key b)", n, tc.want, tc.tombstoneKey)
			}
		})
	}
}
