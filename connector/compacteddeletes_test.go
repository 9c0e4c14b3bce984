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
