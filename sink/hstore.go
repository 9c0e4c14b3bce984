package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// bindHstore writes Debezium's hstore into an hstore column. Debezium
// sends it as a JSON object of string or null values: the text of one under
// hstore.handling.mode=json (its default), the object itself under
// hstore.handling.mode=map. PostgreSQL's hstore input reads neither (it
// raises an internal error, XX000, at the first space or on "{}"), so the
// object is rewritten in hstore's own text form, which the bound parameters
// send as text and the binary COPY parses with the column's codec.
//
// A string that is not a JSON object is left as it is, for PostgreSQL's
// hstore input to judge: it may already be hstore text, from a producer
// other than Debezium.
func bindHstore(v any) (any, error) {
	var obj []byte
	switch x := v.(type) {
	case string:
		obj = []byte(x)
	case json.RawMessage:
		obj = x
	default:
		return v, nil
	}
	if t := bytes.TrimLeft(obj, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return v, nil
	}
	var pairs map[string]*string
	if err := json.Unmarshal(obj, &pairs); err != nil {
		return nil, fmt.Errorf("hstore: not a JSON object of strings and nulls: %w", err)
	}
	return hstoreText(pairs), nil
}

// hstoreText is pairs in hstore's text form: every key and value quoted,
// with '"' and '\' escaped by a backslash, a missing value as NULL. Keys
// are sorted so that the text is the same for the same pairs; hstore keeps
// its own order whatever the input's.
func hstoreText(pairs map[string]*string) string {
	keys := make([]string, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		hstoreQuote(&b, k)
		b.WriteString("=>")
		if v := pairs[k]; v != nil {
			hstoreQuote(&b, *v)
		} else {
			b.WriteString("NULL")
		}
	}
	return b.String()
}

// bindHstoreArray writes an hstore[] from Debezium's array of hstore
// objects (or JSON texts of them) as one string, the array's text form.
// Element by element, pgx would bind the strings in hstore's binary form
// once the connection knows hstore's codec (see pgcopy), which a string
// does not have; one string is sent as text by the bound parameters and
// parsed into the array by the binary COPY.
func bindHstoreArray(v any) (any, error) {
	var elems []any
	switch a := v.(type) {
	case []pgtype.Text:
		elems = make([]any, len(a))
		for i, t := range a {
			if t.Valid {
				elems[i] = t.String
			}
		}
	case []any:
		elems = a
	default:
		return v, nil
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if e == nil {
			b.WriteString("NULL")
			continue
		}
		h, err := bindHstore(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		text, ok := h.(string)
		if !ok {
			return nil, fmt.Errorf("[%d]: hstore: %T is not an hstore", i, e)
		}
		hstoreQuote(&b, text)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// hstoreQuote writes s double-quoted, '"' and '\' escaped: the quoting of
// hstore's keys and values and of array elements alike.
func hstoreQuote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// isHstore reports whether a format_type text names hstore, which it
// qualifies with its schema when that is not on the search path.
func isHstore(typ string) bool {
	return typ == "hstore" || strings.HasSuffix(typ, ".hstore")
}
