package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// storedPositions are this instance's rows in the offsets table.
type storedPositions struct {
	offsets dedup.Offsets
	db      interface {
		dedup.DB
		dedup.Querier
	}
	owner string
}

func (s storedPositions) Read(ctx context.Context, id dedup.PartitionID) (dedup.Claim, error) {
	return s.offsets.Read(ctx, s.db, id)
}

func (s storedPositions) Claim(ctx context.Context, id dedup.PartitionID, start int64) (dedup.Claim, error) {
	return s.offsets.Claim(ctx, s.db, id, start, s.owner)
}

func (s storedPositions) ClaimAll(ctx context.Context, starts []dedup.Start) ([]dedup.Claim, error) {
	return s.offsets.ClaimAll(ctx, s.db, starts, s.owner)
}

func (s storedPositions) MarkStopped(ctx context.Context, c dedup.Claim, reason string) error {
	return s.offsets.MarkStopped(ctx, s.db, c, reason)
}

// rebalance is the consumer's rebalance callback, run inside Poll. Under the
// classic protocol (cooperative-sticky) and under KIP-848's consumer
// protocol alike, librdkafka delivers incremental assignments and
// revocations, so the same incremental calls apply.
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

// assign claims the new partitions in PostgreSQL (a new epoch each: any
// former owner is fenced from now on), all together (claimer), and assigns
// them at their stored positions. It always assigns, even when a claim
// fails: returning without assigning would make the client fall back to
// Kafka's committed offsets. A partition that cannot be claimed is assigned
// paused and the instance stops; one whose claim was ended by the instance
// stopping or the group taking the assignment away is assigned paused,
// without a worker, and left to the shutdown or the revocation that
// follows. One whose claim found the target unavailable is assigned
// paused and awaits its claim in the poll loop (claimAwaiting): the
// callback does not wait for the outage, so Poll keeps the member in its
// group meanwhile.
func (r *Runner) assign(c *kafka.Consumer, tps []kafka.TopicPartition) {
	ids := make([]dedup.PartitionID, len(tps))
	for i, tp := range tps {
		ids[i] = dedup.PartitionID{Group: r.group(), Topic: *tp.Topic, Partition: tp.Partition}
	}
	began := time.Now()
	claims := r.claimer(c.AssignmentLost).claimAll(c, ids)
	awaiting := 0
	for _, cl := range claims {
		if errors.Is(cl.err, errAwaitingTarget) {
			awaiting++
		}
	}
	r.log.Info("partitions claimed", zap.Int("partitions", len(ids)-awaiting), zap.Int("awaiting_target", awaiting), zap.Duration("took", time.Since(began)))
	assign := make([]kafka.TopicPartition, 0, len(tps))
	var pause []kafka.TopicPartition
	for i, tp := range tps {
		cl := claims[i]
		log := r.log.With(zap.String("topic", cl.id.Topic), zap.Int32("partition", cl.id.Partition))
		if errors.Is(cl.err, errAwaitingTarget) {
			log.Warn("partition not claimed yet: the target is unavailable; assigned paused, claimed once the target is back (pgsink_partitions_awaiting_claim)")
			tp.Offset = kafka.OffsetEnd
			assign = append(assign, tp)
			pause = append(pause, tp)
			r.await(cl.id, began)
			continue
		}
		if errors.Is(cl.err, sink.ErrStopping) {
			log.Warn("partition not claimed: the instance is stopping, or the group took the assignment away, while its claim was retried; assigned paused until it is revoked", zap.Error(cl.err))
			tp.Offset = kafka.OffsetEnd
			assign = append(assign, tp)
			pause = append(pause, tp)
			continue
		}
		if cl.err != nil {
			r.fatalf(log, "claim partition", cl.err)
			tp.Offset = kafka.OffsetEnd
			assign = append(assign, tp)
			pause = append(pause, tp)
			continue
		}
		tp.Offset = kafka.Offset(cl.claim.NextOffset)
		assign = append(assign, tp)
		if !r.begin(c, cl, log) {
			pause = append(pause, tp)
		}
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

// begin starts the worker of a claimed partition, or stops it at once when
// its stored position lies outside what Kafka holds (then false: the
// partition must stay paused).
//
// The watermarks in cl were read before the claim, so a position that the
// previous owner moved in between (a zombie the group dropped, still
// applying until the claim fences it; an owner that finished its batch
// after they were read) may lie past a high watermark read too early, and
// the low one only grows: what decides is a read after the claim.
// Positions only grow and a record is applied only once Kafka holds it, so
// a position inside the fresh watermarks was never outside what Kafka
// holds. A fresh read that fails stops the instance instead: the restart
// claims again, where stopping the partition would tell the operator to
// replay a table on a reading nothing confirmed.
func (r *Runner) begin(client offsetsClient, cl claimed, log *zap.Logger) bool {
	claim := cl.claim
	if outside(claim.NextOffset, cl.low, cl.high) {
		low, high, err := client.QueryWatermarkOffsets(cl.id.Topic, cl.id.Partition, watermarkTimeoutMs)
		if err != nil {
			r.fatalf(log, "read the watermarks again", fmt.Errorf("stored next offset %d lies outside [%d, %d) read before the claim, and reading them again failed: %w",
				claim.NextOffset, cl.low, cl.high, err))
			return false
		}
		cl.low, cl.high = low, high
	}
	if outside(claim.NextOffset, cl.low, cl.high) {
		// Stopped before its worker runs, which then only parks: a
		// running worker owns the claim that fail reads (a staging
		// rewind at its start moves it) and would go on with its checks.
		p := r.addPartition(cl.id, claim, log)
		p.fail("the stored offset is outside what Kafka holds", fmt.Errorf(
			"stored next offset %d, Kafka has [%d, %d): the records in between were deleted (retention) or the topic was recreated; replay the table (pgsink replay --from earliest) to rebuild it",
			claim.NextOffset, cl.low, cl.high))
		p.pausedAtClaim = true
		go p.parked()
		return false
	}
	r.startPartition(cl.id, claim, log)
	log.Info("partition claimed", zap.Int64("epoch", claim.Epoch), zap.Int64("next_offset", claim.NextOffset))
	return true
}

// parked is the goroutine of a partition stopped before its worker ran
// (begin): it drains the partition's input until it is revoked, as a
// stopped worker does, or until a replay rewinds it: re-claimed, it then
// runs the worker from the rewound position (the poll loop resumes the
// partition with the seek: pausedAtClaim).
func (p *partition) parked() {
	if p.park() {
		p.run()
		return
	}
	close(p.done)
}

// outside reports a next offset Kafka cannot serve: below the low
// watermark (deleted), or past the high one (never written).
func outside(next, low, high int64) bool { return next < low || next > high }

// claimer claims this instance's assignments; lost reports that the group
// took the assignment being claimed away.
func (r *Runner) claimer(lost func() bool) claimer {
	return claimer{
		start: r.cfg.Apply.Start, kafkaOffsets: r.cfg.Apply.Offsets == config.OffsetsKafka, owner: r.owner,
		store: r.claims(), log: r.log, firstWait: time.Second, claimFor: claimRetryFor,
		outage: r.outage(), ctx: r.runCtx, lost: lost,
	}
}

// claims is where the instance claims partitions: the offsets table, or a
// test's fake.
func (r *Runner) claims() bulkPositions {
	if r.claimStore != nil {
		return r.claimStore
	}
	return r.positions
}

func (r *Runner) startPartition(id dedup.PartitionID, claim dedup.Claim, log *zap.Logger) *partition {
	p := r.addPartition(id, claim, log)
	go p.run()
	return p
}

// addPartition registers a claimed partition's worker without starting it.
func (r *Runner) addPartition(id dedup.PartitionID, claim dedup.Claim, log *zap.Logger) *partition {
	p := newPartition(r.depsFor(id), id, claim, r.router.NewDecoder(), log)
	r.workers[id] = p
	r.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(0)
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
		r.unawait(id)
		p := r.workers[id]
		if p == nil {
			continue
		}
		delete(r.workers, id)
		r.stops.clear(id)
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
		// Again now that the worker is done: its batch in flight may have
		// stopped it after the revocation cleared it, and nothing would
		// clear it again while the partition is another instance's.
		r.stops.clear(p.id)
		r.discard(p)
		r.metrics.Lag.DeleteLabelValues(p.labels[0], p.labels[1])
		r.metrics.SourceLag.DeleteLabelValues(p.labels[0], p.labels[1])
		r.metrics.SourceApplied.DeleteLabelValues(p.labels[0], p.labels[1])
		// A partition that is no longer ours is neither stopped nor
		// waiting here: left at 1, the series would page an operator about
		// a partition another instance now applies.
		r.metrics.Stopped.DeleteLabelValues(p.labels[0], p.labels[1])
		r.metrics.SchemaWaiting.DeleteLabelValues(p.labels[0], p.labels[1])
		if r.metrics.Tx != nil {
			// Nor does it stage here: what it staged ahead of the
			// resolver is the next owner's to report.
			r.metrics.Tx.StagedAhead.DeleteLabelValues(p.labels[0], p.labels[1])
			r.metrics.Tx.StagingWaiting.DeleteLabelValues(p.labels[0], p.labels[1])
			r.metrics.Tx.Direct.DeleteLabelValues(p.labels[0], p.labels[1])
		}
		for table := range p.lagTables {
			r.metrics.TableSourceLag.DeleteLabelValues(table)
		}
	}
}

// discard returns the buffer budget of a stopped worker's unread records.
func (r *Runner) discard(p *partition) {
	budget := r.budgetOf(p)
	p.in.drain(func(e envelope) { budget.Add(-e.cost) })
	for _, e := range p.overflow {
		budget.Add(-e.cost)
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
		r.stops.clear(id)
	}
	r.wait(all)
	r.log.Info("workers stopped", zap.Int("partitions", len(all)))
}
