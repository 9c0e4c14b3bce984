package connector

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// The fakes a partition worker and the poll loop are tested with: each
// records what it was asked on a channel, so a test waits for an event
// instead of sleeping.

const testTopic = "pg.public.t"

// testWait bounds every wait for an event: reached only when the code under
// test is broken.
const testWait = 10 * time.Second

var testTable = &sink.Table{Schema: "public", Name: "t"}

// applied is what one Apply call saw.
type applied struct {
	offsets []int64 // of the batch's items
	values  []string
	errs    []error // of the batch's items
	next    int64
	epoch   int64 // of the batch's claim
	from    int64 // the batch's claim's position
	room    int   // the capacity of the batch's item slice
}

// fakeApplier answers each Apply with the next of its results (success once
// they run out) and reports the batch on calls.
type fakeApplier struct {
	results chan applyResult
	calls   chan applied
}

type applyResult struct {
	stats sink.Stats
	err   error
	panic any // when set, Apply panics with it
}

func newFakeApplier(results ...applyResult) *fakeApplier {
	a := &fakeApplier{results: make(chan applyResult, len(results)), calls: make(chan applied, 64)}
	for _, r := range results {
		a.results <- r
	}
	return a
}

func (a *fakeApplier) Apply(_ context.Context, b *sink.Batch) (sink.Stats, error) {
	got := applied{next: b.Next, epoch: b.Claim.Epoch, from: b.Claim.NextOffset, room: cap(b.Items)}
	for _, it := range b.Items {
		got.offsets = append(got.offsets, it.Record.Offset)
		got.values = append(got.values, string(it.Record.Value))
		got.errs = append(got.errs, it.Err)
	}
	a.calls <- got
	select {
	case r := <-a.results:
		if r.panic != nil {
			panic(r.panic)
		}
		return r.stats, r.err
	default:
		return sink.Stats{Upserted: int64(len(b.Items))}, nil
	}
}

// fakePositions is the offsets table: Read answers stored, Claim stores
// claimed, answers it and reports the start it was asked for.
type fakePositions struct {
	mu      sync.Mutex
	stored  dedup.Claim
	readErr error
	claimed dedup.Claim
	claims  chan int64
	// claimErrs are what the next Claims fail with, one each, before a
	// Claim succeeds again; while claimErr is set, every Claim fails with
	// it.
	claimErrs []error
	claimErr  error
	// stopReasons are the reasons MarkStopped noted.
	stopReasons []string
	// reads counts the Reads.
	reads int
}

