//go:build integration

package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the pgsink built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pgsink-faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pgsink")
	build := exec.Command("go", "build", "-o", binary, "github.com/pgsink/pgsink/cmd/pgsink")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pgsink:", err)
		os.Exit(1)
	}
	code := m.Run()
	if path := os.Getenv("PGSINK_FAULTS_RESULTS"); path != "" {
		if err := writeResults(path); err != nil {
			fmt.Fprintln(os.Stderr, "writing results:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one `pgsink run` process. Its logs are kept whole: the checks
// search them for invariant markers and fencing.
type proc struct {
	name     string
	cmd      *exec.Cmd
	port     int // metrics
	mu       sync.Mutex
	logs     bytes.Buffer
	done     chan struct{}
	signals  []syscall.Signal // sent by the harness, to tell expected deaths from failures
	counters counters
}

type procWriter struct{ p *proc }

func (w procWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.logs.Write(b)
}

func startProc(t testing.TB, name, configPath string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary, "run", "--config", configPath, "--log-format", "console")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = procWriter{p}, procWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and waits up to timeout, then SIGKILL.
func (p *proc) stop(timeout time.Duration) {
	if p.exited() {
		return
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

// exitProblem says why the process's end was not an expected one: a SIGTERM
// must end in exit 0; a SIGKILL (the harness's or a failpoint's) is
// expected; anything else — an audit violation above all — is a failure.
func (p *proc) exitProblem() string {
	if !p.exited() {
		return ""
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return ""
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return ""
	}
	return fmt.Sprintf("%s (pid %d) ended with %s; last log lines:\n%s", p.name, p.cmd.Process.Pid, p.cmd.ProcessState, tail(p.Logs(), 15))
}

// killedByFailpoint: the process SIGKILLed itself at a failpoint.
func (p *proc) killedByFailpoint() bool {
	if !p.exited() {
		return false
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL && bytes.Contains([]byte(p.Logs()), []byte("failpoint "))
}

func tail(s string, n int) string {
	lines := regexp.MustCompile("\n").Split(s, -1)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// metric reads one unlabelled series, or the sum of a labelled one, from the
// instance's /metrics; -1 when it does not answer.
func (p *proc) metric(name string) float64 {
	return p.metricWhere(name, "")
}

// metricWhere is metric restricted to the series whose labels contain label
// (e.g. `reason="stale"`); "" takes every series.
func (p *proc) metricWhere(name, label string) float64 {
	if p.exited() {
		return -1
	}
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	total, found := 0.0, false
	for _, m := range re.FindAllSubmatch(body, -1) {
		if label != "" && !bytes.Contains(m[1], []byte(label)) {
			continue
		}
		v, err := strconv.ParseFloat(string(m[2]), 64)
		if err == nil {
			total += v
			found = true
		}
	}
	if !found {
		return 0
	}
	return total
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runCommand runs a pgsink subcommand (replay, migrate) to completion.
func runCommand(timeout time.Duration, env []string, args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), errors.New("timed out after " + timeout.String())
	}
}
