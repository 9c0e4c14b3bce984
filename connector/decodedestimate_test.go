package connector

import (
	"slices"
	"testing"
	"time"
)

// The prediction follows what the worker measures: after a run of records
// decoding into four times their bytes it predicts about four times.
func TestDecodedEstimateFollowsMeasuredSizes(t *testing.T) {
	e := newDecodedEstimate(nil)
	if got := e.of(100); got != 100 {
		t.Fatalf("a fresh prediction for 100 wire bytes is %d, want 100 (a ratio of 1)", got)
	}
	for range 64 {
		e.observe(100, 400)
	}
	if got := e.of(100); got < 390 || got > 400 {
		t.Errorf("after records of 100 bytes decoding into 400, the prediction for 100 is %d, want about 400", got)
	}
	if got := newDecodedEstimate(e).of(100); got != e.of(100) {
		t.Errorf("a partition seeded from the instance predicts %d, want the seed's %d", got, e.of(100))
	}
	var none *decodedEstimate
	none.observe(100, 400) // the seed is optional: a nil one ignores samples
}

// The poll loop charges a record its wire bytes and the decoded size its
// partition predicts, so the budget stops fetching before the queues hold
// more than it says once decoded (the records queued while the budget
// was spent were charged their decoded size only as the worker took them,
// and a compact format overshot the budget by many times).
func TestDispatchChargesThePredictedDecodedSize(t *testing.T) {
	r, _ := newTestRunner(1 << 20)
	p := r.own(0, 16)
	for range 64 {
		p.decoded.observe(100, 300)
	}
	m := hundredBytes(0, 0)
	r.dispatch(m)
	e, ok := p.in.take()
	if !ok {
		t.Fatal("the record was not queued")
	}
	if e.estimate < 290 || e.estimate > 300 {
		t.Errorf("predicted %d decoded bytes for a record of 100, want about 300", e.estimate)
	}
	if got, want := r.buffered.Load(), messageBytes(m)+e.estimate; got != want || e.cost != want {
		t.Errorf("buffered %d, record's cost %d, want both %d: wire bytes, overhead and prediction", got, e.cost, want)
	}
	r.release(e.cost)
	if got := r.buffered.Load(); got != 0 {
		t.Errorf("buffered %d after the record's cost went back, want 0", got)
	}
}

// The worker replaces a record's predicted decoded size by the measured
// one when it takes the record into a batch, so the batch holds what it
// decoded to whatever the prediction was, and everything goes back once
// the batch is applied.
func TestWorkerCorrectsThePrediction(t *testing.T) {
	measure := func(estimate int64) (held, owedAfter int64) {
		applies := &fakeApplier{results: make(chan applyResult), calls: make(chan applied)}
		w := newWorker(t, batchOf(100, 1<<20, time.Minute), 0, applies)
		for i, v := range slices.Repeat([]string{"wide:1000"}, 3) {
			m := message(int64(i), v)
			cost := messageBytes(m) + estimate
			w.queued += cost
			if !w.in.offer(envelope{msg: m, at: w.at, cost: cost, estimate: estimate}) {
				t.Fatal("queue full")
			}
		}
		w.start()
		next(t, applies.calls, "apply")
		// Every charge came before Apply; released bytes are counted apart.
		held = w.queued + w.poll.charged.Load()
		next(t, w.poll.commits, "commit report")
		w.awaitReleased(t)
		w.stop()
		return held, w.unreleased()
	}
	exact, exactOwed := measure(0)
	over, overOwed := measure(5000)
	under, underOwed := measure(10)
	if over != exact || under != exact {
		t.Errorf("a batch held %d bytes predicted high and %d predicted low, want %d (its measured size) either way", over, under, exact)
	}
	if exactOwed != 0 || overOwed != 0 || underOwed != 0 {
		t.Errorf("bytes not given back after the batch: %d, %d, %d; want none", exactOwed, overOwed, underOwed)
	}
}

// One tiny record (a byte on the wire, an Item's hundreds of bytes
// decoded) among records decoding into twice their bytes does not multiply
// the prediction for the next large record: the records are weighed by
// their bytes.
func TestDecodedEstimateTinyRecordDoesNotBlowUp(t *testing.T) {
	e := newDecodedEstimate(nil)
	for range 64 {
		e.observe(1000, 2000)
	}
	e.observe(1, 600)
	if got := e.of(100_000); got < 150_000 || got > 250_000 {
		t.Errorf("after one tiny record, a record of 100000 bytes is predicted to decode into %d, want about 200000", got)
	}
	e.observe(0, 600) // nothing on the wire: no sample
	if got := e.of(1000); got < 1500 || got > 2500 {
		t.Errorf("after an empty record, the prediction for 1000 bytes is %d, want about 2000", got)
	}
}
