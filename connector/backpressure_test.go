package connector

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// newTestRunner is a Runner's poll-loop side on a fake consumer, with a
// buffer budget of budget bytes and no workers yet.
func newTestRunner(budget int64) (*Runner, *fakeConsumer) {
	cfg := &config.Config{Kafka: map[string]string{"group.id": "g"}}
	cfg.Apply.MaxBufferedBytes = config.ByteSize(budget)
	cfg.ShutdownTimeout = config.Duration(time.Minute)
	c := newFakeConsumer()
	return &Runner{cfg: cfg, log: zap.NewNop(), metrics: NewMetrics(), consumer: c, workers: map[dedup.PartitionID]*partition{}}, c
}

// own adds a partition whose worker does not run: the test takes its
// records. It predicts no decoded size, so its records cost their
// messageBytes.
func (r *Runner) own(n int32, queue int) *partition {
	id := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: n}
	p := &partition{id: id, in: newRecordQueue(queue), log: zap.NewNop(), labels: [2]string{testTopic, partitionLabel(n)},
		decoded: &decodedEstimate{}}
	r.workers[id] = p
	return p
}

// hundredBytes is a record of 100 key and value bytes at offset.
func hundredBytes(n int32, offset int64) *kafka.Message {
	m := message(offset, strings.Repeat("v", 99))
	m.TopicPartition.Partition = n
	return m
}

// take is the worker taking n records off its queue and, done with them,
// giving their bytes back.
func take(r *Runner, p *partition, n int) (offsets []int64) {
	for range n {
		e, ok := p.in.take()
		if !ok {
			panic("take: the queue is empty")
		}
		offsets = append(offsets, int64(e.msg.TopicPartition.Offset))
		r.release(e.cost)
	}
	return offsets
}

func (c *fakeConsumer) pauses() []int32  { return c.noted(&c.paused) }
func (c *fakeConsumer) resumes() []int32 { return c.noted(&c.resumed) }

// The record that crosses apply.max_buffered_bytes goes to its worker like
// any other: the poll loop stops taking records at the budget, and pausing
// the partition too made librdkafka drop its prefetched messages and fetch
// them again only later (a stall of the whole drain each time the budget
// filled).
func TestDispatchAcrossTheBudgetQueuesWithoutPausing(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"group.id": "g"}}
	cfg.Apply.MaxBufferedBytes = 1000
	topic := "t"
	id := dedup.PartitionID{Group: "g", Topic: topic, Partition: 2}
	p := &partition{id: id, in: newRecordQueue(4), decoded: &decodedEstimate{}}
	r := &Runner{cfg: cfg, workers: map[dedup.PartitionID]*partition{id: p}}
	r.buffered.Store(990)
	m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 2, Offset: 7}, Value: make([]byte, 100)}
	r.dispatch(m) // r.consumer is nil: a Pause would panic
	if p.in.len() != 1 || p.paused || len(p.overflow) != 0 {
		t.Fatalf("queued %d, paused %v, overflow %d: want the record queued and the partition fetching", p.in.len(), p.paused, len(p.overflow))
	}
	if got, want := r.buffered.Load(), 1090+recordOverhead; got != want {
		t.Errorf("buffered %d bytes, want %d: the record still counts against the budget", got, want)
	}
	if e, _ := p.in.take(); e.msg != m {
		t.Errorf("queued %v, want the dispatched message", e.msg)
	}
}

