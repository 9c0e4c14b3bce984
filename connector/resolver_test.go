package connector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txapply"
	"github.com/pgsink/pgsink/txlocal"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// fakeResolver answers Resolve from a script: each call takes the next
// answer; an answer with err nil applies the ends it is given, as the
// resolver would, moving the claim.
type fakeResolver struct {
	script []error
	calls  [][]int64 // the END offsets of each call
	// observe, when set, is called at each call.
	observe func()
}

func (f *fakeResolver) Resolve(_ context.Context, claim *dedup.Claim, ends []txapply.End, next int64) (txapply.Result, error) {
	var offsets []int64
	for _, e := range ends {
		offsets = append(offsets, e.Offset)
	}
	f.calls = append(f.calls, offsets)
	if f.observe != nil {
		f.observe()
	}
	var err error
	if len(f.script) > 0 {
		err, f.script = f.script[0], f.script[1:]
	}
	if err != nil {
		return txapply.Result{}, err
	}
	claim.NextOffset = next
	return txapply.Result{Applied: len(ends)}, nil
}

func (f *fakeResolver) CheckEnds(context.Context, string, time.Duration) error { return nil }

func endsBatch(claim *dedup.Claim, offsets ...int64) *sink.Batch {
	b := &sink.Batch{Claim: claim}
	for _, o := range offsets {
		b.Items = append(b.Items, sink.Item{Record: debezium.Record{Offset: o},
			Change: debezium.Change{TxMark: &debezium.TransactionMarker{Status: "END", ID: "tx"}}})
		b.Next = o + 2 // a BEGIN after each END
	}
	return b
}

// TestResolverApplier holds the resolver worker's decisions: wait for an
// incomplete transaction and stop past max_wait, retry transient errors,
// apply one by one after a record failure so the stop is exactly at the
// failing transaction, and leave fencing to the partition worker.
func TestResolverApplier(t *testing.T) {
	incomplete := &txapply.IncompleteError{ID: "tx", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
	deadlock := &pgconn.PgError{Code: "40P01", Severity: "ERROR"}
	down := &pgconn.PgError{Code: "57P03", Severity: "FATAL", Message: "the database system is not yet accepting connections"}
	refused := &pgconn.PgError{Code: "23514", Severity: "ERROR"}
	fenced := &dedup.FencedError{Epoch: 1, Current: 2}
	// As txapply wraps it: a staged record's decode.
	unavailable := fmt.Errorf("txapply: transaction tx: t[0]@3: %w", &debezium.SchemaUnavailableError{ID: 7, Err: errors.New("connection refused")})
	tests := []struct {
		name      string
		maxWait   time.Duration
		script    []error
		wantErr   func(error) bool
		wantCalls [][]int64
		wantNext  int64
	}{
		{name: "applied at once", wantCalls: [][]int64{{10, 12}}, wantNext: 14},
		{name: "waits for its events", maxWait: time.Minute, script: []error{incomplete, incomplete, nil},
			wantCalls: [][]int64{{10, 12}, {10, 12}, {10, 12}}, wantNext: 14},
		{name: "stops past max_wait", script: []error{incomplete, incomplete},
			wantErr: func(err error) bool {
				return errors.As(err, new(*txapply.StoppedError)) && errors.As(err, new(*txapply.IncompleteError))
			},
			wantCalls: [][]int64{{10, 12}, {10, 12}}, wantNext: 10},
		{name: "transient errors retried", maxWait: time.Minute, script: []error{deadlock, deadlock, nil},
			wantCalls: [][]int64{{10, 12}, {10, 12}, {10, 12}}, wantNext: 14},
		{name: "target down past max_attempts: waits until it is back", maxWait: time.Minute,
			script:    []error{down, down, down, down, down, down, down, nil},
			wantCalls: [][]int64{{10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}}, wantNext: 14},
		{name: "conflicts past max_attempts: the worker's", maxWait: time.Minute,
			script: []error{deadlock, down, deadlock, deadlock, down, deadlock, deadlock},
			wantErr: func(err error) bool {
				return errors.As(err, new(*pgconn.PgError)) && !errors.As(err, new(*txapply.StoppedError))
			},
			wantCalls: [][]int64{{10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}, {10, 12}}, wantNext: 10},
		{name: "a refused record: one by one, stop at it", script: []error{refused, nil, refused},
			wantErr: func(err error) bool {
				return errors.As(err, new(*txapply.StoppedError)) && errors.As(err, new(*pgconn.PgError))
			},
			wantCalls: [][]int64{{10, 12}, {10}, {12}}, wantNext: 11},
		{name: "schema registry unavailable: waits", script: []error{unavailable, unavailable, nil},
			wantCalls: [][]int64{{10, 12}, {10, 12}, {10, 12}}, wantNext: 14},
		{name: "fenced: the worker's to handle", script: []error{fenced},
			wantErr: func(err error) bool {
				return errors.As(err, new(*dedup.FencedError)) && !errors.As(err, new(*txapply.StoppedError))
			},
			wantCalls: [][]int64{{10, 12}}, wantNext: 10},
		{name: "its row lost by the target: the worker's to claim again", script: []error{fmt.Errorf("partition x: %w", dedup.ErrNotClaimed)},
			wantErr: func(err error) bool {
				return errors.Is(err, dedup.ErrNotClaimed) && !errors.As(err, new(*txapply.StoppedError))
			},
			wantCalls: [][]int64{{10, 12}}, wantNext: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeResolver{script: tc.script}
			a := &resolverApplier{resolver: f, maxWait: tc.maxWait, log: zap.NewNop(), schemaRetryBase: time.Millisecond,
				retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
			claim := &dedup.Claim{NextOffset: 10}
			_, err := a.Apply(context.Background(), endsBatch(claim, 10, 12))
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("Apply = %v", err)
			}
			if len(f.calls) != len(tc.wantCalls) {
				t.Fatalf("Resolve called with %v, want %v", f.calls, tc.wantCalls)
			}
			for i := range f.calls {
				if len(f.calls[i]) != len(tc.wantCalls[i]) || f.calls[i][0] != tc.wantCalls[i][0] {
					t.Fatalf("Resolve called with %v, want %v", f.calls, tc.wantCalls)
				}
			}
			if claim.NextOffset != tc.wantNext {
				t.Errorf("claim at %d, want %d", claim.NextOffset, tc.wantNext)
			}
		})
	}
}

