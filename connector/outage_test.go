package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

// downRouter is fakeRouter behind a target that is down: its next fails
// routings fail as the real router's catalog read does then.
type downRouter struct {
	fakeRouter
	mu    sync.Mutex
	fails int // -1: always
	tries chan struct{}
}

func (r *downRouter) Item(ctx context.Context, dec *debezium.Decoder, rec debezium.Record) (sink.Item, bool, error) {
	select {
	case r.tries <- struct{}{}:
	default:
	}
	r.mu.Lock()
	fail := r.fails != 0
	if r.fails > 0 {
		r.fails--
	}
	r.mu.Unlock()
	if fail {
		return sink.Item{}, false, fmt.Errorf("read target catalog of public.t: catalog: read schema \"public\": %w", targetDown)
	}
	return r.fakeRouter.Item(ctx, dec, rec)
}

// A record whose target's catalog cannot be read because PostgreSQL is
// down (a table's first record, a schema change) waits for the target as
// an apply does: counted, then routed and applied once it is back; the
// partition does not stop and nothing is dead-lettered.
func TestRoutingWaitsOutAnUnavailableTarget(t *testing.T) {
	router := &downRouter{fails: 4, tries: make(chan struct{}, 64)}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), withOutage, func(d *workerDeps) { d.router = router })
	w.queue(0, 0, "a", "b")
	w.start()
	got := next(t, w.applies.calls, "apply")
	if !slices.Equal(got.offsets, []int64{0, 1}) || got.errs[0] != nil {
		t.Errorf("applied %v (errors %v), want [0 1] routed", got.offsets, got.errs)
	}
	none(t, w.poll.stops, "stopped partition")
	none(t, w.poll.fatals, "fatal error")
	if got := value(w.metrics.UnavailableRetries); got != 4 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 4", got)
	}
}

// Revoked while it waits for the target to route a record, the partition
// ends without applying or stopping: the next owner reads the record again.
func TestRoutingWaitEndsAtRevocation(t *testing.T) {
	router := &downRouter{fails: -1, tries: make(chan struct{}, 64)}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), withOutage, func(d *workerDeps) { d.router = router })
	w.queue(0, 0, "a", "b")
	w.start()
	next(t, router.tries, "routing")
	next(t, router.tries, "routing again")
	close(w.stopping)
	next(t, (<-chan struct{})(w.done), "the worker's end")
	none(t, w.applies.calls, "apply")
	none(t, w.poll.stops, "stopped partition")
	none(t, w.poll.fatals, "fatal error")
}

// outageClaimer is testClaimer waiting out a target that is down on a
// schedule of milliseconds, its attempts counted in m.
func outageClaimer(store bulkPositions, m *Metrics) claimer {
	c := testClaimer(store)
	c.outage = outageWait{report: newUnavailableReporter(zap.NewNop(), m.UnavailableRetries), initial: time.Millisecond, maximum: time.Millisecond}
	return c
}

// A claim that meets the target down does not wait for it: every
// partition ends at once with errAwaitingTarget, not claimed, the attempt
// counted, for the caller to try again later (Runner.claimAwaiting) — a
// wait inside the rebalance callback kept the member from its group.
func TestClaimAllDefersAtAnUnavailableTarget(t *testing.T) {
	m := NewMetrics()
	store := &fakeBulkPositions{errs: repeated(targetDown, 3*claimAttempts)}
	got := outageClaimer(store, m).claimAll(&fakeOffsetsClient{}, partitionIDs(3))
	if len(store.calls) != 1 {
		t.Fatalf("%d claim statements; want 1: a target that is down is not retried here", len(store.calls))
	}
	for _, cl := range got {
		if !errors.Is(cl.err, errAwaitingTarget) || cl.claim != (dedup.Claim{}) {
			t.Fatalf("claim %+v; want none, with errAwaitingTarget", cl)
		}
	}
	if got := value(m.UnavailableRetries); got != 1 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 1", got)
	}
}

// An assignment claimed in several statements (claimChunk partitions
// each) stops at the first that finds the target down: the others would
// hold the rebalance callback or the poll loop as long each (up to
// claimAttemptTimeout against a target that drops packets), and all
// await the target together.
func TestClaimAllStopsAtTheFirstChunkThatAwaits(t *testing.T) {
	store := &fakeBulkPositions{errs: repeated(targetDown, 1)}
	got := outageClaimer(store, NewMetrics()).claimAll(&fakeOffsetsClient{}, partitionIDs(claimChunk+5))
	if len(store.calls) != 1 {
		t.Fatalf("%d claim statements; want 1, the first chunk's", len(store.calls))
	}
	for _, cl := range got {
		if !errors.Is(cl.err, errAwaitingTarget) || cl.claim != (dedup.Claim{}) {
			t.Fatalf("claim %+v; want none, with errAwaitingTarget", cl)
		}
	}
}

