package config

import (
	"errors"
	"strings"
	"testing"
)

// TestTemplateProblems checks that each bad template is an error at the
// line of its target.
func TestTemplateProblems(t *testing.T) {
	tests := []struct {
		name  string
		table string // the tables list
		want  string // "file:line: path: message" prefix
	}{
		{name: "missing capture group",
			table: "  - topic_pattern: 'app\\.(?P<schema>[^.]+)\\.(?P<tbl>.+)'\n    target: '${schema}.${table}'\n",
			want:  `test.yaml:8: tables[0].target: ${table} names no capture group of topic_pattern "app\\.(?P<schema>[^.]+)\\.(?P<tbl>.+)" (its groups: schema, tbl)`},
		{name: "capture group without pattern",
			table: "  - topic: app.public.t\n    target: 'public.${table}'\n",
			want:  "test.yaml:8: tables[0].target: ${table} names a capture group, but only a topic_pattern has capture groups"},
		{name: "no schema",
			table: "  - topic: app.public.t\n    target: '${source.table}'\n",
			want:  `test.yaml:8: tables[0].target: must be schema-qualified with exactly one literal dot (schema.table); got "${source.table}"`},
		{name: "two dots",
			table: "  - topic: app.public.t\n    target: 'a.b.${source.table}'\n",
			want:  "test.yaml:8: tables[0].target: must be schema-qualified with exactly one literal dot"},
		{name: "quote in literal",
			table: "  - topic: app.public.t\n    target: 'public.\"x${source.table}'\n",
			want:  `test.yaml:8: tables[0].target: has "\"" outside a ${…} variable`},
		{name: "unknown source field",
			table: "  - topic: app.public.t\n    target: 'public.${source.db}'\n",
			want:  "test.yaml:8: tables[0].target: ${source.db} is not a template variable"},
		{name: "unterminated",
			table: "  - topic: app.public.t\n    target: 'public.${source.table'\n",
			want:  "test.yaml:8: tables[0].target: has an unterminated ${"},
		{name: "two equal patterns",
			table: "  - topic_pattern: 'app\\..*'\n    target: 'public.${topic}'\n  - topic_pattern: 'app\\..*'\n    target: 'x.${topic}'\n",
			want:  `test.yaml:9: tables[1].topic_pattern: pattern "app\\..*" is already claimed by tables[0] (line 7)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := parse(t, minimalHeader+"tables:\n"+tt.table)
			if len(problems) != 1 || !strings.HasPrefix(problems[0].String(), tt.want) {
				t.Fatalf("want one problem starting %q, got:\n%v", tt.want, problems)
			}
		})
	}
}

const templatedTables = `tables:
  - topic_pattern: 'app\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
    deletes: soft
  - topic: app.public.orders
    target: public.order_override
  - topic_pattern: 'app\.audit\..*'
    target: audit.all_events
  - topic: merged
    target: 'Merged_${source.schema}.${source.table}'
  - topic: outbox
    format: outbox
    key: [id]
    target: 'events.${header.aggregatetype}'
  - topic_pattern: 'other\.(?P<table>.+)'
    target: 'public.${table}'
  - topic_pattern: 'other\.(?P<t>x.*)'
    target: 'x.${t}'
  - topic: fixed
    target: 'public.${topic}'
  - topic: wants
    target: public.fixed
`

func TestRouterTemplates(t *testing.T) {
	cfg, problems := parse(t, minimalHeader+templatedTables)
	if problems != nil {
		t.Fatalf("want a valid configuration, got:\n%v", problems)
	}
	r := cfg.Router()
	tests := []struct {
		topic     string
		wantPath  string
		wantTable TableName
		wantErr   string
	}{
		{topic: "app.public.customers", wantPath: "tables[0]", wantTable: TableName{"public", "customers"}},
		{topic: "app.Sales.Order", wantPath: "tables[0]", wantTable: TableName{"Sales", "Order"}},
		// an explicit entry wins over the template
		{topic: "app.public.orders", wantPath: "tables[1]", wantTable: TableName{"public", "order_override"}},
		// a fixed-target pattern wins over a template
		{topic: "app.audit.login", wantPath: "tables[2]", wantTable: TableName{"audit", "all_events"}},
		// a value with a dot is ambiguous
		{topic: "app.public.a.b", wantErr: `tables[0]: target "${schema}.${table}" for topic "app.public.a.b": ${table} is "a.b", whose dot makes the schema.table name ambiguous`},
		{topic: "app.public." + strings.Repeat("x", 64), wantErr: "longer than 63 bytes"},
		{topic: "other.xy", wantErr: `topic "other.xy" matches the topic_pattern of tables[5] and tables[6]`},
		{topic: "fixed", wantErr: `topic "fixed": target public.fixed is derived by tables[7] but already belongs to tables[8]`},
	}
	for _, tt := range tests {
		got, err := r.Resolve(tt.topic)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%q) = %v, %v; want an error containing %q", tt.topic, got, err, tt.wantErr)
			}
		case err != nil || got.Path != tt.wantPath || got.Target.TableName != tt.wantTable:
			t.Errorf("Resolve(%q) = %+v, %v; want %s into %s", tt.topic, got, err, tt.wantPath, tt.wantTable)
		case tt.wantPath == "tables[0]" && got.Deletes != DeletesSoft:
			t.Errorf("Resolve(%q): the template's options do not apply to the derived table (deletes %s)", tt.topic, got.Deletes)
		}
	}
	// The derived table is cached: the same pointer comes back.
	a, _ := r.Resolve("app.public.customers")
	b, _ := r.Resolve("app.public.customers")
	if a != b {
		t.Errorf("Resolve is not cached per topic")
	}
}

func TestRouterDerivesAnExplicitTargetAmbiguous(t *testing.T) {
	cfg, problems := parse(t, minimalHeader+`tables:
  - topic_pattern: 'app\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
  - topic: other
    target: public.orders
`)
	if problems != nil {
		t.Fatal(problems)
	}
	_, err := cfg.Router().Resolve("app.public.orders")
	var amb *AmbiguousTargetError
	if !errors.As(err, &amb) || amb.Tables[0] != "tables[1]" || amb.Tables[1] != "tables[0]" {
		t.Fatalf("want an AmbiguousTargetError: public.orders belongs to tables[1], derived by tables[0]; got %v", err)
	}
}

func TestRouterForRecord(t *testing.T) {
	cfg, problems := parse(t, minimalHeader+templatedTables)
	if problems != nil {
		t.Fatal(problems)
	}
	r := cfg.Router()
	merged, err := r.Resolve("merged")
	if err != nil || !merged.Target.TableName.IsZero() {
		t.Fatalf("Resolve(merged) = %+v, %v; want the rule with its target still to derive", merged, err)
	}
	got, err := r.ForRecord(merged, "merged", RecordValues{SourceSchema: "inventory", SourceTable: "Items"})
	if err != nil || got.Target.TableName != (TableName{"merged_inventory", "Items"}) {
		t.Errorf("ForRecord = %+v, %v; want merged_inventory.\"Items\" (literal folded, value kept)", got, err)
	}
	if _, err := r.ForRecord(merged, "merged", RecordValues{SourceSchema: "inventory"}); err == nil || !strings.Contains(err.Error(), "${source.table} is empty in the record") {
		t.Errorf("ForRecord without source.table: %v; want an error naming ${source.table}", err)
	}
	outbox, err := r.Resolve("outbox")
	if err != nil {
		t.Fatal(err)
	}
	header := func(name string) (string, bool) {
		if name == "aggregatetype" {
			return "Order", true
		}
		return "", false
	}
	got, err = r.ForRecord(outbox, "outbox", RecordValues{Header: header})
	if err != nil || got.Target.TableName != (TableName{"events", "Order"}) {
		t.Errorf("ForRecord(outbox) = %+v, %v; want events.\"Order\"", got, err)
	}
	if _, err := r.ForRecord(outbox, "outbox", RecordValues{}); err == nil || !strings.Contains(err.Error(), `the record has no header "aggregatetype"`) {
		t.Errorf("ForRecord without the header: %v; want an error naming it", err)
	}
}
