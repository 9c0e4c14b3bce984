package upstream

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// connectServer answers GET /connectors?expand=info with the recorded
// fixture to a request with the given basic-auth credentials (none when
// user is empty), and 401 (as Connect's BasicAuthSecurityRestExtension does)
// to any other.
func connectServer(t *testing.T, user, password string) http.Handler {
	body, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if user != "" && (!ok || u != user || p != password) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error_code":401,"message":"User cannot access the resource."}`))
			return
		}
		if r.URL.Path != "/connectors" || r.URL.Query().Get("expand") != "info" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	})
}

func TestClientBasicAuth(t *testing.T) {
	srv := httptest.NewServer(connectServer(t, "pgsink", "s3cret-pw"))
	defer srv.Close()
	client, err := NewClient(config.Debezium{ConnectURL: srv.URL + "/", User: "pgsink", Password: "s3cret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.Connectors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if want := "lossless lossy outbox partial precise routed"; strings.Join(names, " ") != want {
		t.Errorf("connectors = %v, want %s in name order", names, want)
	}

	wrong, err := NewClient(config.Debezium{ConnectURL: srv.URL, User: "pgsink", Password: "wrong-pw"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Connectors(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 401: {\"error_code\":401") {
		t.Fatalf("want Connect's 401 in the error, got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestClientTLSCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(connectServer(t, "", ""))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	if _, err := mustClient(t, config.Debezium{ConnectURL: srv.URL}).Connectors(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a certificate signed by an unknown CA must be refused, got %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mustClient(t, config.Debezium{ConnectURL: srv.URL, TLSCA: ca}).Connectors(context.Background()); err != nil {
		t.Fatalf("with debezium.tls_ca: %v", err)
	}
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(config.Debezium{ConnectURL: srv.URL, TLSCA: ca}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("want a tls_ca without a certificate refused, got %v", err)
	}
}

func mustClient(t *testing.T, d config.Debezium) *Client {
	t.Helper()
	c, err := NewClient(d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
