package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/internal/backoff"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// offsetsClient is what claiming an assignment asks of the consumer
// (*kafka.Consumer).
type offsetsClient interface {
	QueryWatermarkOffsets(topic string, partition int32, timeoutMs int) (low, high int64, err error)
	Committed(partitions []kafka.TopicPartition, timeoutMs int) ([]kafka.TopicPartition, error)
}

// bulkPositions claims many partitions in one transaction
// (storedPositions: dedup.Offsets.ClaimAll).
type bulkPositions interface {
	ClaimAll(ctx context.Context, starts []dedup.Start) ([]dedup.Claim, error)
}

// claimed is one assigned partition's claim and Kafka's watermarks for it,
// or why it could not be claimed.
type claimed struct {
	id        dedup.PartitionID
	claim     dedup.Claim
	low, high int64
	err       error
}

// claimer claims the partitions of an assignment together: a restarted
// instance is assigned all of its partitions at once, and claiming them
// one after another, two round trips each, kept every one of them waiting
// for the last.
type claimer struct {
	start        config.Start
	kafkaOffsets bool
	owner        string
	store        bulkPositions
	log          *zap.Logger
	// firstWait is the first pause before a retry (watermarks, claims);
	// later ones grow.
	firstWait time.Duration
	// claimFor is how long a claim statement is retried against
	// PostgreSQL errors, at least claimAttempts times.
	claimFor time.Duration
	// outage reports an attempt that found the target down (its counter
	// and rate-limited warning); downSince is since when the partitions
	// being claimed have found it so (zero: not before this attempt).
	outage    outageWait
	downSince time.Time
	// ctx ends the claims when the instance stops (nil: never); lost
	// reports that the group took the assignment away meanwhile (nil:
	// never): either ends the retries of a claim that failed.
	ctx  context.Context
	lost func() bool
}

// errAwaitingTarget marks a partition whose claim found the target
// unavailable: it is not claimed, and the caller claims it again later
// (Runner.claimAwaiting), for as long as the outage lasts.
var errAwaitingTarget = errors.New("not claimed yet: the target is unavailable")

// watermarkParallelism bounds the watermark requests in flight at once:
// enough to overlap the round trips of a large assignment, few enough not
// to flood the brokers after a mass restart.
const watermarkParallelism = 16

// claimChunk bounds the partitions of one claim statement, so one
// transaction's locks and arguments stay bounded whatever the assignment.
const claimChunk = 1000

// claimAttempts is the fewest tries of one claim statement against
// PostgreSQL errors other than the target being unavailable, and
// claimRetryFor the least time they span, after which the partitions it
// holds are not claimed and the instance stops. A target that is down (a
// restart, a failover: sink.Unavailable) counts against neither: the claim
// ends at once with errAwaitingTarget and is tried again later, for as
// long as the outage lasts (claimStored).
const (
	claimAttempts = 5
	claimRetryFor = time.Minute
)

// claimAttemptTimeout bounds one claim statement, connecting included. A
// claim runs in the rebalance callback or in the poll loop, and either
// holds Poll, which feeds every other partition, for as long as it takes.
// A target that drops packets rather than refuse them answers nothing: the
// pool has no connect timeout unless postgres.url sets one, TCP keepalives
// notice no dead peer while a request waits for its answer, and the
// kernel's retransmissions go on for minutes. So a claim that gets no
// answer within it is taken for an outage, as a refused one is: its
// partitions await the target and the poll loop tries again on the
// outage's schedule. Far above what a claim of a whole assignment takes
// (docs/benchmarks.md); below any max.poll.interval.ms the client takes
// (at least session.timeout.ms, which brokers keep at 6 s or more by
// default).
const claimAttemptTimeout = 5 * time.Second

// watermarkAttempts bounds how long a claim waits for Kafka to answer
// (watermarkTimeoutMs each, with growing pauses between): long enough to
// ride out a broker restart, after which giving up stops the instance.
const (
	watermarkAttempts  = 6
	watermarkTimeoutMs = 10000
)

// claimAll resolves the start of every partition in ids (its watermarks,
// fetched concurrently) and claims them: under apply.offsets: postgres in
// one statement per claimChunk partitions, under apply.offsets: kafka by
// one request for the group's committed offsets. The results are in the
// order of ids; a partition whose err is set is not claimed.
func (c claimer) claimAll(client offsetsClient, ids []dedup.PartitionID) []claimed {
	out := make([]claimed, len(ids))
	for i, id := range ids {
		out[i].id = id
	}
	c.watermarks(client, out)
	var ready []*claimed
	for i := range out {
		if out[i].err == nil {
			ready = append(ready, &out[i])
		}
	}
	if c.kafkaOffsets {
		c.committed(client, ready)
		return out
	}
	for len(ready) > 0 {
		n := min(len(ready), claimChunk)
		c.claimStored(ready[:n])
		chunk := ready[:n]
		ready = ready[n:]
		if err := chunk[0].err; errors.Is(err, errAwaitingTarget) {
			// The next chunks would wait for the target as long each.
			for _, p := range ready {
				p.err = err
			}
			break
		}
	}
	return out
}

// startOf is where a partition with no stored position begins.
func (c claimer) startOf(p *claimed) int64 {
	if c.start == config.StartLatest {
		return p.high
	}
	return p.low
}

