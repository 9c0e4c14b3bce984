package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// Item is one record of a batch that the sink must account for. Either Err
// is set (the record could not be decoded or routed: it goes to the dead
// letters) or Table and Change are.
type Item struct {
	Record debezium.Record
	Table  *Table
	Change debezium.Change
	Err    error
}

// Batch is consecutive records of ONE partition, applied in one transaction
// together with that partition's offset (I1). Records that need no write
// (tombstones, transaction markers) are not items: Next covers them.
type Batch struct {
	Claim *dedup.Claim
	Items []Item // in offset order
	Next  int64  // the offset after the batch's last record
}

// Options configure an Applier.
type Options struct {
	Schema string // pgsink's own tables (postgres.schema)
	// Tolerance none stops the partition at the first record that cannot be
	// applied; all isolates it into the dead-letter table.
	StopOnError bool
	// AsyncCommit sets synchronous_commit=off for apply transactions: a crash
	// may lose the last transactions, but their offsets go with them, so
	// Kafka redelivers and the effect stays exactly once.
	AsyncCommit bool
	Retry       Retry
	// KafkaOffsets (apply.offsets: kafka) leaves the offsets table alone:
	// the caller commits positions to Kafka after the transaction, at
	// least once.
	KafkaOffsets bool
	// BeforeCommit, when set, runs inside each apply transaction just before
	// COMMIT with the records the transaction accounts for (applied or
	// dead-lettered). Tests use it to keep an audit that proves no record is
	// applied twice.
	BeforeCommit func(b *pgx.Batch, records []debezium.Record)
	// UpsertOnly writes every row with the guarded upsert, also those a
	// plain INSERT would create faster (see statements.buildInsert), so
	// benchmarks can compare the two.
	UpsertOnly bool
	// TestNoVersionGuard breaks pgsink on purpose: writes no longer check
	// the stored version, so stale events regress rows. Only the fault
	// suite sets it (PGSINK_TEST_BREAK=no-version-guard) to prove its
	// invariant checks catch a broken apply.
	TestNoVersionGuard bool
}

// Retry bounds the retries of transient errors.
type Retry struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Stats counts what one Apply did.
type Stats struct {
	Upserted, Deleted, Truncated int64 // rows sent to the target (guard may skip some)
	// Stale counts upserted rows the version guard or a tombstone refused:
	// older than what the target holds (Debezium re-emissions, replays).
	Stale int64
	// Unresolved counts rows created (their key was not in the target)
	// from an event carrying Debezium's unchanged-TOAST placeholder: the
	// source did not send those columns and no stored row holds them, so
	// they take their default, NULL. It happens to the new key of a
	// primary-key change under REPLICA IDENTITY DEFAULT; REPLICA IDENTITY
	// FULL on the source table avoids it. An upper bound: a row among them
	// that the version guard or a tombstone refuses is counted too.
	Unresolved int64
	// Skipped counts outbox events of a type their table does not take;
	// their offsets are passed like any other.
	Skipped int64
	// Duplicates counts outbox events already applied: in the ledger, or
	// earlier in the same batch.
	Duplicates  int64
	DeadLetters int
	Retries     int
	// InsertConflicts counts transactions applied a second time, with
	// upserts only, because a plain INSERT of rows expected to be new met
	// an existing key.
	InsertConflicts int
	Transactions    int
}

// Applier applies batches to the target database.
type Applier struct {
	pool    *pgxpool.Pool
	opts    Options
	offsets dedup.Offsets
	dead    dedup.DeadLetters

	mu     sync.Mutex
	stmts  map[*Table]*statements
	outbox map[*Table]*outboxStatements
}

// NewApplier returns an Applier writing through pool.
func NewApplier(pool *pgxpool.Pool, opts Options) *Applier {
	if opts.Retry.MaxAttempts <= 0 {
		opts.Retry = Retry{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}
	}
	return &Applier{
		pool:    pool,
		opts:    opts,
		offsets: dedup.NewOffsets(opts.Schema),
		dead:    dedup.NewDeadLetters(opts.Schema),
		stmts:   map[*Table]*statements{},
		outbox:  map[*Table]*outboxStatements{},
	}
}

