package docker

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeConnect answers the Connect REST calls register.sh makes: it is down
// for the first call, then stores every PUT body and reports each connector
// in the given state.
type fakeConnect struct {
	state string
	mu    sync.Mutex
	calls int
	puts  map[string][]byte
}

func (f *fakeConnect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/connectors/"), "/")
	switch {
	case f.calls == 1:
		http.Error(w, "starting", http.StatusServiceUnavailable)
	case r.URL.Path == "/connectors":
		io.WriteString(w, "[]")
	case r.Method == http.MethodPut && rest == "config":
		body, _ := io.ReadAll(r.Body)
		f.puts[name] = body
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodGet && rest == "status":
		io.WriteString(w, `{"name":"`+name+`","connector":{"state":"RUNNING"},"tasks":[{"id":0,"state":"`+f.state+`"}]}`)
	default:
		http.NotFound(w, r)
	}
}

func runRegister(t *testing.T, state string) (*fakeConnect, string, error) {
	t.Helper()
	connect := &fakeConnect{state: state, puts: map[string][]byte{}}
	srv := httptest.NewServer(connect)
	defer srv.Close()
	cmd := exec.Command("sh", "register.sh")
	cmd.Env = append(os.Environ(), "CONNECT_URL="+srv.URL, "CONNECTOR_DIR="+ConnectorDir, "POLL_SECONDS=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return connect, out.String(), err
}

// TestRegisterScript runs compose's register step (with sh and curl, as the
// curl image has them) against a fake Connect: every connector file is PUT
// byte for byte under its file name, and a failed task fails the step.
func TestRegisterScript(t *testing.T) {
	connect, out, err := runRegister(t, "RUNNING")
	if err != nil {
		t.Fatalf("register.sh: %v\n%s", err, out)
	}
	var names []string
	for name, body := range connect.puts {
		names = append(names, name)
		file, err := os.ReadFile(filepath.Join(ConnectorDir, name+".json"))
		if err != nil || !bytes.Equal(body, file) {
			t.Errorf("PUT /connectors/%s/config sent %d bytes, not the file's (%v)", name, len(body), err)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, Connectors()) {
		t.Errorf("register.sh registered %v, want %v", names, Connectors())
	}
	for _, name := range Connectors() {
		if !strings.Contains(out, "register: "+name+" running") {
			t.Errorf("output does not report %s running:\n%s", name, out)
		}
	}

	_, out, err = runRegister(t, "FAILED")
	if err == nil || !strings.Contains(out, "failed") {
		t.Errorf("a FAILED task: err %v, output %q; want a non-zero exit that says failed", err, out)
	}
}
