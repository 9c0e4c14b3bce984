package connector

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newCollectAheadWorker is a worker with apply.pipeline 1 and collectAhead
// over a: batches of three records and a max_wait of wait.
func newCollectAheadWorker(t *testing.T, a *chainedApplier, wait time.Duration) *worker {
	t.Helper()
	return newWorker(t, batchOf(3, 1<<20, wait), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier = a
		d.pipeline, d.collectAhead = 1, true
	})
}

// awaitTaken waits until the worker took every queued record into a
// batch, which its queue's length tells.
func awaitTaken(t *testing.T, w *worker, what string) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for w.in.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d records still queued after %s", what, w.in.len(), testWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// Records that arrive while a batch's transaction commits are taken into
// the next batch at once (their receive latency ends there, not when the
// commit does), and that batch goes only once the transaction before it
// committed, with every record that arrived until then although its
// max_wait ran out before: one transaction of the partition in flight, and
// batches no smaller than without collecting ahead.
func TestCollectAheadTakesRecordsWhileTheBatchCommits(t *testing.T) {
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	w := newCollectAheadWorker(t, a, 20*time.Millisecond)
	// A failing test lets the held transaction end, or stopping the worker
	// would wait for it for ever.
	t.Cleanup(func() { release(first) })
	w.at = time.Now()
	w.queue(0, 0, "a", "b", "c") // a full batch: sent at once
	w.start()
	if got := next(t, a.started, "first transaction"); !slices.Equal(got.offsets, []int64{0, 1, 2}) {
		t.Fatalf("first transaction %v, want [0 1 2]", got.offsets)
	}
	next(t, a.holding, "the first's compare-and-set")
	w.queue(0, 3, "d")
	awaitTaken(t, w, "a record arriving while the first commits")
	time.Sleep(60 * time.Millisecond) // the second batch's max_wait runs out
	w.queue(0, 4, "e")
	awaitTaken(t, w, "a record arriving after the second batch's max_wait")
	none(t, a.started, "a second transaction sent while the first is in flight")
	none(t, w.poll.commits, "commit reported before the first committed")
	if n := samples(w.metrics.ReceiveLatency); n != 5 {
		t.Errorf("receive latency observed for %v records, want 5: each as it was taken", n)
	}
	first <- nil
	if got := next(t, a.started, "second transaction"); !slices.Equal(got.offsets, []int64{3, 4}) {
		t.Fatalf("second transaction %v, want [3 4]: what arrived while the first committed", got.offsets)
	}
	wantCommitReports(t, w, 3, 5)
	if n := value(w.metrics.Pipelined); n != 0 {
		t.Errorf("pipelined transactions = %v, want 0: never two in flight", n)
	}
	w.stop()
	if w.claim.NextOffset != 5 || a.stored() != 5 {
		t.Errorf("worker's claim at %d, stored %d, want 5", w.claim.NextOffset, a.stored())
	}
	if n := w.unreleased(); n != 0 {
		t.Errorf("%d buffered bytes never released", n)
	}
}

// A first transaction that fails takes the batch collected behind it with
// it: the partition stops at the first's position, the second batch never
// sent (I1, I5).
func TestCollectAheadFirstFailsNothingAfterIt(t *testing.T) {
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	w := newCollectAheadWorker(t, a, time.Millisecond)
	// A failing test lets the held transaction end, or stopping the worker
	// would wait for it for ever.
	t.Cleanup(func() { release(first) })
	w.queue(0, 0, "a", "b", "c")
	w.start()
	next(t, a.started, "first transaction")
	next(t, a.holding, "the first's compare-and-set")
	w.queue(0, 3, "d")
	awaitTaken(t, w, "a record arriving while the first commits")
	first <- &sink.PoisonError{Topic: testTopic, Offset: 1, Err: errors.New("bad value")}
	next(t, w.poll.stops, "the partition stopped")
	w.stop()
	if len(a.started) != 0 {
		t.Errorf("%d transactions sent after the failed one, want 0", len(a.started))
	}
	none(t, a.committed, "commit")
	none(t, w.poll.commits, "commit report")
	if s := a.stored(); s != 0 || w.claim.NextOffset != 0 {
		t.Errorf("stored position %d, claim %d, want 0: nothing committed", s, w.claim.NextOffset)
	}
	if n := w.unreleased(); n != 0 {
		t.Errorf("%d buffered bytes never released", n)
	}
}

// Without collectAhead (offsets: kafka, a stager, apply.pipeline above 1)
// a batch with a pipeline of 1 is applied by the worker itself: records
// arriving meanwhile stay queued until it committed.
func TestCollectAheadOffLeavesRecordsQueued(t *testing.T) {
	a := newChainedApplier(0)
	first := a.holdCommit(0)
	w := newWorker(t, batchOf(3, 1<<20, time.Millisecond), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier = a
		d.pipeline = 1
	})
	// A failing test lets the held transaction end, or stopping the worker
	// would wait for it for ever.
	t.Cleanup(func() { release(first) })
	w.queue(0, 0, "a", "b", "c")
	w.start()
	next(t, a.started, "first transaction")
	next(t, a.holding, "the first's compare-and-set")
	w.queue(0, 3, "d")
	time.Sleep(50 * time.Millisecond)
	if n := w.in.len(); n != 1 {
		t.Errorf("%d records queued while the worker applies, want 1", n)
	}
	first <- nil
	if got := next(t, a.started, "second transaction"); !slices.Equal(got.offsets, []int64{3}) {
		t.Fatalf("second transaction %v, want [3]", got.offsets)
	}
	wantCommitReports(t, w, 3, 4)
}

// samples reads how many observations a histogram holds.
func samples(h prometheus.Histogram) uint64 {
	var d dto.Metric
	if err := h.Write(&d); err != nil {
		panic(err)
	}
	return d.Histogram.GetSampleCount()
}

// release ends a transaction held by holdCommit, if nothing did.
func release(gate chan error) {
	select {
	case gate <- nil:
	default:
	}
}