// Apply applies b and moves its partition's offset to b.Next, all in one
// transaction, or, when a record fails, in several: the records around it
// are applied and it goes to the dead-letter table in the transaction that
// moves the offset past it. On success b.Claim.NextOffset is b.Next.
func (a *Applier) Apply(ctx context.Context, b *Batch) (Stats, error) {
	var st Stats
	err := a.applyRange(ctx, b, 0, len(b.Items), b.Next, &st)
	return st, err
}

func (a *Applier) applyRange(ctx context.Context, b *Batch, lo, hi int, next int64, st *Stats) error {
	err := a.retry(ctx, st, func() error { return a.applyOnce(ctx, b, lo, hi, next, -1, nil, st) })
	if err == nil || classify(err) != classRecord {
		return err
	}
	culprit := -1
	var rec *RecordError
	if errors.As(err, &rec) && rec.Item >= lo && rec.Item < hi {
		culprit = rec.Item
	}
	if culprit < 0 && hi-lo == 1 {
		culprit = lo
	}
	if culprit < 0 {
		// The database refused the range without saying which record: halve
		// it until the failing record stands alone.
		mid := lo + (hi-lo)/2
		if err := a.applyRange(ctx, b, lo, mid, b.Items[mid].Record.Offset, st); err != nil {
			return err
		}
		return a.applyRange(ctx, b, mid, hi, next, st)
	}
	if a.opts.StopOnError {
		r := b.Items[culprit].Record
		// Apply what precedes the poison record, so the partition stops
		// exactly at it.
		if culprit > lo {
			if err := a.applyRange(ctx, b, lo, culprit, r.Offset, st); err != nil {
				return err
			}
		}
		return &PoisonError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
	}
	if culprit > lo {
		if err := a.applyRange(ctx, b, lo, culprit, b.Items[culprit].Record.Offset, st); err != nil {
			return err
		}
	}
	after := next
	if culprit+1 < hi {
		after = b.Items[culprit+1].Record.Offset
	}
	if err := a.retry(ctx, st, func() error { return a.applyOnce(ctx, b, culprit, culprit, after, culprit, err, st) }); err != nil {
		return err
	}
	if culprit+1 < hi {
		return a.applyRange(ctx, b, culprit+1, hi, next, st)
	}
	return nil
}

// retry runs fn until it succeeds, fails for good, or the attempts run out.
func (a *Applier) retry(ctx context.Context, st *Stats, fn func() error) error {
	backoff := a.opts.Retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || classify(err) != classTransient || attempt >= a.opts.Retry.MaxAttempts {
			return err
		}
		st.Retries++
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, a.opts.Retry.MaxBackoff)
	}
}

// applyOnce runs one transaction: the offset CAS first, then the writes of
// items [lo, hi), then the dead letter of item dead (if >= 0) with cause.
// Its statements are pipelined (see txn): a small batch is one round trip.
//
// Rows expected to create their key go in by plain INSERT, and so do the
// tombstones of deleted keys. When one meets an existing key after all, the
// transaction fails with a unique violation and is run once more with
// upserts only, which decide by version as always; so such a violation is
// never taken for a poison record, and one that the upserts meet too
// (another unique index) is one.
func (a *Applier) applyOnce(ctx context.Context, b *Batch, lo, hi int, next int64, dead int, cause error, st *Stats) error {
	x := newTxn(true)
	err := a.transact(ctx, x, b, lo, hi, next, dead, cause, st)
	var pg *pgconn.PgError
	if len(x.inserted) == 0 || !errors.As(err, &pg) || pg.Code != uniqueViolation {
		return err
	}
	for _, stmts := range x.inserted {
		stmts.conflicted()
	}
	st.InsertConflicts++
	return a.transact(ctx, newTxn(false), b, lo, hi, next, dead, cause, st)
}

// uniqueViolation is SQLSTATE unique_violation.
const uniqueViolation = "23505"

// transact is one attempt of applyOnce, in x.
func (a *Applier) transact(ctx context.Context, x *txn, b *Batch, lo, hi int, next int64, dead int, cause error, st *Stats) error {
	for i := lo; i < hi; i++ {
		if b.Items[i].Err != nil {
			return &RecordError{Item: i, Err: b.Items[i].Err}
		}
	}
	conn, err := a.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("sink: acquire connection: %w", err)
	}
	released := false
	defer func() {
		if !released {
			conn.Release()
		}
	}()
	x.conn = conn.Conn()
	defer func() {
		// A transaction left open or aborted on the server is rolled
		// back, so the connection can go back to the pool (which would
		// otherwise drop it); a connection that cannot is dropped.
		if !released && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
			rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_, _ = conn.Conn().Exec(rollbackCtx, "ROLLBACK")
			cancel()
		}
	}()
	before := *b.Claim
	claim := before
	claim.NextOffset = next // once committed
	x.queue.Queue("BEGIN")
	if !a.opts.KafkaOffsets {
		// The first statement: its row lock serialises the partition's
		// writers (see dedup.Offsets.Advance).
		if err := a.offsets.QueueAdvance(x.queue, before, next); err != nil {
			return err
		}
	}
	if a.opts.AsyncCommit {
		x.queue.Queue("SET LOCAL synchronous_commit = off")
	}
	var pending Stats
	pg := conn.Conn().PgConn()
	created, err := a.write(ctx, pg, x, b.Items, lo, hi, partition{b.Claim.Topic, b.Claim.Partition}, &pending)
	if err != nil {
		return a.aborted(ctx, conn.Conn(), before, err)
	}
	if dead >= 0 {
		if b.Items[dead].Err != nil {
			cause = b.Items[dead].Err
		}
		a.deadLetter(x, b.Claim.Group, b.Items[dead], cause)
		pending.DeadLetters++
	}
	if a.opts.BeforeCommit != nil {
		records := make([]debezium.Record, 0, hi-lo+1)
		for i := lo; i < hi; i++ {
			records = append(records, b.Items[i].Record)
		}
		if dead >= 0 {
			records = append(records, b.Items[dead].Record)
		}
		a.opts.BeforeCommit(x.queue, records)
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
		// failed at once (a failover; a pool of one), and the wait is
		// bounded so an unreachable server is an error, not a hang.
		closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Conn().Close(closeCtx)
		cancelClose()
		conn.Release()
		released = true
		resolveCtx, cancelResolve := context.WithTimeout(ctx, resolveTimeout)
		done, rerr := a.offsets.ResolveCommit(resolveCtx, a.pool, before, next)
		cancelResolve()
		if rerr != nil {
			// Another owner or a replay moved the row meanwhile: that is
			// the answer, as from Advance. Otherwise try again.
			if ctx.Err() != nil || errors.As(rerr, new(*dedup.FencedError)) || errors.As(rerr, new(*dedup.PositionMovedError)) {
				return fmt.Errorf("sink: commit failed (%v) and its outcome is unknown: %w", err, rerr)
			}
			return &UnknownCommitError{Commit: err, Resolve: rerr}
		}
		if !done {
			return fmt.Errorf("sink: commit: %w", err)
		}
	}
	if err != nil && !released {
		// Committed, but the session failed after: drop it.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
	}
	// A staging table created in a transaction that rolled back is gone
	// with it: remember it only now (and only on a connection that lives
	// on: after an ambiguous COMMIT it was closed).
	if !released && !conn.Conn().IsClosed() {
		for _, name := range created {
			pg.CustomData()[name] = true
		}
	}
	*b.Claim = claim
	st.add(pending)
	st.Transactions++
	return nil
}

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

// add counts a committed transaction's work; Retries and Transactions are
// counted by the caller.
func (s *Stats) add(o Stats) {
	s.Upserted += o.Upserted
	s.Deleted += o.Deleted
	s.Truncated += o.Truncated
	s.Stale += o.Stale
	s.Unresolved += o.Unresolved
	s.Skipped += o.Skipped
	s.Duplicates += o.Duplicates
	s.DeadLetters += o.DeadLetters
}

// write stages and applies items [lo, hi), table by table. It returns the
// staging tables it created in this session.
func (a *Applier) write(ctx context.Context, pg *pgconn.PgConn, x *txn, items []Item, lo, hi int, part partition, st *Stats) (created []string, err error) {
	byTable := map[*Table][]int{}
	var tables []*Table
	for i := lo; i < hi; i++ {
		t := items[i].Table
		if _, ok := byTable[t]; !ok {
			tables = append(tables, t)
		}
		byTable[t] = append(byTable[t], i)
	}
	for _, t := range tables {
		if t.Outbox != nil {
			made, err := a.writeOutbox(ctx, pg, x, t, items, byTable[t], part, st)
			if made {
				created = append(created, a.outboxStatementsFor(t).stageName)
			}
			if err != nil {
				return created, fmt.Errorf("sink: table %s: %w", t.Ref(), err)
			}
			continue
		}
		red, err := reduce(t, items, byTable[t])
		if err != nil {
			return created, err
		}
		made, err := a.writeTable(ctx, pg, x, t, red, st)
		if made {
			created = append(created, a.statementsFor(t).stageName)
		}
		if err != nil {
			return created, fmt.Errorf("sink: table %s: %w", t.Ref(), err)
		}
	}
	return created, nil
}

func (a *Applier) statementsFor(t *Table) *statements {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stmts[t]
	if st == nil {
		st = buildStatements(t, a.opts.Schema, a.opts.TestNoVersionGuard)
		a.stmts[t] = st
	}
	return st
}

