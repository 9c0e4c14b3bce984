package connector

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func batchOf(records int, bytes config.ByteSize, wait time.Duration) config.Batch {
	return config.Batch{MaxRecords: records, MaxBytes: bytes, MaxWait: config.Duration(wait)}
}

func TestBatchBoundaries(t *testing.T) {
	hundredBytes := strings.Repeat("v", 99) // and a one-byte key
	// Each record weighs its key and value and its decoded item.
	hundredWeight := 100 + decodedBytes(&sink.Item{Table: testTable})
	tests := []struct {
		name     string
		batch    config.Batch
		position int64 // the claim's next offset
		first    int64 // the first queued record's offset
		values   []string
		want     [][]int64 // offsets applied, batch by batch
		wantNext []int64   // each batch's next offset, as committed
	}{
		{name: "max_records closes a batch", batch: batchOf(3, 1<<20, time.Minute),
			values: []string{"a", "b", "c", "d", "e"}, want: [][]int64{{0, 1, 2}, {3, 4}}, wantNext: []int64{3, 5}},
		{name: "max_bytes closes a batch", batch: batchOf(100, config.ByteSize(2*hundredWeight+hundredWeight/2), time.Minute),
			values: slices.Repeat([]string{hundredBytes}, 5), want: [][]int64{{0, 1, 2}, {3, 4}}, wantNext: []int64{3, 5}},
		// Ten bytes each on the wire, a kilobyte each decoded: max_bytes
		// counts what the batch holds, not what Kafka sent.
		{name: "max_bytes counts the decoded size", batch: batchOf(100, 2000, time.Minute),
			values: slices.Repeat([]string{"wide:1000"}, 5), want: [][]int64{{0, 1}, {2, 3}, {4}}, wantNext: []int64{2, 4, 5}},
		{name: "a record larger than max_bytes decoded goes alone", batch: batchOf(100, 1024, time.Minute),
			values: []string{"wide:5000", "a"}, want: [][]int64{{0}, {1}}, wantNext: []int64{1, 2}},
		{name: "once max_wait is up, every record waiting joins the batch", batch: batchOf(100, 1<<20, time.Minute),
			values: []string{"a", "b", "c", "d"}, want: [][]int64{{0, 1, 2, 3}}, wantNext: []int64{4}},
		{name: "records below the position are dropped", batch: batchOf(100, 1<<20, time.Minute), position: 10, first: 8,
			values: []string{"a", "b", "c", "d"}, want: [][]int64{{10, 11}}, wantNext: []int64{12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorker(t, tt.batch, tt.position, newFakeApplier())
			w.queue(0, tt.first, tt.values...)
			w.start()
			for i, want := range tt.want {
				got := next(t, w.applies.calls, "apply")
				if !slices.Equal(got.offsets, want) || got.next != tt.wantNext[i] {
					t.Errorf("batch %d: offsets %v, next %d; want %v, next %d", i, got.offsets, got.next, want, tt.wantNext[i])
				}
				if c := next(t, w.poll.commits, "commit report"); c != tt.wantNext[i] {
					t.Errorf("batch %d: reported the commit up to %d, want %d", i, c, tt.wantNext[i])
				}
			}
			w.stop()
			none(t, w.applies.calls, "apply")
			if n := w.unreleased(); n != 0 {
				t.Errorf("%d bytes still counted against the buffer budget after the worker stopped, want 0", n)
			}
			below := value(w.metrics.Skipped.WithLabelValues(testTopic, "below_position"))
			if want := float64(tt.position - tt.first); below != want {
				t.Errorf("skipped below_position = %v, want %v", below, want)
			}
		})
	}
}

// A batch that is not full waits for max_wait, counted from its first
// record's dispatch, and is applied then without anything else happening.
func TestBatchClosesAtMaxWait(t *testing.T) {
	const wait = 20 * time.Millisecond
	w := newWorker(t, batchOf(100, 1<<20, wait), 0, newFakeApplier())
	w.at = time.Now()
	w.queue(0, 0, "a")
	w.start()
	got := next(t, w.applies.calls, "apply at max_wait")
	if elapsed := time.Since(w.at); elapsed < wait {
		t.Errorf("applied %s after dispatch, before max_wait (%s)", elapsed, wait)
	}
	if !slices.Equal(got.offsets, []int64{0}) {
		t.Errorf("applied %v, want [0]", got.offsets)
	}
}

