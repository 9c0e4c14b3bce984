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

// text is what Parse and Special read: bytes from a record, or a string
// the decoder kept.
type text interface{ ~string | ~[]byte }

// Parse reads decimal.handling.mode=string text ("-12.34", "1E+5",
// "NaN", "Infinity") into a Numeric, exactly.
func Parse(b []byte) (pgtype.Numeric, error) { return parse(b) }

// ParseString is Parse for a string, without copying it.
func ParseString(s string) (pgtype.Numeric, error) { return parse(s) }

// smallDigits is how many digits always fit a uint64: the unscaled
// values of most decimals, read without math/big's parser.
const smallDigits = 19

func parse[T text](b T) (pgtype.Numeric, error) {
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
	// The first smallDigits digits go into small; beyond them, all
	// digits are kept as text for math/big.
	var small uint64
	var digits []byte
	var frac int64
	ndigits := 0
	seenPoint := false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			switch {
			case ndigits < smallDigits:
				small = small*10 + uint64(c-'0')
			case digits == nil:
				digits = append(strconv.AppendUint(make([]byte, 0, len(b)), small, 10), c)
			default:
				digits = append(digits, c)
			}
			ndigits++
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
	if ndigits == 0 {
		return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", string(b))
	}
	var exp int64
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", string(b))
		}
		e, err := parseExponent(trimPlus(string(b[i+1:])))
		if err != nil {
			return pgtype.Numeric{}, fmt.Errorf("%q: bad exponent", string(b))
		}
		exp = e
	}
	n := new(big.Int)
	if digits == nil {
		n.SetUint64(small)
	} else if _, ok := n.SetString(string(digits), 10); !ok {
		return pgtype.Numeric{}, fmt.Errorf("%q is not a decimal", string(b))
	}
	if neg {
		n.Neg(n)
	}
	e := exp - frac
	if e < -1<<31 || e > 1<<31-1 {
		return pgtype.Numeric{}, fmt.Errorf("%q: exponent out of range", string(b))
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
func Special[T text](b T) Kind {
	if len(b) < 3 || len(b) > len("NEGATIVE_INFINITY") || isDigitOrPoint(b[0]) ||
		(b[0] == '-' || b[0] == '+') && isDigitOrPoint(b[1]) {
		return Finite // the common case, decided without a copy
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

func isDigitOrPoint(c byte) bool { return c >= '0' && c <= '9' || c == '.' }

func trimPlus(s string) string { return strings.TrimPrefix(s, "+") }

// parseExponent reads a signed decimal int32 of at most 19 digits.
func parseExponent(b string) (int64, error) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || strings.ContainsAny(digits, "+-") {
		return 0, fmt.Errorf("%q is not an integer of 32 bits", b)
	}
	return strconv.ParseInt(b, 10, 32)
}
