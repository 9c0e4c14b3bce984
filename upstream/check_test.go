package upstream

import (
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
)

// checkConfig is the pgsink configuration the fixture's connectors are
// checked against: the captured table, the routed topics, the outbox topic,
// and a topic no connector produces.
const checkConfig = `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic: shop.public.prices
    target: public.prices
  - topic_pattern: 'shop\.routed\..*'
    target: public.prices_routed
  - topic: shop.outbox.event.Order
    format: outbox
    target: public.orders
    key: [id]
  - topic: elsewhere.public.prices
    target: public.elsewhere
`

// pricesTarget is public.prices as the catalog describes it: a column of
// each type a setting can lose.
func pricesTarget() *catalog.Table {
	return &catalog.Table{Schema: "public", Name: "prices", Exists: true, Columns: []catalog.Column{
		{Name: "id", Type: "integer", TypeOID: pgtype.Int4OID, NotNull: true},
		{Name: "amount", Type: "numeric(12,2)", TypeOID: pgtype.NumericOID},
		{Name: "span", Type: "interval", TypeOID: pgtype.IntervalOID},
		{Name: "at", Type: "timestamp without time zone", TypeOID: pgtype.TimestampOID},
		{Name: "label", Type: "text", TypeOID: pgtype.TextOID},
		{Name: "note", Type: "text", TypeOID: pgtype.TextOID, NotNull: true},
		{Name: "memo", Type: "text", TypeOID: pgtype.TextOID},
		{Name: "grid", Type: "integer[]", TypeOID: pgtype.Int4ArrayOID, Dims: 2},
		{Name: "_pgsink_commit_lsn", Type: "bigint", TypeOID: pgtype.Int8OID},
		{Name: "_pgsink_lsn", Type: "bigint", TypeOID: pgtype.Int8OID},
	}}
}

func parseConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("pgsink.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the test's configuration must be valid:\n%v", err)
	}
	return cfg
}

func connectors(t *testing.T, names ...string) []Connector {
	t.Helper()
	var out []Connector
	for _, c := range loadFixture(t) {
		if slices.Contains(names, c.Name) {
			out = append(out, c)
		}
	}
	if len(out) != len(names) {
		t.Fatalf("the fixture lacks some of %v", names)
	}
	return out
}

func messages(findings []Finding) []string {
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = f.Path + ": " + f.Message()
	}
	return out
}

