package connector

import (
	"errors"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// inflight is a batch whose transaction was sent (apply.pipeline) and whose
// outcome the worker has not taken yet. Its claim is its own copy: it
// expects the position where the transaction before it ends, and the
// offsets compare-and-set chains the two (docs/internals.md, "Pipelined
// apply").
type inflight struct {
	batch *sink.Batch
	last  *kafka.Message
	// start is the position its compare-and-set expects.
	start int64
	// held is the record bytes of the batch, given back to the buffer
	// budget once its outcome is taken.
	held int64
	// follows is set when an earlier transaction was in flight when it
	// was sent: its compare-and-set may have reached PostgreSQL first.
	follows bool
	started time.Time
	elapsed time.Duration
	st      sink.Stats
	err     error
	done    chan struct{}
	// locked is closed once its offsets compare-and-set has run and its
	// transaction holds the partition's offsets row (sink.Batch.ClaimHeld):
	// a follower is sent only after that, so that its lock waits for this
	// transaction instead of racing it.
	locked     chan struct{}
	lockedOnce sync.Once
}

// errPipelineStopped ends a batch being collected when an earlier
// transaction's failure stopped the partition; errPipelineReset when it
// moved the position (a seek): either way the batch's records are not
// applied from where they were taken.
var (
	errPipelineStopped = errors.New("an earlier transaction of the partition failed")
	errPipelineReset   = errors.New("the partition's position moved under a pipelined batch")
)

// workerPanicError is a panic in a pipelined Apply outside the sink's own
// recovery: the partition stops, as a panic in the worker does.
type workerPanicError struct{ *sink.PanicError }

// tail is the claim the next batch's transaction expects: where the last
// transaction in flight ends, or the committed position.
func (p *partition) tail() dedup.Claim {
	c := p.claim
	if n := len(p.flight); n > 0 {
		c.NextOffset = p.flight[n-1].batch.Next
	}
	return c
}

// oldestDone is closed once the oldest transaction in flight is done; nil
// (never ready) with none.
func (p *partition) oldestDone() <-chan struct{} {
	if len(p.flight) == 0 {
		return nil
	}
	return p.flight[0].done
}

// pipelines reports whether batch may be sent while earlier transactions
// of the partition are in flight, and be followed by later ones before it
// settled. A batch on another table shape than the batch sent last only
// waits for what is in flight. docs/internals.md says why each case goes
// alone.
func (p *partition) pipelines(batch *sink.Batch) bool {
	if p.pipeline < 2 || p.kafkaOffsets {
		return false
	}
	var prev *sink.Table
	same := true
	for i := range batch.Items {
		it := &batch.Items[i]
		if it.Err != nil || it.Change.SnapshotMark.EndsTable() {
			return false
		}
		if it.Table != prev {
			prev = it.Table
			same = same && p.lastTables[it.Table]
		}
	}
	return same || len(p.flight) == 0
}

// noteTables remembers the tables of the batch just sent, against which
// the next batch is checked for a change of shape.
func (p *partition) noteTables(batch *sink.Batch) {
	clear(p.lastTables)
	if p.lastTables == nil {
		p.lastTables = map[*sink.Table]bool{}
	}
	for i := range batch.Items {
		p.lastTables[batch.Items[i].Table] = true
	}
}

// sendPipelined sends batch's transaction while earlier ones may still be
// in flight: it first takes the outcome of the oldest while the pipeline
// is full, or while the pool has no idle connection for a follower. ok is
// false when the partition must stop; clean is false when an outcome moved
// the position, and batch, taken from the old one, was not sent.
func (p *partition) sendPipelined(batch *sink.Batch, last *kafka.Message) (ok, clean bool) {
	for len(p.flight) >= p.pipeline || len(p.flight) > 0 && p.spareConnection != nil && !p.spareConnection() {
		if ok, clean := p.settleOldest(); !ok || !clean {
			return ok, clean
		}
	}
	if n := len(p.flight); n > 0 {
		// Sent before its predecessor holds the offsets row, a follower's
		// lock could reach PostgreSQL first: it would find the position
		// not yet moved, fail, and cost a transaction applied again.
		prev := p.flight[n-1]
		select {
		case <-prev.locked:
		case <-prev.done:
		}
	}
	f := &inflight{batch: batch, last: last, start: batch.Claim.NextOffset, held: p.held,
		follows: len(p.flight) > 0, started: time.Now(), done: make(chan struct{}), locked: make(chan struct{})}
	p.held = 0
	batch.Chained = f.follows
	batch.ClaimHeld = func() { f.lockedOnce.Do(func() { close(f.locked) }) }
	if f.follows {
		p.metrics.Pipelined.Inc()
	}
	p.flight = append(p.flight, f)
	p.noteTables(batch)
	go func() {
		defer close(f.done)
		defer func() {
			if v := recover(); v != nil {
				f.err = &workerPanicError{sink.NewPanicError(v)}
			}
		}()
		f.st, f.err = p.applier.Apply(withStopping(p.ctx, p.stopping), f.batch)
		f.elapsed = time.Since(f.started)
	}()
	return true, true
}

// drain takes the outcome of every transaction in flight, oldest first.
func (p *partition) drain() (ok, clean bool) {
	for len(p.flight) > 0 {
		if ok, clean := p.settleOldest(); !ok || !clean {
			return ok, clean
		}
	}
	return true, true
}

// settleOldest waits for the oldest transaction in flight and takes its
// outcome as apply does. A follower that raced its predecessor is applied
// again, alone. When one fails, every later one is waited for before the
// failure is acted on: none of them can have committed past it, since
// each expects the position where the failed one would have ended.
func (p *partition) settleOldest() (ok, clean bool) {
	f := p.flight[0]
	<-f.done
	p.flight = p.flight[1:]
	p.loop.release(f.held)
	if f.err != nil && p.raced(f) {
		p.metrics.PipelineRetries.Inc()
		claim := p.claim
		f.batch.Claim = &claim
		t0 := time.Now()
		f.st, f.err = p.applier.Apply(withStopping(p.ctx, p.stopping), f.batch)
		f.elapsed = time.Since(t0)
	}
	p.claim = *f.batch.Claim
	if f.err == nil {
		ok := p.settle(f.batch, f.last, f.st, nil, f.elapsed)
		if ok {
			// Committed and reported: its item slice serves a later batch.
			recycleItems(f.batch.Items, len(f.batch.Items))
		}
		return ok, true
	}
	later := p.flight
	p.flight = nil
	moved := false
	for _, g := range later {
		<-g.done
		p.loop.release(g.held)
		if g.err == nil {
			// Only a replay that set the row, under this epoch, to
			// exactly g's start lets g commit: its data follows that
			// position.
			p.claim = *g.batch.Claim
			p.settle(g.batch, g.last, g.st, nil, g.elapsed)
			moved = true
		}
	}
	if moved {
		p.log.Warn("a pipelined transaction failed and a later one committed after the stored position was moved: seeking to the committed position",
			zap.Int64("next_offset", p.claim.NextOffset), zap.Error(f.err))
		p.seek(p.claim.NextOffset)
		return true, false
	}
	return p.settle(f.batch, f.last, f.st, f.err, f.elapsed), false
}

// raced reports whether f, sent behind another transaction, failed only
// because its compare-and-set reached PostgreSQL before its predecessor's
// commit: the predecessor committed since and the position is f's start.
func (p *partition) raced(f *inflight) bool {
	var moved *dedup.PositionMovedError
	return f.follows && errors.As(f.err, &moved) && moved.Expected == f.start &&
		f.batch.Claim.NextOffset == f.start && p.claim.NextOffset == f.start && p.claim.Epoch == f.batch.Claim.Epoch
}

// abandonFlight waits for the transactions in flight without taking their
// outcome, for a worker that stops on a bug: their bytes go back to the
// budget, and what they committed is read from the offsets row by the
// next owner.
func (p *partition) abandonFlight() {
	for _, f := range p.flight {
		<-f.done
		p.loop.release(f.held)
	}
	p.flight = nil
}
