package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink/pgcopy"
)

// txn is one apply transaction whose statements are pipelined: they are
// queued, and sent together, in one round trip, when the transaction needs
// the server's answer before it can go on (a COPY, a staging table to
// create) and at the end with its COMMIT. A batch of a few records is then
// BEGIN, the offsets compare-and-set, its writes and COMMIT in a single
// round trip, where it took one per statement when each waited for the
// last: on busy cores every round trip also waits to be scheduled, and for
// a small batch that wait outweighs the work.
type txn struct {
	conn  *pgx.Conn
	queue *pgx.Batch
	// part is the partition the transaction writes records of, as the
	// outbox ledger records it.
	part partition
	// optimistic lets the transaction write fresh rows with a plain
	// INSERT; inserted lists the tables it did so for. If one meets an
	// existing key, the transaction fails and is applied again without
	// (see Applier.applyOnce).
	optimistic bool
	inserted   []*statements
	// stageTx stages the records of source transactions instead of
	// writing them (Options.StageTransactions; see queueStaging).
	stageTx bool
	// stats counts what the transaction wrote; created, usedStages and
	// dropped name the staging tables it created, used (created ones
	// included) and dropped in its session (see sessionStages): all count
	// only once it commits.
	stats      Stats
	created    []string
	usedStages []string
	dropped    []string
	// maxStages bounds the staging tables its session keeps
	// (Options.StagingTablesPerConnection).
	maxStages int
}

// newTxn returns an empty transaction; its connection is set once acquired.
func newTxn(part partition, optimistic bool) *txn {
	return &txn{queue: &pgx.Batch{}, part: part, optimistic: optimistic}
}

// expectNew records that the transaction wrote keys of stmts' table, rows
// or tombstones, by plain INSERT: a unique violation then sends it back to
// upserts only (see Applier.applyOnce).
func (x *txn) expectNew(stmts *statements) {
	if !slices.Contains(x.inserted, stmts) {
		x.inserted = append(x.inserted, stmts)
	}
}

// flush sends the queued statements and reads their results, running their
// callbacks; the first error aborts the transaction and is returned.
func (x *txn) flush(ctx context.Context) error {
	if x.queue.Len() == 0 {
		return nil
	}
	b := x.queue
	x.queue = &pgx.Batch{}
	return x.conn.SendBatch(ctx, b).Close()
}

// copyFrom sends what is queued, then COPYs rows into table; revision
// names its definition for pgcopy.CopyAt ("" for a staging table, which
// the sink defines).
func (x *txn) copyFrom(ctx context.Context, table pgx.Identifier, cols []string, rows [][]any, revision string) error {
	if err := x.flush(ctx); err != nil {
		return err
	}
	_, err := pgcopy.CopyAt(ctx, x.conn, table, cols, rows, revision)
	return err
}

// queueWrapped queues a statement whose error, if any, is passed through
// wrap, so that it names what failed like an error of Exec would.
func (x *txn) queueWrapped(sql string, args []any, wrap func(error) error) {
	x.queue.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return wrap(err)
		}
		return nil
	}
}

// commitOutcome is what the last round trip of a transaction, the one
// carrying its COMMIT, tells about the COMMIT.
type commitOutcome int

const (
	// committed: PostgreSQL reported the COMMIT done.
	committed commitOutcome = iota
	// notCommitted: PostgreSQL reported an error that aborted the
	// transaction before or at its COMMIT, and the session is alive.
	notCommitted
	// unknown: the connection failed, or PostgreSQL ended the session,
	// before the COMMIT's result was read. The outcome must be read from
	// the offsets row on another connection.
	unknown
)

// commit queues COMMIT and sends what is queued with it. err is the first
// error of the round trip, whatever the outcome.
func (x *txn) commit(ctx context.Context) (commitOutcome, error) {
	done := false
	x.queueStageEvictions()
	x.queue.Queue("COMMIT").Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			// PostgreSQL answers ROLLBACK to the COMMIT of an aborted
			// transaction; pipelined statements after an error are
			// skipped, so this should not happen, but it is no commit.
			return fmt.Errorf("COMMIT answered %q", tag.String())
		}
		done = true
		return nil
	}
	err := x.flush(ctx)
	switch {
	case done:
		// An error after COMMIT's own result (the session ended before
		// its last ReadyForQuery) does not undo it.
		return committed, err
	case err == nil:
		return unknown, errors.New("COMMIT sent, but no result read for it")
	case isStatementError(err), errors.Is(err, dedup.ErrNotAdvanced), errors.Is(err, dedup.ErrStagingReset):
		return notCommitted, err
	default:
		return unknown, err
	}
}

// isStatementError reports an error PostgreSQL raised for a statement with
// severity ERROR: the transaction is aborted, the session lives on, and
// nothing after the statement ran. FATAL and PANIC end the session and
// can arrive after the COMMIT ran; the connection's own errors say nothing
// of what the server did, nor does an error pgsink's own code raised while
// reading a result.
func isStatementError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Severity == "ERROR"
}
