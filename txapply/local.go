package txapply

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
)

// The local path (docs/transactions.md): records a direct partition of
// this process handed to the resolver in memory (txlocal) instead of
// staging them. The resolver counts them with the staged ones, writes
// them in their transaction's order among the staged ones, and moves
// their partitions' offsets rows in its apply transaction.

// localSet is what an apply takes from the local path, per source
// transaction: its records in total order, each once (a re-emitted copy
// of a record is passed over, as the staging's primary key keeps one).
type localSet struct {
	of     map[int64][]localRecord
	counts map[int64]map[string]int64
}

// localRecord is one record of the local path and its staging row's
// fields.
type localRecord struct {
	it *sink.Item
	s  dedup.StagedRecord
}

// localRecords collects the records of taken.
func localRecords(taken *txlocal.Taken) localSet {
	if taken == nil {
		return localSet{}
	}
	set := localSet{of: map[int64][]localRecord{}, counts: map[int64]map[string]int64{}}
	seen := map[[2]int64]bool{}
	for _, p := range taken.Parts {
		for i := range p.Items {
			it := &p.Items[i]
			tx, order, collection := txlocal.Record(it)
			if seen[[2]int64{tx, order}] {
				continue
			}
			seen[[2]int64{tx, order}] = true
			r := it.Record
			s := dedup.StagedRecord{TxID: tx, TotalOrder: order, DataCollection: collection, Topic: r.Topic, Partition: r.Partition,
				Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, LSN: it.Change.Version.LSN}
			set.of[tx] = append(set.of[tx], localRecord{it: it, s: s})
			if set.counts[tx] == nil {
				set.counts[tx] = map[string]int64{}
			}
			set.counts[tx][collection]++
		}
	}
	for _, recs := range set.of {
		slices.SortFunc(recs, func(a, b localRecord) int { return compareInt(a.s.TotalOrder, b.s.TotalOrder) })
	}
	return set
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// with returns progress with the transaction's local records counted as
// staged.
func (l localSet) with(progress dedup.TxProgress, txID int64) dedup.TxProgress {
	counts := l.counts[txID]
	if len(counts) == 0 {
		return progress
	}
	merged := maps.Clone(progress.Staged)
	if merged == nil {
		merged = map[string]int64{}
	}
	for c, n := range counts {
		merged[c] += n
	}
	progress.Staged = merged
	return progress
}

// localCursor walks a transaction's local records in total order while its
// staged ones are read.
type localCursor struct {
	recs []localRecord
	i    int
}

// addLocalBefore adds end's local records whose total order is below
// before, in order.
func (r *Resolver) addLocalBefore(ctx context.Context, c *chunk, end End, cur *localCursor, before int64, first *time.Time) error {
	for cur != nil && cur.i < len(cur.recs) && cur.recs[cur.i].s.TotalOrder < before {
		lr := cur.recs[cur.i]
		cur.i++
		if err := r.addRecord(ctx, c, end, lr.s, lr.it.Record, first); err != nil {
			return err
		}
	}
	return nil
}

// writeMixed adds end's transaction to the chunk: its local records and,
// when it has staged ones too (partitions of other instances, or not
// direct), those read from staging, merged in total order.
func (r *Resolver) writeMixed(ctx context.Context, conn *pgxpool.Conn, c *chunk, group string, end End, recs []localRecord) (first time.Time, err error) {
	cur := &localCursor{recs: recs}
	var want int64
	for _, n := range wanted(end.Marker) {
		want += n
	}
	if want > int64(len(recs)) {
		if first, err = r.writeStaged(ctx, conn, c, group, end, math.MinInt64, cur); err != nil {
			return first, err
		}
	}
	if err := r.addLocalBefore(ctx, c, end, cur, math.MaxInt64, &first); err != nil {
		return first, err
	}
	return first, r.flushFull(ctx, c)
}

// LocalMovedError says that a direct partition's offsets row did not match
// what the local path had for it when the resolver's apply moved it: its
// partition was revoked and claimed by another owner, or something else
// wrote it. Nothing was applied; the partitions concerned leave the direct
// state (their records are staged again by their owner), and the resolver
// tries again.
type LocalMovedError struct{ Err error }

func (e *LocalMovedError) Error() string {
	return fmt.Sprintf("txapply: a local partition's offsets row moved under the resolver; it stages from now on, and the apply is tried again: %v", e.Err)
}

func (e *LocalMovedError) Unwrap() error { return e.Err }

// LocalOrderError says that a ready transaction's records in a direct
// partition came after those of a transaction not ready: the partition
// leaves the direct state and the resolver tries again.
type LocalOrderError struct{ TxID int64 }

func (e *LocalOrderError) Error() string {
	return fmt.Sprintf("txapply: records of transaction %d in a local partition come after a later transaction's; the partition stages from now on, and the apply is tried again", e.TxID)
}
