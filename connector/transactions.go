package connector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/internal/backoff"
	"github.com/pgsink/pgsink/internal/faults"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txapply"
	"github.com/pgsink/pgsink/txlocal"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// apply.consistency: transaction (docs/transactions.md). Data partitions
// stage their transactional records (sink.Options.StageTransactions); the
// owner of the transaction topic's one partition runs the resolver: its
// worker is a partition like any other (claimed, fenced, batched, stopped
// with its reason), whose router keeps the END markers and whose applier
// resolves them.

// TransactionTopic is the topic the resolver reads, or "" in partition mode.
func TransactionTopic(cfg *config.Config) string {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return ""
	}
	return cfg.Apply.Transaction.Topic
}

// resolverDeps returns the collaborators of the transaction topic's worker:
// r.deps with the router and applier of the resolver.
func (r *Runner) resolverDeps(sinkOpts sink.Options) *workerDeps {
	sinkOpts.StageTransactions = false // the resolver writes what was staged
	sinkOpts.StopOnError = true        // a transaction is applied whole or not at all
	tm := r.deps.metrics.Tx
	var auditLocal func(*pgx.Batch, []debezium.Record)
	if r.faults.Audit {
		auditLocal = faults.AuditHook(r.cfg.Postgres.Schema)
	}
	res := txapply.New(r.pool, sink.NewApplier(r.pool, sinkOpts), r.router,
		txapply.Options{Schema: r.cfg.Postgres.Schema, Chunk: r.cfg.Apply.Batch.MaxRecords, ChunkBytes: int64(r.cfg.Apply.Batch.MaxBytes),
			BeforeCommit: func() { r.faults.Failpoints.Hit("before-commit") },
			Local:        r.local,
			AfterTake:    func() { r.faults.Failpoints.Hit("local-after-take") },
			AfterCommit:  func() { r.faults.Failpoints.Hit("local-after-commit") },
			AuditLocal:   auditLocal,
			Progress: func(written int64) {
				tm.Writing.Set(float64(written))
				if written > 0 { // writing: the END waited at is complete
					tm.Waiting.Reset()
					tm.WaitSeconds.Set(0)
				}
			}})
	deps := *r.deps
	deps.loop = markerLoop{r}
	deps.router = &markerRouter{encoding: r.router.Encoding(r.cfg.Apply.Transaction.Topic), schemas: r.schemas}
	deps.frontier, deps.resets = nil, nil // the resolver stages nothing
	deps.local, deps.resolverOf = nil, r.local
	maxWait := r.cfg.Apply.Transaction.MaxWait.Std()
	high := func(topic string, partition int32) (int64, error) {
		_, high, err := r.consumer.QueryWatermarkOffsets(topic, partition, 5000)
		return high, err
	}
	txTopic := r.cfg.Apply.Transaction.Topic
	deps.applier = &resolverApplier{resolver: res, local: r.local, maxWait: maxWait, retry: r.cfg.Apply.Retry, unavailable: r.unavailable, log: r.log.Named("resolver"), metrics: tm,
		waits:     resolverWaitMark{tx: dedup.NewTransactions(r.cfg.Postgres.Schema), db: r.pool},
		conflicts: r.deps.metrics.InsertConflicts.WithLabelValues(txTopic),
		high:      func() (int64, error) { return high(txTopic, 0) }}
	staging := dedup.NewTransactions(r.cfg.Postgres.Schema)
	// stagedIn lists the data partitions holding staged records: the
	// idle check watches their high watermarks for Debezium writing.
	stagedIn := func(ctx context.Context, group string) ([]topicPartition, error) {
		parts, err := staging.StagedByPartition(ctx, r.pool, group)
		if err != nil {
			return nil, err
		}
		out := make([]topicPartition, len(parts))
		for i, p := range parts {
			out[i] = topicPartition{p.Topic, p.Partition}
		}
		return out, nil
	}
	deps.idle = resolverIdle(res, maxWait, high, stagedIn, r.log.Named("resolver"))
	return &deps
}

