package dedup

import (
	"bytes"
	"testing"

	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// TestEnvelopeSplitJoin: a JsonConverter record splits into its schema and
// payload and joins back byte for byte, its schema recognised from the
// cache the second time; anything else is not split.
func TestEnvelopeSplitJoin(t *testing.T) {
	e := newEnvelopes()
	value := []byte(`{"schema":{"type":"struct","fields":[{"type":"string","optional":true,"field":"a}"}]},"payload":{"a":"x,\"payload\":"}}`)
	other := []byte(`{"schema":{"type":"int64"},"payload":7}`)
	for round := range 2 {
		for _, data := range [][]byte{value, other} {
			s, payload, ok := e.split(data)
			if !ok {
				t.Fatalf("round %d: %s not split", round, data)
			}
			if got := jsonenvelope.Join(s.raw, payload); !bytes.Equal(got, data) {
				t.Fatalf("round %d: joined %s, want %s", round, got, data)
			}
			if raw, ok := e.schema(s.digest); !ok || !bytes.Equal(raw, s.raw) {
				t.Fatalf("round %d: schema of digest %x = %s, %v", round, s.digest, raw, ok)
			}
		}
	}
	if len(e.recent) != 2 {
		t.Errorf("%d schemas cached, want 2", len(e.recent))
	}
	for _, data := range []string{
		"\x00\x00\x00\x00\x01avro", // Confluent/Apicurio wire format
		`{"id":1}`,                 // no schemas
		`{"payload":{"id":1},"schema":{"type":"int"}}`,  // payload first
		`{"schema": {"type":"int64"}, "payload": 7}`,    // blanks between members
		`{"schema":{"type":"int64"`,                     // cut short
		`{"schema":{"type":"int64"},"payload":7,"x":1}`, // another member: joins as it was
	} {
		s, payload, ok := e.split([]byte(data))
		if ok && !bytes.Equal(jsonenvelope.Join(s.raw, payload), []byte(data)) {
			t.Errorf("%q split into %q and %q, which do not join back", data, s.raw, payload)
		}
		if !ok && data == `{"schema":{"type":"int64"},"payload":7,"x":1}` {
			t.Errorf("%q not split, though it joins back whole", data)
		}
	}
	for _, data := range []string{"\x00\x00\x00\x00\x01avro", `{"id":1}`, `{"payload":{"id":1},"schema":{"type":"int"}}`, `{"schema":{"type":"int64"`} {
		if _, _, ok := e.split([]byte(data)); ok {
			t.Errorf("%q split; it is no JsonConverter envelope", data)
		}
	}
}
