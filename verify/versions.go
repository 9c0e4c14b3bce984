package verify

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// VersionAhead is the kind of a target row whose stored version is past
// the source's WAL position: no event can carry it, and the version guard
// (I3) would refuse every real change of the row from then on.
const VersionAhead = "version-ahead"

// maxAhead bounds the version-ahead keys read per table.
const maxAhead = 10000

// versionsAhead finds the target rows whose commit LSN is past what the
// source has written: read the source's position first, then the target,
// so every version a real event gave is at most that position.
func (v *Verifier) versionsAhead(ctx context.Context, t *Table, res *TableResult) (map[string]bool, error) {
	var lsn int64
	if err := v.src.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&lsn); err != nil {
		return nil, fmt.Errorf("verify: source WAL position: %w", err)
	}
	s := targetSide(t)
	commit := pgx.Identifier{t.CommitColumn}.Sanitize()
	keyTexts := make([]string, len(s.key))
	for i, k := range s.key {
		keyTexts[i] = k + "::text"
	}
	rows, err := v.dst.Query(ctx, fmt.Sprintf(`SELECT %s, %s, ARRAY[%s], %s FROM %s WHERE %s > $1 ORDER BY %s LIMIT %d`,
		s.keyText(), commit, strings.Join(keyTexts, ", "), s.keyList(), s.table, commit, s.keyList(), maxAhead), lsn)
	if err != nil {
		return nil, fmt.Errorf("verify: target %s: versions: %w", t.Target, err)
	}
	defer rows.Close()
	ahead := map[string]bool{}
	for rows.Next() {
		// The key's values (bound back for the re-check) and their text
		// (--repair's snapshot signal) come with it.
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("verify: target %s: versions: %w", t.Target, err)
		}
		var key string
		var version int64
		var keyText []*string
		if err := rows.Scan(append([]any{&key, &version, &keyText}, scanNothing(len(s.key))...)...); err != nil {
			return nil, fmt.Errorf("verify: target %s: versions: %w", t.Target, err)
		}
		ahead[key] = true
		res.Drift++
		if len(res.Diffs) < v.opts.MaxKeys {
			src, dst := "at most "+strconv.FormatInt(lsn, 10), strconv.FormatInt(version, 10)
			res.Diffs = append(res.Diffs, Diff{Key: key, Kind: VersionAhead,
				Columns: []ColumnDiff{{Column: t.CommitColumn, Source: &src, Target: &dst}}})
		}
		res.keys = append(res.keys, driftKey{candidate: candidate{text: key, values: vals[3 : 3+len(s.key)]},
			kind: VersionAhead, keyText: keyText})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("verify: target %s: versions: %w", t.Target, err)
	}
	return ahead, nil
}

// scanNothing is n scan targets that discard their values.
func scanNothing(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = new(any)
	}
	return out
}
