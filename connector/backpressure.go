package connector

import (
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
)

// consumer is what the poll loop's dispatch, seeks and commit reports ask
// of the Kafka client (*kafka.Consumer).
type consumer interface {
	Pause(partitions []kafka.TopicPartition) error
	Resume(partitions []kafka.TopicPartition) error
	Seek(partition kafka.TopicPartition, ignoredTimeoutMs int) error
	IncrementalAssign(partitions []kafka.TopicPartition) error
	IncrementalUnassign(partitions []kafka.TopicPartition) error
	StoreOffsets(offsets []kafka.TopicPartition) ([]kafka.TopicPartition, error)
	CommitOffsets(offsets []kafka.TopicPartition) ([]kafka.TopicPartition, error)
	GetWatermarkOffsets(topic string, partition int32) (low, high int64, err error)
	QueryWatermarkOffsets(topic string, partition int32, timeoutMs int) (low, high int64, err error)
}

// mayPoll tells the poll loop whether to poll now, given the buffer
// budget, and counts the time the budget is spent in
// pgsink_buffer_full_seconds_total.
//
// While the workers hold the whole budget the loop stops taking messages
// and lets librdkafka's queue fill up to its own bound, which stops its
// fetcher without losing what it prefetched (a pause throws that away and
// fetches it again on resume). Past budgetWait it pauses every partition
// instead and polls again, so Poll still serves the group's rebalances
// while the target is slow.
func (r *Runner) mayPoll(now time.Time) bool {
	if !r.fullSince.IsZero() {
		r.metrics.BufferFull.Add(now.Sub(r.fullCounted).Seconds())
		r.fullCounted = now
	}
	if r.buffered.Load() < int64(r.cfg.Apply.MaxBufferedBytes) {
		r.fullSince = time.Time{}
		return true
	}
	if r.fullSince.IsZero() {
		r.fullSince = now
		r.fullCounted = now
	}
	if now.Sub(r.fullSince) < budgetWait {
		return false
	}
	r.pauseAll()
	return true
}

// dispatch hands a message to its partition's worker without blocking the
// poll loop: a full queue pauses the partition (backpressure) and keeps the
// message aside until the worker catches up.
//
// The buffer budget is not dispatch's to enforce: the poll loop stops
// polling once it is spent, so the message that crosses it is the last
// one taken and the overshoot is that one record. Pausing its partition
// as well stalled the whole drain each time: librdkafka drops a paused
// partition's prefetched messages (librdkafka#5343), and the resumed
// partition's next fetch came only when the broker thread next decided
// what to fetch, with every core idle meanwhile (confluent-kafka-go#630
// shows the same wait).
func (r *Runner) dispatch(m *kafka.Message) { r.dispatchAt(m, time.Now()) }

// dispatchAt is dispatch with the poll loop's clock reading taken when
// Poll returned m: the time its batch's max_wait counts from.
func (r *Runner) dispatchAt(m *kafka.Message, now time.Time) {
	id := dedup.PartitionID{Group: r.group(), Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition}
	p := r.workers[id]
	if p == nil {
		r.metrics.Skipped.WithLabelValues(id.Topic, "not_owned").Inc()
		return
	}
	est := p.decoded.of(payloadBytes(m))
	e := envelope{msg: m, gen: p.gen.Load(), at: now, cost: messageBytes(m) + est, estimate: est}
	budget := r.budgetOf(p)
	held := budget.Add(e.cost)
	if len(p.overflow) == 0 {
		if p.in.offer(e) {
			if budget == &r.markerBytes && held >= markerBudget(r.cfg) {
				r.pause(p, m.TopicPartition, "marker_budget")
			}
			return
		}
	}
	p.overflow = append(p.overflow, e)
	r.pause(p, m.TopicPartition, "queue_full")
}

// pause pauses p's partition unless it is paused already, counting why.
func (r *Runner) pause(p *partition, tp kafka.TopicPartition, why string) {
	if p.paused {
		return
	}
	if err := r.consumer.Pause([]kafka.TopicPartition{tp}); err != nil {
		r.log.Warn("pause", zap.Error(err))
	}
	r.metrics.Pauses.WithLabelValues(why).Inc()
	p.paused, r.anyPaused = true, true
}

// budgetWait is how long the poll loop stops polling while the buffer
// budget is spent before it pauses the partitions instead: long enough to
// ride out the wait for a batch to commit, short enough that a rebalance
// is not held up.
const budgetWait = 500 * time.Millisecond

// pauseAll pauses every partition not paused yet; service resumes each
// once the budget and its queue have room. The transaction topic's
// partition is left to its own budget (markerBudget) and queue bound:
// data partitions waiting at apply.transaction.max_staged_bytes hold the
// budget until the resolver applies, and it can only apply the ENDs it
// reads (stagebound.go).
func (r *Runner) pauseAll() {
	resolver := TransactionTopic(r.cfg)
	for _, p := range r.workers {
		if p.paused || (resolver != "" && p.id.Topic == resolver) {
			continue
		}
		topic := p.id.Topic
		if err := r.consumer.Pause([]kafka.TopicPartition{{Topic: &topic, Partition: p.id.Partition}}); err != nil {
			r.log.Warn("pause", zap.Error(err))
			continue
		}
		r.metrics.Pauses.WithLabelValues("buffer_full").Inc()
		p.paused, r.anyPaused = true, true
	}
}

