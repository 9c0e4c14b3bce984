package main

import (
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// docs/scaling.md tells operators with many tables to raise pgx's statement
// cache through postgres.url: the pool must take it from there, and keep
// its own size from postgres.max_connections whatever the URL says.
func TestPoolConfigStatementCacheFromURL(t *testing.T) {
	for _, c := range []struct {
		url       string
		wantCache int
	}{
		{"postgres://pgsink@db.example/app", 512},
		{"postgres://pgsink@db.example/app?statement_cache_capacity=2048", 2048},
		{"postgres://pgsink@db.example/app?statement_cache_capacity=2048&pool_max_conns=50", 2048},
	} {
		cfg := config.Default()
		cfg.Postgres.URL = c.url
		cfg.Postgres.MaxConnections = 4
		pc, err := poolConfig(&cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if got := pc.ConnConfig.StatementCacheCapacity; got != c.wantCache {
			t.Errorf("%s: statement cache %d, want %d", c.url, got, c.wantCache)
		}
		if pc.MaxConns != 5 {
			t.Errorf("%s: pool of %d connections, want postgres.max_connections + 1 = 5", c.url, pc.MaxConns)
		}
	}
}

func TestPoolConfigBadCacheCapacity(t *testing.T) {
	cfg := config.Default()
	cfg.Postgres.URL = "postgres://pgsink:secret@db.example/app?statement_cache_capacity=many"
	_, err := poolConfig(&cfg)
	if err == nil {
		t.Fatal("a statement_cache_capacity that is no number was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "postgres.url") || strings.Contains(msg, "secret") {
		t.Fatalf("error %q: want it to name postgres.url, without the password", msg)
	}
}
