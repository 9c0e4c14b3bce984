package debezium

import (
	"errors"
	"strings"
	"testing"
)

// fixtureRecord returns a recorded record of a scenario by topic suffix and
// offset, so malformed inputs are real records with one thing broken.
func fixtureRecord(t *testing.T, fixtures []*fixture, scenario, topicSuffix string, offset int64) (Record, *fixture) {
	t.Helper()
	for _, f := range fixtures {
		if f.name != scenario {
			continue
		}
		for _, r := range f.records {
			if strings.HasSuffix(r.Topic, topicSuffix) && r.Offset == offset {
				return toRecord(r), f
			}
		}
	}
	t.Fatalf("no record %s@%d in %s", topicSuffix, offset, scenario)
	return Record{}, nil
}

// edit replaces old by new exactly once in b, failing the test otherwise, so
// a case cannot silently test the unmodified record.
func edit(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%q occurs %d times, want once", old, n)
	}
	return []byte(strings.Replace(string(b), old, new, 1))
}

func TestMalformedRecords(t *testing.T) {
	fixtures := loadFixtures(t)
	create, fx := fixtureRecord(t, fixtures, "identity_default", ".public.all_types", 2) // op c, id 3
	del, _ := fixtureRecord(t, fixtures, "identity_default", ".public.all_types", 11)    // op d, id 3, header newkey
	outbox, _ := fixtureRecord(t, fixtures, "identity_default", ".outbox.event.Order", 0)
	marker, _ := fixtureRecord(t, fixtures, "identity_default", ".transaction", 0)
	schemaless, sfx := fixtureRecord(t, fixtures, "schemaless", ".public.all_types", 2)

	with := func(r Record, f func(*Record)) Record {
		r.Headers = append([]Header(nil), r.Headers...)
		f(&r)
		return r
	}
	cases := []struct {
		name    string
		opts    Options
		rec     Record
		part    string
		field   string // the DecodeError's Field, exactly
		is      error  // nil: any cause
		options *fixture
	}{
		{name: "truncated JSON", rec: with(create, func(r *Record) {
			r.Value = r.Value[:strings.Index(string(r.Value), `"c_bytea":"AP8=`)+13] // inside the string
		}), part: "value", field: "payload.after.c_bytea"},
		{name: "truncated inside the schema", rec: with(create, func(r *Record) { r.Value = r.Value[:100] }), part: "value", field: "schema"},
		{name: "empty value", rec: with(create, func(r *Record) { r.Value = []byte{} }), part: "value"},
		{name: "wrong type for an integer", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_smallint":-32768`, `"c_smallint":"x"`)
		}), part: "value", field: "payload.after.c_smallint"},
		{name: "integer out of range for int16", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_smallint":-32768`, `"c_smallint":-32769`)
		}), part: "value", field: "payload.after.c_smallint"},
		{name: "unknown op", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"op":"c"`, `"op":"x"`)
		}), part: "value", field: "payload.op", is: ErrUnknownOp},
		{name: "create without after", rec: with(del, func(r *Record) {
			r.Value = edit(t, r.Value, `"op":"d"`, `"op":"c"`)
		}), part: "value", field: "payload.after", is: ErrMissingImage},
		{name: "Decimal with bad base64", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_numeric":"/xcrWvAB"`, `"c_numeric":"/xc!WvAB"`)
		}), part: "value", field: "payload.after.c_numeric"},
		{name: "column the schema does not have", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_smallint":-32768`, `"c_smallnt":-32768`)
		}), part: "value", field: "payload.after.c_smallnt", is: ErrSchemaMismatch},
		{name: "struct where the schema says int", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_integer":-2147483648`, `"c_integer":{"a":1}`)
		}), part: "value", field: "payload.after.c_integer"},
		{name: "Decimal schema on an int32", rec: with(create, func(r *Record) {
			r.Value = []byte(strings.Replace(string(r.Value), `{"type":"int32","optional":true,"field":"c_integer"}`,
				`{"type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"c_integer"}`, 2))
		}), part: "value", field: "schema.before.c_integer", is: ErrSchemaMismatch},
		{name: "null for a required column", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"after":{"id":3,`, `"after":{"id":null,`)
		}), part: "value", field: "payload.after.id", is: ErrSchemaMismatch},
		{name: "a 10 MB value", rec: with(create, func(r *Record) {
			r.Value = append(r.Value[:len(r.Value):len(r.Value)], strings.Repeat(" ", 10<<20)...)
		}), part: "value", is: ErrTooLarge},
		{name: "deeply nested payload", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_integer":-2147483648`, `"c_integer":`+strings.Repeat("[", 100000))
		}), part: "value", field: "payload.after.c_integer"},
		{name: "bad sequence", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"sequence":"[null,\"68403664\"]"`, `"sequence":"[\"x\"]"`)
		}), part: "value", field: "payload.source.sequence"},
		{name: "change without a table name", rec: with(create, func(r *Record) {
			r.Value = edit(t, r.Value, `"table":"all_types"`, `"table":""`)
		}), part: "value", field: "payload.source.table", is: ErrSchemaMismatch},
		{name: "truncated key", rec: with(create, func(r *Record) { r.Key = r.Key[:len(r.Key)-3] }), part: "key"},
		{name: "malformed primary-key header", rec: with(del, func(r *Record) {
			for i := range r.Headers {
				if r.Headers[i].Key == "__debezium.newkey" {
					r.Headers[i].Value = []byte(`{"id":`)
				}
			}
		}), part: "header __debezium.newkey"},
		{name: "outbox without event id", rec: with(outbox, func(r *Record) {
			var kept []Header
			for _, h := range r.Headers {
				if h.Key != "id" {
					kept = append(kept, h)
				}
			}
			r.Headers = kept
		}), part: "header id", is: ErrSchemaMismatch},
		{name: "transaction marker with an unknown status", rec: with(marker, func(r *Record) {
			r.Value = edit(t, r.Value, `"status":"BEGIN"`, `"status":"MAYBE"`)
		}), part: "value", field: "payload.status", is: ErrSchemaMismatch},
		{name: "schemaless record of a table the catalog lacks", options: sfx, rec: with(schemaless, func(r *Record) {
			r.Value = edit(t, r.Value, `"table":"all_types"`, `"table":"nowhere"`)
		}), part: "value", field: "payload"},
		{name: "schemaless value of the wrong type", options: sfx, rec: with(schemaless, func(r *Record) {
			r.Value = edit(t, r.Value, `"c_date":-719162,`, `"c_date":"yesterday",`)
		}), part: "value", field: "payload.after.c_date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fx
			if c.options != nil {
				f = c.options
			}
			c.rec.Partition, c.rec.Offset = 7, 12345
			_, err := NewDecoder(f.options()).Decode(c.rec)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *DecodeError", err, err)
			}
			if de.Topic != c.rec.Topic || de.Partition != 7 || de.Offset != 12345 {
				t.Errorf("error names %s[%d]@%d, want %s[7]@12345", de.Topic, de.Partition, de.Offset, c.rec.Topic)
			}
			if de.Part != c.part {
				t.Errorf("error part %q, want %q (%v)", de.Part, c.part, err)
			}
			if c.field != "" && de.Field != c.field {
				t.Errorf("error field %q, want %q (%v)", de.Field, c.field, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
			for _, want := range []string{c.rec.Topic, "[7]@12345", c.part} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not name %q", err, want)
				}
			}
		})
	}
}

// TestLargeValueWithinLimit decodes a 10 MB text value when MaxBytes allows
// it: the limit, not the decoder, is what refuses big records.
func TestLargeValueWithinLimit(t *testing.T) {
	rec, f := fixtureRecord(t, loadFixtures(t), "identity_default", ".public.all_types", 2)
	big := strings.Repeat("x", 10<<20)
	rec.Value = edit(t, rec.Value, `"c_varchar":"ünïcödé"`, `"c_varchar":"`+big+`"`)
	opts := f.options()
	opts.MaxBytes = 16 << 20
	ch, err := NewDecoder(opts).Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ch.After.Get("c_varchar"); v.Value != big {
		t.Errorf("c_varchar has %d bytes, want the 10 MB string", len(v.Value.(string)))
	}
}
