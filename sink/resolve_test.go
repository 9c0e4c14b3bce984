package sink

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
)

func TestResolve(t *testing.T) {
	cat := &catalog.Table{Schema: "public", Name: "customers", Exists: true, PrimaryKey: []string{"id"},
		Columns: []catalog.Column{
			{Name: "id", Type: "bigint"}, {Name: "name", Type: "text"}, {Name: "fullname", Type: "text"},
			{Name: "secret", Type: "text"}, {Name: "search", Type: "tsvector", Generated: true},
			{Name: "deleted", Type: "boolean"}, {Name: "_pgsink_commit_lsn", Type: "bigint"}, {Name: "_pgsink_lsn", Type: "bigint"},
		}}
	cfg := config.Table{Path: "tables[0]", Format: config.FormatTable, Deletes: config.DeletesSoft, Truncate: config.TruncateApply,
		SoftDelete: config.SoftDelete{Column: "deleted"},
		Columns:    config.Columns{Exclude: []string{"secret"}, Rename: map[string]string{"fullname": "name"}},
		Version:    config.Version{Guard: true, CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn"}}
	got, err := Resolve(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	// "name" takes the event's fullname; the event's own name field is not
	// written, nor is the target's fullname column (renamed away), the
	// excluded secret, the generated column or pgsink's bookkeeping.
	want := []Column{{Name: "id", Source: "id", Type: "bigint"}, {Name: "name", Source: "fullname", Type: "text"}}
	if !reflect.DeepEqual(got.Columns, want) || !reflect.DeepEqual(got.Key, []string{"id"}) || got.Deletes != DeleteSoft || !got.Truncates {
		t.Fatalf("Resolve = %+v\nwant columns %+v, key [id], soft deletes, truncates", got, want)
	}

	for name, mutate := range map[string]func(*config.Table, *catalog.Table){
		"missing table": func(_ *config.Table, c *catalog.Table) { c.Exists = false },
		"outbox":        func(t *config.Table, _ *catalog.Table) { t.Format = config.FormatOutbox },
		"guard off":     func(t *config.Table, _ *catalog.Table) { t.Version.Guard = false },
		"no key":        func(_ *config.Table, c *catalog.Table) { c.PrimaryKey = nil },
	} {
		t.Run(name, func(t *testing.T) {
			c2, cat2 := cfg, *cat
			mutate(&c2, &cat2)
			if _, err := Resolve(c2, &cat2); err == nil || !strings.Contains(err.Error(), "tables[0]") {
				t.Fatalf("Resolve with %s: %v, want an error naming tables[0]", name, err)
			}
		})
	}
}
