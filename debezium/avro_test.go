package debezium

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// fixtureNamed returns the loaded fixture called name.
func fixtureNamed(t testing.TB, fixtures []*fixture, name string) *fixture {
	t.Helper()
	for _, f := range fixtures {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s", name)
	return nil
}

// TestAvroEqualsJSON decodes the same workload recorded through the
// shipped JSON converter and through Apicurio's Avro converter: every table
// change, transaction marker, logical message and outbox event must decode, in each row's order, to the same row images, key, op and column types —
// the sink cannot tell the formats apart. Positions, LSNs, transaction ids
// and timestamps differ between the two recordings and are not compared.
func TestAvroEqualsJSON(t *testing.T) {
	fixtures := loadFixtures(t)
	jsonF, avroF := fixtureNamed(t, fixtures, "shipped"), fixtureNamed(t, fixtures, "shipped_avro")
	decodeAll := func(f *fixture) map[string][]Change {
		d := NewDecoder(f.options())
		out := map[string][]Change{}
		for _, r := range f.records {
			ch, err := d.Decode(toRecord(r))
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			// Per topic and key: the workload's two sessions interleave
			// differently from one recording to the next, each row's
			// changes keep their order.
			topic := strings.TrimPrefix(r.Topic, f.scenario.TopicPrefix) + fmt.Sprintf(" key %v", ch.Key)
			if ch.Outbox != nil {
				topic += " aggregate " + ch.Outbox.AggregateID
			}
			out[topic] = append(out[topic], ch)
		}
		return out
	}
	want, got := decodeAll(jsonF), decodeAll(avroF)
	if len(want) == 0 || len(want) != len(got) {
		t.Fatalf("topics: JSON %d, Avro %d", len(want), len(got))
	}
	compared := 0
	for topic, ws := range want {
		gs := got[topic]
		if len(gs) != len(ws) {
			t.Errorf("%s: JSON %d records, Avro %d", topic, len(ws), len(gs))
			continue
		}
		for i := range ws {
			w, g := ws[i], gs[i]
			renameAvro(w.Key, w.Before, w.After)
			// NaN is unequal to itself; both formats must carry it.
			nanAsText(w.Before, w.After, g.Before, g.After)
			w.Columns = renameColumns(w.Columns)
			for _, c := range []struct {
				what      string
				want, got any
			}{
				{"kind", w.Kind, g.Kind}, {"op", w.Op, g.Op}, {"table", w.Schema + "." + w.Table, g.Schema + "." + g.Table},
				{"key", w.Key, g.Key}, {"before", w.Before, g.Before}, {"after", w.After, g.After},
				{"columns", w.Columns, g.Columns}, {"snapshot", w.SnapshotMark, g.SnapshotMark},
				{"message", w.Message, g.Message}, {"has transaction", w.Transaction != nil, g.Transaction != nil},
				{"marker status", markerStatus(w), markerStatus(g)},
				{"outbox", outboxOf(t, w), outboxOf(t, g)},
			} {
				if reflect.DeepEqual(c.want, c.got) {
					continue
				}
				if wr, ok := c.want.(Row); ok {
					diffRows(t, fmt.Sprintf("%s #%d %s", topic, i, c.what), wr, c.got.(Row))
					continue
				}
				t.Errorf("%s #%d %s:\n JSON %#v\n Avro %#v", topic, i, c.what, c.want, c.got)
			}
			compared++
		}
	}
	if compared < 40 {
		t.Fatalf("compared %d records; the fixtures should hold more", compared)
	}
}

func nanAsText(rows ...Row) {
	for _, r := range rows {
		for i := range r {
			switch v := r[i].Value.(type) {
			case float64:
				if math.IsNaN(v) {
					r[i].Value = "NaN float64"
				}
			case float32:
				if math.IsNaN(float64(v)) {
					r[i].Value = "NaN float32"
				}
			}
		}
	}
}

// outboxOf is an outbox event with its payload parsed, so that the JSON
// text's spacing does not count.
func outboxOf(t *testing.T, ch Change) any {
	if ch.Outbox == nil {
		return nil
	}
	o := *ch.Outbox
	var payload any
	if len(o.Payload) > 0 {
		if err := json.Unmarshal(o.Payload, &payload); err != nil {
			t.Errorf("outbox payload %s: %v", o.Payload, err)
		}
	}
	o.Payload = nil
	return []any{o, payload}
}

func markerStatus(ch Change) string {
	if ch.TxMark == nil {
		return ""
	}
	return ch.TxMark.Status
}

// renameAvro gives JSON-decoded rows the Avro names of their columns.
func renameAvro(rows ...Row) {
	for _, r := range rows {
		for i := range r {
			r[i].Name = avroName(r[i].Name)
		}
	}
}

func renameColumns(cols []Column) []Column {
	if cols == nil {
		return nil
	}
	out := make([]Column, len(cols))
	for i, c := range cols {
		c.Name = avroName(c.Name)
		if c.TypeErr != nil {
			c.TypeErr = errors.New(strings.ReplaceAll(c.TypeErr.Error(), `"`+cols[i].Name+`"`, `"`+c.Name+`"`))
		}
		out[i] = c
	}
	return out
}

// TestAvroSchemaFetchedOnce: a decoder asks its SchemaSource once per id,
// however many records carry it.
func TestAvroSchemaFetchedOnce(t *testing.T) {
	f := fixtureNamed(t, loadFixtures(t), "shipped_avro")
	d := NewDecoder(f.options())
	for _, r := range f.records {
		if _, err := d.Decode(toRecord(r)); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.schemas.fetches) == 0 {
		t.Fatal("no schema fetched")
	}
	for id, n := range f.schemas.fetches {
		if n != 1 {
			t.Errorf("schema id %d fetched %d times", id, n)
		}
	}
}

// diffRows reports the fields in which two row images differ.
func diffRows(t *testing.T, where string, want, got Row) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: JSON %d fields, Avro %d", where, len(want), len(got))
		return
	}
	for i := range want {
		if !reflect.DeepEqual(want[i], got[i]) {
			t.Errorf("%s field %s:\n JSON %.200v\n Avro %.200v", where, want[i].Name, want[i], got[i])
		}
	}
}