// resolverIdle returns the resolver worker's idle check. A resolver that
// has read every END the topic holds so far knows that records staged
// longer than max_wait ago are of a transaction whose END is not coming.
// An empty queue does not say so: the poll loop pauses every partition
// while the buffer budget is spent, and a resolver that lags the
// partitions' staging (it writes every transaction itself) sees its queue
// run dry under such a pause with ENDs still unread. So the check runs only
// at the topic's high watermark, asked of the broker.
//
// Nor does a staged record's age alone: a Kafka Connect crash loses the
// END with the records in flight, and Debezium writes it again only after
// Connect restarts, however long the outage. So, as at an END short of its
// events (endWait), the resolver stops only once Debezium is seen writing
// again after it found the transaction without END — the transaction
// topic's high watermark moved, or that of a data partition that held
// staged records then (stagedIn; a partition at its staging bound stages
// nothing more, but Debezium still writes it) — and max_wait has passed
// since. The partitions are those of the moment it found the transaction:
// one that enters the set later (caught up by another instance during a
// Connect outage) is no sign of Debezium writing. Until then it says once
// that it waits.
func resolverIdle(res resolving, maxWait time.Duration, high func(topic string, partition int32) (int64, error), stagedIn func(ctx context.Context, group string) ([]topicPartition, error), log *zap.Logger) func(context.Context, dedup.Claim) error {
	var orphan struct {
		sync.Mutex                          // a revoked worker's last check may overlap the next's
		txID       int64                    // the transaction found without END; 0: none
		high       int64                    // the topic's high watermark when it was found
		marks      map[topicPartition]int64 // the data partitions holding staged records then, and their high watermarks
		moved      time.Time                // when Debezium was first seen writing since; zero: not yet
	}
	// wrote reports whether any watched data partition was written since.
	wrote := func() bool {
		for tp, mark := range orphan.marks {
			if h, err := high(tp.topic, tp.partition); err == nil && h > mark {
				return true
			}
		}
		return false
	}
	return func(ctx context.Context, claim dedup.Claim) error {
		h, err := high(claim.Topic, claim.Partition)
		if err != nil || claim.NextOffset < h {
			return nil // ENDs unread, or not known: looked at again at the next idle check
		}
		orphan.Lock()
		defer orphan.Unlock()
		var noEnd *txapply.NoEndError
		if err := res.CheckEnds(ctx, claim.Group, maxWait); !errors.As(err, &noEnd) {
			if err == nil {
				orphan.txID = 0
			}
			return nil // a failed look is tried again at the next idle check
		}
		now := time.Now()
		switch {
		case orphan.txID != noEnd.TxID:
			parts, err := stagedIn(ctx, claim.Group)
			if err != nil {
				return nil // looked at again at the next idle check
			}
			marks := make(map[topicPartition]int64, len(parts))
			for _, tp := range parts {
				if marks[tp], err = high(tp.topic, tp.partition); err != nil {
					return nil
				}
			}
			orphan.txID, orphan.high, orphan.marks, orphan.moved = noEnd.TxID, h, marks, time.Time{}
			log.Warn("a staged transaction has had no END for apply.transaction.max_wait; the resolver stops once Debezium writes again and max_wait passes without it (after a Kafka Connect outage Debezium writes the lost END again)",
				zap.Int64("tx_id", noEnd.TxID), zap.Int64("staged_records", noEnd.Records), zap.Time("first_staged", noEnd.FirstStaged))
		case orphan.moved.IsZero():
			if h > orphan.high || wrote() {
				orphan.moved = now
			}
		case now.Sub(orphan.moved) > maxWait:
			return &txapply.StoppedError{Err: noEnd}
		}
		return nil
	}
}

// topicPartition names a data partition.
type topicPartition struct {
	topic     string
	partition int32
}

// depsFor returns the collaborators of a partition's worker.
func (r *Runner) depsFor(id dedup.PartitionID) *workerDeps {
	if id.Topic == TransactionTopic(r.cfg) && r.txDeps != nil {
		return r.txDeps
	}
	return r.deps
}

// markerLoop is the poll loop as the transaction topic's worker sees it:
// the bytes it holds count in Runner.markerBytes, not in the data
// partitions' budget.
type markerLoop struct{ *Runner }

func (m markerLoop) charge(bytes int64)  { m.markerBytes.Add(bytes) }
func (m markerLoop) release(bytes int64) { m.markerBytes.Add(-bytes) }

