package connector

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// awaitingRunner is a Runner whose claims go to store and whose outage
// schedule is in milliseconds, with workers built on fakes.
func awaitingRunner(store bulkPositions) (*Runner, *fakeConsumer) {
	r, c := newTestRunner(1 << 20)
	c.high = 5
	r.cfg.Apply.Retry.InitialBackoff = config.Duration(time.Millisecond)
	r.cfg.Apply.Retry.MaxBackoff = config.Duration(time.Millisecond)
	r.unavailable = newUnavailableReporter(zap.NewNop(), r.metrics.UnavailableRetries)
	r.claimStore = store
	r.router = sink.NewRouter(&config.Config{}, nil)
	r.deps = &workerDeps{batch: batchOf(3, 1<<20, time.Minute), fenceGrace: time.Hour, applier: newFakeApplier(),
		positions: &fakePositions{}, router: fakeRouter{}, deadLetters: fakeDiverter{}, metrics: r.metrics, loop: r}
	return r, c
}

// later is a poll loop's clock past any try's time.
func later() time.Time { return time.Now().Add(time.Hour) }

func tpOf(n int32) kafka.TopicPartition {
	topic := testTopic
	return kafka.TopicPartition{Topic: &topic, Partition: n}
}

// Partitions whose claim found the target down at the rebalance are
// claimed by the poll loop once it is back: while it is down they stay
// without a worker (counted in pgsink_partitions_awaiting_claim, each try
// in pgsink_apply_unavailable_retries_total); then each gets its worker,
// is moved to its stored position and resumed.
func TestAwaitingPartitionsClaimedFromThePollLoop(t *testing.T) {
	store := &fakeBulkPositions{errs: repeated(targetDown, 2)}
	r, c := awaitingRunner(store)
	ids := partitionIDs(2)
	for _, id := range ids {
		r.await(id, time.Now())
	}
	if got := value(r.metrics.AwaitingClaim); got != 2 {
		t.Fatalf("pgsink_partitions_awaiting_claim = %v, want 2", got)
	}
	r.claimAwaiting(c, time.Now().Add(-time.Hour))
	if len(store.calls) != 0 {
		t.Fatalf("%d claim statements before the try's time; want none", len(store.calls))
	}
	for range 2 {
		r.claimAwaiting(c, later())
	}
	if len(r.workers) != 0 || len(r.awaiting.since) != 2 || len(c.seeks) != 0 {
		t.Fatalf("target down: %d workers, %d awaiting, seeks %v; want 0, 2, none", len(r.workers), len(r.awaiting.since), c.seeks)
	}
	if got := value(r.metrics.UnavailableRetries); got != 2 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 2", got)
	}
	r.claimAwaiting(c, later())
	if len(r.workers) != 2 || len(r.awaiting.since) != 0 {
		t.Fatalf("target back: %d workers, %d awaiting; want 2, 0", len(r.workers), len(r.awaiting.since))
	}
	for i, id := range ids {
		if p := r.workers[id]; p == nil || p.claim.Epoch != 1 {
			t.Errorf("partition %d: worker %v; want one under epoch 1", id.Partition, p)
		}
		if s := c.seeks[i]; s.Partition != id.Partition || s.Offset != 0 {
			t.Errorf("seek %v; want partition %d at its stored position 0", s, id.Partition)
		}
	}
	if got := c.noted(&c.resumed); !slices.Equal(got, []int32{0, 1}) {
		t.Errorf("resumed %v; want [0 1], after their seeks", got)
	}
	if value(r.metrics.AwaitingClaim) != 0 || value(r.metrics.Owned) != 2 {
		t.Errorf("awaiting gauge %v, owned gauge %v; want 0 and 2", value(r.metrics.AwaitingClaim), value(r.metrics.Owned))
	}
	r.revoke([]kafka.TopicPartition{tpOf(0), tpOf(1)}, false)
}

// A partition revoked while its claim awaits the target is dropped: the
// poll loop never claims it (its epoch is the next owner's to raise), and
// goes on with the others.
func TestAwaitingPartitionDroppedAtRevocation(t *testing.T) {
	store := &fakeBulkPositions{}
	r, c := awaitingRunner(store)
	for _, id := range partitionIDs(2) {
		r.await(id, time.Now())
	}
	r.revoke([]kafka.TopicPartition{tpOf(0)}, true)
	if len(r.awaiting.since) != 1 || value(r.metrics.AwaitingClaim) != 1 {
		t.Fatalf("after revoking partition 0: %d awaiting, gauge %v; want 1", len(r.awaiting.since), value(r.metrics.AwaitingClaim))
	}
	r.claimAwaiting(c, later())
	if len(store.calls) != 1 || len(store.calls[0]) != 1 || store.calls[0][0].Partition != 1 {
		t.Fatalf("claim statements %v; want one, of partition 1 alone", store.calls)
	}
	if r.workers[partitionIDs(2)[0]] != nil || r.workers[partitionIDs(2)[1]] == nil {
		t.Errorf("workers %v; want partition 1's alone", r.workers)
	}
	r.revoke([]kafka.TopicPartition{tpOf(1)}, false)
	r.claimAwaiting(c, later())
	if len(store.calls) != 1 {
		t.Errorf("%d claim statements once nothing awaits; want 1", len(store.calls))
	}
}

