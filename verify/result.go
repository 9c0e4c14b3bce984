package verify

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Drift kinds.
const (
	Missing = "missing" // in the source, not in the target
	Extra   = "extra"   // in the target, not in the source
	Changed = "changed" // in both, with other values
)

// TableResult is what verify found in one table.
type TableResult struct {
	Source          string        `json:"source"`
	Target          string        `json:"target"`
	SourceRows      int64         `json:"source_rows"`
	TargetRows      int64         `json:"target_rows"`
	Chunks          int           `json:"chunks"`
	DifferingChunks int           `json:"differing_chunks"`
	Drift           int           `json:"drift"` // confirmed differing keys, all counted
	Diffs           []Diff        `json:"diffs"` // the first MaxKeys of them
	Unsettled       []string      `json:"unsettled,omitempty"`
	Unmapped        []string      `json:"unmapped_source_columns,omitempty"`
	Elapsed         time.Duration `json:"elapsed_ns"`

	// keys are every confirmed key, for --repair.
	keys []driftKey
}

// Diff is one differing key.
type Diff struct {
	Key     string       `json:"key"`
	Kind    string       `json:"kind"`
	Columns []ColumnDiff `json:"columns,omitempty"`
}

// ColumnDiff is one column whose values differ (nil: NULL or no row).
type ColumnDiff struct {
	Column string  `json:"column"`
	Source *string `json:"source"`
	Target *string `json:"target"`
}

// driftKey is a confirmed key with what repair needs of it.
type driftKey struct {
	candidate
	kind    string
	keyText []*string // the key's values as text, from the source row
	// checkedAt is the source WAL position L of the re-check that confirmed
	// the key: pgsink had applied everything up to it.
	checkedAt int64
}

func (r *TableResult) add(t *Table, c candidate, s *sourceRow, d *targetRow, lsn int64, maxKeys int) {
	r.Drift++
	k := driftKey{candidate: c, checkedAt: lsn}
	diff := Diff{Key: c.text}
	switch {
	case s == nil:
		k.kind, diff.Kind = Extra, Extra
	case d == nil:
		k.kind, diff.Kind = Missing, Missing
		k.keyText = s.keyText
	default:
		k.kind, diff.Kind = Changed, Changed
		k.keyText = s.keyText
		for i, col := range t.Columns {
			if !equalText(s.values[i], d.values[i]) {
				diff.Columns = append(diff.Columns, ColumnDiff{Column: col.Target, Source: s.values[i], Target: d.values[i]})
			}
		}
	}
	r.keys = append(r.keys, k)
	if len(r.Diffs) < maxKeys {
		r.Diffs = append(r.Diffs, diff)
	}
}

// Clean reports whether the table holds no confirmed drift.
func (r *TableResult) Clean() bool { return r.Drift == 0 }

// Print writes the per-table summary and its first differing keys.
func (r *TableResult) Print(w io.Writer) {
	state := "clean"
	if !r.Clean() {
		state = fmt.Sprintf("DRIFT: %d key(s)", r.Drift)
	}
	fmt.Fprintf(w, "%s -> %s: %s (%d source rows, %d target rows, %d chunks, %d differed at first, %s)\n",
		r.Source, r.Target, state, r.SourceRows, r.TargetRows, r.Chunks, r.DifferingChunks, r.Elapsed.Round(time.Millisecond))
	for _, d := range r.Diffs {
		fmt.Fprintf(w, "  %-7s %s\n", d.Kind, d.Key)
		for _, c := range d.Columns {
			fmt.Fprintf(w, "          %s: source %s, target %s\n", c.Column, show(c.Source), show(c.Target))
		}
	}
	if r.Drift > len(r.Diffs) {
		fmt.Fprintf(w, "  ... and %d more\n", r.Drift-len(r.Diffs))
	}
	if len(r.Unsettled) > 0 {
		fmt.Fprintf(w, "  %d key(s) kept changing at the source or pgsink did not catch up in time; not verified: %s\n",
			len(r.Unsettled), strings.Join(r.Unsettled[:min(len(r.Unsettled), 10)], " "))
	}
	if len(r.Unmapped) > 0 {
		fmt.Fprintf(w, "  source columns not compared (no target column): %s\n", strings.Join(r.Unmapped, ", "))
	}
}

func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	const max = 80
	if n := len(*s); n > max {
		return fmt.Sprintf("%q... (%d bytes)", (*s)[:max], n)
	}
	return fmt.Sprintf("%q", *s)
}
