package debezium

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	"github.com/pgsink/pgsink/internal/decimal"

	"github.com/jackc/pgx/v5/pgtype"
)

// avroFits reports whether values of Avro node n can carry t: checked when
// a plan is compiled, so decoding a value trusts its node. n is the value's
// node without its null branch.
func avroFits(n *avroNode, t *typ) bool {
	switch t.conv {
	case convInt16, convInt32, convDate, convTimeMilli:
		return n.kind == avroInt
	case convInt64, convTimeMicro, convTimeNano, convTimestampMilli, convTimestampMicro, convTimestampNano:
		return n.kind == avroLong
	case convInterval:
		return n.kind == avroLong || n.kind == avroString
	case convFloat32:
		return n.kind == avroFloat
	case convFloat64:
		return n.kind == avroDouble
	case convBool:
		return n.kind == avroBool
	case convString, convDecimalString, convZonedTimestamp, convIntervalISO:
		return n.kind == avroString || (t.conv == convString && n.kind == avroEnum)
	case convBytes, convDecimal, convBits:
		return n.kind == avroBytes || n.kind == avroFixed
	case convVariableDecimal:
		return n.kind == avroRecord && fieldKinds(n, map[string]avroKind{"scale": avroInt, "value": avroBytes})
	case convPoint:
		return n.kind == avroRecord && fieldKinds(n, map[string]avroKind{"x": avroDouble, "y": avroDouble})
	case convArray:
		items := n.items
		if n.kind != avroArray {
			return false
		}
		if items.kind == avroUnion {
			if items.null < 0 {
				return false
			}
			items = items.nonNull()
		}
		return avroFits(items, t.items)
	case convStruct:
		return n.kind == avroRecord
	case convMap:
		return n.kind == avroMap
	}
	return false
}

