package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// commentedKey matches an example line that shows an optional key commented
// out ("    # topic: pgsink.dlq"), which documents it as well as a set one.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ([a-z_][a-z_.]*: )`)

// TestExampleDocumentsEveryKey fails when a key exists in the config structs
// but examples/pgsink.yaml neither sets it nor shows it commented out.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../examples/pgsink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	uncommented := commentedKey.ReplaceAllString(string(data), "$1$2")
	cfg, err := Parse("examples/pgsink.yaml (commented keys enabled)", []byte(uncommented), anyEnv)
	if err != nil {
		t.Fatalf("the example with its commented keys enabled must still parse:\n%v", err)
	}
	present := map[string]bool{}
	listIndex := regexp.MustCompile(`\[\d+\]`)
	for path := range cfg.source.lines {
		present[listIndex.ReplaceAllString(path, "[]")] = true
	}
	keys := Keys()
	if len(keys) < 40 {
		t.Fatalf("Keys() = %d keys, want every key of the schema (more than 40): %v", len(keys), keys)
	}
	for _, key := range keys {
		if !present[key] {
			t.Errorf("key %s is not documented in examples/pgsink.yaml (set it, or show it commented out)", key)
		}
	}
	for path := range present {
		if strings.HasSuffix(path, "[]") || strings.HasPrefix(path, "kafka.") || strings.Contains(path, ".rename.") || strings.Contains(path, ".payload.") {
			continue
		}
		if !contains(keys, path) {
			t.Errorf("examples/pgsink.yaml has %s, which Keys() does not list", path)
		}
	}
}

// anyEnv sets every variable, so that commented secrets parse too.
func anyEnv(string) (string, bool) { return "set", true }
