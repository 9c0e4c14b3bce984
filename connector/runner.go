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

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// Runner is one pgsink instance: a consumer group member that applies the
// partitions it is assigned.
type Runner struct {
	cfg         *config.Config
	pool        *pgxpool.Pool
	log         *zap.Logger
	metrics     *Metrics
	applier     *sink.Applier
	offsets     dedup.Offsets
	router      *sink.Router
	deadLetters *deadLetterTopic
	owner       string
	faults      faults.Hooks

	consumer *kafka.Consumer
	// workers is touched only by the poll goroutine (Run and the rebalance
	// callback it drives).
	workers map[dedup.PartitionID]*partition
	ready   atomic.Bool

	// buffered counts the key and value bytes fetched and not yet applied
	// (queued for a worker, or in its batch), across partitions, against
	// apply.max_buffered_bytes.
	buffered atomic.Int64

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
	// Owner names this instance in the offsets table; default host:pid.
	Owner string
	// Faults are the test-only hooks (internal/faults), off in production.
	Faults faults.Hooks
}

// New builds a Runner. It does not connect to Kafka until Run.
func New(cfg *config.Config, opts Options) (*Runner, error) {
	owner := opts.Owner
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	sinkOpts := sink.Options{
		Schema:       cfg.Postgres.Schema,
		StopOnError:  cfg.Errors.Tolerance == config.ToleranceNone,
		AsyncCommit:  cfg.Postgres.SynchronousCommit == config.SynchronousCommitOff,
		KafkaOffsets: cfg.Apply.Offsets == config.OffsetsKafka,
		Retry: sink.Retry{MaxAttempts: cfg.Apply.Retry.MaxAttempts, InitialBackoff: cfg.Apply.Retry.InitialBackoff.Std(),
			MaxBackoff: cfg.Apply.Retry.MaxBackoff.Std()},
	}
	hooks := opts.Faults
	sinkOpts.TestNoVersionGuard = hooks.NoVersionGuard()
	var auditHook func(b *pgx.Batch, records []debezium.Record)
	if hooks.Audit {
		auditHook = faults.AuditHook(cfg.Postgres.Schema)
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
		cfg: cfg, pool: opts.Pool, log: opts.Log, metrics: opts.Metrics, owner: owner, faults: hooks,
		offsets: dedup.NewOffsets(cfg.Postgres.Schema),
		router:  sink.NewRouter(cfg, opts.Pool),
		workers: map[dedup.PartitionID]*partition{},
		applier: sink.NewApplier(opts.Pool, sinkOpts),
	}
	if cfg.Errors.DeadLetter.Destination == config.DestinationTopic && cfg.Errors.Tolerance == config.ToleranceAll {
		producer, err := kafka.NewProducer(producerConfig(cfg))
		if err != nil {
			return nil, fmt.Errorf("dead-letter producer: %w", err)
		}
		r.deadLetters = &deadLetterTopic{producer: producer, topic: cfg.Errors.DeadLetter.Topic, metrics: opts.Metrics}
	}
	return r, nil
}

