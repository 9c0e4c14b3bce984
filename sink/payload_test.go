package sink

import (
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// path builds a JSONPath the way configuration parses it.
func path(t *testing.T, source string) config.JSONPath {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(`kafka: {bootstrap.servers: x, group.id: g}
postgres: {url: postgres://x/y}
tables:
  - {topic: t, format: outbox, target: public.t, key: [k], payload: {k: "`+source+`"}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("path %s: %v", source, err)
	}
	return cfg.Tables[0].Payload["k"]
}

func TestPayloadText(t *testing.T) {
	const doc = `{"id":"order-1","n":7,"amount":19.99,"ok":true,"none":null,
		"lines":[{"sku":"A","qty":2}],"weird key":{"x":"y"},"quote":"say \"hi\""}`
	tests := []struct {
		payload, path, typ string
		want               any
		err                string // a substring of the error; empty: no error
	}{
		{doc, "$.id", "text", "order-1", ""},
		{doc, "$.n", "bigint", "7", ""},
		{doc, "$.amount", "numeric(12,2)", "19.99", ""},
		{doc, "$.ok", "boolean", "true", ""},
		{doc, "$.none", "text", nil, ""},
		{doc, "$.lines[0].sku", "text", "A", ""},
		{doc, "$.lines[0]", "jsonb", `{"sku":"A","qty":2}`, ""},
		{doc, "$.lines", "json", `[{"sku":"A","qty":2}]`, ""},
		{doc, "$['weird key'].x", "text", "y", ""},
		{doc, "$.quote", "text", `say "hi"`, ""},
		{doc, "$.quote", "jsonb", `"say \"hi\""`, ""},
		{doc, "$", "jsonb", strings.TrimSpace(doc), ""},
		// The router without table.expand.json.payload sends a JSON string.
		{`"{\"id\":\"order-2\"}"`, "$.id", "text", "order-2", ""},
		{doc, "$.missing", "text", nil, `no member "missing"`},
		{doc, "$.lines[3].sku", "text", nil, "no element [3] in an array of 1"},
		{doc, "$.id.x", "text", nil, `member "x" of a JSON string`},
		{doc, "$.n[0]", "text", nil, "[0] of a JSON number"},
		{doc, "$.lines", "text", nil, "selects a JSON array, which a text column cannot take"},
		{doc, "$['weird key']", "bigint", nil, "selects a JSON object"},
		{`{"id":`, "$.id", "text", nil, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.path+"_"+tc.typ, func(t *testing.T) {
			p, err := newPayload([]byte(tc.payload))
			var got any
			if err == nil {
				got, err = p.text(path(t, tc.path), tc.typ)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("%s as %s: %v", tc.path, tc.typ, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("%s as %s: error %v, want one containing %q", tc.path, tc.typ, err, tc.err)
			case got != tc.want:
				t.Fatalf("%s as %s = %#v, want %#v", tc.path, tc.typ, got, tc.want)
			}
		})
	}
}
