package decimal

import (
	"math/big"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestParse(t *testing.T) {
	num := func(v int64, exp int32) pgtype.Numeric {
		return pgtype.Numeric{Int: big.NewInt(v), Exp: exp, Valid: true}
	}
	for _, c := range []struct {
		in   string
		want pgtype.Numeric
	}{
		{"-12.34", num(-1234, -2)},
		{"+7", num(7, 0)},
		{"1E+5", num(1, 5)},
		{"2.50e-3", num(250, -5)},
		{"0.00", num(0, -2)},
		{"NAN", pgtype.Numeric{NaN: true, Valid: true}},
		{"Infinity", pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}},
		{"-infinity", pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}},
		// Debezium 3.6.1's spellings under decimal.handling.mode=string.
		{"POSITIVE_INFINITY", pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}},
		{"NEGATIVE_INFINITY", pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}},
		{"-0.0000", num(0, -4)},
		{"0." + strings.Repeat("0", 999) + "12345", num(12345, -1004)},
	} {
		got, err := Parse([]byte(c.in))
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got.Valid != c.want.Valid || got.NaN != c.want.NaN || got.InfinityModifier != c.want.InfinityModifier ||
			got.Exp != c.want.Exp || (c.want.Int != nil && got.Int.Cmp(c.want.Int) != 0) {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "abc", "1.2.3", "1e", "1e++2", "1e--2", "1e99999999999", "1x", "POSITIVE_INFINITYX", "infinit"} {
		if got, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestSpecialSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"NAN": "NaN", "nan": "NaN", "POSITIVE_INFINITY": "Infinity", "Infinity": "Infinity", "inf": "Infinity",
		"NEGATIVE_INFINITY": "-Infinity", "-infinity": "-Infinity", "1.5": "", "": "", "-": "",
	} {
		if got := Special([]byte(in)).PostgreSQL(); got != want {
			t.Errorf("Special(%q).PostgreSQL() = %q, want %q", in, got, want)
		}
	}
}

// TestParseAroundSmallDigits: values on both sides of the digit count read
// without math/big are read alike, by both entry points.
func TestParseAroundSmallDigits(t *testing.T) {
	for _, in := range []string{"9999999999999999999", "18446744073709551615", "99999999999999999999.5", "-1234567890123456789.0123",
		"0000000000000000000000001", "1" + strings.Repeat("0", 40), "-0.0000000000000000000000000000000000000001e-5"} {
		got, err := Parse([]byte(in))
		gotS, errS := ParseString(in)
		mantissa, _, _ := strings.Cut(strings.ReplaceAll(strings.TrimLeft(in, "-"), ".", ""), "e")
		want, _ := new(big.Int).SetString(mantissa, 10)
		if strings.HasPrefix(in, "-") {
			want.Neg(want)
		}
		if err != nil || errS != nil || got.Int.Cmp(want) != 0 || gotS.Int.Cmp(want) != 0 || got.Exp != gotS.Exp {
			t.Errorf("Parse(%q) = %v e%d, %v; ParseString %v e%d, %v; want %v", in, got.Int, got.Exp, err, gotS.Int, gotS.Exp, errS, want)
		}
	}
}
