package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a configuration file into a temporary folder.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateOffline(t *testing.T) {
	t.Setenv("PGSINK_DATABASE_URL", "postgres://pgsink:hunter2-secret@127.0.0.1:1/target")
	t.Setenv("PGSINK_TEST_SASL", "sasl-secret")
	good := writeConfig(t, `kafka:
  bootstrap.servers: 127.0.0.1:9092
  group.id: sink
  sasl.password: ${PGSINK_TEST_SASL}
postgres:
  url: ${PGSINK_DATABASE_URL}
tables:
  - topic: app.public.t
    target: public.t
`)
	bad := writeConfig(t, `kafka:
  bootstrap.servers: 127.0.0.1:9092
postgres:
  url: ${PGSINK_DATABASE_URL}
tables:
  - topic: app.public.t
    target: t
    deletes: sometimes
`)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{name: "example", args: []string{"--config", "../../examples/pgsink.yaml", "--offline"}, wantCode: 0,
			wantStdout: []string{"examples/pgsink.yaml: valid, 4 table(s) (offline: target catalog not checked)"}},
		{name: "valid", args: []string{"--config", good, "--offline"}, wantCode: 0, wantStdout: []string{"valid, 1 table(s)"}},
		{name: "every problem", args: []string{"--config", bad, "--offline"}, wantCode: 1,
			wantStdout: []string{
				bad + ":1: kafka.group.id: is required\n",
				bad + `:7: tables[0].target: must be schema-qualified (schema.table); got "t"` + "\n",
				bad + `:8: tables[0].deletes: must be one of hard, soft, ignore; got "sometimes"` + "\n",
			},
			wantStderr: []string{"3 problem(s)"}},
		{name: "print redacts", args: []string{"--config", good, "--offline", "--print"}, wantCode: 0,
			wantStdout: []string{"url: postgres://pgsink:REDACTED@127.0.0.1:1/target", "sasl.password: REDACTED", "max_bytes: 16MiB"}},
		{name: "missing file", args: []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "--offline"}, wantCode: 1,
			wantStderr: []string{"no such file or directory"}},
		{name: "no config flag", args: []string{"--offline"}, wantCode: 2, wantStderr: []string{"--config FILE is required"}},
		{name: "stray argument", args: []string{"--config", good, "extra"}, wantCode: 2, wantStderr: []string{"--config FILE is required"}},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: []string{"Usage: pgsink validate --config FILE", "-offline"}},
		{name: "bad flag", args: []string{"--frobnicate"}, wantCode: 2, wantStderr: []string{"flag provided but not defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"validate"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			for _, secret := range []string{"hunter2-secret", "sasl-secret"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output shows the secret %q:\n%s%s", secret, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// TestValidateUnreachableDatabase checks that a failed connection is a
// problem at postgres.url, with the password hidden.
func TestValidateUnreachableDatabase(t *testing.T) {
	t.Setenv("PGSINK_DATABASE_URL", "postgres://pgsink:hunter2-secret@127.0.0.1:1/target?connect_timeout=5")
	path := writeConfig(t, "kafka: { bootstrap.servers: k, group.id: g }\npostgres:\n  url: ${PGSINK_DATABASE_URL}\ntables:\n  - topic: a\n    target: public.a\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", "--config", path}, &stdout, &stderr)
	want := path + ":3: postgres.url: cannot connect to postgres://pgsink:REDACTED@127.0.0.1:1/target?connect_timeout=5: "
	if code != 1 || !strings.HasPrefix(stdout.String(), want) || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("exit %d, stdout %q; want exit 1 and one line starting %q", code, stdout.String(), want)
	}
	if strings.Contains(stdout.String()+stderr.String(), "hunter2-secret") {
		t.Errorf("output shows the password: %s%s", stdout.String(), stderr.String())
	}
}