// consumerConfig passes every configured librdkafka property through and
// sets the ones pgsink's protocol depends on.
func consumerConfig(cfg *config.Config) *kafka.ConfigMap {
	m := kafka.ConfigMap{}
	for k, v := range cfg.Kafka {
		m[k] = v
	}
	// A configured topic Debezium has not created yet (it creates them on
	// the first event) is picked up at the next metadata refresh: librdkafka's
	// default of 5 minutes is too long a wait for the first rows of a table.
	if _, set := m["topic.metadata.refresh.interval.ms"]; !set {
		m["topic.metadata.refresh.interval.ms"] = 5000
	}
	// librdkafka prefetches into its own queue (64 MiB by default), outside
	// the Go heap: keep that at a quarter of apply.max_buffered_bytes, so
	// fetched-but-unapplied records stay within 1.25 times the budget
	// whatever the lag. The poll loop empties it as fast as it fills.
	if _, set := m["queued.max.messages.kbytes"]; !set && cfg.Apply.MaxBufferedBytes > 0 {
		m["queued.max.messages.kbytes"] = max(1024, int(cfg.Apply.MaxBufferedBytes/4/1024))
	}
	// pgsink's own buffer applies backpressure by not polling, so
	// librdkafka's queue reaching its limit is normal here, not a reason
	// to stop fetching a partition for librdkafka's default of a second:
	// with a 64 MiB budget that stall halved the drain rate (16,044 vs
	// 29,771 events/s, make bench's workload).
	if _, set := m["fetch.queue.backoff.ms"]; !set {
		m["fetch.queue.backoff.ms"] = 10
	}
	m["partition.assignment.strategy"] = "cooperative-sticky"
	if cfg.Apply.Offsets == config.OffsetsKafka {
		// At least once: the group's committed offsets are the positions.
		// A worker stores its partition's position only after the
		// PostgreSQL commit, and librdkafka commits what is stored in the
		// background, on revocation and on close, never past a batch not
		// applied. As in Kafka Connect, a crash re-applies what the last
		// commits did not cover (here at most a second); a synchronous
		// commit after every batch would cost a broker round trip each.
		m["auto.offset.reset"] = string(cfg.Apply.Start)
		m["enable.auto.offset.store"] = false
		m["enable.auto.commit"] = true
		if _, set := m["auto.commit.interval.ms"]; !set {
			m["auto.commit.interval.ms"] = 1000
		}
		return &m
	}
	// Positions come from PostgreSQL (I6): never let Kafka pick one.
	m["auto.offset.reset"] = "error"
	// Kafka's committed offsets only feed lag dashboards: store them after
	// each PostgreSQL commit and let librdkafka commit them in the background.
	m["enable.auto.offset.store"] = false
	m["enable.auto.commit"] = true
	return &m
}

func producerConfig(cfg *config.Config) *kafka.ConfigMap {
	m := kafka.ConfigMap{}
	for k, v := range cfg.Kafka {
		if k == "group.id" || k == "group.instance.id" || k == "session.timeout.ms" || k == "max.poll.interval.ms" {
			continue
		}
		m[k] = v
	}
	m["enable.idempotence"] = true
	m["acks"] = "all"
	return &m
}

// Ready reports whether the instance joined its group and PostgreSQL answers.
func (r *Runner) Ready(ctx context.Context) error {
	if !r.ready.Load() {
		return errors.New("not yet joined the consumer group")
	}
	return r.pool.Ping(ctx)
}

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
	c, err := kafka.NewConsumer(consumerConfig(r.cfg))
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	r.consumer = c
	topics, err := r.topics()
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
		} else if p.Tombstones+p.OutboxEvents > 0 {
			r.log.Info("ledgers pruned", zap.Int64("tombstones", p.Tombstones), zap.Int64("outbox_events", p.OutboxEvents))
		}
	})
	rescan := time.NewTicker(30 * time.Second)
	defer rescan.Stop()
	var full time.Time    // since when the buffer budget is spent
	var counted time.Time // how far that time is in pgsink_buffer_full_seconds_total
	for ctx.Err() == nil && r.fatalErr() == nil {
		select {
		case <-rescan.C:
			topics = r.resubscribe(topics)
		default:
		}
		if !full.IsZero() {
			now := time.Now()
			r.metrics.BufferFull.Add(now.Sub(counted).Seconds())
			counted = now
		}
		if r.buffered.Load() >= int64(r.cfg.Apply.MaxBufferedBytes) {
			// The workers hold the whole budget: stop taking messages
			// and let librdkafka's queue fill up to its own bound, which
			// stops its fetcher without losing what it prefetched (a
			// pause throws that away and fetches it again on resume).
			// Past budgetWait, pause every partition instead, so Poll
			// still serves the group's rebalances while the target is
			// slow.
			if full.IsZero() {
				full = time.Now()
				counted = full
			}
			if time.Since(full) < budgetWait {
				time.Sleep(time.Millisecond)
				r.service()
				continue
			}
			r.pauseAll()
		} else {
			full = time.Time{}
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			r.dispatch(ev)
		case kafka.Error:
			if ev.IsFatal() {
				r.setFatal(fmt.Errorf("kafka: %w", ev))
			} else {
				r.log.Warn("kafka error", zap.Error(ev))
			}
		}
		r.service()
	}
	r.shutdown()
	if err := c.Close(); err != nil {
		r.log.Warn("closing the consumer", zap.Error(err))
	}
	if r.deadLetters != nil {
		r.deadLetters.producer.Flush(5000)
		r.deadLetters.producer.Close()
	}
	return r.fatalErr()
}

