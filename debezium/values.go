package debezium

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/pgsink/pgsink/internal/decimal"

	"github.com/jackc/pgx/v5/pgtype"
)

// value decodes the JSON value at s as t says. unchanged reports Debezium's
// unavailable-value placeholder (an unchanged TOASTed value).
func value(s *scanner, t *typ) (v any, unchanged bool, err error) {
	if s.null() {
		if !t.optional {
			return nil, false, mismatch("null for a required %s", t.describe())
		}
		return nil, false, nil
	}
	for _, form := range t.unchange {
		if bytes.HasPrefix(s.data[s.pos:], form) {
			s.pos += len(form)
			return nil, true, nil
		}
	}
	v, err = scalar(s, t)
	return v, false, err
}

// scalar decodes a non-null value; arrays and structs recurse through it.
func scalar(s *scanner, t *typ) (any, error) {
	switch t.conv {
	case convInt16:
		n, err := s.int(16)
		return int16(n), err
	case convInt32:
		n, err := s.int(32)
		return int32(n), err
	case convInt64:
		return s.int(64)
	case convFloat32:
		f, err := s.float(32)
		return float32(f), err
	case convFloat64:
		return s.float(64)
	case convBool:
		return s.bool()
	case convString:
		if s.peek() != '"' {
			return nil, mismatch("want a string for %s", t.describe())
		}
		return s.string()
	case convBytes:
		return base64Value(s)
	case convDecimal:
		b, err := base64Value(s)
		if err != nil {
			return nil, err
		}
		return decimalFromBytes(b, t.scale), nil
	case convVariableDecimal:
		return variableDecimal(s)
	case convDecimalString:
		b, err := s.stringBytes()
		if err != nil {
			return nil, err
		}
		return decimal.Parse(b)
	case convDate:
		n, err := s.int(32)
		if err != nil {
			return nil, err
		}
		return dateFromDays(int32(n)), nil
	case convTimeMilli, convTimeMicro, convTimeNano:
		bits := 64
		if t.conv == convTimeMilli {
			bits = 32
		}
		n, err := s.int(bits)
		if err != nil {
			return nil, err
		}
		return timeOfDay(n, t.conv)
	case convTimestampMilli, convTimestampMicro, convTimestampNano:
		n, err := s.int(64)
		if err != nil {
			return nil, err
		}
		return timestamp(n, t.conv)
	case convZonedTimestamp:
		b, err := s.stringBytes()
		if err != nil {
			return nil, err
		}
		return zonedTimestamp(b)
	case convInterval:
		if s.peek() == '"' {
			// Schemaless under interval.handling.mode=string: the JSON kind
			// tells the two forms apart.
			b, err := s.stringBytes()
			if err != nil {
				return nil, err
			}
			return isoInterval(b)
		}
		n, err := s.int(64)
		if err != nil {
			return nil, err
		}
		return pgtype.Interval{Microseconds: n, Valid: true}, nil
	case convIntervalISO:
		b, err := s.stringBytes()
		if err != nil {
			return nil, err
		}
		return isoInterval(b)
	case convBits:
		b, err := base64Value(s)
		if err != nil {
			return nil, err
		}
		return bitsFromBitSet(b, t.bits), nil
	case convPoint:
		return point(s)
	case convArray:
		return array(s, t.items)
	case convJSON:
		if s.peek() == '"' {
			return s.string()
		}
		raw, err := s.skip()
		if err != nil {
			return nil, err
		}
		return json.RawMessage(bytes.Clone(raw)), nil
	case convStruct, convMap:
		raw, err := s.skip()
		if err != nil {
			return nil, err
		}
		return json.RawMessage(bytes.Clone(raw)), nil
	}
	return nil, mismatch("no decoder for %s", t.describe())
}

func base64Value(s *scanner) ([]byte, error) {
	if s.peek() != '"' {
		return nil, mismatch("want a base64 string")
	}
	raw, err := s.stringBytes()
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(out, raw)
	if err != nil {
		return nil, s.fail("bad base64: %v", err)
	}
	return out[:n], nil
}

