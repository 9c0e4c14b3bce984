package txlocal

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// Store holds the records of the partitions in direct state: those a
// partition's worker handed over and the resolver has not applied yet, in
// the partition's order. One per process.
type Store struct {
	mu sync.Mutex
	// changed is broadcast when an apply releases the records it held and
	// when a partition is told to leave: Leave waits on it.
	changed *sync.Cond
	// maxBytes bounds what one partition holds, maxTotal what they all
	// hold (held), each an equal share of it at most.
	maxBytes, maxTotal, held int64
	// resolver is set while this process's resolver owns the transaction
	// topic's partition: only then may a partition enter the direct state.
	// resolvers counts this process's resolver workers (a revoked one may
	// end after its successor started): the resolver is local while it
	// is above 0.
	resolvers int
	resolver  bool
	parts     map[dedup.PartitionID]*part
	// handed is when a partition last handed the store a record: the
	// resolver's liveness rule tells a wait for events that are on
	// their way from one that nothing can end (HandedSince).
	handed time.Time
}

// part is one direct partition.
type part struct {
	// claim is the partition's claim as its offsets row stands: the epoch
	// and the position before items[0] (or after the last record applied).
	claim dedup.Claim
	items []sink.Item
	sizes []int64
	// at is when each record was handed over.
	at    []time.Time
	bytes int64
	// taking is set while a resolver apply holds a prefix of items; the
	// partition does not leave until it ends.
	taking bool
	// leave, when set, is why the partition must leave the direct state:
	// the resolver takes nothing more from it, and its worker stages what
	// it holds.
	leave Leaving
	// closed holds the transactions the partition holds records of that
	// were followed by another's: a record of one of them again means
	// records of two transactions interleave, or a re-emission.
	closed map[int64]bool
	lastTx int64
	// after is the offset just past records that write nothing
	// (tombstones) the worker read after the last record held, 0 if none:
	// an apply that takes every record held moves the row past them too,
	// or a partition whose last records are tombstones would never show
	// its position at the topic's end.
	after int64
	// release gives bytes dropped from the store back to the buffer
	// budget the worker charged them to.
	release func(int64)
	// lastKey and lastOffset are the Kafka key and offset of the last
	// record an apply of the store committed (lastKey nil when the
	// worker moved the row itself since): when the row stands right
	// after it, a leave reads again from the record that follows it,
	// often that delete's tombstone, which the worker must not take for
	// one whose delete log compaction removed (Left.Before).
	lastKey    []byte
	lastOffset int64
}

// Cause is why a partition leaves the direct state: one of a fixed set,
// what pgsink counts leaves by (the reason logged says more).
type Cause string

// The causes of a leave.
const (
	// CauseBound: a record larger than the partition's share of the
	// store with nothing held.
	CauseBound Cause = "bound"
	// CauseInterleaved: records of a transaction the partition holds
	// come again after another's (a re-emission, a merged replay).
	CauseInterleaved Cause = "interleaved"
	// CauseOrder: records of a transaction the resolver applies come
	// after those of one it does not apply yet.
	CauseOrder Cause = "order"
	// CauseNoTransaction: a record without transaction metadata after
	// records held.
	CauseNoTransaction Cause = "no_transaction"
	// CauseResolverGone: the transaction topic's partition is no longer
	// this process's.
	CauseResolverGone Cause = "resolver_gone"
	// CauseResolverWait: the resolver waited for an END's events (the
	// liveness rule).
	CauseResolverWait Cause = "resolver_wait"
	// CauseRowMoved: an apply found the partition's offsets row not
	// where the store had it.
	CauseRowMoved Cause = "row_moved"
	// CauseStale: the oldest record held waited too long with no apply
	// taking it (transactions applied before, read again; a transaction
	// without END).
	CauseStale Cause = "stale"
	// CauseReclaim: the partition was claimed again (a replay's rewind,
	// a fencing, a claim the target lost) or rewound by a reset of the
	// staging table.
	CauseReclaim Cause = "reclaim"
	// CauseStopped: the partition stopped (at a hole in the topic).
	CauseStopped Cause = "stopped"
	// CauseRevoked: revoked, or the instance stops.
	CauseRevoked Cause = "revoked"
)

