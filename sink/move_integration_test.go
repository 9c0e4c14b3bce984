//go:build integration

package sink_test

import (
	"context"
	"testing"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// moved turns an update of the batch into the single event in which
// Debezium sends a key change of a table keyed on other columns than its
// primary key (none, here) under REPLICA IDENTITY FULL: a null record key
// and the whole before image, holding the old key.
func moved(b *sink.Batch, i int, from int64, notes any) *sink.Batch {
	ch := &b.Items[i].Change
	ch.Key = nil
	b.Items[i].Record.Key = nil
	ch.Before = debezium.Row{{Name: "id", Value: from}, {Name: "status", Value: "before"}, {Name: "amount", Value: "12.50"}, {Name: "notes", Value: notes}}
	return b
}

func (f *fixture) applyBatch(b *sink.Batch) sink.Stats {
	f.t.Helper()
	st, err := f.applier.Apply(context.Background(), b)
	if err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
	return st
}

// An update whose before image holds another key than its after image moves
// the row: the old key is deleted as a delete event of its version would
// delete it (tombstone, soft marker, or nothing under deletes: ignore), the
// new key written, in one transaction.
func TestIntegrationApplyKeyMoveInOneEvent(t *testing.T) {
	for _, tc := range []struct {
		deletes sink.DeleteMode
		want    string
	}{
		{sink.DeleteHard, "2:moved:kept@11"},
		{sink.DeleteSoft, "1:new:kept@11 deleted 2:moved:kept@11"},
		{sink.DeleteIgnore, "1:new:kept@10 2:moved:kept@11"},
	} {
		f := newFixture(t, tc.deletes, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "kept", 10})
		// The after image's placeholder takes the before image's value.
		st := f.applyBatch(moved(f.batch(ev{debezium.OpUpdate, 2, "moved", unchanged, 11}), 0, 1, "kept"))
		f.want(tc.want)
		if st.UndetectableMoves != 0 {
			t.Fatalf("stats %+v: the move was seen", st)
		}
		// Debezium re-emitting the old key's create after its restart
		// must not bring the row back (I4) unless deletes are ignored.
		f.apply(ev{debezium.OpCreate, 1, "new", "kept", 10})
		f.want(tc.want)
	}
}

// Moves folded within one batch: created, moved twice, the last key alone
// stays; a re-emitted older move changes nothing.
func TestIntegrationApplyKeyMovesInOneBatch(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	b := f.batch(ev{debezium.OpCreate, 1, "new", "x", 10}, ev{debezium.OpUpdate, 2, "moved", "x", 11}, ev{debezium.OpUpdate, 3, "again", "x", 12})
	moved(b, 1, 1, "x")
	moved(b, 2, 2, "x")
	f.applyBatch(b)
	f.want("3:again:x@12")
	f.applyBatch(moved(f.batch(ev{debezium.OpUpdate, 2, "moved", "x", 11}), 0, 1, "x"))
	f.want("3:again:x@12")
}

// Without the key in the before image a move cannot be seen: the update is
// applied as it comes, and Stats counts it so that pgsink warns.
func TestIntegrationApplyKeyMoveUndetectable(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "new", "x", 10})
	b := f.batch(ev{debezium.OpUpdate, 1, "paid", "x", 11})
	b.Items[0].Change.Key = nil
	if st := f.applyBatch(b); st.UndetectableMoves != 1 {
		t.Fatalf("stats %+v: want UndetectableMoves 1", st)
	}
	f.want("1:paid:x@11")
}