func TestCheckRecordedConnectors(t *testing.T) {
	const (
		unmatched = "warning: no Debezium PostgreSQL connector at debezium.connect_url produces this table's topics " +
			"(matched by topic.prefix, table.include.list and topic routing), so no connector setting is checked for it; " +
			"fix: check the table's topics, or point debezium.connect_url at the Connect cluster that produces them"
		multiDim = `column "grid" (integer[], declared with 2 dimensions): Debezium does not carry multi-dimensional arrays: ` +
			`every such value arrives as an array of nulls; fix: keep the column one-dimensional at the source, or carry the values in a jsonb or text column`
		truncates = `skipped.operations=t (Debezium's default): a TRUNCATE at the source never reaches pgsink (this table has truncate: apply): ` +
			`the target keeps every row; fix: set skipped.operations=none on the connector (Debezium skips truncates by default), or truncate: ignore on this table`
		intervals = `interval.handling.mode=numeric (Debezium's default): column "span" (interval): values arrive as microseconds, ` +
			`with months and days folded into them ('1 year 2 mons 3 days 04:05:06.789' is written as 10303:05:06.789); fix: set interval.handling.mode=string on the connector`
	)
	tests := []struct {
		name       string
		connectors []string
		want       []string
	}{
		{name: "Debezium's defaults", connectors: []string{"precise"}, want: []string{
			`tables[0]: error: connector "precise" ` + truncates,
			`tables[0]: error: connector "precise" decimal.handling.mode=precise (Debezium's default): column "amount" (numeric(12,2)): ` +
				`NaN, which every numeric column accepts, arrives as null and is written as NULL; fix: set decimal.handling.mode=string on the connector`,
			`tables[0]: error: connector "precise" ` + intervals,
			`tables[0]: error: connector "precise": ` + multiDim,
			"tables[1]: " + unmatched,
			"tables[2]: " + unmatched,
			"tables[3]: " + unmatched,
		}},
		{name: "lossless settings: only what no setting fixes", connectors: []string{"lossless", "routed", "outbox"}, want: []string{
			`tables[0]: error: connector "lossless": ` + multiDim,
			"tables[2]: error: connector \"outbox\" skipped.operations=c: outbox events are inserts, and the connector drops every one; " +
				`fix: remove "c" from skipped.operations on the connector (skipped.operations=none skips nothing)`,
			"tables[3]: " + unmatched,
			// Recorded from one Connect cluster, where both ran at once.
			`tables[0]: warning: connector "lossless" topic.prefix=shop: connectors "lossless", "routed" share topic.prefix "shop", ` +
				`which Debezium requires unique across connectors: their changes mix in the same topics and their metrics share one name, ` +
				`so one connector's lag and errors are not seen; fix: give each connector its own topic.prefix (and route each prefix's topics in pgsink.yaml)`,
		}},
		{name: "a partial snapshot: the table's reconcile named", connectors: []string{"partial"}, want: []string{
			`tables[0].snapshot.reconcile: error: connector "partial" snapshot.select.statement.overrides=public.prices: ` +
				`the connector's snapshot of public.prices reads only the rows its SELECT picks, which pgsink cannot tell from a whole snapshot: ` +
				`the sweep after it (snapshot.reconcile) deletes every target row the SELECT left out; ` +
				`fix: set snapshot.reconcile: false on this table, or remove public.prices from snapshot.select.statement.overrides on the connector`,
			`tables[0]: error: connector "partial": ` + multiDim,
			"tables[1]: " + unmatched,
			"tables[2]: " + unmatched,
			"tables[3]: " + unmatched,
		}},
		{name: "every lossy setting", connectors: []string{"lossy"}, want: []string{
			`tables[0]: error: connector "lossy" skipped.operations=d,t: deletes never reach the target (this table has deletes: hard): rows deleted at the source stay; ` +
				`fix: remove "d" from skipped.operations on the connector (skipped.operations=none skips nothing), or set deletes: ignore on this table to keep deleted rows`,
			`tables[0]: error: connector "lossy" ` + strings.Replace(truncates, "skipped.operations=t (Debezium's default)", "skipped.operations=d,t", 1),
			`tables[0]: error: connector "lossy" decimal.handling.mode=double: column "amount" (numeric(12,2)): values arrive as double precision: ` +
				`digits past the 15th are rounded away; fix: set decimal.handling.mode=string on the connector`,
			`tables[0]: error: connector "lossy" ` + intervals,
			`tables[0]: error: connector "lossy" time.precision.mode=connect: column "at" (timestamp without time zone): values arrive in milliseconds: ` +
				`their microseconds are dropped; fix: set time.precision.mode=adaptive (Debezium's default) on the connector`,
			`tables[0]: error: connector "lossy" column.truncate.to.5.chars=public.prices.label: column "label" (text): strings longer than 5 characters arrive cut to 5; ` +
				`fix: remove the column from column.truncate.to.5.chars on the connector`,
			`tables[0]: error: connector "lossy" column.exclude.list=public\.prices\.(note|memo): column "note" (text): the connector does not send this column, ` +
				`which is NOT NULL without a default: every new row is refused (dead letters); fix: send the column (column.exclude.list on the connector), or give the target column a default`,
			`tables[0]: warning: connector "lossy" column.exclude.list=public\.prices\.(note|memo): column "memo" (text): the connector does not send this column: ` +
				`new rows get its default, updated rows keep their value; fix: send the column (column.exclude.list on the connector), or drop the column from the target if it is meant to stay empty`,
			`tables[0]: error: connector "lossy": ` + multiDim,
			"tables[1]: " + unmatched,
			"tables[2]: " + unmatched,
			"tables[3]: " + unmatched,
		}},
	}
	cfg := parseConfig(t, checkConfig)
	targets := map[string]*catalog.Table{"tables[0]": pricesTarget()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(Check(cfg, connectors(t, tt.connectors...), targets))
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\ngot\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// Connectors sharing a prefix are reported only when one of them feeds a
// table of the configuration; distinct prefixes never are.
func TestPrefixClashesOnlyForFedTables(t *testing.T) {
	cfg := parseConfig(t, checkConfig)
	pg := func(name, prefix, include string) Connector {
		return Connector{Name: name, Config: map[string]string{"connector.class": postgresConnectorClass,
			"topic.prefix": prefix, "table.include.list": include}}
	}
	if got := prefixClashes(cfg, []Connector{pg("a", "other", "public.x"), pg("b", "other", "public.y")}); len(got) != 0 {
		t.Errorf("two connectors feeding no table of the configuration: %v, want no finding", messages(got))
	}
	if got := prefixClashes(cfg, []Connector{pg("a", "shop", "public.prices"), pg("b", "shop2", "public.prices")}); len(got) != 0 {
		t.Errorf("distinct prefixes: %v, want no finding", messages(got))
	}
	got := prefixClashes(cfg, []Connector{pg("b", "shop", "public.y"), pg("a", "shop", "public.prices")})
	if len(got) != 1 || got[0].Path != "tables[0]" || got[0].Severity != Warning || !strings.Contains(got[0].Consequence, `"a", "b"`) {
		t.Errorf("two connectors sharing the prefix of tables[0]'s topic: %v, want one warning at tables[0] naming both", messages(got))
	}
}

// A templated entry's targets are checked column by column too, each
// finding naming the target the template derived for the connector's topic.
func TestCheckDerivedTargetColumns(t *testing.T) {
	cfg := parseConfig(t, `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic_pattern: 'shop\.public\.(?P<table>.+)'
    target: 'public.${table}'
`)
	targets := map[string]*catalog.Table{DerivedKey(config.TableName{Schema: "public", Name: "prices"}): pricesTarget()}
	got := messages(Check(cfg, connectors(t, "precise"), targets))
	want := `tables[0]: error: connector "precise" interval.handling.mode=numeric (Debezium's default): derived target public.prices: column "span" (interval): `
	if !slices.ContainsFunc(got, func(m string) bool { return strings.HasPrefix(m, want) }) {
		t.Errorf("findings:\n%s\nwant one starting %q", strings.Join(got, "\n"), want)
	}
	// Without the derived target's catalog, only the table-wide findings.
	for _, m := range messages(Check(cfg, connectors(t, "precise"), nil)) {
		if strings.Contains(m, "column ") {
			t.Errorf("a column finding without the target's catalog: %s", m)
		}
	}
}
