package connector

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// localMetrics are the local path's series: which partitions are direct,
// why they leave, and what the store holds. Absent or 0 without the path.
type localMetrics struct {
	// Direct is 1 while the data partition is in the direct state, 0
	// while it stages (set on the partitions of an instance with the
	// path on; gone when the partition is revoked).
	Direct *prometheus.GaugeVec // topic, partition
	// DirectLeaves counts leaves of the direct state by their cause
	// (txlocal.Cause), a fixed set: the log line says the rest.
	DirectLeaves *prometheus.CounterVec // topic, reason
	// heldRecords and heldBytes read the store at each scrape (under its
	// lock, a sum over the direct partitions): a hand-over pays nothing
	// for them, and a scrape is far rarer.
	heldRecords, heldBytes prometheus.GaugeFunc
	// store is the process's store once the runner made it.
	store *atomic.Pointer[txlocal.Store]
}

func newLocalMetrics() localMetrics {
	m := localMetrics{store: new(atomic.Pointer[txlocal.Store])}
	held := func(bytes bool) func() float64 {
		return func() float64 {
			s := m.store.Load()
			if s == nil {
				return 0
			}
			records, n := s.Held()
			if bytes {
				return float64(n)
			}
			return float64(records)
		}
	}
	m.Direct = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_transaction_direct_partition",
		Help: "apply.transaction.direct_local_partitions: 1 while this instance's data partition is in the direct state (its transactions' records go to this instance's resolver in memory, unstaged), 0 while it stages."}, []string{"topic", "partition"})
	m.DirectLeaves = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_transaction_direct_leaves_total",
		Help: "Data partitions that left the direct state, by reason: bound, interleaved, order, no_transaction, resolver_gone, resolver_wait, row_moved, stale, reclaim, stopped, revoked (docs/transactions.md, The local path). Each leave drops what the store held of the partition and reads it again from its offsets row to stage it."}, []string{"topic", "reason"})
	m.heldRecords = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgsink_transaction_direct_held_records",
		Help: "Records the direct partitions handed to this instance's resolver in memory and it has not applied yet."}, held(false))
	m.heldBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgsink_transaction_direct_held_bytes",
		Help: "What those records count in apply.max_buffered_bytes (part of pgsink_buffered_bytes): at most half of the budget, an eighth per partition."}, held(true))
	return m
}

// The local path (apply.transaction.direct_local_partitions,
// docs/transactions.md): a data partition of the instance whose resolver
// owns the transaction topic hands its transactions' records to that
// resolver (txlocal) instead of staging them, and the resolver moves the
// partition's offsets row in the transaction that applies them.
//
// While a partition is direct its worker moves its offsets row only when
// the store holds none of its records and no apply holds any (a batch
// without transaction records, from the row as the resolver left it); else
// only the resolver does: one writer at a time. Leaving is always the same
// move: the held records are dropped, and the partition reads again from
// its row's position, which no apply moved past anything unapplied; it
// then stages as usual. No record is ever both held and staged.

// directRetry is how soon a partition that could not enter the direct
// state (records staged and not applied) looks again: each look reads the
// partition's frontier and staged bytes.
const directRetry = 5 * time.Second