// Records fetched before a seek (while the worker waits for it, or of an
// older generation) never reach a batch: the seek fetches them again.
//
// Records queued while a worker runs are dispatched now and close their
// batch at max_records, so the batch is the same however the worker and
// the test interleave.
func TestRecordsFetchedBeforeASeekAreDropped(t *testing.T) {
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier())
	w.at = time.Now()
	w.seeking.Store(true) // the worker asked for a seek the poll loop has not done yet
	w.queue(0, 0, "before", "before", "before")
	w.start()
	w.awaitReleased(t)
	none(t, w.applies.calls, "apply of records fetched before the seek")

	// The poll loop seeks (service): a new generation.
	w.gen.Add(1)
	w.seeking.Store(false)
	w.queue(0, 2, "stale") // dispatched before the seek, taken after it
	w.queue(1, 0, "after", "after")
	got := next(t, w.applies.calls, "apply")
	if !slices.Equal(got.values, []string{"after", "after"}) || got.next != 2 {
		t.Errorf("applied %v up to %d, want the two records fetched after the seek, up to 2", got.values, got.next)
	}
}

func TestApplyReportsTheCommitAndCounts(t *testing.T) {
	stats := sink.Stats{Upserted: 2, Deleted: 1, Stale: 1, Duplicates: 1}
	w := newWorker(t, batchOf(3, 1<<20, time.Minute), 7, newFakeApplier(applyResult{stats: stats}))
	w.queue(0, 7, "a", "b", "c")
	w.start()
	if got := next(t, w.applies.calls, "apply"); got.epoch != 1 {
		t.Errorf("batch applied under epoch %d, want the claim's (1)", got.epoch)
	}
	if c := next(t, w.poll.commits, "commit report"); c != 10 {
		t.Errorf("reported the commit up to %d, want 10", c)
	}
	w.stop()
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"consumed", value(w.metrics.Consumed.WithLabelValues(testTopic)), 3},
		{"applied upserts", value(w.metrics.Applied.WithLabelValues("public.t", "upsert")), 2},
		{"applied deletes", value(w.metrics.Applied.WithLabelValues("public.t", "delete")), 1},
		{"skipped stale", value(w.metrics.Skipped.WithLabelValues(testTopic, "stale")), 1},
		{"skipped duplicate", value(w.metrics.Skipped.WithLabelValues(testTopic, "duplicate")), 1},
		{"stopped", value(w.metrics.Stopped.WithLabelValues(testTopic, "0")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// Under errors.tolerance: none a poison record stops the partition where
// it is (I5): no commit, the stopped gauge set, and nothing applied after
// it, while its input is still drained so the poll loop never blocks.
func TestPoisonRecordStopsThePartition(t *testing.T) {
	poison := &sink.PoisonError{Topic: testTopic, Offset: 5, Err: errors.New("value too long")}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 5, newFakeApplier(applyResult{err: poison}))
	core, logs := observer.New(zapcore.InfoLevel)
	w.log = zap.New(core)
	w.queue(0, 5, "a", "b")
	w.start()
	next(t, w.applies.calls, "apply")
	w.queue(0, 7, "c")
	w.awaitReleased(t)
	none(t, w.applies.calls, "apply after the poison record")
	none(t, w.poll.commits, "commit report")
	if !w.stopped.Load() || value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 1 {
		t.Error("partition not marked stopped")
	}
	entries := logs.FilterMessageSnippet("partition stopped: record cannot be applied").All()
	if len(entries) != 1 || entries[0].ContextMap()["offset"] != int64(5) {
		t.Errorf("logged %v, want one stop at offset 5", logs.All())
	}
	// The poll loop (so /readyz) and the offsets row (so pgsink status)
	// learn why.
	if reason := next(t, w.poll.stops, "stop report"); !strings.Contains(reason, "value too long") {
		t.Errorf("stop reported as %q, want the record's error in it", reason)
	}
	marked := w.store.awaitStopReasons(t, 1)
	if len(marked) != 1 || !strings.Contains(marked[0], "errors.tolerance is none") {
		t.Errorf("offsets row marked %q, want one reason naming errors.tolerance", marked)
	}
	w.stop() // a revocation still ends it
}

// Records the worker cannot route or dead-letter stop the partition too,
// without an apply.
func TestUndeliverableRecordsStopThePartition(t *testing.T) {
	for _, tt := range []struct {
		name  string
		value string
		set   func(*workerDeps)
	}{
		{name: "no target table", value: "unroutable"},
		{name: "dead-letter topic down", value: "a", set: func(d *workerDeps) { d.deadLetters = fakeDiverter{err: errors.New("broker down")} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var set []func(*workerDeps)
			if tt.set != nil {
				set = append(set, tt.set)
			}
			w := newWorker(t, batchOf(1, 1<<20, time.Minute), 0, newFakeApplier(), set...)
			w.queue(0, 0, tt.value)
			w.start()
			w.awaitReleased(t)
			w.stop()
			none(t, w.applies.calls, "apply")
			none(t, w.poll.commits, "commit report")
			if value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 1 {
				t.Error("stopped gauge not set")
			}
		})
	}
}

// An apply error that is neither fencing, a moved position nor poison
// stops the instance.
func TestApplyErrorIsFatal(t *testing.T) {
	w := newWorker(t, batchOf(1, 1<<20, time.Minute), 0, newFakeApplier(applyResult{err: errors.New("disk full")}))
	w.queue(0, 0, "a", "b")
	w.start()
	if what := next(t, w.poll.fatals, "fatal error"); what != "apply failed" {
		t.Errorf("fatal %q, want \"apply failed\"", what)
	}
	w.awaitReleased(t)
	if got := len(w.applies.calls); got != 1 {
		t.Errorf("%d applies, want 1: nothing after the failed batch", got)
	}
}

// A batch another instance's epoch rejected (I2) stops the worker from
// applying: it drains its input and waits for the group to revoke the
// partition.
func TestFencedWorkerStopsApplying(t *testing.T) {
	fenced := &dedup.FencedError{Epoch: 1, Current: 2, Owner: "other:1"}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(applyResult{err: fenced}))
	w.queue(0, 0, "a", "b")
	w.start()
	next(t, w.applies.calls, "apply")
	w.queue(0, 2, "c", "d")
	w.awaitReleased(t)
	none(t, w.applies.calls, "apply by a fenced worker")
	none(t, w.poll.commits, "commit report")
	none(t, w.store.claims, "claim")
	if got := value(w.metrics.Fenced); got != 1 {
		t.Errorf("fenced batches = %v, want 1", got)
	}
	w.stop()
}

