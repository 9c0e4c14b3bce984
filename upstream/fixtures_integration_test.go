//go:build integration

package upstream

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/test/stacktest"
)

// record rewrites testdata/connectors.json from the real Connect:
//
//	go test -tags integration -run TestIntegrationConnectFixtures ./upstream -record
var record = flag.Bool("record", false, "rewrite testdata/connectors.json from the stack's Kafka Connect")

// fixturePrefix replaces the sandbox's id (database, topic prefix) in the
// recorded file, so that re-recording changes only what Connect changed.
const fixturePrefix = "shop"

// fixtureConnectors are the connectors the fixture holds, by short name:
// overrides on top of stacktest.DebeziumPostgres.
func fixtureConnectors(prefix string) map[string]map[string]string {
	lossless := map[string]string{"table.include.list": "public.prices", "skipped.operations": "none",
		"decimal.handling.mode": "string", "interval.handling.mode": "string"}
	routed := map[string]string{"transforms": "route",
		"transforms.route.type":        "org.apache.kafka.connect.transforms.RegexRouter",
		"transforms.route.regex":       `(.*)\.public\.(.*)`,
		"transforms.route.replacement": "$1.routed.$2"}
	for k, v := range lossless {
		routed[k] = v
	}
	partial := map[string]string{"snapshot.select.statement.overrides": "public.prices",
		"snapshot.select.statement.overrides.public.prices": "SELECT * FROM public.prices WHERE id > 100"}
	for k, v := range lossless {
		partial[k] = v
	}
	outbox := stacktest.OutboxRouter(prefix)
	outbox["skipped.operations"] = "c"
	return map[string]map[string]string{
		// Debezium's defaults: decimal precise, interval numeric, truncates skipped.
		"precise":  {"table.include.list": "public.prices"},
		"lossless": lossless,
		"lossy": {"table.include.list": "public.prices", "skipped.operations": "d,t",
			"decimal.handling.mode": "double", "time.precision.mode": "connect",
			"column.exclude.list": `public\.prices\.(note|memo)`, "column.truncate.to.5.chars": "public.prices.label",
			"key.converter.schemas.enable": "false", "value.converter.schemas.enable": "false"},
		"routed": routed,
		// A snapshot of the rows of one SELECT.
		"partial": partial,
		"outbox":  outbox,
	}
}

// TestIntegrationConnectFixtures registers the fixture's connectors on the
// stack's Connect, reads them back through Client as validate does, and
// checks that they equal testdata/connectors.json (or, with -record,
// rewrites it).
func TestIntegrationConnectFixtures(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.prices (id int PRIMARY KEY, amount numeric(12,2), span interval, at timestamp,
		label text, note text, memo text, grid int[][])`)
	st.Exec(`CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL,
		type text NOT NULL, payload jsonb)`)
	names := map[string]string{} // full name -> short name
	for short, overrides := range fixtureConnectors(st.TopicPrefix) {
		names[st.RegisterDebeziumWithout(short, representationKeys, overrides)] = short
	}
	client, err := NewClient(config.Debezium{ConnectURL: st.Env.ConnectURL})
	if err != nil {
		t.Fatal(err)
	}
	body, err := client.get(context.Background(), "/connectors?expand=info")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	// Connect's own answer, cut to this test's connectors (the worker is
	// shared) and with the run's names replaced by stable ones.
	ours := map[string]json.RawMessage{}
	for full, short := range names {
		info, ok := all[full]
		if !ok {
			t.Fatalf("GET /connectors?expand=info does not list %s:\n%s", full, body)
		}
		text := strings.ReplaceAll(string(info), full, short)
		ours[short] = withFixturePort(t, strings.ReplaceAll(text, st.ID, fixturePrefix))
	}
	// Through any, keys come out sorted: Connect's own order changes from
	// one run to the next.
	var canonical any
	if raw, err := json.Marshal(ours); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(raw, &canonical); err != nil {
		t.Fatal(err)
	}
	recorded, err := json.MarshalIndent(canonical, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	recorded = append(recorded, '\n')
	if *record {
		if err := os.WriteFile(fixturePath, recorded, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := ParseConnectors(recorded)
	if err != nil {
		t.Fatal(err)
	}
	if want := loadFixture(t); !reflect.DeepEqual(got, want) {
		t.Errorf("Connect's answer changed from %s (re-record with -record, then review the diff):\ngot  %+v\nwant %+v", fixturePath, got, want)
	}
}

// fixturePort replaces the stack's PostgreSQL port in the recorded file:
// the stack's ports are the runner's choice (CI runs on other ones), and
// no check reads the port.
const fixturePort = "5432"

// withFixturePort is one connector's info with database.port set to
// fixturePort.
func withFixturePort(t *testing.T, info string) json.RawMessage {
	t.Helper()
	var connector map[string]any
	if err := json.Unmarshal([]byte(info), &connector); err != nil {
		t.Fatal(err)
	}
	// expand=info nests the configuration under "info".
	if info, ok := connector["info"].(map[string]any); ok {
		if cfg, ok := info["config"].(map[string]any); ok {
			cfg["database.port"] = fixturePort
		}
	}
	raw, err := json.Marshal(connector)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// representationKeys are the settings of the shipped connector file that
// change how values are represented (test/fidelity.RepresentationKeys): a
// fixture connector starts without them, from Debezium's defaults, so that
// "precise" stays Debezium's defaults whatever the file ships.
var representationKeys = []string{"decimal.handling.mode", "interval.handling.mode", "time.precision.mode",
	"binary.handling.mode", "hstore.handling.mode", "money.fraction.digits", "include.unknown.datatypes",
	"unavailable.value.placeholder", "column.propagate.source.type", "datatype.propagate.source.type", "converters"}
