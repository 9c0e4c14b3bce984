package debezium

import (
	"math/big"
	"math/bits"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"
)

// boxSlab is how many values of one type a slab of boxes holds.
const boxSlab = 256

// boxes are a Decoder's slabs of decoded column values. Putting an int64,
// a string or a timestamp into a Field's `any` copies it to the heap, one
// small allocation per column of every row image, the decoder's largest
// share of the collector's work. A value boxed here is copied into a slab
// instead and the interface points at its slot: its dynamic type is the
// value's own (int64, string, pgtype.Timestamptz …), so every reader of
// Field.Value — type switches, comparisons, pgx's binding — sees what an
// ordinary conversion gives. A slot is written once and never again (a
// slab is only cut, never reused), as the heap copy would be. Like the
// rows' slab (avroState.row), a slab lives as long as its last value: the
// batch holding the changes.
type boxes struct {
	int32s       slab[int32]
	int64s       slab[int64]
	float64s     slab[float64]
	strings      slab[string]
	dates        slab[pgtype.Date]
	timestamps   slab[pgtype.Timestamp]
	timestamptzs slab[pgtype.Timestamptz]
	numerics     slab[pgtype.Numeric]
	ints         []big.Int
	words        []big.Word
}

// boxable are the types a slab holds. None is pointer-shaped (a pointer,
// or a struct or array of exactly one pointer), whose interface holds the
// value itself rather than a pointer to it.
type boxable interface {
	int32 | int64 | float64 | string | pgtype.Date | pgtype.Timestamp | pgtype.Timestamptz | pgtype.Numeric
}

// slab is the unused rest of a slab of T and T's type in an interface.
type slab[T boxable] struct {
	free []T
	typ  unsafe.Pointer
}

// eface is the layout of an empty interface: its type and a pointer to its
// value (for the types of boxable).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// box returns v in an interface whose value is v's copy in the slab.
func (s *slab[T]) box(v T) any {
	if len(s.free) == 0 {
		s.free = make([]T, boxSlab)
		if s.typ == nil {
			// Once: converting a T allocates, for all but a few types.
			x := any(v)
			s.typ = (*eface)(unsafe.Pointer(&x)).typ
		}
	}
	p := &s.free[0]
	*p = v
	s.free = s.free[1:]
	var x any
	*(*eface)(unsafe.Pointer(&x)) = eface{typ: s.typ, data: unsafe.Pointer(p)}
	return x
}

// scalar is avroScalar with the common column types boxed into the slabs.
func (b *boxes) scalar(r *avroReader, n *avroNode, t *typ) any {
	switch t.conv {
	case convInt32:
		return b.int32s.box(r.int())
	case convInt64:
		return b.int64s.box(r.long())
	case convFloat64:
		return b.float64s.box(r.double())
	case convString:
		if n.kind != avroEnum {
			return b.strings.box(r.str())
		}
	case convDecimal:
		return b.numerics.box(b.decimal(avroBytesOf(r, n), t.scale))
	case convDate:
		return b.dates.box(dateFromDays(r.int()))
	case convTimestampMilli, convTimestampMicro, convTimestampNano:
		v, err := timestamp(r.long(), t.conv)
		if err != nil {
			return avroResult(r, v, err)
		}
		return b.timestamps.box(v)
	case convZonedTimestamp:
		v, err := zonedTimestamp(r.bytes())
		if err != nil {
			return avroResult(r, v, err)
		}
		return b.timestamptzs.box(v)
	}
	return avroScalar(r, n, t)
}

// decimal is decimalFromBytes for an unscaled value of one to eight bytes
// (numeric(18) and below, most decimals) with its big.Int and word cut
// from slabs; a longer one, or zero, goes through decimalFromBytes. The
// results are equal, word for word.
func (b *boxes) decimal(buf []byte, scale int32) pgtype.Numeric {
	if len(buf) == 0 || len(buf) > 8 || bits.UintSize != 64 {
		return decimalFromBytes(buf, scale)
	}
	var v int64
	if buf[0]&0x80 != 0 {
		v = -1 // two's complement: sign-extend
	}
	for _, c := range buf {
		v = v<<8 | int64(c)
	}
	if v == 0 {
		return decimalFromBytes(buf, scale)
	}
	abs := uint64(v)
	if v < 0 {
		abs = -abs
	}
	if len(b.ints) == 0 {
		b.ints = make([]big.Int, boxSlab)
	}
	if len(b.words) == 0 {
		b.words = make([]big.Word, boxSlab)
	}
	z := &b.ints[0]
	b.ints = b.ints[1:]
	// Capacity one: arithmetic on the big.Int that needs more words
	// allocates them instead of writing into the next value's word.
	w := b.words[:1:1]
	b.words = b.words[1:]
	w[0] = big.Word(abs)
	z.SetBits(w)
	if v < 0 {
		z.Neg(z)
	}
	return pgtype.Numeric{Int: z, Exp: -scale, Valid: true}
}