// Causes are every Cause, in the order docs/transactions.md lists them.
var Causes = []Cause{CauseBound, CauseInterleaved, CauseOrder, CauseNoTransaction, CauseResolverGone,
	CauseResolverWait, CauseRowMoved, CauseStale, CauseReclaim, CauseStopped, CauseRevoked}

// Leaving is why a partition leaves the direct state: its Cause, and Why
// in words for the log. The zero value: it need not.
type Leaving struct {
	Cause Cause
	Why   string
}

// New returns a store bounding each partition at maxBytes of records, and
// all of them at maxTotal.
func New(maxBytes, maxTotal int64) *Store {
	s := &Store{maxBytes: maxBytes, maxTotal: maxTotal, parts: map[dedup.PartitionID]*part{}}
	s.changed = sync.NewCond(&s.mu)
	return s
}

// SetResolver tells that a resolver worker of this process started (on) or
// ended: the transaction topic's partition is this process's while one
// runs. When none does, every direct partition is told to leave: another
// process's resolver reads only staged records.
func (s *Store) SetResolver(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.resolvers++
	} else {
		s.resolvers--
	}
	s.resolver = s.resolvers > 0
	if !s.resolver {
		for _, p := range s.parts {
			if p.leave.Cause == "" {
				p.leave = Leaving{CauseResolverGone, "the transaction topic's partition is no longer this instance's"}
			}
		}
		s.changed.Broadcast()
	}
}

// Held returns how many records the store holds, and what they count in
// the buffer budget.
func (s *Store) Held() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		records += len(p.items)
	}
	return records, s.held
}

// HeldBytes is what the records held count in the buffer budget.
func (s *Store) HeldBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// ResolverLocal reports whether this process's resolver owns the
// transaction topic's partition.
func (s *Store) ResolverLocal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolver
}

// Enter puts a partition in the direct state from claim, its offsets row as
// it stands, and reports whether it did: only while the resolver is local.
// The caller makes sure nothing of the partition is staged and unapplied.
// release is called with the bytes of records the store drops.
func (s *Store) Enter(claim dedup.Claim, release func(int64)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resolver {
		return false
	}
	if _, ok := s.parts[claim.PartitionID]; ok {
		return true
	}
	s.parts[claim.PartitionID] = &part{claim: claim, closed: map[int64]bool{}, release: release}
	return true
}

// Direct reports whether the partition is in the direct state and may hand
// records over, and, when it is, its claim as its offsets row stands and
// whether the store holds none of its records (the worker may then apply a
// batch of records without transaction metadata itself, from that claim).
func (s *Store) Direct(id dedup.PartitionID) (claim dedup.Claim, empty, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[id]
	if p == nil || p.leave.Cause != "" {
		return dedup.Claim{}, false, false
	}
	return p.claim, len(p.items) == 0 && !p.taking, true
}

// Moved records that the partition's worker moved its offsets row itself
// (a batch without transaction records, the store empty): claim is the row
// as that batch left it.
func (s *Store) Moved(claim dedup.Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parts[claim.PartitionID]; p != nil && len(p.items) == 0 && !p.taking {
		p.claim = claim
		p.lastKey = nil
	}
}

// LeaveError says that a partition must leave the direct state, and why.
type LeaveError struct {
	Partition dedup.PartitionID
	Leaving
}

func (e *LeaveError) Error() string {
	return fmt.Sprintf("partition %s leaves the local path for staging: %s", e.Partition, e.Why)
}

// ErrFull is Hold's answer when the records do not fit beside what the
// store holds: nothing was taken; the caller waits for the resolver to apply
// (WaitRoom) and hands them again, or leaves.
var ErrFull = errors.New("txlocal: the records held for the resolver are at their bound")

