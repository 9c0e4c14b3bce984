//go:build integration

package connector

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// TestIntegrationClaimWaitsOutAStoppedTarget claims partitions, as a
// rebalance does, through a proxy to the real PostgreSQL that is down
// (connections refused, the pool's open ones lost): the claim keeps
// waiting past claimAttempts and claimFor, counting the attempts, and
// claims them once the proxy is up again — where it used to give up after
// claimRetryFor and stop the instance.
func TestIntegrationClaimWaitsOutAStoppedTarget(t *testing.T) {
	ctx := context.Background()
	direct := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(direct, "pgsink").Up(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := stacktest.NewProxy(t, u.Host)
	through, err := proxy.URL(direct)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, through)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil { // a connection in the pool, lost at the outage
		t.Fatal(err)
	}
	offsets := dedup.NewOffsets("pgsink")
	m := NewMetrics()
	c := claimer{start: config.StartEarliest, owner: "new", store: storedPositions{offsets: offsets, db: pool, owner: "new"}, log: zap.NewNop(),
		firstWait: 100 * time.Millisecond, claimFor: time.Second,
		outage: outageWait{report: newUnavailableReporter(zap.NewNop(), m.UnavailableRetries), initial: 50 * time.Millisecond, maximum: 300 * time.Millisecond}}
	ps := make([]*claimed, 3)
	for i := range ps {
		ps[i] = &claimed{id: dedup.PartitionID{Group: "g", Topic: "outage", Partition: int32(i)}, low: 7, high: 9}
	}

	proxy.Down()
	done := make(chan struct{})
	go func() { c.claimStored(ps); close(done) }()
	downAt := time.Now()
	for value(m.UnavailableRetries) < 3*claimAttempts || time.Since(downAt) < 2*c.claimFor {
		select {
		case <-done:
			t.Fatalf("the claim ended while the target was down, after %v attempts: %v", value(m.UnavailableRetries), ps[0].err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(downAt) > time.Minute {
			t.Fatalf("%v attempts in a minute", value(m.UnavailableRetries))
		}
	}
	down := value(m.UnavailableRetries)
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("not claimed within a minute of the target's return")
	}
	for _, p := range ps {
		want := dedup.Claim{PartitionID: p.id, Epoch: 1, NextOffset: 7, Owner: "new"}
		if p.err != nil || p.claim != want {
			t.Fatalf("partition %d: %+v, %v; want %+v", p.id.Partition, p.claim, p.err, want)
		}
		if stored, err := offsets.Read(ctx, pool, p.id); err != nil || stored != want {
			t.Fatalf("partition %d stored %+v, %v; want %+v", p.id.Partition, stored, err, want)
		}
	}
	t.Logf("claimed after %.0f attempts that found the target down", down)
}
