package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
)

// applyOnce runs the transaction of s: the offset CAS first, then the
// writes of its items, then its dead letter. Its statements are pipelined
// (see txn): a small batch is one round trip.
//
// Rows expected to create their key go in by plain INSERT, and so do the
// tombstones of deleted keys. When one meets an existing key after all, the
// transaction fails with a unique violation and is run once more with
// upserts only, which decide by version as always; so such a violation is
// never taken for a poison record, and one that the upserts meet too
// (another unique index) is one.
func (a *Applier) applyOnce(ctx context.Context, s span) error {
	x := newTxn(s.partition(), true)
	err := a.transact(ctx, x, s)
	var pg *pgconn.PgError
	if len(x.inserted) == 0 || !errors.As(err, &pg) || pg.Code != uniqueViolation {
		return err
	}
	for _, stmts := range x.inserted {
		stmts.conflicted()
	}
	s.stats.InsertConflicts++
	if pg.TableName == a.transactions.StagedTable() && pg.SchemaName == a.opts.Schema {
		s.stats.RestagedConflicts++
	}
	return a.transact(ctx, newTxn(s.partition(), false), s)
}

// uniqueViolation is SQLSTATE unique_violation.
const uniqueViolation = "23505"

// transact is one attempt of applyOnce, in x: on success the span's writes
// and its offset are committed and counted.
func (a *Applier) transact(ctx context.Context, x *txn, s span) error {
	if err := s.undecodable(); err != nil {
		return err
	}
	asked := time.Now()
	conn, err := a.pool.Acquire(ctx)
	s.stats.ConnectionWait += time.Since(asked)
	if err != nil {
		return fmt.Errorf("sink: acquire connection: %w", err)
	}
	released := false
	defer func() {
		if !released {
			rollbackLeftOpen(ctx, conn.Conn())
			conn.Release()
		}
	}()
	x.conn, x.maxStages = conn.Conn(), a.opts.StagingTablesPerConnection
	before := *s.batch.Claim
	if err := a.queueSpanRecovered(ctx, x, s); err != nil {
		var panicked *PanicError
		if errors.As(err, &panicked) {
			// What the pipeline holds is unknown: drop the session,
			// which rolls back whatever it had begun.
			closeAndRelease(conn)
			released = true
			s.stats.Panics++
			return err
		}
		return a.aborted(ctx, conn.Conn(), before, err)
	}
	outcome, err := x.commit(ctx)
	switch {
	case outcome == committed:
	case outcome == notCommitted:
		return a.aborted(ctx, conn.Conn(), before, err)
	case a.opts.KafkaOffsets:
		return fmt.Errorf("sink: commit: %w", err) // redelivered: at least once
	default:
		// The connection that failed during COMMIT is closed and given
		// back before the outcome is read on another: holding it while
		// waiting for a second one deadlocks a pool whose connections all
		// failed at once (a failover; a pool of one).
		closeAndRelease(conn)
		released = true
		if rerr := a.resolveCommit(ctx, before, s.next, err); rerr != nil {
			return rerr
		}
		if x.stats.Staged > 0 {
			// Committed, but the staging statements' row counts may not
			// have been read: what they staged is not known, and the
			// staging bound must not take every byte for a staged row
			// (Stats.StagedShort).
			x.stats.StagedShort = true
		}
	}
	if !released {
		if err != nil {
			// Committed, but the session failed after: drop it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		// Only on a connection that lives on: not on one whose session
		// failed after its COMMIT, nor after an ambiguous COMMIT (released).
		if !conn.Conn().IsClosed() {
			x.keepStages()
		}
	}
	s.committed(before, x.stats)
	return nil
}

// queueSpanRecovered is queueSpan with a panic (reducing, staging,
// encoding a record) turned into a *PanicError.
func (a *Applier) queueSpanRecovered(ctx context.Context, x *txn, s span) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = NewPanicError(v)
		}
	}()
	return a.queueSpan(ctx, x, s)
}

