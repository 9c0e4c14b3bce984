//go:build integration

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/test/stacktest"
)

func TestIntegrationMigrateCommand(t *testing.T) {
	t.Setenv("PGSINK_TEST_DB_URL", stacktest.OwnedTargetDatabase(t))
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	cfg := "kafka:\n  bootstrap.servers: 127.0.0.1:1\n  group.id: g\npostgres:\n  url: ${PGSINK_TEST_DB_URL}\n  schema: Sink Schema\ntables:\n  - topic: a.public.t\n    target: public.t\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, "version 0 (clean)"},
		{[]string{"up"}, "migrations up done"},
		{[]string{"up"}, "migrations up done"},
		{[]string{"version"}, "version 3 (clean)"},
		{[]string{"down"}, "migrations down done"},
		{[]string{"version"}, "version 0 (clean)"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"migrate", "--config", path}, step.args...), &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String(), step.want) {
			t.Fatalf("migrate %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", step.args, code, stdout.String(), stderr.String(), step.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"migrate", "--config", path, "sideways"}, &stdout, &stderr); code != 2 {
		t.Fatalf("unknown action: exit %d, want 2", code)
	}
}
