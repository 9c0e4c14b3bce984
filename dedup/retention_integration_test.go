//go:build integration

package dedup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgsink/pgsink/dedup"
)

// Pruning removes exactly the entries older than the retention, by the
// database's clock, in chunks smaller than what is to be pruned, and keeps
// every entry newer than the retention, however close to the boundary.
func TestIntegrationPruneLedgers(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	// ages relative to now(), as SQL intervals; retention is 1 hour (3600s)
	// for tombstones and 2 hours for outbox events.
	ages := []struct {
		age      string
		old      bool // older than the 1h retention
		oldEvent bool // older than the 2h retention
	}{
		{"0 seconds", false, false},
		{"59 minutes", false, false},
		{"3595 seconds", false, false}, // 5 s inside the retention
		{"3605 seconds", true, false},  // 5 s past it
		{"90 minutes", true, false},
		{"7195 seconds", true, false},
		{"7205 seconds", true, true},
		{"30 days", true, true},
	}
	const copies = 7 // with a chunk of 3, the old entries span several chunks
	wantTombstones, wantEvents := 0, 0
	for i, a := range ages {
		for c := 0; c < copies; c++ {
			key := fmt.Sprintf(`[%d, %d]`, i, c)
			if _, err := pool.Exec(ctx, `INSERT INTO pgsink.tombstones (target, key, commit_lsn, lsn, deleted_at)
				VALUES ('public.t', $1::jsonb, 1, 1, now() - $2::interval)`, key, a.age); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO pgsink.moved_rows (target, key, commit_lsn, lsn, moved_at)
				VALUES ('public.t', $1::jsonb, 1, 1, now() - $2::interval)`, key, a.age); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO pgsink.outbox_events (target, event_id, topic, partition, "offset", applied_at)
				VALUES ('public.t', $1, 'o', 0, 0, now() - $2::interval)`, key, a.age); err != nil {
				t.Fatal(err)
			}
		}
		if a.old {
			wantTombstones += copies
		}
		if a.oldEvent {
			wantEvents += copies
		}
	}
	ledgers := dedup.NewLedgers("pgsink")
	got, err := ledgers.Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour, OutboxEvents: 2 * time.Hour, Chunk: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.Tombstones != int64(wantTombstones) || got.OutboxEvents != int64(wantEvents) || got.MovedRows != int64(wantTombstones) {
		t.Fatalf("Prune removed %d tombstones, %d moved rows and %d events, want %d, %d (with the tombstones' retention) and %d",
			got.Tombstones, got.MovedRows, got.OutboxEvents, wantTombstones, wantTombstones, wantEvents)
	}
	for _, q := range []struct{ table, at, retention string }{
		{"tombstones", "deleted_at", "1 hour"}, {"moved_rows", "moved_at", "1 hour"}, {"outbox_events", "applied_at", "2 hours"},
	} {
		var older, newer int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE `+q.at+` < now() - $1::interval),
			count(*) FILTER (WHERE `+q.at+` >= now() - $1::interval) FROM pgsink.`+q.table, q.retention).Scan(&older, &newer); err != nil {
			t.Fatal(err)
		}
		if older != 0 || newer == 0 {
			t.Errorf("%s after Prune: %d entries older than %s left, %d newer kept; want 0 and all", q.table, older, q.retention, newer)
		}
	}
	// A second run finds nothing; a zero retention prunes nothing.
	if got, err := ledgers.Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour, OutboxEvents: 2 * time.Hour}); err != nil || got != (dedup.Pruned{}) {
		t.Fatalf("second Prune = %+v, %v; want nothing", got, err)
	}
	if got, err := ledgers.Prune(ctx, pool, dedup.Retention{}); err != nil || got != (dedup.Pruned{}) {
		t.Fatalf("Prune with zero retention = %+v, %v; want nothing", got, err)
	}
}
