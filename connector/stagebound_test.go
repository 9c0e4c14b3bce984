package connector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txapply"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// memStaging is the target database as the staging bound sees it: what
// the stager staged, the resolver's frontier and its wait mark. It is the
// stager's applier (staging each batch), its frontierReader, the
// resolver's waitMarker, and, through memResolver, the resolver.
type memStaging struct {
	mu      sync.Mutex
	staged  []int64 // offsets staged and not applied
	applied int64
	waiting bool
	reads   chan dedup.Frontier
	// stagedAtMark is how many records were staged when the resolver
	// marked that it waits (-1: never).
	stagedAtMark int
	calls        chan applied
	recounts     int // StagedBytesAbove's calls
}

const recordBytes = 10 // what each staged record takes in tx_staged

func newMemStaging() *memStaging {
	return &memStaging{applied: -1, stagedAtMark: -1, reads: make(chan dedup.Frontier, 1024), calls: make(chan applied, 64)}
}

func (m *memStaging) FrontierOf(context.Context, dedup.PartitionID) (dedup.Frontier, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := dedup.Frontier{Applied: m.applied, ResolverWaiting: m.waiting}
	select {
	case m.reads <- f:
	default:
	}
	return f, nil
}

func (m *memStaging) StagedBytesAbove(_ context.Context, _ dedup.PartitionID, after int64) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recounts++
	var n int64
	through := int64(-1)
	for _, o := range m.staged {
		if o > after {
			n += recordBytes
			through = max(through, o)
		}
	}
	return n, through, nil
}

func (m *memStaging) MarkWaiting(context.Context, string, int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.waiting {
		m.stagedAtMark = len(m.staged)
	}
	m.waiting = true
	return nil
}

func (m *memStaging) EndWaiting(context.Context, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting = false
	return nil
}

// Apply stages a batch, as sink does under StageTransactions.
func (m *memStaging) Apply(_ context.Context, b *sink.Batch) (sink.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st sink.Stats
	got := applied{next: b.Next}
	for _, it := range b.Items {
		got.offsets = append(got.offsets, it.Record.Offset)
		m.staged = append(m.staged, it.Record.Offset)
		st.Staged++
		st.StagedBytes += recordBytes
		st.StagedThrough = it.Record.Offset
	}
	b.Claim.NextOffset = b.Next
	m.calls <- got
	return st, nil
}

// apply applies staged records up to offset through, as a resolver's
// transaction does.
func (m *memStaging) apply(through int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.staged = slices.DeleteFunc(m.staged, func(o int64) bool { return o <= through })
	m.applied = max(m.applied, through)
	m.waiting = false
}

// memResolver resolves one source transaction of events records from
// memStaging: incomplete until all are staged.
type memResolver struct {
	m      *memStaging
	events int
}

func (r *memResolver) Resolve(_ context.Context, claim *dedup.Claim, ends []txapply.End, next int64) (txapply.Result, error) {
	r.m.mu.Lock()
	n := len(r.m.staged)
	var last int64 = -1
	if n > 0 {
		last = r.m.staged[n-1]
	}
	r.m.mu.Unlock()
	if n < r.events {
		return txapply.Result{}, &txapply.IncompleteError{ID: "1:1", Offset: ends[0].Offset, StagedTotal: int64(n), WantTotal: int64(r.events)}
	}
	r.m.apply(last)
	claim.NextOffset = next
	return txapply.Result{Applied: len(ends)}, nil
}

func (r *memResolver) CheckEnds(context.Context, string, time.Duration) error { return nil }

// stagingWorker is a data partition staging into m with a bound of limit
// bytes.
func stagingWorker(t *testing.T, m *memStaging, batch config.Batch, limit int64) *worker {
	t.Helper()
	w := newWorker(t, batch, 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged = m, m, limit
	})
	return w
}

