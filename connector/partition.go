package connector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/internal/backoff"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txapply"
	"github.com/pgsink/pgsink/txlocal"
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
	// cost is what the record was charged to the buffer budget when it
	// was dispatched: its wire bytes and overhead (messageBytes), plus
	// estimate, the decoded size predicted for it. Whoever drops the
	// record gives cost back; the worker that decodes it corrects the
	// estimate to the decoded size.
	cost     int64
	estimate int64
}

// applier applies a batch in one transaction together with its
// partition's offset (*sink.Applier).
type applier interface {
	Apply(ctx context.Context, b *sink.Batch) (sink.Stats, error)
}

// stopper is an error that stops the partition with its own account of
// what stopped (the resolver's, txapply.StoppedError).
type stopper interface {
	error
	StopWhat() string
}

// positions are this instance's rows in the offsets table
// (storedPositions: dedup.Offsets on the pool, claimed as this owner).
type positions interface {
	Read(ctx context.Context, id dedup.PartitionID) (dedup.Claim, error)
	Claim(ctx context.Context, id dedup.PartitionID, start int64) (dedup.Claim, error)
	// MarkStopped records on the claim's row why its partition stopped,
	// for `pgsink status` on any machine.
	MarkStopped(ctx context.Context, c dedup.Claim, reason string) error
}

// router decodes a record and routes it to its target table (*sink.Router).
type router interface {
	Item(ctx context.Context, dec *debezium.Decoder, rec debezium.Record) (sink.Item, bool, error)
	DeletesApplied(topic string) bool
}

// diverter takes the records that cannot be decoded out of a batch, to the
// dead-letter topic (*deadLetterTopic).
type diverter interface {
	divert(ctx context.Context, batch *sink.Batch) error
}

// pollLoop is what a worker asks of the poll loop that feeds it (*Runner):
// only the poll loop touches the consumer.
type pollLoop interface {
	// requestSeek asks for the partition to be fetched again from offset.
	requestSeek(p *partition, offset int64)
	// committed reports that PostgreSQL committed the partition up to next.
	committed(p *partition, next int64)
	// charge counts bytes a worker holds besides its fetched records (the
	// decoded items of its batch) in the buffer budget; release gives them
	// back with the records.
	charge(bytes int64)
	// release gives bytes of fetched records back to the buffer budget.
	release(bytes int64)
	// fatalf stops the instance.
	fatalf(log *zap.Logger, what string, err error)
	// stopped reports that the partition stopped on an error that needs an
	// operator: the instance is then not ready (/readyz).
	stopped(p *partition, reason string)
	// resumed reports that a stopped partition took a replay's rewind and
	// applies again.
	resumed(p *partition)
}

// workerDeps are a partition worker's collaborators, shared by every
// partition of a Runner.
type workerDeps struct {
	batch config.Batch
	// kafkaOffsets is apply.offsets: kafka: there is no offsets row to
	// check, Kafka's group protocol alone assigns.
	kafkaOffsets bool
	fenceGrace   time.Duration
	// stoppedLook is how often a stopped partition re-reads its row for a
	// replay's rewind (park); zero is idleCheck (tests shorten it).
	stoppedLook time.Duration
	applier     applier
	positions   positions
	router      router
	deadLetters diverter
	metrics     *Metrics
	loop        pollLoop
	// warned is shared by every partition: retries and fallbacks are
	// logged once per table, not once per partition.
	warned *warnOnce
	// panicOn is a test-only hook (internal/faults) run on every record
	// before it is decoded; nil in production.
	panicOn func(debezium.Record)
	// idle, when set, runs with the claim each time the worker finds no
	// record for idleCheck; an error stops the partition (the resolver's
	// check for transactions whose END never came).
	idle func(ctx context.Context, claim dedup.Claim) error
	// decodedSeed is the last partition's decoded-size prediction, the
	// starting point of a newly claimed one's.
	decodedSeed *decodedEstimate
	// pipeline is apply.pipeline: how many transactions of a partition may
	// be in flight at once (pipeline.go).
	pipeline int
	// spareConnection reports whether the pool has an idle connection for
	// a pipelined transaction; nil: always.
	spareConnection func() bool
	// frontier, set on data partitions under apply.consistency:
	// transaction, is where they read how far the resolver applied their
	// records, to stage at most maxStaged bytes ahead (stagebound.go).
	frontier  frontierReader
	maxStaged int64
	// outage waits out a target that is down where the worker touches it
	// outside an apply (a re-claim, a catalog read while routing).
	outage outageWait
	// resets, set with frontier, tells a reset of the staging table
	// (stagingreset.go).
	resets stagingResets
	// local, set on data partitions under
	// apply.transaction.direct_local_partitions, is the store their
	// records go to in the direct state (localpath.go); resolverOf, set on
	// the transaction topic's worker, is the store it tells that this
	// instance's resolver runs.
	local, resolverOf *txlocal.Store
}

