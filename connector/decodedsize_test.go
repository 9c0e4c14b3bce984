package connector

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// A decoded item weighs its values' bytes, whatever they are boxed as: the
// estimate grows with each value's length and never falls below the Item.
func TestDecodedBytesCountsTheValues(t *testing.T) {
	empty := decodedBytes(&sink.Item{})
	if empty != int64(unsafe.Sizeof(sink.Item{})) {
		t.Errorf("empty item weighs %d, want the Item's own size %d", empty, unsafe.Sizeof(sink.Item{}))
	}
	row := func(v any) *sink.Item {
		return &sink.Item{Change: debezium.Change{After: debezium.Row{{Name: "c", Value: v}}}}
	}
	field := int64(unsafe.Sizeof(debezium.Field{})) + 1 // and its one-byte name
	tests := []struct {
		name  string
		value any
		least int64 // the value's own bytes, at least
	}{
		{"null", nil, 0},
		{"string", strings.Repeat("s", 1000), 1000},
		{"bytes", make([]byte, 2000), 2000},
		{"int", int64(7), 8},
		{"time", time.Now(), 24},
		{"array of strings (reflect)", []string{strings.Repeat("a", 300), strings.Repeat("b", 300)}, 600},
		{"map (reflect)", map[string]any{"k": strings.Repeat("v", 500)}, 500},
		{"timestamptz", pgtype.Timestamptz{Time: time.Now(), Valid: true}, 24},
		{"numeric", pgtype.Numeric{Int: new(big.Int).Lsh(big.NewInt(1), 1000), Exp: -2, Valid: true}, 1000 / 8},
		{"json", json.RawMessage(strings.Repeat("j", 700)), 700},
	}
	// Each fast path counts what the reflective walk counts, or more: a
	// big.Int's words by capacity, which the walk counts by length.
	for _, v := range []any{pgtype.Timestamptz{Time: time.Now().UTC(), Valid: true}, pgtype.Date{Valid: true},
		pgtype.Numeric{Int: new(big.Int).Lsh(big.NewInt(1), 1000), Exp: -2, Valid: true}, json.RawMessage(strings.Repeat("j", 700))} {
		if fast, walked := valueBytes(v), reflectBytes(reflect.ValueOf(v), 0); fast < walked || fast > walked+64 {
			t.Errorf("%T weighs %d, the walk %d", v, fast, walked)
		}
	}
	for _, tt := range tests {
		got := decodedBytes(row(tt.value)) - empty - field
		if got < tt.least || got > tt.least+256 {
			t.Errorf("%s: value weighs %d, want %d plus headers (under 256)", tt.name, got, tt.least)
		}
	}
	both := &sink.Item{Change: debezium.Change{
		Before: debezium.Row{{Name: "c", Value: strings.Repeat("x", 100)}},
		After:  debezium.Row{{Name: "c", Value: strings.Repeat("x", 100)}},
	}}
	if got, one := decodedBytes(both)-empty, decodedBytes(row(strings.Repeat("x", 100)))-empty; got != 2*one {
		t.Errorf("before and after weigh %d, want twice one image (%d)", got, 2*one)
	}
}

// A nested value deeper than the walk goes counts its top level only:
// the estimate ends on any input.
func TestDecodedBytesEndsOnDeepValues(t *testing.T) {
	var v any = "leaf"
	for range 100 {
		v = []any{v}
	}
	if got := decodedBytes(&sink.Item{Change: debezium.Change{After: debezium.Row{{Name: "c", Value: v}}}}); got <= 0 {
		t.Errorf("deep value weighs %d", got)
	}
}
