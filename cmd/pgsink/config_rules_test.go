package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestValidateAgreesWithRun: a rule of the configuration is the
// configuration's, so `validate --offline` refuses what `run` refuses, with
// the same line, before anything connects.
func TestValidateAgreesWithRun(t *testing.T) {
	const header = "kafka: { bootstrap.servers: 127.0.0.1:1, group.id: g }\npostgres: { url: postgres://127.0.0.1:1/none }\n"
	tests := []struct {
		name, config, want string
	}{
		{"version guard off", header + "tables:\n  - topic: app.public.t\n    target: public.t\n    version:\n      guard: false\n",
			":7: tables[0].version.guard: false is not supported: the guard is what makes replays safe"},
		{"dead-letter table", header + "errors:\n  dead_letter:\n    table: audit.failures\ntables:\n  - topic: app.public.t\n    target: public.t\n",
			":5: errors.dead_letter.table: is no longer a setting (it was never honoured): dead letters always go to <postgres.schema>.dead_letters"},
		{"outbox in transaction mode", header + "apply: { consistency: transaction, transaction: { topic: app.transaction } }\ntables:\n  - topic: outbox.event.Order\n    format: outbox\n    target: public.orders\n    key: [id]\n",
			":6: tables[0].format: outbox cannot be used with apply.consistency: transaction: Debezium's Outbox Event Router keeps only the outbox row's columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.config)
			want := path + tt.want
			var stdout, stderr bytes.Buffer
			if code := run([]string{"validate", "--config", path, "--offline"}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), want) {
				t.Errorf("validate --offline: exit %d, stdout:\n%s\nwant exit 1 and %q", code, stdout.String(), want)
			}
			stdout.Reset()
			stderr.Reset()
			if code := run([]string{"run", "--config", path}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), want) {
				t.Errorf("run: exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr.String(), want)
			}
		})
	}
}