// A worker re-claims its partition and goes on where a fencing came from
// no competing instance: at once for a replay's rewind and for a claim the
// target lost (its epoch went back: a failover to a standby that was
// behind), after the grace period for a claimant the group does not assign
// the partition to.
func TestFencedWorkerReclaims(t *testing.T) {
	for _, tt := range []struct {
		name            string
		owner           string
		held, current   int64
		grace           time.Duration
		fenced, wentBak float64
		// lostRow: the apply finds no row (dedup.ErrNotClaimed) instead
		// of a *dedup.FencedError.
		lostRow bool
	}{
		{name: "replay rewound the partition", owner: dedup.ReplayOwnerPrefix + "ops", held: 1, current: 2, grace: time.Hour},
		{name: "still assigned after the grace period", owner: "other:1", held: 1, current: 2, grace: time.Millisecond, fenced: 1},
		{name: "the target lost the claim", owner: "me", held: 2, current: 1, grace: time.Hour, wentBak: 1},
		{name: "the target lost the row", lostRow: true, grace: time.Hour, wentBak: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error = &dedup.FencedError{Epoch: tt.held, Current: tt.current, Owner: tt.owner}
			if tt.lostRow {
				err = fmt.Errorf("partition x: %w", dedup.ErrNotClaimed)
			}
			w := newWorker(t, batchOf(2, 1<<20, time.Minute), 4, newFakeApplier(applyResult{err: err}),
				func(d *workerDeps) { d.fenceGrace = tt.grace })
			w.store.claimed = dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 2, Owner: "me"}
			w.queue(0, 4, "a", "b")
			w.start()
			w.at = time.Now()
			next(t, w.applies.calls, "apply")
			if start := next(t, w.poll.seeks, "seek"); start != 2 {
				t.Errorf("seek to %d, want the re-claimed position 2", start)
			}
			if !w.seeking.Load() {
				t.Error("seek requested without marking the worker seeking")
			}
			// The poll loop seeks; the records come again from offset 2.
			w.gen.Add(1)
			w.seeking.Store(false)
			w.queue(1, 2, "c", "d")
			got := next(t, w.applies.calls, "apply after the re-claim")
			if got.epoch != 3 || !slices.Equal(got.offsets, []int64{2, 3}) {
				t.Errorf("applied %v under epoch %d, want [2 3] under the new epoch 3", got.offsets, got.epoch)
			}
			if c := next(t, w.poll.commits, "commit report"); c != 4 {
				t.Errorf("reported the commit up to %d, want 4", c)
			}
			if got := value(w.metrics.Fenced); got != tt.fenced {
				t.Errorf("fenced batches = %v, want %v", got, tt.fenced)
			}
			if got := value(w.metrics.TargetWentBack.WithLabelValues(testTopic)); got != tt.wentBak {
				t.Errorf("pgsink_target_went_back_total = %v, want %v", got, tt.wentBak)
			}
		})
	}
}