// A worker behind its queue gets its partition paused once; what keeps
// coming until the pause takes effect waits in order behind the queue.
func TestDispatchPausesAFullQueueOnce(t *testing.T) {
	r, c := newTestRunner(1 << 20)
	p := r.own(0, 2)
	unit := messageBytes(hundredBytes(0, 0))
	for off := range int64(4) {
		r.dispatch(hundredBytes(0, off))
	}
	if !p.paused || !slices.Equal(c.pauses(), []int32{0}) || len(p.overflow) != 2 {
		t.Fatalf("paused %v (consumer pauses %v), overflow %d: want the partition paused once and two records aside", p.paused, c.pauses(), len(p.overflow))
	}
	if got := value(r.metrics.Pauses.WithLabelValues("queue_full")); got != 1 {
		t.Errorf("queue_full pauses = %v, want 1", got)
	}
	// The queue has room again, but a record must not overtake those aside.
	take(r, p, 1)
	r.dispatch(hundredBytes(0, 4))
	if p.in.len() != 1 || len(p.overflow) != 3 || !slices.Equal(c.pauses(), []int32{0}) {
		t.Errorf("queued %d, aside %d, pauses %v: want the new record aside, behind the others, and no second pause", p.in.len(), len(p.overflow), c.pauses())
	}
	if got := r.buffered.Load(); got != 4*unit {
		t.Errorf("buffered %d bytes, want %d (five dispatched, one done)", got, 4*unit)
	}
	r.dispatch(hundredBytes(7, 0))
	if got := value(r.metrics.Skipped.WithLabelValues(testTopic, "not_owned")); got != 1 || r.buffered.Load() != 4*unit {
		t.Errorf("record of a partition not owned: skipped %v, buffered %d; want it skipped and not buffered", got, r.buffered.Load())
	}
}

// service resumes a paused partition once its records aside are queued,
// its queue is at most half full and the budget at most half spent.
func TestServiceResumesWhenQueueAndBudgetHaveRoom(t *testing.T) {
	unit := messageBytes(hundredBytes(0, 0))
	r, c := newTestRunner(10 * unit)
	p := r.own(0, 4)
	for off := range int64(6) {
		r.dispatch(hundredBytes(0, off))
	}
	take(r, p, 4)
	r.service()
	if len(p.overflow) != 0 || p.in.len() != 2 || !p.paused {
		t.Fatalf("aside %d, queued %d, paused %v: want the records aside queued and the partition still paused (queue half full)", len(p.overflow), p.in.len(), p.paused)
	}
	if got := take(r, p, 2); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("worker took %v, want [4 5]: the records aside, in order", got)
	}
	r.buffered.Add(5*unit + 1) // other partitions hold more than half the budget
	r.service()
	if !p.paused || len(c.resumes()) != 0 {
		t.Fatalf("resumed with %d of %d bytes buffered", r.buffered.Load(), 10*unit)
	}
	r.release(1)
	r.service()
	if p.paused || !slices.Equal(c.resumes(), []int32{0}) {
		t.Errorf("paused %v, consumer resumes %v: want partition 0 resumed at half the budget", p.paused, c.resumes())
	}
	if got := value(r.metrics.Buffered); got != float64(5*unit) {
		t.Errorf("buffered gauge = %v, want %d", got, 5*unit)
	}
}

// With the budget spent, the poll loop first stops polling, and only past
// budgetWait pauses every partition, so the group's rebalances are still
// served; the time spent counts in pgsink_buffer_full_seconds_total.
func TestMayPollAgainstTheBudget(t *testing.T) {
	r, c := newTestRunner(1000)
	r.own(0, 4)
	r.own(1, 4).paused = true // behind its queue already
	t0 := time.Now()
	if !r.mayPoll(t0) {
		t.Fatal("no polling with the budget unspent")
	}
	r.buffered.Store(1000)
	if r.mayPoll(t0) || r.mayPoll(t0.Add(budgetWait-time.Millisecond)) {
		t.Fatal("polled with the budget spent, before budgetWait")
	}
	if len(c.pauses()) != 0 {
		t.Fatalf("paused %v before budgetWait: a pause throws prefetched records away", c.pauses())
	}
	if !r.mayPoll(t0.Add(budgetWait)) {
		t.Fatal("no polling past budgetWait: rebalances would wait")
	}
	if !slices.Equal(c.pauses(), []int32{0}) || !r.workers[dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 0}].paused {
		t.Errorf("consumer pauses %v, want partition 0 paused (1 was already)", c.pauses())
	}
	if got := value(r.metrics.Pauses.WithLabelValues("buffer_full")); got != 1 {
		t.Errorf("buffer_full pauses = %v, want 1", got)
	}
	r.buffered.Store(999)
	if !r.mayPoll(t0.Add(budgetWait + 100*time.Millisecond)) {
		t.Fatal("no polling with the budget unspent")
	}
	r.mayPoll(t0.Add(time.Hour))
	want := (budgetWait + 100*time.Millisecond).Seconds()
	if got := value(r.metrics.BufferFull); got < want-1e-9 || got > want+1e-9 {
		t.Errorf("buffer full for %v s, want %v s: from the budget spent to the first poll under it", got, want)
	}
}

