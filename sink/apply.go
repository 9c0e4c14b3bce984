package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgsink/pgsink/internal/backoff"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
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
	// Chained is set on a batch sent while the partition's previous
	// transaction may still be in flight (apply.pipeline): its
	// compare-and-set waits for that one to end
	// (dedup.Offsets.QueueLockBehind).
	Chained bool
	// ClaimHeld, when set, is called once the batch's offsets
	// compare-and-set has run in its transaction, which from then on holds
	// the partition's offsets row until it ends. A follower sent after it
	// waits for this transaction's end on the row lock; one sent before
	// could take the lock first and fail. The transaction pays one more
	// round trip for it, so only a pipelined batch sets it.
	ClaimHeld func()
	// StagingGeneration, when not 0, is the staging generation the
	// partition synced to (dedup.SyncGeneration): a transaction that
	// stages records checks the marker against it, and fails with
	// dedup.ErrStagingReset when tx_staged was reset since.
	StagingGeneration int64
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
	// StagingTablesPerConnection bounds the temporary staging tables each
	// connection keeps between transactions (postgres.staging_tables_per_connection);
	// the least recently used go first (see sessionStages). Zero means
	// config.DefaultStagingTables.
	StagingTablesPerConnection int
	// KafkaOffsets (apply.offsets: kafka) leaves the offsets table alone:
	// the caller commits positions to Kafka after the transaction, at
	// least once.
	KafkaOffsets bool
	// BeforeCommit, when set, runs inside each apply transaction just before
	// COMMIT with the records the transaction accounts for (applied or
	// dead-lettered). Tests use it to keep an audit that proves no record is
	// applied twice.
	BeforeCommit func(b *pgx.Batch, records []debezium.Record)
	// StageTransactions (apply.consistency: transaction) stages the records
	// that carry Debezium's transaction block in the batch's transaction
	// instead of writing them: the resolver writes each source transaction
	// whole (docs/transactions.md). Other records are written as usual.
	StageTransactions bool
	// UpsertOnly writes every row with the guarded upsert, also those a
	// plain INSERT would create faster (see statements.buildInsert), so
	// benchmarks can compare the two.
	UpsertOnly bool
	// TestNoVersionGuard breaks pgsink on purpose: writes no longer check
	// the stored version, so stale events regress rows. Only the fault
	// suite sets it (PGSINK_TEST_BREAK=no-version-guard) to prove its
	// invariant checks catch a broken apply.
	TestNoVersionGuard bool
	// TestPanicOn, when set, makes writing a span panic at a record it
	// returns true for (not when that record is only dead-lettered): the
	// fault suite's proof that a panic is contained to its record
	// (PGSINK_TEST_PANIC=apply:MARKER).
	TestPanicOn func(debezium.Record) bool
}

// Retry bounds the retries of transient errors. MaxAttempts counts the
// attempts that met a conflict (a serialization failure, a deadlock, a
// lock timeout); an attempt that found the target unavailable (see
// Unavailable) is not counted: a restart or a failover of PostgreSQL lasts
// as long as it lasts, and a partition that gave up during it stopped its
// instance, which only a supervisor brought back. OnUnavailable, when set,
// is told of each such attempt, with how long the target has been found
// unavailable, so that the wait is seen while it lasts.
type Retry struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	OnUnavailable  func(err error, since time.Duration)
}