// A real error still gives up after claimAttempts, an outage met by an
// earlier try notwithstanding: only the target being down is tried again
// without end.
func TestClaimAllGivesUpOnARealErrorAfterAnOutage(t *testing.T) {
	store := &fakeBulkPositions{errs: repeated(targetDown, 1), fails: -1}
	c := outageClaimer(store, NewMetrics())
	for _, cl := range c.claimAll(&fakeOffsetsClient{}, partitionIDs(2)) {
		if !errors.Is(cl.err, errAwaitingTarget) {
			t.Fatalf("first try: claim %+v; want errAwaitingTarget", cl)
		}
	}
	got := c.claimAll(&fakeOffsetsClient{}, partitionIDs(2))
	if len(store.calls) != 1+claimAttempts {
		t.Fatalf("%d claim statements; want %d", len(store.calls), 1+claimAttempts)
	}
	for _, cl := range got {
		if cl.err == nil || errors.Is(cl.err, sink.ErrStopping) || errors.Is(cl.err, errAwaitingTarget) {
			t.Fatalf("claim %+v; want the real error, which stops the instance", cl)
		}
	}
}

// The retries of a claim that failed end when the instance stops or the
// group takes the assignment away: not claimed, with sink.ErrStopping,
// which assign does not treat as a reason to stop the instance.
func TestClaimAllRetriesEndAtShutdownOrLoss(t *testing.T) {
	for _, name := range []string{"shutdown", "assignment lost"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var lost atomic.Bool
			store := &fakeBulkPositions{fails: -1, called: func(n int) {
				if n == 2 {
					if name == "shutdown" {
						cancel()
					} else {
						lost.Store(true)
					}
				}
			}}
			c := outageClaimer(store, NewMetrics())
			c.ctx, c.lost, c.claimFor = ctx, lost.Load, time.Hour
			got := c.claimAll(&fakeOffsetsClient{}, partitionIDs(2))
			if len(store.calls) != 2 {
				t.Errorf("%d claim statements; want 2: none after the stop", len(store.calls))
			}
			for _, cl := range got {
				if !errors.Is(cl.err, sink.ErrStopping) || cl.claim != (dedup.Claim{}) {
					t.Fatalf("claim %+v; want none, with sink.ErrStopping", cl)
				}
			}
		})
	}
}

// The outage warning names a host DNS no longer knows: an outage still
// (the target was reached before), but one a renamed or removed host also
// explains, which the operator is to tell apart.
func TestUnavailableWarningNamesAHostNotFound(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	u := newUnavailableReporter(zap.New(core), nil)
	u.report(fmt.Errorf("connect: %w", &net.DNSError{Err: "no such host", Name: "pg.internal", IsNotFound: true}), time.Second)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d warnings, want 1", len(entries))
	}
	if got := entries[0].ContextMap()["host_not_found"]; got != "pg.internal" {
		t.Errorf("host_not_found = %v, want pg.internal", got)
	}
	u = newUnavailableReporter(zap.New(core), nil)
	u.report(targetDown, time.Second)
	if _, ok := logs.All()[1].ContextMap()["host_not_found"]; ok {
		t.Error("host_not_found on a warning for a target in recovery")
	}
}

// An idle partition re-reads its row every idleCheck: with the target
// down, each look is counted and left to the instance's rate-limited
// warning, not warned by every partition every two seconds, and is no
// fencing.
func TestIdleCheckOfATargetThatIsDown(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	w := newWorker(t, batchOf(1, 1, time.Minute), 0, newFakeApplier(), withOutage)
	w.log = zap.New(core)
	w.store.readErr = targetDown
	for range 3 {
		if err := w.checkClaim(); err != nil {
			t.Fatalf("checkClaim: %v, want nil: the target being down is no fencing", err)
		}
	}
	if got := value(w.metrics.UnavailableRetries); got != 3 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 3", got)
	}
	if logs.Len() != 0 {
		t.Errorf("the partition warned %d times itself: %v", logs.Len(), logs.All()[0].Message)
	}
	if w.fenced {
		t.Error("fenced by a read that failed")
	}
}

// downFrontier is memStaging's frontier behind a target that goes down:
// after skip good reads, its next fails reads fail as PostgreSQL in
// recovery answers.
type downFrontier struct {
	*memStaging
	mu          sync.Mutex
	skip, fails int
}

