package pgcopy

import (
	"encoding/binary"

	"github.com/pgsink/pgsink/internal/decimal"

	"github.com/jackc/pgx/v5/pgtype"
)

// numericCodec is pgx's numeric codec with a cheaper binary encoder for
// the decimals Debezium sends: a scale of a few digits on an unscaled value
// that fits in 50 bits. pgx converts every value to base 10,000 with
// math/big (a power of ten, a division per four digits, and their
// allocations), which made it the largest single cost of pgsink's COPY
// encoding on a table with one numeric column (BenchmarkNumericEncoding;
// docs/benchmarks.md). This encoder writes the
// same bytes with machine integers and leaves every other value (NaN,
// infinities, large or very precise numbers, other Go types, the text
// format) to pgx, but for decimal text, which pgx cannot write in binary
// (encodeNumericText). TestNumericEncodingMatchesPgx holds it to pgx's output
// byte for byte.
type numericCodec struct{ pgtype.NumericCodec }

func (c numericCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.BinaryFormatCode {
		switch value.(type) {
		case pgtype.Numeric:
			return encodeFunc(encodeNumeric)
		case string:
			return encodeFunc(encodeNumericText)
		}
	}
	return c.NumericCodec.PlanEncode(m, oid, format, value)
}

// encodeNumericText writes decimal text (decimal.handling.mode=string,
// Debezium's spellings of NaN and the infinities included) in binary.
// pgx has no binary plan for a string: its COPY would go through its text
// parser, which refuses "NAN" and "POSITIVE_INFINITY".
func encodeNumericText(value any, buf []byte) ([]byte, error) {
	n, err := decimal.ParseString(value.(string))
	if err != nil {
		return nil, err
	}
	return encodeNumeric(n, buf)
}

// pgxNumericBinary is pgx's own binary encoder of a pgtype.Numeric, for the
// values encodeNumeric does not take.
var pgxNumericBinary = pgtype.NumericCodec{}.PlanEncode(nil, pgtype.NumericOID, pgtype.BinaryFormatCode, pgtype.Numeric{})

// Limits of the fast path: the unscaled value times 1,000 (the most the
// exponent's alignment to four digits multiplies it by) and the divisor
// 10^-exp must fit in a uint64.
const (
	fastNumericMaxAbs = 1 << 50
	fastNumericMaxExp = 16
)

var powersOf10 = func() (p [fastNumericMaxExp + 1]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// encodeNumeric writes PostgreSQL's binary numeric: the digit count, the
// weight (the power of 10,000 of the first digit), the sign, the display
// scale, and the base-10,000 digits, most significant first. It follows
// pgx's layout exactly: the exponent is aligned down to a multiple of four,
// the fraction keeps all its -exp/4 digits, trailing zeros included, and a
// positive exponent is carried by the weight.
func encodeNumeric(value any, buf []byte) ([]byte, error) {
	n := value.(pgtype.Numeric)
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil || !n.Int.IsInt64() ||
		n.Exp < -fastNumericMaxExp || n.Exp > fastNumericMaxExp {
		return pgxNumericBinary.Encode(value, buf)
	}
	v := n.Int.Int64()
	if v <= -fastNumericMaxAbs || v >= fastNumericMaxAbs {
		return pgxNumericBinary.Encode(value, buf)
	}
	var sign uint16
	abs := uint64(v)
	if v < 0 {
		sign, abs = 0x4000, uint64(-v)
	}
	exp := n.Exp
	if r := ((exp % 4) + 4) % 4; r != 0 {
		abs *= powersOf10[r]
		exp -= r
	}
	whole, frac := abs, uint64(0)
	fracDigits := 0
	if exp < 0 {
		divisor := powersOf10[-exp]
		whole, frac = abs/divisor, abs%divisor
		fracDigits = int(-exp / 4)
	}
	// At most five base-10,000 digits for the whole part (< 2^60) and four
	// for the fraction (16 decimal digits).
	var digits [9]uint16
	wholeDigits := 0
	for w := whole; w != 0; w /= 10000 {
		wholeDigits++
	}
	for i, w := wholeDigits-1, whole; i >= 0; i, w = i-1, w/10000 {
		digits[i] = uint16(w % 10000)
	}
	for i, f := wholeDigits+fracDigits-1, frac; i >= wholeDigits; i, f = i-1, f/10000 {
		digits[i] = uint16(f % 10000)
	}
	var weight int32
	if wholeDigits > 0 {
		weight = int32(wholeDigits - 1)
		if exp > 0 {
			weight += exp / 4
		}
	} else {
		weight = exp/4 - 1 + int32(fracDigits)
	}
	var dscale uint16
	if n.Exp < 0 {
		dscale = uint16(-n.Exp)
	}
	ndigits := wholeDigits + fracDigits
	buf = binary.BigEndian.AppendUint16(buf, uint16(ndigits))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, dscale)
	for _, d := range digits[:ndigits] {
		buf = binary.BigEndian.AppendUint16(buf, d)
	}
	return buf, nil
}
