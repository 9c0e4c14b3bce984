package connector

import (
	"testing"

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
