package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// Transaction-consistent apply (docs/transactions.md): under
// Options.StageTransactions a batch stages the records that carry
// Debezium's transaction block instead of writing them, in the transaction
// that moves its offset (I1); the resolver later writes them, a whole
// source transaction at a time, through a TxWriter.

// transactional reports whether an item is staged rather than written:
// a decoded record of a source transaction, in a batch that stages.
func (x *txn) transactional(it *Item) bool {
	return x.stageTx && it.Err == nil && it.Change.Transaction != nil
}

// Stages reports whether a batch of items would stage records under
// Options.StageTransactions: whether it adds to what waits for the
// resolver.
func Stages(items []Item) bool {
	for i := range items {
		if items[i].Err == nil && items[i].Change.Transaction != nil {
			return true
		}
	}
	return false
}

// queueStaging queues the staging of the transactional items of [lo, hi);
// write passes over them and writes the others as usual.
func (a *Applier) queueStaging(ctx context.Context, x *txn, batch *Batch, lo, hi int) error {
	group, items := batch.Claim.Group, batch.Items
	var staged []dedup.StagedRecord
	var through int64
	for i := lo; i < hi; i++ {
		it := &items[i]
		if !x.transactional(it) {
			continue
		}
		r := it.Record
		s := dedup.StagedRecord{TxID: it.Change.Transaction.TxID, TotalOrder: it.Change.Transaction.TotalOrder,
			DataCollection: debezium.CollectionOf(&it.Change), Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, LSN: it.Change.Version.LSN}
		for _, h := range r.Headers {
			s.Headers = append(s.Headers, dedup.Header{Key: h.Key, Value: string(h.Value)})
		}
		staged = append(staged, s)
		through = max(through, r.Offset)
	}
	switch {
	case batch.StagingGeneration == 0:
	case len(staged) > 0:
		a.transactions.QueueStagingCheck(x.queue, batch.Claim.PartitionID, batch.StagingGeneration, staged[0].Offset)
	default:
		a.transactions.QueueGenerationCheck(x.queue, batch.StagingGeneration)
	}
	// short marks the account of the partition's staging bound as
	// counting records the batch did not stage (connector/stagebound.go).
	short := func() { x.stats.StagedShort = true }
	queue := a.transactions.QueueStage
	if len(staged) > 0 && x.optimistic && a.staging.optimistic() {
		// Records are staged once but for Debezium's re-emissions and
		// replays: plain INSERTs (COPY for many), and upon a unique
		// violation the batch runs again deduplicating
		// (Applier.applyOnce), as for a table's fresh rows.
		x.expectNew(a.staging)
		if len(staged) >= stageCopyMin {
			n, err := a.copyStaging(ctx, x, group, staged, short)
			if err != nil {
				return err
			}
			x.countStaged(len(staged), n, through)
			return nil
		}
		queue = a.transactions.QueueStageNew
	}
	n, err := queue(x.queue, group, staged, short)
	if err != nil {
		return err
	}
	x.countStaged(len(staged), n, through)
	return nil
}

// countStaged counts records staged by the transaction: n of them, taking
// bytes in tx_staged, the last at offset through.
func (x *txn) countStaged(n int, bytes, through int64) {
	if n == 0 {
		return
	}
	if x.stats.Staged == 0 || through > x.stats.StagedThrough {
		x.stats.StagedThrough = through
	}
	x.stats.Staged += int64(n)
	x.stats.StagedBytes += bytes
}

// stageCopyMin is the fewest records a batch stages by COPY: a COPY needs
// the statements queued before it sent first, a round trip a small batch,
// all of whose statements otherwise go in one, should not pay.
const stageCopyMin = 64

// copyStaging stages records by COPY (dedup.StagingCopy): what is queued
// is sent, then the COPY, and the deletion of any record of a transaction
// the resolver applied already is queued after it.
func (a *Applier) copyStaging(ctx context.Context, x *txn, group string, staged []dedup.StagedRecord, short func()) (int64, error) {
	cp, err := a.transactions.PrepareCopy(x.queue, group, staged)
	if err != nil {
		return 0, err
	}
	if err := x.flush(ctx); err != nil {
		return 0, err
	}
	if err := cp.Copy(ctx, x.conn); err != nil {
		return 0, err
	}
	cp.QueueUnstage(x.queue, short)
	return cp.Bytes(), nil
}

