package sink

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgsink/pgsink/debezium"
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

// blockedFresh binds every array, keyed table or not, as a valuerArray
// (never a plain slice, which pgx encodes through an interface per
// element), with the candidates' values in order.
func TestBlockedFreshArgsAreValuerArrays(t *testing.T) {
	tbl := &Table{Schema: "public", Name: "orders"}
	candidates := []*row{
		{version: debeziumVersion(10, 11), values: []any{int64(1 << 40), "a"}},
		{version: debeziumVersion(20, 21), values: []any{int64(2 << 40), "b"}},
	}
	for _, keyCols := range [][]int{nil, {0}, {0, 1}} {
		args := blockedFreshArgs(tbl, keyCols, candidates)
		if keyCols != nil {
			if args[0] != "public.orders" {
				t.Fatalf("keys %v: first argument %#v, want the table", keyCols, args[0])
			}
			args = args[1:]
		}
		if len(args) != 2+len(keyCols) {
			t.Fatalf("keys %v: %d arrays, want %d", keyCols, len(args), 2+len(keyCols))
		}
		commits, ok1 := args[0].(valuerArray[pgtype.Int8])
		lsns, ok2 := args[1].(valuerArray[pgtype.Int8])
		if !ok1 || !ok2 || commits.elems[1].Int64 != 20 || lsns.elems[0].Int64 != 11 {
			t.Fatalf("keys %v: versions bound as %T %T: %#v %#v", keyCols, args[0], args[1], args[0], args[1])
		}
		for k := range keyCols {
			switch a := args[2+k].(type) {
			case valuerArray[pgtype.Int8]:
				if a.elems[1].Int64 != 2<<40 {
					t.Errorf("keys %v: %#v", keyCols, a)
				}
			case valuerArray[pgtype.Text]:
				if a.elems[1].String != "b" {
					t.Errorf("keys %v: %#v", keyCols, a)
				}
			default:
				t.Errorf("keys %v: key column %d bound as %T", keyCols, k, a)
			}
		}
	}
}

func debeziumVersion(commit, lsn int64) debezium.Version {
	return debezium.Version{CommitLSN: commit, LSN: lsn}
}
