package connector

import (
	"testing"
	"time"
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
