package connector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// chainedApplier is the offsets row as the apply transactions of one
// partition meet it: each takes the row lock first (its compare-and-set),
// fails with a moved position unless the row stands where its claim
// expects, and holds the lock until it commits or rolls back. A test
// holds a transaction at either step through its gates, by call index.
type chainedApplier struct {
	lock chan struct{} // the row lock: a token held from the compare-and-set to the end

	mu       sync.Mutex
	position int64
	// arrive[o], when set, holds the first transaction expecting position
	// o before its compare-and-set; finish[o] holds it after, and says
	// whether it commits (nil) or fails with the error sent.
	arrive map[int64]chan struct{}
	finish map[int64]chan error
	// rollback[o], when set, has the first transaction expecting position
	// o roll back once it held the row (a transient error the sink retries
	// within its Apply) and wait for it before its second attempt.
	rollback map[int64]chan struct{}

	started    chan applied // each call, as it starts
	mismatched chan applied // each call whose compare-and-set matched no row
	holding    chan int64   // the position a call's compare-and-set matched, with the row lock held
	committed  chan applied // each commit, in commit order
}

func newChainedApplier(position int64) *chainedApplier {
	return &chainedApplier{lock: make(chan struct{}, 1), position: position,
		arrive: map[int64]chan struct{}{}, finish: map[int64]chan error{}, rollback: map[int64]chan struct{}{},
		started: make(chan applied, 64), mismatched: make(chan applied, 64), holding: make(chan int64, 64), committed: make(chan applied, 64)}
}

// holdArrival and holdCommit install the gates of the transaction that
// expects position o; the test sends or closes them to let it go on.
func (a *chainedApplier) holdArrival(o int64) chan struct{} {
	a.arrive[o] = make(chan struct{})
	return a.arrive[o]
}

func (a *chainedApplier) holdCommit(o int64) chan error {
	a.finish[o] = make(chan error, 1)
	return a.finish[o]
}

// holdRollback makes the transaction that expects position o roll back
// once it held the row, and attempt again when the test closes the gate.
func (a *chainedApplier) holdRollback(o int64) chan struct{} {
	a.rollback[o] = make(chan struct{})
	return a.rollback[o]
}

func (a *chainedApplier) Apply(ctx context.Context, b *sink.Batch) (sink.Stats, error) {
	a.mu.Lock()
	o := b.Claim.NextOffset
	arrive, finish, rollback := a.arrive[o], a.finish[o], a.rollback[o]
	delete(a.arrive, o)
	delete(a.finish, o)
	delete(a.rollback, o)
	a.mu.Unlock()
	got := applied{next: b.Next, epoch: b.Claim.Epoch}
	for _, it := range b.Items {
		got.offsets = append(got.offsets, it.Record.Offset)
	}
	a.started <- got
	if rollback != nil {
		a.lock <- struct{}{}
		if b.ClaimHeld != nil {
			b.ClaimHeld()
		}
		<-a.lock
		select {
		case <-rollback:
		case <-ctx.Done():
			return sink.Stats{}, ctx.Err()
		}
	}
	if arrive != nil {
		select {
		case <-arrive:
		case <-ctx.Done():
			return sink.Stats{}, ctx.Err()
		}
	}
	select {
	case a.lock <- struct{}{}:
	case <-ctx.Done():
		return sink.Stats{}, ctx.Err()
	}
	defer func() { <-a.lock }()
	a.mu.Lock()
	stored := a.position
	a.mu.Unlock()
	if stored != b.Claim.NextOffset {
		a.mismatched <- got
		return sink.Stats{}, &dedup.PositionMovedError{Partition: b.Claim.PartitionID, Expected: b.Claim.NextOffset, Stored: stored}
	}
	a.holding <- stored
	if b.ClaimHeld != nil {
		b.ClaimHeld()
	}
	if finish != nil {
		select {
		case err := <-finish:
			if err != nil {
				return sink.Stats{}, err // rolled back: the row is unchanged
			}
		case <-ctx.Done():
			return sink.Stats{}, ctx.Err()
		}
	}
	a.mu.Lock()
	a.position = b.Next
	a.mu.Unlock()
	b.Claim.NextOffset = b.Next
	a.committed <- got
	return sink.Stats{Upserted: int64(len(b.Items))}, nil
}

func (a *chainedApplier) stored() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.position
}

// wantCommitReports reads the worker's next commit reports: one up to
// each of offsets, in that (offset) order.
func wantCommitReports(t *testing.T, w *worker, offsets ...int64) {
	t.Helper()
	for _, want := range offsets {
		if c := next(t, w.poll.commits, "commit report"); c != want {
			t.Errorf("reported a commit up to %d, want %d (offset order)", c, want)
		}
	}
}