// partition applies one owned partition: it batches its records in offset
// order and hands each batch to the sink. One goroutine per partition.
type partition struct {
	*workerDeps
	id    dedup.PartitionID
	claim dedup.Claim
	in    *recordQueue
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
	// operator; it then holds its position until revoked or rewound by a
	// replay (park). parkWarned is when a stopped partition last warned
	// that it could not read its row.
	stopped    atomic.Bool
	parkWarned time.Time
	// pausedAtClaim is the poll loop's: the partition stopped at its
	// claim (begin) and was assigned paused; the seek of the re-claim a
	// replay's rewind brings resumes it.
	pausedAtClaim bool
	decoder       *debezium.Decoder
	// fenced is set (by the worker) when another owner's epoch rejected a
	// batch: the worker waits for the group to revoke the partition.
	fenced bool
	// held is what the records the worker took into its current batch
	// count in apply.max_buffered_bytes (fetched bytes, and each decoded
	// item's estimated size): they stay in the budget until the batch is
	// done, so it bounds every record pgsink holds, not only the queued
	// ones.
	held int64
	// movesWarned holds the tables whose undetectable key moves the
	// worker has warned about: once per table and partition, the metric
	// counts the rest.
	movesWarned map[string]bool
	// lagTables are the tables whose pgsink_table_source_lag_seconds this
	// partition set: their series go when it is revoked, rather than
	// keep a lag nobody here updates.
	lagTables map[string]bool
	// previousKey is the Kafka key of the record before the one being
	// taken unless that record was a tombstone, else nil: a tombstone with
	// another key lost its delete event to log compaction
	// (watchTombstones).
	previousKey []byte
	// lastItems is how many items the worker's last batch held: the room
	// its next batch asks of the pool of item slices (itemSlice).
	lastItems int
	// decoded predicts the decoded size of this partition's records for
	// the poll loop's charge at dispatch; its worker keeps it current.
	decoded *decodedEstimate
	// flight is the transactions sent and not yet settled, oldest first
	// (pipeline.go); lastTables the tables of the batch sent last.
	flight     []*inflight
	lastTables map[*sink.Table]bool
	// staging counts what the partition staged ahead of the resolver;
	// nil but on a data partition under apply.consistency: transaction.
	staging *stagingBound
	// downSince is since when the worker's looks at the target outside
	// a retry loop (reportDown) find it unavailable; zero once one found
	// it there.
	downSince time.Time
	// stagingGen is the staging generation the partition synced to, which
	// its staging transactions check; stagingStale is set until it syncs
	// (at its start, and after a transaction failed that check).
	stagingGen   int64
	stagingStale bool
	// unsureRewind is the claim a staging rewind whose outcome is unknown
	// (its COMMIT went unanswered) left if it committed; nil otherwise
	// (adoptRewind).
	unsureRewind *dedup.Claim
	// hole is the hole mark collect took (holes.go), nil without one.
	hole *holeError
	// direct is set while the partition is in the local path's direct
	// state (localpath.go); directTried is when it last looked whether it
	// may enter it; lastDirect is the offset of the last record it handed
	// over, and leftAt that of the last it handed over before it left:
	// it does not enter again before it is past it.
	direct             bool
	directTried        time.Time
	lastDirect, leftAt int64
}

