//go:build integration

package connector

import (
	"context"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// TestIntegrationClaimWaitsOutAStoppedTarget stops the stack's PostgreSQL
// (pg_ctl stop -m fast) and claims partitions meanwhile, as a rebalance
// does: the claim keeps waiting past claimAttempts and claimFor, counting
// the attempts, and claims them once PostgreSQL is started again — where
// it used to give up after a minute and stop the instance. It takes the
// stack's PostgreSQL down: run it alone.
func TestIntegrationClaimWaitsOutAStoppedTarget(t *testing.T) {
	ctx := context.Background()
	pool := claimsPool(t)
	offsets := dedup.NewOffsets("pgsink")
	m := NewMetrics()
	c := claimer{start: config.StartEarliest, owner: "new", store: storedPositions{offsets: offsets, db: pool, owner: "new"}, log: zap.NewNop(),
		firstWait: 100 * time.Millisecond, claimFor: time.Second,
		outage: outageWait{report: newUnavailableReporter(zap.NewNop(), m.UnavailableRetries), initial: 50 * time.Millisecond, maximum: 300 * time.Millisecond}}
	ps := make([]*claimed, 3)
	for i := range ps {
		ps[i] = &claimed{id: dedup.PartitionID{Group: "g", Topic: "outage", Partition: int32(i)}, low: 7, high: 9}
	}

	if out, err := stacktest.PgCtl(ctx, "stop", "-m", "fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		if out, err := stacktest.PgCtl(ctx, "start"); err != nil {
			t.Fatalf("pg_ctl start: %v\n%s", err, out)
		}
	}
	t.Cleanup(start)
	done := make(chan struct{})
	go func() { c.claimStored(ps); close(done) }()
	stoppedAt := time.Now()
	for value(m.UnavailableRetries) < 3*claimAttempts || time.Since(stoppedAt) < 2*c.claimFor {
		select {
		case <-done:
			t.Fatalf("the claim ended while PostgreSQL was down, after %d attempts: %v", int(value(m.UnavailableRetries)), ps[0].err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(stoppedAt) > time.Minute {
			t.Fatalf("%v attempts in a minute", value(m.UnavailableRetries))
		}
	}
	down := value(m.UnavailableRetries)
	start()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("not claimed within a minute of PostgreSQL's start")
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
	t.Logf("claimed after %.0f attempts that found PostgreSQL down", down)
}
