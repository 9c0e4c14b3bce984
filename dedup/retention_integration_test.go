//go:build integration

package dedup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// A record of an applied transaction left staged (a re-emission staged
// while the resolver applied the transaction) goes with the transaction's
// tx_resolved row when it is pruned: kept, it would then look like a
// transaction waiting for its END, and the resolver would stop on it.
// Records of transactions not applied stay.
func TestIntegrationPruneResolvedTakesLeftStagedRecords(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	for _, q := range []string{
		`INSERT INTO pgsink.tx_resolved (group_id, tx_id, event_count, resolved_at) VALUES ('g', 1, 2, now() - interval '2 hours'), ('g', 2, 1, now())`,
		`INSERT INTO pgsink.tx_staged (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset)
			VALUES ('g', 1, 2, 'public.t', 't', 0, 5), ('g', 2, 1, 'public.t', 't', 0, 6), ('g', 3, 1, 'public.t', 't', 0, 7), ('h', 1, 1, 'public.t', 't', 0, 8)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := dedup.NewLedgers("pgsink").Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour})
	if err != nil || got.TxResolved != 1 {
		t.Fatalf("Prune = %+v, %v; want transaction 1 of g pruned", got, err)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT string_agg(group_id || tx_id, ' ' ORDER BY group_id, tx_id) FROM pgsink.tx_staged`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "g2 g3 h1" {
		t.Fatalf("staged after pruning: %s; want g2 g3 h1 (g1's record pruned with its transaction)", left)
	}
	if oldest, ok, err := dedup.NewTransactions("pgsink").StagedLongerThan(ctx, pool, "g", 0); err != nil || !ok || oldest.TxID != 3 {
		t.Fatalf("oldest staged of g: %+v, %v, %v; want transaction 3", oldest, ok, err)
	}
}

// Pruning takes the schemas of tx_schemas no staged record names and
// stored longer ago than the tombstones' retention (at least two hours), keeps those a staged
// record names (by its key or its value) and the recent ones; a schema
// pruned is stored again by the next staging that needs it.
func TestIntegrationPruneSchemas(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions("pgsink")
	rec := func(txID int64, keySchema, valueSchema string) dedup.StagedRecord {
		return dedup.StagedRecord{TxID: txID, TotalOrder: 1, DataCollection: "public.t", Topic: "t",
			Key:   []byte(`{"schema":` + keySchema + `,"payload":1}`),
			Value: []byte(`{"schema":` + valueSchema + `,"payload":{"v":1}}`)}
	}
	stage := func(records ...dedup.StagedRecord) { t.Helper(); stageIn(t, pool, tx, records...) }
	// Transaction 1 names k1 and v1, transaction 2 k2 and v2; 2 is
	// applied (its records deleted); v3 is stored but recent.
	stage(rec(1, `{"type":"int64","name":"k1"}`, `{"type":"struct","name":"v1"}`), rec(2, `{"type":"int64","name":"k2"}`, `{"type":"struct","name":"v2"}`))
	b := &pgx.Batch{}
	tx.QueueResolve(b, "g", 2, 0, 1)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE pgsink.tx_schemas SET stored_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	stage(rec(3, `{"type":"int64","name":"k1"}`, `{"type":"struct","name":"v3"}`))
	if _, err := pool.Exec(ctx, `DELETE FROM pgsink.tx_staged WHERE tx_id = 3`); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, `SELECT string_agg(n, ' ' ORDER BY n) FROM (SELECT convert_from(schema, 'UTF8')::jsonb->>'name' AS n FROM pgsink.tx_schemas) s`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	got, err := dedup.NewLedgers("pgsink").Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour})
	if err != nil || got.TxSchemas != 2 {
		t.Fatalf("Prune = %+v, %v; want the 2 schemas of transaction 2 pruned", got, err)
	}
	if s := names(); s != "k1 v1 v3" {
		t.Fatalf("schemas after pruning: %s; want k1 v1 (named by transaction 1) and v3 (recent)", s)
	}
	stage(rec(4, `{"type":"int64","name":"k2"}`, `{"type":"struct","name":"v2"}`))
	if s := names(); s != "k1 k2 v1 v2 v3" {
		t.Fatalf("schemas after staging transaction 4 anew: %s; want k2 and v2 back", s)
	}
	read, err := dedup.NewTransactions("pgsink").ReadStaged(ctx, pool, "g", 4, 0, 10, 0)
	if err != nil || len(read) != 1 {
		t.Fatalf("transaction 4 read back as %+v, %v", read, err)
	}
	if key, _ := read[0].Whole(); string(key) != `{"schema":{"type":"int64","name":"k2"},"payload":1}` {
		t.Fatalf("transaction 4's key read back as %s", key)
	}
}

// A staging transaction naming a schema stored long ago, not committed
// yet, keeps it from a prune running meanwhile: the prune waits for it and
// keeps the schema its records now name. Without the staging's mark the
// prune, seeing no staged record name the schema, would delete it, and
// the resolver would stop on records staged without their schema.
func TestIntegrationPruneSchemasWaitsForAStaging(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions("pgsink")
	rec := dedup.StagedRecord{TxID: 1, TotalOrder: 1, DataCollection: "public.t", Topic: "t",
		Value: []byte(`{"schema":{"type":"struct","name":"v1"},"payload":{"v":1}}`)}
	stageIn(t, pool, tx, rec)
	if _, err := pool.Exec(ctx, `DELETE FROM pgsink.tx_staged`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE pgsink.tx_schemas SET stored_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	staging, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = staging.Rollback(ctx) }()
	b := &pgx.Batch{}
	rec.TxID = 2
	if _, err := tx.QueueStage(b, "g", []dedup.StagedRecord{rec}, nil); err != nil {
		t.Fatal(err)
	}
	if err := staging.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   dedup.Pruned
		err error
	}
	pruned := make(chan result, 1)
	go func() {
		p, err := dedup.NewLedgers("pgsink").Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour})
		pruned <- result{p, err}
	}()
	select {
	case r := <-pruned:
		// A prune that did not wait must have kept the schema anyway.
		if r.err != nil || r.p.TxSchemas != 0 {
			t.Fatalf("Prune beside an uncommitted staging = %+v, %v; want the schema kept", r.p, r.err)
		}
	case <-time.After(500 * time.Millisecond):
		// Waiting on the schema's row, as expected: let the staging commit.
	}
	if err := staging.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-pruned
	if r.err != nil || r.p.TxSchemas != 0 {
		t.Fatalf("Prune = %+v, %v; want the schema transaction 2 names kept", r.p, r.err)
	}
	read, err := tx.ReadStaged(ctx, pool, "g", 2, 0, 10, 0)
	if err != nil || len(read) != 1 {
		t.Fatalf("transaction 2 read back as %+v, %v; want its record with its schema", read, err)
	}
}
