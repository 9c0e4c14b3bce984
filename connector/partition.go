package connector

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// envelope is a fetched message stamped with the partition's generation at
// dispatch (a seek bumps the generation, and the worker drops what was
// fetched before it) and with the time of dispatch, from which its batch's
// max_wait counts.
type envelope struct {
	msg *kafka.Message
	gen uint64
	at  time.Time
}

// partition applies one owned partition: it batches its records in offset
// order and hands each batch to the sink. One goroutine per partition.
type partition struct {
	r     *Runner
	id    dedup.PartitionID
	claim dedup.Claim
	in    chan envelope
	gen   atomic.Uint64
	// seeking is set by the worker when it asks for a seek and cleared by
	// the poll loop once the seek is done and the generation bumped: every
	// record taken in between was fetched before the seek and is dropped.
	seeking atomic.Bool
	log     *zap.Logger
	labels  [2]string // topic, partition number for metrics

	// stopping asks the worker to finish the batch it holds and return;
	// ctx cancellation abandons it (its transaction rolls back).
	stopping chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	// Backpressure, owned by the poll loop: records that did not fit in
	// `in` while the partition is paused.
	overflow []envelope
	paused   bool

	// stopped is set once the partition stopped on an error that needs an
	// operator; it then holds its position until revoked.
	stopped atomic.Bool
	decoder *debezium.Decoder
	// fenced is set (by the worker) when another owner's epoch rejected a
	// batch: the worker waits for the group to revoke the partition.
	fenced bool
	// held is the key and value bytes of the records the worker took into
	// its current batch: they stay in apply.max_buffered_bytes until the
	// batch is done, so the budget bounds every record pgsink holds, not
	// only the queued ones.
	held int64
}

// releaseHeld gives the current batch's bytes back to the buffer budget.
func (p *partition) releaseHeld() {
	p.r.buffered.Add(-p.held)
	p.held = 0
}

func (p *partition) run() {
	defer close(p.done)
	defer p.releaseHeld()
	for {
		p.releaseHeld() // the previous batch is done
		batch, last, more, err := p.collect()
		if errors.Is(err, errFenced) {
			p.releaseHeld()
			if p.awaitFence() {
				continue
			}
			return
		}
		if err != nil {
			p.fail("cannot resolve the topic's target table; the offset is not moved", err)
			p.releaseHeld()
			p.park()
			return
		}
		if len(batch.Items) > 0 || batch.Next > p.claim.NextOffset {
			if !p.apply(batch, last) {
				p.releaseHeld()
				if p.fenced && p.awaitFence() {
					continue
				}
				p.park()
				return
			}
		}
		if !more {
			return
		}
	}
}

// park keeps a stopped partition's goroutine until it is revoked, draining
// its input so the poll loop never blocks on it.
// fenceGrace is how long a fenced partition waits for the group to take it
// away before it claims it back. Longer than a default session timeout
// (45 s): if this instance is the zombie, its client notices by then and
// revokes the partition; if Kafka still assigns it here after that, the
// other claimant is the stale one and this instance must go on applying.
const fenceGrace = 60 * time.Second

// awaitFence parks a fenced partition until it is revoked (false) or, still
// assigned here after fenceGrace, re-claims it (true: go on).
func (p *partition) awaitFence() bool {
	grace := time.NewTimer(fenceGrace)
	defer grace.Stop()
	for {
		select {
		case e := <-p.in:
			p.r.buffered.Add(-messageBytes(e.msg))
		case <-p.stopping:
			return false
		case <-p.ctx.Done():
			return false
		case <-grace.C:
			p.log.Warn("fenced partition still assigned to this instance after the grace period: claiming it back")
			if err := p.reclaim("fenced partition still assigned here"); err != nil {
				return false
			}
			p.fenced = false
			return true
		}
	}
}

func (p *partition) park() {
	for {
		select {
		case e := <-p.in:
			p.r.buffered.Add(-messageBytes(e.msg))
		case <-p.stopping:
			return
		case <-p.ctx.Done():
			return
		}
	}
}

