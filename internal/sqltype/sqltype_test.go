package sqltype

import (
	"regexp"
	"testing"
)

func TestParseRendersCanonically(t *testing.T) {
	tests := map[string]string{
		"numeric(12,2)":                    "numeric(12,2)",
		"decimal(5)":                       "numeric(5)",
		"numeric(5,-2)":                    "numeric(5,-2)",
		"integer[]":                        "integer[]",
		"int4[][]":                         "integer[]",
		"timestamp(3) with time zone":      "timestamp(3) with time zone",
		"timestamp with time zone":         "timestamp with time zone",
		"timestamptz(6)":                   "timestamp(6) with time zone",
		"time without time zone":           "time without time zone",
		"character varying(20)":            "character varying(20)",
		"varchar(20)":                      "character varying(20)",
		"bpchar":                           "bpchar",
		"bit varying":                      "bit varying",
		"double precision":                 "double precision",
		"mood":                             `"mood"`,
		`"mood"`:                           `"mood"`,
		`"mood"[]`:                         `"mood"[]`,
		"interval(3)":                      "interval(3)",
		"timestamp without time zone(3)":   "timestamp(3) without time zone",
		"numeric(1000,-1000)":              "numeric(1000,-1000)",
		"character varying(10485760)":      "character varying(10485760)",
		"bit varying(83886080)":            "bit varying(83886080)",
		"time(0) with time zone":           "time(0) with time zone",
		"a_very_long_type_name_0123456789": `"a_very_long_type_name_0123456789"`,
	}
	for in, want := range tests {
		got, err := Parse(in)
		if err != nil || got.String() != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		"", "numeric(10,2)); DROP TABLE victim; --", "numeric(10,2); DROP TABLE victim",
		"text not null default 1", `text"; DROP TABLE x; --`, "Text", `"Mood"`, `"int"`, `"mo""od"`,
		"numeric(0)", "numeric(1001)", "numeric(10,1001)", "numeric(10,-1001)", "numeric(1,2,3)", "numeric()",
		"numeric( 10)", "varchar(0)", "varchar(10485761)", "bit(83886081)", "timestamp(7)", "time(-1)",
		"integer(4)", "mood(3)", "numeric(10", "numeric10)", "1type", "type-name", "integer[", "integer[] ",
		"public.mood", "timestamp(3) with time zone extra", "numeric(99999999999999999999)",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm",
	} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", in, got)
		}
	}
}

func TestNewChecksLimits(t *testing.T) {
	if _, err := New("numeric", 10, 2); err != nil {
		t.Errorf("numeric(10,2): %v", err)
	}
	for _, bad := range [][]int{{0}, {1001}, {10, 1001}, {10, -1001}, {1, 2, 3}} {
		if _, err := New("numeric", bad...); err == nil {
			t.Errorf("numeric%v accepted", bad)
		}
	}
}

// rendered is every text String may produce: a builtin's spelling or a
// quoted lowercase name, integer modifiers, an array mark.
var rendered = regexp.MustCompile(`^([a-z ]+|"[a-z_][a-z0-9_]*")(\(-?[0-9]+(,-?[0-9]+)?\))?( with(out)? time zone)?(\[\])?$`)

// FuzzParse: whatever text a record gives as a type, what Parse accepts
// renders as fixed spellings, one quoted name and integers, and parses
// back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"numeric(12,2)", "numeric(10,2)); DROP TABLE victim; --", "timestamp(3) with time zone",
		`"mood"[]`, "text not null default 'x'", "character varying(20)", "bit varying(8)", "interval(6)", "int4[][]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, err := Parse(s)
		if err != nil {
			return
		}
		out := typ.String()
		if !rendered.MatchString(out) {
			t.Fatalf("Parse(%q) renders as %q", s, out)
		}
		again, err := Parse(out)
		if err != nil || again.String() != out {
			t.Fatalf("Parse(%q) renders as %q, which parses to %q, %v", s, out, again, err)
		}
	})
}
