package sink

import (
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/pgsink/pgsink/connector/debezium"
)

// rowOp is what the reduced batch does to one key.
type rowOp byte

const (
	opUpsert rowOp = 'u'
	opDelete rowOp = 'd'
)

// row is the net effect of a batch on one key of one table: the newest
// change, with unchanged-TOAST columns filled from older changes of the same
// batch where they carried the value.
type row struct {
	op        rowOp
	version   debezium.Version
	values    []any  // per Table.Columns; delete rows carry only the key
	unchanged []bool // per Table.Columns: keep the stored value (I7)
	item      int    // index of the newest change in the batch, for errors
}

// reduced is one table's share of a batch after reduction.
type reduced struct {
	rows     []*row
	truncate *debezium.Version // newest truncate, nil if none
}

// reduce folds a table's changes, in offset order, to one row per key. The
// newest version wins, not the last offset: Debezium re-emits old events at
// new offsets after a restart, and the guard in SQL repeats this decision
// against what is stored.
func reduce(t *Table, items []Item, idx []int) (*reduced, error) {
	out := &reduced{}
	byKey := map[string]*row{}
	var order []string
	for _, i := range idx {
		ch := &items[i].Change
		switch {
		case ch.Kind != debezium.KindChange:
			continue
		case ch.Op == debezium.OpTruncate:
			if t.Truncates && (out.truncate == nil || out.truncate.Less(ch.Version)) {
				v := ch.Version
				out.truncate = &v
			}
			continue
		case ch.Op == debezium.OpDelete && t.Deletes == DeleteIgnore:
			continue
		}
		next, err := toRow(t, ch, i)
		if err != nil {
			return nil, err
		}
		key := keyString(t, next)
		prev, ok := byKey[key]
		if !ok {
			byKey[key] = next
			order = append(order, key)
			continue
		}
		older, newer := prev, next
		if next.version.Less(prev.version) {
			older, newer = next, prev
		}
		if newer.op == opUpsert && older.op == opUpsert {
			for c := range newer.unchanged {
				if newer.unchanged[c] && !older.unchanged[c] {
					newer.values[c], newer.unchanged[c] = older.values[c], false
				}
			}
		}
		byKey[key] = newer
	}
	out.rows = make([]*row, 0, len(order))
	for _, k := range order {
		out.rows = append(out.rows, byKey[k])
	}
	return out, nil
}

// toRow maps a change onto the table's columns.
func toRow(t *Table, ch *debezium.Change, item int) (*row, error) {
	r := &row{version: ch.Version, item: item, values: make([]any, len(t.Columns)), unchanged: make([]bool, len(t.Columns))}
	var image debezium.Row
	switch ch.Op {
	case debezium.OpCreate, debezium.OpRead, debezium.OpUpdate:
		r.op, image = opUpsert, ch.After
		if image == nil {
			return nil, &RecordError{Item: item, Err: fmt.Errorf("%c event without an after image", ch.Op)}
		}
	case debezium.OpDelete:
		r.op = opDelete
	default:
		return nil, &RecordError{Item: item, Err: fmt.Errorf("operation %q cannot be applied to a table", ch.Op)}
	}
	for c, col := range t.Columns {
		var f debezium.Field
		var ok bool
		if r.op == opUpsert {
			f, ok = image.Get(col.Source)
		}
		if t.isKey(col.Name) {
			// The record key is authoritative for key columns; deletes
			// carry nothing else under REPLICA IDENTITY DEFAULT.
			if kf, kok := ch.Key.Get(col.Source); kok {
				f, ok = kf, true
			} else if !ok && ch.Before != nil {
				f, ok = ch.Before.Get(col.Source)
			}
			if !ok || f.Value == nil || f.Unchanged {
				return nil, &RecordError{Item: item, Err: fmt.Errorf("key column %q has no value", col.Name)}
			}
		}
		if r.op == opDelete && !t.isKey(col.Name) {
			continue
		}
		if !ok {
			// A column the event does not carry (added to the target only):
			// keep what is stored rather than write NULL over it.
			r.unchanged[c] = true
			continue
		}
		r.values[c], r.unchanged[c] = f.Value, f.Unchanged
	}
	return r, nil
}

// keyString renders a row's key for grouping. Values that implement
// driver.Valuer (the pgtype types) render through it, so equal numerics with
// different pointers group together.
func keyString(t *Table, r *row) string {
	var b strings.Builder
	for c, col := range t.Columns {
		if !t.isKey(col.Name) {
			continue
		}
		v := r.values[c]
		if dv, ok := v.(driver.Valuer); ok {
			if plain, err := dv.Value(); err == nil {
				v = plain
			}
		}
		fmt.Fprintf(&b, "%T:%v\x00", v, v)
	}
	return b.String()
}
