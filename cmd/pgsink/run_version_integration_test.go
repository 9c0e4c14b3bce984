//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// TestIntegrationRunNoMigrateChecksTheVersion: `pgsink run --no-migrate`
// refuses at its start pgsink's tables at a version other than its own —
// older, newer (a newer pgsink migrated them), or dirty — naming the
// version found, the one it needs and what to do, as validate --no-migrate
// reports them; on the current version it goes on to start.
func TestIntegrationRunNoMigrateChecksTheVersion(t *testing.T) {
	ctx := context.Background()
	targetURL := stacktest.OwnedTargetDatabase(t)
	t.Setenv("PGSINK_DATABASE_URL", targetURL)
	path := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:1, group.id: g }
postgres: { url: '${PGSINK_DATABASE_URL}' }
metrics: { listen: '127.0.0.1:0' }
tables:
  - topic: app.public.t
    target: public.t
    schema: { create: true }
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dedup.NewMigrator(targetURL, "pgsink").Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	latest := dedup.LatestVersion()
	for _, tc := range []struct {
		name    string
		version uint
		dirty   bool
		says    string
	}{
		{"older", latest - 1, false, fmt.Sprintf(`pgsink's tables in "pgsink" are at version %d and this pgsink needs %d: run pgsink migrate up`, latest-1, latest)},
		{"newer", latest + 1, false, fmt.Sprintf(`pgsink's tables in "pgsink" are at version %d, newer than this pgsink knows (it needs %d)`, latest+1, latest)},
		{"dirty", latest, true, fmt.Sprintf(`migration %d of pgsink's tables in "pgsink" is dirty (being applied at this moment, or failed half-way), and this pgsink needs version %d`, latest, latest)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Exec(ctx, `UPDATE pgsink.schema_migrations SET version = $1, dirty = $2`, int64(tc.version), tc.dirty); err != nil {
				t.Fatal(err)
			}
			// Without the check the start goes on to consume: bounded, so
			// that it fails rather than hangs.
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err := serve(sctx, cfg, zap.NewNop(), true)
			var ve *dedup.VersionError
			if !errors.As(err, &ve) || ve.Found != tc.version || ve.Needed != latest || ve.Dirty != tc.dirty {
				t.Fatalf("serve --no-migrate = %v; want a VersionError found %d, needed %d, dirty %v", err, tc.version, latest, tc.dirty)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("the refusal %q does not say %q", err, tc.says)
			}
		})
	}

	// Through the command: exit 1 at once, the reason on stderr. Run
	// stops on a signal only: without the check it is left running.
	var stdout, stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() { exited <- run([]string{"run", "--no-migrate", "--config", path}, &stdout, &stderr) }()
	select {
	case code := <-exited:
		if code != 1 || !strings.Contains(stderr.String(), "is dirty (being applied at this moment, or failed half-way)") {
			t.Fatalf("pgsink run --no-migrate on a dirty schema: exit %d, stderr %s; want 1 and the reason", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pgsink run --no-migrate on a dirty schema still running after 20 s; want it refused at its start")
	}

	if _, err := conn.Exec(ctx, `UPDATE pgsink.schema_migrations SET version = $1, dirty = false`, int64(latest)); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var ve *dedup.VersionError
	if err := serve(sctx, cfg, zap.NewNop(), true); errors.As(err, &ve) || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
		t.Fatalf("serve --no-migrate on the current version = %v; want it started (and stopped by its context)", err)
	}
}
