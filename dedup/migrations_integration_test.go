//go:build integration

package dedup_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationMigration12KeepsStaging: migration 0012 runs on a live
// fleet (a rolling upgrade), where a resolver's apply transaction reads
// tx_staged for as long as a large transaction takes. Dropping the index
// must not stop staging meanwhile: a plain DROP INDEX queues for an ACCESS
// EXCLUSIVE lock on tx_staged behind that reader, and every partition's
// stage (INSERT or COPY into tx_staged) queues behind it, so the whole
// pipeline waits for the apply, or fails at the role's lock_timeout.
func TestIntegrationMigration12KeepsStaging(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	m := dedup.NewMigrator(url, schema)
	if err := m.UpTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// A resolver applying a large transaction: reading tx_staged in an
	// open transaction.
	reader, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM `+schema+`.tx_staged`); err != nil {
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { migrated <- m.Up(ctx) }()
	// The migration waits for the reader (whatever lock it waits on).
	waiting := false
	for deadline := time.Now().Add(30 * time.Second); !waiting && time.Now().Before(deadline); {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND query ILIKE '%DROP INDEX%' AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if !waiting {
			select {
			case err := <-migrated:
				t.Fatalf("migration 0012 finished (%v) while a transaction read tx_staged; the test wants it waiting", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if !waiting {
		t.Fatal("migration 0012 never seen waiting for the transaction reading tx_staged")
	}
	// A partition stages a record meanwhile, under a lock_timeout as the
	// instances' role has one.
	stager, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stager.Rollback(ctx)
	if _, err := stager.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := stager.Exec(ctx, `INSERT INTO `+schema+`.tx_staged (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset)
		VALUES ('g', 1, 1, 'public.t', 't', 0, 1)`); err != nil {
		t.Fatalf("staging a record while migration 0012 waits for a reader of tx_staged: %v; want it staged (the migration must not lock staging out)", err)
	}
	if err := stager.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reader.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	var left bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+".tx_staged_first_at").Scan(&left); err != nil || left {
		t.Fatalf("index tx_staged_first_at after migration 0012: present %v (%v), want dropped", left, err)
	}
	if v, dirty, err := m.Version(ctx); err != nil || dirty || v < 12 {
		t.Fatalf("version after Up = %d, dirty %v, %v; want 12 or later, clean", v, dirty, err)
	}
}
