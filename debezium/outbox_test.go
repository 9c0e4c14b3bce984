package debezium

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestOutboxForms decodes the recorded OrderCreated event as the Event
// Router would also have sent it with other settings: the payload as a JSON
// string (table.expand.json.payload=false), and the type placed in the
// envelope (table.fields.additional.placement=type:envelope:type).
func TestOutboxForms(t *testing.T) {
	rec, f := fixtureRecord(t, loadFixtures(t), "identity_default", ".outbox.event.Order", 0)
	var value struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(rec.Value, &value); err != nil {
		t.Fatal(err)
	}
	asString, _ := json.Marshal(string(value.Payload))
	withoutType := func(r Record) Record {
		var kept []Header
		for _, h := range r.Headers {
			if h.Key != "eventType" {
				kept = append(kept, h)
			}
		}
		r.Headers = kept
		return r
	}
	cases := []struct {
		name      string
		outbox    OutboxOptions
		value     string
		rec       func(Record) Record
		wantType  string
		wantField map[string]any
	}{
		{name: "expanded JSON, type header", value: string(rec.Value), wantType: "OrderCreated"},
		{name: "JSON string payload", value: `{"schema":{"type":"string","optional":true},"payload":` + string(asString) + `}`, wantType: "OrderCreated"},
		{name: "type in the envelope", outbox: OutboxOptions{Envelope: true}, rec: withoutType,
			value:    `{"schema":{"type":"struct","fields":[]},"payload":{"payload":` + string(value.Payload) + `,"type":"OrderCreated","region":"eu"}}`,
			wantType: "OrderCreated", wantField: map[string]any{"type": "OrderCreated", "region": "eu"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rec
			r.Value = []byte(c.value)
			if c.rec != nil {
				r = c.rec(r)
			}
			opts := f.options()
			opts.Outbox = c.outbox
			ch, err := NewDecoder(opts).Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			ev := ch.Outbox
			if ch.Kind != KindOutbox || ev.AggregateID != "order-1" || ev.EventID != "11111111-1111-1111-1111-111111111111" || ev.Type != c.wantType {
				t.Errorf("got kind %d, aggregate %q, event %q, type %q; want outbox, order-1, 1111…, %q", ch.Kind, ev.AggregateID, ev.EventID, ev.Type, c.wantType)
			}
			var got, want any
			if json.Unmarshal(ev.Payload, &got) != nil || json.Unmarshal(value.Payload, &want) != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("payload %s, want %s", ev.Payload, value.Payload)
			}
			if c.wantField != nil && !reflect.DeepEqual(ev.Fields, c.wantField) {
				t.Errorf("fields %v, want %v", ev.Fields, c.wantField)
			}
			if strings.Contains(string(ev.Payload), `\"`) {
				t.Errorf("payload %s is still JSON-string escaped", ev.Payload)
			}
		})
	}
}
