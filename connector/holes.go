package connector

import (
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
)

// A hole is a partition's next needed offset that Kafka deleted while this
// instance owns it (retention or kafka-delete-records, typically on a
// partition paused for long behind a target outage). With
// auto.offset.reset=error librdkafka then stops fetching the partition and
// delivers ErrAutoOffsetReset, whose kafka.Error does not name the
// partition (confluent-kafka-go keeps the partition of an error event for
// PartitionEOF only). Left there, the partition stalls silently: the poll
// loop finds which owned partitions lie below their low watermark and
// sends each a hole mark behind the records it dispatched, so the worker
// applies those first and stops at the hole as begin stops one at its
// claim, offset unmoved.

// holeLookEvery bounds how often the poll loop reads the low watermarks
// of its partitions after ErrAutoOffsetReset: one error per partition and
// fetch, a storm of them must not become a storm of ListOffsets requests.
const holeLookEvery = 5 * time.Second

// holeClient is what looking for holes asks of the Kafka client
// (*kafka.Consumer).
type holeClient interface {
	Position(partitions []kafka.TopicPartition) ([]kafka.TopicPartition, error)
	QueryWatermarkOffsets(topic string, partition int32, timeoutMs int) (low, high int64, err error)
}

// holeWatch is the poll loop's: whether an ErrAutoOffsetReset awaits a
// look, and when the next look may be.
type holeWatch struct {
	suspect bool
	next    time.Time
}

// holeError stops a partition whose next needed offset Kafka no longer
// holds. It travels to the worker as its hole mark's TopicPartition.Error
// (low set); the worker fills in next.
type holeError struct {
	low, next int64
	gen       uint64
}

func (e *holeError) Error() string {
	return fmt.Sprintf("next offset %d, Kafka now holds from %d: the records in between were deleted (retention or kafka-delete-records) while the partition waited; replay the table (pgsink replay --from earliest) to rebuild it",
		e.next, e.low)
}

// StopWhat is begin's account of the same stop at a claim.
func (e *holeError) StopWhat() string { return "the stored offset is outside what Kafka holds" }

// suspectHole notes an ErrAutoOffsetReset for lookForHoles.
func (r *Runner) suspectHole(ev kafka.Error) {
	r.log.Warn("kafka error: a partition's next offset is gone from Kafka; looking for which (its partition stops)", zap.Error(ev))
	r.holes.suspect = true
}

// lookForHoles sends a hole mark to each running partition whose fetch
// position lies below its low watermark, once holeLookEvery at most after
// an ErrAutoOffsetReset. The position is librdkafka's (the last record it
// handed the poll loop, plus one): the records before it are queued for
// the worker or kept aside for it, and the mark goes behind them. A
// partition without a position (nothing fetched since its assignment or
// seek) is sent the mark too; its worker compares the low watermark with
// its own position, so a partition that is not behind ignores it. A failed
// read ends the look, and the next one, holeLookEvery later, reads again.
func (r *Runner) lookForHoles(c holeClient, now time.Time) {
	if !r.holes.suspect || now.Before(r.holes.next) {
		return
	}
	r.holes.suspect, r.holes.next = false, now.Add(holeLookEvery)
	var ps []*partition
	var tps []kafka.TopicPartition
	for _, p := range r.workers {
		if p.stopped.Load() {
			continue
		}
		topic := p.id.Topic
		ps = append(ps, p)
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.id.Partition})
	}
	if len(ps) == 0 {
		return
	}
	positions, err := c.Position(tps)
	if err != nil || len(positions) != len(tps) {
		positions = nil
	}
	for i, p := range ps {
		low, _, err := c.QueryWatermarkOffsets(p.id.Topic, p.id.Partition, watermarkTimeoutMs)
		if err != nil {
			// Kafka is slow or away: the other partitions wait for the
			// next look rather than hold the poll loop a timeout each.
			p.log.Warn("reading the low watermark after ErrAutoOffsetReset; looking again later", zap.Error(err))
			r.holes.suspect = true
			return
		}
		if positions != nil && positions[i].Offset >= 0 && int64(positions[i].Offset) >= low {
			continue
		}
		topic := p.id.Topic
		r.dispatchAt(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p.id.Partition,
			Offset: kafka.OffsetInvalid, Error: &holeError{low: low}}}, now)
	}
}

// takeHole takes a hole mark from the partition's queue (collect's take),
// true if e is one; holeReached decides at the next batch.
func (p *partition) takeHole(e envelope) bool {
	h, ok := e.msg.TopicPartition.Error.(*holeError)
	if !ok {
		return false
	}
	p.loop.release(e.cost)
	p.hole = &holeError{low: h.low, gen: e.gen}
	return true
}

// holeReached is the stop for a hole mark taken, once the records before
// it are applied (or sent, with apply.pipeline: the error settles them
// first): next is the position they leave. A mark that a seek overtook, or
// whose low watermark the partition is not below, is dropped.
func (p *partition) holeReached(next int64) *holeError {
	h := p.hole
	p.hole = nil
	if h == nil || p.seeking.Load() || h.gen != p.gen.Load() || next >= h.low {
		return nil
	}
	h.next = next
	return h
}