// TxWriter writes items into a transaction its caller owns: the
// resolver's, which moves the transaction topic's offset, records the
// source transactions it applies and deletes their staged records around
// the writes.
type TxWriter struct {
	a *Applier
	x *txn
}

// WriteIn returns a TxWriter for the transaction open on conn. With
// optimistic, rows expected to create their key go in by plain INSERT (a
// large run of them by COPY), as a batch's do: the guarded upsert's
// speculative insertion is most of the target's work for fresh rows. When
// one meets an existing key after all, the whole transaction fails with a
// unique violation (Conflicted says so), and the caller runs it again
// with a writer that is not optimistic. Without, items are written with
// the guarded upserts only.
func (a *Applier) WriteIn(conn *pgx.Conn, optimistic bool) *TxWriter {
	x := newTxn(partition{}, optimistic)
	x.conn, x.maxStages = conn, a.opts.StagingTablesPerConnection
	return &TxWriter{a: a, x: x}
}

// Conflicted reports whether err, which aborted the writer's transaction,
// is a plain INSERT of the writer meeting an existing key: the
// transaction is to be run again with upserts only. The tables it
// inserted into skip the plain INSERT for a while, as after a batch's
// conflict.
func (w *TxWriter) Conflicted(err error) bool {
	var pg *pgconn.PgError
	if len(w.x.inserted) == 0 || !errors.As(err, &pg) || pg.Code != uniqueViolation {
		return false
	}
	for _, stmts := range w.x.inserted {
		stmts.conflicted()
	}
	return true
}

// Write writes items in their order and sends them: on return they are
// written in the transaction, or it is aborted with the error. Items of
// one partition in a row are written together, so that the outbox ledger
// names the partition each event came from. Grouping is the caller's: only
// it knows which reorderings its records allow (the resolver groups by
// partition within a run of one table's records, never across tables, a
// foreign key between them may be checked at once).
func (w *TxWriter) Write(ctx context.Context, items []Item) error {
	for lo := 0; lo < len(items); {
		hi := lo + 1
		for hi < len(items) && items[hi].Record.Topic == items[lo].Record.Topic && items[hi].Record.Partition == items[lo].Record.Partition {
			hi++
		}
		for i := lo; i < hi; i++ {
			if items[i].Err != nil {
				// A source transaction cannot be applied minus a record,
				// nor can a dead letter be part of it.
				r := items[i].Record
				return fmt.Errorf("sink: %s[%d]@%d of a source transaction cannot be applied, so its transaction is not: %w", r.Topic, r.Partition, r.Offset, items[i].Err)
			}
		}
		w.x.part = partition{items[lo].Record.Topic, items[lo].Record.Partition}
		// A table without a key at the source: the check a batch runs
		// (keyless.go), against the rows the transaction holds so far.
		if err := w.a.checkUniqueAtSource(ctx, w.x, items, lo, hi, false); err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				r := items[re.Item].Record
				return fmt.Errorf("sink: %s[%d]@%d of a source transaction cannot be applied, so its transaction is not: %w", r.Topic, r.Partition, r.Offset, re.Err)
			}
			return err
		}
		if err := w.a.write(ctx, w.x, items, lo, hi); err != nil {
			return err
		}
		if err := w.x.flush(ctx); err != nil {
			return fmt.Errorf("sink: write staged records: %w", err)
		}
		lo = hi
	}
	return nil
}

// Finish drops the staging tables beyond the session's bound
// (Options.StagingTablesPerConnection), as a batch does before its COMMIT:
// call it once every Write is done, before the caller's COMMIT. A
// transaction that rolls back takes the drops back with it.
func (w *TxWriter) Finish(ctx context.Context) error {
	w.x.queueStageEvictions()
	if err := w.x.flush(ctx); err != nil {
		return fmt.Errorf("sink: drop staging tables beyond the bound: %w", err)
	}
	return nil
}

// Committed tells the writer its transaction committed: the staging
// tables it created in the session live on with the connection.
func (w *TxWriter) Committed() { w.x.keepStages() }

// Stats counts what the writer wrote; valid once the transaction commits.
func (w *TxWriter) Stats() Stats { return w.x.stats }

// Transient reports an error the apply retries (a serialization failure, a
// deadlock, a lost connection): the resolver retries its transaction on
// it, as a batch does.
func Transient(err error) bool { return classify(err) == classTransient }
