package verify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

var update = flag.Bool("update", false, "rewrite the golden SQL files in testdata/sql")

// hostile is a table whose names would break unquoted SQL: every statement
// must quote them.
var hostile = &Table{
	Source:       config.TableName{Schema: `App "Prod"`, Name: `Order; DROP TABLE x`},
	Target:       config.TableName{Schema: "public", Name: `orders"--`},
	Key:          []Column{{Source: `Tenant"`, Target: "tenant"}, {Source: "id", Target: `ID; --`}},
	Columns:      []Column{{Source: `Tenant"`, Target: "tenant"}, {Source: "id", Target: `ID; --`}, {Source: "note", Target: `a"b`}},
	CommitColumn: `v"commit`,
}

// TestStatementsGolden checks every statement verify builds, with hostile
// identifiers, against testdata/sql.
func TestStatementsGolden(t *testing.T) {
	src, dst := sourceSide(hostile), targetSide(hostile)
	cases := map[string]string{
		"source_chunk_first":   src.sourceChunk(false),
		"source_chunk_next":    src.sourceChunk(true),
		"target_chunk_first":   dst.targetChunk(false, true),
		"target_chunk_middle":  dst.targetChunk(true, true),
		"target_chunk_last":    dst.targetChunk(true, false),
		"range_rows_middle":    src.rangeRows(true, true),
		"source_rows_by_key_2": src.rowsByKey(2, ""),
		"target_rows_by_key_2": dst.rowsByKey(2, hostile.CommitColumn),
	}
	soft := *hostile
	soft.SoftDeleteColumn = `del"eted`
	cases["target_chunk_middle_soft"] = targetSide(&soft).targetChunk(true, true)
	cases["target_rows_by_key_soft"] = targetSide(&soft).rowsByKey(1, soft.CommitColumn)
	for name, got := range cases {
		path := filepath.Join("testdata", "sql", name+".sql")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./verify -update to write it)", err)
		}
		if got+"\n" != string(want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", name, got, want)
		}
	}
}

// TestFiltersQuoteValues: a key value with quotes and SQL stays one quoted
// literal, composite keys become row comparisons, and signals are split so
// each stays under the limit.
func TestFiltersQuoteValues(t *testing.T) {
	text := func(s string) *string { return &s }
	single := side{key: []string{`"id"`}}
	got := filters(single, []driftKey{{keyText: []*string{text(`1'); DROP TABLE x; --`)}}, {keyText: []*string{text("2")}}}, maxSignalData)
	want := `"id" IN ('1''); DROP TABLE x; --', '2')`
	if len(got) != 1 || got[0] != want {
		t.Errorf("single key: got %q, want [%q]", got, want)
	}
	pair := side{key: []string{`"a"`, `"b"`}}
	got = filters(pair, []driftKey{{keyText: []*string{text("x"), nil}}}, maxSignalData)
	want = `("a", "b") IN (('x', NULL))`
	if len(got) != 1 || got[0] != want {
		t.Errorf("composite key: got %q, want [%q]", got, want)
	}
	var many []driftKey
	for range 500 {
		many = append(many, driftKey{keyText: []*string{text("1234567890")}})
	}
	got = filters(single, many, maxSignalData)
	total := 0
	for _, f := range got {
		if len(f) > maxSignalData {
			t.Errorf("a filter of %d bytes, over the limit of %d", len(f), maxSignalData)
		}
		total += strings.Count(f, "'1234567890'")
	}
	if len(got) < 2 || total != 500 {
		t.Errorf("500 keys: %d filters with %d keys in all, want several holding all 500", len(got), total)
	}
}

func TestSourceOf(t *testing.T) {
	for topic, want := range map[string]string{
		"app.public.orders":     "public.orders",
		"a.b.app.public.orders": "public.orders",
		"public.orders":         "",
		"app..orders":           "",
		"app.public.":           "",
	} {
		got, err := SourceOf(topic)
		if want == "" {
			if err == nil {
				t.Errorf("SourceOf(%q) = %v, want an error", topic, got)
			}
			continue
		}
		if err != nil || got.Schema+"."+got.Name != want {
			t.Errorf("SourceOf(%q) = %v, %v; want %s", topic, got, err, want)
		}
	}
}
