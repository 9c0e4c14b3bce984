//go:build integration

package sink

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationRouterRoutesSkippedImagesAtStaging: a staging partition
// (apply.consistency: transaction) leaves a source transaction's row images
// undecoded, but still routes the event: the target is resolved — created
// here, evolved or refused under schema.evolve — by the partition, before
// the record is staged, not by the resolver inside its open apply
// transaction, where an ALTER TABLE of a table that transaction wrote would
// wait for it (review of txcost5: the router returned such items
// unrouted).
func TestIntegrationRouterRoutesSkippedImagesAtStaging(t *testing.T) {
	ctx := context.Background()
	url := stacktest.TargetDatabase(t, `GRANT CREATE ON SCHEMA public TO pgsink`)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg, err := config.Parse("test.yaml", []byte(`kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic: fixture_shipped.public.all_types
    target: public.all_types
    schema: { create: true }
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(cfg, pool)
	dec := r.NewDecoder()
	dec.SkipTransactionalImages()
	records, err := recording.ReadFile(filepath.Join("..", "testdata", "debezium", "shipped", "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, rec := range records {
		if rec.Topic != "fixture_shipped.public.all_types" {
			continue
		}
		dr := debezium.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value}
		it, ok, err := r.Item(ctx, dec, dr)
		if err != nil || !ok || it.Err != nil || !it.Change.ImagesSkipped {
			continue // tombstones, snapshot reads: routed as ever
		}
		skipped++
		if it.Table == nil || it.Table.Ref() != "public.all_types" {
			t.Fatalf("%s@%d: an event staged with its images undecoded left unrouted (table %v): its target is resolved only in the resolver's transaction", rec.Topic, rec.Offset, it.Table)
		}
	}
	if skipped == 0 {
		t.Fatal("no recorded event of a source transaction had its images skipped: the test checks nothing")
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('public.all_types') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		t.Errorf("public.all_types not created by the staging partition's router (%v)", err)
	}
}