// topics lists the named topics and, for topic_pattern tables, the
// cluster's topics that match (librdkafka's regex dialect is not Go's, so
// patterns are matched here).
func (r *Runner) topics() ([]string, error) {
	var md *kafka.Metadata
	for _, t := range r.cfg.Tables {
		if !t.TopicPattern.IsZero() {
			var err error
			if md, err = r.consumer.GetMetadata(nil, true, 10000); err != nil {
				return nil, fmt.Errorf("list topics for topic_pattern: %w", err)
			}
			break
		}
	}
	topics := configuredTopics(r.cfg, md)
	if len(topics) == 0 {
		return nil, errNoTopics
	}
	return topics, nil
}

// resubscribe picks up topics created since the last look that a
// topic_pattern matches.
func (r *Runner) resubscribe(current []string) []string {
	topics, err := r.topics()
	if err != nil || slices.Equal(topics, current) {
		return current
	}
	if err := r.consumer.SubscribeTopics(topics, r.rebalance); err != nil {
		r.log.Warn("resubscribe", zap.Error(err))
		return current
	}
	r.log.Info("subscription changed", zap.Strings("topics", topics))
	return topics
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

// dispatch hands a message to its partition's worker without blocking the
// poll loop: a full queue pauses the partition (backpressure) and keeps the
// message aside until the worker catches up.
//
// The buffer budget is not dispatch's to enforce: the poll loop stops
// polling once it is spent, so the message that crosses it is the last
// one taken and the overshoot is that one record. Pausing its partition
// as well cost the drain a second each time: librdkafka drops a paused
// partition's prefetched messages (librdkafka#5343), and the resumed
// partition's next fetch came 0.4-1 s later with every core idle, when
// the broker thread next decided what to fetch (confluent-kafka-go#630
// shows the same wait). make bench's drain had three or four such stalls
// in 23 s at the default budget.
func (r *Runner) dispatch(m *kafka.Message) {
	id := dedup.PartitionID{Group: r.group(), Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition}
	p := r.workers[id]
	if p == nil {
		r.metrics.Skipped.WithLabelValues(id.Topic, "not_owned").Inc()
		return
	}
	e := envelope{msg: m, gen: p.gen.Load(), at: time.Now()}
	r.buffered.Add(messageBytes(m))
	if len(p.overflow) == 0 {
		select {
		case p.in <- e:
			return
		default:
		}
	}
	p.overflow = append(p.overflow, e)
	if !p.paused {
		if err := r.consumer.Pause([]kafka.TopicPartition{m.TopicPartition}); err != nil {
			r.log.Warn("pause", zap.Error(err))
		}
		r.metrics.Pauses.WithLabelValues("queue_full").Inc()
		p.paused = true
	}
}

// budgetWait is how long the poll loop stops polling while the buffer
// budget is spent before it pauses the partitions instead: long enough to
// ride out the wait for a batch to commit, short enough that a rebalance
// is not held up.
const budgetWait = 500 * time.Millisecond

// pauseAll pauses every partition not paused yet; service resumes each
// once the budget and its queue have room.
func (r *Runner) pauseAll() {
	for _, p := range r.workers {
		if p.paused {
			continue
		}
		topic := p.id.Topic
		if err := r.consumer.Pause([]kafka.TopicPartition{{Topic: &topic, Partition: p.id.Partition}}); err != nil {
			r.log.Warn("pause", zap.Error(err))
			continue
		}
		r.metrics.Pauses.WithLabelValues("buffer_full").Inc()
		p.paused = true
	}
}

// service runs the poll loop's periodic duties: seeks the workers asked
// for, and resuming partitions whose queue drained.
func (r *Runner) service() {
	r.metrics.Buffered.Set(float64(r.buffered.Load()))
	r.mu.Lock()
	seeks := r.seeks
	r.seeks = nil
	r.mu.Unlock()
	for _, s := range seeks {
		if r.workers[s.p.id] != s.p {
			continue
		}
		s.p.gen.Add(1)
		for _, e := range s.p.overflow {
			r.buffered.Add(-messageBytes(e.msg))
		}
		s.p.overflow = nil
		topic := s.p.id.Topic
		tp := kafka.TopicPartition{Topic: &topic, Partition: s.p.id.Partition, Offset: kafka.Offset(s.offset)}
		if err := r.consumer.Seek(tp, 0); err != nil {
			r.fatalf(s.p.log, "seek after a moved position", err)
		}
		s.p.seeking.Store(false)
	}
	for _, p := range r.workers {
		if !p.paused {
			continue
		}
		for len(p.overflow) > 0 {
			select {
			case p.in <- p.overflow[0]:
				p.overflow = p.overflow[1:]
				continue
			default:
			}
			break
		}
		if len(p.overflow) == 0 && len(p.in) < cap(p.in)/2 && r.buffered.Load() <= int64(r.cfg.Apply.MaxBufferedBytes)/2 {
			topic := p.id.Topic
			if err := r.consumer.Resume([]kafka.TopicPartition{{Topic: &topic, Partition: p.id.Partition}}); err != nil {
				r.log.Warn("resume", zap.Error(err))
			}
			p.paused = false
		}
	}
}

// pruneInterval is how often each instance prunes the ledgers; pruning is
// idempotent and skips rows other transactions hold, so instances need not
// coordinate.
const pruneInterval = 10 * time.Minute

func messageBytes(m *kafka.Message) int64 { return int64(len(m.Key) + len(m.Value)) }

func (r *Runner) requestSeek(p *partition, offset int64) {
	p.seeking.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seeks = append(r.seeks, seekRequest{p: p, offset: offset})
}

// committed records a batch's commit: the lag gauge, and the offset stored
// for librdkafka's background commit (lag dashboards only, I6).
func (r *Runner) committed(p *partition, next int64) {
	topic := p.id.Topic
	tp := kafka.TopicPartition{Topic: &topic, Partition: p.id.Partition, Offset: kafka.Offset(next)}
	r.faults.Failpoints.Hit("after-commit")
	// With apply.offsets: kafka the stored offset is the position (at
	// least once: librdkafka commits it in the background); otherwise it
	// only feeds lag dashboards.
	if _, err := r.consumer.StoreOffsets([]kafka.TopicPartition{tp}); err != nil {
		if r.cfg.Apply.Offsets == config.OffsetsKafka {
			p.log.Warn("store offset (apply.offsets: kafka): the batch may be applied again after a restart", zap.Error(err))
		} else {
			p.log.Debug("store offset for lag", zap.Error(err))
		}
	}
	if _, armed := r.faults.Failpoints["after-kafka-commit"]; armed {
		// Commit now rather than at the next auto-commit, so the point is
		// really after Kafka holds the offset.
		if _, err := r.consumer.CommitOffsets([]kafka.TopicPartition{tp}); err != nil {
			p.log.Debug("commit offset for lag", zap.Error(err))
		}
		r.faults.Failpoints.Hit("after-kafka-commit")
	}
	if _, high, err := r.consumer.GetWatermarkOffsets(topic, p.id.Partition); err == nil && high >= next {
		r.metrics.Lag.WithLabelValues(p.labels[0], p.labels[1]).Set(float64(high - next))
	}
}

func (r *Runner) group() string { return r.cfg.Kafka["group.id"] }

// rebalance is the consumer's rebalance callback, run inside Poll.
func (r *Runner) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		r.metrics.Rebalances.WithLabelValues("assigned").Inc()
		r.assign(c, e.Partitions)
		r.ready.Store(true)
	case kafka.RevokedPartitions:
		lost := c.AssignmentLost()
		kind := "revoked"
		if lost {
			kind = "lost"
		}
		r.metrics.Rebalances.WithLabelValues(kind).Inc()
		r.revoke(e.Partitions, lost)
		if r.cfg.Apply.Offsets == config.OffsetsKafka && !lost {
			// The workers stored their last positions: commit them now,
			// so the next owner does not apply those batches again.
			var kerr kafka.Error
			if _, err := c.Commit(); err != nil && !(errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset) {
				r.log.Warn("commit positions of revoked partitions (apply.offsets: kafka)", zap.Error(err))
			}
		}
		if err := c.IncrementalUnassign(e.Partitions); err != nil {
			r.setFatal(fmt.Errorf("incremental unassign: %w", err))
		}
	}
	return nil
}