// newPartition builds the worker of a claimed partition; run starts it.
func newPartition(deps *workerDeps, id dedup.PartitionID, claim dedup.Claim, dec *debezium.Decoder, log *zap.Logger) *partition {
	ctx, cancel := context.WithCancel(context.Background())
	var staging *stagingBound
	if deps.frontier != nil {
		staging = newStagingBound(deps.maxStaged)
		if dec != nil {
			// The records of source transactions are staged raw and
			// decoded by the resolver: their row images need not be
			// decoded here too.
			dec.SkipTransactionalImages()
		}
	}
	return &partition{
		staging:      staging,
		stagingStale: deps.resets != nil,
		leftAt:       -1, lastDirect: -1,
		workerDeps: deps, id: id, claim: claim, decoder: dec, log: log,
		in:       newRecordQueue(max(2*deps.batch.MaxRecords, 64)),
		decoded:  newDecodedEstimate(deps.decodedSeed),
		labels:   [2]string{id.Topic, partitionLabel(id.Partition)},
		stopping: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// hold charges bytes the worker's current batch holds besides its fetched
// records (their decoded items) to the buffer budget, until the batch is
// done. The poll loop sees the budget spent and stops taking records; it
// never blocks the worker, which finishes its batch whatever the budget,
// so a batch larger than the budget still goes through.
func (p *partition) hold(bytes int64) {
	p.loop.charge(bytes)
	p.held += bytes
}

// releaseHeld gives the current batch's bytes back to the buffer budget.
func (p *partition) releaseHeld() {
	p.loop.release(p.held)
	p.held = 0
}

func (p *partition) run() {
	defer close(p.done)
	defer p.releaseHeld()
	// Revoked or stopping: what the store holds of the partition is
	// dropped (once no apply holds it); the next owner reads it again
	// from the row.
	defer p.dropDirect(txlocal.CauseRevoked)
	if p.resolverOf != nil {
		p.resolverOf.SetResolver(true)
		defer p.resolverOf.SetResolver(false)
	}
	if p.local != nil {
		// Staging until it enters: the series says which of the
		// instance's partitions stage, not only which do not.
		p.metrics.Tx.Direct.WithLabelValues(p.labels[0], p.labels[1]).Set(0)
	}
	for p.work() {
	}
}

// work applies the partition's records until it is revoked or stopping
// (false), or until it stopped and a replay's rewind un-stopped it (true:
// it goes on from the position the re-claim read).
func (p *partition) work() (again bool) {
	defer func() {
		// A bug outside decoding and applying (those recover per record):
		// this partition stops with its offset unmoved, the process and
		// the other partitions go on.
		if v := recover(); v != nil {
			p.metrics.Panics.WithLabelValues("worker").Inc()
			p.abandonFlight()
			p.fail("internal error (a bug in pgsink; please report it with this stack); the offset is not moved", sink.NewPanicError(v))
			p.releaseHeld()
			again = p.park()
		}
	}()
	for {
		p.releaseHeld() // the previous batch is done
		if p.stagingStale && len(p.flight) == 0 {
			if err := p.awaitStagingSync(); err != nil {
				if errors.Is(err, errFenced) && p.awaitFence() {
					continue
				}
				return false
			}
			continue
		}
		batch, last, more, err := p.collect()
		ok, clean := true, true
		switch {
		case errors.Is(err, errPipelineStopped):
			ok = false
		case errors.Is(err, errPipelineReset):
			clean = false
		case len(p.flight) > 0 && (err != nil || !more || !p.pipelines(batch)):
			// Everything sent settles before a batch that goes alone, an
			// error is acted on, or the worker returns.
			ok, clean = p.drain()
		}
		if !ok {
			if p.halt() {
				continue
			}
			return false
		}
		if !clean {
			continue // the records were taken from a position since left
		}
		if errors.Is(err, errRouteWaitStopped) {
			// Revoked or shutting down while waiting for the registry or
			// the target: nothing of the batch is applied, its offset
			// stays where it was, and the next owner reads those records
			// again.
			return false
		}
		if errors.Is(err, errFenced) {
			p.releaseHeld()
			if p.awaitFence() {
				continue
			}
			return false
		}
		if err != nil {
			what := "cannot resolve the topic's target table; the offset is not moved"
			var drift *sink.SchemaDriftError
			if errors.As(err, &drift) {
				what = "the source schema differs from the target and schema.evolve is strict; the offset is not moved"
			}
			var stop stopper
			if errors.As(err, &stop) {
				what = stop.StopWhat()
			}
			p.fail(what, err)
			p.releaseHeld()
			if p.park() {
				continue
			}
			return false
		}
		items, used := batch.Items, len(batch.Items)
		if p.local != nil {
			handled, ok := p.directBatch(batch)
			if !ok {
				if p.halt() {
					continue
				}
				return false
			}
			if handled {
				if p.direct {
					// Held by the store: the items are its now.
					items = nil
				}
				recycleItems(items, used)
				p.lastItems = used
				if !more {
					return false
				}
				continue
			}
		}
		if !p.awaitStagingRoom(batch) {
			// Revoked or stopping while at the staging bound: nothing of
			// the batch is applied, and the next owner reads it again.
			p.drain()
			return false
		}
		if len(batch.Items) > 0 || batch.Next > batch.Claim.NextOffset {
			ok := true
			if p.pipelines(batch) {
				ok, clean = p.sendPipelined(batch, last)
				// In flight: its items are recycled once it settles.
				items = nil
			} else {
				ok = p.apply(batch, last)
				p.noteTables(batch)
			}
			if ok && !clean {
				continue
			}
			if !ok {
				if p.halt() {
					continue
				}
				return false
			}
		}
		// Applied (or nothing to apply): no one refers to the items any
		// more, their slice serves the next batch.
		recycleItems(items, used)
		p.lastItems = used
		if !more {
			p.drain() // revoked or stopping: what is in flight ends first
			return false
		}
	}
}

// halt follows a batch the partition cannot go on from: a fenced partition
// waits for the group and goes on (true) if it claimed the partition back;
// any other stops it where it is until it is revoked, or until a replay
// rewinds it (park: true, go on).
func (p *partition) halt() bool {
	p.releaseHeld()
	if p.fenced && p.awaitFence() {
		return true
	}
	return p.park()
}

// fenceGrace is how long a fenced partition waits for the group to take it
// away before it claims it back. Longer than a default session timeout
// (45 s): if this instance is the zombie, its client notices by then and
// revokes the partition; if Kafka still assigns it here after that, the
// other claimant is the stale one and this instance must go on applying.
const fenceGrace = 60 * time.Second

// awaitFence parks a fenced partition until it is revoked (false) or, still
// assigned here after fenceGrace, re-claims it (true: go on).
func (p *partition) awaitFence() bool {
	grace := time.NewTimer(p.fenceGrace)
	defer grace.Stop()
	for {
		select {
		case <-p.in.waiting():
			p.in.drain(func(e envelope) { p.loop.release(e.cost) })
			p.in.release()
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

// park keeps a stopped partition's goroutine, draining its input so the
// poll loop never blocks on it, until it is revoked (false) or a replay
// rewinds it (true: re-claimed, it goes on from the rewound position).
//
// A stopped partition re-reads its offsets row every idleCheck, as an idle
// running one does (checkClaim), so that `pgsink replay` un-stops it
// without a restart of the instance: the operator's fix for what stopped
// it (records Kafka deleted, a record the target refused) is a rewind.
// Nothing else clears the stop (I5): an unchanged row, or another
// instance's claim, leaves it stopped with its offset unmoved. Under
// apply.offsets: kafka there is no row, and a stop lasts until the
// partition is revoked. A partition parked for another reason than a stop
// (an apply error that stops the instance) looks at nothing.
func (p *partition) park() bool {
	var look <-chan time.Time
	if p.stopped.Load() && !p.kafkaOffsets {
		t := time.NewTicker(cmp.Or(p.stoppedLook, idleCheck))
		defer t.Stop()
		look = t.C
	}
	for {
		select {
		case <-p.in.waiting():
			p.in.drain(func(e envelope) { p.loop.release(e.cost) })
			p.in.release()
		case <-p.stopping:
			return false
		case <-p.ctx.Done():
			return false
		case <-look:
			if p.rewoundWhileStopped() {
				return true
			}
		}
	}
}

// rewoundWhileStopped reads a stopped partition's row and, if a replay
// rewound it since the partition's claim, re-claims the partition under a
// new epoch (which clears the stop noted on the row), seeks to the stored
// position and clears the stop here: true, the worker goes on. Any other
// row, or a read that fails, leaves it stopped (false) until the next look.
func (p *partition) rewoundWhileStopped() bool {
	stored, err := p.positions.Read(p.ctx, p.id)
	if err != nil {
		switch {
		case p.ctx.Err() != nil:
		case sink.Unavailable(err):
			p.reportDown(err)
		case time.Since(p.parkWarned) >= unavailableLogEvery:
			// Every stopped partition looks every idleCheck: warned at
			// the pace of the instance's unavailable reporter at most.
			p.parkWarned = time.Now()
			p.log.Warn("a stopped partition cannot read its offsets row to look for a replay's rewind; it looks again every idle check (warned every 10 s at most)", zap.Error(err))
		}
		return false
	}
	p.downSince = time.Time{}
	if stored.Epoch <= p.claim.Epoch || !strings.HasPrefix(stored.Owner, dedup.ReplayOwnerPrefix) {
		// Unchanged, or another instance's claim: the group moves the
		// partition there, and this one does not fight it for the row.
		return false
	}
	if p.reclaim("stopped partition rewound by a replay") != nil {
		return false // revoked or stopping meanwhile, or the instance stops
	}
	p.stopped.Store(false)
	p.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(0)
	p.loop.resumed(p)
	// Not synced with the staging generation while it was stopped: it
	// syncs before it stages again, as at a claim.
	p.stagingStale = p.resets != nil
	return true
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
	cfg := p.batch
	// Sized for what is already queued, or for the last batch when the
	// queue is shorter: an Item is large, and growing the slice by
	// appends showed up in the drain's CPU profile as copies and write
	// barriers. Taken now, where the pool most likely still has the slice
	// the last batch gave back on this processor; given back at the idle
	// check if no record comes. The claim is where the transactions in
	// flight end (apply.pipeline), or the committed position.
	claim := p.tail()
	if err := p.holeReached(p.neededNext(claim.NextOffset)); err != nil {
		if _, ok := p.dropDirect(txlocal.CauseStopped); ok {
			// Stopped where its row stands (the records it held are
			// dropped), which no apply moves any more.
			err.next = p.claim.NextOffset
		}
		return &sink.Batch{Claim: &p.claim, Next: p.claim.NextOffset}, nil, false, err
	}
	batch = &sink.Batch{Claim: &claim, Next: claim.NextOffset, StagingGeneration: p.stagingGen,
		Items: itemSlice(min(cfg.MaxRecords, max(p.in.len(), p.lastItems, 16)))}
	var bytes int64
	var timer <-chan time.Time
	var deadline time.Time
	// Looked up once a batch: WithLabelValues hashes the label and takes a
	// lock, which every record paid for.
	consumed := p.metrics.Consumed.WithLabelValues(p.id.Topic)
	// take adds a record to the batch and reports whether the batch is full.
	// now is the caller's clock reading, taken after the record was.
	take := func(e envelope, now time.Time) (full bool, err error) {
		if p.seeking.Load() || e.gen != p.gen.Load() {
			p.loop.release(e.cost)
			return false, nil // fetched before a seek
		}
		if p.takeHole(e) {
			return true, nil // the batch ends at the hole
		}
		m := e.msg
		off := int64(m.TopicPartition.Offset)
		if off < batch.Next {
			p.loop.release(e.cost)
			p.metrics.Skipped.WithLabelValues(p.id.Topic, "below_position").Inc()
			return false, nil
		}
		p.held += e.cost
		consumed.Inc()
		// now may predate the record's dispatch: the fast paths below read
		// the clock before they look at the queue.
		taken := now
		if taken.Before(e.at) {
			taken = e.at
		}
		p.metrics.QueuedLatency.Observe(taken.Sub(e.at).Seconds())
		if !m.Timestamp.IsZero() {
			p.metrics.ReceiveLatency.Observe(taken.Sub(m.Timestamp).Seconds())
			p.metrics.DispatchLatency.Observe(e.at.Sub(m.Timestamp).Seconds())
		}
		item, ok, err := p.item(m)
		if err != nil {
			return false, err
		}
		p.watchTombstones(m, ok)
		weight := payloadBytes(m)
		if ok {
			if batch.Items == nil { // given back while the partition was idle
				batch.Items = itemSlice(min(cfg.MaxRecords, max(p.in.len()+1, p.lastItems, 16)))
			}
			batch.Items = append(batch.Items, item)
			decoded := decodedBytes(&item)
			p.decoded.observe(weight, decoded)
			p.decodedSeed.observe(weight, decoded)
			// Dispatch charged a prediction; the batch holds the
			// measured size.
			p.hold(decoded - e.estimate)
			weight += decoded
		} else {
			p.hold(-e.estimate)
			p.metrics.Skipped.WithLabelValues(p.id.Topic, "no_write").Inc()
		}
		batch.Next = off + 1
		last = m
		bytes += weight
		if timer == nil {
			deadline = e.at.Add(cfg.MaxWait.Std())
			timer = time.After(time.Until(deadline))
		}
		return len(batch.Items) >= cfg.MaxRecords || bytes >= int64(cfg.MaxBytes), nil
	}
	idle := time.NewTicker(idleCheck)
	defer idle.Stop()
	for n := 1; ; n++ {
		now := time.Now()
		if timer != nil && !now.Before(deadline) {
			// The batch's time is up: take only what is already waiting,
			// looking for a stop once in fastTakes records, as below.
			if n%fastTakes == 0 {
				select {
				case <-p.stopping:
					return batch, last, false, nil
				default:
				}
			}
			e, ok := p.in.take()
			if !ok {
				return batch, last, true, nil
			}
			if full, err := take(e, now); err != nil || full {
				return batch, last, err == nil, err
			}
			continue
		}
		// A record already waiting is taken without the select below,
		// whose five channels every record paid for under a backlog; one
		// record in fastTakes goes through it, so a stop is still seen
		// within as many records.
		if n%fastTakes != 0 {
			if e, ok := p.in.take(); ok {
				if full, err := take(e, now); err != nil || full {
					return batch, last, err == nil, err
				}
				continue
			}
		}
		select {
		case <-idle.C:
			// Nothing to apply: make sure the partition is still ours, so
			// a replay's rewind is noticed on a quiet topic too. A
			// transaction in flight will tell, if one is.
			if timer != nil || len(p.flight) > 0 {
				continue
			}
			p.in.release()
			// Nor its item slice, which may be sized for a backlog: an
			// idle partition holds none.
			recycleItems(batch.Items, 0)
			batch.Items = nil
			if p.direct && p.mustLeave().Cause != "" {
				// Told to leave while idle (the resolver moved to another
				// instance, or waits): run leaves with this empty batch.
				return batch, nil, true, nil
			}
			if err := p.checkClaim(); err != nil {
				return batch, nil, false, err
			}
			if p.idle != nil {
				if err := p.idle(p.ctx, p.claim); err != nil {
					return batch, nil, false, err
				}
			}
			if p.resets != nil {
				if err := p.idleStagingSync(); err != nil {
					return batch, nil, false, err
				}
				batch.StagingGeneration = p.stagingGen
			}
			p.refreshStagedAhead()
			claim = p.claim
			batch.Next = p.claim.NextOffset
		case <-p.stopping:
			return batch, last, false, nil
		case <-p.ctx.Done():
			return &sink.Batch{Claim: &p.claim, Next: p.claim.NextOffset}, nil, false, nil
		case <-timer:
			return batch, last, true, nil
		case <-p.oldestDone():
			// A transaction sent earlier is done: its outcome is taken
			// now, so that its records are reported when they commit.
			switch ok, clean := p.settleOldest(); {
			case !ok:
				return batch, nil, false, errPipelineStopped
			case !clean:
				return batch, nil, true, errPipelineReset
			}
		case <-p.in.waiting():
			e, ok := p.in.take()
			if !ok {
				continue
			}
			if full, err := take(e, time.Now()); err != nil || full {
				return batch, last, err == nil, err
			}
		}
	}
}

// fastTakes bounds how many records collect takes from a non-empty queue
// before it looks at its other channels (stop, timer, idle check) again.
const fastTakes = 32

// idleCheck is how often an idle partition re-reads its offsets row.
const idleCheck = 2 * time.Second

// errFenced stops a worker whose partition another instance claimed.
var errFenced = errors.New("partition claimed by another instance")

// checkClaim re-reads the partition's row: a replay's rewind is taken over
// (re-claim and seek), another owner's epoch stops the worker.
func (p *partition) checkClaim() error {
	if p.kafkaOffsets {
		return nil // no offsets row: Kafka's group protocol alone assigns
	}
	stored, err := p.positions.Read(p.ctx, p.id)
	if err != nil {
		if p.ctx.Err() != nil {
			return errFenced
		}
		if errors.Is(err, dedup.ErrNotClaimed) {
			return p.claimLost(p.claim.Epoch, 0)
		}
		if sink.Unavailable(err) {
			// Every idle partition looks every idleCheck: the instance's
			// reporter counts it and warns every 10 s at most.
			p.reportDown(err)
			return nil
		}
		p.log.Warn("checking the partition's stored position", zap.Error(err))
		return nil
	}
	p.downSince = time.Time{}
	if stored.Epoch == p.claim.Epoch || p.adoptRewind(stored) {
		return nil
	}
	if stored.Epoch < p.claim.Epoch {
		return p.claimLost(p.claim.Epoch, stored.Epoch)
	}
	if strings.HasPrefix(stored.Owner, dedup.ReplayOwnerPrefix) {
		return p.reclaim("partition rewound by a replay")
	}
	p.metrics.Fenced.Inc()
	p.fenced = true
	p.log.Warn("partition claimed by another instance; waiting for the group to move it", zap.String("owner", stored.Owner), zap.Int64("epoch", stored.Epoch))
	return errFenced
}

// reportDown tells the instance's reporter of a look at the target that
// found it unavailable outside a retry loop of its own (an idle check, a
// staging bound's look at the frontier), with how long the partition has
// found it so.
func (p *partition) reportDown(err error) {
	if p.downSince.IsZero() {
		p.downSince = time.Now()
	}
	p.outage.report.report(err, time.Since(p.downSince))
}

// claimLost takes the partition back at once when its stored epoch is below
// the claim's, or its row is gone (stored 0): no claim lowers an epoch nor
// deletes a row, so the target lost this instance's claim and what it
// committed under it (a failover to a standby that was behind, a restore),
// and no other instance holds the partition by the row. Waiting for the
// group to move it, as for a fencing, would only stall it; stopping the
// instance, as for an unknown error, would stop every partition. A row gone
// is claimed anew from offset 0: what the target lost is everything this
// group applied of the partition, and Kafka's low watermark above 0 then
// stops the partition loudly at the gap (holes.go) rather than skip it.
func (p *partition) claimLost(held, stored int64) error {
	p.metrics.TargetWentBack.WithLabelValues(p.id.Topic).Inc()
	p.log.Warn("the target lost this instance's claim on the partition (its stored epoch went back, or its row is gone: a failover to a standby that was behind, or a restore); claiming it again and reading from the position the target holds",
		zap.Int64("held_epoch", held), zap.Int64("stored_epoch", stored))
	return p.reclaim("claim lost by the target")
}

// reclaim takes the partition back under a new epoch and seeks to its
// stored position: after a replay rewound it, or after a stale claimant
// fenced it while the group still assigns it here.
//
// A target that is down meanwhile is waited for (outageWait), as an apply
// waits for it: the claim that the replay or the fencing calls for is no
// reason to stop the instance during a restart of PostgreSQL. The partition
// takes nothing meanwhile: its records wait in its queue, whose overflow
// pauses it, and its position is the stored one. Revoked or stopping, it
// gives up at once, its row left to the next owner's claim. Any other
// error stops the instance as before.
func (p *partition) reclaim(why string) error {
	p.dropDirect(txlocal.CauseReclaim) // it reads again from the stored position anyway
	var claim dedup.Claim
	err := p.outage.do(p.ctx, p.stopping, func() (err error) {
		claim, err = p.positions.Claim(p.ctx, p.id, 0)
		return err
	})
	if err != nil {
		if !errors.Is(err, sink.ErrStopping) && p.ctx.Err() == nil {
			p.loop.fatalf(p.log, "re-claim after a replay", err)
		}
		return errFenced
	}
	p.log.Info(why+": re-claimed", zap.Int64("epoch", claim.Epoch), zap.Int64("next_offset", claim.NextOffset))
	p.claim = claim
	p.unsureRewind = nil // the claim says where the partition is
	if p.staging != nil {
		// The partition reads again from the stored position: what it
		// staged before is counted anew from the database, as at a claim
		// (a replay rewinding it would count its batches twice).
		p.staging = newStagingBound(p.staging.limit)
	}
	p.seek(claim.NextOffset)
	return nil
}

// seek has the poll loop fetch the partition again from offset; until it
// has, every record taken was fetched before the seek and is dropped.
//
// The record before offset is unknown from there (a replay, a fencing, a
// rewind or a lost claim jumped over or back): watchTombstones must not
// pair the first tombstone read with whatever the worker read last.
func (p *partition) seek(offset int64) {
	p.previousKey = nil
	p.seeking.Store(true)
	p.loop.requestSeek(p, offset)
}

// item decodes and routes one record (sink.Router.Item). A record that
// cannot be routed now for a cause that passes is retried here, with
// backoff, until it can or the partition stops: its Avro schema that the
// registry cannot serve, or the target's catalog (read for a table's first
// record, or at a schema change, with its DDL) while PostgreSQL is down
// (sink.Unavailable, waited for as an apply waits for it: outageWait). The
// partition waits with its offset unmoved, and nothing is dead-lettered
// or stopped for the registry's or the target's sake.
func (p *partition) item(m *kafka.Message) (sink.Item, bool, error) {
	rec := toRecord(p.id, m)
	it, ok, err := p.routeRecovered(rec)
	if err == nil {
		return it, ok, nil // before errors.As, whose target escapes: no allocation per record
	}
	var unavailable *debezium.SchemaUnavailableError
	var registryWaits, targetWaits *backoff.Jittered
	var down time.Time // since when the target is found unavailable
	for {
		var d time.Duration
		switch {
		// The registry first: its client's error wraps the HTTP one, a
		// net.Error that sink.Unavailable would take for the target's.
		case errors.As(err, &unavailable):
			if registryWaits == nil {
				registryWaits = backoff.New(schemaRetryBase, schemaRetryLimit)
				waiting := p.metrics.SchemaWaiting.WithLabelValues(p.labels[0], p.labels[1])
				waiting.Set(1)
				defer waiting.Set(0)
			}
			p.metrics.SchemaWaits.WithLabelValues(p.id.Topic).Inc()
			d = registryWaits.Next()
			p.log.Warn("partition waits for the schema registry: the record's schema cannot be fetched; the offset is not moved",
				zap.Int64("offset", rec.Offset), zap.Uint32("schema_id", unavailable.ID), zap.Duration("retry_in", d), zap.Error(unavailable.Err))
		case sink.Unavailable(err):
			if targetWaits == nil {
				targetWaits, down = p.outage.schedule(), time.Now()
			}
			p.outage.report.report(err, time.Since(down))
			d = targetWaits.Next()
		case p.ctx.Err() != nil:
			// Abandoned during the attempt (the assignment lost, the
			// shutdown's timeout): the attempt met the cancellation,
			// which is no fault of the record or the configuration, and
			// stopping the partition for it would note a stop on a row
			// that is the next owner's.
			return sink.Item{}, false, errRouteWaitStopped
		default:
			return it, ok, err
		}
		select {
		case <-time.After(d):
		case <-p.stopping:
			return sink.Item{}, false, errRouteWaitStopped
		case <-p.ctx.Done():
			return sink.Item{}, false, errRouteWaitStopped
		}
		it, ok, err = p.routeRecovered(rec)
		if err == nil {
			if registryWaits != nil {
				p.log.Info("schema registry answered again: the partition goes on", zap.Int64("offset", rec.Offset))
			}
			return it, ok, nil
		}
	}
}

// The schema registry's retry schedule: a short outage is bridged quickly,
// a long one is not hammered.
const (
	schemaRetryBase  = 500 * time.Millisecond
	schemaRetryLimit = 30 * time.Second
)

// errRouteWaitStopped ends a batch whose next record waited for the schema
// registry or for the target's catalog when the partition was revoked or
// the process stops: the record is not taken, and the next owner reads it
// again.
var errRouteWaitStopped = errors.New("stopped while waiting for the schema registry or the target to route a record")

// routeRecovered is router.Item with a panic turned into an undecodable
// item, so that the record goes to the dead letters (or stops the
// partition under errors.tolerance none) and nothing else is lost. A
// record no dead letter may stand for (a transaction marker: a boundary
// cannot be skipped) stops the partition instead, its offset unmoved.
func (p *partition) routeRecovered(rec debezium.Record) (it sink.Item, ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.metrics.Panics.WithLabelValues("decode").Inc()
			if _, boundary := p.router.(boundaryRouter); boundary {
				p.log.Error("panic decoding a transaction marker: the partition stops at it", zap.Int64("offset", rec.Offset), zap.Any("panic", v))
				it, ok, err = sink.Item{}, false, &txapply.MarkerError{Topic: rec.Topic, Offset: rec.Offset, Err: sink.NewPanicError(v)}
				return
			}
			p.log.Error("panic decoding or routing a record: it goes to the dead letters", zap.Int64("offset", rec.Offset), zap.Any("panic", v))
			it, ok, err = sink.Item{Record: rec, Err: sink.NewPanicError(v)}, true, nil
		}
	}()
	if p.panicOn != nil {
		p.panicOn(rec)
	}
	return p.router.Item(p.ctx, p.decoder, rec)
}

// apply applies a batch and reports whether the partition may go on.
func (p *partition) apply(batch *sink.Batch, last *kafka.Message) bool {
	if err := p.deadLetters.divert(p.ctx, batch); err != nil {
		p.fail("cannot write to the dead-letter topic; the offset is not moved", err)
		return false
	}
	t0 := time.Now()
	st, err := p.applier.Apply(withStopping(p.ctx, p.stopping), batch)
	p.claim = *batch.Claim
	ok := p.settle(batch, last, st, err, time.Since(t0))
	if ok && err == nil && p.staging != nil {
		p.staging.staged(st)
	}
	return ok
}

// settle takes the outcome of a batch's Apply, which took elapsed, and
// reports whether the partition may go on. p.claim is already where the
// batch's committed transactions left it.
func (p *partition) settle(batch *sink.Batch, last *kafka.Message, st sink.Stats, err error, elapsed time.Duration) bool {
	p.reportFallbacks(batch, st)
	if st.Panics > 0 {
		p.metrics.Panics.WithLabelValues("apply").Add(float64(st.Panics))
	}
	var fenced *dedup.FencedError
	var moved *dedup.PositionMovedError
	var poison *sink.PoisonError
	var stop stopper
	var panicked *workerPanicError
	switch {
	case err == nil:
	case errors.As(err, &panicked):
		p.metrics.Panics.WithLabelValues("worker").Inc()
		p.fail("internal error (a bug in pgsink; please report it with this stack); the offset is not moved", panicked.PanicError)
		return false
	case errors.As(err, &fenced) && strings.HasPrefix(fenced.Owner, dedup.ReplayOwnerPrefix):
		// `pgsink replay` rewound the partition under a new epoch: take it
		// back (the replay is no instance) and continue from there.
		return p.reclaim("partition rewound by a replay") == nil
	case errors.As(err, &fenced) && fenced.Lost():
		return p.claimLost(fenced.Epoch, fenced.Current) == nil
	case errors.Is(err, dedup.ErrNotClaimed):
		return p.claimLost(p.claim.Epoch, 0) == nil
	case errors.As(err, &fenced) && p.adoptStoredRewind():
		// The epoch that fenced the batch is the partition's own staging
		// rewind's, whose COMMIT went unanswered: nothing of the batch
		// is applied, and the partition reads again from the rewind.
		return true
	case errors.As(err, &fenced):
		p.metrics.Fenced.Inc()
		p.fenced = true
		p.log.Warn("partition fenced: another instance claimed it; waiting for the group to move it", zap.Error(err))
		return false
	case errors.Is(err, dedup.ErrStagingReset):
		// Nothing of the batch is applied: the partition syncs (and may
		// rewind) before it stages again, then reads from its position.
		p.log.Warn("a staging transaction found the staging marker changed (the target crashed or failed over, or another partition saw it first): checking the generation", zap.Error(err))
		p.stagingStale = true
		p.seek(p.claim.NextOffset)
		return true
	case errors.As(err, &moved):
		// The row is what the target holds: read from there.
		if moved.Stored < moved.Expected {
			p.metrics.TargetWentBack.WithLabelValues(p.id.Topic).Inc()
			p.log.Warn("the partition's stored position went back under this instance's claim: the target lost commits (a failover to a standby that was behind, or a restore); reading again from the position it holds",
				zap.Int64("from", moved.Expected), zap.Int64("to", moved.Stored))
		} else {
			p.log.Info("stored position moved under this instance's claim: seeking", zap.Int64("from", moved.Expected), zap.Int64("to", moved.Stored))
		}
		p.claim.NextOffset = moved.Stored
		p.seek(moved.Stored)
		return true
	case errors.As(err, &poison):
		p.fail(fmt.Sprintf("record cannot be applied and errors.tolerance is none: fix it or the target, then rewind the partition to it (pgsink replay --topic %s --partition %d --from offset:%d) or restart",
			p.id.Topic, p.id.Partition, p.claim.NextOffset), err)
		return false
	case errors.As(err, &stop):
		p.fail(stop.StopWhat(), err)
		return false
	case p.ctx.Err() != nil, errors.Is(err, errResolverStopping), errors.Is(err, sink.ErrStopping):
		return false
	default:
		p.loop.fatalf(p.log, "apply failed", err)
		return false
	}
	p.report(batch, st, last, elapsed)
	p.loop.committed(p, batch.Next)
	return true
}

// warnUndetectableMoves says, once per table, that updates arrive whose
// key change pgsink cannot see.
func (p *partition) warnUndetectableMoves(table string, n, next int64) {
	if p.movesWarned[table] {
		return
	}
	if p.movesWarned == nil {
		p.movesWarned = map[string]bool{}
	}
	p.movesWarned[table] = true
	p.log.Warn("updates whose before image does not carry the table's key (not the source's primary key): a change of a key column would leave the old row in the target; set REPLICA IDENTITY FULL on the source table (counted in pgsink_undetectable_key_moves_total, warned once)",
		zap.String("table", table), zap.Int64("updates", n), zap.Int64("next_offset", next))
}

// reportFallbacks counts, applied or not, the transactions a batch took
// beyond its one: transient errors retried, upserts-only second attempts,
// splits around a record's data. Each kind is also logged once per table
// (counted from then on by its metric only), so that no way around a
// failure goes unnoticed.
func (p *partition) reportFallbacks(batch *sink.Batch, st sink.Stats) {
	p.metrics.Retries.Add(float64(st.Retries))
	if len(batch.Items) == 0 || batch.Items[0].Table == nil {
		if st.Retries > 0 && p.warned.first("retry", "") {
			p.log.Warn("transient apply error retried (counted in pgsink_apply_retries_total, warned once)", zap.Error(st.RetryCause))
		}
		return
	}
	ref := batch.Items[0].Table.Ref()
	if st.Retries > 0 && p.warned.first("retry", ref) {
		p.log.Warn("transient apply error retried (counted in pgsink_apply_retries_total, warned once per table)",
			zap.String("table", ref), zap.Int("retries", st.Retries), zap.Error(st.RetryCause))
	}
	if st.InsertConflicts > 0 {
		p.metrics.InsertConflicts.WithLabelValues(ref).Add(float64(st.InsertConflicts))
		if st.RestagedConflicts < st.InsertConflicts && p.warned.first("insert_conflict", ref) {
			p.log.Warn("a create met a key the target already held: the batch was applied again with upserts only (counted in pgsink_insert_conflicts_total, warned once per table)",
				zap.String("table", ref), zap.Int64("next_offset", batch.Next))
		}
		if st.RestagedConflicts > 0 && p.warned.first("restaged", ref) {
			p.log.Warn("a record of a source transaction was staged already (Debezium re-emitted it after a restart, or a replay): the batch was staged again keeping one of each (counted in pgsink_insert_conflicts_total, warned once per table)",
				zap.String("table", ref), zap.Int64("next_offset", batch.Next))
		}
	}
	if st.Splits > 0 {
		p.metrics.Splits.WithLabelValues(ref).Add(float64(st.Splits))
		if p.warned.first("split", ref) {
			p.log.Warn("the target refused a transaction for some record's data without naming the record: it was applied again in halves, and what fails alone goes to the dead letters (counted in pgsink_apply_splits_total, warned once per table)",
				zap.String("table", ref), zap.Int("splits", st.Splits), zap.Int64("next_offset", batch.Next), zap.Error(st.SplitCause))
		}
	}
}

// report counts what an applied batch did.
func (p *partition) report(batch *sink.Batch, st sink.Stats, last *kafka.Message, elapsed time.Duration) {
	p.metrics.ApplySeconds.Observe(elapsed.Seconds())
	p.metrics.ConnectionWait.Observe(st.ConnectionWait.Seconds())
	p.metrics.BatchRecords.Observe(float64(len(batch.Items)))
	if st.Stale > 0 {
		p.metrics.Skipped.WithLabelValues(p.id.Topic, "stale").Add(float64(st.Stale))
	}
	if st.Skipped > 0 {
		p.metrics.Skipped.WithLabelValues(p.id.Topic, "event_type").Add(float64(st.Skipped))
	}
	if st.Duplicates > 0 {
		p.metrics.Skipped.WithLabelValues(p.id.Topic, "duplicate").Add(float64(st.Duplicates))
	}
	if st.DeadLetters > 0 {
		p.metrics.DeadLetters.WithLabelValues(p.id.Topic, "table").Add(float64(st.DeadLetters))
	}
	if st.Staged > 0 {
		p.metrics.Tx.Staged.WithLabelValues(p.id.Topic).Add(float64(st.Staged))
	}
	if len(batch.Items) > 0 && batch.Items[0].Table != nil {
		ref := batch.Items[0].Table.Ref()
		if st.Unresolved > 0 {
			p.metrics.Unresolved.WithLabelValues(ref).Add(float64(st.Unresolved))
			p.log.Warn("rows whose unchanged-TOAST placeholders found no value: no stored row to keep it from, nor an old key's row for a primary-key change; those columns are NULL; set REPLICA IDENTITY FULL on the source table",
				zap.String("table", ref), zap.Int64("rows", st.Unresolved), zap.Int64("next_offset", batch.Next))
		}
		if st.UndetectableMoves > 0 {
			p.metrics.UndetectableMoves.WithLabelValues(ref).Add(float64(st.UndetectableMoves))
			p.warnUndetectableMoves(ref, st.UndetectableMoves, batch.Next)
		}
		for reason, n := range st.UnsweptSnapshots {
			p.metrics.SnapshotsUnswept.WithLabelValues(ref, string(reason)).Add(float64(n))
			p.log.Warn("a snapshot of the table completed and is not reconciled: rows deleted in the source while nothing streamed stay in the target (counted in pgsink_snapshot_sweeps_skipped_total)",
				zap.String("table", ref), zap.String("reason", string(reason)), zap.Int64("next_offset", batch.Next))
		}
		p.metrics.Applied.WithLabelValues(ref, "upsert").Add(float64(st.Upserted))
		p.metrics.Applied.WithLabelValues(ref, "delete").Add(float64(st.Deleted))
		p.metrics.Applied.WithLabelValues(ref, "truncate").Add(float64(st.Truncated))
	}
	now := time.Now()
	if last != nil && !last.Timestamp.IsZero() {
		p.metrics.EndToEnd.Observe(now.Sub(last.Timestamp).Seconds())
	}
	// Every record, not only the batch's youngest: the batch's oldest
	// record waited longest, and the percentiles must see it.
	for i := range batch.Items {
		if ts := batch.Items[i].Record.Timestamp; !ts.IsZero() {
			p.metrics.RecordLatency.Observe(now.Sub(ts).Seconds())
		}
	}
	p.reportSourceLag(batch, now)
}

// reportSourceLag sets how far behind the source the batch committed at
// now left its partition and tables. A source clock ahead of this one
// would make a lag negative: it counts as 0.
func (p *partition) reportSourceLag(batch *sink.Batch, now time.Time) {
	newest := sink.NewestSourceTs(batch.Items)
	if newest.IsZero() {
		return // tombstones, markers, or records without a source time
	}
	p.metrics.SourceLag.WithLabelValues(p.labels[0], p.labels[1]).Set(max(now.Sub(newest), 0).Seconds())
	p.metrics.SourceApplied.WithLabelValues(p.labels[0], p.labels[1]).Set(float64(newest.UnixMicro()) / 1e6)
	byTable := map[*sink.Table]time.Time{}
	for i := range batch.Items {
		it := &batch.Items[i]
		if it.Err != nil || it.Table == nil || it.Change.SourceTs.IsZero() {
			continue
		}
		p.metrics.SourceLagRecords.Observe(max(now.Sub(it.Change.SourceTs), 0).Seconds())
		if it.Change.SourceTs.After(byTable[it.Table]) {
			byTable[it.Table] = it.Change.SourceTs
		}
	}
	for table, ts := range byTable {
		ref := table.Ref()
		if p.lagTables == nil {
			p.lagTables = map[string]bool{}
		}
		p.lagTables[ref] = true
		p.metrics.TableSourceLag.WithLabelValues(ref).Set(max(now.Sub(ts), 0).Seconds())
	}
}

// fail stops the partition without moving its offset (I5).
func (p *partition) fail(what string, err error) {
	p.stopped.Store(true)
	p.metrics.Stopped.WithLabelValues(p.labels[0], p.labels[1]).Set(1)
	p.log.Error("partition stopped: "+what, zap.Int64("offset", p.claim.NextOffset), zap.Error(err))
	reason := what + ": " + err.Error()
	p.loop.stopped(p, reason)
	if p.kafkaOffsets {
		return // no offsets row to note it on
	}
	ctx, cancel := context.WithTimeout(context.Background(), markStoppedTimeout)
	defer cancel()
	if err := p.positions.MarkStopped(ctx, p.claim, reason); err != nil {
		p.log.Warn("noting the stop in the offsets table failed; pgsink status will not show it", zap.Error(err))
	}
}

// markStoppedTimeout bounds noting a stop in the offsets table: PostgreSQL
// being down may be why the partition stopped.
const markStoppedTimeout = 10 * time.Second

func partitionLabel(n int32) string { return strconv.Itoa(int(n)) }
