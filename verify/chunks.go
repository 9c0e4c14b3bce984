package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// chunk is one key range: after lower (exclusive; none for the first) up
// to upper (inclusive; none for the last, which covers the target's keys
// past the source's last).
type chunk struct {
	lower, upper []any
	rows         int64 // source rows
	hash         *string
}

// differing is a chunk whose hashes differ, with the counts of both sides.
type differing struct {
	chunk
	targetRows int64
}

// walk hashes t chunk by chunk, the source reading the next chunk while
// the target hashes the previous one, and returns the chunks that differ.
func (v *Verifier) walk(ctx context.Context, t *Table, res *TableResult) ([]differing, error) {
	src, dst := sourceSide(t), targetSide(t)
	chunks := make(chan chunk, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srcErr error
	go func() {
		defer close(chunks)
		srcErr = v.readSource(ctx, src, chunks)
	}()
	var diff []differing
	start := time.Now()
	for c := range chunks {
		args := append(append([]any{}, c.lower...), c.upper...)
		var n int64
		var hash *string
		if err := v.dst.QueryRow(ctx, dst.targetChunk(c.lower != nil, c.upper != nil), args...).Scan(&n, &hash); err != nil {
			cancel()
			for range chunks { // let the reader finish
			}
			return nil, fmt.Errorf("verify: target %s: hash chunk: %w", t.Target, err)
		}
		res.Chunks++
		res.SourceRows += c.rows
		res.TargetRows += n
		if n != c.rows || !equalHash(hash, c.hash) {
			diff = append(diff, differing{chunk: c, targetRows: n})
		}
		v.progress.update(t.Target.String(), res.SourceRows, time.Since(start))
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return nil, srcErr
	}
	res.DifferingChunks = len(diff)
	return diff, nil
}

func equalHash(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// readSource sends the source's chunks in key order, the last one
// unbounded above, pacing the reads to MaxRowsPerSecond.
func (v *Verifier) readSource(ctx context.Context, s side, out chan<- chunk) error {
	var lower []any
	start := time.Now()
	var read int64
	for {
		row := v.src.QueryRow(ctx, s.sourceChunk(lower != nil), append([]any{v.opts.ChunkRows}, lower...)...)
		var n int64
		var hash *string
		last := make([]any, len(s.key))
		dest := []any{&n, &hash}
		for i := range last {
			dest = append(dest, &last[i])
		}
		err := row.Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			// Past the source's last key: the target's remaining keys.
			select {
			case out <- chunk{lower: lower}:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("verify: source %s: hash chunk: %w", s.table, err)
		}
		select {
		case out <- chunk{lower: lower, upper: last, rows: n, hash: hash}:
		case <-ctx.Done():
			return ctx.Err()
		}
		lower = last
		read += n
		if v.opts.MaxRowsPerSecond > 0 {
			due := time.Duration(float64(read) / float64(v.opts.MaxRowsPerSecond) * float64(time.Second))
			if wait := due - time.Since(start); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
}

// drill lists the keys of a differing chunk whose rows differ: missing in
// the target, extra in it, or with other values.
func (v *Verifier) drill(ctx context.Context, t *Table, c differing) ([]candidate, error) {
	src, dst := sourceSide(t), targetSide(t)
	args := append(append([]any{}, c.lower...), c.upper...)
	s, err := rangeRows(ctx, v.src, src.rangeRows(c.lower != nil, c.upper != nil), args, len(t.Key))
	if err != nil {
		return nil, fmt.Errorf("verify: source %s: %w", t.Source, err)
	}
	d, err := rangeRows(ctx, v.dst, dst.rangeRows(c.lower != nil, c.upper != nil), args, len(t.Key))
	if err != nil {
		return nil, fmt.Errorf("verify: target %s: %w", t.Target, err)
	}
	var out []candidate
	for k, sr := range s {
		if dr, ok := d[k]; !ok || dr.hash != sr.hash {
			out = append(out, candidate{text: k, values: sr.values})
		}
	}
	for k, dr := range d {
		if _, ok := s[k]; !ok {
			out = append(out, candidate{text: k, values: dr.values})
		}
	}
	return out, nil
}

type hashedRow struct {
	hash   string
	values []any
}

func rangeRows(ctx context.Context, q *pgx.Conn, sql string, args []any, keys int) (map[string]hashedRow, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]hashedRow{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		k, _ := vals[0].(string)
		h, _ := vals[1].(string)
		out[k] = hashedRow{hash: h, values: vals[2 : 2+keys]}
	}
	return out, rows.Err()
}
