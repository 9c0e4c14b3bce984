package debezium

import (
	"errors"
	"testing"

	"github.com/pgsink/pgsink/internal/sqltype"
)

// FuzzDecode feeds mutated fixture records to every decoder configuration:
// decoding may fail, but only with a *DecodeError, and never panic.
func FuzzDecode(f *testing.F) {
	fixtures := loadFixtures(f)
	for _, fx := range fixtures {
		for _, r := range fx.records {
			if len(r.Value) > 64<<10 {
				continue // keep the corpus small enough to mutate quickly
			}
			oldKey, _ := r.Header("__debezium.oldkey")
			f.Add(fx.name, r.Topic, []byte(r.Key), []byte(r.Value), []byte(oldKey))
		}
	}
	decoders := map[string]*Decoder{}
	for _, fx := range fixtures {
		decoders[fx.name] = NewDecoder(fx.options())
	}
	f.Fuzz(func(t *testing.T, scenario, topic string, key, value, oldKey []byte) {
		d := decoders[scenario]
		if d == nil {
			return
		}
		rec := Record{Topic: topic, Partition: 1, Offset: 42, Key: key, Value: value}
		if oldKey != nil {
			rec.Headers = []Header{{Key: "__debezium.oldkey", Value: oldKey}}
		}
		_, err := d.Decode(rec)
		var de *DecodeError
		if err != nil && (!errors.As(err, &de) || de.Topic != topic || de.Offset != 42 || de.Partition != 1) {
			t.Fatalf("error %v is not a *DecodeError naming the record", err)
		}
	})
}

// FuzzColumnType maps fuzzed Connect field schemas to PostgreSQL types:
// the mapping may refuse a schema, but what it gives parses as a column
// type and renders back to the same text, so only sqltype's renderings
// reach DDL.
func FuzzColumnType(f *testing.F) {
	f.Add("bytes", nameDecimal, "10,2)); DROP TABLE victim; --", "2", "", "", "")
	f.Add("bytes", nameDecimal, "12", "2", "", "", "")
	f.Add("string", "", "", "", "text not null default 1", "", "")
	f.Add("string", "", "", "", "VARCHAR", "20) NOT NULL", "")
	f.Add("string", "", "", "", "NUMERIC", "12", "2); --")
	f.Add("int64", nameMicroTimestamp, "", "", "", "", "")
	f.Fuzz(func(t *testing.T, typ, name, precision, scale, srcType, srcLength, srcScale string) {
		params := map[string]string{}
		for k, v := range map[string]string{"connect.decimal.precision": precision, "scale": scale,
			"__debezium.source.column.type": srcType, "__debezium.source.column.length": srcLength,
			"__debezium.source.column.scale": srcScale} {
			if v != "" {
				params[k] = v
			}
		}
		cs := &connectSchema{Type: typ, Name: name, Parameters: params}
		for _, s := range []*connectSchema{cs, {Type: "array", Items: cs}} {
			got, err := pgTypeOf(s)
			if err != nil {
				continue
			}
			parsed, err := sqltype.Parse(got.String())
			if err != nil || parsed.String() != got.String() {
				t.Fatalf("%+v maps to %q, which parses to %q, %v", s, got, parsed, err)
			}
		}
	})
}
