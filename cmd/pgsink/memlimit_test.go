package main

import (
	"runtime/debug"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// The Go heap's soft limit follows apply.max_buffered_bytes unless
// GOMEMLIMIT sets one.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cfg := config.Default()
	cfg.Apply.MaxBufferedBytes = 100 << 20

	t.Setenv("GOMEMLIMIT", "")
	limit, source := setMemoryLimit(&cfg)
	if want := int64(264 << 20); limit != want || debug.SetMemoryLimit(-1) != want || source != "apply.max_buffered_bytes" {
		t.Errorf("derived limit %d from %s, runtime %d; want %d from apply.max_buffered_bytes", limit, source, debug.SetMemoryLimit(-1), want)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30) // what the runtime read from GOMEMLIMIT at start
	if limit, source := setMemoryLimit(&cfg); limit != 1<<30 || source != "GOMEMLIMIT" {
		t.Errorf("with GOMEMLIMIT set: %d from %s, want the environment's 1 GiB", limit, source)
	}
}