// service does the seeks workers asked for: a new generation, the records
// aside (fetched before the seek) dropped and their budget given back.
func TestServiceSeeks(t *testing.T) {
	r, c := newTestRunner(1 << 20)
	p := r.own(0, 1)
	for off := range int64(3) {
		r.dispatch(hundredBytes(0, off))
	}
	revoked := &partition{id: dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 9}, log: zap.NewNop()}
	for _, s := range []*partition{p, revoked} {
		s.seeking.Store(true)
		r.requestSeek(s, 42)
	}
	r.service()
	if p.gen.Load() != 1 || p.seeking.Load() || len(p.overflow) != 0 {
		t.Errorf("generation %d, seeking %v, aside %d: want generation 1, seek done, nothing aside", p.gen.Load(), p.seeking.Load(), len(p.overflow))
	}
	if got, want := r.buffered.Load(), messageBytes(hundredBytes(0, 0)); got != want {
		t.Errorf("buffered %d, want %d: the queued record is the worker's to drop", got, want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seeks) != 1 || c.seeks[0].Partition != 0 || c.seeks[0].Offset != 42 {
		t.Errorf("consumer seeks %v, want partition 0 to 42 only: a revoked partition's seek is dropped", c.seeks)
	}
}

func TestCommittedStoresTheOffsetForLag(t *testing.T) {
	r, c := newTestRunner(1 << 20)
	p := r.own(3, 1)
	c.high = 50
	r.committed(p, 42)
	tp := next(t, c.stored, "stored offset")
	if *tp.Topic != testTopic || tp.Partition != 3 || tp.Offset != 42 {
		t.Errorf("stored %v, want %s[3]@42", tp, testTopic)
	}
	if got := value(r.metrics.Lag.WithLabelValues(testTopic, "3")); got != 8 {
		t.Errorf("lag = %v, want 8", got)
	}
}

// The poll loop and a worker together: dispatched records are applied,
// the commit is stored for lag, and a revocation gives the budget back.
func TestRunnerAppliesAndRevokes(t *testing.T) {
	r, c := newTestRunner(1 << 20)
	c.high = 3
	a := newFakeApplier()
	r.deps = &workerDeps{batch: batchOf(3, 1<<20, time.Minute), fenceGrace: time.Hour, applier: a,
		positions: &fakePositions{}, router: fakeRouter{}, deadLetters: fakeDiverter{}, metrics: r.metrics, loop: r}
	id := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 0}
	p := newPartition(r.deps, id, dedup.Claim{PartitionID: id, Epoch: 1}, nil, zap.NewNop())
	r.workers[id] = p
	go p.run()
	for off := range int64(3) {
		r.dispatch(hundredBytes(0, off))
	}
	if got := next(t, a.calls, "apply"); !slices.Equal(got.offsets, []int64{0, 1, 2}) {
		t.Errorf("applied %v, want [0 1 2]", got.offsets)
	}
	if tp := next(t, c.stored, "stored offset"); tp.Offset != 3 {
		t.Errorf("stored offset %d, want 3", tp.Offset)
	}
	topic := testTopic
	r.revoke([]kafka.TopicPartition{{Topic: &topic, Partition: 0}}, false)
	if len(r.workers) != 0 || r.buffered.Load() != 0 || value(r.metrics.Owned) != 0 {
		t.Errorf("after revocation: %d workers, %d bytes buffered, owned gauge %v; want none", len(r.workers), r.buffered.Load(), value(r.metrics.Owned))
	}
	if n := series(r.metrics.Lag); n != 0 {
		t.Errorf("%d lag series left for a revoked partition", n)
	}
}

