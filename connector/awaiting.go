package connector

import (
	"errors"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/internal/backoff"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// awaitingClaims are the partitions assigned to this instance whose claim
// found the target unavailable (errAwaitingTarget). They are assigned
// paused, without a worker, so nothing of them is fetched or applied; the
// poll loop claims them once the target is back (claimAwaiting), and a
// revocation drops them (unawait). Between the two, nothing else holds
// them: each one is either claimed by the poll loop, revoked, or left to
// the shutdown.
type awaitingClaims struct {
	// since is when each partition's claim first found the target down.
	since map[dedup.PartitionID]time.Time
	// next is when the poll loop tries again, on the outage's schedule
	// (nil while nothing awaits).
	next  time.Time
	waits *backoff.Jittered
}

// awaitingClient is what claiming the awaiting partitions asks of the
// Kafka client (*kafka.Consumer).
type awaitingClient interface {
	offsetsClient
	Seek(partition kafka.TopicPartition, ignoredTimeoutMs int) error
	Resume(partitions []kafka.TopicPartition) error
}

// await holds an assigned partition, paused, until its claim goes through.
func (r *Runner) await(id dedup.PartitionID, since time.Time) {
	a := &r.awaiting
	if a.since == nil {
		a.since = map[dedup.PartitionID]time.Time{}
	}
	a.since[id] = since
	if a.waits == nil {
		a.waits = r.outage().schedule()
		a.next = time.Now().Add(a.waits.Next())
	}
	r.metrics.AwaitingClaim.Set(float64(len(a.since)))
}

// unawait drops a partition revoked before its claim went through: it was
// never this instance's, and nothing of it was fetched or applied here.
func (r *Runner) unawait(id dedup.PartitionID) {
	a := &r.awaiting
	since, ok := a.since[id]
	if !ok {
		return
	}
	delete(a.since, id)
	if len(a.since) == 0 {
		a.waits = nil
	}
	r.log.Info("partition revoked before the target was back to claim it", zap.String("topic", id.Topic), zap.Int32("partition", id.Partition),
		zap.Duration("awaited", time.Since(since)))
	r.metrics.AwaitingClaim.Set(float64(len(a.since)))
}

// claimAwaiting tries, when its time has come, the claims of the
// partitions that await the target, all together: a claimed one gets its
// worker, is moved to its stored position and resumed; one that still
// finds the target down waits for the next try; any other failure stops
// the instance, as at a rebalance. It runs in the poll loop, between two
// Polls, so that the member stays in its group while the outage lasts and
// a revocation reaches the partitions it awaits (the claim used to wait
// inside the rebalance callback: see claimStored).
func (r *Runner) claimAwaiting(c awaitingClient, now time.Time) {
	a := &r.awaiting
	if len(a.since) == 0 || now.Before(a.next) {
		return
	}
	ids := make([]dedup.PartitionID, 0, len(a.since))
	var down time.Time
	for id, since := range a.since {
		ids = append(ids, id)
		if down.IsZero() || since.Before(down) {
			down = since
		}
	}
	slices.SortFunc(ids, dedup.PartitionID.Compare)
	claimer := r.claimer(nil)
	claimer.downSince = down
	for _, cl := range claimer.claimAll(c, ids) {
		if errors.Is(cl.err, errAwaitingTarget) || errors.Is(cl.err, sink.ErrStopping) {
			continue // the next try, or the shutdown
		}
		since := a.since[cl.id]
		delete(a.since, cl.id)
		log := r.log.With(zap.String("topic", cl.id.Topic), zap.Int32("partition", cl.id.Partition))
		if cl.err != nil {
			r.fatalf(log, "claim partition", cl.err)
			continue
		}
		if !r.begin(c, cl, log) {
			continue // stopped, and paused as assigned
		}
		topic := cl.id.Topic
		tp := kafka.TopicPartition{Topic: &topic, Partition: cl.id.Partition, Offset: kafka.Offset(cl.claim.NextOffset)}
		// Assigned at the end of the partition as a placeholder: the claim
		// decides where it starts. Seek waits for the client's answer, so
		// a partition it could not move is never resumed.
		if err := seekAssigned(c, tp); err != nil {
			r.fatalf(log, "move a partition claimed after an outage to its stored position", err)
			continue
		}
		if err := c.Resume([]kafka.TopicPartition{tp}); err != nil {
			r.fatalf(log, "resume a partition claimed after an outage", err)
			continue
		}
		log.Info("partition claimed once the target was back", zap.Duration("awaited", time.Since(since)))
	}
	if len(a.since) == 0 {
		a.waits = nil
	} else {
		a.next = time.Now().Add(a.waits.Next())
	}
	r.metrics.AwaitingClaim.Set(float64(len(a.since)))
	r.metrics.Owned.Set(float64(len(r.workers)))
}

// seekAssignedTries bounds how often seekAssigned asks again, a
// seekAssignedPause apart, while the client has not started fetching a
// partition it was just assigned.
const (
	seekAssignedTries = 20
	seekAssignedPause = 50 * time.Millisecond
)

// seekAssigned moves an assigned partition to tp.Offset. The client
// refuses a seek (ErrState) until it has started the partition's fetcher,
// which it does shortly after the assignment: a claim that went through
// right after its rebalance may come first, so that answer is asked again
// for a moment before it counts as a failure.
func seekAssigned(c awaitingClient, tp kafka.TopicPartition) error {
	var err error
	for range seekAssignedTries {
		err = c.Seek(tp, 0)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || kerr.Code() != kafka.ErrState {
			return err
		}
		time.Sleep(seekAssignedPause)
	}
	return err
}
