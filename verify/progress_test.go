package verify

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressPlainLines: anything but a terminal gets whole lines, no
// carriage returns or escapes, with the rate and the ETA.
func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	p.total = 1000
	p.update("public.t", 250, time.Second)
	p.update("public.t", 300, time.Second+time.Millisecond) // within plainEvery: not printed
	p.done("public.t", 1000, 4*time.Second)
	got := out.String()
	want := "public.t: hashed 250/~1000 rows (25%), 250 rows/s, ETA 3s\npublic.t: hashed 1000/~1000 rows (100%), 250 rows/s, ETA 0s\n"
	if got != want {
		t.Errorf("progress:\n%q\nwant\n%q", got, want)
	}
	if strings.ContainsAny(got, "\r\033") {
		t.Errorf("plain progress holds terminal control characters: %q", got)
	}
}
