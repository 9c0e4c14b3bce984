package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ready\n"))
		case "/slow":
			<-r.Context().Done()
		default:
			http.Error(w, "group not joined", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "ready", args: []string{"--url", srv.URL + "/readyz"}, wantCode: 0, wantStdout: "/readyz: ready"},
		{name: "not ready", args: []string{"--url", srv.URL + "/notready"}, wantCode: 1, wantStderr: "HTTP 503: group not joined"},
		{name: "refused", args: []string{"--url", closed.URL + "/readyz"}, wantCode: 1, wantStderr: "connection refused"},
		{name: "timeout", args: []string{"--url", srv.URL + "/slow", "--timeout", "50ms"}, wantCode: 1, wantStderr: "Timeout"},
		{name: "stray argument", args: []string{"extra"}, wantCode: 2, wantStderr: "no arguments are taken"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: "Usage: pgsink healthcheck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"healthcheck"}, tt.args...), &stdout, &stderr)
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
