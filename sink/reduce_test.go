package sink

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/debezium"
)

// A row is fresh (written without ON CONFLICT) only when the oldest change
// of its key in the batch is a create or a snapshot read that carries every
// column, and the folded row carries every column; stagingRows stages
// exactly those as inserts, when asked to.
func TestReduceMarksFreshRows(t *testing.T) {
	tbl := &Table{Schema: "public", Name: "t", Key: []string{"id"}, Deletes: DeleteHard,
		CommitColumn: "_c", LSNColumn: "_l",
		Columns: []Column{{Name: "id", Source: "id", Type: "bigint"}, {Name: "note", Source: "note", Type: "text"}}}
	change := func(op debezium.Op, id int64, v int64, note *debezium.Field) Item {
		ch := debezium.Change{Kind: debezium.KindChange, Op: op, Version: debezium.Version{CommitLSN: v, LSN: v},
			Key: debezium.Row{{Name: "id", Value: id}}}
		if op != debezium.OpDelete {
			ch.After = debezium.Row{{Name: "id", Value: id}}
			if note != nil {
				ch.After = append(ch.After, *note)
			}
		}
		return Item{Table: tbl, Change: ch}
	}
	text := &debezium.Field{Name: "note", Value: "x"}
	toast := &debezium.Field{Name: "note", Unchanged: true}
	items := []Item{
		change(debezium.OpCreate, 1, 1, text), // fresh
		change(debezium.OpRead, 2, 2, text),   // fresh: a snapshot read
		change(debezium.OpUpdate, 3, 3, text), // an update: the key should exist
		change(debezium.OpCreate, 4, 4, text), // fresh: created, then updated in the batch
		change(debezium.OpUpdate, 4, 5, text),
		change(debezium.OpCreate, 5, 6, nil),   // a column the event lacks
		change(debezium.OpCreate, 6, 7, toast), // a TOAST placeholder
		change(debezium.OpDelete, 7, 8, nil),
		change(debezium.OpDelete, 8, 9, nil), // deleted, then created again
		change(debezium.OpCreate, 8, 10, text),
		change(debezium.OpCreate, 9, 11, text), // fresh: the update's placeholder takes the create's value
		change(debezium.OpUpdate, 9, 12, toast),
		change(debezium.OpCreate, 10, 13, toast), // a placeholder the update does not fill
		change(debezium.OpUpdate, 10, 14, toast),
		change(debezium.OpUpdate, 11, 16, text), // fresh: a create re-emitted after its update is still the oldest change
		change(debezium.OpCreate, 11, 15, text),
		change(debezium.OpUpdate, 12, 17, text), // an update, then a create newer than it
		change(debezium.OpCreate, 12, 18, text),
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	red, err := reduce(tbl, items, idx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]bool{1: true, 2: true, 3: false, 4: true, 5: false, 6: false, 7: false, 8: false,
		9: true, 10: false, 11: true, 12: false}
	if len(red.rows) != len(want) {
		t.Fatalf("%d reduced rows, want %d", len(red.rows), len(want))
	}
	for _, r := range red.rows {
		id := r.values[0].(int64)
		if r.fresh != want[id] {
			t.Errorf("key %d: fresh %v, want %v", id, r.fresh, want[id])
		}
	}
	for _, insert := range []bool{false, true} {
		rows, groups, inserts := stagingRows(red, insert)
		var staged int64
		for _, vals := range rows {
			id := vals[4].(int64)
			isInsert := vals[0].(byte) == byte(opInsert)
			if isInsert != (insert && want[id]) {
				t.Errorf("insert=%v: key %d staged as %q", insert, id, vals[0])
			}
		}
		for _, g := range groups {
			staged += g.rows
		}
		if staged+inserts != int64(len(rows)) || (insert && inserts != 5) || (!insert && inserts != 0) {
			t.Errorf("insert=%v: %d in groups and %d inserts for %d rows", insert, staged, inserts, len(rows))
		}
	}
}

// An update whose before image holds another key than its after image adds
// the delete of the old key at the update's version; one whose before image
// lacks the key (and whose record key does not carry it) is counted as a
// move that cannot be seen; one whose key is the record key never moves.
func TestReduceKeyMoves(t *testing.T) {
	tbl := &Table{Schema: "public", Name: "t", Key: []string{"a"}, Deletes: DeleteHard,
		CommitColumn: "_c", LSNColumn: "_l",
		Columns: []Column{{Name: "a", Source: "a", Type: "bigint"}, {Name: "note", Source: "note", Type: "text"}}}
	update := func(key debezium.Row, before debezium.Row, a int64, v int64) Item {
		return Item{Table: tbl, Change: debezium.Change{Kind: debezium.KindChange, Op: debezium.OpUpdate,
			Version: debezium.Version{CommitLSN: v, LSN: v}, Key: key, Before: before,
			After: debezium.Row{{Name: "a", Value: a}, {Name: "note", Unchanged: true}}}}
	}
	full := func(a int64) debezium.Row {
		return debezium.Row{{Name: "a", Value: a}, {Name: "note", Value: "kept"}}
	}
	items := []Item{
		update(nil, full(1), 2, 10),                                    // moves 1 → 2
		update(nil, full(3), 3, 11),                                    // keeps 3
		update(nil, nil, 4, 12),                                        // cannot tell
		update(debezium.Row{{Name: "a", Value: int64(5)}}, nil, 5, 13), // the record key: kept
	}
	red, err := reduce(tbl, items, []int{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range red.rows {
		got = append(got, fmt.Sprintf("%c%d@%d:%v", r.op, r.values[0], r.version.LSN, r.values[1]))
	}
	want := "d1@10:<nil> u2@10:kept u3@11:kept u4@12:<nil> u5@13:<nil>"
	if strings.Join(got, " ") != want || red.undetectable != 1 {
		t.Fatalf("reduced %v, %d undetectable; want %s, 1", got, red.undetectable, want)
	}
}
