package stacktest

import (
	"maps"
	"testing"

	"github.com/pgsink/pgsink/docker"
)

const testSourceURL = "postgres://debezium:s3cret@127.0.0.1:55432/pgs_x?sslmode=disable"

// baseWant is what DebeziumPostgres returned while it was written out in Go,
// before it came from docker/connectors: moving the settings into files must
// not change a single value the tests register. Since then, on purpose: the
// lossless decimal, interval and time modes, and Debezium's context headers
// left out (docker/connectors/README.md).
func baseWant() map[string]string {
	return map[string]string{
		"connector.class":                "io.debezium.connector.postgresql.PostgresConnector",
		"tasks.max":                      "1",
		"plugin.name":                    "pgoutput",
		"database.hostname":              "127.0.0.1",
		"database.port":                  "55432",
		"database.user":                  "debezium",
		"database.password":              "s3cret",
		"database.dbname":                "pgs_x",
		"topic.prefix":                   "pfx",
		"slot.name":                      "slot_1",
		"publication.name":               "slot_1",
		"publication.autocreate.mode":    "filtered",
		"snapshot.mode":                  "initial",
		"decimal.handling.mode":          "string",
		"interval.handling.mode":         "string",
		"time.precision.mode":            "adaptive",
		"datatype.propagate.source.type": `.+\.NUMERIC,.+\.MONEY`,
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "true",
		"value.converter.schemas.enable": "true",
		"poll.interval.ms":               "100",
		"extended.headers.enabled":       "false",
	}
}

// outboxWant is the former OutboxRouter's overrides for prefix "pfx".
func outboxWant() map[string]string {
	return map[string]string{
		"table.include.list":                                  "public.outbox",
		"topic.prefix":                                        "pfx_outbox",
		"transforms":                                          "outbox",
		"transforms.outbox.type":                              "io.debezium.transforms.outbox.EventRouter",
		"transforms.outbox.route.by.field":                    "aggregatetype",
		"transforms.outbox.route.topic.replacement":           "pfx.outbox.event.${routedByValue}",
		"transforms.outbox.table.field.event.id":              "id",
		"transforms.outbox.table.field.event.key":             "aggregateid",
		"transforms.outbox.table.field.event.payload":         "payload",
		"transforms.outbox.table.expand.json.payload":         "true",
		"transforms.outbox.table.fields.additional.placement": "type:header:eventType",
		"value.converter.delegate.converter.type":             "org.apache.kafka.connect.json.JsonConverter",
	}
}

func merged(base map[string]string, overrides ...map[string]string) map[string]string {
	out := maps.Clone(base)
	for _, o := range overrides {
		maps.Copy(out, o)
	}
	return out
}

func diff(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %s = %q (present %v), want %q", what, k, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s = %q", what, k, g)
		}
	}
}

// TestConnectorConfigsUnchanged checks the configurations the tests register
// (DebeziumPostgres with overrides, as RegisterDebezium does).
func TestConnectorConfigsUnchanged(t *testing.T) {
	base, err := DebeziumPostgres(testSourceURL, "slot_1", "pfx")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "DebeziumPostgres", base, baseWant())
	diff(t, "DebeziumPostgres + OutboxRouter", merged(base, OutboxRouter("pfx")), merged(baseWant(), outboxWant()))
}

// TestConnectorFileForDemo checks what the demo registers: the same as when
// it built both configurations from DebeziumPostgres and OutboxRouter.
func TestConnectorFileForDemo(t *testing.T) {
	tables, err := ConnectorFile(docker.TablesConnector, Run{SourceURL: testSourceURL, Slot: "slot_1", TopicPrefix: "pfx"})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "demo tables", tables, merged(baseWant(), map[string]string{
		"table.include.list": "public.customers,public.orders",
		"skipped.operations": "none",
	}))
	outbox, err := ConnectorFile(docker.OutboxConnector, Run{SourceURL: testSourceURL, Slot: "slot_1", TopicPrefix: "pfx"})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "demo outbox", outbox, merged(baseWant(), outboxWant()))
}

func TestRetarget(t *testing.T) {
	tests := []struct {
		value, want string
		ok          bool
	}{
		{value: "demo", want: "p", ok: true},
		{value: "demo_outbox", want: "p_outbox", ok: true},
		{value: "demo.outbox.event.${routedByValue}", want: "p.outbox.event.${routedByValue}", ok: true},
		{value: "shop", ok: false},
		{value: "demos", ok: false},
	}
	for _, tt := range tests {
		cfg := map[string]string{"transforms.x.route.topic.replacement": tt.value, "table.include.list": "demo.t"}
		err := retarget(cfg, "p")
		if (err == nil) != tt.ok {
			t.Errorf("retarget(%q): error %v, want ok=%v", tt.value, err, tt.ok)
			continue
		}
		if tt.ok && cfg["transforms.x.route.topic.replacement"] != tt.want {
			t.Errorf("retarget(%q) = %q, want %q", tt.value, cfg["transforms.x.route.topic.replacement"], tt.want)
		}
		if cfg["table.include.list"] != "demo.t" {
			t.Errorf("retarget changed a setting that names no topic: %q", cfg["table.include.list"])
		}
	}
}