// awaitReads waits until the row was read n times.
func (f *fakePositions) awaitReads(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		f.mu.Lock()
		got := f.reads
		f.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the offsets row read %d times within %s, want %d", got, testWait, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// set replaces the stored row, and what the next Claim stores.
func (f *fakePositions) set(stored, claimed dedup.Claim, readErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stored, f.claimed, f.readErr = stored, claimed, readErr
}

func (f *fakePositions) MarkStopped(_ context.Context, _ dedup.Claim, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopReasons = append(f.stopReasons, reason)
	return nil
}

// awaitStopReasons waits until MarkStopped noted n reasons and returns
// them. The worker reports a stop to the poll loop before it writes the
// row (so /readyz knows at once even while PostgreSQL is what failed), so
// a test that saw the report must still wait for the row.
func (f *fakePositions) awaitStopReasons(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		f.mu.Lock()
		got := slices.Clone(f.stopReasons)
		f.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fakePositions) Read(context.Context, dedup.PartitionID) (dedup.Claim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.stored, f.readErr
}

func (f *fakePositions) Claim(_ context.Context, _ dedup.PartitionID, start int64) (dedup.Claim, error) {
	select {
	case f.claims <- start:
	default: // a test that retries many claims reads only the first
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimErr != nil {
		return dedup.Claim{}, f.claimErr
	}
	if len(f.claimErrs) > 0 {
		err := f.claimErrs[0]
		f.claimErrs = f.claimErrs[1:]
		return dedup.Claim{}, err
	}
	f.stored = f.claimed
	return f.claimed, nil
}

// fakeRouter routes every record to testTable, but fails the ones whose
// value is "unroutable".
type fakeRouter struct{}

// DeletesApplied: every test topic is a source table's with deletes applied.
func (fakeRouter) DeletesApplied(string) bool { return true }

func (fakeRouter) Item(_ context.Context, _ *debezium.Decoder, rec debezium.Record) (sink.Item, bool, error) {
	if string(rec.Value) == "panics" {
		panic("a decoder bug")
	}
	if string(rec.Value) == "unroutable" {
		return sink.Item{}, false, errors.New("no table for the topic")
	}
	if rec.Value == nil {
		return sink.Item{}, false, nil // a tombstone writes nothing
	}
	if v, ok := strings.CutPrefix(string(rec.Value), "tx"); ok {
		// A record of source transaction 1, "tx:order", or of another,
		// "txN:order" (apply.consistency: transaction stages it).
		txPart, orderPart, _ := strings.Cut(v, ":")
		tx := int64(1)
		if n, err := strconv.ParseInt(txPart, 10, 64); err == nil {
			tx = n
		}
		order, _ := strconv.Atoi(orderPart)
		return sink.Item{Record: rec, Table: testTable, Change: debezium.Change{Transaction: &debezium.Transaction{ID: strconv.FormatInt(tx, 10) + ":1", TxID: tx, TotalOrder: int64(order)}}}, true, nil
	}
	if string(rec.Value) == "delete" {
		return sink.Item{Record: rec, Table: testTable, Change: debezium.Change{Kind: debezium.KindChange, Op: debezium.OpDelete}}, true, nil
	}
	if v, ok := strings.CutPrefix(string(rec.Value), "wide:"); ok {
		// A compact encoding's record: a few bytes on the wire that decode
		// into a row far larger.
		n, err := strconv.Atoi(v)
		if err != nil {
			return sink.Item{}, false, err
		}
		after := debezium.Row{{Name: "payload", Value: strings.Repeat("x", n)}}
		return sink.Item{Record: rec, Table: testTable, Change: debezium.Change{After: after}}, true, nil
	}
	return sink.Item{Record: rec, Table: testTable}, true, nil
}

type fakeDiverter struct{ err error }

func (d fakeDiverter) divert(context.Context, *sink.Batch) error { return d.err }

// fakeLoop is the poll loop as a worker sees it.
type fakeLoop struct {
	seeks    chan int64
	commits  chan int64
	fatals   chan string
	released chan int64 // each non-empty release
	stops    chan string
	resumes  chan struct{}
	charged  atomic.Int64 // every charge, summed
}

func newFakeLoop() *fakeLoop {
	return &fakeLoop{seeks: make(chan int64, 64), commits: make(chan int64, 64), fatals: make(chan string, 64), released: make(chan int64, 256), stops: make(chan string, 64),
		resumes: make(chan struct{}, 64)}
}

func (l *fakeLoop) requestSeek(_ *partition, offset int64)     { l.seeks <- offset }
func (l *fakeLoop) committed(_ *partition, next int64)         { l.commits <- next }
func (l *fakeLoop) fatalf(_ *zap.Logger, what string, _ error) { l.fatals <- what }
func (l *fakeLoop) stopped(_ *partition, reason string)        { l.stops <- reason }
func (l *fakeLoop) resumed(*partition)                         { l.resumes <- struct{}{} }
func (l *fakeLoop) charge(bytes int64)                         { l.charged.Add(bytes) }
func (l *fakeLoop) release(bytes int64) {
	if bytes != 0 {
		l.released <- bytes
	}
}

// worker is a partition under test with its fakes.
type worker struct {
	*partition
	applies  *fakeApplier
	store    *fakePositions
	poll     *fakeLoop
	queued   int64     // bytes queued
	released int64     // bytes seen released
	at       time.Time // when queued records count as dispatched
	started  bool
}

// newWorker builds a partition at claim offset next; set tunes its
// collaborators before it starts. Cleanup revokes it.
func newWorker(t *testing.T, batch config.Batch, next int64, a *fakeApplier, set ...func(*workerDeps)) *worker {
	t.Helper()
	id := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 0}
	w := &worker{applies: a, store: &fakePositions{claims: make(chan int64, 16)}, poll: newFakeLoop(), at: time.Now().Add(-time.Hour)}
	deps := &workerDeps{
		batch: batch, fenceGrace: time.Hour, applier: a, positions: w.store, router: fakeRouter{},
		deadLetters: fakeDiverter{}, metrics: NewMetrics(), loop: w.poll,
	}
	for _, f := range set {
		f(deps)
	}
	claim := dedup.Claim{PartitionID: id, Epoch: 1, NextOffset: next, Owner: "me"}
	w.store.stored = claim // an idle worker's check finds the partition still its own
	w.partition = newPartition(deps, id, claim, nil, zap.NewNop())
	t.Cleanup(w.stop)
	return w
}

// start runs the worker.
func (w *worker) start() *worker {
	w.started = true
	go w.run()
	return w
}

// stop asks the worker to finish and waits for it, as a revocation does.
func (w *worker) stop() {
	select {
	case <-w.stopping:
	default:
		close(w.stopping)
	}
	if w.started {
		<-w.done
	}
	w.cancel()
}

// queue hands the worker records from offset first on, one per value, of
// generation gen, dispatched at w.at (by default long enough ago that
// their batch's max_wait is up).
func (w *worker) queue(gen uint64, first int64, values ...string) {
	for i, v := range values {
		m := message(first+int64(i), v)
		w.queued += messageBytes(m)
		if !w.in.offer(envelope{msg: m, gen: gen, at: w.at, cost: messageBytes(m)}) {
			panic("the test queued more records than the partition's queue takes")
		}
	}
}

// awaitReleased waits until the worker gave every queued byte, and every
// byte it charged for its decoded items, back to the buffer budget:
// dropped, drained or done with.
func (w *worker) awaitReleased(t *testing.T) {
	t.Helper()
	for w.owed() > 0 {
		w.released += next(t, w.poll.released, "release of buffered bytes")
	}
	if owed := w.owed(); owed < 0 {
		t.Fatalf("released %d bytes more than were queued and charged", -owed)
	}
}

// owed is what the worker has taken of the budget (records queued, items
// charged) and not given back as far as the test has seen.
func (w *worker) owed() int64 { return w.queued + w.poll.charged.Load() - w.released }

// unreleased is what the worker has not given back of what was queued and
// charged: once it stopped, 0 unless it leaks or double-counts the budget.
func (w *worker) unreleased() int64 {
	for {
		select {
		case b := <-w.poll.released:
			w.released += b
		default:
			return w.owed()
		}
	}
}

func message(offset int64, value string) *kafka.Message {
	topic := testTopic
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.Offset(offset)},
		Key: []byte("k"), Value: []byte(value), Timestamp: time.Now()}
}

