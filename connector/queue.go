package connector

import (
	"sync"
	"unsafe"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// recordQueue hands a partition's records from the poll loop to its worker,
// in order. Unlike a buffered channel, whose ring is allocated in full when
// it is made, its slots grow with the records queued and go once the
// partition is idle (release) or its records only trickle in (trim): a
// partition that receives nothing holds no slots, so the memory of many
// idle partitions is not theirs to keep, and what the slots of the busy
// ones cost is in the buffer budget (recordOverhead). A busy partition's worker empties the queue many times
// a second: giving the ring back each time it drains had it allocated again
// right after, a twentieth of the bytes a drain allocated.
//
// One poll loop offers, one worker takes; ready tells the worker that
// something may be waiting.
type recordQueue struct {
	mu    sync.Mutex
	slots []envelope // a ring: count records from head
	head  int
	count int
	// limit is how many records the queue takes before offer refuses:
	// the partition's backpressure point, not an allocation.
	limit int
	// narrowed, while set, makes offer refuse past narrowedLimit records:
	// the worker waits for room in the local path's store (narrow).
	narrowed bool
	ready    chan struct{}
	// peak is the most records queued, and drains how many times the
	// queue emptied, since the ring was last looked at (trimAfterDrains).
	peak, drains int
}

func newRecordQueue(limit int) *recordQueue {
	return &recordQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// minQueueSlots is the first allocation, and the largest ring release
// keeps: a partition with a trickle of records keeps a small ring instead
// of allocating one per record.
const minQueueSlots = 16

// trimAfterDrains is how many times the queue empties between looks at
// its ring: one that the records queued meanwhile never filled past a
// quarter is given back. release waits for an idle partition, which one
// with a steady trickle of records never is, and the ring a backlog grew
// is in the buffer budget only while records fill it (recordOverhead).
const trimAfterDrains = 64

// recordOverhead is what one record in flight costs pgsink besides its key
// and value bytes, counted in apply.max_buffered_bytes with them: its
// message, its envelope, and up to two queue slots (the ring doubles).
const recordOverhead = int64(unsafe.Sizeof(kafka.Message{}) + 3*unsafe.Sizeof(envelope{}))

// narrowedLimit is the queue's limit while its worker waits for room in
// the local path's store.
const narrowedLimit = 64

// narrow sets whether the worker waits for room in the local path's
// store. A worker that cannot hand records over takes none from its queue,
// which would otherwise fill to limit and, with every such partition's,
// spend the buffer budget: the poll loop then pauses every partition, the
// one whose records the resolver waits for too, and nothing moves until
// the resolver's liveness rule sends every partition back to staging.
// Narrowed, the queue pauses its partition after a few records instead,
// leaving the budget to the partitions that can take records.
func (q *recordQueue) narrow(on bool) {
	q.mu.Lock()
	q.narrowed = on
	q.mu.Unlock()
}

// offer queues e unless the queue holds limit records already, or
// narrowedLimit while narrowed.
func (q *recordQueue) offer(e envelope) bool {
	q.mu.Lock()
	if q.count >= q.limit || q.narrowed && q.count >= narrowedLimit {
		q.mu.Unlock()
		return false
	}
	if q.count == len(q.slots) {
		q.grow()
	}
	q.slots[(q.head+q.count)%len(q.slots)] = e
	q.count++
	q.peak = max(q.peak, q.count)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *recordQueue) grow() {
	slots := make([]envelope, max(2*len(q.slots), minQueueSlots))
	for i := range q.count {
		slots[i] = q.slots[(q.head+i)%len(q.slots)]
	}
	q.slots, q.head = slots, 0
}

// take removes the oldest record; ok is false when there is none.
func (q *recordQueue) take() (e envelope, ok bool) {
	q.mu.Lock()
	if q.count == 0 {
		q.mu.Unlock()
		return envelope{}, false
	}
	e = q.slots[q.head]
	q.slots[q.head] = envelope{} // the message is the batch's now
	q.head = (q.head + 1) % len(q.slots)
	q.count--
	more := q.count > 0
	if !more {
		q.trim()
	}
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return e, true
}

// trim runs, with mu held, each time the queue empties: every
// trimAfterDrains times it gives back a ring larger than minQueueSlots that
// four times the records queued meanwhile would not have filled.
func (q *recordQueue) trim() {
	if q.drains++; q.drains < trimAfterDrains {
		return
	}
	if len(q.slots) > minQueueSlots && 4*q.peak < len(q.slots) {
		q.slots, q.head = nil, 0
	}
	q.peak, q.drains = 0, 0
}

// release gives a ring larger than minQueueSlots back once the queue is
// empty: its worker calls it when the partition has been idle a while.
func (q *recordQueue) release() {
	q.mu.Lock()
	if q.count == 0 && len(q.slots) > minQueueSlots {
		q.slots, q.head = nil, 0
	}
	q.mu.Unlock()
}

// waiting is ready's channel: a receive means take may have a record.
func (q *recordQueue) waiting() <-chan struct{} { return q.ready }

func (q *recordQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// len is how many records are queued.
func (q *recordQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// slotsAllocated is the ring's size, for tests of what an idle partition
// holds.
func (q *recordQueue) slotsAllocated() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.slots)
}

// drain takes every queued record and passes each to fn.
func (q *recordQueue) drain(fn func(envelope)) {
	for {
		e, ok := q.take()
		if !ok {
			return
		}
		fn(e)
	}
}