// watermarks fills in each partition's watermarks from at most
// watermarkParallelism requests at a time.
func (c claimer) watermarks(client offsetsClient, ps []claimed) {
	work := make(chan *claimed)
	var wg sync.WaitGroup
	for range min(watermarkParallelism, len(ps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				p.low, p.high, p.err = c.watermarksOf(client, p.id)
				if p.err != nil {
					p.err = fmt.Errorf("watermarks of %s: %w", p.id, p.err)
				}
			}
		}()
	}
	for i := range ps {
		work <- &ps[i]
	}
	close(work)
	wg.Wait()
}

// watermarksOf reads a partition's watermarks, retrying while the broker
// does not answer: a broker that restarts during a rebalance must not stop
// the instance.
func (c claimer) watermarksOf(client offsetsClient, id dedup.PartitionID) (low, high int64, err error) {
	wait := c.firstWait
	for attempt := 1; ; attempt++ {
		low, high, err = client.QueryWatermarkOffsets(id.Topic, id.Partition, watermarkTimeoutMs)
		if err == nil || attempt == watermarkAttempts {
			return low, high, err
		}
		c.log.Warn("watermarks unavailable, retrying", zap.Stringer("partition", id), zap.Error(err))
		time.Sleep(wait)
		wait *= 2
	}
}

// claimStored claims ps in the offsets table in one statement, retrying
// it on PostgreSQL errors; when it gives up, none is claimed.
//
// A target that is unavailable, or does not answer an attempt within
// claimAttemptTimeout (one that drops packets), is not waited for here:
// the attempt is reported (outageWait's counter and warning) and every
// partition of ps ends with errAwaitingTarget. The claim of a rebalance runs in
// the rebalance callback, and a callback that waits for an outage keeps
// the member from its group: past max.poll.interval.ms the group drops it
// and gives its partitions to another member, while the client, inside
// the callback, does not tell it the assignment is lost — the wait went
// on and, once the target was back, claimed partitions another member
// applied by then, fencing it for its fenceGrace (60 s without an applying
// owner, TestE2ELateClaimAfterTheGroupDroppedTheMember). So the caller
// assigns such partitions paused and claims them from the poll loop
// (Runner.claimAwaiting), where Poll keeps the member in its group and a
// revocation can reach them. What ends the retries of any other error:
// the instance stopping (ctx), or the client reporting the assignment lost
// (lost); the error then wraps sink.ErrStopping: not claimed, and no
// reason to stop the instance. Otherwise it is retried claimAttempts times
// and for claimFor, then gives up.
func (c claimer) claimStored(ps []*claimed) {
	starts := make([]dedup.Start, len(ps))
	for i, p := range ps {
		starts[i] = dedup.Start{PartitionID: p.id, Offset: c.startOf(p)}
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	waits := backoff.New(c.firstWait/5, 5*c.firstWait)
	var deadline time.Time
	giveUp := func(err error) {
		for _, p := range ps {
			p.err = err
		}
	}
	for attempt := 0; ; {
		actx, cancel := context.WithTimeout(ctx, claimAttemptTimeout)
		claims, err := c.store.ClaimAll(actx, starts)
		unanswered := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			for i, p := range ps {
				p.claim = claims[i]
			}
			return
		}
		if ctx.Err() != nil || (c.lost != nil && c.lost()) {
			giveUp(errors.Join(sink.ErrStopping, err))
			return
		}
		if unanswered {
			// An attempt that timed out may yet be applied by the server
			// (a wait for a former owner's lock): it only raised the
			// epoch, which the next claim raises again.
			err = fmt.Errorf("the target did not answer within %s: %w", claimAttemptTimeout, err)
		}
		if unanswered || sink.Unavailable(err) {
			var since time.Duration
			if !c.downSince.IsZero() {
				since = time.Since(c.downSince)
			}
			c.outage.report.report(err, since)
			giveUp(errors.Join(errAwaitingTarget, err))
			return
		}
		attempt++
		if attempt == 1 {
			deadline = time.Now().Add(c.claimFor)
		}
		if attempt >= claimAttempts && !time.Now().Before(deadline) {
			giveUp(err)
			return
		}
		c.log.Warn("claim failed, retrying", zap.Int("partitions", len(ps)), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(waits.Next()):
		}
	}
}

// committed is the claim for apply.offsets: kafka: the group's committed
// offset, or the start when it has none. There is no epoch and no fencing:
// two instances may apply a partition for a moment during a rebalance,
// which at-least-once accepts.
func (c claimer) committed(client offsetsClient, ps []*claimed) {
	if len(ps) == 0 {
		return
	}
	tps := make([]kafka.TopicPartition, len(ps))
	for i, p := range ps {
		topic := p.id.Topic
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: p.id.Partition}
	}
	got, err := client.Committed(tps, 10000)
	offsets := make(map[dedup.PartitionID]kafka.Offset, len(got))
	for _, tp := range got {
		if tp.Topic != nil && tp.Error == nil {
			offsets[dedup.PartitionID{Group: ps[0].id.Group, Topic: *tp.Topic, Partition: tp.Partition}] = tp.Offset
		}
	}
	for _, p := range ps {
		if err != nil {
			p.err = fmt.Errorf("committed offset of %s: %w", p.id, err)
			continue
		}
		next := c.startOf(p)
		if o, ok := offsets[p.id]; ok && o >= 0 {
			next = int64(o)
		}
		p.claim = dedup.Claim{PartitionID: p.id, NextOffset: next, Owner: c.owner}
	}
}