// A partition claimed right after its rebalance may be sought before the
// client started fetching it, which it refuses (ErrState) for a moment:
// the seek is asked again, and the partition resumed only once it moved.
// Any other refusal stops the instance, the partition left paused.
func TestAwaitingClaimSeeksAgainUntilTheFetcherStarted(t *testing.T) {
	notStarted := kafka.NewError(kafka.ErrState, "Local: Erroneous state", false)
	for _, tc := range []struct {
		name  string
		errs  []error
		fatal bool
	}{
		{"fetcher starting", []error{notStarted, notStarted}, false},
		{"another refusal", []error{kafka.NewError(kafka.ErrUnknownPartition, "Local: Unknown partition", false)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c := awaitingRunner(&fakeBulkPositions{})
			c.seekErrs = tc.errs
			id := partitionIDs(1)[0]
			r.await(id, time.Now())
			r.claimAwaiting(c, later())
			if fatal := r.fatalErr() != nil; fatal != tc.fatal {
				t.Fatalf("fatal error %v; want one: %v", r.fatalErr(), tc.fatal)
			}
			resumed := c.noted(&c.resumed)
			if tc.fatal && (len(resumed) != 0 || len(c.seeks) != 0) {
				t.Errorf("resumed %v after seeks %v; want the partition left paused", resumed, c.seeks)
			}
			if !tc.fatal && (len(c.seeks) != 1 || len(resumed) != 1) {
				t.Errorf("seeks %v, resumed %v; want one seek that went through, then the resume", c.seeks, resumed)
			}
			r.revoke([]kafka.TopicPartition{tpOf(0)}, true)
		})
	}
}

// movedPositions is an offsets table whose rows another owner moved to
// next while the claim was on its way: the previous owner of a partition,
// still applying until the claim fences it, applied records produced after
// the claim read the watermarks. moved is told of each claim.
type movedPositions struct {
	next  int64
	moved func()
}

func (m movedPositions) ClaimAll(_ context.Context, starts []dedup.Start) ([]dedup.Claim, error) {
	m.moved()
	out := make([]dedup.Claim, len(starts))
	for i, s := range starts {
		out[i] = dedup.Claim{PartitionID: s.PartitionID, Epoch: 2, NextOffset: m.next, Owner: "me"}
	}
	return out, nil
}

// A stored position past the high watermark read before the claim stops
// the partition ("the stored offset is outside what Kafka holds … replay
// the table") only when a read after the claim finds it outside too: the
// previous owner may have applied records produced after the first read,
// and the high watermark read then is behind the position it stored.
func TestClaimStopsOutsideWhatKafkaHoldsOnlyOnAFreshRead(t *testing.T) {
	for _, tc := range []struct {
		name             string
		next, highBefore int64
		highAfter        int64
		stopped          bool
	}{
		{"moved past a high watermark read before the claim", 8, 5, 10, false},
		{"past the high watermark read after the claim too", 12, 5, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *fakeConsumer
			r, c := awaitingRunner(movedPositions{next: tc.next, moved: func() {
				c.mu.Lock()
				c.high = tc.highAfter
				c.mu.Unlock()
			}})
			c.high = tc.highBefore
			id := partitionIDs(1)[0]
			r.await(id, time.Now())
			r.claimAwaiting(c, later())
			p := r.workers[id]
			if p == nil {
				t.Fatalf("no worker after the claim (fatal: %v)", r.fatalErr())
			}
			if got := p.stopped.Load(); got != tc.stopped {
				t.Fatalf("stored next offset %d, high watermark %d before the claim and %d after: stopped %v, want %v",
					tc.next, tc.highBefore, tc.highAfter, got, tc.stopped)
			}
			resumed := c.noted(&c.resumed)
			if !tc.stopped && (len(c.seeks) != 1 || c.seeks[0].Offset != kafka.Offset(tc.next) || len(resumed) != 1) {
				t.Errorf("seeks %v, resumed %v; want the partition moved to %d and resumed", c.seeks, resumed, tc.next)
			}
			if tc.stopped && len(resumed) != 0 {
				t.Errorf("resumed %v; want the stopped partition left paused", resumed)
			}
			r.revoke([]kafka.TopicPartition{tpOf(0)}, true)
		})
	}
}

// unansweredPositions is a target that drops packets: a claim gets no
// answer and ends only with its context, with the error pgx gives then
// (which is no sink.Unavailable one).
type unansweredPositions struct{ calls *atomic.Int32 }