// newPipelinedWorker is a worker with apply.pipeline 2 over a, batches of
// two records.
func newPipelinedWorker(t *testing.T, a *chainedApplier) *worker {
	t.Helper()
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier = a
		d.pipeline = 2
	})
	return w
}

// twoInFlight starts a pipelined worker on four records and waits until
// both batches' transactions were sent, the first held before its commit
// by the returned gate.
func twoInFlight(t *testing.T) (*chainedApplier, *worker, chan error) {
	t.Helper()
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	w := newPipelinedWorker(t, a)
	w.queue(0, 0, "a", "b", "c", "d")
	w.start()
	next(t, a.started, "first transaction")
	next(t, a.started, "second transaction")
	return a, w, first
}

// The second batch's transaction is sent while the first still commits,
// and the two commit in offset order, each reported once it committed.
func TestPipelineSendsTheNextBatchWhileTheFirstCommits(t *testing.T) {
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	second := a.holdArrival(2)
	w := newPipelinedWorker(t, a)
	w.queue(0, 0, "a", "b", "c", "d")
	w.start()
	if o := next(t, a.holding, "the first's compare-and-set"); o != 0 {
		t.Fatalf("compare-and-set at %d, want 0", o)
	}
	close(second) // it now waits on the row lock
	both := [][]int64{next(t, a.started, "first transaction").offsets,
		next(t, a.started, "second transaction while the first is held before its commit").offsets}
	if !slices.ContainsFunc(both, func(o []int64) bool { return slices.Equal(o, []int64{2, 3}) }) {
		t.Fatalf("transactions in flight %v, want [0 1] and [2 3]", both)
	}
	none(t, w.poll.commits, "commit reported before the first transaction committed")
	first <- nil
	wantCommitReports(t, w, 2, 4)
	if got := next(t, a.committed, "first commit"); !slices.Equal(got.offsets, []int64{0, 1}) {
		t.Errorf("first committed %v, want [0 1]", got.offsets)
	}
	if got := next(t, a.committed, "second commit"); !slices.Equal(got.offsets, []int64{2, 3}) {
		t.Errorf("second committed %v, want [2 3]", got.offsets)
	}
	if n := value(w.metrics.PipelineRetries); n != 0 {
		t.Errorf("pipeline retries = %v, want 0", n)
	}
	if n := value(w.metrics.Pipelined); n != 1 {
		t.Errorf("pipelined transactions = %v, want 1", n)
	}
	w.stop()
	if w.claim.NextOffset != 4 {
		t.Errorf("worker's claim at %d, want 4", w.claim.NextOffset)
	}
	if n := w.unreleased(); n != 0 {
		t.Errorf("%d buffered bytes never released", n)
	}
}

// When the first transaction rolls back (a record that cannot be applied
// under errors.tolerance: none), the second, already waiting on the row,
// cannot commit: the partition stops at the first's position with nothing
// of either applied (I1, I5).
func TestPipelineFirstFailsSoTheSecondFails(t *testing.T) {
	a, w, first := twoInFlight(t)
	first <- &sink.PoisonError{Topic: testTopic, Offset: 1, Err: errors.New("bad value")}
	next(t, w.poll.stops, "the partition stopped")
	w.stop()
	none(t, a.committed, "commit of either transaction")
	none(t, w.poll.commits, "commit report")
	if s := a.stored(); s != 0 {
		t.Errorf("stored position %d, want 0: nothing committed", s)
	}
	if w.claim.NextOffset != 0 {
		t.Errorf("worker's claim at %d, want 0", w.claim.NextOffset)
	}
	if n := value(w.metrics.PipelineRetries); n != 0 {
		t.Errorf("pipeline retries = %v, want 0: a follower of a failed transaction is never applied again", n)
	}
	if n := w.unreleased(); n != 0 {
		t.Errorf("%d buffered bytes never released", n)
	}
}

// A first transaction that fails on a moved position (a replay rewound the
// row) takes the second with it; the worker seeks to the stored position
// only once both ended, and applies from there.
func TestPipelineFirstMovedSeeksAfterBoth(t *testing.T) {
	a, w, first := twoInFlight(t)
	first <- &dedup.PositionMovedError{Expected: 0, Stored: 0}
	if start := next(t, w.poll.seeks, "seek"); start != 0 {
		t.Errorf("seek to %d, want 0", start)
	}
	none(t, a.committed, "commit of either transaction")
	w.gen.Add(1)
	w.seeking.Store(false)
	w.queue(1, 0, "a", "b")
	if got := next(t, a.committed, "commit after the seek"); !slices.Equal(got.offsets, []int64{0, 1}) {
		t.Errorf("committed %v after the seek, want [0 1]", got.offsets)
	}
	none(t, w.poll.fatals, "fatal error")
}

