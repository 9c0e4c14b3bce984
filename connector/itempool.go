package connector

import (
	"sync"

	"github.com/pgsink/pgsink/sink"
)

// itemSlices keeps the item slices of applied batches for the next ones.
// A batch's items are 480-byte structs, thousands of them under a backlog:
// a fresh slice per batch (and its growth while the batch fills) was a
// quarter of the bytes the drain allocated, each one cleared on allocation
// and paid for again in collections. A sync.Pool gives slices back to the
// heap when they go unused for two collections, so partitions that went
// quiet keep none.
var itemSlices sync.Pool

// itemSlice returns an empty slice for a batch, with room for want items
// when a kept one has it.
func itemSlice(want int) []sink.Item {
	if kept, ok := itemSlices.Get().(*[]sink.Item); ok {
		switch {
		case cap(*kept) > oversized*want:
			// Sized for another partition's backlog: a batch of a few
			// records holding it keeps it in use, and so from being let
			// go, for as long as records trickle in. Left for a batch
			// that needs it, or for the collector.
			itemSlices.Put(kept)
		case cap(*kept) >= want:
			return (*kept)[:0]
		}
		// Too small for a backlog's batches: let it go, the new one is
		// kept instead once its batch is done.
	}
	return make([]sink.Item, 0, want)
}

// oversized is how many times the room a batch asks for a kept slice may
// have before the batch makes a slice of its own instead.
const oversized = 4

// recycleItems keeps the slice of a batch that is done with, cleared up to
// used (its length when collected: diverting dead letters shortens it in
// place) so that it holds on to no record.
func recycleItems(items []sink.Item, used int) {
	if cap(items) == 0 {
		return
	}
	clear(items[:used])
	items = items[:0]
	itemSlices.Put(&items)
}