// A stored position behind the worker's under its own epoch (the target
// lost commits: a failover to a standby that was behind) makes it seek
// there and go on.
func TestMovedPositionSeeks(t *testing.T) {
	moved := &dedup.PositionMovedError{Expected: 3, Stored: 1}
	w := newWorker(t, batchOf(3, 1<<20, time.Minute), 3, newFakeApplier(applyResult{err: moved}))
	w.queue(0, 3, "a")
	w.start()
	w.at = time.Now()
	next(t, w.applies.calls, "apply")
	if start := next(t, w.poll.seeks, "seek"); start != 1 {
		t.Errorf("seek to %d, want the stored position 1", start)
	}
	w.gen.Add(1)
	w.seeking.Store(false)
	w.queue(1, 1, "b", "c", "d")
	if got := next(t, w.applies.calls, "apply after the seek"); !slices.Equal(got.offsets, []int64{1, 2, 3}) {
		t.Errorf("applied %v, want [1 2 3]", got.offsets)
	}
	none(t, w.poll.fatals, "fatal error")
	// Behind what the worker committed: the target lost commits.
	if got := value(w.metrics.TargetWentBack.WithLabelValues(testTopic)); got != 1 {
		t.Errorf("pgsink_target_went_back_total = %v, want 1", got)
	}
}

// checkClaim is what an idle worker runs to notice a replay or another
// owner on a quiet topic.
func TestCheckClaim(t *testing.T) {
	other := dedup.Claim{Epoch: 2, Owner: "other:1"}
	replay := dedup.Claim{Epoch: 2, Owner: dedup.ReplayOwnerPrefix + "ops", NextOffset: 1}
	for _, tt := range []struct {
		name         string
		stored       dedup.Claim
		readErr      error
		cancelled    bool
		kafkaOffsets bool
		wantErr      error
		wantSeek     bool
	}{
		{name: "still ours", stored: dedup.Claim{Epoch: 1, Owner: "me"}},
		{name: "another owner fences", stored: other, wantErr: errFenced},
		{name: "a replay is taken over", stored: replay, wantSeek: true},
		{name: "a claim the target lost is taken back", stored: dedup.Claim{Epoch: 0, Owner: "me", NextOffset: 1}, wantSeek: true},
		{name: "a row the target lost is claimed anew", readErr: fmt.Errorf("partition x: %w", dedup.ErrNotClaimed), wantSeek: true},
		{name: "apply.offsets kafka has no row to check", stored: other, kafkaOffsets: true},
		{name: "a read error is no fencing", readErr: errors.New("connection refused")},
		{name: "a read error on a revoked partition ends it", readErr: context.Canceled, cancelled: true, wantErr: errFenced},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorker(t, batchOf(1, 1, time.Minute), 0, newFakeApplier(), func(d *workerDeps) { d.kafkaOffsets = tt.kafkaOffsets })
			w.store.stored, w.store.readErr = tt.stored, tt.readErr
			w.store.claimed = dedup.Claim{Epoch: 3, NextOffset: replay.NextOffset}
			if tt.cancelled {
				w.cancel()
			}
			if err := w.checkClaim(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("checkClaim: %v, want %v", err, tt.wantErr)
			}
			if w.fenced != (tt.wantErr != nil && !tt.cancelled) {
				t.Errorf("fenced = %v", w.fenced)
			}
			if tt.wantSeek {
				if start := next(t, w.poll.seeks, "seek"); start != 1 || w.claim.Epoch != 3 {
					t.Errorf("seek to %d under epoch %d, want 1 under the new epoch 3", start, w.claim.Epoch)
				}
			} else {
				none(t, w.poll.seeks, "seek")
			}
		})
	}
}