// budgetOf is the counter p's fetched bytes count in: markerBytes for the
// transaction topic's partition, buffered for every other.
func (r *Runner) budgetOf(p *partition) *atomic.Int64 {
	if t := TransactionTopic(r.cfg); t != "" && p.id.Topic == t {
		return &r.markerBytes
	}
	return &r.buffered
}

// markerBudget is what the transaction topic's queued markers may hold
// before its partition is paused: an eighth of apply.max_buffered_bytes,
// on top of it. The resolver needs only the END it waits at; what it
// fetches beyond is read again once it catches up.
func markerBudget(cfg *config.Config) int64 { return int64(cfg.Apply.MaxBufferedBytes) / 8 }

// markerRouter decodes the transaction topic: an END marker is an Item for
// the resolver, a BEGIN writes nothing. The topic is in the file's encoding
// (a connector writes all its topics with one value converter); Avro
// markers are read through the same registry client as the data
// partitions. One worker uses it at a time, but a revoked worker may still
// finish while the next starts: hence the lock.
type markerRouter struct {
	// encoding is the transaction topic's (sink.Router.Encoding: the
	// file's, no table claims the topic); schemas the registry of Avro
	// markers, nil without one.
	encoding debezium.Encoding
	schemas  debezium.SchemaSource

	mu  sync.Mutex
	dec *debezium.Decoder
}

// DeletesApplied is false: the transaction topic holds no table's deletes.
func (m *markerRouter) DeletesApplied(string) bool { return false }

func (m *markerRouter) boundaries() {}

// boundaryRouter is a router of records that no dead letter may stand for:
// the transaction topic's markers (markerRouter). A panic decoding one
// stops the partition (partition.routeRecovered).
type boundaryRouter interface{ boundaries() }

// Item decodes one marker. A marker whose Avro schema the registry cannot
// serve now returns the *debezium.SchemaUnavailableError itself: the
// partition worker waits for the registry with the offset unmoved
// (partition.item), as a data partition does. Any other failure is a
// *txapply.MarkerError, which stops the resolver at that offset.
func (m *markerRouter) Item(_ context.Context, _ *debezium.Decoder, rec debezium.Record) (sink.Item, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dec == nil {
		enc := m.encoding
		m.dec = debezium.NewDecoder(debezium.Options{
			Format:   func(string) debezium.Format { return debezium.FormatTransaction },
			Encoding: func(string) debezium.Encoding { return enc },
			Schemas:  m.schemas,
		})
	}
	if m.encoding == debezium.EncodingJSON && len(rec.Value) > 0 && rec.Value[0] == 0 {
		// The Confluent wire format's magic byte: the JSON decoder would
		// only say the value is no JSON.
		return sink.Item{}, false, &txapply.MarkerError{Topic: rec.Topic, Offset: rec.Offset, Err: errAvroMarker}
	}
	ch, err := m.dec.Decode(rec)
	if err != nil {
		if unavailable := (*debezium.SchemaUnavailableError)(nil); errors.As(err, &unavailable) {
			return sink.Item{}, false, err
		}
		// Not dead-lettered: a transaction boundary cannot be skipped.
		return sink.Item{}, false, &txapply.MarkerError{Topic: rec.Topic, Offset: rec.Offset, Err: err}
	}
	if ch.TxMark == nil {
		return sink.Item{}, false, &txapply.MarkerError{Topic: rec.Topic, Offset: rec.Offset, Err: errNullMarker}
	}
	if ch.TxMark.Status != "END" {
		return sink.Item{}, false, nil
	}
	return sink.Item{Record: rec, Change: ch}, true, nil
}

// errNullMarker is a record of the transaction topic without a value,
// which Debezium never writes there.
var errNullMarker = errors.New("a record without a value (a tombstone), not a BEGIN or END")

// errAvroMarker is why a transaction marker in Avro stops a resolver that
// reads the topic as JSON.
var errAvroMarker = errors.New("the transaction topic is in Avro (magic byte 0) and encoding is json: " +
	"set encoding: avro (or auto) with schema_registry.url, as the connector's value.converter writes")

// resolving is what the resolver's worker asks of the resolver
// (*txapply.Resolver).
type resolving interface {
	Resolve(ctx context.Context, claim *dedup.Claim, ends []txapply.End, next int64) (txapply.Result, error)
	CheckEnds(ctx context.Context, group string, maxWait time.Duration) error
}