// queueSpan queues the span's transaction up to its COMMIT: BEGIN, the
// offsets compare-and-set, the writes, the dead letter. A write that needs
// the server's answer before it can go on sends what is queued before it.
func (a *Applier) queueSpan(ctx context.Context, x *txn, s span) error {
	x.queue.Queue("BEGIN")
	if !a.opts.KafkaOffsets {
		// The first statement: its row lock serialises the partition's
		// writers (see dedup.Offsets.Advance).
		if s.batch.Chained {
			a.offsets.QueueLockBehind(x.queue, *s.batch.Claim)
		}
		if err := a.offsets.QueueAdvance(x.queue, *s.batch.Claim, s.next, s.sourceTs()); err != nil {
			return err
		}
		if s.batch.ClaimHeld != nil {
			if err := x.flush(ctx); err != nil {
				return err
			}
			s.batch.ClaimHeld()
		}
	}
	if err := a.checkUniqueAtSource(ctx, x, s.batch.Items, s.lo, s.hi, a.opts.StageTransactions); err != nil {
		return err
	}
	if a.opts.AsyncCommit {
		x.queue.Queue("SET LOCAL synchronous_commit = off")
	}
	if a.opts.TestPanicOn != nil {
		for i := s.lo; i < s.hi; i++ {
			if a.opts.TestPanicOn(s.batch.Items[i].Record) {
				panic(fmt.Sprintf("TestPanicOn: the record at offset %d", s.batch.Items[i].Record.Offset))
			}
		}
	}
	if x.stageTx = a.opts.StageTransactions; x.stageTx {
		if err := a.queueStaging(ctx, x, s.batch, s.lo, s.hi); err != nil {
			return err
		}
	}
	if err := a.write(ctx, x, s.batch.Items, s.lo, s.hi); err != nil {
		return err
	}
	a.queueSnapshotEnds(x, s)
	if s.dead >= 0 {
		a.deadLetter(x, s.batch.Claim.Group, s.batch.Items[s.dead], s.deadCause())
		x.stats.DeadLetters++
	}
	if a.opts.BeforeCommit != nil {
		a.opts.BeforeCommit(x.queue, s.records())
	}
	return nil
}

// resolveCommit reads from the offsets row whether a COMMIT that failed
// with commitErr, moving the claim before to next, took effect. It returns
// nil if it did. The wait is bounded so an unreachable server is an error,
// not a hang.
func (a *Applier) resolveCommit(ctx context.Context, before dedup.Claim, next int64, commitErr error) error {
	resolveCtx, cancelResolve := context.WithTimeout(ctx, resolveTimeout)
	done, rerr := a.offsets.ResolveCommit(resolveCtx, a.pool, before, next)
	cancelResolve()
	if rerr != nil {
		// Another owner or a replay moved the row meanwhile: that is
		// the answer, as from Advance. Otherwise try again.
		if ctx.Err() != nil || errors.As(rerr, new(*dedup.FencedError)) || errors.As(rerr, new(*dedup.PositionMovedError)) {
			return fmt.Errorf("sink: commit failed (%v) and its outcome is unknown: %w", commitErr, rerr)
		}
		return &UnknownCommitError{Commit: commitErr, Resolve: rerr}
	}
	if !done {
		return fmt.Errorf("sink: commit: %w", commitErr)
	}
	return nil
}

// resolveTimeout bounds the reading of the offsets row after a COMMIT
// whose outcome is unknown. Past it the batch fails as a transient error
// and is retried: a retry of a batch that did commit is refused by the
// offset compare-and-set and reported as a moved position, never applied
// twice (I1, I2).
const resolveTimeout = 30 * time.Second

// aborted rolls back a transaction that failed before it committed and
// returns its error; when its offsets compare-and-set failed, the error
// says why: fenced, or the position moved.
func (a *Applier) aborted(ctx context.Context, conn *pgx.Conn, before dedup.Claim, err error) error {
	if !errors.Is(err, dedup.ErrNotAdvanced) {
		return err
	}
	if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
		return fmt.Errorf("%w (and the rollback failed: %v)", err, rerr)
	}
	return a.offsets.Mismatch(ctx, conn, before)
}

// rollbackLeftOpen rolls back a transaction left open or aborted on the
// server, so the connection can go back to the pool (which would otherwise
// drop it); a connection that cannot is dropped.
func rollbackLeftOpen(ctx context.Context, conn *pgx.Conn) {
	if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	_, _ = conn.Exec(rollbackCtx, "ROLLBACK")
	cancel()
}

// rollbackTimeout bounds the ROLLBACK of a failed transaction; past it the
// connection is dropped, which rolls back as well.
const rollbackTimeout = 5 * time.Second

// closeAndRelease closes a connection whose session failed and gives it
// back to the pool, which drops it; the close is bounded.
func closeAndRelease(conn *pgxpool.Conn) {
	closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
	_ = conn.Conn().Close(closeCtx)
	cancelClose()
	conn.Release()
}
