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

func TestResolveOutbox(t *testing.T) {
	cat := &catalog.Table{Schema: "public", Name: "orders", Exists: true, PrimaryKey: []string{"order_id"},
		Columns: []catalog.Column{
			{Name: "order_id", Type: "text"}, {Name: "status", Type: "text"}, {Name: "amount", Type: "numeric(12,2)"},
			{Name: "search", Type: "tsvector", Generated: true},
			{Name: "_pgsink_commit_lsn", Type: "bigint"}, {Name: "_pgsink_lsn", Type: "bigint"},
		}}
	cfg := config.Table{Path: "tables[1]", Format: config.FormatOutbox, Key: []string{"order_id"}, EventTypes: []string{"OrderPaid"},
		Payload: map[string]config.JSONPath{"status": path(t, "$.status"), "order_id": path(t, "$.id")},
		Version: config.Version{Guard: true, CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn"}}
	got, err := Resolve(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got.Columns {
		names = append(names, c.Name+"="+c.Path.Source+":"+c.Type)
	}
	if want := []string{"order_id=$.id:text", "status=$.status:text"}; !reflect.DeepEqual(names, want) || got.Outbox == nil ||
		!reflect.DeepEqual(got.Outbox.EventTypes, []string{"OrderPaid"}) {
		t.Fatalf("Resolve(outbox) columns %v, outbox %+v; want %v in table order, event types [OrderPaid]", names, got.Outbox, want)
	}

	// Without a payload mapping every writable column but the version
	// columns takes the payload member of its name.
	cfg.Payload = nil
	got, err = Resolve(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, c := range got.Columns {
		names = append(names, c.Name+"="+c.Path.Source)
	}
	if want := []string{"order_id=$.order_id", "status=$.status", "amount=$.amount"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Resolve(outbox, no payload) columns %v, want %v", names, want)
	}

	cfg.Payload = map[string]config.JSONPath{"order_id": path(t, "$.id"), "nope": path(t, "$.x")}
	if _, err := Resolve(cfg, cat); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Resolve with a payload column the table lacks: %v, want an error naming it", err)
	}
}