// TestStagingBoundLargeTransaction: a source transaction larger than the
// bound, whose records one partition holds. The partition stages up to
// its bound and waits; the resolver, at the transaction's END with its
// events not all staged, marks that it waits; the partition then stages
// the rest and the resolver applies the transaction. Neither waits for
// the other for ever. Without the resolver's mark (waits nil) the same
// run is the deadlock: the resolver stops past max_wait with the
// partition still at its bound.
func TestStagingBoundLargeTransaction(t *testing.T) {
	const events = 10
	for _, tc := range []struct {
		name string
		mark bool
	}{{"the resolver's mark lets the partition past its bound", true}, {"self-test: without the mark, a deadlock", false}} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemStaging()
			w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), 3*recordBytes)
			values := make([]string, events)
			for i := range values {
				values[i] = "tx:" + string(rune('0'+i))
			}
			w.queue(0, 0, values...)
			w.start()
			a := &resolverApplier{resolver: &memResolver{m: m, events: events}, maxWait: 2 * time.Second, log: zap.NewNop(),
				retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
			if tc.mark {
				a.waits = m
				a.maxWait = time.Minute
			}
			claim := &dedup.Claim{PartitionID: dedup.PartitionID{Group: "g"}, NextOffset: 10}
			_, err := a.Apply(context.Background(), endsBatch(claim, 10))
			m.mu.Lock()
			defer m.mu.Unlock()
			if !tc.mark {
				if !errors.As(err, new(*txapply.StoppedError)) {
					t.Fatalf("without the mark the resolver should have stopped waiting for the partition at its bound; Apply = %v", err)
				}
				if len(m.staged) != 4 {
					t.Errorf("the partition staged %d records, want 4 (two batches of 2, then the bound of 3)", len(m.staged))
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply = %v, want the transaction applied", err)
			}
			if m.stagedAtMark != 4 {
				t.Errorf("when the resolver marked its wait the partition had staged %d records, want 4: the bound held it until then", m.stagedAtMark)
			}
			if m.applied != events-1 || len(m.staged) != 0 || claim.NextOffset != 12 {
				t.Errorf("applied through %d with %d left staged and the resolver at %d, want through %d, none and 12", m.applied, len(m.staged), claim.NextOffset, events-1)
			}
			if m.waiting {
				t.Error("the resolver's apply left its wait marked")
			}
		})
	}
}

