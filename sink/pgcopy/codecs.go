package pgcopy

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/pgsink/pgsink/internal/decimal"

	"github.com/jackc/pgx/v5/pgtype"
)

// microsPerDay is the largest time of day: 24:00:00 is a valid time.
const microsPerDay = 86_400_000_000

// PostgreSQL type OIDs of the types pgx has no codec for.
const (
	timetzOID = 1266
	moneyOID  = 790
)

// RegisterTypes adds to m the codecs pgx v5 lacks for two types the decoder
// produces values for: time with time zone (ZonedTime strings) and money
// (Decimal). The extended protocol binds them without these, in text
// format; binary COPY needs them. It also replaces numeric's codec with one
// that encodes the common decimals without math/big (numericCodec). moneyFractionDigits is the database's
// lc_monetary fraction digits (2 for most locales), the unit of money's
// binary form; a value with more digits is refused, never rounded.
func RegisterTypes(m *pgtype.Map, moneyFractionDigits int) {
	m.RegisterType(&pgtype.Type{Name: "timetz", OID: timetzOID, Codec: timetzCodec{}})
	m.RegisterType(&pgtype.Type{Name: "money", OID: moneyOID, Codec: moneyCodec{digits: int32(moneyFractionDigits)}})
	m.RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
}

// textCodec carries what the two codecs share: text passes through, scans
// go to strings.
type textCodec struct{}

func (textCodec) FormatSupported(f int16) bool {
	return f == pgtype.TextFormatCode || f == pgtype.BinaryFormatCode
}
func (textCodec) PreferredFormat() int16 { return pgtype.BinaryFormatCode }

type encodeFunc func(value any, buf []byte) ([]byte, error)

func (f encodeFunc) Encode(value any, buf []byte) ([]byte, error) { return f(value, buf) }

type scanFunc func(src []byte, target any) error

func (f scanFunc) Scan(src []byte, target any) error { return f(src, target) }

// timetzCodec writes timetz from ZonedTime text, "HH:MM:SS[.ffffff]" with
// "Z" or a ±HH[:MM[:SS]] offset.
type timetzCodec struct{ textCodec }

func (timetzCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(string); !ok {
		return nil
	}
	if format == pgtype.TextFormatCode {
		return encodeFunc(func(v any, buf []byte) ([]byte, error) { return append(buf, v.(string)...), nil })
	}
	return encodeFunc(func(v any, buf []byte) ([]byte, error) {
		us, zone, err := parseTimetz(v.(string))
		if err != nil {
			return nil, err
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(us))
		return binary.BigEndian.AppendUint32(buf, uint32(zone)), nil
	})
}

func (timetzCodec) PlanScan(_ *pgtype.Map, _ uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*string); !ok {
		return nil
	}
	return scanFunc(func(src []byte, target any) error {
		s, err := timetzText(format, src)
		*target.(*string) = s
		return err
	})
}

func (timetzCodec) DecodeDatabaseSQLValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (driver.Value, error) {
	return timetzText(format, src)
}

func (timetzCodec) DecodeValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (any, error) {
	return timetzText(format, src)
}

// parseTimetz returns the time of day in microseconds and PostgreSQL's zone:
// seconds west of UTC, the opposite sign of the written offset.
func parseTimetz(s string) (us int64, zone int32, err error) {
	i := strings.IndexAny(s, "Z+-")
	if i < 0 {
		return 0, 0, fmt.Errorf("timetz %q has no zone", s)
	}
	t, err := parseClock(s[:i])
	if err != nil {
		return 0, 0, fmt.Errorf("timetz %q: %w", s, err)
	}
	if s[i] == 'Z' {
		if i != len(s)-1 {
			return 0, 0, fmt.Errorf("timetz %q: text after Z", s)
		}
		return t, 0, nil
	}
	parts := strings.Split(s[i+1:], ":")
	var off int64
	for j, unit := range []int64{3600, 60, 1} {
		if j >= len(parts) {
			break
		}
		n, err := strconv.ParseInt(parts[j], 10, 32)
		if err != nil || len(parts) > 3 {
			return 0, 0, fmt.Errorf("timetz %q: bad offset", s)
		}
		off += n * unit
	}
	if s[i] == '-' {
		off = -off
	}
	return t, int32(-off), nil
}