// waitMarker publishes that the resolver waits for events not staged
// yet, for the stagers at their bound (stagebound.go); the resolver's
// next apply transaction ends the wait (dedup.QueueApplied).
type waitMarker interface {
	MarkWaiting(ctx context.Context, group string, endOffset int64) error
	EndWaiting(ctx context.Context, group string) error
}

// resolverWaitMark is waitMarker on the target database.
type resolverWaitMark struct {
	tx dedup.Transactions
	db dedup.DB
}

func (m resolverWaitMark) MarkWaiting(ctx context.Context, group string, endOffset int64) error {
	return m.tx.MarkWaiting(ctx, m.db, group, endOffset)
}

func (m resolverWaitMark) EndWaiting(ctx context.Context, group string) error {
	return m.tx.EndWaiting(ctx, m.db, group)
}

// resolverApplier applies a batch of the transaction topic: its END
// markers, each once every event of its transaction is staged.
type resolverApplier struct {
	resolver resolving
	// local is the local path's store, nil when it is off: a resolver
	// that waits for events longer than localWait, none handed to the
	// store meanwhile, tells its partitions to leave the direct state.
	local *txlocal.Store
	// localWait is localWait unless a test sets it.
	localWait time.Duration
	// waits, when set, is told when the resolver waits for events not
	// staged yet, and when it stops without applying.
	waits   waitMarker
	maxWait time.Duration
	retry   config.Retry
	// unavailable is told of each attempt that found the target down,
	// which the resolver retries until it is back, as partitions do
	// (sink.Retry).
	unavailable *unavailableReporter
	log         *zap.Logger
	metrics     *TxMetrics
	// conflicts is pgsink_insert_conflicts_total for the resolver's
	// second attempts with upserts only: its batches are of the
	// transaction topic, whose items name no table, so the partition's
	// report of fallbacks does not count them.
	conflicts prometheus.Counter
	// schemaRetryBase is the first wait for the schema registry (tests
	// shorten it); zero is schemaRetryBase, as partitions wait.
	schemaRetryBase time.Duration
	// high returns the transaction topic's high watermark: an END waiting
	// for its events stops only once Debezium has gone on writing
	// (endWait). Nil: as if it always had.
	high func() (int64, error)
	// highEvery is how often a waiting END asks high (zero: highEvery).
	highEvery time.Duration
	// endTimeout bounds ending a published wait on the way out (zero:
	// markStoppedTimeout).
	endTimeout time.Duration
}

// highEvery is how often the resolver waiting at an END asks the broker
// for the transaction topic's high watermark.
const highEvery = time.Second

// endWait is the resolver's wait at an END whose events are not all
// staged. Its clock restarts at each progress (more of the transaction's
// events staged), and it runs only once Debezium is seen writing again
// after it (the transaction topic's high watermark moves): events lost in
// flight by a Kafka Connect crash come back only with Debezium's
// re-emission after Connect restarts, so an outage of any length, during
// which nothing is written, is no reason to stop. Once Debezium writes
// and max_wait passes with the events still short, they are not coming (a
// table not configured, a filtered one, a partition stopped): the
// resolver stops with the reason. On a source that writes nothing more, a
// resolver short of events waits until it does, visible in
// pgsink_transaction_waiting_seconds.
type endWait struct {
	id       string    // the END waited at
	staged   int64     // its staged events at the last progress
	progress time.Time // the last progress; zero: not waiting
	high     int64     // the transaction topic's high watermark then; -1: not known yet
	asked    time.Time // when high was last asked
	moved    time.Time // when Debezium was first seen writing since progress; zero: not yet
}

// look records a look at an incomplete END at now, and reports whether
// the wait is over: max_wait since Debezium was first seen writing after
// the last progress.
func (w *endWait) look(now time.Time, inc *txapply.IncompleteError, maxWait, every time.Duration, high func() (int64, error)) (stop bool) {
	if w.progress.IsZero() || inc.ID != w.id || inc.StagedTotal != w.staged {
		*w = endWait{id: inc.ID, staged: inc.StagedTotal, progress: now, high: -1}
		if high == nil {
			w.moved = now
		}
	}
	if w.moved.IsZero() && now.Sub(w.asked) >= every {
		w.asked = now
		if h, err := high(); err == nil {
			if w.high >= 0 && h > w.high {
				w.moved = now
			}
			w.high = max(w.high, h)
		}
	}
	return !w.moved.IsZero() && now.Sub(w.moved) > maxWait
}