// service runs the poll loop's periodic duties: seeks the workers asked
// for, and resuming partitions whose queue drained.
func (r *Runner) service() {
	r.metrics.Buffered.Set(float64(r.buffered.Load() + r.markerBytes.Load()))
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
			r.budgetOf(s.p).Add(-e.cost)
		}
		s.p.overflow = nil
		topic := s.p.id.Topic
		tp := kafka.TopicPartition{Topic: &topic, Partition: s.p.id.Partition, Offset: kafka.Offset(s.offset)}
		err := r.consumer.Seek(tp, 0)
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.Code() == kafka.ErrState {
			err = r.reassign(s.p, tp)
		}
		if err != nil {
			r.fatalf(s.p.log, "seek after a moved position", err)
		}
		s.p.seeking.Store(false)
		if s.p.pausedAtClaim {
			// Stopped at its claim, it was assigned paused: the seek is
			// its re-claim after a replay's rewind, from where it fetches
			// now. Resumed after the seek, so that the client never
			// fetches from the position outside what Kafka holds.
			if err := r.consumer.Resume([]kafka.TopicPartition{tp}); err != nil {
				r.fatalf(s.p.log, "resume a partition a replay un-stopped", err)
			}
			s.p.pausedAtClaim = false
		}
	}
	if !r.anyPaused {
		return // service runs after every message: no walk over every partition then
	}
	r.anyPaused = false
	resolver := TransactionTopic(r.cfg)
	dataBudget := r.buffered.Load()-r.localHeld() <= int64(r.cfg.Apply.MaxBufferedBytes)/2
	for _, p := range r.workers {
		if !p.paused {
			continue
		}
		for len(p.overflow) > 0 && p.in.offer(p.overflow[0]) {
			p.overflow = p.overflow[1:]
		}
		// The resolver's partition is held to its own budget, not to the
		// data partitions' (pauseAll).
		budget := dataBudget
		if resolver != "" && p.id.Topic == resolver {
			budget = r.markerBytes.Load() <= markerBudget(r.cfg)/2
		}
		if len(p.overflow) == 0 && p.in.len() < p.in.limit/2 && budget {
			topic := p.id.Topic
			if err := r.consumer.Resume([]kafka.TopicPartition{{Topic: &topic, Partition: p.id.Partition}}); err != nil {
				r.log.Warn("resume", zap.Error(err))
			}
			p.paused = false
		}
		r.anyPaused = r.anyPaused || p.paused
	}
}

// reassign moves a partition whose fetcher stopped to tp.Offset: once
// Kafka answered a fetch of it with offset out of range (a hole, or a
// position outside what Kafka holds at its claim) under
// auto.offset.reset=error, the client refuses to seek it (ErrState) and
// only a new assignment starts it again (librdkafka#2961). That is what a
// stopped partition's re-claim after a replay's rewind meets. It is taken
// out of the assignment and put back at the offset, resumed.
func (r *Runner) reassign(p *partition, tp kafka.TopicPartition) error {
	tps := []kafka.TopicPartition{tp}
	if err := r.consumer.IncrementalUnassign(tps); err != nil {
		return fmt.Errorf("seek refused (the fetcher stopped), unassign to assign again: %w", err)
	}
	if err := r.consumer.IncrementalAssign(tps); err != nil {
		return fmt.Errorf("seek refused (the fetcher stopped), assign again: %w", err)
	}
	if err := r.consumer.Resume(tps); err != nil {
		return fmt.Errorf("resume the partition assigned again: %w", err)
	}
	p.paused, p.pausedAtClaim = false, false
	p.log.Info("partition assigned again at its position: its fetcher had stopped (offset out of range)", zap.Int64("offset", int64(tp.Offset)))
	return nil
}

// requestSeek queues a worker's seek for the poll loop (service).
func (r *Runner) requestSeek(p *partition, offset int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seeks = append(r.seeks, seekRequest{p: p, offset: offset})
}

// charge counts bytes a worker holds besides its fetched records in the
// buffer budget.
func (r *Runner) charge(bytes int64) { r.buffered.Add(bytes) }

// localHeld is what the local path's store holds of the buffer budget (0
// without it). A paused partition resumes once the rest of the budget is
// half spent, not the whole of it: the store may hold half the budget by
// itself (its bound) with records of transactions the resolver cannot
// apply before one whose events the paused partition has yet to fetch,
// and counting them would keep that partition paused until the resolver's
// liveness rule emptied the store (every partition then stages to the end
// of a backlog). The store stays within its own bound, and the poll loop
// still stops at the whole budget (mayPoll), so memory stays within it.
func (r *Runner) localHeld() int64 {
	if r.local == nil {
		return 0
	}
	return r.local.HeldBytes()
}

// release gives bytes of fetched records back to the buffer budget.
func (r *Runner) release(bytes int64) { r.buffered.Add(-bytes) }

// messageBytes is what a fetched record counts in the buffer budget.
func messageBytes(m *kafka.Message) int64 { return payloadBytes(m) + recordOverhead }

// payloadBytes is a record's key and value bytes, what apply.batch.max_bytes
// counts.
func payloadBytes(m *kafka.Message) int64 { return int64(len(m.Key) + len(m.Value)) }
