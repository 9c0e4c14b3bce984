package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// candidate is a key whose rows differed at the first check.
type candidate struct {
	text   string // ROW(key)::text, as PostgreSQL renders it
	values []any  // the key's values, bound back into statements
}

// Settler waits until pgsink has applied every change the source had
// committed at a WAL position: the connector's slot has passed it (so
// Debezium produced it to Kafka) and pgsink's stored positions have reached
// what Kafka held then. It returns ErrNotSettled when that takes longer than
// its timeout.
type Settler interface {
	Settle(ctx context.Context, t *Table, lsn int64) error
}

// ErrNotSettled means pgsink did not reach a source position in time.
var ErrNotSettled = errors.New("pgsink did not apply the source's position in time")

// sourceRow and targetRow are one key's rows as text, nil when absent.
type sourceRow struct {
	keyText []*string
	values  []*string
}

type targetRow struct {
	values    []*string
	commitLSN *int64
}

// settle re-checks the candidates: a key differs for real only when the
// source row read before a WAL position L is still the same after pgsink
// has applied L, and the target row is not newer than L. A key the source
// changed in between is checked again, up to opts.Rounds times.
func (v *Verifier) settle(ctx context.Context, t *Table, cands []candidate, res *TableResult) error {
	for round := 0; round < v.opts.Rounds && len(cands) > 0; round++ {
		s1, err := v.sourceRows(ctx, t, cands)
		if err != nil {
			return err
		}
		var lsn int64
		if err := v.src.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&lsn); err != nil {
			return fmt.Errorf("verify: source WAL position: %w", err)
		}
		if err := v.settler.Settle(ctx, t, lsn); err != nil {
			if errors.Is(err, ErrNotSettled) {
				break
			}
			return err
		}
		d, err := v.targetRows(ctx, t, cands)
		if err != nil {
			return err
		}
		s2, err := v.sourceRows(ctx, t, cands)
		if err != nil {
			return err
		}
		var again []candidate
		for _, c := range cands {
			a, b, tr := s1[c.text], s2[c.text], d[c.text]
			switch {
			case sameSource(a, b) && sameRow(a, tr):
				// In flight at the first check, applied since.
			case !sameSource(a, b) || (tr != nil && tr.commitLSN != nil && *tr.commitLSN > lsn):
				again = append(again, c)
			default:
				res.add(t, c, a, tr, lsn, v.opts.MaxKeys)
			}
		}
		cands = again
	}
	for _, c := range cands {
		res.Unsettled = append(res.Unsettled, c.text)
	}
	sort.Strings(res.Unsettled)
	sort.Slice(res.Diffs, func(i, j int) bool { return res.Diffs[i].Key < res.Diffs[j].Key })
	return nil
}

func sameSource(a, b *sourceRow) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.values, b.values, equalText)
}

func sameRow(s *sourceRow, t *targetRow) bool {
	if s == nil || t == nil {
		return s == nil && t == nil
	}
	return slices.EqualFunc(s.values, t.values, equalText)
}

func equalText(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// byKeyBatch bounds the keys one statement binds.
const byKeyBatch = 500

func (v *Verifier) sourceRows(ctx context.Context, t *Table, cands []candidate) (map[string]*sourceRow, error) {
	out := map[string]*sourceRow{}
	s := sourceSide(t)
	err := eachBatch(cands, func(batch []candidate, args []any) error {
		rows, err := v.src.Query(ctx, s.rowsByKey(len(batch), ""), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			r := &sourceRow{}
			if err := rows.Scan(&k, &r.keyText, &r.values); err != nil {
				return err
			}
			out[k] = r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("verify: source %s: read rows: %w", t.Source, err)
	}
	return out, nil
}

func (v *Verifier) targetRows(ctx context.Context, t *Table, cands []candidate) (map[string]*targetRow, error) {
	out := map[string]*targetRow{}
	s := targetSide(t)
	err := eachBatch(cands, func(batch []candidate, args []any) error {
		rows, err := v.dst.Query(ctx, s.rowsByKey(len(batch), t.CommitColumn), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var keyText []*string
			r := &targetRow{}
			if err := rows.Scan(&k, &keyText, &r.values, &r.commitLSN); err != nil {
				return err
			}
			out[k] = r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("verify: target %s: read rows: %w", t.Target, err)
	}
	return out, nil
}

func eachBatch(cands []candidate, fn func([]candidate, []any) error) error {
	for lo := 0; lo < len(cands); lo += byKeyBatch {
		batch := cands[lo:min(lo+byKeyBatch, len(cands))]
		var args []any
		for _, c := range batch {
			args = append(args, c.values...)
		}
		if err := fn(batch, args); err != nil {
			return err
		}
	}
	return nil
}
