package pgcopy

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestNumericEncodingMatchesPgx holds numericCodec's binary encoding to
// pgx's own, byte for byte, on both sides of every limit of its fast path
// and on random decimals of every scale it takes.
func TestNumericEncodingMatchesPgx(t *testing.T) {
	num := func(v *big.Int, exp int32) pgtype.Numeric { return pgtype.Numeric{Int: v, Exp: exp, Valid: true} }
	values := []pgtype.Numeric{
		{}, {NaN: true, Valid: true}, {InfinityModifier: pgtype.Infinity, Valid: true},
		{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, {Valid: true}, // nil Int
		num(big.NewInt(math.MaxInt64), -2), num(big.NewInt(math.MinInt64), 0),
		num(new(big.Int).Lsh(big.NewInt(1), 80), -3),
		num(big.NewInt(fastNumericMaxAbs-1), -17), num(big.NewInt(fastNumericMaxAbs), -2),
		num(big.NewInt(-fastNumericMaxAbs), -2), num(big.NewInt(-fastNumericMaxAbs+1), -2),
	}
	for exp := int32(-20); exp <= 20; exp++ {
		for _, v := range []int64{0, 1, -1, 9, 10, 9999, 10000, -10001, 123456789, 100000000, fastNumericMaxAbs - 1, -(fastNumericMaxAbs - 1)} {
			values = append(values, num(big.NewInt(v), exp))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		v := rng.Int64N(1 << rng.IntN(51))
		if rng.IntN(2) == 0 {
			v = -v
		}
		values = append(values, num(big.NewInt(v), int32(rng.IntN(35))-17))
	}
	for _, n := range values {
		want, wantErr := pgxNumericBinary.Encode(n, []byte("prefix"))
		got, gotErr := encodeNumeric(n, []byte("prefix"))
		if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%+v (Int %v): got %x, %v; pgx %x, %v", n, n.Int, got, gotErr, want, wantErr)
		}
	}
}

// TestRegisteredNumericCodec checks that RegisterTypes routes a Numeric to
// the fast encoder for binary, and leaves text and other Go types to pgx.
func TestRegisteredNumericCodec(t *testing.T) {
	m := pgtype.NewMap()
	RegisterTypes(m, 2)
	n := pgtype.Numeric{Int: big.NewInt(-1234567), Exp: -2, Valid: true}
	bin, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := pgxNumericBinary.Encode(n, nil); !bytes.Equal(bin, want) {
		t.Fatalf("binary %x, want %x", bin, want)
	}
	text, err := m.Encode(pgtype.NumericOID, pgtype.TextFormatCode, n, nil)
	if err != nil || string(text) != "-12345.67" {
		t.Fatalf("text %q, %v", text, err)
	}
	for _, v := range []any{float64(12.5), int64(12)} {
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			got, gotErr := m.Encode(pgtype.NumericOID, format, v, nil)
			want, wantErr := pgtype.NewMap().Encode(pgtype.NumericOID, format, v, nil)
			if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T in format %d: %x, %v; pgx %x, %v", v, format, got, gotErr, want, wantErr)
			}
		}
	}
}

// TestNumericTextInBinary: decimal text, which pgx cannot write in binary
// at all, is written as the Numeric it spells, Debezium's spellings of the
// special values included (decimal.handling.mode=string), so a COPY never
// needs a way around it.
func TestNumericTextInBinary(t *testing.T) {
	m := pgtype.NewMap()
	RegisterTypes(m, 2)
	huge := "-0." + strings.Repeat("0", 1000) + "12345"
	for text, want := range map[string]pgtype.Numeric{
		"12.50":             {Int: big.NewInt(1250), Exp: -2, Valid: true},
		"NAN":               {NaN: true, Valid: true},
		"POSITIVE_INFINITY": {InfinityModifier: pgtype.Infinity, Valid: true},
		"NEGATIVE_INFINITY": {InfinityModifier: pgtype.NegativeInfinity, Valid: true},
		huge:                {Int: big.NewInt(-12345), Exp: -1005, Valid: true},
		"99999999999999999999999999999999999999.99999999999999999999": {
			Int: new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(58), nil), big.NewInt(1)), Exp: -20, Valid: true},
	} {
		got, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, text, nil)
		wantBin, _ := pgxNumericBinary.Encode(want, nil)
		if err != nil || !bytes.Equal(got, wantBin) {
			t.Errorf("%.30s in binary: %x, %v; want %x", text, got, err, wantBin)
		}
	}
	if _, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, "12,5", nil); err == nil {
		t.Error("12,5 encoded as a numeric, want an error")
	}
}

func BenchmarkNumericEncoding(b *testing.B) {
	n := pgtype.Numeric{Int: big.NewInt(987654321), Exp: -2, Valid: true}
	buf := make([]byte, 0, 64)
	b.Run("pgx", func(b *testing.B) {
		for b.Loop() {
			buf, _ = pgxNumericBinary.Encode(n, buf[:0])
		}
	})
	b.Run("pgsink", func(b *testing.B) {
		for b.Loop() {
			buf, _ = encodeNumeric(n, buf[:0])
		}
	})
}