// array decodes a JSON array. Arrays of the common element types become
// slices of pgtype values (Valid false for a NULL element), one allocation
// for the whole array; others become []any with nil for NULL. pgx binds
// both to the matching PostgreSQL array type.
func array(s *scanner, items *typ) (any, error) {
	if err := s.arrayStart(); err != nil {
		return nil, mismatch("want an array")
	}
	switch items.conv {
	case convInt16:
		return typedArray(s, func(s *scanner) (pgtype.Int2, error) {
			n, err := s.int(16)
			return pgtype.Int2{Int16: int16(n), Valid: true}, err
		})
	case convInt32:
		if out, ok := int32Array(s); ok {
			return out, nil
		}
		return typedArray(s, func(s *scanner) (pgtype.Int4, error) {
			n, err := s.int(32)
			return pgtype.Int4{Int32: int32(n), Valid: true}, err
		})
	case convInt64:
		return typedArray(s, func(s *scanner) (pgtype.Int8, error) {
			n, err := s.int(64)
			return pgtype.Int8{Int64: n, Valid: true}, err
		})
	case convFloat32:
		return typedArray(s, func(s *scanner) (pgtype.Float4, error) {
			f, err := s.float(32)
			return pgtype.Float4{Float32: float32(f), Valid: true}, err
		})
	case convFloat64:
		return typedArray(s, func(s *scanner) (pgtype.Float8, error) {
			f, err := s.float(64)
			return pgtype.Float8{Float64: f, Valid: true}, err
		})
	case convBool:
		return typedArray(s, func(s *scanner) (pgtype.Bool, error) {
			b, err := s.bool()
			return pgtype.Bool{Bool: b, Valid: true}, err
		})
	case convString:
		return typedArray(s, func(s *scanner) (pgtype.Text, error) {
			if s.peek() != '"' {
				return pgtype.Text{}, mismatch("want a string")
			}
			str, err := s.string()
			return pgtype.Text{String: str, Valid: true}, err
		})
	}
	return typedArray(s, func(s *scanner) (any, error) { return scalar(s, items) })
}

