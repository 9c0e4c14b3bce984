package connector

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/sink"
)

// holeMark is what lookForHoles dispatches to a partition whose next offset
// Kafka deleted, low being the low watermark it read.
func (w *worker) queueHole(gen uint64, low int64) {
	topic := testTopic
	m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.OffsetInvalid, Error: &holeError{low: low}}}
	w.queued += messageBytes(m)
	if !w.in.offer(envelope{msg: m, gen: gen, at: w.at, cost: messageBytes(m)}) {
		panic("the test queued more records than the partition's queue takes")
	}
}

// The records queued before a hole mark are applied; then the partition
// stops at the hole with the claim-time reason, its offset where those
// records left it, and takes nothing after.
func TestHoleStopsThePartitionAfterTheRecordsBeforeIt(t *testing.T) {
	a := newFakeApplier()
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 5, a, func(d *workerDeps) { d.applier = advancingApplier{a} })
	w.queue(0, 5, "a", "b", "c")
	w.queueHole(0, 100)
	w.start()
	var offsets []int64
	for len(offsets) < 3 {
		offsets = append(offsets, next(t, w.applies.calls, "apply").offsets...)
	}
	if !slices.Equal(offsets, []int64{5, 6, 7}) {
		t.Fatalf("applied offsets %v, want 5, 6, 7 (the records before the hole)", offsets)
	}
	reason := next(t, w.poll.stops, "stop report")
	for _, want := range []string{"outside what Kafka holds", "next offset 8, Kafka now holds from 100", "pgsink replay"} {
		if !strings.Contains(reason, want) {
			t.Errorf("stop reported as %q, want %q in it", reason, want)
		}
	}
	if !w.stopped.Load() || value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 1 {
		t.Error("partition not marked stopped")
	}
	if w.claim.NextOffset != 8 {
		t.Errorf("stopped at offset %d, want 8", w.claim.NextOffset)
	}
	marked := w.store.awaitStopReasons(t, 1)
	if len(marked) != 1 || marked[0] != reason {
		t.Errorf("offsets row marked %q, want the reason reported", marked)
	}
	w.queue(0, 100, "after")
	w.awaitReleased(t)
	none(t, w.applies.calls, "apply after the stop")
}

// advancingApplier moves the batch's claim on success, as sink.Applier
// does: where a worker stops at a hole depends on it.
type advancingApplier struct{ *fakeApplier }

func (a advancingApplier) Apply(ctx context.Context, b *sink.Batch) (sink.Stats, error) {
	st, err := a.fakeApplier.Apply(ctx, b)
	if err == nil {
		b.Claim.NextOffset = b.Next
	}
	return st, err
}

// A mark the partition is not behind (its position reached the low
// watermark), or one fetched before a seek, is dropped: the partition
// goes on.
func TestHoleMarkIgnoredWhenNotBehind(t *testing.T) {
	a := newFakeApplier()
	w := newWorker(t, batchOf(1, 1<<20, time.Minute), 5, a, func(d *workerDeps) { d.applier = advancingApplier{a} })
	w.queue(0, 5, "a")
	w.queueHole(0, 6) // the position after "a" is 6: not below
	w.queueHole(7, 1000)
	w.queue(0, 6, "b")
	w.start()
	for _, want := range []int64{5, 6} {
		if got := next(t, w.applies.calls, "apply"); !slices.Equal(got.offsets, []int64{want}) {
			t.Fatalf("applied %v, want [%d]", got.offsets, want)
		}
	}
	w.awaitReleased(t)
	none(t, w.poll.stops, "stop report")
	if w.stopped.Load() {
		t.Error("partition stopped on a hole it is not behind")
	}
}

// holeFake is the Kafka client as lookForHoles sees it: positions and low
// watermarks by partition, the watermark reads counted.
type holeFake struct {
	position map[int32]kafka.Offset
	low      map[int32]int64
	queries  int
	// fail, while set, fails every watermark read.
	fail error
}

func (f *holeFake) Position(tps []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	out := slices.Clone(tps)
	for i := range out {
		out[i].Offset = f.position[out[i].Partition]
	}
	return out, nil
}