// TestStagingBoundWaits: a partition at its bound holds its batch, offset
// unmoved, until the resolver applies past its records; a batch that
// stages nothing never waits; what previous owners staged counts until
// the resolver applies the last of it, even when the records before the
// claim's position staged nothing; a partition stopped while waiting
// applies nothing.
func TestStagingBoundWaits(t *testing.T) {
	t.Run("held until the frontier moves", func(t *testing.T) {
		m := newMemStaging()
		w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), 3*recordBytes)
		w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3", "tx:4", "tx:5")
		w.start()
		for _, want := range [][]int64{{0, 1}, {2, 3}} {
			if got := next(t, m.calls, "staging"); !slices.Equal(got.offsets, want) {
				t.Fatalf("staged %v, want %v", got.offsets, want)
			}
		}
		awaitReads(t, m, 2) // at the bound: the partition looks at the frontier
		none(t, m.calls, "staging past the bound")
		m.apply(1) // the resolver applied the first batch: 2 records ahead
		if got := next(t, m.calls, "staging"); !slices.Equal(got.offsets, []int64{4, 5}) {
			t.Fatalf("staged %v, want [4 5]", got.offsets)
		}
	})
	t.Run("a batch that stages nothing never waits", func(t *testing.T) {
		m := newMemStaging()
		w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), recordBytes)
		w.queue(0, 0, "tx:0", "tx:1", "a", "b")
		w.start()
		next(t, m.calls, "staging")
		if got := next(t, m.calls, "apply"); !slices.Equal(got.offsets, []int64{2, 3}) {
			t.Fatalf("applied %v, want [2 3]", got.offsets)
		}
	})
	t.Run("previous owners' staging counts", func(t *testing.T) {
		m := newMemStaging()
		m.staged = []int64{95, 96, 97, 98, 99}
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 100, newFakeApplier(), func(d *workerDeps) {
			d.applier, d.frontier, d.maxStaged = m, m, 3*recordBytes
		})
		w.queue(0, 100, "tx:0", "tx:1")
		w.start()
		awaitReads(t, m, 3)
		none(t, m.calls, "staging past the bound")
		m.apply(98) // short of the last of them (99): counted whole
		awaitReads(t, m, 2)
		none(t, m.calls, "staging past the bound")
		m.apply(99)
		if got := next(t, m.calls, "staging"); !slices.Equal(got.offsets, []int64{100, 101}) {
			t.Fatalf("staged %v, want [100 101]", got.offsets)
		}
	})
	t.Run("previous owners' staging applied, the record before the claim unstaged", func(t *testing.T) {
		// Offset 99, the last before the claim's position, staged nothing
		// (a delete's tombstone, a record of an applied transaction): the
		// frontier stops at 98 with everything the previous owners staged
		// applied. The resolver, idle, marks no wait. The partition's
		// account, all of it read from the database at the claim and none
		// of it short, used to count it until the frontier passed 99,
		// which only the records it holds could move: it waited for a
		// recount, 30 s for an account without a short batch (2 s
		// before that).
		m := newMemStaging()
		m.staged = []int64{95, 96, 97, 98}
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 100, newFakeApplier(), func(d *workerDeps) {
			d.applier, d.frontier, d.maxStaged = m, m, 3*recordBytes
		})
		w.queue(0, 100, "tx:0", "tx:1")
		w.start()
		awaitReads(t, m, 3)
		none(t, m.calls, "staging past the bound")
		m.apply(98)
		select {
		case got := <-m.calls:
			if !slices.Equal(got.offsets, []int64{100, 101}) {
				t.Fatalf("staged %v, want [100 101]", got.offsets)
			}
		case <-time.After(time.Second):
			t.Fatal("the partition still waits at its bound a second after the resolver applied everything staged before its claim")
		}
	})
	t.Run("stopped while waiting: nothing applied", func(t *testing.T) {
		m := newMemStaging()
		w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), recordBytes)
		w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3")
		w.start()
		next(t, m.calls, "staging")
		if got := next(t, w.poll.commits, "the first batch's commit report"); got != 2 {
			t.Fatalf("committed up to %d, want 2", got)
		}
		awaitReads(t, m, 2)
		w.stop()
		none(t, m.calls, "staging after the stop")
		none(t, w.poll.commits, "a commit report past the first batch's")
	})
}

// awaitReads waits until the partition read the frontier n more times.
func awaitReads(t *testing.T, m *memStaging, n int) {
	t.Helper()
	for range n {
		next(t, m.reads, "a read of the resolver's frontier")
	}
}

// recordedWaits is a waitMarker that counts what it is told.
type recordedWaits struct{ marks, ends int }

func (r *recordedWaits) MarkWaiting(context.Context, string, int64) error { r.marks++; return nil }
func (r *recordedWaits) EndWaiting(context.Context, string) error         { r.ends++; return nil }

// TestResolverPublishesItsWait: the resolver marks its wait for events at
// its second look (an END read just before its events were staged writes
// nothing), once per wait, and ends the mark when it stops without
// applying, so that the stagers keep to their bound while it is stopped.
// pgsink_transaction_resolver_wait_published is 1 while the mark is its,
// 0 once Apply returns.
func TestResolverPublishesItsWait(t *testing.T) {
	incomplete := &txapply.IncompleteError{ID: "tx", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
	retry := config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}
	for _, tc := range []struct {
		name                string
		script              []error
		maxWait             time.Duration
		wantMarks, wantEnds int
		wantStopped         bool
	}{
		{name: "complete at the first look: no mark", script: nil, maxWait: time.Minute},
		{name: "complete at the second look: no mark", script: []error{incomplete}, maxWait: time.Minute},
		{name: "a longer wait: marked once", script: []error{incomplete, incomplete, incomplete}, maxWait: time.Minute, wantMarks: 1},
		{name: "stopped past max_wait: the mark ended", script: []error{incomplete, incomplete, incomplete, incomplete, incomplete, incomplete},
			maxWait: 120 * time.Millisecond, wantMarks: 1, wantEnds: 1, wantStopped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &recordedWaits{}
			metrics := newTxMetrics(prometheus.NewRegistry())
			published := 0.0 // the gauge's highest value seen at a look
			f := &fakeResolver{script: tc.script, observe: func() { published = max(published, value(metrics.WaitPublished)) }}
			a := &resolverApplier{resolver: f, waits: w, maxWait: tc.maxWait, log: zap.NewNop(), retry: retry, metrics: metrics}
			_, err := a.Apply(context.Background(), endsBatch(&dedup.Claim{NextOffset: 10}, 10))
			if stopped := errors.As(err, new(*txapply.StoppedError)); stopped != tc.wantStopped {
				t.Fatalf("Apply = %v, want stopped %v", err, tc.wantStopped)
			}
			if w.marks != tc.wantMarks || w.ends != tc.wantEnds {
				t.Errorf("marked %d times and ended %d, want %d and %d", w.marks, w.ends, tc.wantMarks, tc.wantEnds)
			}
			if want := float64(min(tc.wantMarks, 1)); published != want {
				t.Errorf("pgsink_transaction_resolver_wait_published was at most %v while the resolver looked, want %v", published, want)
			}
			if v := value(metrics.WaitPublished); v != 0 {
				t.Errorf("pgsink_transaction_resolver_wait_published = %v after Apply returned, want 0", v)
			}
		})
	}
}