// assign claims each new partition in PostgreSQL (a new epoch: any former
// owner is fenced from now on) and assigns it at the stored position. It
// always assigns, even when a claim fails: returning without assigning would
// make the client fall back to Kafka's committed offsets. A partition that
// cannot be claimed is assigned paused and the instance stops.
func (r *Runner) assign(c *kafka.Consumer, tps []kafka.TopicPartition) {
	assign := make([]kafka.TopicPartition, 0, len(tps))
	var pause []kafka.TopicPartition
	for _, tp := range tps {
		id := dedup.PartitionID{Group: r.group(), Topic: *tp.Topic, Partition: tp.Partition}
		log := r.log.With(zap.String("topic", id.Topic), zap.Int32("partition", id.Partition))
		claim, low, high, err := r.claim(c, id)
		if err != nil {
			r.fatalf(log, "claim partition", err)
			tp.Offset = kafka.OffsetEnd
			assign = append(assign, tp)
			pause = append(pause, tp)
			continue
		}
		tp.Offset = kafka.Offset(claim.NextOffset)
		assign = append(assign, tp)
		p := r.startPartition(id, claim, log)
		if claim.NextOffset < low || claim.NextOffset > high {
			p.fail("the stored offset is outside what Kafka holds", fmt.Errorf(
				"stored next offset %d, Kafka has [%d, %d): the records in between were deleted (retention) or the topic was recreated; replay the table (pgsink replay --from earliest) to rebuild it",
				claim.NextOffset, low, high))
			pause = append(pause, tp)
		}
		log.Info("partition claimed", zap.Int64("epoch", claim.Epoch), zap.Int64("next_offset", claim.NextOffset))
	}
	if err := c.IncrementalAssign(assign); err != nil {
		r.setFatal(fmt.Errorf("incremental assign: %w", err))
		return
	}
	// A partition this instance paused for backpressure before it was
	// revoked may come back still paused in the client: resume every newly
	// assigned one, then pause those that must wait.
	if err := c.Resume(assign); err != nil {
		r.log.Warn("resume assigned partitions", zap.Error(err))
	}
	if len(pause) > 0 {
		if err := c.Pause(pause); err != nil {
			r.log.Warn("pause", zap.Error(err))
		}
	}
	r.metrics.Owned.Set(float64(len(r.workers)))
}

