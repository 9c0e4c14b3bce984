package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunStopsAtOnceOnAnUnknownHost: a postgres.url whose host DNS does not
// know stops `pgsink run` at its start, at once and saying so, with or
// without the migrations, rather than wait for it as for an outage (which
// is what a DNS failure is once the target was reached). The host is in
// .invalid, which resolvers answer with NXDOMAIN (RFC 6761).
func TestRunStopsAtOnceOnAnUnknownHost(t *testing.T) {
	const host = "pgsink-no-such-host.invalid"
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(`kafka: { bootstrap.servers: 127.0.0.1:1, group.id: g }
postgres: { url: 'postgres://pgsink@`+host+`:5432/target?sslmode=disable' }
metrics: { listen: '127.0.0.1:0' }
tables:
  - topic: app.public.t
    target: public.t
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"run", "--config", path}, {"run", "--no-migrate", "--config", path}} {
		t.Run(strings.Join(args[:len(args)-2], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			began := time.Now()
			code := run(args, &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if took := time.Since(began); took > 15*time.Second {
				t.Errorf("took %s to stop: the start waited for the host", took)
			}
			if want := `host \"` + host + `\" not found in DNS`; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), want)
			}
		})
	}
}