func (d *downFrontier) FrontierOf(ctx context.Context, id dedup.PartitionID) (dedup.Frontier, error) {
	d.mu.Lock()
	switch {
	case d.skip > 0:
		d.skip--
	case d.fails > 0:
		d.fails--
		d.mu.Unlock()
		return dedup.Frontier{}, targetDown
	}
	d.mu.Unlock()
	return d.memStaging.FrontierOf(ctx, id)
}

// A partition at its staging bound looks at the resolver's frontier every
// stagingPollInterval: with the target down, each look is counted and left
// to the instance's rate-limited warning, not warned ten times a second by
// every waiting partition; it stages on once the frontier moves.
func TestStagingBoundLooksOfATargetThatIsDown(t *testing.T) {
	m := newMemStaging()
	down := &downFrontier{memStaging: m, skip: 1, fails: 5} // the claim's first read passes
	core, logs := observer.New(zap.WarnLevel)
	w := stagingWorker(t, m, batchOf(2, 1<<20, time.Minute), 3*recordBytes)
	w.frontier = down
	withOutage(w.workerDeps)
	w.log = zap.New(core)
	w.queue(0, 0, "tx:0", "tx:1", "tx:2", "tx:3", "tx:4", "tx:5")
	w.start()
	next(t, m.calls, "staging")
	next(t, m.calls, "staging")
	awaitReads(t, m, 1) // past the failed looks: the frontier read again
	m.apply(1)
	if got := next(t, m.calls, "staging"); !slices.Equal(got.offsets, []int64{4, 5}) {
		t.Fatalf("staged %v, want [4 5]", got.offsets)
	}
	if got := value(w.metrics.UnavailableRetries); got != 5 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 5", got)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "frontier") {
			t.Errorf("the partition warned itself: %s", e.Message)
		}
	}
}

// hangingEnd is memStaging's wait mark behind a target that does not
// answer: ending a wait blocks until its context ends.
type hangingEnd struct{ *memStaging }

func (h hangingEnd) EndWaiting(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// A resolver revoked while its wait is published ends the wait on its way
// out, not cancelled with the worker; a target that does not answer must
// not hold that return (and the revocation or the shutdown behind it)
// beyond the bound.
func TestResolverEndsItsWaitWithinABound(t *testing.T) {
	m := newMemStaging()
	stopping := make(chan struct{})
	a := &resolverApplier{resolver: &memResolver{m: m, events: 10}, waits: hangingEnd{m}, maxWait: time.Minute, log: zap.NewNop(), endTimeout: 50 * time.Millisecond,
		retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Millisecond)}}
	done := make(chan error, 1)
	go func() {
		_, err := a.Apply(withStopping(context.Background(), stopping), endsBatch(&dedup.Claim{PartitionID: dedup.PartitionID{Group: "g"}, NextOffset: 10}, 10))
		done <- err
	}()
	m.awaitMarked(t, "the resolver")
	close(stopping)
	select {
	case err := <-done:
		if !errors.Is(err, errResolverStopping) {
			t.Fatalf("Apply = %v, want errResolverStopping", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked resolver's return waited for a target that does not answer")
	}
}

// netRegistry is a schema registry that cannot be reached while down is
// set, failing as schemaregistry.Client does when its HTTP request is
// refused: a SchemaUnavailableError around the *url.Error, which is a
// net.Error (and so what sink.Unavailable calls a target outage).
type netRegistry struct {
	outageRegistry
}

func (r *netRegistry) Schema(id uint32) (string, error) {
	text, err := r.outageRegistry.Schema(id)
	if err == nil {
		return text, nil
	}
	refused := &url.Error{Op: "Get", URL: "http://registry:8081/schemas/ids/1",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	return "", &debezium.SchemaUnavailableError{ID: id, Err: refused}
}

// A schema registry that refuses connections is the registry's outage, not
// the target's: the partition waits for it on the registry's schedule,
// counted and warned as a registry wait, and the target's outage counter
// (which an operator reads as "PostgreSQL is down") stays at zero.
func TestRegistryRefusedIsNoTargetOutage(t *testing.T) {
	avroRecords, schemas := fixtureMarkers(t, "shipped_avro")
	reg := &netRegistry{outageRegistry{schemas: schemas, calls: make(chan uint32, 64)}}
	reg.down.Store(true)
	core, logs := observer.New(zap.WarnLevel)
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.router = &markerRouter{encoding: debezium.EncodingAvro, schemas: reg}
		withOutage(d)
	})
	w.log = zap.New(core)
	w.queueMarkers(0, avroRecords[:2])
	w.start()
	next(t, reg.calls, "a schema request")
	next(t, reg.calls, "a second schema request after the first failed")
	reg.down.Store(false)
	next(t, w.applies.calls, "apply once the registry answers")
	if waits := value(w.metrics.SchemaWaits.WithLabelValues(testTopic)); waits < 1 {
		t.Errorf("pgsink_schema_registry_unavailable_total %v; want the registry's waits counted", waits)
	}
	if got := value(w.metrics.UnavailableRetries); got != 0 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 0: the target was never down", got)
	}
	registryWarned := false
	for _, e := range logs.All() {
		registryWarned = registryWarned || strings.Contains(e.Message, "schema registry")
	}
	if !registryWarned {
		t.Error("no warning names the schema registry")
	}
}

