package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgsink/pgsink/debezium"
)

// ErrKeyNotUniqueAtSource is wrapped by the RecordError of a record that
// shows two source rows sharing one target key. pgsink writes one row per
// key: it cannot represent them, so the record is never applied (dead
// letters, or the partition stops with errors.tolerance: none).
var ErrKeyNotUniqueAtSource = errors.New("two source rows share the target key")

// keylessChange is one change of a table whose events carry no record key,
// mapped onto its target's key.
type keylessChange struct {
	item    int
	ref     string
	table   *Table
	op      debezium.Op
	version debezium.Version
	key     string // rendered for comparison (rowMaker.appendKey)
	values  []any  // the key columns' values, in Table.Columns order
}

// keyState is what the batch so far, or the target, holds for a key.
type keyState struct {
	live    bool
	version debezium.Version
}

// checkUniqueAtSource refuses a create or snapshot read that meets a row
// of its key that the source still holds, for tables whose events carry no
// record key: their source table has no primary key, so the configured key
// is not known to be unique there. Debezium's records for a table with a
// key never get here: the source itself keeps their key unique.
//
// A create (op c) is new at the source: meeting a live row of its key at
// an older version means another source row has that key. (A re-emission
// carries the stored version, and a create older than the stored row is
// refused by the version guard anyway.) Snapshot reads of one snapshot
// share a version: a read meeting a live row of the same version earlier
// in the batch is a second source row with that key. A read is not
// compared with the stored row: a replay over a populated target, or
// Debezium snapshotting again with no write in between, reads it again
// at its stored version.
//
// It runs, only for such tables, before the writes of the transaction, and
// reads the target rows of the keys in the transaction. With staging (a
// batch under apply.consistency: transaction) the records of source
// transactions are left out: staged, they are not written now, and the
// target does not hold yet the transactions staged before them (a delete of
// the key, say); the resolver checks them when it writes them (TxWriter),
// against the target its earlier transactions made.
func (a *Applier) checkUniqueAtSource(ctx context.Context, x *txn, items []Item, lo, hi int, staging bool) error {
	changes, creates := keylessChanges(items, lo, hi, staging)
	if creates == 0 {
		return nil
	}
	stored, err := a.storedKeys(ctx, x, changes)
	if err != nil {
		return err
	}
	state := map[string]keyState{}
	truncated := map[string]bool{}
	for _, c := range changes {
		if c.op == debezium.OpTruncate {
			truncated[c.ref] = true
			for k := range state {
				if strings.HasPrefix(k, c.ref+"\x00") {
					delete(state, k)
				}
			}
			continue
		}
		id := c.ref + "\x00" + c.key
		cur, seen := state[id]
		if !seen && !truncated[c.ref] {
			cur = stored[id]
		}
		switch c.op {
		case debezium.OpCreate, debezium.OpRead:
			if cur.live && (c.op == debezium.OpCreate && cur.version.Less(c.version) || c.op == debezium.OpRead && seen && cur.version == c.version) {
				return &RecordError{Item: c.item, Err: fmt.Errorf("%w: table %s, key %v: the source table sends no record key (it has no primary key), "+
					"and a row of this key is already held; pgsink writes one row per key and cannot represent both: "+
					"make the key unique at the source (a primary key, or a unique index named in Debezium's message.key.columns), see docs/configuration.md#tables-without-a-primary-key",
					ErrKeyNotUniqueAtSource, c.ref, c.values)}
			}
			fallthrough
		case debezium.OpUpdate:
			if !cur.live || cur.version.Less(c.version) {
				state[id] = keyState{live: true, version: c.version}
			}
		case debezium.OpDelete:
			if !cur.version.Less(c.version) && cur.live {
				continue // an older delete: the guard refuses it too
			}
			state[id] = keyState{version: c.version}
		}
	}
	return nil
}

// keylessChanges maps the changes of keyless tables in [lo, hi) onto their
// keys, in offset order, and counts the creates and reads among them.
// Tables whose deletes are ignored keep rows the source deleted, so a new
// row of the same key is no sign of a duplicate there: they are left out,
// as are, with staging, the records of source transactions.
func keylessChanges(items []Item, lo, hi int, staging bool) (out []keylessChange, creates int) {
	makers := map[*Table]*rowMaker{}
	for i := lo; i < hi; i++ {
		it := &items[i]
		t, ch := it.Table, &it.Change
		if it.Err != nil || t == nil || t.Outbox != nil || t.Deletes == DeleteIgnore || ch.Kind != debezium.KindChange || len(ch.Key) > 0 ||
			staging && ch.Transaction != nil {
			continue
		}
		if ch.Op == debezium.OpTruncate {
			if t.Truncates {
				out = append(out, keylessChange{item: i, ref: t.Ref(), op: ch.Op})
			}
			continue
		}
		m := makers[t]
		if m == nil {
			m = newRowMaker(t, 0)
			makers[t] = m
		}
		r, err := m.toRow(ch, i)
		if err != nil {
			continue // reduce reports it, as a record error of its own
		}
		c := keylessChange{item: i, ref: t.Ref(), table: t, op: ch.Op, version: ch.Version, key: string(m.appendKey(nil, r))}
		for _, k := range m.keyCols {
			c.values = append(c.values, r.values[k])
		}
		if moved, ok := movedFrom(m, ch, i, c.key); ok {
			// An update that changes the key leaves its old key: a row
			// created there later is no duplicate.
			out = append(out, keylessChange{item: i, ref: c.ref, table: t, op: debezium.OpDelete, version: ch.Version, key: moved})
		}
		out = append(out, c)
		if ch.Op == debezium.OpCreate || ch.Op == debezium.OpRead {
			creates++
		}
	}
	return out, creates
}

