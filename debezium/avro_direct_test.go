package debezium

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// transcoded decodes rec the way pgsink decoded Avro before the plans: the
// key and value transcoded to JsonConverter text (fromAvro), then the JSON
// path. It is the reference the direct decoding must agree with.
func transcoded(t testing.TB, avro, asJSON *Decoder, rec Record) (Change, error) {
	t.Helper()
	if part, err := avro.fromAvro(&rec); err != nil {
		return Change{}, &DecodeError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Part: part, Err: err}
	}
	return asJSON.Decode(rec)
}

// referenceDecoders returns the two decoders transcoded needs for f.
func referenceDecoders(f *fixture) (avro, asJSON *Decoder) {
	opts := f.options()
	avro = NewDecoder(opts)
	opts.Encoding = nil
	return avro, NewDecoder(opts)
}

// TestAvroDirectEqualsTranscoded: every record of every Avro fixture
// decodes, straight from Avro, to exactly the Change the transcoding
// reference gives it: positions, versions, timestamps, transaction blocks
// and every value, with the same Go types.
func TestAvroDirectEqualsTranscoded(t *testing.T) {
	compared := 0
	for _, f := range loadFixtures(t) {
		if !f.avro() {
			continue
		}
		direct := NewDecoder(f.options())
		refAvro, refJSON := referenceDecoders(f)
		for _, r := range f.records {
			rec := toRecord(r)
			want, werr := transcoded(t, refAvro, refJSON, rec)
			got, gerr := direct.Decode(toRecord(r))
			if werr != nil || gerr != nil {
				t.Errorf("%s@%d: reference error %v, direct error %v", r.Topic, r.Offset, werr, gerr)
				continue
			}
			nanAsText(want.Key, want.Before, want.After, got.Key, got.Before, got.After)
			if !reflect.DeepEqual(want, got) {
				for _, c := range [][3]any{{"key", want.Key, got.Key}, {"before", want.Before, got.Before}, {"after", want.After, got.After}} {
					if !reflect.DeepEqual(c[1], c[2]) {
						diffRows(t, r.Topic+" "+c[0].(string), c[1].(Row), c[2].(Row))
					}
				}
				t.Errorf("%s@%d:\n reference %+v\n direct    %+v", r.Topic, r.Offset, want, got)
			}
			if strings.HasSuffix(r.Topic, ".all_types") && r.Value != nil {
				compared++
			}
		}
	}
	if compared < 20 {
		t.Fatalf("compared %d all_types change events; the Avro fixtures hold more", compared)
	}
}

// FuzzAvroBody feeds mutated bodies, under every schema id of the Avro
// fixtures, to the direct decoder: it may refuse a body, only with a
// DecodeError naming the schema id, and never panics; a body it accepts
// decodes to what the transcoding reference makes of it.
func FuzzAvroBody(f *testing.F) {
	var fx *fixture
	for _, x := range loadFixtures(f) {
		if x.avro() {
			fx = x
		}
	}
	if fx == nil {
		f.Fatal("no Avro fixture")
	}
	for _, r := range fx.records {
		if len(r.Value) > 4<<10 {
			continue
		}
		if r.Value != nil && DefaultFormat(r.Topic) == FormatTable {
			f.Add(r.Topic, []byte(r.Key), []byte(r.Value))
		}
	}
	direct := NewDecoder(fx.options())
	refAvro, refJSON := referenceDecoders(fx)
	f.Fuzz(func(t *testing.T, topic string, key, value []byte) {
		if DefaultFormat(topic) != FormatTable {
			return // outbox and marker topics are transcoded: FuzzDecode's
		}
		rec := Record{Topic: topic, Partition: 1, Offset: 42, Key: key, Value: value}
		got, err := direct.Decode(rec)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset != 42 {
				t.Fatalf("error %v is not a *DecodeError naming the record", err)
			}
			named := errors.Is(err, ErrNoMagicByte) || errors.Is(err, ErrTooLarge) || strings.Contains(err.Error(), "schema id ")
			if !named && (de.Part == "key" || de.Part == "value") {
				t.Fatalf("error %q does not name the schema id", err)
			}
			return
		}
		want, err := transcoded(t, refAvro, refJSON, rec)
		if err != nil {
			// The reference is stricter in places (hamba refuses some
			// lengths and counts the plans read): nothing to compare.
			return
		}
		nanAsText(want.Key, want.Before, want.After, got.Key, got.Before, got.After)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("direct and transcoded differ:\n reference %+v\n direct    %+v", want, got)
		}
	})
}

// editedSchemas serves the fixture's schemas with one text edited.
type editedSchemas struct {
	SchemaSource
	from, to string
}

func (e editedSchemas) Schema(id uint32) (string, error) {
	s, err := e.SchemaSource.Schema(id)
	return strings.ReplaceAll(s, e.from, e.to), err
}

// TestAvroSchemaRefused: a registry schema whose logical type its Avro type
// cannot carry (a Date on a string) makes every record of it a DecodeError
// naming the schema id and the field, not a panic or a guess.
func TestAvroSchemaRefused(t *testing.T) {
	f := fixtureNamed(t, loadFixtures(t), "shipped_avro")
	opts := f.options()
	opts.Schemas = editedSchemas{SchemaSource: f.schemas,
		from: `{"type":"int","connect.version":1,"connect.name":"io.debezium.time.Date"}`,
		to:   `{"type":"string","connect.version":1,"connect.name":"io.debezium.time.Date"}`}
	d := NewDecoder(opts)
	for _, r := range f.records {
		if !strings.HasSuffix(r.Topic, ".public.all_types") || r.Value == nil {
			continue
		}
		_, err := d.Decode(toRecord(r))
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrSchemaMismatch) {
			t.Fatalf("got %v, want a DecodeError wrapping ErrSchemaMismatch", err)
		}
		t.Log(err)
		for _, want := range []string{"schema id ", "c_date", "io.debezium.time.Date"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
		return
	}
	t.Fatal("no all_types record")
}

// oneSchema serves text under every id.
type oneSchema string

func (s oneSchema) Schema(uint32) (string, error) { return string(s), nil }

// TestAvroRecursiveSchema: a registry schema whose record refers to
// itself, which no Connect schema can be, is refused with a DecodeError
// rather than followed without end.
func TestAvroRecursiveSchema(t *testing.T) {
	d := NewDecoder(Options{Encoding: func(string) Encoding { return EncodingAvro },
		Schemas: oneSchema(`{"type":"record","name":"R","fields":[{"name":"next","type":["null","R"]}]}`)})
	_, err := d.Decode(Record{Topic: "p.public.t", Value: []byte{0, 0, 0, 0, 1, 0}})
	var de *DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "schema id 1") {
		t.Fatalf("got %v, want a DecodeError naming schema id 1", err)
	}
	t.Log(err)
}