// directBatch runs a data partition's batch on the local path when the
// partition is (or may enter) the direct state, and reports whether it
// did (handled) and whether the partition may go on (ok). Not handled, the
// batch goes the usual way (staging).
func (p *partition) directBatch(batch *sink.Batch) (handled, ok bool) {
	if !p.direct && !p.enterDirect(batch) {
		return false, true
	}
	if why := p.mustLeave(); why.Cause != "" {
		p.leaveDirect(why)
		return true, true
	}
	claim, empty, in := p.local.Direct(p.id)
	if !in {
		why := p.mustLeave() // told to leave since
		if why.Cause == "" {
			// Dropped from the store by another's Leave: as if revoked.
			why = txlocal.Leaving{Cause: txlocal.CauseRevoked, Why: "no longer in the direct state"}
		}
		p.leaveDirect(why)
		return true, true
	}
	items := batch.Items
	if len(items) == 0 {
		// Records that write nothing (tombstones): the row moves past
		// them now if the worker is its writer, else with the apply
		// that takes the records held before them (Store.Passed).
		if batch.Next <= claim.NextOffset {
			return true, true
		}
		if !empty {
			p.local.Passed(p.id, batch.Next)
			return true, true
		}
		p.claim = claim
		if !p.apply(&sink.Batch{Claim: &p.claim, Next: batch.Next, StagingGeneration: batch.StagingGeneration}, nil) {
			return true, false
		}
		p.local.Moved(p.claim)
		return true, true
	}
	k := 0
	for k < len(items) && !transactional(&items[k]) {
		k++
	}
	if k > 0 {
		if !empty {
			// Records without transaction metadata after records held
			// for the resolver: the worker cannot apply them before those,
			// and the resolver applies whole transactions only.
			p.leaveDirect(txlocal.Leaving{Cause: txlocal.CauseNoTransaction, Why: "a record without transaction metadata after records held for the resolver"})
			return true, true
		}
		// The worker's own batch, from the row as the resolver left it:
		// the records before the first of a transaction (snapshot rows,
		// tombstones), or all of them.
		p.claim = claim
		own := &sink.Batch{Claim: &p.claim, Items: items[:k], Next: batch.Next, StagingGeneration: batch.StagingGeneration}
		if k < len(items) {
			own.Next = items[k].Record.Offset
		}
		if own.Next > p.claim.NextOffset || len(own.Items) > 0 {
			if !p.apply(own, nil) {
				return true, false
			}
			p.local.Moved(p.claim)
		}
		if k == len(items) {
			return true, true
		}
	}
	held := items[k:]
	sizes := make([]int64, len(held))
	var bytes int64
	for i := range held {
		sizes[i] = int64(len(held[i].Record.Key)+len(held[i].Record.Value)) + decodedBytes(&held[i])
		bytes += sizes[i]
	}
	if bytes > p.held {
		// The store releases exactly what leaves the batch's charge:
		// scaled down to what the batch holds, the last record taking
		// the rounding.
		var sum int64
		for i := range sizes {
			sizes[i] = sizes[i] * p.held / bytes
			sum += sizes[i]
		}
		sizes[len(sizes)-1] += p.held - sum
	}
	defer p.in.narrow(false)
	for rest, restSizes := held, sizes; len(rest) > 0; {
		n, err := p.local.Hold(p.id, rest, restSizes)
		var moved int64
		for _, b := range restSizes[:n] {
			moved += b
		}
		// They stay in the buffer budget until the store drops them (its
		// release), not until this batch is done.
		p.held -= moved
		rest, restSizes = rest[n:], restSizes[n:]
		if err == nil {
			break
		}
		var leave *txlocal.LeaveError
		switch {
		case errors.As(err, &leave):
			p.leaveDirect(leave.Leaving)
			return true, true
		case !errors.Is(err, txlocal.ErrFull):
			p.fail("handing records to the resolver", err)
			return true, false
		}
		// At the bound: the rest waits, its offset unmoved, its records
		// in the budget and a few more queued behind it (narrow), until
		// the resolver applies what the store holds. A transaction too large for the bound makes the
		// resolver wait for the rest, and then tell the partition to
		// leave (resolverApplier, localWait).
		select {
		case <-p.stopping:
			return true, false
		case <-p.ctx.Done():
			return true, false
		default:
		}
		if why := p.mustLeave(); why.Cause != "" {
			p.leaveDirect(why)
			return true, true
		}
		p.in.narrow(true)
		p.local.WaitRoom(holdPoll)
	}
	if last := held[len(held)-1].Record.Offset; batch.Next > last+1 {
		p.local.Passed(p.id, batch.Next) // tombstones after them
	}
	p.lastDirect = held[len(held)-1].Record.Offset
	return true, true
}

// mustLeave returns why a direct partition must leave, the zero Leaving if
// it need not: told to, or its oldest record held longer than staleHeld
// with no apply taking it. Records of transactions applied before, re-read
// by a replay or re-emitted by Debezium without their ENDs, would
// otherwise wait for ever, the partition's row before them; staging
// passes over them.
func (p *partition) mustLeave() txlocal.Leaving {
	if why := p.local.MustLeave(p.id); why.Cause != "" {
		return why
	}
	if p.local.Stale(p.id, staleHeld) {
		return txlocal.Leaving{Cause: txlocal.CauseStale,
			Why: "records held longer than " + staleHeld.String() + " without the resolver taking them (a replay or a re-emission of transactions applied before, or a transaction without END)"}
	}
	return txlocal.Leaving{}
}