// next waits for a value on ch, failing the test after testWait.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testWait):
		t.Fatalf("no %s within %s", what, testWait)
		panic("unreachable")
	}
}

// none fails the test if ch holds a value.
func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Errorf("unexpected %s: %v", what, v)
	default:
	}
}

// fakeConsumer is the Kafka client as the poll loop's helpers see it.
type fakeConsumer struct {
	mu      sync.Mutex
	paused  []int32
	resumed []int32
	seeks   []kafka.TopicPartition
	// assigned and unassigned are the IncrementalAssign and
	// IncrementalUnassign calls outside a rebalance (reassign).
	assigned   []kafka.TopicPartition
	unassigned []int32
	// seekErrs are what the next Seeks fail with, one each.
	seekErrs []error
	stored   chan kafka.TopicPartition
	high     int64
}

func newFakeConsumer() *fakeConsumer {
	return &fakeConsumer{stored: make(chan kafka.TopicPartition, 64)}
}

func (c *fakeConsumer) Pause(tps []kafka.TopicPartition) error  { return c.note(&c.paused, tps) }
func (c *fakeConsumer) Resume(tps []kafka.TopicPartition) error { return c.note(&c.resumed, tps) }

// note adds the partitions of tps to a list of calls.
func (c *fakeConsumer) note(calls *[]int32, tps []kafka.TopicPartition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		*calls = append(*calls, tp.Partition)
	}
	return nil
}

// noted reads a list of calls.
func (c *fakeConsumer) noted(calls *[]int32) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(*calls)
}

func (c *fakeConsumer) IncrementalAssign(tps []kafka.TopicPartition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.assigned = append(c.assigned, tps...)
	return nil
}

func (c *fakeConsumer) IncrementalUnassign(tps []kafka.TopicPartition) error {
	return c.note(&c.unassigned, tps)
}

func (c *fakeConsumer) Seek(tp kafka.TopicPartition, _ int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seekErrs) > 0 {
		err := c.seekErrs[0]
		c.seekErrs = c.seekErrs[1:]
		return err
	}
	c.seeks = append(c.seeks, tp)
	return nil
}

func (c *fakeConsumer) StoreOffsets(tps []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	for _, tp := range tps {
		c.stored <- tp
	}
	return tps, nil
}

func (c *fakeConsumer) CommitOffsets(tps []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	return tps, nil
}

func (c *fakeConsumer) GetWatermarkOffsets(string, int32) (int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return 0, c.high, nil
}

func (c *fakeConsumer) QueryWatermarkOffsets(topic string, partition int32, _ int) (int64, int64, error) {
	return c.GetWatermarkOffsets(topic, partition)
}

// Committed answers no committed offset (apply.offsets: postgres never
// asks).
func (c *fakeConsumer) Committed(tps []kafka.TopicPartition, _ int) ([]kafka.TopicPartition, error) {
	return tps, nil
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