// claim resolves the start position for a partition without a row and
// claims it, retrying PostgreSQL errors for a while.
func (r *Runner) claim(c *kafka.Consumer, id dedup.PartitionID) (dedup.Claim, int64, int64, error) {
	low, high, err := c.QueryWatermarkOffsets(id.Topic, id.Partition, 10000)
	if err != nil {
		return dedup.Claim{}, 0, 0, fmt.Errorf("watermarks of %s: %w", id, err)
	}
	start := low
	if r.cfg.Apply.Start == config.StartLatest {
		start = high
	}
	if r.cfg.Apply.Offsets == config.OffsetsKafka {
		return r.kafkaPosition(c, id, start, low, high)
	}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		claim, err := r.offsets.Claim(ctx, r.pool, id, start, r.owner)
		cancel()
		if err == nil {
			return claim, low, high, nil
		}
		if attempt == 5 {
			return dedup.Claim{}, 0, 0, err
		}
		r.log.Warn("claim failed, retrying", zap.Stringer("partition", id), zap.Error(err))
		time.Sleep(backoff)
		backoff *= 2
	}
}

// kafkaPosition is claim for apply.offsets: kafka: the group's committed
// offset, or start when it has none. There is no epoch and no fencing: two
// instances may apply a partition for a moment during a rebalance, which
// at-least-once accepts.
func (r *Runner) kafkaPosition(c *kafka.Consumer, id dedup.PartitionID, start, low, high int64) (dedup.Claim, int64, int64, error) {
	topic := id.Topic
	committed, err := c.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: id.Partition}}, 10000)
	if err != nil {
		return dedup.Claim{}, 0, 0, fmt.Errorf("committed offset of %s: %w", id, err)
	}
	next := start
	if len(committed) == 1 && committed[0].Offset >= 0 {
		next = int64(committed[0].Offset)
	}
	return dedup.Claim{PartitionID: id, NextOffset: next, Owner: r.owner}, low, high, nil
}

