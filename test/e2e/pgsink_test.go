//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// binary is the pgsink built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pgsink-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pgsink")
	// -race: the end-to-end tests are where the runtime meets real
	// concurrency (rebalances, seeks, shutdowns), so let them catch races.
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/pgsink/pgsink/cmd/pgsink")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pgsink:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitsInParallel marks a test that runs beside the package's other such
// tests once the sequential ones are done (as many at once as go test's
// -parallel, which `make test` sets), which shortens the suite by the
// overlap. Those that mostly wait on the clock (an outage held past a
// retry deadline, session timeouts, a resolver's max_wait) gain the most;
// one that works the cores may join only if it asserts nothing about
// time or throughput, since it runs slower there. Any such test must own
// everything it touches (its sandbox's topics, group, source database and
// connector, its target database and proxy) and must not stop, kill or
// reconfigure a shared service. Registering its own connector is fine:
// the stack's Connect worker rebalances incrementally, so another test's
// running connector keeps its task.
func waitsInParallel(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// process is one running `pgsink run`.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

type lockedWriter struct{ p *process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.logs.Write(b)
}

// startPgsink runs `pgsink run --config` with the given YAML; its logs are
// printed if the test fails.
func startPgsink(t *testing.T, yaml string, env ...string) *process {
	t.Helper()
	return startPgsinkArgs(t, yaml, nil, env...)
}

// startPgsinkArgs is startPgsink with more flags for run.
func startPgsinkArgs(t *testing.T, yaml string, args []string, env ...string) *process {
	t.Helper()
	return startBinary(t, binary, yaml, args, env...)
}

// startPgsinkBinary is startPgsink of another build of pgsink.
func startPgsinkBinary(t *testing.T, bin, yaml string, env ...string) *process {
	t.Helper()
	return startBinary(t, bin, yaml, nil, env...)
}

func startBinary(t *testing.T, bin, yaml string, args []string, env ...string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"run", "--config", path, "--log-format", "console"}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	// A configuration error ends the process at once: fail here with its
	// message rather than time out later waiting for data.
	select {
	case err := <-p.done:
		t.Fatalf("pgsink exited at start (%v):\n%s", err, p.Logs())
	case <-time.After(500 * time.Millisecond):
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("pgsink (pid %d) logs:\n%s", p.cmd.Process.Pid, p.Logs())
		}
	})
	return p
}

func (p *process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and returns the exit code and how long the exit took.
func (p *process) stop(timeout time.Duration) (int, time.Duration) {
	p.t.Helper()
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("pgsink did not exit within %s of SIGTERM", timeout)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(t0)
}

// checksum is an md5 over a table's rows in key order, as row_to_json
// renders them: equal checksums mean equal contents, value for value.
func checksum(t testing.TB, url, query string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sum *string
	if err := conn.QueryRow(context.Background(), `SELECT md5(string_agg(row_to_json(q)::text, E'\n')) FROM (`+query+`) q`).Scan(&sum); err != nil {
		t.Fatalf("checksum: %v\n%s", err, query)
	}
	if sum == nil {
		return "empty"
	}
	return *sum
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s; last state: %s", what, timeout, last)
}

// checksumOrMissing is checksum, or "missing" while the table or a column
// does not exist yet.
func checksumOrMissing(t *testing.T, url, query string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sum *string
	if err := conn.QueryRow(context.Background(), `SELECT md5(string_agg(row_to_json(q)::text, E'\n')) FROM (`+query+`) q`).Scan(&sum); err != nil {
		return "missing (" + err.Error() + ")"
	}
	if sum == nil {
		return "empty"
	}
	return *sum
}

// pgsinkCommand is `pgsink COMMAND --config FILE ARGS…` on the
// configuration yaml with env added.
func pgsinkCommand(t *testing.T, yaml string, env []string, command string, args ...string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{command, "--config", path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// pgsinkRun runs pgsinkCommand and returns its combined output and error:
// for a command expected to be refused.
func pgsinkRun(t *testing.T, yaml string, env []string, command string, args ...string) (string, error) {
	t.Helper()
	out, err := pgsinkCommand(t, yaml, env, command, args...).CombinedOutput()
	return string(out), err
}

// pgsinkOutput runs pgsinkCommand and returns its standard output; a
// non-zero exit fails t with both outputs.
func pgsinkOutput(t *testing.T, yaml string, env []string, command string, args ...string) []byte {
	t.Helper()
	cmd := pgsinkCommand(t, yaml, env, command, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pgsink %s: %v\n%s%s", command, err, out, stderr.String())
	}
	return out
}
