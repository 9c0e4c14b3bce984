package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pgsink/pgsink/config"
)

// payload evaluates JSON paths against one outbox event's payload. It walks
// raw JSON, so a value selected for a json or jsonb column keeps its text.
type payload struct {
	root json.RawMessage
	top  map[string]json.RawMessage // the root object's members, decoded once
}

// newPayload prepares the payload text of an event. A payload that is a
// JSON string holding an object or array (the router without
// table.expand.json.payload) is read as that object or array.
func newPayload(text []byte) (*payload, error) {
	root := bytes.TrimSpace(text)
	if !json.Valid(root) {
		return nil, errors.New("payload is not valid JSON")
	}
	if root[0] == '"' {
		var inner string
		if err := json.Unmarshal(root, &inner); err == nil {
			in := bytes.TrimSpace([]byte(inner))
			if len(in) > 0 && (in[0] == '{' || in[0] == '[') && json.Valid(in) {
				root = in
			}
		}
	}
	return &payload{root: root}, nil
}

// text returns the value at path as the text PostgreSQL casts to the
// column's type: a JSON string's content, a number or boolean as written,
// nil for JSON null. Objects and arrays fit only json and jsonb columns,
// which receive the JSON text itself (strings quoted). A missing member or
// element, or a value of the wrong JSON kind, is an error.
func (p *payload) text(path config.JSONPath, columnType string) (any, error) {
	raw := p.root
	for i, step := range path.Steps {
		var err error
		if raw, err = p.step(raw, i, step); err != nil {
			return nil, fmt.Errorf("payload path %s: %w", path.Source, err)
		}
	}
	raw = bytes.TrimSpace(raw)
	jsonColumn := columnType == "json" || columnType == "jsonb"
	switch raw[0] {
	case 'n':
		return nil, nil
	case '{', '[':
		if !jsonColumn {
			return nil, fmt.Errorf("payload path %s selects a JSON %s, which a %s column cannot take", path.Source, kindOf(raw), columnType)
		}
		return string(raw), nil
	case '"':
		if jsonColumn {
			return string(raw), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("payload path %s: %w", path.Source, err)
		}
		return s, nil
	}
	return string(raw), nil // a number, true or false
}

func (p *payload) step(raw json.RawMessage, i int, step config.PathStep) (json.RawMessage, error) {
	if step.IsIndex {
		var elems []json.RawMessage
		if kindOf(raw) != "array" || json.Unmarshal(raw, &elems) != nil {
			return nil, fmt.Errorf("[%d] of a JSON %s, not an array", step.Index, kindOf(raw))
		}
		if step.Index >= len(elems) {
			return nil, fmt.Errorf("no element [%d] in an array of %d", step.Index, len(elems))
		}
		return elems[step.Index], nil
	}
	members := p.top
	if i > 0 || members == nil {
		if kindOf(raw) != "object" || json.Unmarshal(raw, &members) != nil {
			return nil, fmt.Errorf("member %q of a JSON %s, not an object", step.Member, kindOf(raw))
		}
		if i == 0 {
			p.top = members
		}
	}
	v, ok := members[step.Member]
	if !ok {
		return nil, fmt.Errorf("no member %q", step.Member)
	}
	return v, nil
}

// kindOf names the JSON kind of a valid JSON text, for messages.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}
