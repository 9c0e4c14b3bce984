package fidelity

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRowsAreUnique: expectations name a case by column and case name, so
// two cases of one column must not share a name, and every row's key must
// stay below StreamOffset.
func TestRowsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	rows := Rows()
	for _, r := range rows {
		k := r.Column + "\t" + r.Case.Name
		if seen[k] {
			t.Errorf("two cases %q in column %s", r.Case.Name, r.Column)
		}
		seen[k] = true
		if strings.ContainsAny(r.Case.Name, "\t\n") {
			t.Errorf("case %q of %s: a tab or newline breaks the expectations file", r.Case.Name, r.Column)
		}
	}
	if n := len(rows); n == 0 || n >= StreamOffset {
		t.Fatalf("%d rows; want between 1 and %d", n, StreamOffset-1)
	}
	if !strings.Contains(TableDDL(), "c_int4_arr integer[]") {
		t.Errorf("the table has no array column for integer:\n%s", TableDDL())
	}
}

func TestMergeNamesEachPathWhenTheyDiffer(t *testing.T) {
	same := Merge(map[string]Outcome{"copy": {Class: Exact}, "parameters": {Class: Exact}})
	if same != (Outcome{Class: Exact}) {
		t.Errorf("agreeing paths: got %+v, want exact", same)
	}
	got := Merge(map[string]Outcome{
		"copy":       {Class: Refused, How: "dead letter: x"},
		"parameters": {Class: Lost, How: "sent 1, written 2"},
	})
	want := Outcome{Class: Refused, How: "copy: refused, dead letter: x; parameters: lost, sent 1, written 2"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestExpectationsRoundTrip: what WriteExpectations writes,
// ReadExpectations reads, and Regressions reports exactly the cases that
// were exact and are not any more, and every dropped case.
func TestExpectationsRoundTrip(t *testing.T) {
	rows := Rows()[:3]
	before := NewMatrix(rows)
	snap := Run{Settings: Shipped, Phase: Snapshot}
	before.Set(snap, rows[0].ID, Outcome{Class: Exact})
	before.Set(snap, rows[1].ID, Outcome{Class: Lost, How: "sent null"})
	before.Set(snap, rows[2].ID, Outcome{Class: Exact})
	path := filepath.Join(t.TempDir(), "expected.tsv")
	if err := before.WriteExpectations(path); err != nil {
		t.Fatal(err)
	}
	exp, err := ReadExpectations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 3 {
		t.Fatalf("read %d expectations, want 3: %v", len(exp), exp)
	}
	after := NewMatrix(rows)
	after.Set(snap, rows[0].ID, Outcome{Class: Refused, How: "dead letter: y"})
	after.Set(snap, rows[1].ID, Outcome{Class: Dropped, How: "not in the target"})
	after.Set(snap, rows[2].ID, Outcome{Class: Exact})
	got := after.Regressions(exp)
	if len(got) != 2 || !strings.Contains(got[0], "refused (dead letter: y)") || !strings.Contains(got[1], "dropped") {
		t.Fatalf("regressions %q; want the refused row that was exact and the dropped row", got)
	}
	if doc, err := after.Markdown(); err != nil || !strings.Contains(doc, "| shipped/snapshot | 1 | 0 | 1 | 1 |") {
		t.Fatalf("markdown (%v) has no summary row with 1 exact, 1 refused, 1 dropped:\n%s", err, doc)
	}
}
