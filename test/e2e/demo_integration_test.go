//go:build integration

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestE2EDemo runs `make demo`'s program with a short workload and checks it
// converges, so the README's first command cannot rot unnoticed. It uses the
// stack's shared source and target databases, as the demo does.
func TestE2EDemo(t *testing.T) { runDemo(t, "json") }

// TestE2EDemoAvro is TestE2EDemo under `make demo DEMO_FORMAT=avro`: the
// demo's connectors on Apicurio's Avro converter, pgsink on encoding: avro.
func TestE2EDemoAvro(t *testing.T) { runDemo(t, "avro") }

func runDemo(t *testing.T, format string) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./examples/demo", "-format", format, "-duration", "5s", "-rate", "50", "-pgsink", binary)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	// The demo leaves pgsink running for the user; stop it here.
	stateDir := filepath.Join(os.Getenv("PGSINK_STACK_DIR"), "demo")
	if b, rerr := os.ReadFile(filepath.Join(stateDir, "pgsink.pid")); rerr == nil {
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "converged: every table matches its source") {
		t.Fatalf("demo output has no convergence line:\n%s", out)
	}
}