// Stats counts what one Apply did.
type Stats struct {
	Upserted, Deleted, Truncated int64 // rows sent to the target (guard may skip some)
	// Stale counts upserted rows the version guard or a tombstone refused:
	// older than what the target holds (Debezium re-emissions, replays).
	Stale int64
	// Unresolved counts rows created (their key was not in the target)
	// from an event carrying Debezium's unchanged-TOAST placeholder whose
	// value is nowhere: the source did not send it and no stored row holds
	// it, so the column takes its default, NULL. The new key of a
	// primary-key change is not counted while its old key's row can still
	// give the value (see takeMoved): only when the old key's delete came
	// and found no row to keep. REPLICA IDENTITY FULL on the source table
	// avoids it. An upper bound: a row among them that the version guard or
	// a tombstone refuses is counted too.
	Unresolved int64
	// UndetectableMoves counts updates of a table whose key is not the
	// source's primary key and whose before image does not carry it
	// (REPLICA IDENTITY other than FULL): had such an update changed a
	// key column, the old key's row would stay in the target. The new
	// image is applied as usual; REPLICA IDENTITY FULL on the source
	// table makes the move visible and applied (see keyMove).
	UndetectableMoves int64
	// Skipped counts outbox events of a type their table does not take;
	// their offsets are passed like any other.
	Skipped int64
	// Duplicates counts outbox events already applied: in the ledger, or
	// earlier in the same batch.
	Duplicates  int64
	DeadLetters int
	Retries     int
	// RetryCause is the first transient error retried, for the log.
	RetryCause error
	// Splits counts transactions the database refused for some record's
	// data without naming the record, and that were therefore applied
	// again in halves until it stood alone (see applyRange). The records
	// that fail alone go to the dead letters; a record that succeeds alone
	// was written by another way than the one that refused it (a small
	// stage takes bound parameters where a large one takes a COPY), which
	// must not go unnoticed.
	Splits int
	// ConnectionWait is how long the batch's transactions waited for a
	// connection of the pool (postgres.max_connections): part of the
	// apply's time, and so of the wait of the records queued behind it.
	ConnectionWait time.Duration
	// SplitCause is the first error that split a transaction, for the log.
	SplitCause error
	// InsertConflicts counts transactions applied a second time, with
	// upserts only, because a plain INSERT of rows expected to be new met
	// an existing key.
	InsertConflicts int
	// RestagedConflicts counts, of InsertConflicts, those met by the
	// staging of a record of a source transaction staged already (a
	// Debezium re-emission, a replay), not by a target table.
	RestagedConflicts int
	Transactions      int
	// Staged counts records of source transactions staged for the
	// resolver instead of written (StageTransactions).
	Staged int64
	// StagedBytes are the bytes of keys and values the staged records
	// take in pgsink.tx_staged, and StagedThrough the highest Kafka offset
	// among them (when Staged > 0): what the partition counts against
	// apply.transaction.max_staged_bytes until the resolver applies it.
	StagedBytes   int64
	StagedThrough int64
	// StagedShort is set when some of the records counted in StagedBytes
	// were not staged after all (of transactions the resolver applied
	// already, or staged already): StagedBytes then counts more than the
	// transaction added to tx_staged. Also when it is not known: a COMMIT
	// that went unanswered, found committed by reading the offsets row
	// again, without the staging statements' row counts read.
	StagedShort bool
	// Panics counts panics recovered while writing a span: each isolates
	// a record (PanicError).
	Panics int
	// UnsweptSnapshots counts the table's completed snapshots (their last
	// record applied) that no sweep will follow, by reason: see
	// SweepSkipReason.
	UnsweptSnapshots map[SweepSkipReason]int64
}

// add counts a committed transaction's work; Retries and Transactions are
// counted by the caller.
func (s *Stats) add(o Stats) {
	s.Upserted += o.Upserted
	s.Deleted += o.Deleted
	s.Truncated += o.Truncated
	s.Stale += o.Stale
	s.Unresolved += o.Unresolved
	s.UndetectableMoves += o.UndetectableMoves
	s.Skipped += o.Skipped
	s.Duplicates += o.Duplicates
	s.DeadLetters += o.DeadLetters
	s.Staged += o.Staged
	s.ConnectionWait += o.ConnectionWait
	s.StagedBytes += o.StagedBytes
	s.StagedShort = s.StagedShort || o.StagedShort
	if o.Staged > 0 {
		s.StagedThrough = max(s.StagedThrough, o.StagedThrough)
	}
	for reason, n := range o.UnsweptSnapshots {
		s.countUnswept(reason, n)
	}
}

func (s *Stats) countUnswept(reason SweepSkipReason, n int64) {
	if s.UnsweptSnapshots == nil {
		s.UnsweptSnapshots = map[SweepSkipReason]int64{}
	}
	s.UnsweptSnapshots[reason] += n
}

// Applier applies batches to the target database.
type Applier struct {
	pool    *pgxpool.Pool
	opts    Options
	offsets dedup.Offsets
	dead    dedup.DeadLetters
	// snapshots records the table snapshot ends the batches apply.
	snapshots dedup.Snapshots
	// transactions stages records of source transactions (StageTransactions).
	transactions dedup.Transactions
	// staging pauses the plain INSERT of staged records after one met a
	// record staged already, as a table's statements pause theirs; only
	// its pause is used.
	staging *statements

	mu     sync.Mutex
	stmts  *lru[*Table, *statements]
	outbox *lru[*Table, *outboxStatements]
}

// NewApplier returns an Applier writing through pool.
func NewApplier(pool *pgxpool.Pool, opts Options) *Applier {
	if opts.Retry.MaxAttempts <= 0 {
		opts.Retry = Retry{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}
	}
	if opts.StagingTablesPerConnection <= 0 {
		opts.StagingTablesPerConnection = config.DefaultStagingTables
	}
	return &Applier{
		pool:         pool,
		opts:         opts,
		offsets:      dedup.NewOffsets(opts.Schema),
		dead:         dedup.NewDeadLetters(opts.Schema),
		snapshots:    dedup.NewSnapshots(opts.Schema),
		stmts:        newLRU[*Table, *statements](statementSets),
		outbox:       newLRU[*Table, *outboxStatements](statementSets),
		transactions: dedup.NewTransactions(opts.Schema),
		staging:      &statements{},
	}
}

// HasIdleConnection reports whether the pool holds a connection no
// transaction uses now: a partition sends a pipelined transaction, which
// holds its connection while it waits for its predecessor, only then.
func (a *Applier) HasIdleConnection() bool {
	return a.pool.Stat().IdleConns() > 0
}