// remarkEvery is how often a resolver waiting for staged events writes
// its mark again (resolverApplier.Apply).
const remarkEvery = time.Second

// slowResolve is the Resolve that is logged with where its time went: a
// large source transaction, or a resolver falling behind.
const slowResolve = time.Second

// stagingPoll is how often the resolver looks again at the staged counts
// of a transaction whose END arrived before all its events were staged.
// Counting scans the transaction's staged rows: for a large one the look
// waits countPause times as long as the last count took (at most
// maxStagingPoll), so that counting takes no more than a fraction of the
// database's time from the partitions still staging it.
const (
	stagingPoll    = 50 * time.Millisecond
	maxStagingPoll = 5 * time.Second
	countPause     = 4
)

// stagingPause is the wait before counting again after a count that took
// took.
func stagingPause(took time.Duration) time.Duration {
	return min(max(stagingPoll, countPause*took), maxStagingPoll)
}

func (a *resolverApplier) Apply(ctx context.Context, b *sink.Batch) (st sink.Stats, err error) {
	// marked is set once this wait for events is published, cleared by
	// an apply (whose transaction ended it in the database too).
	marked := false
	var markedAt time.Time
	defer func() {
		a.published(false)
		if marked && err != nil && a.waits != nil {
			// Stopped, revoked, stopping or failed: nothing will be
			// applied by this wait, and the stagers are to keep to their
			// bound meanwhile (a successor waiting too writes its own
			// mark again within remarkEvery).
			// Bounded, not cancelled with the worker: the target may be
			// why the batch ended (down, or not answering at all), and
			// this return holds a revocation or the shutdown.
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(a.endTimeout, markStoppedTimeout))
			defer cancel()
			if err := a.waits.EndWaiting(ectx, b.Claim.Group); err != nil {
				a.log.Warn("ending the published wait for staged events", zap.Error(err))
			}
		}
	}()
	ends := make([]txapply.End, 0, len(b.Items))
	for _, it := range b.Items {
		ends = append(ends, txapply.End{Offset: it.Record.Offset, Marker: it.Change.TxMark, SourceTs: it.Change.EventTs})
	}
	var wait endWait
	every := cmp.Or(a.highEvery, highEvery)
	waits := backoff.New(a.retry.InitialBackoff.Std(), a.retry.MaxBackoff.Std())
	schemaWaits := backoff.New(cmp.Or(a.schemaRetryBase, schemaRetryBase), schemaRetryLimit)
	attempts := 0
	var unavailableSince time.Time
	// one is set once a target transaction of several source transactions
	// failed for a record: they are then applied one by one, so that those
	// before the failing one are applied and the resolver stops exactly at
	// it.
	one := false
	// incompleteSince is since when the resolver has found an END short
	// of its events, without applying anything.
	var incompleteSince time.Time
	for {
		pause := stagingPoll
		take, next := ends, b.Next
		if one && len(ends) > 1 {
			take, next = ends[:1], ends[0].Offset+1
		}
		started, position := time.Now(), b.Claim.NextOffset
		res, err := a.resolver.Resolve(ctx, b.Claim, take, next)
		a.report(b.Claim, res, time.Since(started))
		st.Upserted += res.Stats.Upserted
		st.Deleted += res.Stats.Deleted
		st.Stale += res.Stats.Stale
		st.Duplicates += res.Stats.Duplicates
		var incomplete *txapply.IncompleteError
		var unavailable *debezium.SchemaUnavailableError
		switch {
		case err == nil:
		case errors.As(err, &unavailable):
			// A staged Avro record whose schema the registry cannot serve
			// now: the resolver waits, as a partition does (partition.item),
			// rather than stop for the registry's sake.
			pause = schemaWaits.Next()
			a.log.Warn("resolver waits for the schema registry: a staged record's schema cannot be fetched; the position is not moved",
				zap.Uint32("schema_id", unavailable.ID), zap.Duration("retry_in", pause), zap.Error(err))
		case errors.As(err, &incomplete):
			pause = stagingPause(time.Since(started))
			now := time.Now()
			if incompleteSince.IsZero() {
				incompleteSince = now
			}
			if lw := cmp.Or(a.localWait, localWait); a.local != nil && now.Sub(incompleteSince) > lw && !a.local.HandedSince(now.Add(-lw)) {
				// The events waited for may be behind records the direct
				// partitions hold, in a buffer budget they fill: staged,
				// those leave memory, and the partitions fetch on. Not
				// while records still reach the store: the events may be
				// among the next, and a partition that leaves stages
				// until the resolver has caught up with it, which during
				// a backlog is its end.
				a.local.LeaveAll(txlocal.Leaving{Cause: txlocal.CauseResolverWait, Why: "the resolver waits for a transaction's events and no record reached the local path's store meanwhile"})
			}
			if wait.look(now, incomplete, a.maxWait, every, a.high) {
				return st, &txapply.StoppedError{Err: err}
			} else if a.waits != nil && wait.progress.Before(now) && (!marked || now.Sub(markedAt) >= remarkEvery) {
				// Still waiting at a second look without progress (an END
				// read just before its events were staged is no reason to
				// write):
				// the events may be held by a partition at its staging
				// bound, which stages on once it sees this. Written again
				// now and then while the wait goes on: the mark is the
				// group's, and a former resolver of the group (a zombie
				// that stops before it learns it lost the partition) ends
				// it on its way out.
				if merr := a.waits.MarkWaiting(ctx, b.Claim.Group, incomplete.Offset); merr != nil {
					a.log.Warn("publishing that the resolver waits for staged events; trying again at the next look", zap.Error(merr))
				} else {
					marked, markedAt = true, now
					a.published(true)
				}
			}
			a.waiting(incomplete, time.Since(wait.progress))
		case errors.Is(err, dedup.ErrStagingReset):
			// The staging table was reset since the partitions synced:
			// nothing is applied until they have (and rewound and staged
			// again what was lost), which a partition does within its idle
			// check or its next staging transaction.
			pause = waits.Next()
			a.log.Warn("resolver waits: the staging marker does not match its generation (the target crashed or failed over); the data partitions stage again what was lost",
				zap.Duration("retry_in", pause), zap.Error(err))
		case sink.Unavailable(err) && ctx.Err() == nil:
			// A restart or a failover: retried for as long as it lasts,
			// not counted against apply.retry.max_attempts.
			if unavailableSince.IsZero() {
				unavailableSince = time.Now()
			}
			st.Retries++
			pause = waits.Next()
			a.unavailable.report(err, time.Since(unavailableSince))
		case sink.Transient(err) && attempts+1 < a.retry.MaxAttempts:
			attempts++
			unavailableSince = time.Time{}
			st.Retries++
			pause = waits.Next()
			a.log.Warn("resolver transaction failed; retrying", zap.Int("attempt", attempts), zap.Duration("retry_in", pause), zap.Error(err))
		case errors.As(err, new(*txapply.LocalMovedError)), errors.As(err, new(*txapply.LocalOrderError)):
			// Nothing applied; the partitions concerned stage from now
			// on, and the apply reads their records from staging.
			pause = waits.Next()
			a.log.Warn("resolver transaction: a partition leaves the local path; retrying", zap.Duration("retry_in", pause), zap.Error(err))
		case errors.As(err, new(*dedup.FencedError)), errors.As(err, new(*dedup.PositionMovedError)), errors.Is(err, dedup.ErrNotClaimed),
			ctx.Err() != nil, sink.Transient(err):
			return st, err // the partition worker's to handle, as for a batch
		case !one && len(ends) > 1:
			one, pause = true, 0
		default:
			// A staged record that does not decode or route, or that the
			// target refuses: the transaction cannot be applied without
			// it, so the resolver stops there with the reason.
			return st, &txapply.StoppedError{Err: err}
		}
		ends = ends[res.Applied+res.Passed:]
		if len(ends) == 0 && b.Claim.NextOffset == b.Next {
			return st, nil
		}
		if res.Applied+res.Passed > 0 || err == nil {
			incompleteSince = time.Time{}
			wait = endWait{}
			marked = marked && b.Claim.NextOffset == position // an apply transaction ended the wait
			a.published(marked)
			a.waiting(nil, 0)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-stoppingOf(ctx):
			// Revoked or shutting down between two looks: what is applied
			// is committed with its position; the rest is the next
			// owner's, which reads from that position.
			return st, errResolverStopping
		case <-time.After(pause):
		}
	}
}

