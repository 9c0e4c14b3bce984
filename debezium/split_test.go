package debezium

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// splitPart splits a JsonConverter key or value into its schema and
// payload as transaction staging does, or returns ok false.
func splitPart(data []byte) (schema, payload []byte, ok bool) {
	if !bytes.HasPrefix(data, jsonenvelope.Head) || !bytes.HasSuffix(data, jsonenvelope.Tail) {
		return nil, nil, false
	}
	rest := data[len(jsonenvelope.Head) : len(data)-len(jsonenvelope.Tail)]
	s := scanner{data: rest}
	if _, err := s.skip(); err != nil || !bytes.HasPrefix(rest[s.pos:], jsonenvelope.Mid) {
		return nil, nil, false
	}
	// Copies, so that no byte is shared with the whole record.
	return bytes.Clone(rest[:s.pos]), bytes.Clone(rest[s.pos+len(jsonenvelope.Mid):]), true
}

// TestDecodeSplit decodes every recorded record twice, whole and with its
// key and value apart from their schemas (Record.KeySchema, ValueSchema, as
// the resolver reads staged records), by two decoders: the Changes and
// errors are the same.
func TestDecodeSplit(t *testing.T) {
	splits := 0
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			whole, parts := NewDecoder(f.options()), NewDecoder(f.options())
			for _, r := range f.records {
				rec := toRecord(r)
				split := rec
				if s, p, ok := splitPart(rec.Key); ok {
					split.KeySchema, split.Key = s, p
				}
				if s, p, ok := splitPart(rec.Value); ok {
					split.ValueSchema, split.Value = s, p
				}
				if !split.split() {
					continue
				}
				splits++
				want, werr := whole.Decode(rec)
				got, gerr := parts.Decode(split)
				if fmt.Sprint(werr) != fmt.Sprint(gerr) {
					t.Fatalf("%s@%d: error whole %v, split %v", rec.Topic, rec.Offset, werr, gerr)
				}
				if d := differing(want, got); len(d) > 0 {
					t.Fatalf("%s@%d: decoded split differs from whole in %v", rec.Topic, rec.Offset, d)
				}
			}
		})
	}
	if splits == 0 {
		t.Fatal("no recorded record has a JsonConverter envelope to split")
	}
}

// TestDecodeSplitErrors breaks the payload of every recorded value that
// splits, at its first and at its second byte, and decodes it whole and
// split: both fail, with the same message, its byte offsets those of the
// record as consumed.
func TestDecodeSplitErrors(t *testing.T) {
	breaks := map[string]func(payload []byte) []byte{
		"a stray byte first":  func(p []byte) []byte { return append([]byte{'#'}, p...) },
		"a stray byte second": func(p []byte) []byte { return append([]byte{p[0], '#'}, p[1:]...) },
	}
	failures := 0
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			for _, r := range f.records {
				rec := toRecord(r)
				schema, payload, ok := splitPart(rec.Value)
				if !ok || len(payload) < 2 {
					continue
				}
				for name, broken := range breaks {
					bad := broken(bytes.Clone(payload))
					whole, split := rec, rec
					whole.Value = jsonenvelope.Join(schema, bad)
					split.ValueSchema, split.Value = schema, bad
					_, werr := NewDecoder(f.options()).Decode(whole)
					_, serr := NewDecoder(f.options()).Decode(split)
					if werr == nil || serr == nil {
						t.Fatalf("%s@%d, %s: whole %v, split %v; want both to fail", rec.Topic, rec.Offset, name, werr, serr)
					}
					if werr.Error() != serr.Error() {
						t.Fatalf("%s@%d, %s: whole fails with %q, split with %q", rec.Topic, rec.Offset, name, werr, serr)
					}
					failures++
				}
			}
		})
	}
	if failures == 0 {
		t.Fatal("no recorded value to break")
	}
}

// TestDecodeSplitLimit counts a split record's bytes as put back together
// against MaxBytes, and decodes a value whose schema moved to another
// address but is the same.
func TestDecodeSplitLimit(t *testing.T) {
	key := []byte(`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"k"},"payload":{"id":1}}`)
	schema, payload, ok := splitPart(key)
	if !ok {
		t.Fatal("the key does not split")
	}
	rec := Record{Topic: "p.public.t", KeySchema: schema, Key: payload}
	d := NewDecoder(Options{MaxBytes: len(key) - 1})
	var de *DecodeError
	if _, err := d.Decode(rec); !errors.As(err, &de) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a split tombstone one byte over the limit put together: %v, want ErrTooLarge", err)
	}
	d = NewDecoder(Options{MaxBytes: len(key)})
	for i := range 2 {
		ch, err := d.Decode(rec)
		if err != nil || ch.Kind != KindTombstone || fmt.Sprint(ch.Key) != fmt.Sprint(Row{{Name: "id", Value: int32(1)}}) {
			t.Fatalf("decode %d of a split tombstone: %+v, %v", i, ch, err)
		}
		rec.KeySchema = bytes.Clone(schema)
	}
}

// differing names the fields of two Changes that differ (a NaN equals a
// NaN: values are compared as printed where DeepEqual says they differ).
func differing(a, b Change) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(fa, fb) && (va.Field(i).Kind() == reflect.Pointer || fmt.Sprintf("%+v", fa) != fmt.Sprintf("%+v", fb)) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}
