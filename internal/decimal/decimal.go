package decimal

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// maxDigits bounds the digits Parse accepts; PostgreSQL's
// numeric holds up to 131072 before and 16383 after the point.
const maxDigits = 147455

// Parse reads decimal.handling.mode=string text ("-12.34", "1E+5",
// "NaN", "Infinity") into a Numeric, exactly.
func Parse(b []byte) (pgtype.Numeric, error) {
	switch Special(b) {
	case NaN:
		return pgtype.Numeric{NaN: true, Valid: true}, nil
	case PositiveInfinity:
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case NegativeInfinity:
		return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	if len(b) > maxDigits {
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
		e, err := parseExponent(trimPlus(b[i+1:]))
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

// Kind tells a finite decimal from the special values.
type Kind uint8

const (
	Finite Kind = iota
	NaN
	PositiveInfinity
	NegativeInfinity
)

// Special reports which special value b spells, in any of the spellings
// that reach pgsink: PostgreSQL's ("NaN", "Infinity", "-Infinity", "inf",
// any case) and Debezium 3.6.1's under decimal.handling.mode=string
// ("NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY"), which PostgreSQL
// refuses but for "NAN". Finite for anything else.
func Special(b []byte) Kind {
	if len(b) < 3 || len(b) > len("NEGATIVE_INFINITY") {
		return Finite
	}
	switch strings.ToLower(string(b)) {
	case "nan":
		return NaN
	case "infinity", "+infinity", "inf", "+inf", "positive_infinity":
		return PositiveInfinity
	case "-infinity", "-inf", "negative_infinity":
		return NegativeInfinity
	}
	return Finite
}

// PostgreSQL returns the spelling PostgreSQL's numeric and float inputs
// accept for a special value k: "NaN", "Infinity" or "-Infinity".
func (k Kind) PostgreSQL() string {
	switch k {
	case NaN:
		return "NaN"
	case PositiveInfinity:
		return "Infinity"
	case NegativeInfinity:
		return "-Infinity"
	}
	return ""
}

func trimPlus(b []byte) []byte {
	if len(b) > 0 && b[0] == '+' {
		return b[1:]
	}
	return b
}

// parseExponent reads a signed decimal int32 of at most 19 digits.
func parseExponent(b []byte) (int64, error) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || strings.ContainsAny(string(digits), "+-") {
		return 0, fmt.Errorf("%q is not an integer of 32 bits", string(b))
	}
	return strconv.ParseInt(string(b), 10, 32)
}