func (r *Runner) startPartition(id dedup.PartitionID, claim dedup.Claim, log *zap.Logger) *partition {
	ctx, cancel := context.WithCancel(context.Background())
	queue := max(2*r.cfg.Apply.Batch.MaxRecords, 64)
	p := &partition{
		r: r, id: id, claim: claim, in: make(chan envelope, queue), log: log,
		labels:   [2]string{id.Topic, partitionLabel(id.Partition)},
		stopping: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	p.decoder = r.router.NewDecoder()
	r.workers[id] = p
	r.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(0)
	go p.run()
	return p
}

// revoke stops the workers of revoked partitions. A revoked partition
// finishes its batch in flight (bounded by the shutdown timeout); a lost one
// is abandoned at once: another instance may own it already, and its epoch
// fences anything this one would still write.
func (r *Runner) revoke(tps []kafka.TopicPartition, lost bool) {
	var stopping []*partition
	for _, tp := range tps {
		id := dedup.PartitionID{Group: r.group(), Topic: *tp.Topic, Partition: tp.Partition}
		p := r.workers[id]
		if p == nil {
			continue
		}
		delete(r.workers, id)
		if lost {
			p.cancel()
		} else {
			close(p.stopping)
		}
		stopping = append(stopping, p)
	}
	r.wait(stopping)
	r.metrics.Owned.Set(float64(len(r.workers)))
}

// wait waits for workers to finish, abandoning them at the shutdown timeout.
func (r *Runner) wait(ps []*partition) {
	deadline := time.After(r.cfg.ShutdownTimeout.Std())
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline:
			p.log.Warn("batch in flight not finished within shutdown_timeout: abandoning it (its transaction rolls back)")
			p.cancel()
			<-p.done
		}
		p.cancel()
		r.release(p)
		r.metrics.Lag.DeleteLabelValues(p.labels[0], p.labels[1])
	}
}

// release returns the buffer budget of a stopped worker's unread records.
func (r *Runner) release(p *partition) {
	for {
		select {
		case e := <-p.in:
			r.buffered.Add(-messageBytes(e.msg))
			continue
		default:
		}
		break
	}
	for _, e := range p.overflow {
		r.buffered.Add(-messageBytes(e.msg))
	}
	p.overflow = nil
}

// shutdown finishes every worker's batch in flight and stops them.
func (r *Runner) shutdown() {
	var all []*partition
	for id, p := range r.workers {
		close(p.stopping)
		all = append(all, p)
		delete(r.workers, id)
	}
	r.wait(all)
	r.log.Info("workers stopped", zap.Int("partitions", len(all)))
}
