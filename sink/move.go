package sink

import (
	"bytes"

	"github.com/pgsink/pgsink/debezium"
)

// keyMoveKind is what an update event says about its row's key.
type keyMoveKind uint8

const (
	// keyKept: the before image's key is the after image's, or the key is
	// the record key, which an update cannot change (Debezium sends a
	// change of the primary key as a delete and a create).
	keyKept keyMoveKind = iota
	// keyMoved: the before image holds another key than the after image.
	keyMoved
	// keyUnknown: the key is not the record key and the before image does
	// not carry it (REPLICA IDENTITY DEFAULT or USING INDEX of other
	// columns): a move cannot be seen.
	keyUnknown
)

// keyMove tells whether the update ch, mapped to after, moves its row from
// one key to another, and if so returns the delete of the old key: at the
// update's version, so that the version guard and the tombstone treat it as
// they treat the delete half of Debezium's primary-key change. A key column
// the record key carries is taken from it: Debezium keys a record by the
// source's primary key, which an update event never changes.
func (m *rowMaker) keyMove(ch *debezium.Change, after *row, item int) (*row, keyMoveKind) {
	if m.scratch == nil {
		m.scratch = &row{values: make([]any, len(m.t.Columns))}
	}
	before := false
	for _, c := range m.keyCols {
		col := m.t.Columns[c]
		if f, ok := ch.Key.Get(col.Source); ok {
			m.scratch.values[c] = f.Value
			continue
		}
		f, ok := field(ch.Before, c, col.Source)
		if !ok || f.Value == nil || f.Unchanged {
			return nil, keyUnknown
		}
		m.scratch.values[c], before = f.Value, true
	}
	if !before {
		return nil, keyKept
	}
	m.oldKey = m.appendKey(m.oldKey[:0], m.scratch)
	m.newKey = m.appendKey(m.newKey[:0], after)
	if bytes.Equal(m.oldKey, m.newKey) {
		return nil, keyKept
	}
	old := m.newRow()
	old.op, old.version, old.item = opDelete, ch.Version, item
	for _, c := range m.keyCols {
		old.values[c] = m.scratch.values[c]
	}
	return old, keyMoved
}