// WaitRoom waits until an apply released records or a partition was told to
// leave, at most d.
func (s *Store) WaitRoom(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.changed.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.changed.Wait()
}

// Hold hands items, records of source transactions in the partition's order
// after everything it held before, to the resolver; sizes are what each
// counts in the buffer budget, which the worker charged and the store
// releases. It returns how many it took, a prefix. A *LeaveError means
// nothing was taken: the partition must leave (Leave); ErrFull that the
// rest does not fit now (a transaction larger than the bound makes the
// resolver wait for the rest, and it then tells the partition to leave).
func (s *Store) Hold(id dedup.PartitionID, items []sink.Item, sizes []int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[id]
	if p == nil {
		// Dropped from the store by another's Leave: as if revoked.
		return 0, &LeaveError{Partition: id, Leaving: Leaving{CauseRevoked, "not in the direct state"}}
	}
	if p.leave.Cause != "" {
		return 0, &LeaveError{Partition: id, Leaving: p.leave}
	}
	// A partition's share: the whole bound split between the direct
	// partitions, at most maxBytes. The resolver needs the oldest
	// unapplied transaction's records of every partition, which are at
	// the head of each: a partition that ran ahead must not take the
	// room of one that lags (it held later transactions while the one
	// the resolver waited for could hold nothing). What fits of items is
	// taken, the rest waits: a batch larger than the share (apply.batch
	// may be) must not wait whole for an empty store while the resolver
	// waits for its first records.
	limit := min(s.maxBytes, s.maxTotal/int64(len(s.parts)))
	m, bytes := 0, int64(0)
	for m < len(items) && p.bytes+bytes+sizes[m] <= limit && s.held+bytes+sizes[m] <= s.maxTotal {
		bytes += sizes[m]
		m++
	}
	if m == 0 {
		if p.bytes == 0 && len(items) > 0 && sizes[0] > limit {
			// Nothing held and still too much: it never fits.
			p.leave = Leaving{CauseBound, fmt.Sprintf("a record to hold for the resolver exceeds the bound (%d bytes a partition, %d in all)", limit, s.maxTotal)}
			return 0, &LeaveError{Partition: id, Leaving: p.leave}
		}
		if len(items) > 0 {
			return 0, ErrFull
		}
	}
	closed, last := p.closed, p.lastTx
	var added map[int64]bool
	for i := range items[:m] {
		t := items[i].Change.Transaction
		if items[i].Err != nil || t == nil {
			p.leave = Leaving{CauseNoTransaction, "a record without transaction metadata"}
			return 0, &LeaveError{Partition: id, Leaving: p.leave}
		}
		if t.TxID == last {
			continue
		}
		if closed[t.TxID] || added[t.TxID] {
			p.leave = Leaving{CauseInterleaved, fmt.Sprintf("records of transaction %d interleave with another's (a re-emission or a merged replay)", t.TxID)}
			return 0, &LeaveError{Partition: id, Leaving: p.leave}
		}
		if last != 0 {
			if added == nil {
				added = map[int64]bool{}
			}
			added[last] = true
		}
		last = t.TxID
	}
	for tx := range added {
		closed[tx] = true
	}
	p.lastTx, p.after = last, 0
	p.items = append(p.items, items[:m]...)
	p.sizes = append(p.sizes, sizes[:m]...)
	now := time.Now()
	for range m {
		p.at = append(p.at, now)
	}
	p.bytes += bytes
	s.held += bytes
	if m > 0 {
		s.handed = now
	}
	if m < len(items) {
		return m, ErrFull
	}
	return m, nil
}

// HandedSince reports whether a partition handed the store a record after
// t. A resolver that waits for a transaction's events while records still
// arrive may be waiting for records on their way (a slow fetch, a machine
// busy elsewhere); one that waits while none arrive may wait for records
// that cannot come: behind a partition at its share with the waited
// transaction alone (larger than the share), or behind a buffer budget the
// held records and the queues behind them spend, which stops the poll
// loop. Only that second wait is ended by telling the partitions to leave.
func (s *Store) HandedSince(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handed.After(t)
}

