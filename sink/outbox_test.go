package sink

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/debezium"
)

func TestStageOutbox(t *testing.T) {
	tbl := goldenOutbox(t) // takes OrderCreated only
	item := func(offset int64, id, typ, payload string) Item {
		return Item{Record: debezium.Record{Offset: offset}, Table: tbl, Change: debezium.Change{Kind: debezium.KindOutbox,
			Outbox: &debezium.OutboxEvent{EventID: id, Type: typ, Payload: []byte(payload)}}}
	}
	const ok = `{"id":"o-1","amount":2,"lines":[]}`
	tests := []struct {
		name       string
		items      []Item
		rows       int
		skipped    int64
		duplicates int64
		errItem    int    // index of the item a RecordError names; -1 for none
		err        string // part of its message
	}{
		{"fresh", []Item{item(7, "e1", "OrderCreated", ok)}, 1, 0, 0, -1, ""},
		{"type filtered", []Item{item(7, "e1", "OrderPaid", ok), item(8, "e2", "", ok)}, 0, 2, 0, -1, ""},
		{"repeated id", []Item{item(7, "e1", "OrderCreated", ok), item(8, "e1", "OrderCreated", ok)}, 1, 0, 1, -1, ""},
		{"no id", []Item{item(7, "e1", "OrderCreated", ok), item(8, "", "OrderCreated", ok)}, 0, 0, 0, 1, "without an event id"},
		{"null key", []Item{item(7, "e1", "OrderCreated", `{"id":null,"amount":2,"lines":[]}`)}, 0, 0, 0, 0, `key column "Order Id"`},
		{"missing path", []Item{item(7, "e1", "OrderCreated", `{"id":"o-1","lines":[]}`)}, 0, 0, 0, 0, `no member "amount"`},
		{"table change", []Item{{Table: tbl, Change: debezium.Change{Kind: debezium.KindChange, Op: debezium.OpCreate}}}, 0, 0, 0, 0, "not an outbox event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st Stats
			idx := make([]int, len(tc.items))
			for i := range idx {
				idx[i] = i
			}
			rows, err := stageOutbox(tbl, tc.items, idx, &st)
			var rec *RecordError
			switch {
			case tc.errItem < 0 && err != nil:
				t.Fatalf("stageOutbox: %v", err)
			case tc.errItem >= 0 && (!errors.As(err, &rec) || rec.Item != tc.errItem || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("stageOutbox: %v; want a RecordError for item %d containing %q", err, tc.errItem, tc.err)
			case tc.errItem < 0 && (len(rows) != tc.rows || st.Skipped != tc.skipped || st.Duplicates != tc.duplicates):
				t.Fatalf("%d rows, %d skipped, %d duplicates; want %d, %d, %d", len(rows), st.Skipped, st.Duplicates, tc.rows, tc.skipped, tc.duplicates)
			}
		})
	}
	rows, _ := stageOutbox(tbl, []Item{item(7, "e1", "OrderCreated", ok)}, []int{0}, &Stats{})
	if got, want := rows[0], []any{"e1", int64(7), "o-1", "2", "[]"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("staged row %#v, want %#v (event id, offset, then the columns' text)", got, want)
	}
}