// A follower is sent only once its predecessor's compare-and-set holds the
// offsets row: sent before, its lock could reach the row first, find the
// position not yet moved and fail, a transaction wasted.
func TestPipelineFollowerWaitsForThePredecessorsLock(t *testing.T) {
	a := newChainedApplier(0)
	firstArrives := a.holdArrival(0)
	w := newPipelinedWorker(t, a)
	w.queue(0, 0, "a", "b", "c", "d")
	w.start()
	next(t, a.started, "first transaction")
	none(t, a.started, "second transaction sent before the first holds the row")
	close(firstArrives)
	if got := next(t, a.started, "second transaction"); !slices.Equal(got.offsets, []int64{2, 3}) {
		t.Fatalf("second transaction %v, want [2 3]", got.offsets)
	}
	wantCommitReports(t, w, 2, 4)
	none(t, a.mismatched, "a compare-and-set that matched no row")
	if s := a.stored(); s != 4 {
		t.Errorf("stored position %d, want 4", s)
	}
	if n := value(w.metrics.PipelineRetries); n != 0 {
		t.Errorf("pipeline retries = %v, want 0", n)
	}
}

// A predecessor that held the row and rolled back to try again (a
// transient error) lets its follower's compare-and-set run first: the
// follower finds the position not yet there and fails; once the first
// commits it is applied again, alone, and nothing is skipped or doubled.
func TestPipelineFollowerThatRacedIsAppliedAgain(t *testing.T) {
	a := newChainedApplier(0)
	firstRetries := a.holdRollback(0)
	w := newPipelinedWorker(t, a)
	w.queue(0, 0, "a", "b", "c", "d")
	w.start()
	next(t, a.started, "first transaction")
	next(t, a.started, "second transaction")
	if got := next(t, a.mismatched, "the second's compare-and-set before the first's"); !slices.Equal(got.offsets, []int64{2, 3}) {
		t.Fatalf("mismatched %v, want the second batch [2 3]", got.offsets)
	}
	close(firstRetries)
	if got := next(t, a.started, "the second applied again"); !slices.Equal(got.offsets, []int64{2, 3}) {
		t.Errorf("applied again %v, want [2 3]", got.offsets)
	}
	wantCommitReports(t, w, 2, 4)
	if s := a.stored(); s != 4 {
		t.Errorf("stored position %d, want 4", s)
	}
	if n := value(w.metrics.PipelineRetries); n != 1 {
		t.Errorf("pipeline retries = %v, want 1", n)
	}
}

// A revoked worker waits for both transactions in flight before it
// returns: the rebalance callback's wait covers them.
func TestPipelineRevokeWaitsForBoth(t *testing.T) {
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	second := a.holdCommit(2)
	w := newPipelinedWorker(t, a)
	w.queue(0, 0, "a", "b", "c", "d")
	w.start()
	next(t, a.started, "first transaction")
	next(t, a.started, "second transaction")
	close(w.stopping)
	select {
	case <-w.done:
		t.Fatal("worker returned with transactions in flight")
	case <-time.After(20 * time.Millisecond):
	}
	first <- nil
	second <- nil
	select {
	case <-w.done:
	case <-time.After(testWait):
		t.Fatal("worker did not return once its transactions ended")
	}
	if s := a.stored(); s != 4 {
		t.Errorf("stored position %d, want 4", s)
	}
}

// Batches with a record that cannot be decoded go alone: the sink splits
// them, and a follower would meet the row between the splits.
func TestPipelineOffForDeadLetters(t *testing.T) {
	p := &partition{workerDeps: &workerDeps{pipeline: 2}, lastTables: map[*sink.Table]bool{testTable: true}}
	ok := &sink.Batch{Items: []sink.Item{{Table: testTable}}}
	if !p.pipelines(ok) {
		t.Error("a batch of the previous batch's table is not pipelined")
	}
	if !p.pipelines(&sink.Batch{Items: []sink.Item{{Table: &sink.Table{Schema: "public", Name: "u"}}}}) {
		t.Error("a batch of a new table is not pipelined with nothing in flight")
	}
	p.flight = []*inflight{{}}
	for name, b := range map[string]*sink.Batch{
		"dead letter": {Items: []sink.Item{{Table: testTable}, {Err: errors.New("undecodable")}}},
		"new table":   {Items: []sink.Item{{Table: &sink.Table{Schema: "public", Name: "u"}}}},
	} {
		if p.pipelines(b) {
			t.Errorf("%s: pipelined behind a transaction in flight, want sent alone", name)
		}
	}
	p.kafkaOffsets = true
	if p.pipelines(ok) {
		t.Error("pipelined with apply.offsets: kafka, where nothing chains the transactions")
	}
	p.kafkaOffsets, p.pipeline = false, 1
	if p.pipelines(ok) {
		t.Error("pipelined with apply.pipeline: 1")
	}
}
