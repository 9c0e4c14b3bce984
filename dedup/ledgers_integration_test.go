//go:build integration

package dedup_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// Forget clears the ledger entries of one target (a replay's rebuild) and
// leaves every other target's.
func TestIntegrationForgetLedgers(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	for _, target := range []string{"public.t", "public.u"} {
		if _, err := pool.Exec(ctx, `INSERT INTO pgsink.tombstones (target, key, commit_lsn, lsn) VALUES ($1, '[1]', 1, 1)`, target); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO pgsink.outbox_events (target, event_id, topic, partition, "offset") VALUES ($1, 'e-1', 'o', 0, 0)`, target); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO pgsink.moved_rows (target, key, commit_lsn, lsn) VALUES ($1, '[1]', 1, 1)`, target); err != nil {
			t.Fatal(err)
		}
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return dedup.NewLedgers(schema).Forget(ctx, tx, "public.t") }); err != nil {
		t.Fatal(err)
	}
	var tombstones, events, moved string
	if err := pool.QueryRow(ctx, `SELECT (SELECT string_agg(target, ',') FROM pgsink.tombstones), (SELECT string_agg(target, ',') FROM pgsink.outbox_events),
		(SELECT string_agg(target, ',') FROM pgsink.moved_rows)`).Scan(&tombstones, &events, &moved); err != nil {
		t.Fatal(err)
	}
	if tombstones != "public.u" || events != "public.u" || moved != "public.u" {
		t.Fatalf("after Forget(public.t): tombstones of %q, outbox events of %q, moved rows of %q; want public.u's only in each", tombstones, events, moved)
	}
}
