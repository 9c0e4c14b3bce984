package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunRefusesTransactionConsistency: until the resolver runs in the
// connector, run must refuse the mode rather than apply per partition, and
// validate --offline must still accept it (the configuration is valid).
func TestRunRefusesTransactionConsistency(t *testing.T) {
	path := writeConfig(t, "kafka: { bootstrap.servers: 127.0.0.1:1, group.id: g }\npostgres: { url: postgres://127.0.0.1:1/none }\n"+
		"apply: { consistency: transaction, transaction: { topic: app.transaction } }\ntables:\n  - topic: app.public.t\n    target: public.t\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", path, "--offline"}, &stdout, &stderr); code != 0 {
		t.Errorf("validate --offline: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"run", "--config", path}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), errTransactionNotWired.Error()) {
		t.Errorf("run: exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr.String(), errTransactionNotWired)
	}
}
