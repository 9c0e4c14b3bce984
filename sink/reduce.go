package sink

import (
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"unsafe"

	"github.com/pgsink/pgsink/debezium"
)

// rowOp is what the reduced batch does to one key.
type rowOp byte

const (
	opUpsert rowOp = 'u'
	opDelete rowOp = 'd'
	// opInsert is staged for an upsert expected to create its key (see
	// row.fresh); it is never a reduced row's op.
	opInsert rowOp = 'i'
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
	// fresh marks an upsert whose oldest change in the batch is a create
	// or snapshot read carrying every column, and that carries every column
	// after its changes are folded: the key is most likely new to the
	// target, so it may be written by a plain INSERT (see
	// statements.insert). A key created and then updated within the batch
	// is fresh too: staged as an update, it would miss the UPDATE that
	// writes stored keys and send the whole group through the upsert
	// (see buildUpdate).
	fresh bool
	// movedAway marks the delete of a key its row moved away from (the
	// delete half of Debezium's primary-key change, or of an update that
	// changed the key): what the row held is kept for the new key's row.
	movedAway bool
	// movedFrom is set on the upsert of a key a row moved to from another
	// key, when it carries TOAST placeholders: their values are the old
	// key's row's (see takeMoved).
	movedFrom *moveSource
	// before is the upsert a movedAway delete superseded in the batch: it
	// is applied first, so that the row the delete keeps for the new key
	// holds its values.
	before *row
}

// reduced is one table's share of a batch after reduction.
type reduced struct {
	rows     []*row
	truncate *debezium.Version // newest truncate, nil if none
	// undetectable counts updates whose before image lacks a key column
	// the record key does not carry either: whether they moved their row
	// to another key cannot be told (see Stats.UndetectableMoves).
	undetectable int64
}

// reduce folds a table's changes, in offset order, to one row per key (and
// the upsert a moved key's delete supersedes, see row.before). The
// newest version wins, not the last offset: Debezium re-emits old events at
// new offsets after a restart, and the guard in SQL repeats this decision
// against what is stored.
func reduce(t *Table, items []Item, idx []int) (*reduced, error) {
	out := &reduced{}
	byKey := make(map[string]*row, len(idx))
	order := make([]string, 0, len(idx))
	m := newRowMaker(t, len(idx))
	keys := newKeySlab(len(idx))
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
		next, err := m.toRow(ch, i)
		if err != nil {
			return nil, err
		}
		if ch.Op == debezium.OpUpdate {
			// An update that moves its row to another key deletes the
			// old key, at the update's version, as Debezium's delete of
			// a primary-key change does (see keyMove).
			old, move := m.keyMove(ch, next, i)
			switch {
			case move == keyUnknown:
				out.undetectable++
			case move == keyMoved && t.Deletes != DeleteIgnore:
				order = fold(byKey, order, keys.add(m, old), old)
			}
		}
		order = fold(byKey, order, keys.add(m, next), next)
	}
	out.rows = make([]*row, 0, len(order))
	for _, k := range order {
		r := byKey[k]
		if r.before != nil {
			out.rows = append(out.rows, r.before)
		}
		out.rows = append(out.rows, r)
	}
	return out, nil
}

// keySlab holds the texts of a batch's keys back to back, each map key a
// string over its own bytes: one allocation per growth of the slab rather
// than one per change. Bytes once written are never written again (a
// growth copies them to a new array and leaves the old one to the strings
// over it), so the strings stay what they were.
type keySlab struct{ b []byte }

// keyBytesGuess is a key's usual text: a tag, an integer and a separator.
const keyBytesGuess = 16

func newKeySlab(n int) *keySlab { return &keySlab{b: make([]byte, 0, n*keyBytesGuess)} }

// add renders r's key and returns it as a string over the slab.
func (s *keySlab) add(m *rowMaker, r *row) string {
	start := len(s.b)
	s.b = m.appendKey(s.b, r)
	if len(s.b) == start {
		return ""
	}
	return unsafe.String(&s.b[start], len(s.b)-start)
}

// fold merges next into the batch's row of its key: the newer of the two
// wins, taking the unchanged-TOAST columns the older upsert carried. It
// returns order with key appended if the key is new to the batch.
func fold(byKey map[string]*row, order []string, key string, next *row) []string {
	prev, ok := byKey[key]
	if !ok {
		byKey[key] = next
		return append(order, key)
	}
	older, newer := prev, next
	if next.version.Less(prev.version) {
		older, newer = next, prev
	}
	if newer.op == opDelete && newer.movedAway && newer.before == nil {
		switch older.op {
		case opUpsert:
			newer.before = older
		case opDelete:
			newer.before = older.before
		}
	}
	fresh := false
	if newer.op == opUpsert && older.op == opUpsert {
		for c := range newer.unchanged {
			if newer.unchanged[c] && !older.unchanged[c] {
				newer.values[c], newer.unchanged[c] = older.values[c], false
			}
		}
		// The placeholders left are the older create's, if it was a
		// moved row's: they take its old key's values.
		if newer.movedFrom == nil {
			newer.movedFrom = older.movedFrom
		}
		if !slices.Contains(newer.unchanged, true) {
			newer.movedFrom = nil
		}
		fresh = older.fresh && !slices.Contains(newer.unchanged, true)
	}
	newer.fresh = fresh
	byKey[key] = newer
	return order
}

