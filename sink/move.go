package sink

import (
	"bytes"
	"slices"

	"github.com/jackc/pgx/v5"
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

// moveSource is where the upsert of a moved row finds the values its event
// left unchanged: the row of the old key, as it was before the move.
type moveSource struct {
	key     []any // the old key's values, in Table.Key's order
	version debezium.Version
}

// moveSource returns the old key of a create that carries Debezium's
// __debezium.oldkey header, or nil when the header lacks a key column (the
// table is keyed on other columns than the source's primary key).
func (m *rowMaker) moveSource(ch *debezium.Change) *moveSource {
	src := &moveSource{version: ch.Version, key: make([]any, 0, len(m.t.Key))}
	for _, c := range m.t.keyColumns() {
		f, ok := ch.OldKey.Get(m.t.Columns[c].Source)
		if !ok || f.Value == nil {
			return nil
		}
		src.key = append(src.key, f.Value)
	}
	return src
}

// takesPartInMoves reports whether a reduced batch holds a half of a key
// move that the moved_rows ledger joins: a delete of a moved-away key, or
// an upsert of a moved-in key with unchanged columns.
func takesPartInMoves(red *reduced) bool {
	for _, r := range red.rows {
		if r.movedAway || r.movedFrom != nil {
			return true
		}
	}
	return false
}

// lockMoves serialises the transactions that apply halves of key moves of
// one table ($1): the two halves of a move, and the moves of a chain, are
// on different partitions and would otherwise commit concurrently, each
// missing what the other wrote (READ COMMITTED reads only committed rows).
// Taken before the transaction's writes of the table, by transactions with
// moves only, so it waits on no row lock; each later statement of the
// transaction reads everything an earlier holder committed.
const lockMoves = "SELECT pg_advisory_xact_lock(hashtext('pgsink key moves'), hashtext($1))"

// movesAway reports whether a reduced batch deletes a key a row moved
// away from.
func movesAway(red *reduced) bool {
	for _, r := range red.rows {
		if r.op == opDelete && r.movedAway {
			return true
		}
	}
	return false
}

// queueMovedAway queues, before the staged deletes run, the keeping of the
// rows moved away from the staged keys, and the filling of the rows a
// create applied before them left waiting. A move whose create waits while
// the old key's row is not in the target is unresolved: the values are
// nowhere.
func queueMovedAway(x *txn, stmts *statements) {
	t := stmts.table
	x.queue.Queue(stmts.moves.keepMoved, t.Ref()).Query(func(rows pgx.Rows) error {
		var lost bool
		_, err := pgx.ForEachRow(rows, []any{&lost}, func() error {
			if lost {
				x.stats.Unresolved++
			}
			return nil
		})
		return err
	})
	if stmts.moves.resolveMoved != "" {
		x.queue.Queue(stmts.moves.resolveMoved, append([]any{t.Ref()}, stmts.moves.resolveNames...)...)
	}
}

// queueMovedTo queues, after the upserts, the filling of the unchanged
// columns of each row that moved to its key (see takeMoved). A row whose
// values were nowhere while its old key's delete had come is unresolved;
// one whose delete has not come yet is filled when it does.
func queueMovedTo(x *txn, stmts *statements, red *reduced) {
	for _, r := range red.rows {
		if r.op != opUpsert || r.movedFrom == nil || !slices.Contains(r.unchanged, true) {
			continue
		}
		x.queue.Queue(stmts.takeMoved(r.unchanged), stmts.takeMovedArgs(r)...).QueryRow(func(row pgx.Row) error {
			var found, deleted bool
			var filled, noted int64
			if err := row.Scan(&found, &deleted, &filled, &noted); err != nil {
				return err
			}
			if !found && deleted {
				x.stats.Unresolved++
			}
			return nil
		})
	}
}
