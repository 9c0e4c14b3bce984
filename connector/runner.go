package connector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgsink/pgsink/internal/faults"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
	"go.uber.org/zap"
)

// Runner is one pgsink instance: a consumer group member that applies the
// partitions it is assigned.
type Runner struct {
	// unavailable says, while partitions and the resolver retry a target
	// that is down, that they do.
	unavailable *unavailableReporter
	cfg         *config.Config
	pool        *pgxpool.Pool
	log         *zap.Logger
	metrics     *Metrics
	router      *sink.Router
	// schemas is the schema registry (nil without schema_registry.url),
	// shared by the partitions' decoders and the resolver's markers.
	schemas     debezium.SchemaSource
	applier     *sink.Applier
	positions   storedPositions
	deadLetters *deadLetterTopic
	owner       string
	faults      faults.Hooks
	// deps are what every partition worker is built with.
	deps *workerDeps
	// txDeps are the resolver's, for the transaction topic's partition
	// (apply.consistency: transaction); nil otherwise.
	txDeps *workerDeps
	// local is the local path's store (apply.transaction.
	// direct_local_partitions); nil when it is off.
	local *txlocal.Store

	consumer consumer
	// runCtx is Run's: it ends at shutdown, and with it the retries of a
	// claim that failed (claimer).
	runCtx context.Context
	// workers is touched only by the poll goroutine (Run and the rebalance
	// callback it drives).
	workers map[dedup.PartitionID]*partition
	// awaiting are the assigned partitions whose claim found the target
	// unavailable, held paused without a worker until claimAwaiting claims
	// them or a revocation drops them; the poll goroutine's alone, as
	// workers.
	awaiting awaitingClaims
	// claimStore, when set, is where claims go instead of the offsets
	// table (tests).
	claimStore bulkPositions
	// stops are the owned partitions stopped on an error, read by Ready
	// from the HTTP server's goroutines.
	stops stoppedPartitions
	ready atomic.Bool

	// buffered counts the key and value bytes fetched and not yet applied
	// (queued for a worker, or in its batch), across partitions, against
	// apply.max_buffered_bytes.
	buffered atomic.Int64
	// markerBytes counts the same for the transaction topic's partition,
	// apart: its markers wait in its queue while the resolver waits at an
	// END for the data partitions' records, and counted in buffered they
	// kept the budget spent with every data partition paused and nothing
	// to apply, which nothing could end (markerBudget bounds them instead).
	markerBytes atomic.Int64
	// fullSince is since when the budget is spent (zero while it is not),
	// fullCounted how far that time is in pgsink_buffer_full_seconds_total.
	// The poll loop's alone.
	fullSince, fullCounted time.Time
	// anyPaused is set when a partition is paused and recomputed by
	// service's walk over them; owned by the poll loop.
	anyPaused bool
	// holes is the poll loop's watch for partitions whose next offset
	// Kafka deleted (holes.go).
	holes holeWatch

	mu    sync.Mutex
	seeks []seekRequest
	fatal error
}

type seekRequest struct {
	p      *partition
	offset int64
}

// Options are what a Runner needs besides its configuration.
type Options struct {
	Pool    *pgxpool.Pool
	Log     *zap.Logger
	Metrics *Metrics
	// Owner names this instance in the offsets table; default its
	// instance name, or host:pid for a dynamic member.
	Owner string
	// Faults are the test-only hooks (internal/faults), off in production.
	Faults faults.Hooks
}