// TestResolverApplierRevokedWhileWaiting: a resolver waiting for a
// transaction's events gives up the wait when its partition is revoked,
// rather than hold the rebalance until max_wait or shutdown_timeout; what
// it applied before stays applied, the rest is left unmoved.
func TestResolverApplierRevokedWhileWaiting(t *testing.T) {
	incomplete := &txapply.IncompleteError{ID: "tx", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
	script := make([]error, 1000)
	for i := range script {
		script[i] = incomplete
	}
	f := &fakeResolver{script: script}
	a := &resolverApplier{resolver: f, maxWait: time.Hour, log: zap.NewNop(),
		retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
	stopping := make(chan struct{})
	claim := &dedup.Claim{NextOffset: 10}
	done := make(chan error, 1)
	go func() {
		_, err := a.Apply(withStopping(context.Background(), stopping), endsBatch(claim, 10, 12))
		done <- err
	}()
	close(stopping)
	select {
	case err := <-done:
		if !errors.Is(err, errResolverStopping) {
			t.Fatalf("Apply = %v, want errResolverStopping", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting resolver did not give up its wait on revocation")
	}
	if claim.NextOffset != 10 {
		t.Errorf("claim at %d, want 10 (nothing applied)", claim.NextOffset)
	}
}

// noEnds is a resolver whose staging holds a record older than max_wait
// of a transaction whose END it has not read.
type noEnds struct {
	fakeResolver
	checks int
}

func (n *noEnds) CheckEnds(context.Context, string, time.Duration) error {
	n.checks++
	return &txapply.NoEndError{TxID: 7, Records: 1}
}

// TestResolverIdle: an idle resolver stops for a transaction without END
// only at the transaction topic's high watermark, and only max_wait after
// Debezium was seen writing again since it found the transaction: one whose
// queue ran dry with ENDs unread (its partition paused while the buffer
// budget is spent) goes on waiting for them, and so does one through a
// Kafka Connect outage of any length, after which Debezium writes the lost
// END again.
func TestResolverIdle(t *testing.T) {
	const maxWait = 20 * time.Millisecond
	type look struct {
		high    int64
		highErr error
		data    int64         // app.public.t[0]'s high watermark (it holds staged records from the first look)
		late    int64         // app.public.t[1]'s, a partition that holds staged records only from the second look
		sleep   time.Duration // before the look
	}
	for _, tc := range []struct {
		name  string
		looks []look
		// maxWait, when set, replaces the test's: a case that must not
		// stop for want of time passing cannot rest on two looks coming
		// within 20 ms of each other, which a loaded machine does not
		// promise.
		maxWait  time.Duration
		wantStop bool // at the last look, and not before
	}{
		{name: "ENDs unread", looks: []look{{high: 90}, {high: 90, sleep: 2 * maxWait}, {high: 90, sleep: 2 * maxWait}}},
		{name: "high watermark unknown", looks: []look{{highErr: errors.New("broker down")}, {highErr: errors.New("broker down"), sleep: 2 * maxWait}}},
		{name: "Connect down: nothing written since", looks: []look{{high: 40}, {high: 40, sleep: 2 * maxWait}, {high: 40, sleep: 2 * maxWait}, {high: 40, sleep: 2 * maxWait}}},
		{name: "Debezium writes again, max_wait not passed", looks: []look{{high: 40}, {high: 41}, {high: 41}}, maxWait: time.Minute},
		{name: "Debezium writes again, max_wait passed", looks: []look{{high: 40}, {high: 41}, {high: 41, sleep: 2 * maxWait}}, wantStop: true},
		// Markers written to another topic: only the data topics tell
		// that Debezium writes, whether their partitions stage what it
		// writes or wait at their staging bound (review of the fix).
		{name: "data topics written since, max_wait passed", looks: []look{{high: 40, data: 100}, {high: 40, data: 101}, {high: 40, data: 101, sleep: 2 * maxWait}}, wantStop: true},
		{name: "data topics not written since", looks: []look{{high: 40, data: 100}, {high: 40, data: 100, sleep: 2 * maxWait}, {high: 40, data: 100, sleep: 2 * maxWait}}},
		// A partition another instance caught up during the outage joins
		// the staged ones: its watermark is no sign of Debezium writing.
		{name: "a partition staged later is not watched", looks: []look{{high: 40, data: 100, late: 7}, {high: 40, data: 100, late: 9, sleep: 2 * maxWait}, {high: 40, data: 100, late: 11, sleep: 2 * maxWait}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &noEnds{}
			var h int64
			var herr error
			var data, late int64
			looks := 0
			idle := resolverIdle(res, cmp.Or(tc.maxWait, maxWait), func(topic string, partition int32) (int64, error) {
				switch {
				case topic == "app.transaction" && partition == 0:
					return h, herr
				case topic == "app.public.t" && partition == 0:
					return data, nil
				case topic == "app.public.t" && partition == 1:
					return late, nil
				}
				t.Errorf("high watermark of %s[%d] asked", topic, partition)
				return 0, nil
			}, func(context.Context, string) ([]topicPartition, error) {
				staged := []topicPartition{{"app.public.t", 0}}
				if looks > 1 {
					staged = append(staged, topicPartition{"app.public.t", 1})
				}
				return staged, nil
			}, zap.NewNop())
			for i, l := range tc.looks {
				time.Sleep(l.sleep)
				h, herr = l.high, l.highErr
				data, late = l.data, l.late
				looks = i + 1
				// The resolver has read every END up to what it is told
				// is the watermark, or stands at 40 when it is not known.
				claim := dedup.Claim{PartitionID: dedup.PartitionID{Group: "g", Topic: "app.transaction"}, NextOffset: 40}
				if l.high > 0 && l.high < 90 {
					claim.NextOffset = l.high
				}
				err := idle(context.Background(), claim)
				last := i == len(tc.looks)-1
				if stopped := errors.As(err, new(*txapply.StoppedError)); stopped != (last && tc.wantStop) {
					t.Fatalf("look %d: idle check = %v (%d staging checks), want a stop: %v", i+1, err, res.checks, last && tc.wantStop)
				}
			}
		})
	}
}

// TestStagingPause: a slow count of a large transaction's staged rows
// spaces the next count out, so counting does not take the database from
// the partitions still staging; a quick one keeps the short poll.
func TestStagingPause(t *testing.T) {
	for _, tc := range []struct{ took, want time.Duration }{
		{0, stagingPoll},
		{5 * time.Millisecond, stagingPoll},
		{100 * time.Millisecond, 400 * time.Millisecond},
		{time.Minute, maxStagingPoll},
	} {
		if got := stagingPause(tc.took); got != tc.want {
			t.Errorf("stagingPause(%s) = %s, want %s", tc.took, got, tc.want)
		}
	}
}

// conflictedResolver applies every END it is given after a second attempt
// with upserts only, as txapply.Resolver reports it.
type conflictedResolver struct{ fakeResolver }

func (c *conflictedResolver) Resolve(ctx context.Context, claim *dedup.Claim, ends []txapply.End, next int64) (txapply.Result, error) {
	res, err := c.fakeResolver.Resolve(ctx, claim, ends, next)
	res.Stats.InsertConflicts = 1
	return res, err
}

// TestResolverApplierCountsInsertConflicts: the resolver's second attempts
// with upserts only reach pgsink_insert_conflicts_total, under the
// transaction topic (its batches name no table, so the partition's report
// of fallbacks passes them over).
func TestResolverApplierCountsInsertConflicts(t *testing.T) {
	conflicts := prometheus.NewCounter(prometheus.CounterOpts{Name: "conflicts"})
	a := &resolverApplier{resolver: &conflictedResolver{}, maxWait: time.Hour, log: zap.NewNop(), conflicts: conflicts}
	claim := &dedup.Claim{NextOffset: 10}
	if _, err := a.Apply(context.Background(), endsBatch(claim, 10, 12)); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	var m dto.Metric
	if err := conflicts.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("pgsink_insert_conflicts_total = %v, want 1", got)
	}
}

// TestEndWait holds when the resolver's wait at an END short of events
// is over: max_wait counted from the last progress (more events staged),
// and only once Debezium is seen writing after it. A Kafka Connect outage
// writes nothing: the resolver waits through it however long, and the
// events Debezium re-emits after it are staged.
func TestEndWait(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	short := func(staged int64) *txapply.IncompleteError {
		return &txapply.IncompleteError{ID: "7:100", StagedTotal: staged, WantTotal: 3}
	}
	const maxWait = time.Minute
	var high int64 = 40
	watermark := func() (int64, error) { return high, nil }
	var w endWait
	at := func(d time.Duration, staged int64) bool {
		return w.look(t0.Add(d), short(staged), maxWait, time.Second, watermark)
	}
	if at(0, 1) || at(10*time.Minute, 1) || at(time.Hour, 1) {
		t.Fatal("stopped while nothing was written to the transaction topic (a Connect outage): want waiting")
	}
	high = 44 // Connect is back: Debezium re-emits
	if at(time.Hour+time.Second, 1) {
		t.Fatal("stopped as soon as Debezium wrote again: want max_wait from then")
	}
	if at(time.Hour+30*time.Second, 2) || at(time.Hour+2*time.Minute, 2) {
		t.Fatal("stopped although an event was staged (progress) and nothing written since")
	}
	high = 50
	if at(time.Hour+2*time.Minute+time.Second, 2) || at(time.Hour+3*time.Minute, 2) {
		t.Fatal("stopped within max_wait of Debezium writing again")
	}
	if !at(time.Hour+3*time.Minute+2*time.Second, 2) {
		t.Fatal("did not stop once Debezium wrote and max_wait passed with the events still short")
	}
	// Another END starts a wait of its own.
	if at(time.Hour+4*time.Minute, 0) {
		t.Fatal("a new wait stopped at once")
	}
	w = endWait{}
	if w.look(t0, short(1), maxWait, time.Second, func() (int64, error) { return 0, errors.New("broker down") }) ||
		w.look(t0.Add(time.Hour), short(1), maxWait, time.Second, func() (int64, error) { return 0, errors.New("broker down") }) {
		t.Fatal("stopped without knowing whether Debezium writes")
	}
}

// TestResolverApplierWaitsThroughAnOutage: the resolver looks at an END
// short of events past max_wait while the transaction topic's high
// watermark stands still (Kafka Connect down): it goes on waiting, and
// applies once the events are staged. With the watermark moving at every
// look it stops, as before. (Before the fix it stopped in both.)
func TestResolverApplierWaitsThroughAnOutage(t *testing.T) {
	incomplete := &txapply.IncompleteError{ID: "tx", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
	for _, tc := range []struct {
		name     string
		moving   bool
		wantStop bool
	}{
		{name: "nothing written: waits", moving: false},
		{name: "Debezium writing: stops", moving: true, wantStop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeResolver{script: []error{incomplete, incomplete, incomplete, incomplete, incomplete, nil}}
			var high int64
			a := &resolverApplier{resolver: f, maxWait: time.Millisecond, log: zap.NewNop(), highEvery: time.Nanosecond,
				retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)},
				high: func() (int64, error) {
					if tc.moving {
						high++
					}
					return high, nil
				}}
			claim := &dedup.Claim{NextOffset: 10}
			_, err := a.Apply(context.Background(), endsBatch(claim, 10, 12))
			if stopped := errors.As(err, new(*txapply.StoppedError)); stopped != tc.wantStop {
				t.Fatalf("Apply = %v after %d looks, want a stop: %v", err, len(f.calls), tc.wantStop)
			}
			if !tc.wantStop && claim.NextOffset != 14 {
				t.Errorf("claim at %d, want 14 (applied once the events were staged)", claim.NextOffset)
			}
		})
	}
}

// TestResolverLeaveRule: a resolver that waits for a transaction's events
// tells the direct partitions to leave only once no record has reached
// the store for localWait: while records still arrive, the events may be
// among the next ones, and a partition that leaves during a backlog stages
// to its end. Records "arrive" at each of the resolver's looks (observe),
// so the outcome does not depend on how the machine schedules the test.
func TestResolverLeaveRule(t *testing.T) {
	const wait = 50 * time.Millisecond
	for _, tc := range []struct {
		name      string
		arriving  bool
		wantLeave bool
	}{
		{name: "nothing arrives: leave", wantLeave: true},
		{name: "records still arrive: wait", arriving: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := txlocal.New(1<<30, 1<<30)
			store.SetResolver(true)
			id := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
			if !store.Enter(dedup.Claim{PartitionID: id}, nil) {
				t.Fatal("the partition did not enter")
			}
			incomplete := &txapply.IncompleteError{ID: "tx", Want: map[string]int64{"public.a": 1}, WantTotal: 1}
			f := &fakeResolver{script: make([]error, 1_000_000)}
			for i := range f.script {
				f.script[i] = incomplete
			}
			var first time.Time
			offset := int64(0)
			f.observe = func() {
				if first.IsZero() {
					first = time.Now()
				}
				if tc.arriving {
					it := sink.Item{Record: debezium.Record{Offset: offset}, Change: debezium.Change{Transaction: &debezium.Transaction{ID: "7:1", TxID: 7}}}
					offset++
					if _, err := store.Hold(id, []sink.Item{it}, []int64{1}); err != nil {
						t.Errorf("Hold: %v", err)
					}
				}
				told := store.MustLeave(id).Cause != ""
				// Waited well past localWait (or told to leave, or given
				// up): the events are there, applied.
				if told || time.Since(first) > 6*wait && len(f.calls) > 3 || time.Since(first) > testWait {
					f.script = nil
				}
			}
			a := &resolverApplier{resolver: f, local: store, localWait: wait, maxWait: time.Hour, log: zap.NewNop(),
				retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
			if _, err := a.Apply(context.Background(), endsBatch(&dedup.Claim{NextOffset: 10}, 10)); err != nil {
				t.Fatalf("Apply = %v", err)
			}
			got := store.MustLeave(id).Cause
			if tc.wantLeave && got != txlocal.CauseResolverWait || !tc.wantLeave && got != "" {
				t.Errorf("after waiting %s (localWait %s, records arriving: %v): told to leave for %q", time.Since(first), wait, tc.arriving, got)
			}
		})
	}
}
