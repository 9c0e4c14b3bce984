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
	avro := func(extra string) string {
		return "schema_registry: { url: http://registry:8081 }\n" + table("    encoding: avro\n"+extra)
	}
	// apicurio is Apicurio's AvroConverter on both sides as
	// docs/configuration.md asks for it, with changes.
	apicurio := func(changes map[string]string) map[string]string {
		s := map[string]string{}
		for _, side := range []string{"key", "value"} {
			p := side + ".converter"
			s[p] = apicurioConverter
			s[p+".apicurio.registry.headers.enabled"] = "false"
			s[p+".apicurio.registry.as-confluent"] = "true"
			s[p+".apicurio.registry.use-id"] = "contentId"
		}
		maps.Copy(s, changes)
		return s
	}
	kind := func(name, typ, kind string) catalog.Column { return catalog.Column{Name: name, Type: typ, Kind: kind} }
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
			want: []string{"error decimal.handling.mode=precise (Debezium's default) a", "warning  a",
				"error decimal.handling.mode=precise (Debezium's default) b"}},
		{name: "money under double only", config: table(""), settings: map[string]string{"decimal.handling.mode": "double"},
			columns: []catalog.Column{col("m", "money"), col("r", "double precision")},
			want:    []string{"error decimal.handling.mode=double m"}},
		{name: "interval typmods", config: table(""), settings: map[string]string{"interval.handling.mode": "numeric"},
			columns: []catalog.Column{col("y", "interval year to month"), col("s", "interval(3)")},
			want:    []string{"error interval.handling.mode=numeric y", "error interval.handling.mode=numeric s"}},
		{name: "connect time precision: milliseconds and zoned types are kept", config: table(""), settings: map[string]string{"time.precision.mode": "connect"},
			columns: []catalog.Column{col("t6", "time without time zone"), col("t3", "timestamp(3) without time zone"), col("t4", "timestamp(4) without time zone"),
				col("tz", "timestamp with time zone"), col("ttz", "time with time zone"), col("d", "date")},
			want: []string{"error time.precision.mode=connect t6", "error time.precision.mode=connect t4",
				"warning  ttz", "warning snapshot.mode=initial d"}},
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
		{name: "types Debezium 3.6.1 leaves out or sends as null", config: table(""), columns: []catalog.Column{
			kind("ln", "line", "b"), kind("pg", "polygon[]", "b"), kind("mr", "int4multirange", "m"), kind("mrs", "datemultirange[]", "m"),
			kind("dom", `"My Types".posint[]`, "d"), kind("vb", "bit varying(5)[]", "b"), kind("m", "money[]", "b"), kind("n", "name[]", "b"),
			kind("x", "xml[]", "b"), kind("iv", "interval year to month[]", "b"), kind("pt", "point[]", "b"),
			kind("b8", "bit(8)[]", "b"), kind("b1", "bit(1)[]", "b"), kind("en", "mood[]", "e"), kind("lt", "public.ltree[]", "b"),
			kind("ts", "tsvector[]", "b"), kind("nm", "name", "b"),
			// What Debezium sends: the scalars of those arrays, domains, enums and ranges.
			kind("p", "point", "b"), kind("d1", "posint", "d"), kind("e1", "mood", "e"), kind("bits", "bit(8)", "b"), kind("vbs", "bit varying", "b"),
			kind("l1", "ltree", "b"), kind("t1", "tsvector", "b"), kind("mo", "money", "b"), kind("r", "int4range[]", "r"), kind("ns", "numeric(10,2)", "b"),
			// Left out, so the settings and dimensions of the type are not reported too.
			{Name: "ivs", Type: "interval[]", Kind: "b", Dims: 2},
			{Name: "req", Type: "circle", Kind: "b", NotNull: true},
		}, settings: map[string]string{"interval.handling.mode": "numeric", "decimal.handling.mode": "double"},
			want: []string{"error  ln", "error  pg", "error  mr", "error  mrs", "error  dom", "error  vb", "error  m", "error  n", "error  x",
				"error  iv", "error  pt", "error  b8", "error  b1", "error  en", "error  lt", "error  ts", "error  nm",
				"error decimal.handling.mode=double mo", "error decimal.handling.mode=double ns", "error  ivs", "error  req"}},
		{name: "values Debezium alters, whatever its settings", config: table(""), columns: []catalog.Column{
			col("tz", "time(3) with time zone"), col("tzs", "time with time zone[]"), col("t", "time without time zone[]"),
			col("t4", "time(4) without time zone[]"), col("t3", "time(3) without time zone[]"), col("n", "numeric[]"), col("n2", "numeric(10,2)[]"),
			col("ds", "date[]"), col("tss", "timestamp(3) without time zone[]"), col("tzz", "timestamp with time zone[]"), col("d", "date"),
			col("ok", "timestamp with time zone"), col("f", "double precision[]")},
			want: []string{"warning  tz", "warning  tzs", "warning  t", "warning  t4", "warning  n", "warning  n2",
				"warning  ds", "warning  tss", "warning  tzz", "warning snapshot.mode=initial d"}},
		{name: "date without a snapshot", config: table(""), settings: map[string]string{"snapshot.mode": "no_data"}, columns: []catalog.Column{col("d", "date")}},
		{name: "date under configuration_based without data", config: table(""), settings: map[string]string{"snapshot.mode": "configuration_based"},
			columns: []catalog.Column{col("d", "date")}},
		{name: "date under configuration_based with data", config: table(""),
			settings: map[string]string{"snapshot.mode": "configuration_based", "snapshot.mode.configuration.based.snapshot.data": "true"},
			columns:  []catalog.Column{col("d", "date")}, want: []string{"warning snapshot.mode=configuration_based d"}},
		{name: "date under Debezium's default snapshot.mode", config: table(""), settings: map[string]string{"snapshot.mode": ""},
			columns: []catalog.Column{col("d", "date")}, want: []string{"warning snapshot.mode=initial (Debezium's default) d"}},
		{name: "a partial snapshot of a reconciled table", config: table(""), settings: map[string]string{"snapshot.select.statement.overrides": "public.other, public.prices"},
			want: []string{"error snapshot.select.statement.overrides=public.other, public.prices "}},
		{name: "a partial snapshot of a table that does not reconcile", config: table("    snapshot: { reconcile: false }\n"),
			settings: map[string]string{"snapshot.select.statement.overrides": "public.prices"}},
		{name: "a partial snapshot of another table", config: table(""), settings: map[string]string{"snapshot.select.statement.overrides": "public.other"}},
		{name: "encoding: avro read from a JsonConverter", config: avro(""),
			want: []string{"error key.converter=org.apache.kafka.connect.json.JsonConverter ", "error value.converter=org.apache.kafka.connect.json.JsonConverter "}},
		{name: "encoding: json read from Apicurio's AvroConverter", config: table(""), settings: apicurio(nil),
			want: []string{"error key.converter=" + apicurioConverter + " ", "error value.converter=" + apicurioConverter + " "}},
		{name: "encoding: avro from Apicurio's AvroConverter in the Confluent wire format, schemas.enable left over", config: avro("    schema: { create: true }\n"),
			settings: apicurio(map[string]string{"value.converter.schemas.enable": "false", "key.converter.schemas.enable": "false"})},
		{name: "encoding: avro from Confluent's AvroConverter", config: avro(""),
			settings: map[string]string{"key.converter": "io.confluent.connect.avro.AvroConverter", "value.converter": "io.confluent.connect.avro.AvroConverter"}},
		{name: "Apicurio's AvroConverter with its defaults: ids in headers, global ids", config: avro(""),
			settings: apicurio(map[string]string{"value.converter.apicurio.registry.headers.enabled": "", "value.converter.apicurio.registry.as-confluent": "",
				"value.converter.apicurio.registry.use-id": "", "key.converter.apicurio.registry.use-id": "globalId"}),
			want: []string{"error key.converter.apicurio.registry.use-id=globalId ",
				"error value.converter.apicurio.registry.headers.enabled=true (the converter's default) ",
				"error value.converter.apicurio.registry.as-confluent=false (the converter's default) ",
				"error value.converter.apicurio.registry.use-id=globalId (the converter's default) "}},
		{name: "Debezium's context headers on by default", config: table(""), settings: map[string]string{"extended.headers.enabled": ""},
			want: []string{"info extended.headers.enabled=true (Debezium's default) "}},
		{name: "Debezium's context headers on", config: table(""), settings: map[string]string{"extended.headers.enabled": "TRUE"},
			want: []string{"info extended.headers.enabled=TRUE "}},
		{name: "Debezium's context headers on, a template reads one", settings: map[string]string{"extended.headers.enabled": ""},
			config: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n  - topic: shop.public.prices\n" +
				"    target: public.${header.__debezium.context.connectorName}\n"},
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

// TestLeftOutNotNull: a left-out column that is NOT NULL without a default
// refuses every new row, which the finding says; with a default it does not.
func TestLeftOutNotNull(t *testing.T) {
	cfg := parseConfig(t, "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n  - topic: shop.public.prices\n    target: public.prices\n")
	target := &catalog.Table{Schema: "public", Name: "prices", Exists: true, Columns: []catalog.Column{
		{Name: "req", Type: "box", Kind: "b", NotNull: true},
		{Name: "dflt", Type: "box", Kind: "b", NotNull: true, Default: "'(0,0),(1,1)'::box"},
	}}
	got := Check(cfg, connectors(t, "lossless"), map[string]*catalog.Table{"tables[0]": target})
	if len(got) != 2 {
		t.Fatalf("want one finding per column, got %+v", got)
	}
	const refused = "every new row is refused (dead letters)"
	if !strings.Contains(got[0].Consequence, refused) || strings.Contains(got[1].Consequence, refused) {
		t.Errorf("want %q for %s only:\n%s\n%s", refused, got[0].Column, got[0].Consequence, got[1].Consequence)
	}
}