// staleHeld is how long a direct partition's oldest record may wait for
// the resolver to take it. Longer than an apply of a backlog's chunk, so
// that a partition does not leave while the resolver works towards it.
const staleHeld = 10 * time.Second

// holdPoll bounds a wait for room in the store between two looks at the
// partition's stop and leave signals.
const holdPoll = 50 * time.Millisecond

// transactional reports whether an item goes to the resolver: a decoded
// record with Debezium's transaction block.
func transactional(it *sink.Item) bool { return it.Err == nil && it.Change.Transaction != nil }

// enterDirect puts the partition in the direct state if it may: the
// resolver is this instance's, nothing of the partition is in flight or
// staged and not applied (the resolver would apply its records out of
// order), and it is past the records it left the state for last time (the
// same transaction would make it leave again).
func (p *partition) enterDirect(batch *sink.Batch) bool {
	if len(batch.Items) == 0 || len(p.flight) > 0 || p.stagingStale || p.fenced || p.staging == nil {
		return false
	}
	if batch.Items[0].Record.Offset <= p.leftAt || time.Since(p.directTried) < directRetry {
		return false
	}
	if !p.local.ResolverLocal() {
		return false
	}
	p.directTried = time.Now()
	f, err := p.frontier.FrontierOf(p.ctx, p.id)
	if err != nil {
		return false
	}
	staged, _, err := p.frontier.StagedBytesAbove(p.ctx, p.id, f.Applied)
	if err != nil || staged > 0 {
		return false
	}
	loop := p.loop
	if !p.local.Enter(p.claim, func(n int64) { loop.release(n) }) {
		return false
	}
	p.direct = true
	p.metrics.Tx.Direct.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	p.log.Info("partition takes the local path: its transactions' records go to this instance's resolver unstaged", zap.Int64("from", p.claim.NextOffset))
	return true
}

// leaveDirect takes the partition out of the direct state (once no apply
// holds its records), drops what the store held of it, and reads again
// from its offsets row's position: everything from there stages as usual.
func (p *partition) leaveDirect(why txlocal.Leaving) {
	left, ok := p.dropDirect(why.Cause)
	if !ok {
		return
	}
	p.leftAt = max(p.leftAt, p.lastDirect)
	// The record before the row's position is the last one an apply took
	// (or unknown): what the worker read last is further on. The row
	// often stands at the tombstone of a delete the resolver applied,
	// which must not count as one whose delete compaction removed.
	p.log.Info("partition leaves the local path and stages: "+why.Why, zap.Int64("reads_again_from", p.claim.NextOffset),
		zap.String("reason", string(why.Cause)))
	p.seek(p.claim.NextOffset)
	p.previousKey = left.Before // after seek, which forgets it
}

// dropDirect leaves the direct state without reading again (revoked,
// stopping, re-claimed) for cause: the partition's claim is its row as it
// stands. It reports whether the partition was direct, and what the store
// returned of it.
func (p *partition) dropDirect(cause txlocal.Cause) (txlocal.Left, bool) {
	if !p.direct {
		return txlocal.Left{}, false
	}
	p.direct = false
	p.metrics.Tx.Direct.WithLabelValues(p.labels[0], p.labels[1]).Set(0)
	p.metrics.Tx.DirectLeaves.WithLabelValues(p.labels[0], string(cause)).Inc()
	left, ok := p.local.Leave(p.id)
	if ok {
		p.claim = left.Claim
	}
	return left, true
}

// neededNext is the next offset the partition needs from Kafka, from its
// claim's position next: a direct partition's own claim lags behind the
// records it handed over and the row the resolver moved past them, so a
// hole is judged from those (a hole mark would otherwise stop a partition
// that needs nothing below the low watermark).
func (p *partition) neededNext(next int64) int64 {
	if !p.direct {
		return next
	}
	next = max(next, p.lastDirect+1)
	if claim, _, ok := p.local.Direct(p.id); ok {
		next = max(next, claim.NextOffset)
	}
	return next
}