// hangingRouter is a router behind a target that goes down and then stops
// answering (a host that vanished, whose connects hang): its first routing
// fails as a refused catalog read, every later one blocks until its
// context ends and fails with that, as pgx does when a connect or a query
// is cancelled.
type hangingRouter struct {
	fakeRouter
	tries chan struct{}
	n     atomic.Int32
}

func (r *hangingRouter) Item(ctx context.Context, _ *debezium.Decoder, _ debezium.Record) (sink.Item, bool, error) {
	r.tries <- struct{}{}
	if r.n.Add(1) == 1 {
		return sink.Item{}, false, fmt.Errorf("read target catalog of public.t: %w", targetDown)
	}
	<-ctx.Done()
	return sink.Item{}, false, fmt.Errorf("read target catalog of public.t: failed to connect: %w", ctx.Err())
}

// A partition whose wait for the target to route a record is abandoned
// while an attempt is in flight (its assignment lost, or the shutdown's
// timeout) ends as a revocation during the wait does: the attempt's
// cancellation is no fault of the record or the configuration, so the
// partition is not stopped (no 'partition stopped' error, no stop noted on
// its offsets row for the next owner to find).
func TestRoutingWaitCancelledMidAttempt(t *testing.T) {
	router := &hangingRouter{tries: make(chan struct{}, 64)}
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), withOutage, func(d *workerDeps) { d.router = router })
	w.queue(0, 0, "a", "b")
	w.start()
	next(t, router.tries, "routing")
	next(t, router.tries, "routing again, which hangs")
	w.cancel() // the assignment is lost
	next(t, (<-chan struct{})(w.done), "the worker's end")
	none(t, w.poll.stops, "stopped partition")
	none(t, w.poll.fatals, "fatal error")
	none(t, w.applies.calls, "apply")
	if len(w.store.stopReasons) != 0 {
		t.Errorf("stop noted on the offsets row: %q", w.store.stopReasons)
	}
}

// The snapshot sweeper looks at the target every sweepInterval: with the
// target down, each look goes to the instance's counter and rate-limited
// warning, and only what else it found wrong is its own warning.
func TestSweeperLookAtATargetThatIsDown(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	reporterCore, reporterLogs := observer.New(zap.WarnLevel)
	attempts := prometheus.NewCounter(prometheus.CounterOpts{Name: "attempts"})
	s := &sweeper{log: zap.New(core), unavailable: newUnavailableReporter(zap.New(reporterCore), attempts)}
	for range 3 {
		s.logResult(targetDown)
	}
	if logs.Len() != 0 {
		t.Fatalf("the sweeper warned %d times itself of an outage: %v", logs.Len(), logs.All()[0].ContextMap())
	}
	kafkaErr := errors.New("partitions of app.public.t: broker transport failure")
	s.logResult(errors.Join(targetDown, kafkaErr))
	if got := value(attempts); got != 4 {
		t.Errorf("outage attempts counted = %v, want 4", got)
	}
	if reporterLogs.Len() != 1 {
		t.Errorf("%d outage warnings within %v, want 1", reporterLogs.Len(), unavailableLogEvery)
	}
	if logs.Len() != 1 {
		t.Fatalf("%d sweeper warnings, want 1: the error that is no outage", logs.Len())
	}
	if got := logs.All()[0].ContextMap()["error"]; got != kafkaErr.Error() {
		t.Errorf("sweeper warning's error = %q, want only %q", got, kafkaErr)
	}
	if s.downSince.IsZero() {
		t.Error("downSince reset while the target is still down")
	}
	s.logResult(nil)
	if !s.downSince.IsZero() {
		t.Error("downSince kept after a look that found the target up")
	}
}
