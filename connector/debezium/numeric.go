package debezium

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// decimalFromBytes reads Connect's Decimal: the unscaled value as big-endian
// two's complement bytes. An empty value is zero (Debezium sends one for
// 0.00 in some versions).
func decimalFromBytes(b []byte, scale int32) pgtype.Numeric {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		// Negative: subtract 2^(8*len) to undo the two's complement.
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return pgtype.Numeric{Int: n, Exp: -scale, Valid: true}
}

// variableDecimal reads io.debezium.data.VariableScaleDecimal, {scale,
// value}, exactly: never through a float.
func variableDecimal(s *scanner) (any, error) {
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a VariableScaleDecimal struct")
	}
	var scale int64
	var unscaled []byte
	var haveScale, haveValue bool
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "scale":
			scale, err = s.int(32)
			haveScale = true
		case "value":
			unscaled, err = base64Value(s)
			haveValue = true
		default:
			err = mismatch("unexpected field in VariableScaleDecimal")
		}
		if err != nil {
			return nil, at(string(key), err)
		}
	}
	if !haveScale || !haveValue {
		return nil, mismatch("VariableScaleDecimal needs scale and value")
	}
	return decimalFromBytes(unscaled, int32(scale)), nil
}

// maxDecimalDigits bounds the digits parseDecimal accepts; PostgreSQL's
// numeric holds up to 131072 before and 16383 after the point.
const maxDecimalDigits = 147455

// parseDecimal reads decimal.handling.mode=string text ("-12.34", "1E+5",
// "NaN", "Infinity") into a Numeric, exactly.
func parseDecimal(b []byte) (pgtype.Numeric, error) {
	// Debezium writes NaN as "NAN" in string mode; PostgreSQL accepts any case.
	switch strings.ToLower(string(b)) {
	case "nan":
		return pgtype.Numeric{NaN: true, Valid: true}, nil
	case "infinity", "+infinity":
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case "-infinity":
		return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	if len(b) > maxDecimalDigits {
		return pgtype.Numeric{}, errors.New("decimal string too long")
	}
	i := 0
	neg := false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	digits := make([]byte, 0, len(b))
	var frac int64
	seenDigit, seenPoint := false, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			seenDigit = true
			if seenPoint {
				frac++
			}
		case c == '.' && !seenPoint:
			seenPoint = true
		default:
			goto exponent
		}
	}
exponent:
	if !seenDigit {
		return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", b)
	}
	var exp int64
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", b)
		}
		e, err := parseInt(trimPlus(b[i+1:]), 32)
		if err != nil {
			return pgtype.Numeric{}, fmt.Errorf("%q: bad exponent", b)
		}
		exp = e
	}
	n, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", b)
	}
	if neg {
		n.Neg(n)
	}
	e := exp - frac
	if e < -1<<31 || e > 1<<31-1 {
		return pgtype.Numeric{}, fmt.Errorf("%q: exponent out of range", b)
	}
	return pgtype.Numeric{Int: n, Exp: int32(e), Valid: true}, nil
}

func trimPlus(b []byte) []byte {
	if len(b) > 0 && b[0] == '+' {
		return b[1:]
	}
	return b
}
