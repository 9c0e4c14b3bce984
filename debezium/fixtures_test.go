package debezium

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/test/recording"
)

// fixtureDir holds the recordings of test/fixturegen.
var fixtureDir = filepath.Join("..", "testdata", "debezium")

// fixture is one recorded scenario.
type fixture struct {
	name     string
	records  []recording.Record
	rows     []auditRow
	catalog  map[string][]Column
	scenario struct {
		Connectors struct {
			Tables map[string]string `json:"tables"`
		} `json:"connectors"`
	}
}

// auditRow is one line of rows.jsonl: PostgreSQL's row_to_json of OLD/NEW.
type auditRow struct {
	Seq   int64                      `json:"seq"`
	Table string                     `json:"table"`
	Op    string                     `json:"op"`
	TxID  int64                      `json:"txid"`
	Old   map[string]json.RawMessage `json:"old"`
	New   map[string]json.RawMessage `json:"new"`
}

func (f *fixture) setting(key string) string { return f.scenario.Connectors.Tables[key] }

func (f *fixture) schemaless() bool { return f.setting("value.converter.schemas.enable") == "false" }

func (f *fixture) options() Options {
	return Options{
		Schemaless:      f.schemaless(),
		DecimalHandling: f.setting("decimal.handling.mode"),
		TimePrecision:   f.setting("time.precision.mode"),
		Catalog: func(schema, table string) ([]Column, bool) {
			cols, ok := f.catalog[schema+"."+table]
			return cols, ok
		},
	}
}

func loadFixtures(t testing.TB) []*fixture {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(fixtureDir, "*", "records.jsonl"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures under %s: %v", fixtureDir, err)
	}
	var out []*fixture
	for _, path := range dirs {
		dir := filepath.Dir(path)
		f := &fixture{name: filepath.Base(dir)}
		if f.records, err = recording.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "rows.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r auditRow
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s/rows.jsonl: %v", f.name, err)
			}
			f.rows = append(f.rows, r)
		}
		for name, dst := range map[string]any{"catalog.json": &f.catalog, "scenario.json": &f.scenario} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, dst); err != nil {
				t.Fatalf("%s/%s: %v", f.name, name, err)
			}
		}
		out = append(out, f)
	}
	return out
}

func toRecord(r recording.Record) Record {
	rec := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
	}
	return rec
}