func (f *holeFake) QueryWatermarkOffsets(_ string, partition int32, _ int) (int64, int64, error) {
	f.queries++
	if f.fail != nil {
		return 0, 0, f.fail
	}
	return f.low[partition], f.low[partition] + 10, nil
}

// holeMarks takes what p's queue holds and returns the low watermarks of
// the hole marks among it.
func holeMarks(r *Runner, p *partition) []int64 {
	var lows []int64
	for {
		e, ok := p.in.take()
		if !ok {
			return lows
		}
		r.release(e.cost)
		if h, ok := e.msg.TopicPartition.Error.(*holeError); ok {
			lows = append(lows, h.low)
		}
	}
}

// After ErrAutoOffsetReset the poll loop marks the partitions whose
// position lies below the low watermark (or that have none), not the
// others nor stopped ones, and reads the watermarks once per
// holeLookEvery however many errors come.
func TestLookForHolesMarksPartitionsBelowTheLowWatermark(t *testing.T) {
	r, _ := newTestRunner(1 << 20)
	behind, ahead, fresh, stopped := r.own(0, 8), r.own(1, 8), r.own(2, 8), r.own(3, 8)
	stopped.stopped.Store(true)
	c := &holeFake{position: map[int32]kafka.Offset{0: 40, 1: 60, 2: kafka.OffsetInvalid, 3: 10}, low: map[int32]int64{0: 50, 1: 50, 2: 50, 3: 50}}
	now := time.Now()

	r.lookForHoles(c, now)
	if c.queries != 0 {
		t.Fatalf("%d watermark reads without an error, want none", c.queries)
	}
	for range 100 {
		r.suspectHole(kafka.NewError(kafka.ErrAutoOffsetReset, "offset out of range", false))
	}
	r.lookForHoles(c, now)
	if c.queries != 3 {
		t.Errorf("%d watermark reads, want 3 (the running partitions)", c.queries)
	}
	for _, tc := range []struct {
		name string
		p    *partition
		want []int64
	}{{"behind", behind, []int64{50}}, {"ahead", ahead, nil}, {"no position", fresh, []int64{50}}, {"stopped", stopped, nil}} {
		if got := holeMarks(r, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("partition %s: hole marks %v, want %v", tc.name, got, tc.want)
		}
	}

	r.suspectHole(kafka.NewError(kafka.ErrAutoOffsetReset, "offset out of range", false))
	r.lookForHoles(c, now.Add(holeLookEvery/2))
	if c.queries != 3 {
		t.Errorf("%d watermark reads within holeLookEvery of the last, want still 3", c.queries)
	}
	r.lookForHoles(c, now.Add(holeLookEvery))
	if c.queries != 6 {
		t.Errorf("%d watermark reads once holeLookEvery passed, want 6", c.queries)
	}
	if got := append(holeMarks(r, behind), holeMarks(r, fresh)...); !slices.Equal(got, []int64{50, 50}) {
		t.Errorf("hole marks of the second look %v, want one each for the partitions behind and without a position", got)
	}
	if r.buffered.Load() != 0 {
		t.Errorf("%d bytes left in the buffer budget, want 0", r.buffered.Load())
	}
}

// A watermark read that fails sends no mark and is tried again at the next
// look, holeLookEvery later, without another error.
func TestLookForHolesReadsAgainAfterAFailedRead(t *testing.T) {
	r, _ := newTestRunner(1 << 20)
	p := r.own(0, 8)
	c := &holeFake{position: map[int32]kafka.Offset{0: 40}, low: map[int32]int64{0: 50}, fail: errors.New("broker away")}
	now := time.Now()
	r.suspectHole(kafka.NewError(kafka.ErrAutoOffsetReset, "offset out of range", false))
	r.lookForHoles(c, now)
	if got := holeMarks(r, p); c.queries != 1 || got != nil {
		t.Fatalf("%d reads, marks %v; want 1 read and no mark", c.queries, got)
	}
	c.fail = nil
	r.lookForHoles(c, now.Add(holeLookEvery))
	if got := holeMarks(r, p); c.queries != 2 || !slices.Equal(got, []int64{50}) {
		t.Errorf("%d reads, marks %v; want a second read and the mark", c.queries, got)
	}
}
