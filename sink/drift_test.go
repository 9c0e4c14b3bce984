package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// recordingExecer keeps the statements it is given instead of running them.
type recordingExecer struct{ sql []string }

func (r *recordingExecer) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	r.sql = append(r.sql, sql)
	return pgconn.CommandTag{}, nil
}

// QueryRow is never called by the statements recorded here.
func (r *recordingExecer) QueryRow(context.Context, string, ...any) pgx.Row {
	panic("recordingExecer: no query expected")
}

// TestDriftGolden checks the statements schema drift and the keyless
// check build, with identifiers that must stay names (I8).
func TestDriftGolden(t *testing.T) {
	var ddl recordingExecer
	cfg := config.Table{Path: "tables[0]", Target: config.Target{TableName: config.TableName{Schema: `App "Prod"`, Name: "Order; DROP TABLE x"}}}
	if err := DropNotNull(context.Background(), &ddl, cfg, []string{"Notes", `a"b`}); err != nil {
		t.Fatal(err)
	}
	hard, soft := goldenTable(DeleteHard), goldenTable(DeleteSoft)
	chunk := []keylessChange{{values: []any{int64(1), "eu"}}, {values: []any{int64(2), "us"}}}
	keysHard, _ := storedKeysQuery(hard, chunk)
	keysSoft, _ := storedKeysQuery(soft, chunk)
	cases := map[string]string{
		"drop_not_null.sql":    ddl.sql[0],
		"rename_fix.sql":       renameFix(hard, "Notes", "Remarks; --", debezium.Version{CommitLSN: 10, LSN: 12}),
		"stored_keys.sql":      keysHard,
		"stored_keys_soft.sql": keysSoft,
	}
	compareGolden(t, cases)
}

// compareGolden compares each statement with its golden file in
// testdata/sql, or rewrites the files with -update.
func compareGolden(t *testing.T, cases map[string]string) {
	t.Helper()
	for file, got := range cases {
		t.Run(file, func(t *testing.T) { checkGolden(t, file, got) })
	}
}

func TestDiffSchema(t *testing.T) {
	cfg := config.Table{Path: "tables[0]"}
	cat := &catalog.Table{Exists: true, Columns: []catalog.Column{
		{Name: "Order Id", Type: "bigint"}, {Name: "region", Type: "text"},
		{Name: "amount", Type: "numeric(12,2)"}, {Name: "notes", Type: "character varying(40)", NotNull: true},
	}}
	tbl := goldenTable(DeleteHard)
	tbl.Columns[3] = Column{Name: "notes", Source: "notes", Type: "character varying(40)"}
	event := func(names ...string) []debezium.Column {
		types := map[string]string{"Order Id": "bigint", "region": "text", "amount": "numeric(12,2)", "notes": "text", "remark": "text", "score": "integer"}
		var cols []debezium.Column
		for _, n := range names {
			cols = append(cols, debezium.Column{Name: n, Type: types[n]})
		}
		return cols
	}
	tests := []struct {
		name           string
		cols           []debezium.Column
		added, missing string
		rename         bool
	}{
		{"same", event("Order Id", "region", "amount", "notes"), "", "", false},
		{"added", event("Order Id", "region", "amount", "notes", "score"), "score", "", false},
		{"dropped", event("Order Id", "region", "amount"), "", "notes", false},
		{"renamed", event("Order Id", "region", "amount", "remark"), "remark", "notes", true},
		{"renamed to another type", event("Order Id", "region", "amount", "score"), "score", "notes", false},
		{"key missing is no drift here", event("region", "amount", "notes"), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diffSchema(cfg, cat, tbl, tt.cols)
			added, missing := strings.Join(columnNames(d.added), ","), strings.Join(columnNames(d.missing), ",")
			if added != tt.added || missing != tt.missing {
				t.Errorf("added %q missing %q, want %q and %q", added, missing, tt.added, tt.missing)
			}
			if got, want := matches(&cfg, tbl, tt.cols), tt.name == "same"; got != want {
				t.Errorf("matches = %v, want %v (only the unchanged schema skips the catalog)", got, want)
			}
			if _, _, rename := d.rename(); rename != tt.rename {
				t.Errorf("rename %v, want %v", rename, tt.rename)
			}
			if v := withoutColumns(tbl, d.missing); len(v.Columns) != len(tbl.Columns)-len(d.missing) || v.Validate() != nil {
				t.Errorf("view without %q: %d columns, %v", missing, len(v.Columns), v.Validate())
			}
		})
	}
	if got := notNull(cat, []Column{{Name: "notes"}, {Name: "amount"}}); strings.Join(got, ",") != "notes" {
		t.Errorf("notNull = %v, want [notes]", got)
	}
}

func TestSchemaDriftErrorNamesColumnsAndFix(t *testing.T) {
	err := error(&SchemaDriftError{Table: "public.items", New: []string{"remark"}, Missing: []string{"note"}, Rename: true})
	msg := err.Error()
	for _, want := range []string{"public.items", "new fields remark", "no longer sent note", "likely a rename of note to remark", "schema.evolve is strict", "add_columns or follow", "offset stays"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	var drift *SchemaDriftError
	if !errors.As(err, &drift) {
		t.Error("not a *SchemaDriftError")
	}
}
