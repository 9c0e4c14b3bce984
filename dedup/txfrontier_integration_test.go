//go:build integration

package dedup_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// TestIntegrationTransactionFrontier: what the resolver publishes for the
// stagers' bound and what they read of it. A partition's frontier only
// moves forward, is -1 before the resolver applied any of its records, and
// is per group; the resolver's wait mark is set by MarkWaiting and ended by
// an apply transaction or EndWaiting; StagedBytesAbove counts the bytes as
// stored of one partition's records above an offset, the bytes QueueStage
// returns, and the highest offset among them.
func TestIntegrationTransactionFrontier(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	const topic = `app "x"; DROP`
	apply := func(group string, offsets ...dedup.PartitionOffset) {
		t.Helper()
		b := &pgx.Batch{}
		tx.QueueApplied(b, group, offsets)
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
	}
	frontier := func(group string, partition int32) dedup.Frontier {
		t.Helper()
		f, err := tx.FrontierOf(ctx, pool, group, topic, partition)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := frontier("g", 0); f != (dedup.Frontier{Applied: -1}) {
		t.Fatalf("frontier before any apply = %+v, want -1 and no wait", f)
	}
	apply("g", dedup.PartitionOffset{Topic: topic, Partition: 1, Offset: 7}, dedup.PartitionOffset{Topic: topic, Partition: 0, Offset: 12})
	apply("g", dedup.PartitionOffset{Topic: topic, Partition: 0, Offset: 5}) // an older one never moves it back
	if f := frontier("g", 0); f.Applied != 12 {
		t.Errorf("partition 0 at %d, want 12", f.Applied)
	}
	if f := frontier("g", 1); f.Applied != 7 {
		t.Errorf("partition 1 at %d, want 7", f.Applied)
	}
	if f := frontier("other", 0); f.Applied != -1 {
		t.Errorf("another group's partition at %d, want -1", f.Applied)
	}

	if err := tx.MarkWaiting(ctx, pool, "g", 40); err != nil {
		t.Fatal(err)
	}
	if err := tx.MarkWaiting(ctx, pool, "g", 40); err != nil { // marked already: no error
		t.Fatal(err)
	}
	if !frontier("g", 3).ResolverWaiting || frontier("other", 0).ResolverWaiting {
		t.Error("the wait mark is not the group's alone")
	}
	if w, ok, err := tx.ResolverWaitOf(ctx, pool, "g"); err != nil || !ok || w.EndOffset != 40 || w.Since.IsZero() {
		t.Errorf("ResolverWaitOf while marked = %+v, %v, %v; want the END at 40 and when", w, ok, err)
	}
	apply("g") // an apply transaction, whatever it applied, ends the wait
	if frontier("g", 0).ResolverWaiting {
		t.Error("the resolver's apply left its wait marked")
	}
	if err := tx.MarkWaiting(ctx, pool, "g", 41); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndWaiting(ctx, pool, "g"); err != nil {
		t.Fatal(err)
	}
	if frontier("g", 0).ResolverWaiting {
		t.Error("EndWaiting left the wait marked")
	}
	if w, ok, err := tx.ResolverWaitOf(ctx, pool, "g"); err != nil || ok {
		t.Errorf("ResolverWaitOf after EndWaiting = %+v, %v, %v; want none", w, ok, err)
	}

	records := []dedup.StagedRecord{
		{TxID: 1, TotalOrder: 1, DataCollection: "public.t", Topic: topic, Partition: 0, Offset: 12, Key: []byte("k1"), Value: []byte("value-1")},
		{TxID: 1, TotalOrder: 2, DataCollection: "public.t", Topic: topic, Partition: 0, Offset: 13, Key: []byte("k2"),
			Value: []byte(`{"schema":{"type":"struct","name":"v"},"payload":{"a":1}}`)},
		{TxID: 1, TotalOrder: 3, DataCollection: "public.t", Topic: topic, Partition: 0, Offset: 14, Key: []byte("k3")},
		{TxID: 1, TotalOrder: 4, DataCollection: "public.t", Topic: topic, Partition: 1, Offset: 20, Key: []byte("k4"), Value: []byte("v")},
	}
	b := &pgx.Batch{}
	bytes, err := tx.QueueStage(b, "g", records, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	// As stored: the second value without its schema.
	if want := int64(2 + 7 + 2 + len(`{"a":1}`) + 2 + 2 + 1); bytes != want {
		t.Errorf("QueueStage returned %d bytes, want %d", bytes, want)
	}
	above, through, err := tx.StagedBytesAbove(ctx, pool, "g", topic, 0, 12)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 + len(`{"a":1}`) + 2); above != want || through != 14 {
		t.Errorf("bytes staged above offset 12 of partition 0 = %d through offset %d, want %d through 14", above, through, want)
	}
	if above, through, err := tx.StagedBytesAbove(ctx, pool, "g", topic, 0, 14); err != nil || above != 0 || through != -1 {
		t.Errorf("bytes staged above offset 14 of partition 0 = %d through offset %d (%v), want 0 through -1", above, through, err)
	}
	// What status shows: per partition, what is staged above its frontier
	// (12 and 7): offsets 13 and 14 of partition 0, 20 of partition 1.
	ahead, err := tx.StagedAheadByPartition(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	want := []dedup.StagedAhead{
		{Topic: topic, Partition: 0, Frontier: 12, Records: 2, Bytes: int64(2 + len(`{"a":1}`) + 2)},
		{Topic: topic, Partition: 1, Frontier: 7, Records: 1, Bytes: 3},
	}
	if !slices.Equal(ahead, want) {
		t.Errorf("StagedAheadByPartition = %+v, want %+v", ahead, want)
	}
	if other, err := tx.StagedAheadByPartition(ctx, pool, "other"); err != nil || len(other) != 0 {
		t.Errorf("another group's staged ahead = %+v, %v; want none", other, err)
	}
}
