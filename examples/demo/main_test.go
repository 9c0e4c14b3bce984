package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMain doubles as a stand-in for a pgsink process: with
// DEMO_TEST_FAKE_PGSINK set it only sleeps, under whatever command line the
// test gave it.
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_TEST_FAKE_PGSINK") != "" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunsConfig holds demo-clean to the processes running this clone's
// demo configuration: a pgsink with another file, another working
// directory or another command is never stopped.
func TestRunsConfig(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	clone, other := t.TempDir(), t.TempDir()
	config := filepath.Join(clone, demoConfig)
	start := func(dir string, args ...string) int {
		cmd := exec.Command(self)
		cmd.Args, cmd.Dir = args, dir
		cmd.Env = append(os.Environ(), "DEMO_TEST_FAKE_PGSINK=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd.Process.Pid
	}
	for _, tc := range []struct {
		name string
		dir  string
		args []string
		want bool
	}{
		{"the tip's command", clone, []string{"bin/pgsink", "run", "--config", "examples/demo.yaml", "--log-format", "console"}, true},
		{"absolute path, = form", other, []string{"/usr/local/bin/pgsink", "run", "-config=" + config}, true},
		{"another clone", other, []string{"bin/pgsink", "run", "--config", "examples/demo.yaml"}, false},
		{"another file", clone, []string{"bin/pgsink", "run", "--config", "examples/pgsink.yaml"}, false},
		{"not run", clone, []string{"bin/pgsink", "status", "--config", "examples/demo.yaml"}, false},
		{"not pgsink", clone, []string{"bin/other", "run", "--config", "examples/demo.yaml"}, false},
	} {
		pid := start(tc.dir, tc.args...)
		var got bool
		for i := 0; i < 50; i++ { // until the child has exec'd
			if got = runsConfig(pid, config); got == tc.want {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got != tc.want {
			t.Errorf("%s: runsConfig = %v, want %v", tc.name, got, tc.want)
		}
	}
}