// TestReadyFailsWhileAPartitionIsStopped: a joined instance with a stopped
// partition is not ready, and says which partition and why, until the
// partition is no longer its own.
func TestReadyFailsWhileAPartitionIsStopped(t *testing.T) {
	r := &Runner{}
	r.ready.Store(true)
	id := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 3}
	r.stops.add(id, 42, "record cannot be applied and errors.tolerance is none: value too long")
	err := r.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), testTopic+"[3] stopped at offset 42") || !strings.Contains(err.Error(), "value too long") {
		t.Fatalf("Ready = %v, want the stopped partition, its offset and reason", err)
	}
	r.stops.clear(id)
	if err := r.stops.err(); err != nil {
		t.Fatalf("after the partition was revoked: %v", err)
	}
}

// A panic decoding or routing a record makes that record an undecodable
// item (for the dead letters); the records around it are applied in the
// same batch and the panic is counted.
func TestDecodePanicBecomesADeadLetter(t *testing.T) {
	w := newWorker(t, batchOf(3, 1<<20, time.Minute), 0, newFakeApplier())
	w.queue(0, 0, "a", "panics", "c")
	w.start()
	got := next(t, w.applies.calls, "apply")
	if !slices.Equal(got.offsets, []int64{0, 1, 2}) {
		t.Fatalf("applied offsets %v, want all three (the panicking one as a dead letter)", got.offsets)
	}
	var panicked *sink.PanicError
	if got.errs[0] != nil || !errors.As(got.errs[1], &panicked) || got.errs[2] != nil {
		t.Fatalf("item errors %v, want only the second a *sink.PanicError", got.errs)
	}
	if c := next(t, w.poll.commits, "commit report"); c != 3 {
		t.Errorf("commit reported to %d, want 3", c)
	}
	if n := value(w.metrics.Panics.WithLabelValues("decode")); n != 1 {
		t.Errorf("pgsink_panics_total{where=decode} = %v, want 1", n)
	}
	if w.stopped.Load() {
		t.Error("partition stopped on a record the dead letters take")
	}
}

// markerFakeRouter routes like fakeRouter but is a boundaryRouter, as the
// transaction topic's markerRouter is.
type markerFakeRouter struct{ fakeRouter }

func (markerFakeRouter) boundaries() {}

// A panic decoding a transaction marker stops the partition at it, offset
// unmoved: a dead letter would have the resolver pass over a transaction
// boundary (review of txavro: under errors.tolerance all the marker went to
// the dead letters and the resolver moved past its END).
func TestMarkerPanicStopsThePartition(t *testing.T) {
	w := newWorker(t, batchOf(3, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) { d.router = markerFakeRouter{} })
	w.queue(0, 0, "a", "panics", "c")
	w.start()
	deadline := time.Now().Add(10 * time.Second)
	for !w.stopped.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the partition did not stop at a marker whose decoding panicked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case got := <-w.applies.calls:
		t.Fatalf("applied %v (errors %v): nothing may be applied past or for the marker", got.offsets, got.errs)
	default:
	}
	if w.claim.NextOffset != 0 {
		t.Errorf("position %d, want 0 (unmoved)", w.claim.NextOffset)
	}
	if n := value(w.metrics.Panics.WithLabelValues("decode")); n != 1 {
		t.Errorf("pgsink_panics_total{where=decode} = %v, want 1", n)
	}
}

