//go:build integration

package connector

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// TestIntegrationClaimDefersWhileTheTargetIsDown claims partitions, as a
// rebalance does, through a proxy to the real PostgreSQL that is down
// (connections refused, the pool's open ones lost): the claim ends at once
// with errAwaitingTarget, nothing claimed and the attempt counted, rather
// than wait inside the rebalance (where it used to wait for the outage,
// and before that give up after claimRetryFor and stop the instance); the
// next try, once the proxy is up again, claims them.
func TestIntegrationClaimDefersWhileTheTargetIsDown(t *testing.T) {
	ctx := context.Background()
	proxy, pool := migratedBehindProxy(t)
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
	began := time.Now()
	c.claimStored(ps)
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("the claim took %s to end while the target was down", took)
	}
	awaitingTarget(t, ps, m)
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	claimOnceAnswered(c, ps)
	for _, p := range ps {
		want := dedup.Claim{PartitionID: p.id, Epoch: 1, NextOffset: 7, Owner: "new"}
		if p.err != nil || p.claim != want {
			t.Fatalf("partition %d: %+v, %v; want %+v", p.id.Partition, p.claim, p.err, want)
		}
		if stored, err := offsets.Read(ctx, pool, p.id); err != nil || stored != want {
			t.Fatalf("partition %d stored %+v, %v; want %+v", p.id.Partition, stored, err, want)
		}
	}
}

// TestIntegrationClaimDefersWhileTheTargetDropsPackets claims partitions,
// as a rebalance or the poll loop does, through a proxy to the real
// PostgreSQL that drops every packet (stacktest.Proxy.Blackhole: nothing
// refused, nothing answered), over a connection the pool held from before
// and over a new one. Either claim ends within claimAttemptTimeout, as for
// a target that is down: errAwaitingTarget, the attempt counted, nothing
// claimed; so the rebalance callback or the poll loop that runs it is back
// to Poll, and to the other partitions, that soon. Before, a claim waited
// for its 30 s statement deadline, and over a pooled connection that
// deadline was not taken for an outage: retried claimAttempts times, then
// the instance stopped. Once the target answers again, the next try claims.
func TestIntegrationClaimDefersWhileTheTargetDropsPackets(t *testing.T) {
	for _, pooled := range []bool{true, false} {
		name := "a new connection"
		if pooled {
			name = "a connection the pool held"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			proxy, pool := migratedBehindProxy(t)
			if pooled {
				if err := pool.Ping(ctx); err != nil {
					t.Fatal(err)
				}
			}
			offsets := dedup.NewOffsets("pgsink")
			m := NewMetrics()
			c := claimer{start: config.StartEarliest, owner: "new", store: storedPositions{offsets: offsets, db: pool, owner: "new"}, log: zap.NewNop(),
				firstWait: 100 * time.Millisecond, claimFor: time.Second,
				outage: outageWait{report: newUnavailableReporter(zap.NewNop(), m.UnavailableRetries), initial: 50 * time.Millisecond, maximum: 300 * time.Millisecond}}
			ps := make([]*claimed, 2)
			for i := range ps {
				ps[i] = &claimed{id: dedup.PartitionID{Group: "g", Topic: "blackhole", Partition: int32(i)}, low: 7, high: 9}
			}

			proxy.Blackhole()
			began := time.Now()
			c.claimStored(ps)
			if took, bound := time.Since(began), claimAttemptTimeout+2*time.Second; took > bound {
				t.Errorf("the claim took %s to end while the target dropped packets; want at most %s", took.Round(time.Millisecond), bound)
			}
			awaitingTarget(t, ps, m)
			if err := proxy.Up(); err != nil {
				t.Fatal(err)
			}
			claimOnceAnswered(c, ps)
			for _, p := range ps {
				if p.err != nil || p.claim.NextOffset != 7 || p.claim.Epoch < 1 {
					t.Fatalf("partition %d once the target answers: %+v, %v; want claimed at 7", p.id.Partition, p.claim, p.err)
				}
				stored, err := offsets.Read(ctx, pool, p.id)
				if err != nil || stored != p.claim {
					t.Fatalf("partition %d stored %+v, %v; want %+v", p.id.Partition, stored, err, p.claim)
				}
			}
		})
	}
}

// awaitingTarget checks that a claim of ps against a target that did not
// answer claimed none of them, each awaiting the target, after one attempt
// counted as an outage; it clears their errors for the next claim.
func awaitingTarget(t *testing.T, ps []*claimed, m *Metrics) {
	t.Helper()
	for _, p := range ps {
		if !errors.Is(p.err, errAwaitingTarget) || p.claim != (dedup.Claim{}) {
			t.Fatalf("partition %d: %+v, %v; want not claimed, errAwaitingTarget", p.id.Partition, p.claim, p.err)
		}
		p.err = nil
	}
	if got := value(m.UnavailableRetries); got != 1 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 1", got)
	}
}

// claimOnceAnswered claims ps again, as the poll loop does, while the
// target still seems down (a connection the pool held across the outage).
func claimOnceAnswered(c claimer, ps []*claimed) {
	for try := 0; try < 20; try++ {
		c.claimStored(ps)
		if !errors.Is(ps[0].err, errAwaitingTarget) {
			return
		}
		for _, p := range ps {
			p.err = nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// migratedBehindProxy is a fresh target database with pgsink's tables,
// and a pool that reaches it through a proxy the test can take down.
func migratedBehindProxy(t *testing.T) (*stacktest.Proxy, *pgxpool.Pool) {
	t.Helper()
	direct := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(direct, "pgsink").Up(context.Background()); err != nil {
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
	pool, err := pgxpool.New(context.Background(), through)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return proxy, pool
}