// int32Array is the fast path for integer arrays as Jackson writes them
// (no spaces, integers and nulls): one loop over the bytes, the hot spot of
// large int[] columns. Without NULL elements (the common case) the result
// is a []int32, half the memory of []pgtype.Int4, which pgx binds to int4[]
// just the same; a NULL switches to []pgtype.Int4. On anything else it
// reports false without moving, and the general path reads the array (and
// reports the error, if any).
func int32Array(s *scanner) (any, bool) {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == ']' {
		s.pos = i + 1
		return []int32{}, true
	}
	// Sized by the commas up to the first ']': exact for a well-formed
	// int[], and the general path takes over when it is not.
	n := 0
	if end := bytes.IndexByte(d[i:], ']'); end > 0 {
		n = bytes.Count(d[i:i+end], []byte{','}) + 1
	}
	out := make([]int32, 0, n)
	for i < len(d) {
		if d[i] == 'n' {
			return int32ArrayWithNulls(s, out, i)
		}
		// The digit loop is written out here, not called: this loop is
		// the decoder's hottest on large int[] values.
		neg := d[i] == '-'
		if neg {
			i++
		}
		start := i
		var u uint64
		for ; i < len(d); i++ {
			c := d[i] - '0'
			if c > 9 {
				break
			}
			u = u*10 + uint64(c)
		}
		if i == start || i-start > 10 || u > 1<<31 || (!neg && u == 1<<31) || i >= len(d) {
			return nil, false
		}
		if neg {
			out = append(out, int32(-int64(u)))
		} else {
			out = append(out, int32(u))
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			s.pos = i + 1
			return out, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// int32ArrayWithNulls goes on from position i of an int array whose first
// elements, all non-NULL, are in head.
func int32ArrayWithNulls(s *scanner, head []int32, i int) (any, bool) {
	d := s.data
	out := make([]pgtype.Int4, len(head), cap(head))
	for k, n := range head {
		out[k] = pgtype.Int4{Int32: n, Valid: true}
	}
	for i < len(d) {
		if d[i] == 'n' {
			if i+4 > len(d) || string(d[i:i+4]) != "null" {
				return nil, false
			}
			out = append(out, pgtype.Int4{})
			i += 4
		} else {
			n, next, ok := parseInt32(d, i)
			if !ok {
				return nil, false
			}
			out = append(out, pgtype.Int4{Int32: n, Valid: true})
			i = next
		}
		if i >= len(d) {
			return nil, false
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			s.pos = i + 1
			return out, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// parseInt32 reads a JSON integer in int32's range at d[i:], returning it
// and the position after it.
func parseInt32(d []byte, i int) (int32, int, bool) {
	neg := i < len(d) && d[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64
	for ; i < len(d); i++ {
		c := d[i] - '0'
		if c > 9 {
			break
		}
		u = u*10 + uint64(c)
	}
	if i == start || i-start > 10 || (!neg && u > 1<<31-1) || (neg && u > 1<<31) {
		return 0, i, false
	}
	if neg {
		return int32(-int64(u)), i, true
	}
	return int32(u), i, true
}

// countElems estimates the elements of the array being read, to size its
// slice once: exact for arrays of numbers and booleans (no ']' or ',' can
// occur inside them), a lower bound or a guess otherwise.
func (s *scanner) countElems() int {
	rest := s.data[s.pos:]
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return 0
	}
	if bytes.IndexByte(rest[:end], '"') >= 0 || bytes.IndexByte(rest[:end], '{') >= 0 {
		return 4
	}
	if len(bytes.TrimSpace(rest[:end])) == 0 {
		return 0
	}
	return bytes.Count(rest[:end], []byte{','}) + 1
}

// typedArray reads the elements of an array whose '[' was consumed; a
// NULL element is T's zero value (nil for any, Valid false for pgtype).
func typedArray[T any](s *scanner, elem func(*scanner) (T, error)) ([]T, error) {
	out := make([]T, 0, s.countElems())
	for first := true; ; first = false {
		more, err := s.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		var v T
		if !s.null() {
			if v, err = elem(s); err != nil {
				return nil, at("["+strconv.Itoa(len(out))+"]", err)
			}
		}
		out = append(out, v)
	}
}

// point decodes io.debezium.data.geometry.Point, {x, y, wkb, srid}; x and y
// are the coordinates, wkb repeats them.
func point(s *scanner) (any, error) {
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a Point struct")
	}
	var p pgtype.Point
	var haveX, haveY bool
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "x":
			p.P.X, err = s.float(64)
			haveX = true
		case "y":
			p.P.Y, err = s.float(64)
			haveY = true
		default:
			_, err = s.skip()
		}
		if err != nil {
			return nil, at(string(key), err)
		}
	}
	if !haveX || !haveY {
		return nil, mismatch("Point without x and y")
	}
	p.Valid = true
	return p, nil
}

// placeholderForms lists the raw JSON Debezium writes for an unchanged
// TOASTed value of type t, as the fixtures show: the placeholder string for
// text types, its UTF-8 bytes (base64) for bytea, those bytes as integers
// for integer arrays, a one-element array for text arrays.
func placeholderForms(t *typ, ph string) [][]byte {
	if ph == "" {
		return nil
	}
	quoted, _ := json.Marshal(ph)
	switch t.conv {
	case convString, convJSON:
		return [][]byte{quoted}
	case convBytes:
		b64, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte(ph)))
		return [][]byte{b64}
	case convArray:
		switch t.items.conv {
		case convInt16, convInt32, convInt64:
			ints := []byte{'['}
			for i, c := range []byte(ph) {
				if i > 0 {
					ints = append(ints, ',')
				}
				ints = strconv.AppendInt(ints, int64(c), 10)
			}
			return [][]byte{append(ints, ']')}
		case convString:
			return [][]byte{append(append([]byte{'['}, quoted...), ']')}
		}
	}
	return nil
}

func (t *typ) describe() string {
	if t.name != "" {
		return t.name
	}
	switch t.conv {
	case convInt16:
		return "int16"
	case convInt32:
		return "int32"
	case convInt64:
		return "int64"
	case convFloat32:
		return "float"
	case convFloat64:
		return "double"
	case convBool:
		return "boolean"
	case convString:
		return "string"
	case convBytes:
		return "bytes"
	case convArray:
		return "array"
	}
	return "value"
}

// bitsFromBitSet converts io.debezium.data.Bits, java.util.BitSet bytes
// (little-endian: bit i is the string's i-th character from the right),
// into pgtype.Bits (most significant bit first). n is the declared length;
// 0 (varbit) takes the length from the highest set bit, because Debezium
// drops a varbit's leading zeros.
func bitsFromBitSet(b []byte, n int) pgtype.Bits {
	if n == 0 {
		for i := len(b)*8 - 1; i >= 0; i-- {
			if b[i/8]>>(i%8)&1 == 1 {
				n = i + 1
				break
			}
		}
	}
	out := make([]byte, (n+7)/8)
	for i := 0; i < n && i/8 < len(b); i++ {
		if b[i/8]>>(i%8)&1 == 1 {
			j := n - 1 - i
			out[j/8] |= 0x80 >> (j % 8)
		}
	}
	return pgtype.Bits{Bytes: out, Len: int32(n), Valid: true}
}
