package sink

import (
	"time"

	"errors"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// span is what one transaction of Apply accounts for: it writes items
// [lo, hi) of the batch, dead-letters at most one more, and moves the
// partition's offset to next. A span that fails for one of its records is
// split around it (see applyRange).
type span struct {
	batch  *Batch
	lo, hi int
	next   int64
	dead   int   // the item written to the dead letters, or -1
	cause  error // why dead could not be applied
	// stats is the Apply call's: each span adds its counts once it
	// commits.
	stats *Stats
}

// offsetAt is where the partition's offset stands once the span's records
// before item i are applied.
func (s span) offsetAt(i int) int64 {
	if i < s.hi {
		return s.batch.Items[i].Record.Offset
	}
	return s.next
}

// before is the span of the records before item i.
func (s span) before(i int) span {
	return span{batch: s.batch, lo: s.lo, hi: i, next: s.offsetAt(i), dead: -1, stats: s.stats}
}

// from is the span of the records from item i on.
func (s span) from(i int) span {
	return span{batch: s.batch, lo: i, hi: s.hi, next: s.next, dead: -1, stats: s.stats}
}

// isolated is the span that writes item i, which failed with cause, to the
// dead letters and moves the offset past it, writing nothing else.
func (s span) isolated(i int, cause error) span {
	return span{batch: s.batch, lo: i, hi: i, next: s.offsetAt(i + 1), dead: i, cause: cause, stats: s.stats}
}

// culprit is the item that err, a record error, blames, or -1 when it
// blames none of the span's.
func (s span) culprit(err error) int {
	var rec *RecordError
	if errors.As(err, &rec) && rec.Item >= s.lo && rec.Item < s.hi {
		return rec.Item
	}
	if s.hi-s.lo == 1 {
		return s.lo
	}
	return -1
}

// partition is the source partition of the span's records.
func (s span) partition() partition {
	return partition{s.batch.Claim.Topic, s.batch.Claim.Partition}
}

// undecodable fails the span at its first item that could not be decoded
// or routed: only a dead letter can account for it.
func (s span) undecodable() error {
	for i := s.lo; i < s.hi; i++ {
		if s.batch.Items[i].Err != nil {
			return &RecordError{Item: i, Err: s.batch.Items[i].Err}
		}
	}
	return nil
}

// deadCause is what the dead letter of s says: the decoding or routing
// error of an item that has one, else the error that isolated it.
func (s span) deadCause() error {
	if err := s.batch.Items[s.dead].Err; err != nil {
		return err
	}
	return s.cause
}

// records are the records the span's transaction accounts for: those it
// applies, then the one it dead-letters.
func (s span) records() []debezium.Record {
	records := make([]debezium.Record, 0, s.hi-s.lo+1)
	for i := s.lo; i < s.hi; i++ {
		records = append(records, s.batch.Items[i].Record)
	}
	if s.dead >= 0 {
		records = append(records, s.batch.Items[s.dead].Record)
	}
	return records
}

// sourceTs is the source commit time of the newest change the span
// applies, stored with its offset; zero when none carries one.
func (s span) sourceTs() time.Time {
	return NewestSourceTs(s.batch.Items[s.lo:s.hi])
}

// NewestSourceTs is the newest source commit time (Debezium's
// source.ts_us, else ts_ms) among the decoded items, or the zero time.
// Newest rather than last: events Debezium re-emits after a restart come
// after newer ones, and the target has caught up to the newest.
func NewestSourceTs(items []Item) time.Time {
	var newest time.Time
	for i := range items {
		if ts := items[i].Change.SourceTs; items[i].Err == nil && ts.After(newest) {
			newest = ts
		}
	}
	return newest
}

// committed moves the batch's claim past the span, whose transaction
// committed, and counts what the transaction did.
func (s span) committed(before dedup.Claim, work Stats) {
	claim := before
	claim.NextOffset = s.next
	*s.batch.Claim = claim
	s.stats.add(work)
	s.stats.Transactions++
}