// New builds a Runner. It does not connect to Kafka until Run.
func New(cfg *config.Config, opts Options) (*Runner, error) {
	owner := opts.Owner
	if owner == "" {
		owner = cfg.Instance.Name
	}
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	sinkOpts := sink.Options{
		Schema:                     cfg.Postgres.Schema,
		StopOnError:                cfg.Errors.Tolerance == config.ToleranceNone,
		AsyncCommit:                cfg.Postgres.SynchronousCommit == config.SynchronousCommitOff,
		KafkaOffsets:               cfg.Apply.Offsets == config.OffsetsKafka,
		StagingTablesPerConnection: cfg.Postgres.StagingTablesPerConnection,
		Retry: sink.Retry{MaxAttempts: cfg.Apply.Retry.MaxAttempts, InitialBackoff: cfg.Apply.Retry.InitialBackoff.Std(),
			MaxBackoff: cfg.Apply.Retry.MaxBackoff.Std()},
	}
	var unavailableAttempts prometheus.Counter
	if opts.Metrics != nil {
		unavailableAttempts = opts.Metrics.UnavailableRetries
	}
	unavailable := newUnavailableReporter(opts.Log, unavailableAttempts)
	sinkOpts.Retry.OnUnavailable = unavailable.report
	hooks := opts.Faults
	sinkOpts.TestNoVersionGuard = hooks.NoVersionGuard()
	var auditHook func(b *pgx.Batch, records []debezium.Record)
	if hooks.Audit {
		auditHook = faults.AuditHook(cfg.Postgres.Schema)
	}
	if hooks.PanicWhere == "apply" {
		sinkOpts.TestPanicOn = func(rec debezium.Record) bool { return hooks.PanicsOn("apply", rec.Value) }
	}
	if hooks.Audit || len(hooks.Failpoints) > 0 {
		// The hook runs when the transaction's last round trip, with its
		// COMMIT, is about to be sent: the before-commit failpoint kills
		// the process with the transaction open (or not begun, for a
		// batch that fits in one round trip), never committed.
		sinkOpts.BeforeCommit = func(b *pgx.Batch, records []debezium.Record) {
			if auditHook != nil {
				auditHook(b, records)
			}
			hooks.Failpoints.Hit("before-commit")
		}
	}
	r := &Runner{
		unavailable: unavailable,
		cfg:         cfg, pool: opts.Pool, log: opts.Log, metrics: opts.Metrics, owner: owner, faults: hooks,
		positions:   storedPositions{offsets: dedup.NewOffsets(cfg.Postgres.Schema), db: opts.Pool, owner: owner},
		router:      sink.NewRouter(cfg, opts.Pool),
		deadLetters: &deadLetterTopic{group: cfg.Kafka["group.id"], owner: owner, metrics: opts.Metrics},
		workers:     map[dedup.PartitionID]*partition{},
	}
	r.router.OnSchemaChange(func(c sink.SchemaChange) { reportSchemaChange(opts.Log, opts.Metrics, c) })
	schemas, err := useSchemaRegistry(cfg, r.router)
	if err != nil {
		return nil, err
	}
	r.schemas = schemas
	if cfg.Errors.DeadLetter.Destination == config.DestinationTopic && cfg.Errors.Tolerance == config.ToleranceAll {
		pc := producerConfig(cfg)
		logs := logsToChannel(pc)
		producer, err := kafka.NewProducer(pc)
		if err != nil {
			return nil, fmt.Errorf("dead-letter producer: %w", err)
		}
		if logs {
			go forwardClientLogs(producer.Logs(), opts.Log.Named("librdkafka"))
		}
		r.deadLetters.producer, r.deadLetters.topic = producer, cfg.Errors.DeadLetter.Topic
	}
	sinkOpts.StageTransactions = TransactionTopic(cfg) != ""
	r.applier = sink.NewApplier(opts.Pool, sinkOpts)
	r.deps = &workerDeps{
		batch: cfg.Apply.Batch, kafkaOffsets: cfg.Apply.Offsets == config.OffsetsKafka, fenceGrace: fenceGrace,
		applier: r.applier, positions: r.positions, router: r.router,
		deadLetters: r.deadLetters, metrics: opts.Metrics, loop: r, warned: &warnOnce{},
		decodedSeed: newDecodedEstimate(nil),
		pipeline:    cfg.Apply.Pipeline, spareConnection: r.applier.HasIdleConnection,
		outage: r.outage(),
	}
	if sinkOpts.StageTransactions {
		if cfg.Apply.Transaction.DirectLocalPartitions {
			// A partition may hold an eighth of the buffer budget for the
			// resolver, all of them half of it: the rest keeps fetching
			// what the resolver waits for.
			budget := int64(cfg.Apply.MaxBufferedBytes)
			r.local = txlocal.New(budget/8, budget/2)
			r.deps.local = r.local
			opts.Metrics.Tx.store.Store(r.local)
		}
		r.txDeps = r.resolverDeps(sinkOpts)
		r.deps.frontier = stagingFrontier{tx: dedup.NewTransactions(cfg.Postgres.Schema), db: opts.Pool}
		resets := stagingGenerations{tx: dedup.NewTransactions(cfg.Postgres.Schema), pool: opts.Pool}
		if hooks.Audit {
			resets.within = func(id dedup.PartitionID) func(context.Context, pgx.Tx, int64, int64) error {
				return func(ctx context.Context, tx pgx.Tx, from, to int64) error {
					return faults.AuditRewound(ctx, tx, cfg.Postgres.Schema, id.Topic, id.Partition, from, to)
				}
			}
		}
		r.deps.resets = resets
		r.deps.maxStaged = int64(cfg.Apply.Transaction.MaxStagedBytes)
	}
	if hooks.PanicWhere == "decode" {
		r.deps.panicOn = func(rec debezium.Record) {
			if hooks.PanicsOn("decode", rec.Value) {
				panic(fmt.Sprintf("%s: record at offset %d", faults.PanicEnv, rec.Offset))
			}
		}
	}
	return r, nil
}

