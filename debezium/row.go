package debezium

import (
	"bytes"
	"strings"
)

// jsonAny is the member type of open rows.
var jsonAny = &typ{conv: convJSON, optional: true}

// memberPrefix is the text of a member up to its value, `"name":`, when
// the name needs no JSON escape; nil otherwise (the slow path handles it).
func memberPrefix(name string) []byte {
	if strings.ContainsAny(name, "\"\\") || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 }) >= 0 {
		return nil
	}
	return []byte(`"` + name + `":`)
}

// row decodes a JSON object of column values with the struct type t.
// Members are matched to fields by name; Debezium writes them in schema
// order, so the expected field is tried before the map.
func row(s *scanner, t *typ) (Row, error) {
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a row object")
	}
	var out Row
	if t.open {
		out = Row{}
	} else {
		out = make(Row, len(t.fields))
	}
	seen := 0
	for first, i := true, 0; ; first, i = false, i+1 {
		// Fast path: the member is the expected column, written as Jackson
		// writes it: one comparison instead of scanning the key.
		if i < len(t.fields) && t.fields[i].key != nil {
			p := s.pos
			if !first && p < len(s.data) && s.data[p] == ',' {
				p++
			}
			if (first || p > s.pos) && bytes.HasPrefix(s.data[p:], t.fields[i].key) && out[i].Name == "" {
				s.pos = p + len(t.fields[i].key)
				f := t.fields[i]
				if f.t.optional && s.pos+4 <= len(s.data) && string(s.data[s.pos:s.pos+4]) == "null" {
					s.pos += 4 // NULL, the commonest value of wide rows
					out[i].Name = f.name
					seen++
					continue
				}
				v, unchanged, err := value(s, f.t)
				if err != nil {
					return nil, at(f.name, err)
				}
				out[i] = Field{Name: f.name, Value: v, Unchanged: unchanged}
				seen++
				continue
			}
		}
		raw, escaped, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if escaped {
			// Rare (Debezium's column names need no escapes): resolve first.
			if raw, err = unescape(raw); err != nil {
				return nil, s.fail("%v", err)
			}
		}
		if t.open {
			v, _, err := value(s, jsonAny)
			if err != nil {
				return nil, at(string(raw), err)
			}
			out = append(out, Field{Name: string(raw), Value: v})
			continue
		}
		// Compared and looked up as string(raw): no allocation per column.
		idx := -1
		if i < len(t.fields) && t.fields[i].name == string(raw) {
			idx = i
		} else if j, ok := t.byName[string(raw)]; ok {
			idx = j
		}
		if idx < 0 {
			return nil, at(string(raw), mismatch("column not in the schema"))
		}
		if out[idx].Name != "" {
			return nil, at(string(raw), mismatch("column given twice"))
		}
		f := t.fields[idx]
		v, unchanged, err := value(s, f.t)
		if err != nil {
			return nil, at(f.name, err)
		}
		out[idx] = Field{Name: f.name, Value: v, Unchanged: unchanged}
		seen++
	}
	if t.open || seen == len(t.fields) {
		return out, nil
	}
	if t.schemaless {
		// Compact: a column the payload lacks is left out, never NULLed.
		kept := out[:0]
		for _, f := range out {
			if f.Name != "" {
				kept = append(kept, f)
			}
		}
		return kept, nil
	}
	for i, f := range t.fields {
		if out[i].Name == "" {
			if !f.t.optional {
				return nil, at(f.name, mismatch("required column missing"))
			}
			out[i].Name = f.name
		}
	}
	return out, nil
}
