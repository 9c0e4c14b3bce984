//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationCheckVersion: CheckVersion, what a start without
// migrations (run --no-migrate) checks first, refuses every schema this
// pgsink cannot run on — none yet, migrated short of its version, migrated
// by a newer pgsink, a migration that failed half-way — naming the version
// found and the one needed, and passes the current one; Up refuses the
// newer and the dirty ones the same way.
func TestIntegrationCheckVersion(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	m := dedup.NewMigrator(url, schema)
	latest := dedup.LatestVersion()
	setVersion := func(v uint, dirty bool) {
		t.Helper()
		if _, err := conn.Exec(ctx, `UPDATE `+schema+`.schema_migrations SET version = $1, dirty = $2`, int64(v), dirty); err != nil {
			t.Fatal(err)
		}
	}
	wantRefused := func(step string, found uint, dirty bool, says string) {
		t.Helper()
		err := dedup.CheckVersion(ctx, conn, schema)
		var ve *dedup.VersionError
		if !errors.As(err, &ve) || ve.Found != found || ve.Needed != latest || ve.Dirty != dirty {
			t.Fatalf("%s: CheckVersion = %v; want a VersionError found %d, needed %d, dirty %v", step, err, found, latest, dirty)
		}
		if !strings.Contains(err.Error(), says) {
			t.Fatalf("%s: %q does not say %q", step, err, says)
		}
	}

	if err := dedup.CheckVersion(ctx, conn, schema); err == nil || !strings.Contains(err.Error(), `schema "pgsink" does not exist: run pgsink migrate up`) {
		t.Fatalf("no schema yet: CheckVersion = %v; want it to say the schema does not exist", err)
	}
	if err := m.UpTo(ctx, latest-1); err != nil {
		t.Fatal(err)
	}
	wantRefused("migrated short of this pgsink's version", latest-1, false,
		"are at version "+itoa(latest-1)+" and this pgsink needs "+itoa(latest)+": run pgsink migrate up")
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dedup.CheckVersion(ctx, conn, schema); err != nil {
		t.Fatalf("current: CheckVersion = %v; want nil", err)
	}

	setVersion(latest+1, false)
	wantRefused("migrated by a newer pgsink", latest+1, false, "newer than this pgsink knows (it needs "+itoa(latest)+")")
	var ve *dedup.VersionError
	if err := m.Up(ctx); !errors.As(err, &ve) || ve.Found != latest+1 {
		t.Fatalf("Up on a newer schema = %v; want a VersionError found %d", err, latest+1)
	}

	setVersion(latest, true)
	wantRefused("a migration failed half-way", latest, true, "failed half-way (dirty)")
	if err := m.Up(ctx); !errors.As(err, &ve) || !ve.Dirty {
		t.Fatalf("Up on a dirty schema = %v; want a dirty VersionError", err)
	}
}

func itoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }
