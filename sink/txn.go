package sink

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

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
// round trip, where it took five when each statement waited for the last:
// on two busy cores every round trip also waits to be scheduled, and that
// wait, not the work, was most of a small batch's latency.
type txn struct {
	conn  *pgx.Conn
	queue *pgx.Batch
	// optimistic lets the transaction write fresh rows with a plain
	// INSERT; inserted lists the tables it did so for. If one meets an
	// existing key, the transaction fails and is applied again without
	// (see Applier.applyOnce).
	optimistic bool
	inserted   []*statements
}

// expectNew records that the transaction wrote keys of stmts' table, rows
// or tombstones, by plain INSERT: a unique violation then sends it back to
// upserts only (see Applier.applyOnce).
func (x *txn) expectNew(stmts *statements) {
	if !slices.Contains(x.inserted, stmts) {
		x.inserted = append(x.inserted, stmts)
	}
}

// newTxn returns an empty transaction; its connection is set once acquired.
func newTxn(optimistic bool) *txn {
	return &txn{queue: &pgx.Batch{}, optimistic: optimistic}
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

// maxParams is PostgreSQL's limit of bound parameters per statement.
const maxParams = 65535

// valuesFit reports whether rows of width columns can be staged by one
// INSERT … VALUES with bound parameters.
func valuesFit(rows, width int) bool {
	return rows > 0 && rows <= valuesRows && rows*width <= maxParams
}

// valuesRows is the most rows staged with INSERT … VALUES, which rides in
// the transaction's pipeline; larger stages go through COPY, which takes a
// round trip of its own but encodes rows for less CPU than parameters do.
const valuesRows = genericPlanRows

// stageValues is the INSERT that stages n rows into a staging table with
// bound parameters: its quoted name and its columns, unquoted.
func stageValues(stage string, cols []string, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + stage + " (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(c))
	}
	b.WriteString(") VALUES")
	p := 1
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    (")
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(p))
			p++
		}
		b.WriteString(")")
	}
	return b.String()
}

// stageValuesTexts caches stageValues by staging table and row count: every
// small batch needs one, like the upsert texts (see statements.upsert). The
// staging table's name covers its columns, so it is key enough.
var stageValuesTexts sync.Map // stageValuesKey -> string

type stageValuesKey struct {
	stage string
	rows  int
}

func cachedStageValues(stage string, cols []string, n int) string {
	key := stageValuesKey{stage, n}
	if sql, ok := stageValuesTexts.Load(key); ok {
		return sql.(string)
	}
	sql := stageValues(stage, cols, n)
	stageValuesTexts.Store(key, sql)
	return sql
}

// valuesChunks splits n rows staged by INSERT … VALUES into powers of two,
// largest first (37: 32, 4, 1). Each row count is a statement that pgx
// prepares and caches per connection; with every count from 1 to
// valuesRows, a few tables would fill pgx's statement cache (512) and
// every batch would wait for a round trip to prepare again. Powers of two
// bound it to 7 per table, for a statement or two more per batch, which
// ride in the same pipeline.
func valuesChunks(n int) []int {
	var chunks []int
	for n > 0 {
		c := 1 << (bits.Len(uint(n)) - 1)
		chunks = append(chunks, c)
		n -= c
	}
	return chunks
}

// flatten lays rows out as one statement's parameters.
func flatten(rows [][]any) []any {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		args = append(args, r...)
	}
	return args
}

// stage fills a staging table with rows: in the pipeline with INSERT …
// VALUES when they are few, else by COPY. The table must exist on the
// server before a statement naming it is queued: pgx prepares every
// statement of a pipeline before it runs any.
func (x *txn) stage(ctx context.Context, name string, cols []string, rows [][]any) error {
	stage := pgx.Identifier{"pg_temp", name}
	if valuesFit(len(rows), len(cols)) {
		for _, n := range valuesChunks(len(rows)) {
			x.queueWrapped(cachedStageValues(stage.Sanitize(), cols, n), flatten(rows[:n]), func(err error) error {
				return fmt.Errorf("stage rows: %w", err)
			})
			rows = rows[n:]
		}
		return nil
	}
	return x.copyFrom(ctx, stage, cols, rows, "")
}

// unstage queues, after the statements that read it, the emptying of a
// staging table (its quoted name) into which the transaction staged rows:
// DELETE, and TRUNCATE once the rows staged since the last TRUNCATE on
// this connection add up to truncateStageRows. Either way the table is
// empty when the transaction commits, and a transaction that rolls back
// takes its staged rows with it.
//
// Not ON COMMIT DELETE ROWS, which truncates the table at every commit:
// truncating a file took 0.6–1.4 ms here (ext4), more than the rest of a
// small transaction. DELETE leaves dead rows that PostgreSQL prunes from
// a temporary table's pages as the next stages scan them; the periodic
// TRUNCATE bounds the line pointers and pages pruning cannot give back.
func (x *txn) unstage(pg *pgconn.PgConn, stage string, staged int) {
	key := stage + " rows since truncate"
	n, _ := pg.CustomData()[key].(int)
	n += staged
	if n >= truncateStageRows {
		x.queue.Queue("TRUNCATE " + stage)
		n = 0
	} else {
		x.queue.Queue("DELETE FROM " + stage)
	}
	pg.CustomData()[key] = n
}

// truncateStageRows is how many rows a connection stages into a table
// between two TRUNCATEs of it: a batch of that many is truncated at once.
const truncateStageRows = 4096

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
	case isStatementError(err), errors.Is(err, dedup.ErrNotAdvanced):
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
