package connector

import (
	"testing"
	"time"

	"github.com/pgsink/pgsink/dedup"
)

// A tombstone right behind its key's delete event is what Debezium always
// writes and counts nothing; one behind anything else lost its delete to
// log compaction and is counted, whatever batch it falls in.
func TestTombstoneWithoutItsDeleteIsCounted(t *testing.T) {
	w := newWorker(t, batchOf(100, 1<<20, time.Minute), 0, newFakeApplier())
	keyed := func(offset int64, key, value string) {
		m := message(offset, value)
		m.Key = []byte(key)
		if value == "" {
			m.Value = nil // a tombstone
		}
		w.queued += messageBytes(m)
		if !w.in.offer(envelope{msg: m, at: w.at, cost: messageBytes(m)}) {
			t.Fatal("queue full")
		}
	}
	keyed(0, "a", "delete")
	keyed(1, "a", "") // follows its delete
	keyed(2, "b", "upsert")
	keyed(3, "c", "") // its delete compacted away
	keyed(4, "d", "delete")
	keyed(5, "e", "") // another key's delete before it: still alone
	w.start()
	got := next(t, w.applies.calls, "apply")
	if got.next != 6 {
		t.Fatalf("batch ends at %d, want 6", got.next)
	}
	next(t, w.poll.commits, "commit report")
	if n := value(w.metrics.CompactedDeletes.WithLabelValues(testTopic)); n != 2 {
		t.Errorf("pgsink_compacted_deletes_total = %v, want 2 (offsets 3 and 5)", n)
	}
}

// A delete event that goes to the dead letters (here a decoder's panic)
// was not removed by compaction: its tombstone, right behind it, counts
// nothing. The dead letter is the record of what was not applied.
func TestTombstoneBehindADeadLetteredDeleteIsNotCounted(t *testing.T) {
	w := newWorker(t, batchOf(100, 1<<20, time.Minute), 0, newFakeApplier())
	for i, kv := range [][2]string{{"a", "panics"}, {"a", ""}, {"b", ""}} {
		m := message(int64(i), kv[1])
		m.Key = []byte(kv[0])
		if kv[1] == "" {
			m.Value = nil // a tombstone
		}
		w.queued += messageBytes(m)
		if !w.in.offer(envelope{msg: m, at: w.at, cost: messageBytes(m)}) {
			t.Fatal("queue full")
		}
	}
	w.start()
	if got := next(t, w.applies.calls, "apply"); got.next != 3 {
		t.Fatalf("batch ends at %d, want 3", got.next)
	}
	next(t, w.poll.commits, "commit report")
	if n := value(w.metrics.CompactedDeletes.WithLabelValues(testTopic)); n != 1 {
		t.Errorf("pgsink_compacted_deletes_total = %v, want 1 (offset 2 only; offset 1 follows its dead-lettered delete)", n)
	}
}

// After a seek the record before the new position is unknown: a tombstone
// read first there counts, even when the record the worker read last, on
// the other side of the jump, was of its key (here the target lost
// commits and the worker reads again from further back).
func TestTombstoneAfterASeekIsNotPairedAcrossIt(t *testing.T) {
	moved := &dedup.PositionMovedError{Expected: 3, Stored: 1}
	w := newWorker(t, batchOf(1, 1<<20, time.Minute), 3, newFakeApplier(applyResult{err: moved}))
	w.queue(0, 3, "upsert") // key "k"
	w.start()
	w.at = time.Now()
	next(t, w.applies.calls, "apply")
	next(t, w.poll.seeks, "seek")
	w.gen.Add(1)
	w.seeking.Store(false)
	tombstone := message(1, "")
	tombstone.Value = nil // of key "k", as the record read last
	w.queued += messageBytes(tombstone)
	if !w.in.offer(envelope{msg: tombstone, gen: 1, at: w.at, cost: messageBytes(tombstone)}) {
		t.Fatal("queue full")
	}
	w.queue(1, 2, "upsert") // closes the batch: a tombstone is no item
	next(t, w.applies.calls, "apply after the seek")
	if n := value(w.metrics.CompactedDeletes.WithLabelValues(testTopic)); n != 1 {
		t.Errorf("pgsink_compacted_deletes_total = %v, want 1: the tombstone at 1 follows an unknown record, not the one read at 3", n)
	}
}
