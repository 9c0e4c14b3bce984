package debezium

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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
		TopicPrefix string `json:"topic_prefix"`
		Connectors  struct {
			Tables map[string]string `json:"tables"`
		} `json:"connectors"`
	}
	// schemas are the registry's schemas of an Avro scenario, by id.
	schemas fixtureSchemas
}

// fixtureSchemas is a SchemaSource of recorded schemas; it counts fetches.
type fixtureSchemas struct {
	byID    map[string]string
	fetches map[uint32]int
}

func (s fixtureSchemas) Schema(id uint32) (string, error) {
	text, ok := s.byID[strconv.FormatUint(uint64(id), 10)]
	if !ok {
		return "", ErrUnknownSchemaID
	}
	s.fetches[id]++
	return text, nil
}

// avro reports whether the scenario's table connector writes Avro.
func (f *fixture) avro() bool {
	return strings.HasSuffix(f.setting("value.converter"), "AvroConverter")
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
	var avroTopic func(string) Encoding
	if f.avro() {
		// Both connectors of an Avro scenario write Avro.
		avroTopic = func(string) Encoding { return EncodingAvro }
	}
	return Options{
		Encoding:        avroTopic,
		Schemas:         f.schemas,
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
		if data, err := os.ReadFile(filepath.Join(dir, "schemas.json")); err == nil {
			f.schemas = fixtureSchemas{byID: map[string]string{}, fetches: map[uint32]int{}}
			if err := json.Unmarshal(data, &f.schemas.byID); err != nil {
				t.Fatalf("%s/schemas.json: %v", f.name, err)
			}
		}
		if f.avro() {
			f.avroNames()
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

// avroNames renames the catalog's and the audit rows' columns the way
// Apicurio's converter renames fields whose names are not Avro names
// ("Order Id" arrives as "Order_Id"): the original name is not in the
// record, so an Avro fixture's decoded rows carry the Avro name.
func (f *fixture) avroNames() {
	for _, cols := range f.catalog {
		for i := range cols {
			cols[i].Name = avroName(cols[i].Name)
		}
	}
	for i := range f.rows {
		for _, img := range []map[string]json.RawMessage{f.rows[i].Old, f.rows[i].New} {
			for k, v := range img {
				if n := avroName(k); n != k {
					delete(img, k)
					img[n] = v
				}
			}
		}
	}
}

// avroName replaces each character Avro does not allow in a name with _.
func avroName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}
