package upstream

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/sink/catalog"
)

// withSettings is a recorded connector with settings changed (an empty
// value removes the setting, so Debezium's default applies).
func withSettings(t *testing.T, name string, settings map[string]string) Connector {
	t.Helper()
	c := connectors(t, name)[0]
	c.Config = maps.Clone(c.Config)
	for k, v := range settings {
		if v == "" {
			delete(c.Config, k)
		} else {
			c.Config[k] = v
		}
	}
	return c
}

// TestCheckRules runs one table against one connector per case and lists
// the settings found (connector key, column), or nothing.
func TestCheckRules(t *testing.T) {
	table := func(extra string) string {
		return "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n  - topic: shop.public.prices\n    target: public.prices\n" + extra
	}
	col := func(name, typ string) catalog.Column { return catalog.Column{Name: name, Type: typ} }
	tests := []struct {
		name     string
		config   string
		settings map[string]string
		columns  []catalog.Column
		want     []string // "severity setting column"
	}{
		{name: "lossless", config: table(""), columns: []catalog.Column{col("amount", "numeric"), col("span", "interval")}},
		{name: "numeric arrays and every numeric typmod", config: table(""), settings: map[string]string{"decimal.handling.mode": ""},
			columns: []catalog.Column{col("a", "numeric[]"), col("b", "numeric(5,0)"), col("c", "integer")},
			want:    []string{"error decimal.handling.mode=precise (Debezium's default) a", "error decimal.handling.mode=precise (Debezium's default) b"}},
		{name: "money under double only", config: table(""), settings: map[string]string{"decimal.handling.mode": "double"},
			columns: []catalog.Column{col("m", "money"), col("r", "double precision")},
			want:    []string{"error decimal.handling.mode=double m"}},
		{name: "interval typmods", config: table(""), settings: map[string]string{"interval.handling.mode": "numeric"},
			columns: []catalog.Column{col("y", "interval year to month"), col("s", "interval(3)[]")},
			want:    []string{"error interval.handling.mode=numeric y", "error interval.handling.mode=numeric s"}},
		{name: "connect time precision: milliseconds and zoned types are kept", config: table(""), settings: map[string]string{"time.precision.mode": "connect"},
			columns: []catalog.Column{col("t6", "time without time zone"), col("t3", "timestamp(3) without time zone"), col("t4", "timestamp(4) without time zone"),
				col("tz", "timestamp with time zone"), col("ttz", "time with time zone"), col("d", "date")},
			want: []string{"error time.precision.mode=connect t6", "error time.precision.mode=connect t4"}},
		{name: "renamed, excluded by pgsink, generated and version columns", config: table("    columns: { rename: { price: amount }, exclude: [cost] }\n"),
			settings: map[string]string{"decimal.handling.mode": "precise", "column.exclude.list": `public\.prices\.price`},
			columns:  []catalog.Column{{Name: "amount", Type: "numeric"}, col("cost", "numeric"), {Name: "total", Type: "numeric", Generated: true}, col("_pgsink_lsn", "numeric")},
			want:     []string{"warning column.exclude.list=public\\.prices\\.price amount"}},
		{name: "include list", config: table(""), settings: map[string]string{"column.include.list": `public.prices.(id|amount)`},
			columns: []catalog.Column{{Name: "id", Type: "integer", NotNull: true}, {Name: "name", Type: "text", NotNull: true, Default: "''::text"}, {Name: "note", Type: "text", NotNull: true}},
			want:    []string{"warning column.include.list=public.prices.(id|amount) name", "error column.include.list=public.prices.(id|amount) note"}},
		{name: "masks", config: table(""), settings: map[string]string{"column.mask.with.4.chars": "public.prices.card", "column.mask.hash.SHA-256.with.salt.x1": "public.prices.mail"},
			columns: []catalog.Column{col("card", "text"), col("mail", "text")},
			want:    []string{"error column.mask.with.4.chars=public.prices.card card", "error column.mask.hash.SHA-256.with.salt.x1=public.prices.mail mail"}},
		{name: "skipped deletes and truncates with deletes ignore and truncate ignore", config: table("    deletes: ignore\n    truncate: ignore\n"),
			settings: map[string]string{"skipped.operations": "d,t"}},
		{name: "skipped updates and inserts", config: table(""), settings: map[string]string{"skipped.operations": "c,u"},
			want: []string{"error skipped.operations=c,u ", "error skipped.operations=c,u "}},
		{name: "schemaless with schema.create", config: table("    schema: { create: true }\n"), settings: map[string]string{"value.converter.schemas.enable": "false"},
			want: []string{"error value.converter.schemas.enable=false "}},
		{name: "schemaless with schema.evolve", config: table("    schema: { evolve: add_columns }\n"), settings: map[string]string{"key.converter.schemas.enable": "false"},
			want: []string{"warning key.converter.schemas.enable=false "}},
		{name: "a table the include list does not capture", config: table(""), settings: map[string]string{"table.include.list": `public\.other`},
			want: []string{"warning  "}},
		{name: "a schema excluded", config: table(""), settings: map[string]string{"table.include.list": "", "schema.exclude.list": "public"},
			want: []string{"warning  "}},
		{name: "an include list of expressions, matched from the topic", config: table(""), settings: map[string]string{"table.include.list": `PUBLIC\.pri.*`, "decimal.handling.mode": "double"},
			columns: []catalog.Column{col("amount", "numeric")}, want: []string{"error decimal.handling.mode=double amount"}},
		{name: "another topic.prefix", config: table(""), settings: map[string]string{"topic.prefix": "other"}, want: []string{"warning  "}},
		{name: "the class by its alias", config: table(""), settings: map[string]string{"connector.class": "PostgresConnector", "skipped.operations": "t"},
			want: []string{"error skipped.operations=t "}},
		{name: "a partial snapshot of a reconciled table", config: table(""),
			settings: map[string]string{"snapshot.select.statement.overrides": "public.other, public.prices",
				"snapshot.select.statement.overrides.public.prices": "SELECT * FROM public.prices WHERE id > 10"},
			want: []string{"error snapshot.select.statement.overrides=public.other, public.prices "}},
		{name: "a partial snapshot of a table that does not reconcile", config: table("    snapshot: { reconcile: false }\n"),
			settings: map[string]string{"snapshot.select.statement.overrides": "public.prices"}},
		{name: "a partial snapshot of another table", config: table(""),
			settings: map[string]string{"snapshot.select.statement.overrides": "public.other"}},
		{name: "not a PostgreSQL connector", config: table(""), settings: map[string]string{"connector.class": "io.debezium.connector.mysql.MySqlConnector"}, want: []string{"warning  "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseConfig(t, tt.config)
			conn := withSettings(t, "lossless", tt.settings)
			target := &catalog.Table{Schema: "public", Name: "prices", Exists: true, Columns: tt.columns}
			var got []string
			for _, f := range Check(cfg, []Connector{conn}, map[string]*catalog.Table{"tables[0]": target}) {
				got = append(got, f.Severity.String()+" "+f.Setting+" "+f.Column)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestOutboxRouterDefaultTopic: an Event Router without
// route.topic.replacement writes outbox.event.<aggregatetype>.
func TestOutboxRouterDefaultTopic(t *testing.T) {
	cfg := parseConfig(t, "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n"+
		"  - topic: outbox.event.Order\n    format: outbox\n    target: public.orders\n    key: [id]\n")
	conn := withSettings(t, "outbox", map[string]string{"transforms.outbox.route.topic.replacement": ""})
	got := Check(cfg, []Connector{conn}, nil)
	if len(got) != 1 || got[0].Connector != "outbox" || !strings.Contains(got[0].Consequence, "outbox events are inserts") {
		t.Errorf("want the skipped inserts of the matched connector, got %+v", got)
	}
}
