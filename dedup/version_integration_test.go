//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

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
	wantRefused("a migration failed half-way", latest, true, "is dirty (being applied at this moment, or failed half-way)")
	if err := m.Up(ctx); !errors.As(err, &ve) || !ve.Dirty {
		t.Fatalf("Up on a dirty schema = %v; want a dirty VersionError", err)
	}
}

func itoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }

// TestIntegrationUpBehindAPeerMigrating: instances that start together
// all migrate at start; the one that takes golang-migrate's lock leaves the
// version dirty while it migrates. Another one's Up waits for it and finds
// the tables current, rather than take that dirty version for a migration
// that failed half-way. Migration 0012 waits for a reader of tx_staged,
// which holds the first Up in it for as long as the test needs.
func TestIntegrationUpBehindAPeerMigrating(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	m := dedup.NewMigrator(url, schema)
	if err := m.UpTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	reader, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM `+schema+`.tx_staged`); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- m.Up(ctx) }()
	watch, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	dirty := false
	for deadline := time.Now().Add(30 * time.Second); !dirty && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := watch.QueryRow(ctx, `SELECT coalesce(bool_or(dirty), false) FROM `+schema+`.schema_migrations`).Scan(&dirty); err != nil {
			t.Fatal(err)
		}
	}
	if !dirty {
		t.Fatal("the first Up never seen migrating (dirty version)")
	}
	second := make(chan error, 1)
	go func() { second <- m.Up(ctx) }()
	select {
	case err := <-second:
		t.Fatalf("Up while a peer migrates returned %v before the peer was done; want it to wait for the peer", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := reader.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatalf("Up %d: %v; want both done", i+1, err)
		}
	}
	if err := dedup.CheckVersion(ctx, watch, schema); err != nil {
		t.Fatalf("after both: %v", err)
	}
}