func (u unansweredPositions) ClaimAll(ctx context.Context, _ []dedup.Start) ([]dedup.Claim, error) {
	u.calls.Add(1)
	<-ctx.Done()
	return nil, fmt.Errorf("timeout: %w", ctx.Err())
}

// A claim whose target answers nothing (it drops packets) holds the poll
// loop for claimAttemptTimeout at most, as one that finds it down holds it
// for a round trip: the partition awaits the target (counted as an
// outage's attempt, tried again on its schedule), the instance goes on,
// and the loop, back to Poll, feeds the partitions it owns, whose records
// are applied meanwhile. Before, the claim waited its 30 s statement
// deadline claimAttempts times, which is no outage to it, and then stopped
// the instance.
func TestAwaitingClaimOfAnUnansweringTargetHoldsThePollLoopBriefly(t *testing.T) {
	r, c := awaitingRunner(&fakeBulkPositions{})
	owned := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 1}
	r.await(owned, time.Now())
	r.claimAwaiting(c, later())
	if r.workers[owned] == nil {
		t.Fatalf("partition 1 not claimed while the target answered (fatal: %v)", r.fatalErr())
	}
	// Its row, as the idle worker's check reads it.
	stored := r.deps.positions.(*fakePositions)
	stored.mu.Lock()
	stored.stored = r.workers[owned].claim
	stored.mu.Unlock()

	calls := &atomic.Int32{}
	r.claimStore = unansweredPositions{calls: calls}
	waiting := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 0}
	r.await(waiting, time.Now())
	returned := make(chan time.Duration, 1)
	go func() {
		began := time.Now()
		r.claimAwaiting(c, later())
		returned <- time.Since(began)
	}()
	bound := claimAttemptTimeout + 2*time.Second
	select {
	case took := <-returned:
		t.Logf("the claim held the poll loop %s", took.Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("the claim of a partition whose target answers nothing held the poll loop over %s", bound)
	}
	if err := r.fatalErr(); err != nil {
		t.Fatalf("the instance stopped: %v; want the partition awaiting the target", err)
	}
	if _, ok := r.awaiting.since[waiting]; !ok || r.workers[waiting] != nil || calls.Load() != 1 {
		t.Fatalf("partition 0: awaiting %v, worker %v, %d claim statements; want awaiting, none, one", ok, r.workers[waiting], calls.Load())
	}
	if got := value(r.metrics.UnavailableRetries); got != 1 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 1", got)
	}

	applier := r.deps.applier.(*fakeApplier)
	for off := range int64(3) {
		r.dispatch(hundredBytes(1, off))
	}
	if got := next(t, applier.calls, "batch of partition 1"); !slices.Equal(got.offsets, []int64{0, 1, 2}) {
		t.Errorf("partition 1 applied %v; want [0 1 2]", got.offsets)
	}
	r.revoke([]kafka.TopicPartition{tpOf(0), tpOf(1)}, false)
}

// syncWatch is a staging table whose generation checks are reported on
// calls: a worker that runs makes one at its start.
type syncWatch struct{ calls chan struct{} }

func (s syncWatch) Sync(context.Context) (int64, bool, error) {
	select {
	case s.calls <- struct{}{}:
	default:
	}
	return 1, false, nil
}

func (syncWatch) StagingOf(context.Context, dedup.PartitionID) (dedup.PartitionStaging, error) {
	return dedup.PartitionStaging{}, nil
}

func (syncWatch) Rewind(context.Context, *dedup.Claim, int64, int64) (bool, error) { return false, nil }

// A partition stopped at its claim (outside what Kafka holds) gets no
// running worker, only a goroutine that parks until the revocation: a
// worker started before the stop owned the claim that the stop reads and
// went on with its own checks (a staging generation check at its start,
// which may rewind the claim, under apply.consistency: transaction).
func TestClaimOutsideWhatKafkaHoldsStartsNoWorker(t *testing.T) {
	r, c := awaitingRunner(movedPositions{next: 12, moved: func() {}})
	c.high = 5
	watch := syncWatch{calls: make(chan struct{}, 1)}
	r.deps.resets = watch
	id := partitionIDs(1)[0]
	r.await(id, time.Now())
	r.claimAwaiting(c, later())
	p := r.workers[id]
	if p == nil || !p.stopped.Load() {
		t.Fatalf("worker %v; want the partition stopped at its claim (fatal: %v)", p, r.fatalErr())
	}
	select {
	case <-watch.calls:
		t.Error("the stopped partition's worker ran (it checked the staging generation)")
	case <-time.After(200 * time.Millisecond):
	}
	r.revoke([]kafka.TopicPartition{tpOf(0)}, false)
	select {
	case <-p.done:
	default:
		t.Error("the stopped partition's goroutine did not end at the revocation")
	}
}