// Ready reports whether the instance joined its group and PostgreSQL answers.
func (r *Runner) Ready(ctx context.Context) error {
	if !r.ready.Load() {
		return errors.New("not yet joined the consumer group")
	}
	if err := r.stops.err(); err != nil {
		return err
	}
	return r.pool.Ping(ctx)
}

// stopped notes a stopped partition for Ready (pollLoop).
func (r *Runner) stopped(p *partition, reason string) { r.stops.add(p.id, p.claim.NextOffset, reason) }

// resumed forgets the stop of a partition a replay un-stopped (pollLoop).
func (r *Runner) resumed(p *partition) { r.stops.clear(p.id) }

// Run consumes until ctx ends (a graceful shutdown: batches in flight are
// finished, the group is left) or a fatal error.
func (r *Runner) Run(ctx context.Context) error {
	if r.faults.Audit {
		if err := faults.CreateAudit(ctx, r.pool, r.cfg.Postgres.Schema); err != nil {
			return err
		}
		r.log.Warn("apply audit on (" + faults.AuditEnv + "=1): every applied record is also written to " + faults.AuditTable(r.cfg.Postgres.Schema))
	}
	if r.faults.Break != "" {
		r.log.Warn("pgsink broken on purpose (" + faults.BreakEnv + "=" + r.faults.Break + "): for the fault suite's self-test only")
	}
	if len(r.faults.Failpoints) > 0 {
		r.log.Warn("failpoints armed ("+faults.FailpointEnv+"): this process will kill itself", zap.Any("failpoints", r.faults.Failpoints))
	}
	cc := memberConfig(r.cfg, r.owner)
	logs := logsToChannel(cc)
	c, err := kafka.NewConsumer(cc)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	if logs {
		go forwardClientLogs(c.Logs(), r.log.Named("librdkafka"))
	}
	r.consumer, r.runCtx = c, ctx
	topics, err := r.topics(c)
	if err != nil {
		c.Close()
		return err
	}
	if err := c.SubscribeTopics(topics, r.rebalance); err != nil {
		c.Close()
		return fmt.Errorf("subscribe %v: %w", topics, err)
	}
	r.log.Info("consumer started", zap.Strings("topics", topics), zap.String("owner", r.owner))
	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	go dedup.NewLedgers(r.cfg.Postgres.Schema).PruneEvery(pruneCtx, r.pool, dedup.Retention{
		Tombstones: r.cfg.Retention.Tombstones.Std(), OutboxEvents: r.cfg.Retention.OutboxEvents.Std(),
	}, pruneInterval, func(p dedup.Pruned, err error) {
		if err != nil {
			r.log.Warn("pruning the ledgers", zap.Error(err))
		} else if p.Tombstones+p.OutboxEvents+p.MovedRows+p.TxResolved+p.TxSchemas > 0 {
			r.log.Info("ledgers pruned", zap.Int64("tombstones", p.Tombstones), zap.Int64("outbox_events", p.OutboxEvents), zap.Int64("moved_rows", p.MovedRows),
				zap.Int64("tx_resolved", p.TxResolved), zap.Int64("tx_schemas", p.TxSchemas))
		}
	})
	if err := r.startSweeper(pruneCtx); err != nil {
		c.Close()
		return err
	}
	// clientFailed: librdkafka raised a fatal error; the client is unusable.
	clientFailed := false
	// One clock reading per message, taken when Poll returns: it stamps
	// the message's dispatch and is the next turn's "now" for the rescan
	// and the budget. Reading the clock for each of them (a ticker's
	// channel reads it too) was several percent of a drain's CPU.
	now := time.Now()
	rescan := now.Add(rescanEvery)
	for ctx.Err() == nil && r.fatalErr() == nil {
		if !now.Before(rescan) {
			topics = r.resubscribe(c, topics)
			now = time.Now()
			rescan = now.Add(rescanEvery)
		}
		if !r.mayPoll(now) {
			time.Sleep(time.Millisecond)
			r.service()
			now = time.Now()
			continue
		}
		ev := c.Poll(100)
		now = time.Now()
		switch ev := ev.(type) {
		case *kafka.Message:
			r.dispatchAt(ev, now)
		case *kafka.Stats:
			logKafkaStats(r.log, ev.String())
		case kafka.Error:
			clientFailed = clientFailed || ev.IsFatal()
			if ev.Code() == kafka.ErrFencedInstanceID || ev.Code() == kafka.ErrUnreleasedInstanceID {
				r.setFatal(r.nameTaken(ev))
			} else if ev.IsFatal() {
				r.setFatal(fmt.Errorf("kafka: %w", ev))
			} else if ev.Code() == kafka.ErrAutoOffsetReset {
				r.suspectHole(ev)
			} else {
				r.log.Warn("kafka error", zap.Error(ev))
			}
		}
		r.service()
		r.claimAwaiting(c, now)
		r.lookForHoles(c, now)
	}
	r.shutdown()
	r.close(c, clientFailed)
	if r.deadLetters.producer != nil {
		r.deadLetters.producer.Flush(5000)
		r.deadLetters.producer.Close()
	}
	return r.fatalErr()
}