// writeTable stages the table's reduced rows and applies them; it reports
// whether it created the session's staging table.
func (a *Applier) writeTable(ctx context.Context, pg *pgconn.PgConn, x *txn, t *Table, red *reduced, st *Stats) (created bool, err error) {
	stmts := a.statementsFor(t)
	// The staging table has no statistics and its size changes per batch:
	// a cached generic plan made for a small stage (a nested loop scanning
	// it per target row) turns quadratic on a large one. Custom plans see
	// the stage's real size. JIT compilation, which the planner turns on
	// for the cost it expects of the tombstone probes the upsert mostly
	// skips, takes longer than these statements run (50 ms against 100 at
	// 5,000 rows). Pipelined, it costs no round trip.
	x.queue.Queue(applySettings)
	if red.truncate != nil {
		x.queue.Queue(stmts.truncate, red.truncate.CommitLSN, red.truncate.LSN)
		x.queue.Queue(stmts.truncateTS, t.Ref(), red.truncate.CommitLSN, red.truncate.LSN)
		st.Truncated++
	}
	if len(red.rows) > 0 {
		if pg.CustomData()[stmts.stageName] == nil {
			// Created in its own round trip: pgx prepares the statements
			// that name it before it runs any of the pipeline.
			x.queue.Queue(stmts.createStage)
			created = true
			if err := x.flush(ctx); err != nil {
				return created, fmt.Errorf("create staging table: %w", err)
			}
		}
		insert := x.optimistic && !a.opts.UpsertOnly && stmts.optimistic()
		if insert && !valuesFit(len(red.rows), len(stmts.stageCols)) {
			rest, copied, err := copyFresh(ctx, x, stmts, red)
			if err != nil {
				return created, err
			}
			st.Upserted += copied
			red = rest
		}
		if len(red.rows) == 0 {
			return created, nil
		}
		rows, groups, inserts := stagingRows(red, insert)
		deletes := groups[0].rows > 0
		st.Deleted += groups[0].rows
		st.Upserted += inserts
		for _, g := range groups[1:] {
			st.Upserted += g.rows
		}
		if err := x.stage(ctx, stmts.stageName, stmts.stageCols, rows); err != nil {
			return created, fmt.Errorf("stage rows: %w", err)
		}
		// A small stage keeps the generic plans of the insert and the
		// upserts: planning them afresh took 15% of PostgreSQL's CPU per
		// transaction at a record per batch. Their plans do not depend on
		// the stage's size (one scan of the stage, index probes per row),
		// unlike the statements that join the stage, which go back to
		// custom plans after them. The unresolved count runs in between
		// with the generic plan too: it probes the target per staged row.
		small := len(rows) <= genericPlanRows
		if small {
			x.queue.Queue(genericPlans)
		}
		nested := false
		if inserts > 0 {
			x.expectNew(stmts)
			x.queue.Queue(stmts.insert, t.Ref()).Exec(func(tag pgconn.CommandTag) error {
				st.Stale += inserts - tag.RowsAffected()
				return nil
			})
		}
		for m, g := range groups {
			if m == 0 || g.rows == 0 {
				continue
			}
			staged := g.rows
			if slices.Contains(g.unchanged, true) {
				// Asked before the upsert creates them. Rare: only
				// events with TOAST placeholders come here.
				x.queue.Queue(stmts.unresolved, int32(m)).QueryRow(func(row pgx.Row) error {
					var n int64
					err := row.Scan(&n)
					st.Unresolved += n
					return err
				})
			}
			// Rows neither statement wrote were refused by the version
			// guard or a tombstone: stale events, counted, never applied.
			if small {
				x.queue.Queue(stmts.upsert(g.unchanged), int32(m), t.Ref()).Exec(func(tag pgconn.CommandTag) error {
					st.Stale += staged - tag.RowsAffected()
					return nil
				})
				continue
			}
			// A large stage updates the keys the target holds first, and
			// upserts the rest only if there are any (see buildUpdate).
			if !nested {
				x.queue.Queue(nestedLoops)
				nested = true
			}
			var updated int64
			x.queue.Queue(stmts.update(g.unchanged), int32(m)).QueryRow(func(row pgx.Row) error {
				return row.Scan(&updated, nil)
			})
			x.queue.Queue(stmts.upsertMissing(g.unchanged), int32(m), t.Ref(), staged).Exec(func(tag pgconn.CommandTag) error {
				st.Stale += staged - updated - tag.RowsAffected()
				return nil
			})
		}
		if small {
			x.queue.Queue(customPlans)
		}
		if deletes {
			switch t.Deletes {
			case DeleteHard:
				x.queue.Queue(stmts.deleteHard)
			case DeleteSoft:
				x.queue.Queue(stmts.deleteSoft)
			}
			if insert {
				// A key deleted again (recreated in between, or a delete
				// Debezium re-emitted) has a tombstone already: the unique
				// violation sends the transaction back to upserts only, as
				// for a fresh row whose key exists.
				x.expectNew(stmts)
				x.queue.Queue(stmts.tombstonesNew, t.Ref())
			} else {
				x.queue.Queue(stmts.tombstones, t.Ref())
			}
		}
		x.unstage(pg, stmts.stage, len(rows))
	}
	return created, nil
}

