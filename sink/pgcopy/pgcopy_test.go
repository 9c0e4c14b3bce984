package pgcopy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// pgxField is a field as pgx's CopyFrom writes it: pgx's Encode of the
// value, behind its length, or -1 for NULL.
func pgxField(t *testing.T, m *pgtype.Map, oid uint32, v any) []byte {
	t.Helper()
	// Into a buffer that is not nil, as in pgx's COPY: an empty value
	// appended to nil would be nil, which Encode's callers take for NULL.
	field := []byte{0xff, 0xff, 0xff, 0xff}
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, field)
	if err != nil {
		t.Fatalf("pgx cannot encode %#v for oid %d: %v", v, oid, err)
	}
	if out == nil {
		return field
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// TestAppendRowMatchesPgx encodes columns whose values change Go type from
// row to row (so that a remembered plan must be replaced), with NULLs of
// every kind pgx knows, and compares every row with the fields pgx's own
// Encode gives.
func TestAppendRowMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	var nilInt *int64
	seven := int64(7)
	oids := []uint32{pgtype.Int8OID, pgtype.TextOID, pgtype.NumericOID, pgtype.TimestamptzOID, pgtype.JSONBOID, pgtype.ByteaOID}
	names := []string{"i", "s", "n", "ts", "j", "b"}
	rows := [][]any{
		{int64(1), "a", pgtype.Numeric{Int: big.NewInt(12345), Exp: -2, Valid: true}, time.Unix(1e9, 5000).UTC(), json.RawMessage(`{"k": [1, 2]}`), []byte{1, 2}},
		{int32(2), "", pgtype.Numeric{Int: big.NewInt(-1), Exp: 3, Valid: true}, time.Unix(2e9, 0), json.RawMessage(nil), []byte(nil)},
		{nil, nil, nil, nil, nil, nil},
		{nilInt, "é", pgtype.Numeric{}, pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, `"text"`, []byte{}},
		{&seven, "z", pgtype.Numeric{NaN: true, Valid: true}, time.Time{}, map[string]any{"a": 1.5}, []byte("x")},
		{int64(-9), "back to the first types", pgtype.Numeric{Int: big.NewInt(5), Valid: true}, time.Unix(0, 0), json.RawMessage(`[]`), []byte{0}},
	}
	enc := NewEncoder(m, names, oids)
	for i, row := range rows {
		got, err := enc.AppendRow(nil, i, row)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		want := binary.BigEndian.AppendUint16(nil, uint16(len(row)))
		for j, v := range row {
			want = append(want, pgxField(t, m, oids[j], v)...)
		}
		if string(got) != string(want) {
			t.Errorf("row %d: got\n%x\nwant\n%x", i, got, want)
		}
	}
}

// TestAppendRowFromText checks the fallback pgx's COPY has for a value its
// binary plan refuses: a string is parsed as the column's type.
func TestAppendRowFromText(t *testing.T) {
	m := pgtype.NewMap()
	enc := NewEncoder(m, []string{"i", "n"}, []uint32{pgtype.Int8OID, pgtype.NumericOID})
	got, err := enc.AppendRow(nil, 0, []any{"42", "-1.50"})
	if err != nil {
		t.Fatal(err)
	}
	want := binary.BigEndian.AppendUint16(nil, 2)
	want = append(want, pgxField(t, m, pgtype.Int8OID, int64(42))...)
	want = append(want, pgxField(t, m, pgtype.NumericOID, pgtype.Numeric{Int: big.NewInt(-150), Exp: -2, Valid: true})...)
	if string(got) != string(want) {
		t.Errorf("got\n%x\nwant\n%x", got, want)
	}
}

// TestAppendRowError names the row and the column of a value that has no
// encoding for its column.
func TestAppendRowError(t *testing.T) {
	enc := NewEncoder(pgtype.NewMap(), []string{"i", "n"}, []uint32{pgtype.Int8OID, pgtype.Int8OID})
	if _, err := enc.AppendRow(nil, 0, []any{int64(1), int64(2)}); err != nil {
		t.Fatal(err)
	}
	_, err := enc.AppendRow(nil, 3, []any{int64(1), "not a number"})
	var ee *EncodeError
	if !errors.As(err, &ee) || ee.Row != 3 || ee.Column != "n" {
		t.Fatalf("got %v, want an EncodeError for row 3, column n", err)
	}
	if _, err := enc.AppendRow(nil, 4, []any{int64(1)}); !errors.As(err, &ee) || ee.Row != 4 {
		t.Fatalf("a row one value short: got %v, want an EncodeError for row 4", err)
	}
}

// TestReaderStream reads a stream of many rows through small reads and
// checks its framing: the header, the rows in order, the trailer.
func TestReaderStream(t *testing.T) {
	m := pgtype.NewMap()
	enc := NewEncoder(m, []string{"i"}, []uint32{pgtype.Int8OID})
	const n = 20000 // several chunks
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i)}
	}
	r := newReader(enc, rows)
	var got []byte
	p := make([]byte, 1000)
	for {
		k, err := r.Read(p)
		got = append(got, p[:k]...)
		if err != nil {
			break
		}
	}
	if err := r.failure(); err != nil {
		t.Fatal(err)
	}
	want := AppendHeader(nil)
	for i := range n {
		want = binary.BigEndian.AppendUint16(want, 1)
		want = append(want, pgxField(t, m, pgtype.Int8OID, int64(i))...)
	}
	want = AppendTrailer(want)
	if string(got) != string(want) {
		t.Fatalf("stream of %d bytes differs from the expected %d bytes", len(got), len(want))
	}
	if string(got[:11]) != "PGCOPY\n\xff\r\n\x00" {
		t.Fatalf("header %q", got[:11])
	}
}

func BenchmarkAppendRow(b *testing.B) {
	m := pgtype.NewMap()
	RegisterTypes(m, 2) // the numeric codec pgsink's pool uses
	oids := []uint32{pgtype.Int8OID, pgtype.Int8OID, pgtype.TextOID, pgtype.NumericOID, pgtype.TimestamptzOID, pgtype.JSONBOID}
	row := []any{int64(1), int64(2), "shipped", pgtype.Numeric{Int: big.NewInt(12345), Exp: -2, Valid: true}, time.Now(), `{"a": "0123456789012345678901234567890123456789"}`}
	b.Run("pgcopy", func(b *testing.B) {
		enc := NewEncoder(m, make([]string, len(oids)), oids)
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = enc.AppendRow(buf[:0], 0, row)
		}
	})
	// What pgx's CopyFrom does per value: Encode, which plans each time.
	b.Run("pgx_encode", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = binary.BigEndian.AppendUint16(buf[:0], uint16(len(row)))
			for j, v := range row {
				sp := len(buf)
				buf = append(buf, 0xff, 0xff, 0xff, 0xff)
				out, _ := m.Encode(oids[j], pgtype.BinaryFormatCode, v, buf)
				if out != nil {
					buf = out
					binary.BigEndian.PutUint32(buf[sp:], uint32(len(buf)-sp-4))
				}
			}
		}
	})
}
