package connector

import (
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// A recycled batch slice holds on to no record: every item its batch used
// is cleared, also those that diverting dead letters cut off its length.
func TestRecycleItemsClearsWhatTheBatchUsed(t *testing.T) {
	items := itemSlice(8)
	if len(items) != 0 || cap(items) < 8 {
		t.Fatalf("itemSlice(8): len %d cap %d, want an empty slice with room for 8", len(items), cap(items))
	}
	for i := range 5 {
		items = append(items, sink.Item{Record: debezium.Record{Offset: int64(i), Value: []byte("v")}})
	}
	backing := items[:5]
	kept := items[:2] // as divert leaves it
	recycleItems(kept, 5)
	for i, it := range backing {
		if it.Record.Value != nil || it.Record.Offset != 0 {
			t.Errorf("item %d still holds record %+v after recycling", i, it.Record)
		}
	}
	if got := itemSlice(4); len(got) != 0 {
		t.Errorf("itemSlice after recycling: len %d, want 0", len(got))
	}
}

// A partition that applied a large batch and went idle holds no item
// slice once it has waited idleCheck for its next record: the pool keeps
// its slice for the next batch, and gives it back to the heap when no
// partition takes it. A slice a waiting partition took from the pool is
// sized for the largest batch anyone applied (max_records items of 480
// bytes), was held as long as the partition idled, and is in no budget.
func TestIdlePartitionsKeepNoItemSlice(t *testing.T) {
	const partitions, records = 16, config.DefaultBatchMaxRecords
	values := slices.Repeat([]string{"a"}, records)
	before := heapAlloc()
	workers := make([]*worker, partitions)
	for i := range workers {
		workers[i] = newWorker(t, batchOf(records, 1<<30, time.Minute), 0, newFakeApplier())
		workers[i].queue(0, 0, values...)
		workers[i].start()
	}
	for _, w := range workers {
		if got := next(t, w.applies.calls, "apply"); len(got.offsets) != records {
			t.Fatalf("applied %d records, want one batch of %d", len(got.offsets), records)
		}
		next(t, w.poll.commits, "commit report")
	}
	// Every partition now waits for a record. Polled: each worker recycles
	// its slice and enters its next collect after reporting the commit.
	held := int64(partitions * records * int(unsafe.Sizeof(sink.Item{})))
	deadline := time.Now().Add(testWait)
	for {
		grown := int64(heapAlloc()) - int64(before)
		if grown < held/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle partitions hold %d KB of heap, want under %d KB: they keep item slices of %d KB sized for their last batch",
				partitions, grown/1024, held/2/1024, held/1024)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range workers {
		w.stop()
	}
}

// A partition whose records trickle in does not take a slice sized for
// another partition's backlog from the pool for its batch of one: held for
// max_wait by every such partition at once, those slices were memory no
// budget counts, kept in use (and so never let go by the pool) for as long
// as the trickle lasts.
func TestTrickleBatchTakesNoBacklogSlice(t *testing.T) {
	const backlog = config.DefaultBatchMaxRecords
	// Several, so that the worker finds one on whichever processor it runs.
	for range 8 {
		recycleItems(make([]sink.Item, 0, backlog), 0)
	}
	w := newWorker(t, batchOf(backlog, 1<<30, time.Minute), 0, newFakeApplier())
	w.queue(0, 0, "a")
	w.start()
	got := next(t, w.applies.calls, "apply")
	if len(got.offsets) != 1 {
		t.Fatalf("applied %v, want one record", got.offsets)
	}
	if got.room > 4*16 {
		t.Errorf("a batch of one record held an item slice with room for %d, want at most %d", got.room, 4*16)
	}
}
