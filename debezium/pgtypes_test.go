package debezium

import (
	"path/filepath"
	"testing"

	"github.com/pgsink/pgsink/internal/sqltype"
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

func TestSourceColumnTypeIsPreferred(t *testing.T) {
	tests := []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "20"}, "character varying(20)"},
		{map[string]string{"__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "2147483647"}, "character varying"},
		{map[string]string{"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "12", "__debezium.source.column.scale": "2"}, "numeric(12,2)"},
		{map[string]string{"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "12"}, "numeric(12)"},
		{map[string]string{"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "0", "__debezium.source.column.scale": "0"}, "numeric"},
		{map[string]string{"__debezium.source.column.type": "TIMESTAMPTZ", "__debezium.source.column.length": "35"}, "timestamp with time zone"},
		{map[string]string{"__debezium.source.column.type": "MOOD"}, `"mood"`},
		{map[string]string{"__debezium.source.column.type": "_INT4"}, `"_int4"`},
	}
	for _, tt := range tests {
		got, err := pgTypeOf(&connectSchema{Type: "string", Parameters: tt.params})
		if err != nil || got.String() != tt.want {
			t.Errorf("%v maps to %q, %v; want %q", tt.params, got, err, tt.want)
		}
	}
}

// TestHostileTypeParametersAreErrors: a schema parameter that would put
// text of the record into DDL is a column type error, never SQL (issue 21).
func TestHostileTypeParametersAreErrors(t *testing.T) {
	tests := []*connectSchema{
		{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "10,2)); DROP TABLE victim; --", "scale": "2"}},
		{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "10", "scale": "2); DROP TABLE victim; --"}},
		{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "1001", "scale": "2"}},
		{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "0", "scale": "0"}},
		{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "10", "scale": "1001"}},
		{Type: "string", Parameters: map[string]string{"__debezium.source.column.type": `text"; DROP TABLE x; --`}},
		{Type: "string", Parameters: map[string]string{"__debezium.source.column.type": "text not null default 1"}},
		{Type: "string", Parameters: map[string]string{"__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "20) NOT NULL"}},
		{Type: "string", Parameters: map[string]string{"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "12", "__debezium.source.column.scale": "2000"}},
		{Type: "array", Items: &connectSchema{Type: "bytes", Name: nameDecimal, Parameters: map[string]string{"connect.decimal.precision": "x", "scale": "0"}}},
	}
	for _, cs := range tests {
		if got, err := pgTypeOf(cs); err == nil {
			t.Errorf("%+v maps to %q, want an error", cs, got)
		}
		cols := columnsOf(&connectSchema{Type: "struct", Fields: []connectSchema{*withField(cs, "amount")}})
		if cols[0].TypeErr == nil || cols[0].Type != "" {
			t.Errorf("%+v: column %+v, want no type and a TypeErr", cs, cols[0])
		}
	}
}

func withField(cs *connectSchema, name string) *connectSchema {
	c := *cs
	c.Field = name
	return &c
}

// TestRecordedSchemasMapToDDLTypes: every column of every recorded change
// event maps to a type DDL accepts, so the checks that refuse hostile
// schemas refuse nothing the real Debezium sends.
func TestRecordedSchemasMapToDDLTypes(t *testing.T) {
	checked := 0
	for _, fx := range loadFixtures(t) {
		d := NewDecoder(fx.options())
		for _, r := range fx.records {
			ch, err := d.Decode(toRecord(r))
			if err != nil {
				continue // fixtures_test checks decoding; here only the types matter
			}
			for _, c := range ch.Columns {
				checked++
				if c.TypeErr != nil {
					t.Fatalf("%s: %s@%d: column %q: %v", fx.name, r.Topic, r.Offset, c.Name, c.TypeErr)
				}
				if typ, err := sqltype.Parse(c.Type); err != nil || typ.String() != c.Type {
					t.Fatalf("%s: %s@%d: column %q type %q parses to %q, %v", fx.name, r.Topic, r.Offset, c.Name, c.Type, typ, err)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no recorded column checked")
	}
}
