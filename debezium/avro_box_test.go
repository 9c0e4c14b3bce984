package debezium

import (
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// A value boxed in a slab is, to every reader of Field.Value, the value an
// ordinary conversion to any gives: the same dynamic type, equal under ==
// and reflect.DeepEqual, and unchanged by the values boxed after it.
func TestBoxedValuesAreOrdinaryValues(t *testing.T) {
	var b boxes
	ts := pgtype.Timestamptz{Time: time.Date(2026, 12, 7, 4, 30, 0, 123000, time.UTC), Valid: true}
	cases := []struct {
		boxed func() any
		want  any
	}{
		{func() any { return b.int32s.box(70000) }, int32(70000)},
		{func() any { return b.int64s.box(math.MinInt64) }, int64(math.MinInt64)},
		{func() any { return b.float64s.box(-0.5) }, -0.5},
		{func() any { return b.strings.box("shipped") }, "shipped"},
		{func() any { return b.dates.box(dateFromDays(20000)) }, dateFromDays(20000)},
		{func() any { return b.timestamps.box(pgtype.Timestamp{Time: ts.Time, Valid: true}) }, pgtype.Timestamp{Time: ts.Time, Valid: true}},
		{func() any { return b.timestamptzs.box(ts) }, ts},
	}
	var got []any
	for range 2 * boxSlab / len(cases) {
		for _, c := range cases {
			got = append(got, c.boxed())
		}
	}
	for i, v := range got {
		want := cases[i%len(cases)].want
		if reflect.TypeOf(v) != reflect.TypeOf(want) || v != want || !reflect.DeepEqual(v, want) {
			t.Fatalf("value %d: got %#v (%T), want %#v (%T)", i, v, v, want, want)
		}
	}
	if s, ok := got[3].(string); !ok || s != "shipped" {
		t.Fatalf("type switch on a boxed string: %#v", got[3])
	}
}

// Boxing into a slab does not allocate per value: the slab is cut.
func TestBoxingDoesNotAllocatePerValue(t *testing.T) {
	var b boxes
	ts := pgtype.Timestamptz{Time: time.Unix(1_800_000_000, 0).UTC(), Valid: true}
	var sink any
	allocs := testing.AllocsPerRun(4*boxSlab, func() {
		sink = b.int64s.box(1 << 40)
		sink = b.strings.box("a status")
		sink = b.timestamptzs.box(ts)
		sink = b.numerics.box(b.decimal([]byte{0x30, 0x39}, 2))
	})
	_ = sink
	if allocs != 0 {
		t.Fatalf("%v allocations per four boxed values, want 0 (a slab per %d)", allocs, boxSlab)
	}
}

// boxes.decimal gives decimalFromBytes's Numeric, word for word, for every
// length of unscaled value and both signs.
func TestBoxedDecimalIsDecimalFromBytes(t *testing.T) {
	var b boxes
	inputs := [][]byte{{0}, {0, 0}, {1}, {0x7f}, {0x80}, {0xff}, {0x30, 0x39}, {0xcf, 0xc7}, {0, 0x80},
		{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x80, 0, 0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{1, 0, 0, 0, 0, 0, 0, 0, 0}, {0x80, 0, 0, 0, 0, 0, 0, 0, 0}, {}}
	for _, in := range inputs {
		for _, scale := range []int32{0, 2, 10} {
			got, want := b.decimal(in, scale), decimalFromBytes(in, scale)
			if got.Exp != want.Exp || !got.Valid || got.Int.Cmp(want.Int) != 0 || got.Int.Sign() != want.Int.Sign() ||
				!reflect.DeepEqual(got.Int.Bits(), want.Int.Bits()) {
				t.Errorf("% x scale %d: got %v e%d, want %v e%d", in, scale, got.Int, got.Exp, want.Int, want.Exp)
			}
		}
	}
}

// Arithmetic on a boxed decimal's big.Int that needs more words does not
// write into the next decimal's word.
func TestBoxedDecimalsDoNotShareWords(t *testing.T) {
	var b boxes
	first := b.decimal([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0)
	second := b.decimal([]byte{0x05}, 0)
	first.Int.Mul(first.Int, first.Int)
	if second.Int.Cmp(big.NewInt(5)) != 0 {
		t.Fatalf("the second decimal is %v after the first was squared, want 5", second.Int)
	}
}