// A panic anywhere else in the worker stops only its partition, with the
// offset unmoved; the process goes on.
func TestWorkerPanicStopsOnlyItsPartition(t *testing.T) {
	w := newWorker(t, batchOf(1, 1<<20, time.Minute), 0, newFakeApplier(applyResult{panic: "a bug"}))
	w.queue(0, 0, "a")
	w.start()
	next(t, w.applies.calls, "apply")
	reason := next(t, w.poll.stops, "stop report")
	if !strings.Contains(reason, "internal error") || !strings.Contains(reason, "a bug") {
		t.Errorf("stop reason %q, want the internal error and the panic", reason)
	}
	none(t, w.poll.commits, "commit report")
	if n := value(w.metrics.Panics.WithLabelValues("worker")); n != 1 || !w.stopped.Load() {
		t.Errorf("panics{worker} = %v, stopped %v; want 1 and true", n, w.stopped.Load())
	}
	w.stop() // a revocation still ends it
}

// A batch's decoded items stay charged to the buffer budget while it is
// applied, and go back with its records once it is done.
func TestDecodedItemsChargedUntilApplied(t *testing.T) {
	applies := &fakeApplier{results: make(chan applyResult), calls: make(chan applied)} // Apply waits for the test
	w := newWorker(t, batchOf(100, 1<<20, time.Minute), 0, applies)
	w.queue(0, 0, slices.Repeat([]string{"wide:1000"}, 3)...)
	w.start()
	// Every item charged, exactly: the worker is then in Apply (which
	// waits for the test) and charges nothing more. A lower bound would
	// let the test go on while the worker still takes an item, whose
	// charge could land between the two reads below.
	one, _, err := fakeRouter{}.Item(context.Background(), nil, debezium.Record{Value: []byte("wide:1000")})
	if err != nil {
		t.Fatal(err)
	}
	charged := 3 * decodedBytes(&one)
	for deadline := time.Now().Add(testWait); w.poll.charged.Load() != charged; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("the worker charged %d bytes for its batch's decoded items, want %d: three items'", w.poll.charged.Load(), charged)
		}
	}
	if got, want := w.unreleased(), w.queued+charged; got != want {
		t.Errorf("%d bytes counted while the batch is applied, want %d: its records and decoded items", got, want)
	}
	got := next(t, applies.calls, "apply")
	if !slices.Equal(got.offsets, []int64{0, 1, 2}) {
		t.Errorf("applied %v, want [0 1 2]", got.offsets)
	}
	next(t, w.poll.commits, "commit report")
	w.awaitReleased(t)
	w.stop()
	if n := w.unreleased(); n != 0 {
		t.Errorf("%d bytes still counted against the buffer budget after the batch, want 0", n)
	}
}

// blockedApplier holds each Apply until released, then fails it with err.
type blockedApplier struct {
	started, release chan struct{}
	err              error
}

func (a *blockedApplier) Apply(context.Context, *sink.Batch) (sink.Stats, error) {
	a.started <- struct{}{}
	<-a.release
	return sink.Stats{}, a.err
}

// A partition revoked while its last batch is in flight, whose batch then
// stops it (a poison record under errors.tolerance none), does not leave
// the instance unready: the partition is no longer its own, and no later
// revocation would take it off the list.
func TestRevokedPartitionStoppingLeavesTheInstanceReady(t *testing.T) {
	r, _ := newTestRunner(1 << 20)
	a := &blockedApplier{started: make(chan struct{}, 1), release: make(chan struct{}),
		err: &sink.PoisonError{Topic: testTopic, Offset: 0, Err: errors.New("value too long")}}
	w := newWorker(t, batchOf(1, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.loop = a, r
	})
	r.workers[w.id] = w.partition
	w.queue(0, 0, "a")
	w.start()
	next(t, a.started, "apply")
	topic := testTopic
	revoked := make(chan struct{})
	go func() {
		r.revoke([]kafka.TopicPartition{{Topic: &topic, Partition: w.id.Partition}}, false)
		close(revoked)
	}()
	// The revocation waits for the batch in flight: let it fail then.
	next(t, (<-chan struct{})(w.stopping), "the revocation's stop")
	close(a.release)
	next(t, revoked, "revocation")
	if err := r.stops.err(); err != nil {
		t.Errorf("not ready after the stopped partition was revoked: %v", err)
	}
}