// fieldKinds reports whether record n has every named field, each of its kind.
func fieldKinds(n *avroNode, want map[string]avroKind) bool {
	found := 0
	for _, f := range n.fields {
		if k, ok := want[f.name]; ok {
			if f.node.kind != k {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

// avroScalar decodes a non-null value of node n (avroFits(n, t) holds) as
// the JSON path's scalar decodes the same value's JSON: the Go types and
// values are the same, so the sink cannot tell the wire formats apart.
func avroScalar(r *avroReader, n *avroNode, t *typ) any {
	switch t.conv {
	case convInt16:
		v := r.int()
		if v < math.MinInt16 || v > math.MaxInt16 {
			r.fail("%d out of int16 range", v)
		}
		return int16(v)
	case convInt32:
		return r.int()
	case convInt64:
		return r.long()
	case convFloat32:
		return r.float()
	case convFloat64:
		return r.double()
	case convBool:
		return r.bool()
	case convString:
		if n.kind == avroEnum {
			return avroSymbol(r, n)
		}
		return r.str()
	case convBytes:
		return bytes.Clone(avroBytesOf(r, n))
	case convDecimal:
		return decimalFromBytes(avroBytesOf(r, n), t.scale)
	case convVariableDecimal:
		return avroVariableDecimal(r, n)
	case convDecimalString:
		v, err := decimal.Parse(r.bytes())
		if err != nil && r.err == nil {
			r.err = err
		}
		return v
	case convDate:
		return dateFromDays(r.int())
	case convTimeMilli, convTimeMicro, convTimeNano:
		v, err := timeOfDay(r.long(), t.conv)
		return avroResult(r, v, err)
	case convTimestampMilli, convTimestampMicro, convTimestampNano:
		v, err := timestamp(r.long(), t.conv)
		return avroResult(r, v, err)
	case convZonedTimestamp:
		v, err := zonedTimestamp(r.bytes())
		return avroResult(r, v, err)
	case convInterval:
		if n.kind == avroString {
			v, err := isoInterval(r.bytes())
			return avroResult(r, v, err)
		}
		return pgtype.Interval{Microseconds: r.long(), Valid: true}
	case convIntervalISO:
		v, err := isoInterval(r.bytes())
		return avroResult(r, v, err)
	case convBits:
		return bitsFromBitSet(avroBytesOf(r, n), t.bits)
	case convPoint:
		return avroPoint(r, n)
	case convArray:
		return avroArrayValue(r, n.items, t.items)
	case convStruct, convMap:
		// Kept as JSON text, as the JSON path keeps JsonConverter's.
		return json.RawMessage(appendAvroJSON(nil, r, n))
	}
	r.fail("no decoder for %s", t.describe())
	return nil
}

// avroResult keeps a conversion's error as the reader's.
func avroResult[T any](r *avroReader, v T, err error) any {
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return nil
	}
	return v
}

func avroBytesOf(r *avroReader, n *avroNode) []byte {
	if n.kind == avroFixed {
		return r.fixed(n.size)
	}
	return r.bytes()
}

func avroSymbol(r *avroReader, n *avroNode) string {
	i := r.long()
	if r.err != nil {
		return ""
	}
	if i < 0 || i >= int64(len(n.symbols)) {
		r.fail("Avro enum symbol %d out of range", i)
		return ""
	}
	return n.symbols[i]
}

// avroVariableDecimal reads io.debezium.data.VariableScaleDecimal's record
// {scale, value}, exactly.
func avroVariableDecimal(r *avroReader, n *avroNode) any {
	var scale int32
	var unscaled []byte
	for _, f := range n.fields {
		switch f.name {
		case "scale":
			scale = r.int()
		case "value":
			unscaled = r.bytes()
		default:
			skipAvro(r, f.node)
		}
	}
	return decimalFromBytes(unscaled, scale)
}

// avroPoint reads io.debezium.data.geometry.Point, {x, y, wkb, srid}.
func avroPoint(r *avroReader, n *avroNode) any {
	var p pgtype.Point
	for _, f := range n.fields {
		switch f.name {
		case "x":
			p.P.X = r.double()
		case "y":
			p.P.Y = r.double()
		default:
			skipAvro(r, f.node)
		}
	}
	p.Valid = true
	return p
}

// avroArrayValue reads an array into the Go types the JSON path's array gives
// the same elements: slices of pgtype values for the common element types
// (Valid false for NULL), a []int32 for an int[] without NULLs, []any
// otherwise.
func avroArrayValue(r *avroReader, items *avroNode, t *typ) any {
	switch t.conv {
	case convInt16:
		return avroElems(r, items, func(r *avroReader, n *avroNode) pgtype.Int2 {
			return pgtype.Int2{Int16: avroScalar(r, n, t).(int16), Valid: true}
		})
	case convInt32:
		return avroInt32Array(r, items)
	case convInt64:
		return avroElems(r, items, func(r *avroReader, _ *avroNode) pgtype.Int8 {
			return pgtype.Int8{Int64: r.long(), Valid: true}
		})
	case convFloat32:
		return avroElems(r, items, func(r *avroReader, _ *avroNode) pgtype.Float4 {
			return pgtype.Float4{Float32: r.float(), Valid: true}
		})
	case convFloat64:
		return avroElems(r, items, func(r *avroReader, _ *avroNode) pgtype.Float8 {
			return pgtype.Float8{Float64: r.double(), Valid: true}
		})
	case convBool:
		return avroElems(r, items, func(r *avroReader, _ *avroNode) pgtype.Bool {
			return pgtype.Bool{Bool: r.bool(), Valid: true}
		})
	case convString:
		return avroElems(r, items, func(r *avroReader, n *avroNode) pgtype.Text {
			return pgtype.Text{String: avroScalar(r, n, t).(string), Valid: true}
		})
	}
	return avroElems(r, items, func(r *avroReader, n *avroNode) any { return avroScalar(r, n, t) })
}

// avroElems reads the blocks of an array; a NULL element is T's zero value.
func avroElems[T any](r *avroReader, items *avroNode, elem func(*avroReader, *avroNode) T) []T {
	if !r.enter() {
		return nil
	}
	defer r.leave()
	out := []T{}
	for c := r.blockCount(); c > 0; c = r.blockCount() {
		for ; c > 0; c-- {
			n := items
			if n.kind == avroUnion {
				if n = unionBranch(r, n); n == nil {
					return nil
				}
			}
			var v T
			if n.kind != avroNull {
				v = elem(r, n)
			}
			if r.err != nil {
				r.err = at("["+strconv.Itoa(len(out))+"]", r.err)
				return nil
			}
			out = append(out, v)
		}
	}
	return out
}

// avroInt32Array is int[]: a []int32 while no element is NULL (half the
// memory of []pgtype.Int4, bound by pgx to int4[] just the same), switching
// to []pgtype.Int4 at the first NULL, as the JSON path does.
func avroInt32Array(r *avroReader, items *avroNode) any {
	var withNulls []pgtype.Int4
	out := []int32{}
	for c := r.blockCount(); c > 0; c = r.blockCount() {
		if withNulls == nil && cap(out)-len(out) < c {
			grown := make([]int32, len(out), len(out)+c)
			copy(grown, out)
			out = grown
		}
		for ; c > 0; c-- {
			null := false
			if items.kind == avroUnion {
				i := r.long()
				if i != 0 && i != 1 {
					r.fail("Avro union branch %d out of range", i)
				}
				null = int(i) == items.null
			}
			var v int32
			if !null {
				v = r.int()
			}
			if r.err != nil {
				n := len(out)
				if withNulls != nil {
					n = len(withNulls)
				}
				r.err = at("["+strconv.Itoa(n)+"]", r.err)
				return nil
			}
			switch {
			case withNulls != nil:
				withNulls = append(withNulls, pgtype.Int4{Int32: v, Valid: !null})
			case null:
				withNulls = make([]pgtype.Int4, len(out), len(out)+c)
				for k, x := range out {
					withNulls[k] = pgtype.Int4{Int32: x, Valid: true}
				}
				withNulls = append(withNulls, pgtype.Int4{})
			default:
				out = append(out, v)
			}
		}
	}
	if withNulls != nil {
		return withNulls
	}
	return out
}

// avroPlaceholder reports whether v, a decoded value, is the form Debezium
// gives ph, the unavailable-value placeholder, in its type: the placeholder
// for text, its bytes for bytea, those bytes as integers in an integer
// array, a one-element text array (see placeholderForms).
func avroPlaceholder(v any, ph string) bool {
	switch v := v.(type) {
	case string:
		return v == ph
	case []byte:
		return string(v) == ph
	case []int32:
		return spells(v, ph, func(x int32) (int64, bool) { return int64(x), true })
	case []pgtype.Int2:
		return spells(v, ph, func(x pgtype.Int2) (int64, bool) { return int64(x.Int16), x.Valid })
	case []pgtype.Int4:
		return spells(v, ph, func(x pgtype.Int4) (int64, bool) { return int64(x.Int32), x.Valid })
	case []pgtype.Int8:
		return spells(v, ph, func(x pgtype.Int8) (int64, bool) { return x.Int64, x.Valid })
	case []pgtype.Text:
		return len(v) == 1 && v[0].Valid && v[0].String == ph
	}
	return false
}

// spells reports whether the integers are ph's bytes, none of them NULL.
func spells[T any](v []T, ph string, val func(T) (int64, bool)) bool {
	if len(v) != len(ph) {
		return false
	}
	for i := range v {
		if n, ok := val(v[i]); !ok || n != int64(ph[i]) {
			return false
		}
	}
	return true
}
