package connector

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
)

// targetDown is what PostgreSQL answers while it recovers from a restart:
// sink.Unavailable.
var targetDown = &pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}

// withOutage makes a worker wait out a target that is down on a schedule of
// milliseconds, counting its attempts in its metrics.
func withOutage(d *workerDeps) {
	d.outage = outageWait{report: newUnavailableReporter(zap.NewNop(), d.metrics.UnavailableRetries), initial: time.Millisecond, maximum: time.Millisecond}
}

func repeated(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// A replay rewound the partition while the target is down: the re-claim
// it calls for waits for the target, counted as an apply's wait is, and
// the partition goes on from the re-claimed position; the instance does
// not stop.
func TestReclaimWaitsOutAnUnavailableTarget(t *testing.T) {
	fenced := &dedup.FencedError{Epoch: 1, Current: 2, Owner: dedup.ReplayOwnerPrefix + "ops"}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 4, newFakeApplier(applyResult{err: fenced}), withOutage)
	w.store.claimed = dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 2, Owner: "me"}
	w.store.claimErrs = repeated(targetDown, 5)
	w.queue(0, 4, "a", "b")
	w.start()
	w.at = time.Now()
	next(t, w.applies.calls, "apply")
	if start := next(t, w.poll.seeks, "seek"); start != 2 {
		t.Errorf("seek to %d, want the re-claimed position 2", start)
	}
	none(t, w.poll.fatals, "fatal error")
	if got := value(w.metrics.UnavailableRetries); got != 5 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 5 (one per refused claim)", got)
	}
	w.gen.Add(1)
	w.seeking.Store(false)
	w.queue(1, 2, "c", "d")
	if got := next(t, w.applies.calls, "apply after the re-claim"); got.epoch != 3 || !slices.Equal(got.offsets, []int64{2, 3}) {
		t.Errorf("applied %v under epoch %d, want [2 3] under the new epoch 3", got.offsets, got.epoch)
	}
}

// A re-claim that waits for the target ends at once, without stopping the
// instance, when the partition is revoked; one that fails for another
// reason still stops the instance.
func TestReclaimGivesUpOnRevocationOrARealError(t *testing.T) {
	fenced := &dedup.FencedError{Epoch: 1, Current: 2, Owner: dedup.ReplayOwnerPrefix + "ops"}
	t.Run("revoked while the target is down", func(t *testing.T) {
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 4, newFakeApplier(applyResult{err: fenced}), withOutage)
		w.store.claimErr = targetDown
		w.queue(0, 4, "a", "b")
		w.start()
		w.at = time.Now()
		next(t, w.applies.calls, "apply")
		next(t, w.store.claims, "re-claim")
		close(w.stopping)
		next(t, (<-chan struct{})(w.done), "the worker's end")
		none(t, w.poll.fatals, "fatal error")
		none(t, w.poll.seeks, "seek")
		none(t, w.poll.commits, "commit report")
	})
	t.Run("a real error", func(t *testing.T) {
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 4, newFakeApplier(applyResult{err: fenced}), withOutage)
		w.store.claimErrs = []error{errors.New("permission denied for table offsets")}
		w.queue(0, 4, "a", "b")
		w.start()
		w.at = time.Now()
		if what := next(t, w.poll.fatals, "fatal error"); what != "re-claim after a replay" {
			t.Errorf("fatal %q, want the re-claim's", what)
		}
		if got := value(w.metrics.UnavailableRetries); got != 0 {
			t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 0: the error is no outage", got)
		}
	})
}
