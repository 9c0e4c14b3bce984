package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidateTemplatesOffline(t *testing.T) {
	path := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:9092, group.id: g }
postgres: { url: postgres://u@127.0.0.1:1/db }
tables:
  - topic_pattern: 'app\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
  - topic: app.public.orders
    target: public.order_override
  - topic_pattern: 'app\.(?P<schema>sales)\.(?P<table>.+)'
    target: 'sales_copy.${table}'
  - topic: merged
    target: 'public.${source.table}'
`)
	tests := []struct {
		name     string
		topics   string
		wantCode int
		want     []string
	}{
		{name: "resolved", topics: "app.public.customers,app.Inv.Item,app.public.orders,merged,nope", wantCode: 0, want: []string{
			path + `:5: tables[0]: topic app.Inv.Item → "Inv"."Item"`,
			path + ":5: tables[0]: topic app.public.customers → public.customers",
			path + ":7: tables[1]: topic app.public.orders → public.order_override",
			path + ":11: tables[3]: topic merged → public.${source.table}, decided per record",
			path + ": topic nope: no table claims it",
			"valid, 4 table(s)",
		}},
		{name: "ambiguous name", topics: "app.public.a.b", wantCode: 1, want: []string{
			path + `:5: tables[0].target: topic "app.public.a.b": ${table} is "a.b", whose dot makes the schema.table name ambiguous`,
		}},
		{name: "two rules", topics: "app.sales.x", wantCode: 1, want: []string{
			path + `:8: tables[2].topic_pattern: topic "app.sales.x" also matches the topic_pattern of tables[0] (line 4), with equal precedence`,
		}},
		{name: "too long", topics: "app.public." + strings.Repeat("n", 64), wantCode: 1, want: []string{
			path + ":5: tables[0].target: topic \"app.public." + strings.Repeat("n", 64) + "\": yields \"" + strings.Repeat("n", 64) + "\", longer than 63 bytes",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", "--config", path, "--offline", "--topics", tt.topics}, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}
