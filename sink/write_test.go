package sink

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestTypedSlice(t *testing.T) {
	if got, ok := typedSlice([]any{int64(1), int64(2)}).(valuerArray[pgtype.Int8]); !ok || len(got.elems) != 2 || got.elems[1].Int64 != 2 || !got.elems[1].Valid {
		t.Errorf("int64 keys: %#v", got)
	}
	if got, ok := typedSlice([]any{"a", "b"}).(valuerArray[pgtype.Text]); !ok || got.elems[0].String != "a" || !got.elems[0].Valid {
		t.Errorf("string keys: %#v", got)
	}
	mixed := []any{int64(1), "b"}
	if got, ok := typedSlice(mixed).([]any); !ok || len(got) != 2 {
		t.Errorf("mixed keys: %#v, want them as they are", got)
	}
	if got, ok := typedSlice([]any{int32(1)}).([]any); !ok || got[0] != int32(1) {
		t.Errorf("int32 keys: %#v, want them as they are", got)
	}
}

// A valuerArray is bound as the plain slice is, byte for byte, in both
// formats, without an allocation per element.
func TestValuerArrayEncodesAsTheSlice(t *testing.T) {
	m := pgtype.NewMap()
	ints := make([]int64, 1000)
	texts := make([]string, len(ints))
	for i := range ints {
		ints[i] = int64(i) << 20
		texts[i] = "key " + string(rune('a'+i%26))
	}
	cases := []struct {
		name         string
		oid          uint32
		plain, array any
	}{
		{"bigint[]", pgtype.Int8ArrayOID, ints, typedSlice(anys(ints))},
		{"text[]", pgtype.TextArrayOID, texts, typedSlice(anys(texts))},
		{"an empty bigint[]", pgtype.Int8ArrayOID, []int64{}, valuerArray[pgtype.Int8]{[]pgtype.Int8{}}},
	}
	for _, c := range cases {
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			want, err := m.Encode(c.oid, format, c.plain, nil)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got, err := m.Encode(c.oid, format, c.array, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s, format %d: %q (%v), want %q", c.name, format, got, err, want)
			}
		}
		buf := make([]byte, 0, 64<<10)
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.array, buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 10 {
			t.Errorf("%s: %v allocations to encode %d elements", c.name, allocs, len(ints))
		}
	}
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}