// rescanEvery is how often the poll loop looks for new topics a
// topic_pattern matches.
const rescanEvery = 30 * time.Second

// close leaves the group and closes the client. confluent-kafka-go's Close
// waits forever for a close librdkafka refuses to start after a fatal error
// (confluent-kafka-go#1588, fixed after the version used), and the fatal
// error may not have reached Poll yet when another error stopped the
// instance: such a client is left to the process's exit, which ends its
// connections; the group dropped it already.
func (r *Runner) close(c *kafka.Consumer, failed bool) {
	if failed {
		r.log.Warn("the Kafka client failed: not closing it")
		return
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			r.log.Warn("closing the consumer", zap.Error(err))
		}
	case <-time.After(r.cfg.ShutdownTimeout.Std()):
		r.log.Warn("closing the consumer did not finish within shutdown_timeout: leaving it to the exit")
	}
}

// topics lists the named topics and, for topic_pattern tables, the
// cluster's topics that match (librdkafka's regex dialect is not Go's, so
// patterns are matched here).
func (r *Runner) topics(c *kafka.Consumer) ([]string, error) {
	var md *kafka.Metadata
	for _, t := range r.cfg.Tables {
		if !t.TopicPattern.IsZero() {
			var err error
			if md, err = c.GetMetadata(nil, true, 10000); err != nil {
				return nil, fmt.Errorf("list topics for topic_pattern: %w", err)
			}
			break
		}
	}
	topics := configuredTopics(r.cfg, md)
	if t := TransactionTopic(r.cfg); t != "" {
		if err := checkTransactionTopic(c, t); err != nil {
			return nil, err
		}
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return nil, errNoTopics
	}
	return topics, nil
}

// resubscribe picks up topics created since the last look that a
// topic_pattern matches.
func (r *Runner) resubscribe(c *kafka.Consumer, current []string) []string {
	topics, err := r.topics(c)
	if err != nil || slices.Equal(topics, current) {
		return current
	}
	if err := c.SubscribeTopics(topics, r.rebalance); err != nil {
		r.log.Warn("resubscribe", zap.Error(err))
		return current
	}
	r.log.Info("subscription changed", zap.Strings("topics", topics))
	return topics
}

// nameTaken explains the broker refusing this static member: another
// process holds its instance name. A paused process (a zombie) meets it when
// it wakes after its replacement joined; the epochs in the offsets table
// already fence whatever it would still write (I2), and it stops here.
func (r *Runner) nameTaken(ev kafka.Error) error {
	return fmt.Errorf("kafka: another process is a group member under instance.name %q, so this one stops (two running instances must never share a name; under group.protocol=consumer a crashed one's name is held until its session times out): %w",
		r.cfg.Instance.Name, ev)
}

func (r *Runner) setFatal(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal == nil {
		r.fatal = err
	}
}

func (r *Runner) fatalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

func (r *Runner) fatalf(log *zap.Logger, what string, err error) {
	log.Error(what+": stopping the instance", zap.Error(err))
	r.setFatal(fmt.Errorf("%s: %w", what, err))
}

// pruneInterval is how often each instance prunes the ledgers; pruning is
// idempotent and skips rows other transactions hold, so instances need not
// coordinate.
const pruneInterval = 10 * time.Minute

// outage is how the instance waits out a target that is down outside an
// apply: on the schedule of apply.retry's backoff, told to the instance's
// reporter.
func (r *Runner) outage() outageWait {
	return outageWait{report: r.unavailable, initial: r.cfg.Apply.Retry.InitialBackoff.Std(), maximum: r.cfg.Apply.Retry.MaxBackoff.Std()}
}

func (r *Runner) group() string { return r.cfg.Kafka["group.id"] }
