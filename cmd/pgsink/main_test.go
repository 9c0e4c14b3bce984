package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: "Commands:"},
		{name: "no args", args: nil, wantCode: 2, wantStderr: "Usage:"},
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "librdkafka 2."},
		{name: "help lists validate", args: []string{"help"}, wantCode: 0, wantStdout: "validate     check a configuration file"},
		{name: "help lists healthcheck", args: []string{"help"}, wantCode: 0, wantStdout: "healthcheck  exit 0 if a URL"},
		{name: "help lists dlq retry", args: []string{"help"}, wantCode: 0, wantStdout: "dlq          list, show and retry records"},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "replay partition default", args: []string{"replay", "--help"}, wantCode: 0, wantStdout: "replay partition N only (default all)\n"},
		{name: "replay bad partition", args: []string{"replay", "--partition", "x"}, wantCode: 2, wantStderr: `invalid value "x" for flag -partition`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestHelpDefaultsOnce holds every command's --help to one default per flag:
// a usage text that spells out its own default next to the flag package's
// printed both.
func TestHelpDefaultsOnce(t *testing.T) {
	for _, c := range commands() {
		var stdout, stderr bytes.Buffer
		if code := run([]string{c.name, "--help"}, &stdout, &stderr); code != 0 {
			t.Errorf("%s --help: exit code %d, want 0 (stderr: %s)", c.name, code, stderr.String())
		}
		for line := range strings.SplitSeq(stdout.String(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s --help: a flag with two defaults: %q", c.name, line)
			}
		}
	}
}
