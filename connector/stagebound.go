package connector

import (
	"context"
	"time"

	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// apply.transaction.max_staged_bytes (docs/transactions.md, "Staging
// ahead"): a data partition stages at most that far ahead of the resolver.
// Without a bound the partitions of a backlog stage the whole topic long
// before the resolver reads it back, more than the database keeps in
// memory and across checkpoints, so that the resolver's reads and deletes
// of staged rows go to disk and write full-page images; and tx_staged
// grows with the backlog.
//
// The resolver may run on another instance: it publishes in the target
// database how far it applied each partition's records, and whether it
// waits for events not staged yet (dedup.QueueApplied, MarkWaiting). A
// stager keeps what it staged since it claimed the partition in memory and
// reads the resolver's side only once that reaches the bound.
//
// Liveness: a stager at its bound holds a record of a source transaction
// whose END comes to the resolver (Debezium writes END after the events).
// Until the resolver reaches that END it applies transactions staged
// already, which moves the frontier; at an END whose events are not all
// staged (at the latest, that one) it marks that it waits, and every
// stager stages past its bound until its next apply. So the resolver never
// waits for a stager that waits for it, a transaction larger than the
// bound included (TestStagingBoundLargeTransaction).

// frontierReader is what a stager asks of the database (stagingFrontier:
// dedup.Transactions on the pool).
type frontierReader interface {
	FrontierOf(ctx context.Context, id dedup.PartitionID) (dedup.Frontier, error)
	StagedBytesAbove(ctx context.Context, id dedup.PartitionID, after int64) (bytes, through int64, err error)
}

// stagingFrontier reads the resolver's frontier from the target database.
type stagingFrontier struct {
	tx dedup.Transactions
	db dedup.DB
}

func (s stagingFrontier) FrontierOf(ctx context.Context, id dedup.PartitionID) (dedup.Frontier, error) {
	return s.tx.FrontierOf(ctx, s.db, id.Group, id.Topic, id.Partition)
}

func (s stagingFrontier) StagedBytesAbove(ctx context.Context, id dedup.PartitionID, after int64) (int64, int64, error) {
	return s.tx.StagedBytesAbove(ctx, s.db, id.Group, id.Topic, id.Partition, after)
}

// stagingBound is one data partition's account of what it staged and the
// resolver has not applied yet. Owned by the partition's worker.
type stagingBound struct {
	limit int64
	// loaded is set once the records staged before the claim were counted
	// (inherited): until the resolver applies past inheritedThrough, the
	// highest offset among them, they count whole.
	loaded           bool
	inherited        int64
	inheritedThrough int64
	// batches are the partition's staged batches since its claim, oldest
	// first, until the resolver applied them.
	batches []stagedBatch
	applied int64 // the resolver's frontier as last read
	// loggedAt is when the partition last logged that it waits.
	loggedAt time.Time
}

// stagedBatch is what one batch staged: bytes, its last record at through;
// short when it staged fewer of its records than bytes counts
// (sink.Stats.StagedShort).
type stagedBatch struct {
	through, bytes int64
	short          bool
}

func newStagingBound(limit int64) *stagingBound {
	return &stagingBound{limit: limit, applied: -1, inheritedThrough: -1}
}

// ahead is the bytes staged and not applied, as far as the bound knows:
// never less than the truth, since the frontier only moves forward.
func (b *stagingBound) ahead() int64 {
	var n int64
	if b.applied < b.inheritedThrough {
		n = b.inherited
	}
	for _, s := range b.batches {
		n += s.bytes
	}
	return n
}

// exact reports whether every byte of the account is in tx_staged: no
// counted batch staged fewer records than it counted. Then the resolver
// applies them, or waits for events (and marks it), or has stopped: the
// frontier unmoved is no sign that the account is wrong.
func (b *stagingBound) exact() bool {
	for _, s := range b.batches {
		if s.short {
			return false
		}
	}
	return true
}

// recountAfter is how long the frontier must stay unmoved before the
// partition counts again in the database.
func (b *stagingBound) recountAfter() time.Duration {
	if b.exact() {
		return exactRecount
	}
	return stagingRecount
}

// advance takes the resolver's frontier in: batches all of whose records
// are applied are no longer counted.
func (b *stagingBound) advance(applied int64) {
	b.applied = max(b.applied, applied)
	i := 0
	for i < len(b.batches) && b.batches[i].through <= b.applied {
		i++
	}
	b.batches = b.batches[i:]
}

// recount replaces the account by what the database holds: bytes staged
// above the frontier, the highest of them at offset through. The account counts what a batch offered to staging, and a
// batch of records of transactions applied already (Debezium's
// re-emissions, a replay) stages nothing of them: counted all the same,
// they would hold the partition at its bound with nothing staged for the
// resolver to apply, and the frontier would never move.
func (b *stagingBound) recount(staged, through int64) {
	b.loaded = true
	b.inherited, b.inheritedThrough = staged, through
	b.batches = b.batches[:0]
}

// staged counts a committed batch's staged records.
func (b *stagingBound) staged(st sink.Stats) {
	if st.Staged > 0 {
		b.batches = append(b.batches, stagedBatch{through: st.StagedThrough, bytes: st.StagedBytes, short: st.StagedShort})
	}
}

// stagingPollInterval is how often a partition at its bound looks at the
// resolver's frontier again: two reads by key.
const stagingPollInterval = 100 * time.Millisecond

// stagingRecount is how long a partition waits at its bound, the
// resolver's frontier unmoved, before it counts again in the database what
// it has staged ahead of the resolver (stagingBound.recount); and how often
// it counts again while that goes on. The count reads the group's staged
// rows. That is for an account that counts records its batches did not
// stage (stagingBound.exact); an exact one waits exactRecount.
const stagingRecount = 2 * time.Second

// exactRecount is stagingRecount for an exact account, whose bytes are
// all staged: the frontier stays unmoved while the resolver applies a
// backlog, several seconds in one transaction, and partitions at their
// bound that recounted every 2 s meanwhile read the whole staging table
// for nothing (docs/transactions.md, Cost). It is left for what the
// row counts cannot see: staged rows deleted without the resolver
// applying them (retention). Not for a record left behind (staged
// while the resolver applied its transaction): a recount counts it too.
const exactRecount = 30 * time.Second

// maxStagingRecount is the longest wait between recounts that keep finding
// the same bytes.
const maxStagingRecount = time.Minute

// stagingWaitLog is how often a partition that keeps reaching its bound
// says so.
const stagingWaitLog = time.Minute

// awaitStagingRoom holds a batch that stages records while the partition's
// staged records the resolver has not applied reach
// apply.transaction.max_staged_bytes and the resolver does not wait for
// events. The batch's offset is not moved; its records stay in memory, and
// the records after them fill the partition's queue, whose overflow
// pauses the partition (dispatch). It returns false when the partition is
// revoked or stops meanwhile: the batch is then not applied, and the next
// owner reads its records again.
func (p *partition) awaitStagingRoom(batch *sink.Batch) bool {
	b := p.staging
	if b == nil || len(batch.Items) == 0 || !sink.Stages(batch.Items) {
		return true
	}
	if !b.loaded {
		// Before this claim stages anything: what the partition's previous
		// owners staged, all below the claim's position, counts until the
		// resolver applied the last of it.
		f, err := p.frontier.FrontierOf(p.ctx, p.id)
		var inherited, through int64
		if err == nil {
			inherited, through, err = p.frontier.StagedBytesAbove(p.ctx, p.id, f.Applied)
		}
		b.loaded = true
		if err != nil {
			// The batch's own transaction tells whether the database is
			// there; the bound is counted from this claim on.
			p.log.Warn("reading what the partition's previous owners staged ahead of the resolver; counting from this claim on", zap.Error(err))
		} else {
			// Not until it passes the claim's position: the records
			// before the position may stage nothing (a tombstone, a
			// record of an applied transaction), and the frontier would
			// then stop short of it with all of them applied. Records
			// above the position (a replay rewound the partition: they
			// are staged again as it gets there) count as before, not
			// at all.
			b.inherited, b.inheritedThrough = inherited, min(through, batch.Claim.NextOffset-1)
			b.advance(f.Applied)
		}
	}
	ahead := p.metrics.Tx.StagedAhead.WithLabelValues(p.labels[0], p.labels[1])
	ahead.Set(float64(b.ahead()))
	if b.ahead() < b.limit {
		return true
	}
	waiting := p.metrics.Tx.StagingWaiting.WithLabelValues(p.labels[0], p.labels[1])
	waitSeconds := p.metrics.Tx.StagingWaitSeconds.WithLabelValues(p.labels[0])
	started, counted := time.Now(), time.Now()
	// unmoved is since when the frontier has not moved (or the account
	// was last recounted); recountAfter how long that must last for a
	// recount, doubled while a recount finds what the one before found
	// (a stopped resolver: each recount reads the group's staged rows).
	unmoved, recountAfter, recounted := started, b.recountAfter(), int64(-1)
	defer func() {
		waiting.Set(0)
		waitSeconds.Add(time.Since(counted).Seconds())
	}()
	for n := 0; ; n++ {
		f, err := p.frontier.FrontierOf(p.ctx, p.id)
		switch {
		case err != nil && p.ctx.Err() == nil && sink.Unavailable(err):
			// Looked at every stagingPollInterval by every waiting
			// partition: the instance's reporter counts it and warns
			// every 10 s at most, as for any wait for the target.
			p.reportDown(err)
		case err != nil && p.ctx.Err() == nil:
			p.log.Warn("reading the resolver's frontier; looking again", zap.Error(err))
		case err == nil:
			p.downSince = time.Time{}
			moved := f.Applied > b.applied
			b.advance(f.Applied)
			if moved {
				// What is left of the account may now be exact.
				unmoved, recountAfter = time.Now(), b.recountAfter()
			}
			if !f.ResolverWaiting && b.ahead() >= b.limit && time.Since(unmoved) >= recountAfter {
				unmoved = time.Now()
				p.metrics.Tx.StagingRecounts.WithLabelValues(p.labels[0], accountState(b.exact())).Inc()
				if staged, through, err := p.frontier.StagedBytesAbove(p.ctx, p.id, b.applied); err != nil {
					p.log.Warn("counting again what the partition staged ahead of the resolver; looking again", zap.Error(err))
				} else {
					if staged == recounted {
						recountAfter = min(2*recountAfter, maxStagingRecount)
					}
					recounted = staged
					b.recount(staged, min(through, batch.Claim.NextOffset-1))
				}
			}
			ahead.Set(float64(b.ahead()))
			if b.ahead() < b.limit || f.ResolverWaiting {
				if n > 0 {
					p.log.Debug("partition stages again", zap.Duration("waited", time.Since(started)), zap.Bool("resolver_waiting", f.ResolverWaiting))
				}
				return true
			}
		}
		if n == 0 {
			waiting.Set(1)
			if time.Since(b.loggedAt) >= stagingWaitLog {
				b.loggedAt = time.Now()
				p.log.Info("partition waits before staging more: its staged records the resolver has not applied reach apply.transaction.max_staged_bytes; the offset is not moved (logged once a minute; pgsink_transaction_staging_waiting)",
					zap.Int64("staged_ahead_bytes", b.ahead()), zap.Int64("max_staged_bytes", b.limit),
					zap.Int64("resolver_applied_offset", b.applied), zap.Int64("next_offset", batch.Claim.NextOffset),
					zap.String("account", accountState(b.exact())), zap.Duration("recount_after_unmoved", recountAfter))
			}
		}
		select {
		case <-p.stopping:
			return false
		case <-p.ctx.Done():
			return false
		case <-time.After(stagingPollInterval):
		}
		waitSeconds.Add(time.Since(counted).Seconds())
		counted = time.Now()
	}
}

// refreshStagedAhead brings an idle partition's
// pgsink_transaction_staged_ahead_bytes up to the resolver's frontier:
// otherwise set only before a staging batch, the series would go on
// reporting, for a partition no longer written, what the resolver has
// applied since. Read only while the account holds something.
func (p *partition) refreshStagedAhead() {
	b := p.staging
	if b == nil || !b.loaded || b.ahead() == 0 {
		return
	}
	f, err := p.frontier.FrontierOf(p.ctx, p.id)
	if err != nil {
		return // looked at again at the next idle check
	}
	b.advance(f.Applied)
	p.metrics.Tx.StagedAhead.WithLabelValues(p.labels[0], p.labels[1]).Set(float64(b.ahead()))
}

// stagingMetrics are the TxMetrics series of the staging bound.
type stagingMetrics struct {
	// StagedAhead is, per data partition of this instance, the bytes it
	// staged that the resolver has not applied, as far as it knows.
	StagedAhead *prometheus.GaugeVec // topic, partition
	// StagingWaiting is 1 while the partition waits at its bound.
	StagingWaiting *prometheus.GaugeVec // topic, partition
	// StagingWaitSeconds counts the time partitions waited at their bound.
	StagingWaitSeconds *prometheus.CounterVec // topic
	// StagingRecounts counts the recounts of partitions at their bound, by
	// the account's state (exact or short) when it was recounted: the one
	// sign of an account that keeps counting what the resolver will never
	// apply.
	StagingRecounts *prometheus.CounterVec // topic, account
}

// accountState names an account's state for the recount metric and log.
func accountState(exact bool) string {
	if exact {
		return "exact"
	}
	return "short"
}
