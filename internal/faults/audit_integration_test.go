//go:build integration

package faults

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationCreateAuditRace: instances starting together all create
// the audit table; none may fail (a bare CREATE TABLE IF NOT EXISTS does
// fail under that race, on pg_type or pg_class).
func TestIntegrationCreateAuditRace(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, stacktest.OwnedTargetDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA pgsink`); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS pgsink.apply_audit`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- CreateAudit(ctx, pool, "pgsink")
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