// localWait is how long the resolver waits for an END's events, with no
// record handed to the local path's store meanwhile, before it tells the
// direct partitions to leave the local path. Longer than an END
// usually waits for its partitions' records to be fetched, so that a
// partition does not leave for that.
const localWait = 2 * time.Second

// errResolverStopping ends the resolver's batch when its partition is
// revoked (or the instance stops) while it waits for staged events, rather
// than hold the rebalance up to shutdown_timeout.
var errResolverStopping = errors.New("revoked or stopping while waiting for a transaction's events")

func withStopping(ctx context.Context, stopping <-chan struct{}) context.Context {
	return sink.WithStopping(ctx, stopping)
}

func stoppingOf(ctx context.Context) <-chan struct{} { return sink.Stopping(ctx) }

// report counts what one Resolve applied, and logs where the time of a
// slow one went.
func (a *resolverApplier) report(claim *dedup.Claim, res txapply.Result, took time.Duration) {
	if a.conflicts != nil {
		a.conflicts.Add(float64(res.Stats.InsertConflicts))
	}
	if a.metrics == nil {
		return
	}
	a.metrics.Position.Set(float64(claim.NextOffset))
	if res.Applied == 0 {
		return
	}
	now := time.Now()
	a.metrics.Resolved.Add(float64(res.Records))
	a.metrics.Transactions.Add(float64(res.Applied))
	for _, first := range res.FirstStaged {
		if !first.IsZero() {
			a.metrics.CommitLatency.Observe(max(now.Sub(first), 0).Seconds())
		}
	}
	if took >= slowResolve {
		a.log.Info("resolver applied", zap.Int("transactions", res.Applied), zap.Int64("records", res.Records),
			zap.Duration("took", took), zap.Duration("checking_counts", res.Checking), zap.Duration("writing", res.Writing),
			zap.Duration("committing", res.Committing), zap.Int64("next_offset", claim.NextOffset))
	}
}