// copyFresh COPYs a large batch's fresh rows straight into the target, all
// but those a tombstone may block, and returns the rest of the batch for the
// staging table. They skip the stage and its scan, and COPY writes them
// with PostgreSQL's multi-row heap insert, one WAL record per page rather
// than per row. Which fresh rows a tombstone may block is asked first, in
// the transaction's pipeline (statements.blockedFresh): those go through
// the stage, whose INSERT applies the tombstone test again (I4). A key the
// target holds after all fails the COPY with a unique violation, which
// applyOnce answers as for the plain INSERT.
func copyFresh(ctx context.Context, x *txn, stmts *statements, red *reduced) (rest *reduced, copied int64, err error) {
	// The rest goes through the stage, where row order does not matter:
	// a reduced batch has one row per key.
	rest = &reduced{truncate: red.truncate}
	var candidates []*row
	for _, r := range red.rows {
		if r.fresh {
			candidates = append(candidates, r)
		} else {
			rest.rows = append(rest.rows, r)
		}
	}
	if len(candidates) == 0 {
		return red, 0, nil
	}
	t := stmts.table
	commits := make([]int64, len(candidates))
	lsns := make([]int64, len(candidates))
	for i, r := range candidates {
		commits[i], lsns[i] = r.version.CommitLSN, r.version.LSN
	}
	args := []any{commits, lsns}
	if stmts.freshKeyCols != nil {
		args = []any{t.Ref(), commits, lsns}
	}
	for _, c := range stmts.freshKeyCols {
		keys := make([]any, len(candidates))
		for i, r := range candidates {
			keys[i] = r.values[c]
		}
		args = append(args, typedSlice(keys))
	}
	// The COPY sends each value in its column's binary form, which must be
	// the column's type now, not when this connection first described it:
	// the lock keeps the table's definition from here to the COPY, and the
	// revision read under it tells pgcopy whether to describe it again.
	var revision string
	x.queue.Queue(stmts.lockTarget)
	x.queue.Queue(tableRevision, t.Ident()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&revision)
	})
	blocked := make([]bool, len(candidates))
	x.queue.Queue(stmts.blockedFresh, args...).Query(func(rows pgx.Rows) error {
		var i int64
		_, err := pgx.ForEachRow(rows, []any{&i}, func() error {
			if i < 1 || i > int64(len(blocked)) {
				return fmt.Errorf("blocked row %d of %d", i, len(blocked))
			}
			blocked[i-1] = true // WITH ORDINALITY counts from 1
			return nil
		})
		return err
	})
	if err := x.flush(ctx); err != nil {
		return nil, 0, fmt.Errorf("ask which new rows a tombstone may block: %w", err)
	}
	width := len(stmts.insertCols)
	slab := make([]any, 0, len(candidates)*width)
	fresh := make([][]any, 0, len(candidates))
	for i, r := range candidates {
		if blocked[i] {
			rest.rows = append(rest.rows, r)
			continue
		}
		lo := len(slab)
		slab = append(slab, r.values...)
		slab = append(slab, r.version.CommitLSN, r.version.LSN)
		if t.Deletes == DeleteSoft {
			slab = append(slab, false)
		}
		fresh = append(fresh, slab[lo:len(slab):len(slab)])
	}
	if len(fresh) == 0 {
		return rest, 0, nil
	}
	x.expectNew(stmts)
	if err := x.copyFrom(ctx, pgx.Identifier{t.Schema, t.Name}, stmts.insertCols, fresh, revision); err != nil {
		return nil, 0, fmt.Errorf("copy new rows: %w", err)
	}
	return rest, int64(len(fresh)), nil
}

// typedSlice returns values as a []int64 or []string when they all are of
// that type, else as they are. pgx encodes a typed slice's elements with
// one plan, and a []any's element by element through reflection: at 3,500
// keys a batch, that was 15% of the client's CPU in IntegrationApply.
func typedSlice(values []any) any {
	if out, ok := sliceOf[int64](values); ok {
		return out
	}
	if out, ok := sliceOf[string](values); ok {
		return out
	}
	return values
}