// failingSchemas is a registry that cannot be reached.
type failingSchemas struct{}

func (failingSchemas) Schema(uint32) (string, error) { return "", errors.New("connection refused") }

// TestAvroBadInput: a record that is not in the wire format, one whose id
// the registry does not know and one whose body its schema does not read
// are the record's fault — a DecodeError naming the id — while a registry
// that cannot be reached is not: a SchemaUnavailableError, no DecodeError.
func TestAvroBadInput(t *testing.T) {
	f := fixtureNamed(t, loadFixtures(t), "shipped_avro")
	var good Record
	for _, r := range f.records {
		if strings.HasSuffix(r.Topic, ".public.all_types") {
			good = toRecord(r)
			break
		}
	}
	with := func(value []byte) Record { r := good; r.Value = value; return r }
	id := good.Value[1:5]
	unknown := append([]byte{0, 0x7f, 0xff, 0xff, 0xff}, good.Value[5:]...)
	cases := []struct {
		name string
		rec  Record
		want []string
		is   error
	}{
		{"no magic byte", with(append([]byte{1}, good.Value[1:]...)), []string{"value"}, ErrNoMagicByte},
		{"too short", with([]byte{0, 0, 0}), []string{"value"}, ErrNoMagicByte},
		{"unknown id", with(unknown), []string{"schema id 2147483647"}, ErrUnknownSchemaID},
		{"truncated body", with(good.Value[:len(good.Value)/2]), []string{fmt.Sprintf("schema id %d", binary.BigEndian.Uint32(id))}, ErrSchemaMismatch},
		{"trailing bytes", with(append(append([]byte{}, good.Value...), 1, 2, 3)), []string{"bytes left after the Avro body"}, ErrSchemaMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewDecoder(f.options()).Decode(c.rec)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, c.is) {
				t.Fatalf("got %v, want a DecodeError wrapping %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	opts := f.options()
	opts.Schemas = failingSchemas{}
	_, err := NewDecoder(opts).Decode(good)
	var su *SchemaUnavailableError
	var de *DecodeError
	if !errors.As(err, &su) || errors.As(err, &de) {
		t.Fatalf("registry down: got %T %v, want a SchemaUnavailableError only", err, err)
	}
	// The key is decoded first: its schema is the one asked for.
	if keyID := binary.BigEndian.Uint32(good.Key[1:5]); su.ID != keyID {
		t.Errorf("SchemaUnavailableError.ID = %d, want the key's %d", su.ID, keyID)
	}
}