func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// A revoked partition's per-partition series go with it: a stopped
// partition handed to another instance must not keep
// pgsink_partition_stopped at 1 on this one, nor a direct one
// pgsink_transaction_direct_partition.
func TestRevokedPartitionLeavesNoStoppedSeries(t *testing.T) {
	r, _ := newTestRunner(1 << 20)
	p := r.own(4, 1)
	p.done = make(chan struct{})
	close(p.done)
	p.cancel = func() {}
	r.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	r.metrics.SchemaWaiting.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	r.metrics.Tx.Direct.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	r.wait([]*partition{p})
	for name, vec := range map[string]*prometheus.GaugeVec{"pgsink_partition_stopped": r.metrics.Stopped, "pgsink_partition_waiting_schema": r.metrics.SchemaWaiting,
		"pgsink_transaction_direct_partition": r.metrics.Tx.Direct} {
		if n := seriesOf(vec); n != 0 {
			t.Errorf("%s has %d series after the revoke, want 0", name, n)
		}
	}
}

// seriesOf counts the series a collector exports now.
func seriesOf(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// What workers charge for their decoded items spends the budget like
// fetched records do: the poll loop stops taking records until the
// batches holding them are done.
func TestChargesSpendTheBudget(t *testing.T) {
	r, _ := newTestRunner(1000)
	r.own(0, 4)
	t0 := time.Now()
	r.charge(1000)
	if r.mayPoll(t0) {
		t.Fatal("polled with the budget spent on decoded items")
	}
	r.release(1000)
	if !r.mayPoll(t0) {
		t.Fatal("no polling once the decoded items were released")
	}
}

// Under apply.consistency: transaction the transaction topic's partition is
// neither paused by a spent budget nor held paused by it: data partitions
// at their staging bound hold the budget until the resolver applies, which
// needs the ENDs it has not read yet (stagebound.go).
func TestBudgetLeavesTheResolverFetching(t *testing.T) {
	r, c := newTestRunner(1000)
	r.cfg.Apply.Consistency = config.ConsistencyTransaction
	r.cfg.Apply.Transaction.Topic = "pg.transaction"
	data := r.own(0, 4)
	resolverID := dedup.PartitionID{Group: "g", Topic: "pg.transaction", Partition: 0}
	resolver := &partition{id: resolverID, in: newRecordQueue(2), log: zap.NewNop(), labels: [2]string{"pg.transaction", "0"}, decoded: &decodedEstimate{}}
	r.workers[resolverID] = resolver
	r.buffered.Store(1000)
	t0 := time.Now()
	r.mayPoll(t0)
	if !r.mayPoll(t0.Add(budgetWait)) {
		t.Fatal("no polling past budgetWait")
	}
	if !data.paused || resolver.paused || len(c.pauses()) != 1 {
		t.Fatalf("data partition paused %v, resolver paused %v (consumer pauses %v): want only the data partition paused", data.paused, resolver.paused, c.pauses())
	}
	// The resolver's own queue overflowed and paused it: it resumes once
	// its queue has room, the budget still spent.
	resolver.paused, r.anyPaused = true, true
	r.service()
	if resolver.paused || !data.paused {
		t.Errorf("resolver paused %v, data partition paused %v: want the resolver resumed and the data partition held to the budget", resolver.paused, data.paused)
	}
}

// The transaction topic's markers wait in its queue while the resolver
// waits at an END for the data partitions' records. Counted in the data
// partitions' budget, they kept it spent with every data partition paused
// and nothing fetched to stage: nothing could end that. They count in a
// budget of their own, which pauses the transaction topic instead.
func TestMarkersDoNotHoldTheDataPartitionsBudget(t *testing.T) {
	r, c := newTestRunner(8 * 1024)
	r.cfg.Apply.Consistency = config.ConsistencyTransaction
	r.cfg.Apply.Transaction.Topic = "pg.transaction"
	data := r.own(1, 4)
	resolverID := dedup.PartitionID{Group: "g", Topic: "pg.transaction", Partition: 0}
	resolver := &partition{id: resolverID, in: newRecordQueue(100), log: zap.NewNop(), labels: [2]string{"pg.transaction", "0"}, decoded: &decodedEstimate{}}
	r.workers[resolverID] = resolver
	marker := func(offset int64) *kafka.Message {
		m := hundredBytes(0, offset)
		topic := "pg.transaction"
		m.TopicPartition.Topic = &topic
		return m
	}
	// Markers queued past half the whole budget (the resolver waiting),
	// the data partition paused by the budget with nothing queued.
	var markers int64
	for i := int64(0); markers <= int64(r.cfg.Apply.MaxBufferedBytes)/2; i++ {
		r.dispatch(marker(i))
		markers += messageBytes(marker(i))
	}
	if got := r.markerBytes.Load(); got != markers {
		t.Fatalf("markerBytes = %d, want %d", got, markers)
	}
	if !resolver.paused || value(r.metrics.Pauses.WithLabelValues("marker_budget")) != 1 {
		t.Errorf("transaction topic paused %v (marker_budget pauses %v): want it paused once at markerBudget", resolver.paused, value(r.metrics.Pauses.WithLabelValues("marker_budget")))
	}
	data.paused, r.anyPaused = true, true
	r.service()
	if data.paused {
		t.Fatalf("data partition still paused with its budget empty (buffered %d, markers %d)", r.buffered.Load(), r.markerBytes.Load())
	}
	if !slices.Contains(c.resumes(), 1) {
		t.Errorf("consumer resumes %v, want partition 1", c.resumes())
	}
	if !resolver.paused {
		t.Error("transaction topic resumed with its markers over their budget")
	}
	// The resolver takes its markers: below half its budget, resumed.
	for resolver.in.len() > 0 {
		e, _ := resolver.in.take()
		markerLoop{r}.release(e.cost)
	}
	r.service()
	if resolver.paused || r.markerBytes.Load() != 0 {
		t.Errorf("transaction topic paused %v, markerBytes %d after the resolver took every marker", resolver.paused, r.markerBytes.Load())
	}
}

// The records the local path's store holds do not keep a paused partition
// paused: the store may hold half the budget by itself, with transactions
// the resolver applies only once the paused partition fetched the rest of
// an older one. The rest of the budget half spent is what resumes it.
func TestServiceResumesBesideTheLocalStore(t *testing.T) {
	unit := messageBytes(hundredBytes(0, 0))
	r, c := newTestRunner(10 * unit)
	p := r.own(0, 4)
	for off := range int64(5) {
		r.dispatch(hundredBytes(0, off)) // the fifth goes aside: paused
	}
	take(r, p, 4)
	if !p.paused {
		t.Fatal("partition not paused by its full queue")
	}
	// Another direct partition's records, held for the resolver: charged
	// to the budget by its worker, then handed to the store.
	store := txlocal.New(1<<20, 1<<20)
	store.SetResolver(true)
	other := dedup.PartitionID{Group: "g", Topic: testTopic, Partition: 9}
	store.Enter(dedup.Claim{PartitionID: other}, nil)
	it := sink.Item{Record: debezium.Record{Offset: 0}, Change: debezium.Change{Transaction: &debezium.Transaction{ID: "7:1", TxID: 7}}}
	if _, err := store.Hold(other, []sink.Item{it}, []int64{6 * unit}); err != nil {
		t.Fatal(err)
	}
	r.buffered.Add(6 * unit)
	r.service()
	if !p.paused {
		t.Fatal("resumed with more than half the budget spent, no store to account for it")
	}
	r.local = store
	r.service()
	if p.paused || !slices.Equal(c.resumes(), []int32{0}) {
		t.Errorf("paused %v, consumer resumes %v: want partition 0 resumed, the budget's rest (%d of %d bytes) at most half spent", p.paused, c.resumes(), r.buffered.Load()-6*unit, 10*unit)
	}
}