func sliceOf[T any](values []any) ([]T, bool) {
	out := make([]T, len(values))
	for i, v := range values {
		x, ok := v.(T)
		if !ok {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}

// resolveTimeout bounds the reading of the offsets row after a COMMIT
// whose outcome is unknown. Past it the batch fails as a transient error
// and is retried: a retry of a batch that did commit is refused by the
// offset compare-and-set and reported as a moved position, never applied
// twice (I1, I2).
const resolveTimeout = 30 * time.Second

// rollbackTimeout bounds the ROLLBACK of a failed transaction; past it the
// connection is dropped, which rolls back as well.
const rollbackTimeout = 5 * time.Second

// applySettings is queued before the statements that read a staging table.
const applySettings = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)"

// nestedLoops is queued before the first UPDATE … FROM the stage of a
// transaction, and holds until it ends. The stage has no statistics: the
// planner may hash the whole target to join it to a stage it takes for
// large, where every staged row should probe the target's key.
const nestedLoops = "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"

// genericPlanRows is the largest stage whose upsert runs its cached
// generic plan; genericPlans and customPlans switch around it.
const (
	genericPlanRows = 64
	genericPlans    = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"
	customPlans     = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
)

// maskGroup is the staged rows that share one set of unchanged-TOAST
// columns, written by one upsert statement; the group of deletes has a nil
// unchanged.
type maskGroup struct {
	unchanged []bool
	rows      int64
}

// stagingRows renders the reduced rows in the staging table's column order
// and groups them by mask: the index of their group in the result. Group 0
// is the deletes, group 1 the rows that carry every column (nearly all).
// With insert, fresh rows are staged as opInsert instead, counted apart
// from the groups.
func stagingRows(red *reduced, insert bool) (rows [][]any, groups []maskGroup, inserts int64) {
	groups = []maskGroup{{}, {unchanged: nil}}
	var full []bool
	masks := map[string]int{}
	rows = make([][]any, 0, len(red.rows))
	width := 4
	if len(red.rows) > 0 {
		width += len(red.rows[0].values)
	}
	slab := make([]any, len(red.rows)*width)
	for i, r := range red.rows {
		mask := 0
		if r.op == opUpsert {
			mask = 1
			if slices.Contains(r.unchanged, true) {
				sig := maskSignature(r.unchanged)
				m, ok := masks[sig]
				if !ok {
					m = len(groups)
					masks[sig] = m
					groups = append(groups, maskGroup{unchanged: r.unchanged})
				}
				mask = m
			} else if full == nil {
				full = r.unchanged
			}
		}
		op := r.op
		if insert && r.fresh {
			op = opInsert
			inserts++
		} else {
			groups[mask].rows++
		}
		vals := slab[i*width : (i+1)*width : (i+1)*width]
		// byte(op): pgx encodes a "char" from a byte directly; a string
		// fails its binary plan and retries through text, with an error
		// built and dropped per row.
		vals[0], vals[1], vals[2], vals[3] = byte(op), int32(mask), r.version.CommitLSN, r.version.LSN
		for c, v := range r.values {
			if !r.unchanged[c] {
				vals[4+c] = v
			}
		}
		rows = append(rows, vals)
	}
	if full != nil {
		groups[1].unchanged = full
	}
	return rows, groups, inserts
}

func maskSignature(unchanged []bool) string {
	b := make([]byte, len(unchanged))
	for i, u := range unchanged {
		b[i] = '0'
		if u {
			b[i] = '1'
		}
	}
	return string(b)
}

func (a *Applier) deadLetter(x *txn, group string, it Item, cause error) {
	r := it.Record
	l := dedup.DeadLetter{Group: group, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
		Headers: make([]dedup.Header, 0, len(r.Headers)), Error: "unknown", Class: errorClass(cause, it.Err != nil)}
	for _, h := range r.Headers {
		l.Headers = append(l.Headers, dedup.Header{Key: h.Key, Value: string(h.Value)})
	}
	if it.Table != nil {
		l.Target = it.Table.Ref()
	}
	if cause != nil {
		l.Error = cause.Error()
	}
	sql, args := a.dead.Insert(l)
	x.queueWrapped(sql, args, func(err error) error {
		return fmt.Errorf("sink: write dead letter for %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
	})
}

// errorClass names the kind of failure for operators and for Kafka
// Connect–style error headers.
func errorClass(err error, undecodable bool) string {
	var pg *pgconn.PgError
	switch {
	case undecodable:
		return "decode"
	case errors.As(err, &pg):
		return "postgres:" + pg.Code
	}
	return "apply"
}
