package sink

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestHstoreBinder: Debezium 3.6.1's hstore values (recorded by the
// fidelity matrix under hstore.handling.mode=json: JSON text; under map:
// the JSON object itself) become hstore's text form, for the column and
// for an array of them.
func TestHstoreBinder(t *testing.T) {
	pairs := `{"a":"1","b":null,"c d":"e"}`
	for _, c := range []struct {
		typ      string
		in, want any
	}{
		{"hstore", pairs, `"a"=>"1", "b"=>NULL, "c d"=>"e"`},
		{"hstore", "{}", ""},
		{"hstore", json.RawMessage(pairs), `"a"=>"1", "b"=>NULL, "c d"=>"e"`},
		{"hstore", `{"q\"k":"back\\slash","":"=>, "}`, `""=>"=>, ", "q\"k"=>"back\\slash"`},
		{"public.hstore", "{}", ""},
		// Not a JSON object: hstore text from another producer, for
		// PostgreSQL's input to judge.
		{"hstore", `"a"=>"1"`, `"a"=>"1"`},
		{"hstore[]", []pgtype.Text{{String: pairs, Valid: true}, {}}, `{"\"a\"=>\"1\", \"b\"=>NULL, \"c d\"=>\"e\"",NULL}`},
		{"hstore[]", []pgtype.Text{{String: pairs, Valid: true}, {String: "{}", Valid: true}}, `{"\"a\"=>\"1\", \"b\"=>NULL, \"c d\"=>\"e\"",""}`},
		{"hstore[]", []pgtype.Text{}, `{}`},
		{"hstore[]", []any{json.RawMessage(`{"x":"\\"}`), nil}, `{"\"x\"=>\"\\\\\"",NULL}`},
	} {
		got, err := binderFor(c.typ)(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: got %#v, %v; want %#v", c.typ, c.in, got, err, c.want)
		}
	}
	for typ, bad := range map[string]any{"hstore": `{"a":1}`, "hstore[]": []any{`{"a":`}} {
		if got, err := binderFor(typ)(bad); err == nil {
			t.Errorf("%s %v: got %#v, want an error", typ, bad, got)
		}
	}
}

// TestBitBinder: Debezium sends bit(1) as a boolean (recorded: true for
// B'1', false for B'0'); it becomes the one bit. bit(n)'s Bits pass.
func TestBitBinder(t *testing.T) {
	one := pgtype.Bits{Bytes: []byte{0x80}, Len: 1, Valid: true}
	zero := pgtype.Bits{Bytes: []byte{0}, Len: 1, Valid: true}
	eight := pgtype.Bits{Bytes: []byte{0xa5}, Len: 8, Valid: true}
	for _, c := range []struct {
		typ      string
		in, want any
	}{
		{"bit(1)", true, one},
		{"bit(1)", false, zero},
		{"bit varying(1)", true, one},
		{"bit(8)", eight, eight},
	} {
		got, err := binderFor(c.typ)(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: got %#v, %v; want %#v", c.typ, c.in, got, err, c.want)
		}
	}
}
