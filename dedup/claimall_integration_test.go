//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
)

// TestIntegrationClaimAll claims partitions with and without rows in one
// statement: each epoch rises by one from where it was (a row created at
// its start has epoch 1), stored positions are kept, stopped reasons
// cleared, and the holder of an old epoch is fenced.
func TestIntegrationClaimAll(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	a := dedup.PartitionID{Group: "g", Topic: "app.public.a", Partition: 0}
	b := dedup.PartitionID{Group: "g", Topic: "app.public.b", Partition: 5}
	c := dedup.PartitionID{Group: "g", Topic: "app.public.a", Partition: 1}
	d := dedup.PartitionID{Group: "g", Topic: "app.public.c", Partition: 0}
	zombie, err := o.Claim(ctx, pool, a, 0, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &zombie, 50) }); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkStopped(ctx, pool, zombie, "poison"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := o.Claim(ctx, pool, b, 30, "old"); err != nil {
			t.Fatal(err)
		}
	}

	got, err := o.ClaimAll(ctx, pool, []dedup.Start{{PartitionID: a}, {PartitionID: b}, {PartitionID: c, Offset: 7}, {PartitionID: d, Offset: 9}}, "new")
	if err != nil {
		t.Fatal(err)
	}
	want := []dedup.Claim{
		{PartitionID: a, Epoch: 2, NextOffset: 50, Owner: "new"},
		{PartitionID: b, Epoch: 3, NextOffset: 30, Owner: "new"},
		{PartitionID: c, Epoch: 1, NextOffset: 7, Owner: "new"},
		{PartitionID: d, Epoch: 1, NextOffset: 9, Owner: "new"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("claim %d = %+v; want %+v", i, got[i], want[i])
		}
		stored, err := o.Read(ctx, pool, want[i].PartitionID)
		if err != nil || stored != want[i] {
			t.Fatalf("stored %+v, %v; want %+v", stored, err, want[i])
		}
	}
	rows, err := o.List(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.StoppedReason != "" || r.StoppedAt != nil {
			t.Fatalf("%s still stopped (%q) after the claim", r.PartitionID, r.StoppedReason)
		}
	}
	var fenced *dedup.FencedError
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &zombie, 60) }); !errors.As(err, &fenced) || fenced.Current != 2 || fenced.Owner != "new" {
		t.Fatalf("zombie advance after the bulk claim: %v; want a FencedError naming epoch 2 of new", err)
	}
	if stored, _ := o.Read(ctx, pool, a); stored.NextOffset != 50 {
		t.Fatalf("the zombie moved the position to %d", stored.NextOffset)
	}
}

// TestIntegrationClaimAllBadInput refuses a partition asked twice and a
// start that is not an offset, and claims nothing.
func TestIntegrationClaimAllBadInput(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	a := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
	b := dedup.PartitionID{Group: "g", Topic: "t", Partition: 1}
	if _, err := o.ClaimAll(ctx, pool, []dedup.Start{{PartitionID: a}, {PartitionID: b}, {PartitionID: a}}, "x"); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a partition asked twice: %v; want an error saying so", err)
	}
	if _, err := o.ClaimAll(ctx, pool, []dedup.Start{{PartitionID: a}, {PartitionID: b, Offset: -2}}, "x"); err == nil {
		t.Fatal("a start of -2 was accepted")
	}
	if _, err := o.Read(ctx, pool, a); !errors.Is(err, dedup.ErrNotClaimed) {
		t.Fatalf("after refused claims, Read: %v; want ErrNotClaimed", err)
	}
	if got, err := o.ClaimAll(ctx, pool, nil, "x"); err != nil || len(got) != 0 {
		t.Fatalf("ClaimAll of nothing = %v, %v", got, err)
	}
}

// TestIntegrationClaimAllWaitsForZombie: the bulk claim waits behind a
// former owner's open batch on one of its partitions; whichever way the
// batch ends, it resumes after what was committed and the zombie can write
// no more.
func TestIntegrationClaimAllWaitsForZombie(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	a := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
	b := dedup.PartitionID{Group: "g", Topic: "t", Partition: 1}
	zombie, tx := zombieBatch(t, pool, o, a, 10)
	type result struct {
		claims []dedup.Claim
		err    error
	}
	done := make(chan result, 1)
	go func() {
		claims, err := o.ClaimAll(ctx, pool, []dedup.Start{{PartitionID: b}, {PartitionID: a}}, "owner")
		done <- result{claims, err}
	}()
	waitForLockWait(t, pool)
	select {
	case r := <-done:
		t.Fatalf("bulk claim returned %+v while the zombie's transaction held a row", r)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.claims[1].NextOffset != 10 || r.claims[1].Epoch != 2 || r.claims[0].Epoch != 1 {
		t.Fatalf("claims %+v; want %s at 10 (the zombie's committed batch) epoch 2, %s epoch 1", r.claims, a, b)
	}
	var fenced *dedup.FencedError
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &zombie, 20) }); !errors.As(err, &fenced) {
		t.Fatalf("zombie write after the bulk claim: %v; want FencedError", err)
	}
}

// zombieBatch claims p for "zombie" and opens its batch transaction, which
// moves the position to next and holds the row until the caller commits it
// (cleanup rolls back one left open).
func zombieBatch(t *testing.T, pool *pgxpool.Pool, o dedup.Offsets, p dedup.PartitionID, next int64) (dedup.Claim, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	zombie, err := o.Claim(ctx, pool, p, 0, "zombie")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) }) // a no-op once committed
	if err := o.Advance(ctx, tx, &zombie, next); err != nil {
		t.Fatal(err)
	}
	return zombie, tx
}

// waitForLockWait polls until a session of pool waits for a row lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		if err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the bulk claim never waited for the zombie's row lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIntegrationClaimAllOverlappingDoNotDeadlock runs bulk claims of
// overlapping sets, asked in opposite orders, against each other: rows are
// locked in one order, so each waits for the other instead of deadlocking,
// and every claim raises the epoch once.
func TestIntegrationClaimAllOverlappingDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	var forward, backward []dedup.Start
	for p := range int32(50) {
		forward = append(forward, dedup.Start{PartitionID: dedup.PartitionID{Group: "g", Topic: "t", Partition: p}})
	}
	for i := len(forward) - 1; i >= 0; i-- {
		backward = append(backward, forward[i])
	}
	const rounds = 10
	for range rounds {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, starts := range [][]dedup.Start{forward, backward} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = o.ClaimAll(ctx, pool, starts, "x")
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range forward {
		stored, err := o.Read(ctx, pool, s.PartitionID)
		if err != nil || stored.Epoch != 2*rounds {
			t.Fatalf("%s: %+v, %v; want epoch %d", s.PartitionID, stored, err, 2*rounds)
		}
	}
}
