package debezium

import (
	"bytes"
	"encoding/json"
)

// outbox decodes an Outbox Event Router record. It returns the part at
// fault with an error.
func (d *Decoder) outbox(rec *Record, ch *Change) (string, error) {
	o := &d.opts.Outbox
	ev := &OutboxEvent{}
	ch.Kind, ch.Outbox = KindOutbox, ev
	id, err := d.outboxKey(rec)
	if err != nil {
		return "key", err
	}
	ev.AggregateID = id
	for _, h := range rec.Headers {
		switch h.Key {
		case o.EventIDHeader:
			ev.EventID = headerString(h.Value)
		case o.TypeHeader:
			ev.Type = headerString(h.Value)
		}
	}
	if ev.EventID == "" {
		return "header " + o.EventIDHeader, mismatch("outbox record without an event id")
	}
	s := &scanner{data: rec.Value}
	if !d.opts.Schemaless {
		// The payload's schema only describes the JSON already in hand.
		if _, s, err = d.unwrap(rec.Topic, rec.Value, nil, false, d.compileValue); err != nil {
			return "value", err
		}
	}
	if err := d.outboxPayload(s, ev); err != nil {
		return "value", at("payload", err)
	}
	if !d.opts.Schemaless {
		if err := s.expect('}'); err != nil {
			return "value", err
		}
	}
	return "value", s.end()
}

// outboxKey reads the aggregate id: a string key as is, anything else as
// its JSON text.
func (d *Decoder) outboxKey(rec *Record) (string, error) {
	if rec.Key == nil {
		return "", nil
	}
	s := &scanner{data: rec.Key}
	if !d.opts.Schemaless {
		var err error
		if _, s, err = d.unwrap(rec.Topic, rec.Key, nil, true, d.compileValue); err != nil {
			return "", err
		}
	}
	var id string
	var err error
	if s.peek() == '"' {
		id, err = s.string()
	} else {
		var raw []byte
		raw, err = s.skip()
		id = string(raw)
	}
	if err != nil {
		return "", at("payload", err)
	}
	if !d.opts.Schemaless {
		if err := s.expect('}'); err != nil {
			return "", err
		}
	}
	return id, s.end()
}

// outboxPayload reads the payload: expanded JSON, or a JSON string whose
// content is the payload text; with Envelope, an object carrying it in
// PayloadField beside the additional fields.
func (d *Decoder) outboxPayload(s *scanner, ev *OutboxEvent) error {
	o := &d.opts.Outbox
	if !o.Envelope {
		p, err := payloadText(s)
		ev.Payload = p
		return err
	}
	if err := s.objectStart(); err != nil {
		return mismatch("an outbox envelope must be an object")
	}
	ev.Fields = map[string]any{}
	for first := true; ; first = false {
		key, escaped, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		name := string(key)
		if escaped {
			b, err := unescape(key)
			if err != nil {
				return s.fail("%v", err)
			}
			name = string(b)
		}
		switch name {
		case o.PayloadField:
			ev.Payload, err = payloadText(s)
		default:
			var raw []byte
			if raw, err = s.skip(); err == nil {
				var v any
				err = json.Unmarshal(raw, &v)
				ev.Fields[name] = v
				if str, ok := v.(string); ok && name == o.TypeField {
					ev.Type = str
				}
			}
		}
		if err != nil {
			return at(name, err)
		}
	}
}

func payloadText(s *scanner) ([]byte, error) {
	if s.null() {
		return nil, nil
	}
	var raw []byte
	var err error
	if s.peek() == '"' {
		raw, err = s.stringBytes()
	} else {
		raw, err = s.skip()
	}
	// Copied: the Change must not alias the caller's record buffer.
	return bytes.Clone(raw), err
}

// headerString reads a header written by a string converter or, quoted, by
// JsonConverter.
func headerString(v []byte) string {
	if len(v) >= 2 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}
