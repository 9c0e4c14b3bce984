package recording

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	in := []Record{
		{Topic: "app.public.t", Partition: 2, Offset: 7, Timestamp: time.UnixMilli(1700000000123).UTC(),
			Key: Bytes(`{"id":1}`), Value: Bytes(`{"op":"c","s":"é<&>"}`),
			Headers: []Header{{Key: "id", Value: Bytes("abc")}, {Key: "bin", Value: Bytes{0xff, 0x00}}}},
		{Topic: "app.public.t", Offset: 8, Timestamp: time.UnixMilli(0).UTC(), Key: Bytes(`{"id":1}`), Value: nil},
		{Topic: "app.public.t", Offset: 9, Timestamp: time.UnixMilli(0).UTC(), Key: nil, Value: Bytes{}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed records:\n in: %#v\nout: %#v\nfile:\n%s", in, out, buf.String())
	}
	if out[1].Value != nil {
		t.Errorf("null value (tombstone) read back as %q, want nil", out[1].Value)
	}
	if out[2].Value == nil {
		t.Errorf("empty value read back as nil, want empty")
	}
}
