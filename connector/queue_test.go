package connector

import (
	"runtime"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
)

// A partition that never received a record holds no queue slots, whatever
// apply.batch.max_records is: its queue grows only with what it holds.
func TestIdlePartitionAllocatesNoQueue(t *testing.T) {
	deps := &workerDeps{batch: config.Batch{MaxRecords: config.DefaultBatchMaxRecords}}
	p := newPartition(deps, dedup.PartitionID{Group: "g", Topic: testTopic}, dedup.Claim{}, nil, zap.NewNop())
	defer p.cancel()
	if got := p.in.slotsAllocated(); got != 0 {
		t.Errorf("an idle partition holds %d queue slots, want 0", got)
	}
	if got, want := p.in.limit, 2*config.DefaultBatchMaxRecords; got != want {
		t.Errorf("queue limit %d, want %d (2 × max_records: the backpressure point)", got, want)
	}
}

// The queue keeps order across its ring's growth and wrap, refuses past
// its limit, keeps its slots while it drains and gives them back on
// release (an idle partition).
func TestRecordQueueGrowsKeepsOrderAndShrinks(t *testing.T) {
	q := newRecordQueue(100)
	next, taken := int64(0), int64(0)
	offer := func(n int) {
		for range n {
			if !q.offer(envelope{msg: &kafka.Message{TopicPartition: kafka.TopicPartition{Offset: kafka.Offset(next)}}}) {
				t.Fatalf("offer %d refused with %d queued of 100", next, q.len())
			}
			next++
		}
	}
	takeN := func(n int) {
		for range n {
			e, ok := q.take()
			if !ok {
				t.Fatalf("take %d: empty with %d queued", taken, q.len())
			}
			if got := int64(e.msg.TopicPartition.Offset); got != taken {
				t.Fatalf("took offset %d, want %d: out of order", got, taken)
			}
			taken++
		}
	}
	offer(10)
	if got := q.slotsAllocated(); got != minQueueSlots {
		t.Errorf("%d slots for 10 records, want %d", got, minQueueSlots)
	}
	takeN(7)
	offer(12) // wraps the ring, then grows it
	takeN(5)
	offer(80)
	if q.len() != 90 {
		t.Fatalf("queued %d, want 90", q.len())
	}
	offer(10)
	if q.offer(envelope{msg: &kafka.Message{}}) {
		t.Fatalf("offer accepted with %d queued, want a refusal at the limit of 100", q.len())
	}
	if got := q.slotsAllocated(); got > 2*100 {
		t.Errorf("%d slots for 100 records, want at most twice as many", got)
	}
	takeN(100)
	if _, ok := q.take(); ok {
		t.Fatal("take from an empty queue returned a record")
	}
	if got := q.slotsAllocated(); got == 0 {
		t.Errorf("no slots after the queue drained: a busy partition's ring is kept until it is idle")
	}
	q.release()
	if got := q.slotsAllocated(); got != 0 {
		t.Errorf("%d slots after release of the drained queue, want 0: a large ring is given back", got)
	}
}

// Every record offered is signalled: a worker that waits on the queue and
// takes one record per wake-up sees them all.
func TestRecordQueueSignalsEveryRecord(t *testing.T) {
	q := newRecordQueue(10)
	for range 3 {
		q.offer(envelope{msg: &kafka.Message{}})
	}
	for i := range 3 {
		select {
		case <-q.waiting():
		default:
			t.Fatalf("no signal for record %d of 3", i+1)
		}
		if _, ok := q.take(); !ok {
			t.Fatalf("signalled, but record %d of 3 is not there", i+1)
		}
	}
	select {
	case <-q.waiting():
		t.Error("a signal left with the queue empty")
	default:
	}
}

// The Go heap that 100 owned partitions hold before any record arrives:
// their queues are no part of it (docs/scaling.md has the figure before
// and after). The bound is loose, for the collector's noise; a queue
// allocated up front at the default max_records is 400 KB a partition.
func TestIdlePartitionsHeap(t *testing.T) {
	const partitions = 100
	deps := &workerDeps{batch: config.Batch{MaxRecords: config.DefaultBatchMaxRecords}}
	before := heapAlloc()
	owned := make([]*partition, partitions)
	for i := range owned {
		owned[i] = newPartition(deps, dedup.PartitionID{Group: "g", Topic: testTopic, Partition: int32(i)}, dedup.Claim{}, nil, zap.NewNop())
	}
	grown := int64(heapAlloc()) - int64(before)
	t.Logf("%d idle partitions: heap %+d KB", partitions, grown/1024)
	if grown > 2<<20 {
		t.Errorf("%d idle partitions hold %d KB of heap, want under 2048 KB: an idle partition must not hold a queue", partitions, grown/1024)
	}
	for _, p := range owned {
		p.cancel()
	}
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A ring a backlog grew is given back once the partition's records only
// trickle in, though its worker never waits idleCheck for one (release):
// the ring's slots are in the buffer budget only while records fill them,
// so a kept one is memory outside apply.max_buffered_bytes. A partition
// that is still busy keeps its ring.
func TestRecordQueueTrickleGivesBackABacklogsRing(t *testing.T) {
	const limit = 10000
	q := newRecordQueue(limit)
	cycle := func(n int) {
		for range n {
			if !q.offer(envelope{msg: &kafka.Message{}}) {
				t.Fatalf("offer refused with %d queued", q.len())
			}
		}
		for range n {
			if _, ok := q.take(); !ok {
				t.Fatal("take: empty queue")
			}
		}
	}
	cycle(limit) // the backlog
	grown := q.slotsAllocated()
	if grown < limit {
		t.Fatalf("%d slots after a backlog of %d records", grown, limit)
	}
	for range 4 * trimAfterDrains {
		cycle(grown / 2) // still busy: each drain cycle fills half the ring
	}
	if got := q.slotsAllocated(); got != grown {
		t.Errorf("a busy queue's ring went from %d to %d slots: it is allocated again each time it drains", grown, got)
	}
	for range 4 * trimAfterDrains {
		cycle(1) // a trickle: one record at a time, taken at once
	}
	if got := q.slotsAllocated(); got > minQueueSlots {
		t.Errorf("%d slots kept for a trickle of single records, want at most %d: the backlog's ring is memory no budget counts", got, minQueueSlots)
	}
}

// Narrowed (its worker waits for room in the local path's store), the
// queue takes narrowedLimit records, not limit: its partition pauses
// after a few instead of spending the buffer budget.
func TestQueueNarrowed(t *testing.T) {
	q := newRecordQueue(10 * narrowedLimit)
	q.narrow(true)
	n := 0
	for q.offer(envelope{}) {
		n++
	}
	if n != narrowedLimit {
		t.Fatalf("narrowed queue took %d records, want %d", n, narrowedLimit)
	}
	q.narrow(false)
	for q.offer(envelope{}) {
		n++
	}
	if n != 10*narrowedLimit {
		t.Errorf("queue took %d records once widened, want its limit %d", n, 10*narrowedLimit)
	}
}
