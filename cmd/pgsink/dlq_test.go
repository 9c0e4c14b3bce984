package main

import (
	"bytes"
	"strings"
	"testing"
)

// A dlq call without its subcommand says so, names the subcommands and
// lists the flags, instead of ending in an empty "Flags:".
func TestDLQUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"dlq"}, "pgsink dlq: missing subcommand: want list, show or retry\n"},
		{"flags first", []string{"dlq", "--config", "pgsink.yaml"}, "pgsink dlq: missing subcommand: want list, show or retry\n"},
		{"unknown subcommand", []string{"dlq", "remove", "1"}, `pgsink dlq: unknown subcommand "remove": want list, show or retry` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code = %d, want 2 (a usage error)", code)
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, tt.want) {
				t.Errorf("stderr starts %q, want it to start with %q", firstLine(msg), tt.want)
			}
			for _, want := range []string{"pgsink dlq list --config FILE", "pgsink dlq show", "pgsink dlq retry", "-config file", "-limit int"} {
				if !strings.Contains(msg, want) {
					t.Errorf("usage on stderr lacks %q:\n%s", want, msg)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("a usage error wrote to stdout: %q", stdout.String())
			}
		})
	}
}

func TestDLQHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dlq", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "-config file") {
		t.Fatalf("dlq --help: exit %d, stdout:\n%s\nwant exit 0 and the usage with its flags", code, stdout.String())
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
