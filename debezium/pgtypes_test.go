package debezium

import (
	"path/filepath"
	"testing"

	"github.com/pgsink/pgsink/test/recording"
)

// TestColumnsFromRecordedSchema maps the recorded all_types schema to
// PostgreSQL types: what a table created by schema.create would have.
func TestColumnsFromRecordedSchema(t *testing.T) {
	records, err := recording.ReadFile(filepath.Join("..", "testdata", "debezium", "identity_default", "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(Options{})
	var cols []Column
	for _, r := range records {
		if filepath.Ext(r.Topic) != ".all_types" || r.Value == nil {
			continue
		}
		ch, err := d.Decode(Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
		if err != nil {
			t.Fatal(err)
		}
		cols = ch.Columns
		break
	}
	want := map[string]string{
		"id": "integer", "c_smallint": "smallint", "c_bigint": "bigint", "c_numeric": "numeric(12,2)", "c_numeric_free": "numeric",
		"c_real": "real", "c_double": "double precision", "c_boolean": "boolean", "c_text": "text", "c_bytea": "bytea",
		"c_uuid": "uuid", "c_jsonb": "jsonb", "c_date": "date", "c_time": "time without time zone",
		"c_timetz": "time with time zone", "c_timestamp": "timestamp without time zone",
		"c_timestamptz": "timestamp with time zone", "c_interval": "interval", "c_enum": "text", "c_int_array": "integer[]",
		"c_text_array": "text[]", "c_bit": "bit varying", "c_xml": "xml", "c_point": "point", "Order Id": "integer",
	}
	got := map[string]Column{}
	for _, c := range cols {
		got[c.Name] = c
	}
	for name, typ := range want {
		if got[name].Type != typ {
			t.Errorf("column %q maps to %q, want %q", name, got[name].Type, typ)
		}
	}
	if !got["id"].NotNull || got["c_text"].NotNull {
		t.Errorf("NOT NULL: id %v (want true), c_text %v (want false)", got["id"].NotNull, got["c_text"].NotNull)
	}
}

func TestSourceColumnTypeIsPreferredAndSafe(t *testing.T) {
	cs := &connectSchema{Type: "string", Parameters: map[string]string{
		"__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "20"}}
	if got := pgTypeOf(cs); got != "varchar(20)" {
		t.Errorf("propagated VARCHAR(20) maps to %q", got)
	}
	cs.Parameters["__debezium.source.column.type"] = `text"; DROP TABLE x; --`
	if got := pgTypeOf(cs); got != "text" {
		t.Errorf("a hostile source type name gave %q, want the plain mapping", got)
	}
}
