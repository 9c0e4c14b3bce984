package docker

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// The path the image's ENTRYPOINT reads its configuration from.
const configPath = "/etc/pgsink/pgsink.yaml"

func lookup(env map[string]string) config.LookupEnv {
	return func(name string) (string, bool) { v, ok := env[name]; return v, ok }
}

// loadPgsinkConfig loads the file compose mounts into the pgsink replicas,
// with the environment compose gives them, and fails the test with every
// problem `pgsink validate --offline` would print (it runs the same
// config.Parse, which validates).
func loadPgsinkConfig(t *testing.T) *config.Config {
	t.Helper()
	svc := loadCompose(t).service(t, "pgsink")
	src, ok := svc.mounts()[configPath]
	if !ok {
		t.Fatalf("compose mounts nothing at %s, where the image's ENTRYPOINT reads the configuration", configPath)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(src, data, lookup(svc.Environment))
	if err != nil {
		t.Fatalf("%s with compose's environment is not valid:\n%v", src, err)
	}
	return cfg
}

func TestComposePgsinkConfig(t *testing.T) {
	cfg := loadPgsinkConfig(t)
	if got := cfg.Kafka["bootstrap.servers"]; got != "kafka:9092" {
		t.Errorf("bootstrap.servers = %q, want compose's kafka:9092", got)
	}
	if !strings.Contains(cfg.Postgres.URL, "@target:5432/") {
		t.Errorf("postgres.url %s does not point at compose's target service", config.RedactURL(cfg.Postgres.URL))
	}
	// The published port and the image's healthcheck both assume 9187 on
	// every interface of the container.
	host, port, err := net.SplitHostPort(cfg.Metrics.Listen)
	if err != nil || host != "0.0.0.0" || port != "9187" {
		t.Errorf("metrics.listen = %q, want 0.0.0.0:9187 (published by compose, probed by HEALTHCHECK)", cfg.Metrics.Listen)
	}
	for _, p := range loadCompose(t).service(t, "pgsink").Ports {
		if !strings.HasSuffix(p, ":"+port) {
			t.Errorf("pgsink publishes %q, not metrics.listen's port %s", p, port)
		}
	}
}
