package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/connector"
)

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want connector.Bound
		err  string
	}{
		{in: "2026-12-06T11:00:00Z", want: connector.Bound{At: time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)}},
		{in: "2026-12-06T11:00:00.123456Z", want: connector.Bound{At: time.Date(2026, 12, 6, 11, 0, 0, 123456000, time.UTC)}},
		{in: "lsn:16/B374D848", want: connector.Bound{LSN: 0x16<<32 | 0xB374D848}},
		{in: "lsn:0/0", err: "want lsn:X/Y"},
		{in: "lsn:16", err: "want lsn:X/Y"},
		{in: "lsn:G/1", err: "want lsn:X/Y"},
		{in: "lsn:1/100000000", err: "want lsn:X/Y"},
		{in: "yesterday", err: "want an RFC 3339 time"},
		{in: "2026-12-06T13:00:00Z", err: "in the future"},
	}
	for _, tt := range tests {
		got, err := parseUntil(tt.in, now)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseUntil(%q): error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !got.At.Equal(tt.want.At) || got.LSN != tt.want.LSN {
			t.Errorf("parseUntil(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestReplayFillFlags holds the combinations a fill refuses before reading
// any configuration.
func TestReplayFillFlags(t *testing.T) {
	tests := map[string][]string{
		"into with a topic":        {"--topic", "x", "--into", "public.t_at"},
		"into with a partition":    {"--table", "public.t", "--into", "public.t_at", "--partition", "1"},
		"into from an offset":      {"--table", "public.t", "--into", "public.t_at", "--from", "offset:3"},
		"into with rebuild":        {"--table", "public.t", "--into", "public.t_at", "--rebuild"},
		"online without rebuild":   {"--table", "public.t", "--online"},
		"until without into":       {"--table", "public.t", "--from", "earliest", "--until", "2026-01-01T00:00:00Z"},
		"into not qualified":       {"--table", "public.t", "--into", "t_at"},
		"until in a bad form":      {"--table", "public.t", "--into", "public.t_at", "--until", "lsn:x"},
		"online with a wait":       {"--table", "public.t", "--rebuild", "--online", "--wait"},
		"online with negative lag": {"--table", "public.t", "--rebuild", "--online", "--max-lag", "-1"},
	}
	for name, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"replay", "--config", "unused.yaml"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2 (a usage error)\n%s", name, code, stderr.String())
		}
	}
}

// TestReplayRebuildRefusedInTransactionMode: an offline rebuild leaves the
// refill to the instances, which do not apply records of resolved
// transactions again; the online rebuild fills the table itself.
func TestReplayRebuildRefusedInTransactionMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	yaml := `kafka: { bootstrap.servers: 127.0.0.1:1, group.id: g }
postgres: { url: 'postgres://127.0.0.1:1/none' }
apply: { consistency: transaction, transaction: { topic: app.transaction } }
tables:
  - topic: app.public.t
    target: public.t
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "--config", path, "--table", "public.t", "--from", "earliest", "--rebuild"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "use --rebuild --online") {
		t.Errorf("replay --rebuild in transaction mode: exit %d, want 2 naming --rebuild --online\n%s", code, stderr.String())
	}
}