// rowMaker maps changes onto one table's columns. It allocates the rows of
// a batch in slabs: three allocations per batch instead of three per row.
type rowMaker struct {
	t       *Table
	isKey   []bool // per Table.Columns
	keyCols []int
	// bind holds, per column, the binder its values go through (nil for
	// most); bound lists the columns that have one.
	bind      []binder
	bound     []int
	rows      []row
	values    []any
	unchanged []bool
	// scratch, oldKey and newKey are keyMove's working space, reused
	// for every update of the batch.
	scratch        *row
	oldKey, newKey []byte
}

func newRowMaker(t *Table, n int) *rowMaker {
	m := &rowMaker{t: t, isKey: make([]bool, len(t.Columns)), bind: make([]binder, len(t.Columns))}
	for c, col := range t.Columns {
		if t.isKey(col.Name) {
			m.isKey[c] = true
			m.keyCols = append(m.keyCols, c)
		}
		if m.bind[c] = binderFor(col.Type); m.bind[c] != nil {
			m.bound = append(m.bound, c)
		}
	}
	m.rows = make([]row, 0, n)
	m.values = make([]any, 0, n*len(t.Columns))
	m.unchanged = make([]bool, 0, n*len(t.Columns))
	return m
}

// newRow returns a zeroed row from the slabs.
func (m *rowMaker) newRow() *row {
	n := len(m.t.Columns)
	if len(m.rows) == cap(m.rows) || len(m.values)+n > cap(m.values) {
		// Past the expected count (never, for a batch's own size): a
		// row of its own.
		return &row{values: make([]any, n), unchanged: make([]bool, n)}
	}
	m.rows = m.rows[:len(m.rows)+1]
	r := &m.rows[len(m.rows)-1]
	lo := len(m.values)
	m.values = m.values[:lo+n]
	m.unchanged = m.unchanged[:lo+n]
	r.values = m.values[lo : lo+n : lo+n]
	r.unchanged = m.unchanged[lo : lo+n : lo+n]
	return r
}

// field finds a column's source field in an image, looking first at the
// column's own position: images usually list the source table's columns in
// the target's order.
func field(image debezium.Row, c int, name string) (debezium.Field, bool) {
	if c < len(image) && image[c].Name == name {
		return image[c], true
	}
	return image.Get(name)
}

// toRow maps a change onto the table's columns.
func (m *rowMaker) toRow(ch *debezium.Change, item int) (*row, error) {
	t := m.t
	r := m.newRow()
	r.version, r.item = ch.Version, item
	var image debezium.Row
	switch ch.Op {
	case debezium.OpCreate, debezium.OpRead, debezium.OpUpdate:
		r.op, image = opUpsert, ch.After
		r.fresh = ch.Op != debezium.OpUpdate
		if image == nil {
			return nil, &RecordError{Item: item, Err: fmt.Errorf("%c event without an after image", ch.Op)}
		}
	case debezium.OpDelete:
		r.op = opDelete
		r.movedAway = ch.NewKey != nil
	default:
		return nil, &RecordError{Item: item, Err: fmt.Errorf("operation %q cannot be applied to a table", ch.Op)}
	}
	for c, col := range t.Columns {
		var f debezium.Field
		var ok bool
		if r.op == opUpsert {
			f, ok = field(image, c, col.Source)
		}
		if m.isKey[c] {
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
		} else if r.op == opDelete {
			continue
		}
		if !ok {
			// A column the event does not carry (added to the target only):
			// keep what is stored rather than write NULL over it.
			r.unchanged[c], r.fresh = true, false
			continue
		}
		if f.Unchanged && ch.Op == debezium.OpUpdate {
			// Under REPLICA IDENTITY FULL the before image holds the
			// value the placeholder stands for: the update left it as
			// it was. A NULL there may only be a column the replica
			// identity leaves out (USING INDEX): the stored value stays.
			if bf, bok := field(ch.Before, c, col.Source); bok && !bf.Unchanged && bf.Value != nil {
				f = bf
			}
		}
		r.values[c], r.unchanged[c] = f.Value, f.Unchanged
		r.fresh = r.fresh && !f.Unchanged
	}
	for _, c := range m.bound {
		if r.values[c] == nil || r.unchanged[c] {
			continue
		}
		v, err := m.bind[c](r.values[c])
		if err != nil {
			return nil, &RecordError{Item: item, Err: fmt.Errorf("column %q (%s): %w", t.Columns[c].Name, t.Columns[c].Type, err)}
		}
		r.values[c] = v
	}
	if ch.OldKey != nil && slices.Contains(r.unchanged, true) {
		r.movedFrom = m.moveSource(ch)
	}
	return r, nil
}

// appendKey renders a row's key for grouping. Values that implement
// driver.Valuer (the pgtype types) render through it, so equal numerics with
// different pointers group together; the common plain types render
// directly, the others through fmt.
func (m *rowMaker) appendKey(b []byte, r *row) []byte {
	for _, c := range m.keyCols {
		v := r.values[c]
		if dv, ok := v.(driver.Valuer); ok {
			if plain, err := dv.Value(); err == nil {
				v = plain
			}
		}
		switch x := v.(type) {
		case int64:
			b = strconv.AppendInt(append(b, 'q'), x, 10)
		case int32:
			b = strconv.AppendInt(append(b, 'q'), int64(x), 10)
		case int16:
			b = strconv.AppendInt(append(b, 'q'), int64(x), 10)
		case string:
			b = append(strconv.AppendInt(append(b, 's'), int64(len(x)), 10), ':')
			b = append(b, x...)
		default:
			b = fmt.Appendf(b, "%T:%v", v, v)
		}
		b = append(b, 0)
	}
	return b
}