// collect gathers the next batch: it waits for a first record, then takes
// records until max_records, max_bytes or max_wait. more is false when the
// partition must stop after this batch. An error means the records cannot
// be routed at all (a table missing from the target, PostgreSQL down while
// reading its catalog): that is no reason to dead-letter them.
//
// max_wait counts from the first record's dispatch, not from the moment
// collect takes it: records that arrived while the previous batch was
// being applied have waited already. Once it is up, collect still takes
// every record already waiting (a group commit), but waits for no more.
func (p *partition) collect() (batch *sink.Batch, last *kafka.Message, more bool, err error) {
	cfg := p.r.cfg.Apply.Batch
	// Sized for what is already queued: an Item is 480 bytes, and growing
	// the slice by appends cost 4% of the drain's CPU in copies and write
	// barriers (make bench's profile).
	batch = &sink.Batch{Claim: &p.claim, Next: p.claim.NextOffset,
		Items: make([]sink.Item, 0, min(cfg.MaxRecords, max(len(p.in), 16)))}
	var bytes int64
	var timer <-chan time.Time
	var deadline time.Time
	// take adds a record to the batch and reports whether the batch is full.
	take := func(e envelope) (full bool, err error) {
		size := messageBytes(e.msg)
		if p.seeking.Load() || e.gen != p.gen.Load() {
			p.r.buffered.Add(-size)
			return false, nil // fetched before a seek
		}
		m := e.msg
		off := int64(m.TopicPartition.Offset)
		if off < batch.Next {
			p.r.buffered.Add(-size)
			p.r.metrics.Skipped.WithLabelValues(p.id.Topic, "below_position").Inc()
			return false, nil
		}
		p.held += size
		p.r.metrics.Consumed.WithLabelValues(p.id.Topic).Inc()
		if !m.Timestamp.IsZero() {
			p.r.metrics.ReceiveLatency.Observe(time.Since(m.Timestamp).Seconds())
		}
		item, ok, err := p.item(m)
		if err != nil {
			return false, err
		}
		if ok {
			batch.Items = append(batch.Items, item)
		} else {
			p.r.metrics.Skipped.WithLabelValues(p.id.Topic, "no_write").Inc()
		}
		batch.Next = off + 1
		last = m
		bytes += size
		if timer == nil {
			deadline = e.at.Add(cfg.MaxWait.Std())
			timer = time.After(time.Until(deadline))
		}
		return len(batch.Items) >= cfg.MaxRecords || bytes >= int64(cfg.MaxBytes), nil
	}
	idle := time.NewTicker(idleCheck)
	defer idle.Stop()
	for {
		if timer != nil && !time.Now().Before(deadline) {
			// The batch's time is up: take only what is already waiting.
			select {
			case e := <-p.in:
				if full, err := take(e); err != nil || full {
					return batch, last, err == nil, err
				}
				continue
			default:
				return batch, last, true, nil
			}
		}
		select {
		case <-idle.C:
			// Nothing to apply: make sure the partition is still ours, so
			// a replay's rewind is noticed on a quiet topic too.
			if timer != nil {
				continue
			}
			if err := p.checkClaim(); err != nil {
				return batch, nil, false, err
			}
			batch.Next = p.claim.NextOffset
		case <-p.stopping:
			return batch, last, false, nil
		case <-p.ctx.Done():
			return &sink.Batch{Claim: &p.claim, Next: p.claim.NextOffset}, nil, false, nil
		case <-timer:
			return batch, last, true, nil
		case e := <-p.in:
			if full, err := take(e); err != nil || full {
				return batch, last, err == nil, err
			}
		}
	}
}

// idleCheck is how often an idle partition re-reads its offsets row.
const idleCheck = 2 * time.Second

// errFenced stops a worker whose partition another instance claimed.
var errFenced = errors.New("partition claimed by another instance")

// checkClaim re-reads the partition's row: a replay's rewind is taken over
// (re-claim and seek), another owner's epoch stops the worker.
func (p *partition) checkClaim() error {
	if p.r.cfg.Apply.Offsets == config.OffsetsKafka {
		return nil // no offsets row: Kafka's group protocol alone assigns
	}
	stored, err := p.r.offsets.Read(p.ctx, p.r.pool, p.id)
	if err != nil {
		if p.ctx.Err() != nil {
			return errFenced
		}
		p.log.Warn("checking the partition's stored position", zap.Error(err))
		return nil
	}
	if stored.Epoch == p.claim.Epoch {
		return nil
	}
	if strings.HasPrefix(stored.Owner, dedup.ReplayOwnerPrefix) {
		return p.reclaim("partition rewound by a replay")
	}
	p.r.metrics.Fenced.Inc()
	p.fenced = true
	p.log.Warn("partition claimed by another instance; waiting for the group to move it", zap.String("owner", stored.Owner), zap.Int64("epoch", stored.Epoch))
	return errFenced
}

// reclaim takes the partition back under a new epoch and seeks to its
// stored position: after a replay rewound it, or after a stale claimant
// fenced it while the group still assigns it here.
func (p *partition) reclaim(why string) error {
	claim, err := p.r.offsets.Claim(p.ctx, p.r.pool, p.id, 0, p.r.owner)
	if err != nil {
		p.r.fatalf(p.log, "re-claim after a replay", err)
		return errFenced
	}
	p.log.Info(why+": re-claimed", zap.Int64("epoch", claim.Epoch), zap.Int64("next_offset", claim.NextOffset))
	p.claim = claim
	p.r.requestSeek(p, claim.NextOffset)
	return nil
}

// item decodes and routes one record (sink.Router.Item).
func (p *partition) item(m *kafka.Message) (sink.Item, bool, error) {
	rec := debezium.Record{Topic: p.id.Topic, Partition: p.id.Partition, Offset: int64(m.TopicPartition.Offset),
		Timestamp: m.Timestamp, Key: m.Key, Value: m.Value}
	if len(m.Headers) > 0 {
		rec.Headers = make([]debezium.Header, len(m.Headers))
		for i, h := range m.Headers {
			rec.Headers[i] = debezium.Header{Key: h.Key, Value: h.Value}
		}
	}
	return p.r.router.Item(p.ctx, p.decoder, rec)
}