// storedKeysChunk bounds the keys of one lookup: two parameters or more a
// key, well under PostgreSQL's 65,535.
const storedKeysChunk = 1000

// storedKeys reads, in the transaction, the version of the target rows
// that hold the keys of the creates and reads among changes.
func (a *Applier) storedKeys(ctx context.Context, x *txn, changes []keylessChange) (map[string]keyState, error) {
	if err := x.flush(ctx); err != nil {
		return nil, err
	}
	stored := map[string]keyState{}
	byTable := map[string][]keylessChange{}
	var refs []string
	for _, c := range changes {
		if c.op != debezium.OpCreate && c.op != debezium.OpRead {
			continue
		}
		if _, ok := byTable[c.ref]; !ok {
			refs = append(refs, c.ref)
		}
		byTable[c.ref] = append(byTable[c.ref], c)
	}
	for _, ref := range refs {
		cs := byTable[ref]
		for lo := 0; lo < len(cs); lo += storedKeysChunk {
			chunk := cs[lo:min(lo+storedKeysChunk, len(cs))]
			sql, args := storedKeysQuery(chunk[0].table, chunk)
			rows, err := x.conn.Query(ctx, sql, args...)
			if err != nil {
				return nil, fmt.Errorf("sink: table %s: read the stored rows of keyless changes: %w", ref, err)
			}
			for rows.Next() {
				var n int
				var v keyState
				if err := rows.Scan(&n, &v.version.CommitLSN, &v.version.LSN); err != nil {
					rows.Close()
					return nil, err
				}
				v.live = true
				stored[ref+"\x00"+chunk[n].key] = v
			}
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("sink: table %s: read the stored rows of keyless changes: %w", ref, err)
			}
		}
	}
	return stored, nil
}

// storedKeysQuery selects the live target rows of the chunk's keys with
// the index of the change each answers. Keys are bound, cast to their
// columns' types as the target catalog names them.
func storedKeysQuery(t *Table, chunk []keylessChange) (string, []any) {
	var keyCols []Column
	for _, c := range t.Columns {
		if t.isKey(c.Name) {
			keyCols = append(keyCols, c)
		}
	}
	var values []string
	var args []any
	for n, c := range chunk {
		args = append(args, n)
		tuple := []string{"$" + strconv.Itoa(len(args)) + "::integer"}
		for k, col := range keyCols {
			args = append(args, c.values[k])
			tuple = append(tuple, "$"+strconv.Itoa(len(args))+"::"+col.Type)
		}
		values = append(values, "("+strings.Join(tuple, ", ")+")")
	}
	names := []string{"n"}
	var match []string
	for k, col := range keyCols {
		names = append(names, "k"+strconv.Itoa(k))
		match = append(match, "t."+q(col.Name)+" = v.k"+strconv.Itoa(k))
	}
	live := ""
	if t.Deletes == DeleteSoft {
		live = " AND NOT t." + q(t.SoftDeleteColumn)
	}
	return "SELECT v.n, t." + q(t.CommitColumn) + ", t." + q(t.LSNColumn) +
		" FROM (VALUES " + strings.Join(values, ", ") + ") AS v(" + strings.Join(names, ", ") + ")" +
		" JOIN " + t.Ident() + " AS t ON " + strings.Join(match, " AND ") + live +
		" WHERE t." + q(t.CommitColumn) + " IS NOT NULL", args
}

// movedFrom returns the key an update's before image had, when it differs
// from the key of its after image (key).
func movedFrom(m *rowMaker, ch *debezium.Change, item int, key string) (string, bool) {
	if ch.Op != debezium.OpUpdate || ch.Before == nil {
		return "", false
	}
	before := debezium.Change{Kind: ch.Kind, Op: debezium.OpDelete, Before: ch.Before, Version: ch.Version}
	r, err := m.toRow(&before, item)
	if err != nil {
		return "", false
	}
	old := string(m.appendKey(nil, r))
	return old, old != key
}