// reemitted is memStaging whose batches are records of transactions the
// resolver applied already (a Debezium re-emission at new offsets, or a
// replay): dedup's QueueStage/StagingCopy leave them out of tx_staged but
// still return their bytes, and sink counts them in Stats.StagedBytes,
// with Stats.StagedShort set.
type reemitted struct{ *memStaging }

func (r reemitted) Apply(_ context.Context, b *sink.Batch) (sink.Stats, error) {
	m := r.memStaging
	m.mu.Lock()
	defer m.mu.Unlock()
	var st sink.Stats
	got := applied{next: b.Next}
	for _, it := range b.Items {
		got.offsets = append(got.offsets, it.Record.Offset)
		st.Staged++ // sink counts the records it offered to staging
		st.StagedBytes += recordBytes
		st.StagedThrough = it.Record.Offset
		st.StagedShort = true
	}
	b.Claim.NextOffset = b.Next
	m.calls <- got
	return st, nil
}

// TestStagingBoundRecountsReemissions: a partition whose batches were
// counted at the bound but staged nothing (records of transactions the
// resolver applied already; sink says so with Stats.StagedShort, so the
// partition recounts after stagingRecount) must not wait for ever: nothing of it is
// staged, and the resolver, idle, neither moves its frontier nor marks a
// wait. Held with the frontier unmoved, it counts again in the database
// and goes on. Without the recount it waited for ever (review of txcost4).
func TestStagingBoundRecountsReemissions(t *testing.T) {
	m := newMemStaging()
	m.applied = -1
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged = reemitted{m}, m, 3*recordBytes
	})
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3", "tx:4", "tx:5")
	w.start()
	next(t, m.calls, "staging")
	next(t, m.calls, "staging")
	select {
	case <-m.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("partition held at its bound for 10 s with nothing in tx_staged and an idle resolver: nothing will release it")
	}
}

// reemittedFrom is memStaging whose records from offset from on are
// re-emissions of transactions the resolver applied already, counted and
// not staged, as reemitted's.
type reemittedFrom struct {
	*memStaging
	from int64
}

func (r reemittedFrom) Apply(_ context.Context, b *sink.Batch) (sink.Stats, error) {
	m := r.memStaging
	m.mu.Lock()
	defer m.mu.Unlock()
	var st sink.Stats
	got := applied{next: b.Next}
	for _, it := range b.Items {
		got.offsets = append(got.offsets, it.Record.Offset)
		st.Staged++
		st.StagedBytes += recordBytes
		st.StagedThrough = it.Record.Offset
		if it.Record.Offset >= r.from {
			st.StagedShort = true
		} else {
			m.staged = append(m.staged, it.Record.Offset)
		}
	}
	b.Claim.NextOffset = b.Next
	m.calls <- got
	return st, nil
}

