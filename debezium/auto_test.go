package debezium

import (
	"errors"
	"reflect"
	"testing"
)

// TestAutoEncoding: under EncodingAuto every record of the JSON and Avro
// fixtures decodes as under its explicit encoding (tombstones by their
// key), a JSON value after whitespace is JSON, and a value that is neither
// is an ErrUnknownEncoding DecodeError.
func TestAutoEncoding(t *testing.T) {
	auto := func(string) Encoding { return EncodingAuto }
	compared := 0
	for _, f := range loadFixtures(t) {
		if f.name != "shipped" && f.name != "shipped_avro" {
			continue
		}
		explicit := NewDecoder(f.options())
		opts := f.options()
		opts.Encoding = auto
		detecting := NewDecoder(opts)
		for _, r := range f.records {
			want, werr := explicit.Decode(toRecord(r))
			got, gerr := detecting.Decode(toRecord(r))
			if werr != nil || gerr != nil || !reflect.DeepEqual(nanRows(want), nanRows(got)) {
				t.Errorf("%s %s@%d: explicit %v %v, auto %v %v", f.name, r.Topic, r.Offset, want, werr, got, gerr)
			}
			compared++
		}
	}
	if compared < 100 {
		t.Fatalf("compared %d records", compared)
	}

	f := fixtureNamed(t, loadFixtures(t), "shipped")
	var rec Record
	for _, r := range f.records {
		if r.Value != nil && DefaultFormat(r.Topic) == FormatTable {
			rec = toRecord(r)
			break
		}
	}
	opts := f.options()
	opts.Encoding = auto
	d := NewDecoder(opts)
	spaced := rec
	spaced.Value = append([]byte(" \n\t"), rec.Value...)
	if _, err := d.Decode(spaced); err != nil {
		t.Errorf("JSON after whitespace: %v", err)
	}
	for _, value := range [][]byte{[]byte("[1]"), {1, 0, 0, 0, 1}, []byte("  "), {}} {
		bad := rec
		bad.Value = value
		_, err := d.Decode(bad)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrUnknownEncoding) || de.Part != "value" {
			t.Errorf("value %q: got %v, want a DecodeError of the value wrapping ErrUnknownEncoding", value, err)
		}
	}
}

// nanRows replaces NaN values by text, so that equal Changes compare equal.
func nanRows(ch Change) Change {
	nanAsText(ch.Key, ch.Before, ch.After)
	return ch
}