// LeaveAll tells every direct partition to leave the direct state, for why.
func (s *Store) LeaveAll(why Leaving) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		if p.leave.Cause == "" {
			p.leave = why
		}
	}
	s.changed.Broadcast()
}

// Passed records that the partition's worker read records that write
// nothing up to next, after the records it holds: the apply that takes
// them all moves the row past those too. Nothing when it holds none (the
// worker moves its row itself then).
func (s *Store) Passed(id dedup.PartitionID, next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parts[id]; p != nil && len(p.items) > 0 && next > p.after {
		p.after = next
	}
}

// Stale reports whether the oldest record the partition holds was handed
// over more than d ago and no apply holds it: no END took it (a replay or
// a re-emission of transactions applied before, whose ENDs do not come
// again; a transaction whose END never comes).
func (s *Store) Stale(id dedup.PartitionID, d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[id]
	return p != nil && len(p.items) > 0 && !p.taking && time.Since(p.at[0]) > d
}

// MustLeave returns why the partition must leave the direct state, the zero
// Leaving if it need not (or is not in it).
func (s *Store) MustLeave(id dedup.PartitionID) Leaving {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parts[id]; p != nil {
		return p.leave
	}
	return Leaving{}
}

// Left is what Leave returns of a partition.
type Left struct {
	// Claim is the partition's claim as its offsets row stands.
	Claim dedup.Claim
	// Items are the records it held, in order, which the caller drops:
	// it reads them again from the claim's position.
	Items []sink.Item
	// Before is the Kafka key of the record right before the claim's
	// position when an apply of the store moved the row just past it,
	// nil otherwise (the row moved past tombstones, or by the worker):
	// the worker's "previous record" when it reads again from there.
	Before []byte
}

// Leave takes the partition out of the direct state once no resolver apply
// holds its records, and returns its claim as its offsets row stands and
// the records it held (the caller reads them again from that position, or,
// revoked, leaves them to the next owner). ok is false when the partition
// was not in the direct state.
func (s *Store) Leave(id dedup.PartitionID) (left Left, ok bool) {
	s.mu.Lock()
	p := s.parts[id]
	if p == nil {
		s.mu.Unlock()
		return Left{}, false
	}
	if p.leave.Cause == "" {
		p.leave = Leaving{CauseRevoked, "leaving"}
	}
	for p.taking {
		s.changed.Wait()
	}
	delete(s.parts, id)
	s.held -= p.bytes
	s.mu.Unlock()
	if p.release != nil && p.bytes > 0 {
		p.release(p.bytes)
	}
	left = Left{Claim: p.claim, Items: p.items}
	if p.lastKey != nil && p.lastOffset+1 == p.claim.NextOffset {
		left.Before = p.lastKey
	}
	return left, true
}

// Taken is what one resolver apply took from the store: a prefix of each
// direct partition's records. It holds them until Done.
type Taken struct {
	s     *Store
	Parts []Part
	done  bool
}

// Part is the records taken of one partition, in its order, and its claim
// as its offsets row stands before them.
type Part struct {
	Claim dedup.Claim
	Items []sink.Item
	p     *part
	// after is the part's after when it took every record held (and
	// Keep kept them all), else 0.
	after int64
}

// Next is the position the partition's offsets row moves to with the
// records taken: just past the last one, and past the records that write
// nothing read after it when it is the last held.
func (p Part) Next() int64 { return max(p.Items[len(p.Items)-1].Record.Offset+1, p.after) }

