package decimal

import (
	"math/big"
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
	for _, bad := range []string{"", "-", ".", "abc", "1.2.3", "1e", "1e++2", "1e--2", "1e99999999999", "1x"} {
		if got, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}
