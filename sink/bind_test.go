package sink

import (
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestBinders: decimal.handling.mode=string text, as Debezium 3.6.1 sends
// it, becomes the exact value of its target column's type; other columns
// and other values are left as they are.
func TestBinders(t *testing.T) {
	num := func(v int64, exp int32) pgtype.Numeric {
		return pgtype.Numeric{Int: big.NewInt(v), Exp: exp, Valid: true}
	}
	nan := pgtype.Numeric{NaN: true, Valid: true}
	inf := pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}
	ninf := pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	for _, c := range []struct {
		typ      string
		in, want any
	}{
		{"numeric", "NAN", nan},
		{"numeric", "POSITIVE_INFINITY", inf},
		{"numeric", "NEGATIVE_INFINITY", ninf},
		{"numeric(12,2)", "-9999999999.99", num(-999999999999, -2)},
		{"numeric", "0." + strings.Repeat("0", 999) + "12345", num(12345, -1004)},
		{"money", "12.34", num(1234, -2)},
		{"numeric", num(5, 0), num(5, 0)}, // precise mode: already a Numeric
		{"double precision", "NAN", math.NaN()},
		{"double precision", "POSITIVE_INFINITY", math.Inf(1)},
		{"double precision", "0.1", 0.1},
		{"real", "NEGATIVE_INFINITY", float32(math.Inf(-1))},
		{"real", "0.1", float32(0.1)},
		{"real", "-0.000e5", float32(0)},
		{"bigint", "-9223372036854775808", int64(math.MinInt64)},
		{"bigint", "12.00", int64(12)},
		{"integer", "1.2E+3", int32(1200)},
		{"smallint", "-32768", int16(-32768)},
		{"integer[]", []any{"7", nil}, []any{int32(7), nil}},
		{"double precision", "4.9e-324", 4.9e-324},
		{"numeric[]", []pgtype.Text{{String: "NAN", Valid: true}, {}, {String: "1.5", Valid: true}}, []any{nan, nil, num(15, -1)}},
		{"numeric(5,1)[]", []any{"POSITIVE_INFINITY", nil}, []any{inf, nil}},
	} {
		b := binderFor(c.typ)
		if b == nil {
			t.Errorf("%s: no binder", c.typ)
			continue
		}
		got, err := b(c.in)
		if err != nil || !sameValue(got, c.want) {
			t.Errorf("%s %v: got %#v, %v; want %#v", c.typ, c.in, got, err, c.want)
		}
	}
	for _, typ := range []string{"text", "character varying(20)", "interval", "jsonb", "text[]", "boolean"} {
		if binderFor(typ) != nil {
			t.Errorf("%s has a binder: its values are written as Debezium sent them", typ)
		}
	}
	for typ, bad := range map[string]any{"numeric": "1,5", "double precision": "x", "numeric[]": []any{"1", "y"},
		"real": "1e-46", "double precision[]": []any{"0." + strings.Repeat("0", 999) + "1"},
		"bigint": "NAN", "integer": "1.5", "smallint": "32768", "integer[]": []any{"2147483648"}} {
		if got, err := binderFor(typ)(bad); err == nil {
			t.Errorf("%s %v: got %#v, want an error", typ, bad, got)
		}
	}
}

// sameValue compares Numerics by value (their big.Int pointers differ) and
// floats with NaN equal to NaN.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case pgtype.Numeric:
		g, ok := got.(pgtype.Numeric)
		return ok && g.Valid == w.Valid && g.NaN == w.NaN && g.InfinityModifier == w.InfinityModifier && g.Exp == w.Exp &&
			(w.Int == nil) == (g.Int == nil) && (w.Int == nil || g.Int.Cmp(w.Int) == 0)
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || math.IsNaN(g) && math.IsNaN(w))
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameValue(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}