// Apply applies b and moves its partition's offset to b.Next, all in one
// transaction, or, when a record fails, in several: the records around it
// are applied and it goes to the dead-letter table in the transaction that
// moves the offset past it. On success b.Claim.NextOffset is b.Next.
func (a *Applier) Apply(ctx context.Context, b *Batch) (Stats, error) {
	var st Stats
	err := a.applyRange(ctx, span{batch: b, hi: len(b.Items), next: b.Next, dead: -1, stats: &st})
	return st, err
}

// applyRange applies s in one transaction if it can; otherwise it isolates
// the record that fails it: into the dead letters, or, with StopOnError,
// as the PoisonError the partition stops at.
func (a *Applier) applyRange(ctx context.Context, s span) error {
	err := a.applyRetried(ctx, s)
	if err == nil || classify(err) != classRecord {
		return err
	}
	culprit := s.culprit(err)
	if culprit < 0 {
		// The database refused the range without saying which record: halve
		// it until the failing record stands alone.
		s.stats.Splits++
		if s.stats.SplitCause == nil {
			s.stats.SplitCause = err
		}
		mid := s.lo + (s.hi-s.lo)/2
		if err := a.applyRange(ctx, s.before(mid)); err != nil {
			return err
		}
		return a.applyRange(ctx, s.from(mid))
	}
	// Apply what precedes the failing record, so that under StopOnError
	// the partition stops exactly at it.
	if culprit > s.lo {
		if err := a.applyRange(ctx, s.before(culprit)); err != nil {
			return err
		}
	}
	if a.opts.StopOnError {
		r := s.batch.Items[culprit].Record
		return &PoisonError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
	}
	if err := a.applyRetried(ctx, s.isolated(culprit, err)); err != nil {
		return err
	}
	if culprit+1 < s.hi {
		return a.applyRange(ctx, s.from(culprit+1))
	}
	return nil
}

// applyRetried applies s in one transaction, retrying transient errors.
func (a *Applier) applyRetried(ctx context.Context, s span) error {
	return a.retry(ctx, s.stats, func() error { return a.applyOnce(ctx, s) })
}

// retry runs fn until it succeeds, fails for good, or the attempts run out.
func (a *Applier) retry(ctx context.Context, st *Stats, fn func() error) error {
	// Jittered: after a PostgreSQL restart every partition of every
	// instance fails at once, and must not come back at once.
	waits := backoff.New(a.opts.Retry.InitialBackoff, a.opts.Retry.MaxBackoff)
	var unavailableSince time.Time
	for attempt := 1; ; {
		err := fn()
		if err == nil || classify(err) != classTransient {
			return err
		}
		if Unavailable(err) {
			if unavailableSince.IsZero() {
				unavailableSince = time.Now()
			}
			if f := a.opts.Retry.OnUnavailable; f != nil {
				f(err, time.Since(unavailableSince))
			}
			// Nothing applies while the target is down: a revoked or
			// stopping partition gives its batch up now rather than hold
			// the rebalance or the shutdown to shutdown_timeout.
			select {
			case <-Stopping(ctx):
				return errors.Join(ErrStopping, err)
			default:
			}
		} else {
			if attempt >= a.opts.Retry.MaxAttempts {
				return err
			}
			attempt++
			unavailableSince = time.Time{}
		}
		st.Retries++
		if st.RetryCause == nil {
			st.RetryCause = err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-stoppingIf(ctx, Unavailable(err)):
			return errors.Join(ErrStopping, err)
		case <-time.After(waits.Next()):
		}
	}
}

// ErrStopping ends an Apply whose partition was revoked or stopped while
// the target was unavailable: nothing of the attempt was applied, and the
// position is where the next owner reads from.
var ErrStopping = errors.New("revoked or stopping while the target is unavailable")

type stoppingKey struct{}

// WithStopping carries a partition worker's stopping channel (closed at
// revocation or shutdown) to Apply, which gives up waiting for a target
// that is down when it closes.
func WithStopping(ctx context.Context, stopping <-chan struct{}) context.Context {
	return context.WithValue(ctx, stoppingKey{}, stopping)
}

// Stopping returns the channel WithStopping put in ctx, or nil (which
// never fires).
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}

// stoppingIf is Stopping(ctx) when cond holds, else nil.
func stoppingIf(ctx context.Context, cond bool) <-chan struct{} {
	if !cond {
		return nil
	}
	return Stopping(ctx)
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
	var panicked *PanicError
	var typeErr *TypeError
	switch {
	case errors.As(err, &panicked):
		return "panic"
	case errors.As(err, &typeErr):
		// The record decoded; its schema asks for a column no DDL may
		// name: a schema problem, not the bytes'.
		return "schema"
	case undecodable:
		return "decode"
	case errors.As(err, &pg):
		return "postgres:" + pg.Code
	}
	return "apply"
}