// parseClock parses HH:MM[:SS[.ffffff]] into microseconds.
func parseClock(s string) (int64, error) {
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) < 2 || len(parts) > 3 || len(frac) > 6 {
		return 0, errors.New("want HH:MM[:SS[.ffffff]]")
	}
	var us int64
	for j, unit := range []int64{3600e6, 60e6, 1e6} {
		if j >= len(parts) {
			break
		}
		n, err := strconv.ParseUint(parts[j], 10, 8)
		if err != nil {
			return 0, errors.New("want HH:MM[:SS[.ffffff]]")
		}
		us += int64(n) * unit
	}
	if frac != "" {
		n, err := strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 32)
		if err != nil {
			return 0, errors.New("bad fraction")
		}
		us += int64(n)
	}
	if us > microsPerDay {
		return 0, errors.New("time of day out of range")
	}
	return us, nil
}

func timetzText(format int16, src []byte) (string, error) {
	if format == pgtype.TextFormatCode {
		return string(src), nil
	}
	if len(src) != 12 {
		return "", fmt.Errorf("timetz: %d bytes, want 12", len(src))
	}
	us := int64(binary.BigEndian.Uint64(src))
	off := -int64(int32(binary.BigEndian.Uint32(src[8:])))
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%02d:%02d:%02d.%06d%c%02d:%02d", us/3600e6, us/60e6%60, us/1e6%60, us%1e6, sign, off/3600, off/60%60), nil
}

// moneyCodec writes money from a Numeric (or decimal text) as the integer
// count of the smallest currency unit.
type moneyCodec struct {
	textCodec
	digits int32
}

func (c moneyCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	switch value.(type) {
	case pgtype.Numeric, string, float64:
	default:
		return nil
	}
	if format == pgtype.TextFormatCode {
		return encodeFunc(func(v any, buf []byte) ([]byte, error) {
			n, err := moneyNumeric(v)
			if err != nil || !n.Valid {
				return nil, err
			}
			text, err := n.Value()
			if err != nil {
				return nil, err
			}
			return append(buf, text.(string)...), nil
		})
	}
	return encodeFunc(func(v any, buf []byte) ([]byte, error) {
		n, err := moneyNumeric(v)
		if err != nil {
			return nil, err
		}
		if !n.Valid {
			return nil, nil
		}
		units, err := c.units(n)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(buf, uint64(units)), nil
	})
}

// moneyNumeric reads a Decimal, decimal text, or (decimal.handling.mode
// double) a float64 through its shortest decimal form.
func moneyNumeric(v any) (pgtype.Numeric, error) {
	switch v := v.(type) {
	case pgtype.Numeric:
		return v, nil
	case string:
		return decimal.ParseString(v)
	case float64:
		return decimal.Parse(strconv.AppendFloat(nil, v, 'f', -1, 64))
	}
	return pgtype.Numeric{}, fmt.Errorf("cannot write %T as money", v)
}

// units rescales n to the currency's smallest unit, exactly.
func (c moneyCodec) units(n pgtype.Numeric) (int64, error) {
	if n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil {
		return 0, errors.New("money cannot hold NaN or infinity")
	}
	v := new(big.Int).Set(n.Int)
	shift := int64(n.Exp) + int64(c.digits)
	ten := big.NewInt(10)
	if shift >= 0 {
		v.Mul(v, new(big.Int).Exp(ten, big.NewInt(shift), nil))
	} else {
		var rem big.Int
		v.QuoRem(v, new(big.Int).Exp(ten, big.NewInt(-shift), nil), &rem)
		if rem.Sign() != 0 {
			return 0, fmt.Errorf("money has %d fraction digits; the value has more", c.digits)
		}
	}
	if !v.IsInt64() {
		return 0, errors.New("value out of range for money")
	}
	return v.Int64(), nil
}

func (c moneyCodec) PlanScan(_ *pgtype.Map, _ uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*string); !ok {
		return nil
	}
	return scanFunc(func(src []byte, target any) error {
		s, err := c.text(format, src)
		*target.(*string) = s
		return err
	})
}

func (c moneyCodec) DecodeDatabaseSQLValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (driver.Value, error) {
	return c.text(format, src)
}

func (c moneyCodec) DecodeValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (any, error) {
	return c.text(format, src)
}

func (c moneyCodec) text(format int16, src []byte) (string, error) {
	if format == pgtype.TextFormatCode {
		return string(src), nil
	}
	if len(src) != 8 {
		return "", fmt.Errorf("money: %d bytes, want 8", len(src))
	}
	n := pgtype.Numeric{Int: big.NewInt(int64(binary.BigEndian.Uint64(src))), Exp: -c.digits, Valid: true}
	v, err := n.Value()
	if err != nil {
		return "", err
	}
	return v.(string), nil
}
