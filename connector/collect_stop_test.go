package connector

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Once a batch's max_wait is up, collect takes only what already waits,
// and still sees a stop within fastTakes records instead of filling the
// batch first: a revocation waits for a short batch, not a full one.
func TestCollectSeesStopAfterMaxWait(t *testing.T) {
	w := newWorker(t, batchOf(1000, 1<<30, 10*time.Millisecond), 0, newFakeApplier())
	values := make([]string, 500)
	for i := range values {
		values[i] = fmt.Sprint(i)
	}
	w.queue(0, 0, values...) // dispatched an hour ago: max_wait is up at once
	close(w.stopping)
	w.start()
	got := next(t, w.applies.calls, "the batch taken before the stop")
	if n := len(got.offsets); n == 0 || n > fastTakes {
		t.Fatalf("the batch held %d records, want 1 to %d: the stop is looked for once in fastTakes records", n, fastTakes)
	}
	<-w.done
	none(t, w.applies.calls, "a batch after the stop")
}

// A record dispatched after collect read the clock is not observed as
// queued for a negative time.
func TestQueuedLatencyNeverNegative(t *testing.T) {
	w := newWorker(t, batchOf(1, 1<<30, time.Hour), 0, newFakeApplier())
	w.at = time.Now().Add(time.Minute) // "dispatched" after any reading collect takes now
	w.queue(0, 0, "a")
	w.start()
	next(t, w.applies.calls, "the batch")
	var m dto.Metric
	if err := w.metrics.QueuedLatency.Write(&m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() < 0 {
		t.Fatalf("queued latency: %d samples summing to %v s, want one sample of at least 0", h.GetSampleCount(), h.GetSampleSum())
	}
}