// waiting sets the gauges of the END the resolver waits at; nil: none.
func (a *resolverApplier) waiting(inc *txapply.IncompleteError, since time.Duration) {
	if a.metrics == nil {
		return
	}
	var staged, expected int64
	if inc != nil {
		staged, expected = inc.StagedTotal, inc.WantTotal
	}
	a.metrics.Waiting.WithLabelValues("staged").Set(float64(staged))
	a.metrics.Waiting.WithLabelValues("expected").Set(float64(expected))
	a.metrics.WaitSeconds.Set(since.Seconds())
}

// published sets whether the resolver's wait is published.
func (a *resolverApplier) published(marked bool) {
	if a.metrics == nil {
		return
	}
	if marked {
		a.metrics.WaitPublished.Set(1)
	} else {
		a.metrics.WaitPublished.Set(0)
	}
}

// checkTransactionTopic returns why the transaction topic cannot order the
// source's transactions: it does not exist, or it has more than one
// partition (whose ENDs would have no order between them).
func checkTransactionTopic(c *kafka.Consumer, topic string) error {
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return fmt.Errorf("kafka metadata of apply.transaction.topic %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	switch {
	case !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart || len(t.Partitions) == 0:
		return fmt.Errorf("apply.transaction.topic %s does not exist: the connector writes it with provide.transaction.metadata=true (create it with one partition, or check topic.transaction)", topic)
	case len(t.Partitions) != 1:
		return fmt.Errorf("apply.transaction.topic %s has %d partitions; it needs exactly one, which orders the source's transactions", topic, len(t.Partitions))
	}
	return nil
}

// CheckTransactionTopic is checkTransactionTopic for validate; nil in
// partition mode.
func (in *Inspector) CheckTransactionTopic(cfg *config.Config) error {
	if t := TransactionTopic(cfg); t != "" {
		return checkTransactionTopic(in.c, t)
	}
	return nil
}