// TestStagingBoundRecountThenApplied: a partition at its bound recounts
// (a batch of it was short) and finds records staged below its position
// but not up to it, the last records it took being re-emissions that
// staged nothing. Once the resolver applied those records, the frontier
// stands at the last of them, short of the position, and the resolver,
// idle, marks no wait: the recounted bytes are applied, and the partition
// goes on. It used to count them until the frontier passed its position,
// which only the records it holds could move, and waited for the next
// recount: 30 s, the account being exact once recounted (2 s before that).
func TestStagingBoundRecountThenApplied(t *testing.T) {
	m := newMemStaging()
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged = reemittedFrom{m, 3}, m, 3*recordBytes
	})
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3", "tx:4", "tx:5")
	w.start()
	next(t, m.calls, "staging") // 0 and 1 staged
	next(t, m.calls, "staging") // 2 staged, 3 a re-emission: short
	deadline := time.Now().Add(testWait)
	for { // the claim's count, then the recount 2 s later
		m.mu.Lock()
		recounts := m.recounts
		m.mu.Unlock()
		if recounts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partition at its bound with a short batch counted %d times in %s, want a recount", recounts, testWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	none(t, m.calls, "staging past the bound: 0, 1 and 2 are staged and not applied")
	if short, exact := recountsOf(w, "short"), recountsOf(w, "exact"); short < 1 || exact != 0 {
		t.Fatalf("pgsink_transaction_staging_recounts_total: short %v, exact %v; want the recount counted as short", short, exact)
	}
	m.apply(2)
	select {
	case got := <-m.calls:
		if !slices.Equal(got.offsets, []int64{4, 5}) {
			t.Fatalf("staged %v, want [4 5]", got.offsets)
		}
	case <-time.After(time.Second):
		t.Fatal("the partition still waits at its bound a second after the resolver applied everything it recounted")
	}
}

// TestStagingBoundExactAccountDoesNotRecount: a partition at its bound
// whose batches staged every record they counted waits for the resolver
// without counting again in the database while the frontier stays
// unmoved (a resolver applying a backlog in one transaction holds it for
// several seconds), and goes on once it moves. Each recount reads the
// group's staging table: before, every partition at its bound recounted
// 2 s into each such apply (docs/transactions.md, Cost).
func TestStagingBoundExactAccountDoesNotRecount(t *testing.T) {
	m := newMemStaging()
	w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), 3*recordBytes)
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3", "tx:4", "tx:5")
	w.start()
	next(t, m.calls, "staging")
	next(t, m.calls, "staging")
	select { // the resolver applying: the frontier unmoved for 3 s
	case got := <-m.calls:
		t.Fatalf("staged %v past the bound", got.offsets)
	case <-time.After(3 * time.Second):
	}
	m.mu.Lock()
	recounts := m.recounts
	m.mu.Unlock()
	// The claim's count of what previous owners staged is the one read.
	if recounts > 1 {
		t.Fatalf("the partition counted its staged bytes %d times while the resolver held its frontier, want once (at the claim): its account was exact", recounts)
	}
	if n := recountsOf(w, "exact") + recountsOf(w, "short"); n != 0 {
		t.Fatalf("pgsink_transaction_staging_recounts_total: %v, want 0 (the claim's count is not a recount)", n)
	}
	m.apply(1)
	if got := next(t, m.calls, "staging"); !slices.Equal(got.offsets, []int64{4, 5}) {
		t.Fatalf("staged %v, want [4 5]", got.offsets)
	}
}

