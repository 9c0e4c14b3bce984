package sink

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/internal/decimal"
)

// binder turns a decoded value into the one its target column takes
// exactly, in COPY and in bound parameters alike; nil leaves values as the
// decoder made them.
//
// It exists for decimal.handling.mode=string, whose schema calls a numeric
// a plain string: the decoder keeps Debezium's text, and the column's type
// says how to read it. Left as text, a numeric would reach PostgreSQL
// through its input function, which refuses Debezium's "POSITIVE_INFINITY",
// and binary COPY through pgx's text parser, which refuses "NAN" too; read
// here, both paths send a pgtype.Numeric. A text column takes the string as
// Debezium sent it (no binder).
//
// It also writes values whose Debezium form PostgreSQL's input for the
// column cannot read: hstore's JSON object (bindHstore) and bit(1)'s
// boolean (bindBit).
type binder func(v any) (any, error)

// binderFor returns the binder of a column of PostgreSQL type typ
// (format_type text), or nil.
func binderFor(typ string) binder {
	if elem, ok := strings.CutSuffix(typ, "[]"); ok {
		if isHstore(elem) {
			return bindHstoreArray
		}
		if b := scalarBinder(elem); b != nil {
			return arrayBinder(b)
		}
		return nil
	}
	return scalarBinder(typ)
}

func scalarBinder(typ string) binder {
	base, _, _ := strings.Cut(typ, "(")
	switch base {
	case "numeric", "money":
		return bindNumeric
	case "double precision":
		return bindFloat(64)
	case "real":
		return bindFloat(32)
	case "smallint":
		return bindInteger(16)
	case "integer":
		return bindInteger(32)
	case "bigint":
		return bindInteger(64)
	case "bit", "bit varying":
		return bindBit
	}
	if isHstore(base) {
		return bindHstore
	}
	return nil
}

// bindBit writes Debezium's boolean, which it sends for bit(1) (and bit
// without a length), as the one bit it stands for. Other values (bit(n),
// sent as io.debezium.data.Bits) are already pgtype.Bits.
func bindBit(v any) (any, error) {
	b, ok := v.(bool)
	if !ok {
		return v, nil
	}
	bit := byte(0)
	if b {
		bit = 0x80
	}
	return pgtype.Bits{Bytes: []byte{bit}, Len: 1, Valid: true}, nil
}

func bindNumeric(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	n, err := decimal.ParseString(s)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// bindFloat reads decimal text as PostgreSQL's float input does: rounded
// once, to the nearest value of the column's width.
func bindFloat(bits int) binder {
	return func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return v, nil
		}
		var f float64
		switch decimal.Special(s) {
		case decimal.NaN:
			f = math.NaN()
		case decimal.PositiveInfinity:
			f = math.Inf(1)
		case decimal.NegativeInfinity:
			f = math.Inf(-1)
		default:
			var err error
			if f, err = strconv.ParseFloat(s, bits); err != nil {
				return nil, fmt.Errorf("%q is not a number of %d bits", s, bits)
			}
			if f == 0 && !zero(s) {
				// PostgreSQL's float input refuses an underflow too.
				return nil, fmt.Errorf("%q is out of range for a float of %d bits", s, bits)
			}
		}
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	}
}

// bindInteger reads decimal text into an integer column: a whole number
// in the column's range, whatever its scale ("12.00" is 12); a fraction, a
// special value or an overflow is the record's error, never rounded.
func bindInteger(bits int) binder {
	return func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return v, nil
		}
		if n, err := strconv.ParseInt(s, 10, bits); err == nil {
			return sized(n, bits), nil
		}
		d, err := decimal.ParseString(s)
		if err != nil {
			return nil, err
		}
		if d.NaN || d.InfinityModifier != pgtype.Finite {
			return nil, fmt.Errorf("%q has no integer value", s)
		}
		n := new(big.Int).Set(d.Int)
		ten := big.NewInt(10)
		for e := d.Exp; e < 0; e++ {
			var rem big.Int
			if n.QuoRem(n, ten, &rem); rem.Sign() != 0 {
				return nil, fmt.Errorf("%q is not a whole number", s)
			}
		}
		if d.Exp > 0 {
			n.Mul(n, new(big.Int).Exp(ten, big.NewInt(int64(d.Exp)), nil))
		}
		if !n.IsInt64() || n.Int64() < -1<<(bits-1) || n.Int64() > 1<<(bits-1)-1 {
			return nil, fmt.Errorf("%q is out of range for an integer of %d bits", s, bits)
		}
		return sized(n.Int64(), bits), nil
	}
}

func sized(n int64, bits int) any {
	switch bits {
	case 16:
		return int16(n)
	case 32:
		return int32(n)
	}
	return n
}

// zero reports whether decimal text s spells zero: no digit but 0 before
// its exponent.
func zero(s string) bool {
	mantissa, _, _ := strings.Cut(strings.ToLower(s), "e")
	return strings.Trim(mantissa, "+-.0") == ""
}

// arrayBinder binds each element of the arrays the decoder makes of
// strings ([]pgtype.Text) and of other elements ([]any).
func arrayBinder(elem binder) binder {
	return func(v any) (any, error) {
		switch a := v.(type) {
		case []pgtype.Text:
			out := make([]any, len(a))
			for i, t := range a {
				if !t.Valid {
					continue
				}
				b, err := elem(t.String)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = b
			}
			return out, nil
		case []any:
			out := make([]any, len(a))
			for i, x := range a {
				b, err := elem(x)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = b
			}
			return out, nil
		}
		return v, nil
	}
}