// Take holds, of every direct partition not held by another apply, the
// longest prefix of its records whose transactions are in txIDs. A
// partition that holds records of one of those transactions after a record
// of another is told to leave and nothing of it is taken: its records are
// not in the order the resolver applies in. Nil when there is nothing.
func (s *Store) Take(txIDs map[int64]bool) *Taken {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resolver {
		return nil
	}
	t := &Taken{s: s}
	for _, p := range s.parts {
		if p.taking || p.leave.Cause != "" || len(p.items) == 0 {
			continue
		}
		n := 0
		for n < len(p.items) && txIDs[p.items[n].Change.Transaction.TxID] {
			n++
		}
		for _, it := range p.items[n:] {
			if txIDs[it.Change.Transaction.TxID] {
				p.leave = Leaving{CauseOrder, fmt.Sprintf("records of transaction %d come after another transaction's", it.Change.Transaction.TxID)}
				n = 0
				s.changed.Broadcast()
				break
			}
		}
		if n == 0 {
			continue
		}
		p.taking = true
		part := Part{Claim: p.claim, Items: p.items[:n:n], p: p}
		if n == len(p.items) {
			part.after = p.after
		}
		t.Parts = append(t.Parts, part)
	}
	if len(t.Parts) == 0 {
		return nil
	}
	return t
}

// Keep keeps of each part only the prefix whose transactions are in ready:
// the rest stays in the store for a later apply.
func (t *Taken) Keep(ready map[int64]bool) {
	if t == nil {
		return
	}
	for i := range t.Parts {
		items := t.Parts[i].Items
		n := 0
		for n < len(items) && ready[items[n].Change.Transaction.TxID] {
			n++
		}
		if n < len(items) {
			t.Parts[i].after = 0
		}
		t.Parts[i].Items = items[:n]
	}
}

// Applying returns the parts that keep records.
func (t *Taken) Applying() []Part {
	if t == nil {
		return nil
	}
	var out []Part
	for _, p := range t.Parts {
		if len(p.Items) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// Doubt tells every partition taken from to leave the direct state, those
// Keep left nothing of too: the apply found an offsets row not where the
// store had it, or a partition's records in an order it cannot apply
// (which may be one whose prefix Keep emptied).
func (t *Taken) Doubt(why Leaving) {
	if t == nil {
		return
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, p := range t.Parts {
		if p.p.leave.Cause == "" {
			p.p.leave = why
		}
	}
	t.s.changed.Broadcast()
}

// Done ends the apply: committed, the records kept are dropped from the
// store and each partition's claim moves past them (the offsets row moved
// with them in the committed transaction); otherwise they stay, in place.
// Either way the partitions are released. Done is idempotent.
func (t *Taken) Done(committed bool) {
	if t == nil || t.done {
		return
	}
	t.done = true
	s := t.s
	var releases []func()
	s.mu.Lock()
	for _, tp := range t.Parts {
		p := tp.p
		p.taking = false
		if !committed || len(tp.Items) == 0 {
			continue
		}
		n := len(tp.Items)
		var bytes int64
		for _, b := range p.sizes[:n] {
			bytes += b
		}
		p.claim.NextOffset = tp.Next()
		last := &tp.Items[n-1].Record
		p.lastKey, p.lastOffset = slices.Clone(last.Key), last.Offset
		clear(p.items[:n])
		p.items, p.sizes, p.at, p.bytes = p.items[n:], p.sizes[n:], p.at[n:], p.bytes-bytes
		s.held -= bytes
		if len(p.items) == 0 {
			p.items, p.sizes, p.at, p.lastTx, p.after = nil, nil, nil, 0, 0
			clear(p.closed)
		}
		if rel := p.release; rel != nil && bytes > 0 {
			releases = append(releases, func() { rel(bytes) })
		}
	}
	s.changed.Broadcast()
	s.mu.Unlock()
	for _, f := range releases {
		f()
	}
}

// Record is a taken item's place in its transaction, for the resolver.
func Record(it *sink.Item) (txID, totalOrder int64, collection string) {
	t := it.Change.Transaction
	return t.TxID, t.TotalOrder, debezium.CollectionOf(&it.Change)
}