// apply applies a batch and reports whether the partition may go on.
func (p *partition) apply(batch *sink.Batch, last *kafka.Message) bool {
	if err := p.r.deadLetters.divert(p.ctx, p.r.cfg.Kafka["group.id"], batch); err != nil {
		p.fail("cannot write to the dead-letter topic; the offset is not moved", err)
		return false
	}
	t0 := time.Now()
	st, err := p.r.applier.Apply(p.ctx, batch)
	p.r.metrics.Retries.Add(float64(st.Retries))
	var fenced *dedup.FencedError
	var moved *dedup.PositionMovedError
	var poison *sink.PoisonError
	switch {
	case err == nil:
	case errors.As(err, &fenced) && strings.HasPrefix(fenced.Owner, dedup.ReplayOwnerPrefix):
		// `pgsink replay` rewound the partition under a new epoch: take it
		// back (the replay is no instance) and continue from there.
		return p.reclaim("partition rewound by a replay") == nil
	case errors.As(err, &fenced):
		p.r.metrics.Fenced.Inc()
		p.fenced = true
		p.log.Warn("partition fenced: another instance claimed it; waiting for the group to move it", zap.Error(err))
		return false
	case errors.As(err, &moved):
		// A replay rewound the position under our epoch: seek there.
		p.log.Info("stored position moved (replay): seeking", zap.Int64("from", moved.Expected), zap.Int64("to", moved.Stored))
		p.claim.NextOffset = moved.Stored
		p.r.requestSeek(p, moved.Stored)
		return true
	case errors.As(err, &poison):
		p.fail("record cannot be applied and errors.tolerance is none: fix it or the target, then restart", err)
		return false
	case p.ctx.Err() != nil:
		return false
	default:
		p.r.fatalf(p.log, "apply failed", err)
		return false
	}
	elapsed := time.Since(t0)
	p.r.metrics.ApplySeconds.Observe(elapsed.Seconds())
	p.r.metrics.BatchRecords.Observe(float64(len(batch.Items)))
	if st.Stale > 0 {
		p.r.metrics.Skipped.WithLabelValues(p.id.Topic, "stale").Add(float64(st.Stale))
	}
	if st.Skipped > 0 {
		p.r.metrics.Skipped.WithLabelValues(p.id.Topic, "event_type").Add(float64(st.Skipped))
	}
	if st.Duplicates > 0 {
		p.r.metrics.Skipped.WithLabelValues(p.id.Topic, "duplicate").Add(float64(st.Duplicates))
	}
	if st.DeadLetters > 0 {
		p.r.metrics.DeadLetters.WithLabelValues(p.id.Topic, "table").Add(float64(st.DeadLetters))
	}
	if len(batch.Items) > 0 && batch.Items[0].Table != nil {
		ref := batch.Items[0].Table.Ref()
		if st.Unresolved > 0 {
			p.r.metrics.Unresolved.WithLabelValues(ref).Add(float64(st.Unresolved))
			p.log.Warn("rows created from events with unchanged-TOAST placeholders and no stored row to keep the values from: those columns are NULL; set REPLICA IDENTITY FULL on the source table",
				zap.String("table", ref), zap.Int64("rows", st.Unresolved), zap.Int64("next_offset", batch.Next))
		}
		if st.InsertConflicts > 0 {
			p.r.metrics.InsertConflicts.WithLabelValues(ref).Add(float64(st.InsertConflicts))
		}
		p.r.metrics.Applied.WithLabelValues(ref, "upsert").Add(float64(st.Upserted))
		p.r.metrics.Applied.WithLabelValues(ref, "delete").Add(float64(st.Deleted))
		p.r.metrics.Applied.WithLabelValues(ref, "truncate").Add(float64(st.Truncated))
	}
	now := time.Now()
	if last != nil && !last.Timestamp.IsZero() {
		p.r.metrics.EndToEnd.Observe(now.Sub(last.Timestamp).Seconds())
	}
	// Every record, not only the batch's youngest: the batch's oldest
	// record waited longest, and the percentiles must see it.
	for i := range batch.Items {
		if ts := batch.Items[i].Record.Timestamp; !ts.IsZero() {
			p.r.metrics.RecordLatency.Observe(now.Sub(ts).Seconds())
		}
	}
	p.r.committed(p, batch.Next)
	return true
}

// fail stops the partition without moving its offset (I5).
func (p *partition) fail(what string, err error) {
	p.stopped.Store(true)
	p.r.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	p.log.Error("partition stopped: "+what, zap.Int64("offset", p.claim.NextOffset), zap.Error(err))
}

func partitionLabel(n int32) string { return strconv.Itoa(int(n)) }
