//go:build integration

package sink_test

import (
	"context"
	"fmt"
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

// applyBatch applies b, built earlier, at the partition's current offset.
func (f *fixture) applyBatch(b *sink.Batch) sink.Stats {
	f.t.Helper()
	for i := range b.Items {
		b.Items[i].Record.Offset = f.claim.NextOffset + int64(i)
		b.Items[i].Change.Offset = b.Items[i].Record.Offset
	}
	b.Next = f.claim.NextOffset + int64(len(b.Items))
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

// applyCounting applies b and checks how many rows it counted unresolved.
func (f *fixture) applyCounting(b *sink.Batch, unresolved int64) {
	f.t.Helper()
	if st := f.applyBatch(b); st.Unresolved != unresolved {
		f.t.Fatalf("stats %+v: want Unresolved %d", st, unresolved)
	}
}

// pkMove is Debezium's primary-key change of key from to key to at version:
// the delete of the old key (header __debezium.newkey) and the create of
// the new one (__debezium.oldkey), whose notes, a TOASTed value the update
// left unchanged, is a placeholder under REPLICA IDENTITY DEFAULT.
func (f *fixture) pkMove(from, to, version int64) (del, create *sink.Batch) {
	del = f.batch(ev{debezium.OpDelete, from, "", nil, version})
	del.Items[0].Change.NewKey = debezium.Row{{Name: "id", Value: to}}
	create = f.batch(ev{debezium.OpCreate, to, "moved", unchanged, version})
	create.Items[0].Change.OldKey = debezium.Row{{Name: "id", Value: from}}
	return del, create
}

// The create of a primary-key change takes the values its placeholders
// stand for from the old key's row, in whichever order the two halves are
// applied: from what the delete kept when it came first, from the target's
// old row when the create comes first, corrected by the delete if the old
// row changed in between; Unresolved counts only a create whose values are
// nowhere.
func TestIntegrationApplyToastAcrossKeyMove(t *testing.T) {
	const movedRow = "2:moved:large@11"
	t.Run("delete first", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
		del, create := f.pkMove(1, 2, 11)
		f.applyBatch(del)
		f.applyCounting(create, 0)
		f.want(movedRow)
	})
	t.Run("create first", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
		del, create := f.pkMove(1, 2, 11)
		f.applyCounting(create, 0)
		f.want("1:new:large@10 " + movedRow)
		f.applyBatch(del)
		f.want(movedRow)
	})
	t.Run("create first, old key behind", func(t *testing.T) {
		// The old key's partition has not applied the update before the
		// move yet: the create copies a stale value, which the delete,
		// applied after that update, corrects.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del, create := f.pkMove(1, 2, 11)
		f.applyBatch(create)
		f.want("1:new:stale@9 2:moved:stale@11")
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del)
		f.want(movedRow)
	})
	t.Run("new key updated before its old key's delete", func(t *testing.T) {
		// The new row, written again after its create copied a stale
		// value: the delete corrects the column while it still holds what
		// was copied (the update left the placeholder), not once a later
		// event wrote a value of its own.
		for _, notes := range []any{unchanged, "written later"} {
			f := newFixture(t, sink.DeleteHard, false)
			f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
			del, create := f.pkMove(1, 2, 11)
			f.applyBatch(create)
			f.apply(ev{debezium.OpUpdate, 2, "paid", notes, 12})
			f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
			f.applyCounting(del, 0)
			if notes == unchanged {
				notes = "large"
			}
			f.want(fmt.Sprintf("2:paid:%s@12", notes))
		}
	})
	t.Run("moved twice, first old key behind", func(t *testing.T) {
		// 1 → 2 → 3, the second move applied whole before the first
		// move's delete: 2's row and what its delete kept hold a copied
		// stale value, which the first delete corrects down the chain.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 12)
		create3.Items[0].Change.After[1].Value = "moved again"
		f.applyBatch(create2)
		f.applyBatch(del2)
		f.applyBatch(create3)
		f.want("1:new:stale@9 3:moved again:stale@12")
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.want("3:moved again:large@12")
	})
	t.Run("moved twice, last create first", func(t *testing.T) {
		// 1 → 2 → 3 with 3's partition ahead of 2's and 2's ahead of 1's:
		// 3's create finds no row of 2 and copies nothing; 2's create
		// copies 1's stale value; 2's delete keeps it and fills 3 with it.
		// 1's delete must then correct 3 too, which holds what 2's delete
		// filled in, not what 3's create copied.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 12)
		create3.Items[0].Change.After[1].Value = "moved again"
		f.applyBatch(create3)
		f.applyBatch(create2)
		f.applyBatch(del2)
		f.want("1:new:stale@9 3:moved again:stale@12")
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.want("3:moved again:large@12")
	})
	t.Run("moved twice, last create after the chain is fixed", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 12)
		f.applyBatch(create2)
		f.applyBatch(del2)
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.applyCounting(create3, 0)
		f.want("3:moved:large@12")
	})
	t.Run("moved twice, the middle key's own value in between", func(t *testing.T) {
		// 1 → 2 → 3 with 1's partition behind: 2's create copies 1's stale
		// value, then 2 is written a value of its own and moves on to 3,
		// which copies that value. 1's delete corrects 2's copy only; 3
		// holds no copy of 1's row and must keep 2's own value.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 13)
		f.applyBatch(create2)
		f.apply(ev{debezium.OpUpdate, 2, "paid", "own", 12})
		f.applyBatch(del2)
		f.applyBatch(create3)
		f.want("1:new:stale@9 3:moved:own@13")
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.want("3:moved:own@13")
	})
	t.Run("two deletes of one chain in one batch", func(t *testing.T) {
		// 1 → 2 → 3 → 4 → 5: 3 and 5 created before their old keys'
		// rows exist (they copy nothing), 3 moved on at once; then 2's
		// and 4's deletes in one batch both correct down to 5, one from
		// 2's exact row, one from what 4's delete kept (a copy of
		// nothing): the one from furthest back must win. (Before the fix
		// which row won depended on the plan: this order passed on an
		// empty table and failed in TestIntegrationApplyToastRaces.)
		f := newFixture(t, sink.DeleteHard, false)
		del1, create2 := f.pkMove(1, 2, 10)
		del2, create3 := f.pkMove(2, 3, 11)
		del3, create4 := f.pkMove(3, 4, 12)
		del4, create5 := f.pkMove(4, 5, 13)
		b := f.batch()
		b.Items = append(append(create3.Items, del3.Items...), create5.Items...)
		f.applyBatch(b)
		f.apply(ev{debezium.OpCreate, 1, "new", "large", 9})
		b = f.batch()
		b.Items = append(del1.Items, create2.Items...)
		f.applyBatch(b)
		b = f.batch()
		b.Items = append(append(del2.Items, create4.Items...), del4.Items...)
		f.applyBatch(b)
		f.want("5:moved:large@13")
	})
	t.Run("a chain corrected past a key already moved on, then behind it", func(t *testing.T) {
		// 1 → 2 → 3 → 4 with 1's partition behind: 3's create finds no
		// row of 2 and 3 moves on at once; 2's create copies 1's stale
		// value and 2's delete corrects what 3's delete kept, which must
		// count as 2's move's copy although 3's row is gone: 1's delete
		// corrects it again, and 4's create takes the exact value.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 12)
		del3, create4 := f.pkMove(3, 4, 13)
		f.applyBatch(create3)
		f.applyBatch(del3)
		f.applyBatch(create2)
		f.applyBatch(del2)
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.applyCounting(create4, 0)
		f.want("4:moved:large@13")
	})
	t.Run("moved on in the batch that moved it in", func(t *testing.T) {
		// 2's create and delete in one batch, with 1's partition behind:
		// what 2's delete keeps is the copied value, corrected later.
		f := newFixture(t, sink.DeleteHard, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
		del1, create2 := f.pkMove(1, 2, 11)
		del2, create3 := f.pkMove(2, 3, 12)
		b := f.batch()
		b.Items = append(create2.Items, del2.Items...)
		f.applyBatch(b)
		f.applyBatch(create3)
		f.apply(ev{debezium.OpUpdate, 1, "paid", "large", 10})
		f.applyBatch(del1)
		f.want("3:moved:large@12")
	})
	t.Run("old key updated in the delete's batch", func(t *testing.T) {
		// The update folds into the delete, but the row the delete keeps
		// must hold it.
		for _, createFirst := range []bool{false, true} {
			f := newFixture(t, sink.DeleteHard, false)
			f.apply(ev{debezium.OpCreate, 1, "new", "stale", 9})
			del, create := f.pkMove(1, 2, 11)
			if createFirst {
				f.applyBatch(create)
			}
			b := f.batch(ev{debezium.OpUpdate, 1, "paid", "large", 10})
			b.Items = append(b.Items, del.Items...)
			f.applyBatch(b)
			if !createFirst {
				f.applyBatch(create)
			}
			f.want(movedRow)
		}
	})
	t.Run("create first, old key not applied yet", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, false)
		del, create := f.pkMove(1, 2, 11)
		f.applyCounting(create, 0)
		f.want("2:moved:∅@11")
		f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
		f.applyBatch(del)
		f.want(movedRow)
	})
	for _, order := range []string{"delete, create", "create, delete"} {
		t.Run("one batch: "+order, func(t *testing.T) {
			f := newFixture(t, sink.DeleteHard, false)
			f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
			del, create := f.pkMove(1, 2, 11)
			b := f.batch()
			b.Items = append(del.Items, create.Items...)
			if order == "create, delete" {
				b.Items = append(create.Items, del.Items...)
			}
			f.applyCounting(b, 0)
			f.want(movedRow)
		})
	}
	t.Run("the new key updated in the create's batch", func(t *testing.T) {
		// An update that carries the value folds the create's placeholder
		// away; one that does not keeps the create's old key to take it.
		for _, notes := range []any{"updated", unchanged} {
			f := newFixture(t, sink.DeleteHard, false)
			f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
			del, create := f.pkMove(1, 2, 11)
			b := f.batch(ev{debezium.OpUpdate, 2, "paid", notes, 12})
			b.Items = append(create.Items, b.Items...)
			f.applyCounting(b, 0)
			f.applyBatch(del)
			if notes == unchanged {
				notes = "large"
			}
			f.want(fmt.Sprintf("2:paid:%s@12", notes))
		}
	})
	t.Run("soft deletes", func(t *testing.T) {
		f := newFixture(t, sink.DeleteSoft, false)
		f.apply(ev{debezium.OpCreate, 1, "new", "large", 10})
		del, create := f.pkMove(1, 2, 11)
		f.applyBatch(del)
		f.applyBatch(create)
		f.want("1:new:large@11 deleted " + movedRow)
	})
	t.Run("nowhere", func(t *testing.T) {
		// The delete came and found no row to keep: truly unresolved.
		f := newFixture(t, sink.DeleteHard, false)
		del, create := f.pkMove(1, 2, 11)
		f.applyBatch(del)
		f.applyCounting(create, 1)
		f.want("2:moved:∅@11")
	})
}
