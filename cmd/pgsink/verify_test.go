package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestVerifyErrorsExitTwo: verify's exit status separates errors (2) from
// drift (1), so a script never takes a broken setup for a drifted table.
func TestVerifyErrorsExitTwo(t *testing.T) {
	base := `kafka: { bootstrap.servers: 127.0.0.1:9, group.id: sink }
postgres: { url: postgres://127.0.0.1:9/x }
tables:
  - { topic: app.public.t, target: public.t }
`
	for _, tt := range []struct {
		name, config string
		args         []string
		wantStderr   string
	}{
		{"no source", base, nil, "verify.source_url is not configured"},
		{"no slot", base + "verify: { source_url: postgres://127.0.0.1:9/s }\n", nil, "verify.slot is not configured"},
		{"repair without a signal table", base + "verify: { source_url: postgres://127.0.0.1:9/s, slot: app }\n", []string{"--repair"},
			"verify.signal_table is not configured"},
		{"bad configuration", base + "verify: { chunk_rows: 0 }\n", nil, "verify.chunk_rows: must be between 1 and 1000000"},
		{"source table without table", base, []string{"--source-table", "public.t"}, "--source-table needs --table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"verify", "--config", writeConfig(t, tt.config)}, tt.args...)
			if code := run(args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code = %d, want 2 (stderr: %s)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