// TestStagingBoundZombieEndsTheMark: a zombie resolver that stops deletes
// the group's wait mark its successor set. The successor writes it again
// while it waits, so the partition at its bound stages the rest of the
// transaction and the successor applies it. Without the re-mark the
// successor stopped, its events held at the bound (review of txcost4).
func TestStagingBoundZombieEndsTheMark(t *testing.T) {
	const events = 10
	m := newMemStaging()
	w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), 3*recordBytes)
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3")
	w.start()
	next(t, m.calls, "staging")
	next(t, m.calls, "staging")
	retry := config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}
	successor := &resolverApplier{resolver: &memResolver{m: m, events: events}, waits: m, maxWait: 3 * time.Second, log: zap.NewNop(), retry: retry}
	done := make(chan error, 1)
	go func() {
		_, err := successor.Apply(context.Background(), endsBatch(&dedup.Claim{PartitionID: dedup.PartitionID{Group: "g"}, NextOffset: 10}, 10))
		done <- err
	}()
	m.awaitMarked(t, "the successor")
	// The zombie: paused past its session while it waited at the same END,
	// it resumes past max_wait before it sees its revocation.
	incomplete := &txapply.IncompleteError{ID: "1:1", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
	zombie := &resolverApplier{resolver: &fakeResolver{script: []error{incomplete, incomplete, incomplete, incomplete, incomplete, incomplete, incomplete, incomplete}},
		waits: m, maxWait: 60 * time.Millisecond, log: zap.NewNop(), retry: retry}
	if _, err := zombie.Apply(context.Background(), endsBatch(&dedup.Claim{PartitionID: dedup.PartitionID{Group: "g"}, NextOffset: 10}, 10)); !errors.As(err, new(*txapply.StoppedError)) {
		t.Fatalf("zombie Apply = %v", err)
	}
	w.queue(0, 4, "tx:4", "tx:5", "tx:6", "tx:7", "tx:8", "tx:9")
	err := <-done
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		t.Fatalf("successor: %v with %d of %d events staged, the rest held by the partition at its bound: the zombie deleted its mark", err, len(m.staged), events)
	}
	if m.applied != events-1 {
		t.Errorf("applied through %d, want %d", m.applied, events-1)
	}
}

// TestStagedAheadFollowsTheResolverWhileIdle: a partition that staged and
// then receives nothing reports, once the resolver applied its records,
// nothing staged ahead: the gauge is brought up to the frontier at the
// idle check, not only before a staging batch (review of txcost4: the
// series went on reporting what the resolver had applied).
func TestStagedAheadFollowsTheResolverWhileIdle(t *testing.T) {
	m := newMemStaging()
	metrics := NewMetrics()
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.metrics = m, m, 100*recordBytes, metrics
	})
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3")
	w.start()
	next(t, m.calls, "staging")
	next(t, m.calls, "staging")
	gauge := metrics.Tx.StagedAhead.WithLabelValues(testTopic, "0")
	// Set before the second batch: the first batch's bytes.
	if got := value(gauge); got != 2*recordBytes {
		t.Fatalf("staged ahead %v before the resolver applied, want %d", got, 2*recordBytes)
	}
	m.apply(3)
	deadline := time.Now().Add(3 * idleCheck)
	for value(gauge) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("staged ahead still %v %s after the resolver applied every staged record", value(gauge), 3*idleCheck)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStagingBoundMarkEndsOnRevocation: a resolver revoked (or stopping)
// while it waits with its mark published ends the mark: the stagers keep
// to their bound until the next owner waits and marks again (review of
// txinto/txavro: only a stop ended it, and after a revocation the stagers
// ran past their bound while the published-wait gauge read 0).
func TestStagingBoundMarkEndsOnRevocation(t *testing.T) {
	m := newMemStaging()
	stopping := make(chan struct{})
	a := &resolverApplier{resolver: &memResolver{m: m, events: 10}, waits: m, maxWait: time.Minute, log: zap.NewNop(),
		retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
	done := make(chan error, 1)
	go func() {
		_, err := a.Apply(withStopping(context.Background(), stopping), endsBatch(&dedup.Claim{PartitionID: dedup.PartitionID{Group: "g"}, NextOffset: 10}, 10))
		done <- err
	}()
	m.awaitMarked(t, "the resolver")
	close(stopping)
	if err := <-done; !errors.Is(err, errResolverStopping) {
		t.Fatalf("Apply = %v, want errResolverStopping", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiting {
		t.Error("the revoked resolver left its wait published")
	}
}

// awaitMarked waits until a resolver (who) published that it waits.
func (m *memStaging) awaitMarked(t *testing.T, who string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		m.mu.Lock()
		marked := m.waiting
		m.mu.Unlock()
		if marked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never published its wait", who)
		}
	}
}

// recountsOf reads the worker's pgsink_transaction_staging_recounts_total
// for its topic and account state.
func recountsOf(w *worker, account string) float64 {
	return value(w.metrics.Tx.StagingRecounts.WithLabelValues(testTopic, account))
}
