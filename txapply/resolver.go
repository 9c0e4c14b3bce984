package txapply

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
)

// End is an END marker of the transaction topic, at Offset.
type End struct {
	Offset int64
	Marker *debezium.TransactionMarker
	// SourceTs is the transaction's commit time (the marker's ts_ms),
	// stored with the resolver's position for the lag status shows.
	SourceTs time.Time
	// earlier is dedup.TxProgress.Earlier: a staged record of the xid
	// below it is of an earlier transaction of that xid.
	earlier int64
}

// Options configure a Resolver.
type Options struct {
	Schema string // pgsink's own tables (postgres.schema)
	// Chunk bounds the staged records read, decoded and written at a
	// time (apply.batch.max_records): what the resolver holds in memory,
	// whatever a transaction's size.
	Chunk int
	// ChunkBytes bounds a chunk's record keys and values as well
	// (apply.batch.max_bytes); 0: records only.
	ChunkBytes int64
	// BeforeCommit, when set, runs with the apply transaction open, every
	// write sent, just before its COMMIT: the fault suite's before-commit
	// failpoint, which must reach the resolver as it reaches a batch.
	BeforeCommit func()
	// Progress, when set, is told after each chunk how many staged records
	// the apply transaction in progress has written so far, and 0 once it
	// ends: a transaction of a million rows is one long apply, and this is
	// how an operator sees it move.
	Progress func(written int64)
	// Local, when set, is this process's store of the records its direct
	// partitions hand over instead of staging them (the local path,
	// apply.transaction.local_partitions): a transaction's records are
	// then those staged and those the store holds.
	Local *txlocal.Store
	// AfterTake and AfterCommit, when set, run once a Resolve holds records
	// taken from Local (before its apply transaction begins) and once it
	// committed them (before the store drops them): the fault suite's
	// failpoints of the local path.
	AfterTake, AfterCommit func()
	// AuditLocal, when set, queues into the apply transaction the records
	// of the local path it moves offsets rows past: the fault suite's
	// apply audit (a staged record is audited by the batch that staged it).
	AuditLocal func(b *pgx.Batch, records []debezium.Record)
}

// Resolver applies whole source transactions from staging.
type Resolver struct {
	pool    *pgxpool.Pool
	applier *sink.Applier
	router  *sink.Router
	decoder *debezium.Decoder
	offsets dedup.Offsets
	staging dedup.Transactions
	chunk   int
	bytes   int64
	// beforeCommit is Options.BeforeCommit; progress Options.Progress.
	beforeCommit           func()
	progress               func(int64)
	local                  *txlocal.Store
	afterTake, afterCommit func()
	auditLocal             func(*pgx.Batch, []debezium.Record)
	// recordBytes is the mean bytes of the staged records read last, as
	// apply.batch.max_bytes counts them (dedup.StagedRecord.Size): a read
	// of many transactions at once is sized by it as well as by their
	// ENDs' counts, so that it ends within the chunk's bytes instead of
	// being cut there. The server sorts and sends a cut read whole, and
	// the transactions after the cut are read again: with JsonConverter
	// records, whose schema counts in every record's bytes, a chunk of
	// apply.batch.max_records (5,000) was cut by the bytes (16 MiB) at
	// every read.
	recordBytes int64
}

// New returns a Resolver writing through applier's statements (its
// Options.StageTransactions must be off: the resolver writes what the
// partitions staged) and routing by router. A Resolver is for one goroutine.
func New(pool *pgxpool.Pool, applier *sink.Applier, router *sink.Router, opts Options) *Resolver {
	if opts.Chunk <= 0 {
		opts.Chunk = 5000
	}
	return &Resolver{pool: pool, applier: applier, router: router, decoder: router.NewDecoder(),
		offsets: dedup.NewOffsets(opts.Schema), staging: dedup.NewTransactions(opts.Schema), chunk: opts.Chunk, bytes: opts.ChunkBytes,
		beforeCommit: opts.BeforeCommit, progress: opts.Progress, local: opts.Local, afterTake: opts.AfterTake, afterCommit: opts.AfterCommit, auditLocal: opts.AuditLocal}
}

// Result counts what one Resolve did.
type Result struct {
	// Applied are the source transactions applied; Passed those applied
	// before (a replay of the transaction topic), passed over.
	Applied, Passed int
	Stats           sink.Stats
	// Records are the staged records written (tombstones and records no
	// table routes included: they were read).
	Records int64
	// FirstStaged holds, per applied transaction, the Kafka timestamp of
	// its oldest staged record: how long its first event waited to become
	// visible (pgsink_transaction_commit_latency_seconds).
	FirstStaged []time.Time
	// Where the Resolve's time went: checking the staged counts, writing
	// the staged records (reading, decoding and the target's statements),
	// and the rest of the transaction (the resolved rows, the deletion of
	// the staged ones, COMMIT).
	Checking, Writing, Committing time.Duration
}

// Resolve applies, in one target transaction that moves claim past them,
// the longest prefix of ends (consecutive END markers of the transaction
// topic, in its order) whose transactions are staged whole or applied
// already; when that is all of them, the claim moves to next (past BEGIN
// markers after the last END). When the first END's transaction is not
// staged whole, nothing is applied and the error is its *IncompleteError:
// the caller waits for the partitions and calls again, and stops with it
// past max_wait. Other errors leave the claim unmoved; a
// *dedup.FencedError means the transaction topic's partition has another
// owner.
func (r *Resolver) Resolve(ctx context.Context, claim *dedup.Claim, ends []End, next int64) (Result, error) {
	var ready []End
	var resolved []bool
	started := time.Now()
	ids, lsns := make([]int64, len(ends)), make([]int64, len(ends))
	for i, end := range ends {
		ids[i], lsns[i] = end.Marker.TxID, end.Marker.CommitLSN
	}
	progress, err := r.staging.ProgressAt(ctx, r.pool, claim.Group, ids, lsns)
	if err != nil {
		return Result{}, err
	}
	// The local path: the direct partitions' records of these transactions,
	// held from here until the apply ends (committed, the store drops
	// them; otherwise they stay for the next try).
	var taken *txlocal.Taken
	if r.local != nil {
		want := make(map[int64]bool, len(ends))
		for _, end := range ends {
			want[end.Marker.TxID] = true
		}
		taken = r.local.Take(want)
		if taken != nil && r.afterTake != nil {
			r.afterTake()
		}
	}
	committed := false
	defer func() { taken.Done(committed) }()
	local := localRecords(taken)
	// A transaction's END may come twice (Debezium re-emits after a
	// Connect restart): the second is passed over like an END of a
	// transaction applied before, not applied again in the same target
	// transaction, where its tx_resolved row would fail on the first's.
	readyIDs := make(map[int64]bool, len(ends))
	for _, end := range ends {
		done, err := check(end, local.with(progress[end.Marker.TxID], end.Marker.TxID))
		if readyIDs[end.Marker.TxID] {
			done, err = true, nil
		}
		var incomplete *IncompleteError
		if errors.As(err, &incomplete) && len(ready) > 0 {
			// Apply what is ready; the caller comes back for this one.
			next = ready[len(ready)-1].Offset + 1
			break
		}
		if err != nil {
			return Result{}, err
		}
		end.earlier = progress[end.Marker.TxID].Earlier
		ready = append(ready, end)
		resolved = append(resolved, done)
		readyIDs[end.Marker.TxID] = true
	}
	if next == claim.NextOffset && len(ready) == 0 {
		return Result{}, nil
	}
	checking := time.Since(started)
	if taken != nil {
		readySet := make(map[int64]bool, len(ready))
		for _, end := range ready {
			readySet[end.Marker.TxID] = true
		}
		taken.Keep(readySet)
		kept := localRecords(taken)
		for _, end := range ready {
			if id := end.Marker.TxID; len(kept.of[id]) != len(local.of[id]) {
				// A ready transaction's records in a direct partition come
				// after those of one not ready: not the order the
				// resolver applies in.
				taken.Doubt(txlocal.Leaving{Cause: txlocal.CauseOrder, Why: "records of a transaction follow those of a later one"})
				return Result{}, &LocalOrderError{TxID: id}
			}
		}
		local = kept
	}
	var events int64
	for i, end := range ready {
		if !resolved[i] {
			events += end.Marker.EventCount
		}
	}
	optimistic := events <= int64(r.chunk)*optimisticChunks
	res, err := r.apply(ctx, claim, ready, resolved, next, optimistic, taken, local)
	if errors.Is(err, errConflicted) {
		res, err = r.apply(ctx, claim, ready, resolved, next, false, taken, local)
		res.Stats.InsertConflicts++
	}
	committed = err == nil
	if committed && r.afterCommit != nil && len(taken.Applying()) > 0 {
		r.afterCommit()
	}
	res.Checking = checking
	return res, err
}

// optimisticChunks bounds, in chunks, the source transactions a resolve
// writes with plain INSERTs for the rows they create (sink.WriteIn): a
// key that exists after all makes the resolve run again with upserts only,
// and that should not redo a large transaction.
const optimisticChunks = 32

// errConflicted is an optimistic apply whose plain INSERT met an existing
// key: nothing was applied, and it is run again with upserts only.
var errConflicted = errors.New("txapply: a plain INSERT met an existing key")

// Staged returns what a resolver at end waits for: an *IncompleteError
// naming each collection short of its count (or an *OverstagedError), nil
// when every event of end's transaction is staged; applied is set when the
// transaction is applied already. For `pgsink status`, which shows the END
// the resolver waits at.
func Staged(ctx context.Context, db dedup.Querier, schema, group string, end End) (applied bool, err error) {
	m := end.Marker
	progress, err := dedup.NewTransactions(schema).ProgressAt(ctx, db, group, []int64{m.TxID}, []int64{m.CommitLSN})
	if err != nil {
		return false, err
	}
	return check(end, progress[m.TxID])
}

// check reports whether end's transaction was applied already, or returns
// an *IncompleteError or *OverstagedError when its staged events are not
// exactly those its END counts.
func check(end End, progress dedup.TxProgress) (resolved bool, err error) {
	if progress.Resolved {
		return true, nil
	}
	return false, compare(end, progress.Staged)
}

// wanted is what an END counts per collection, logical decoding messages
// left out: pgsink applies none, so none is staged.
func wanted(m *debezium.TransactionMarker) map[string]int64 {
	want := map[string]int64{}
	for _, c := range m.DataCollections {
		if name := c.Collection(); name != debezium.MessageCollection {
			want[name] += c.EventCount
		}
	}
	return want
}

// compare returns an *IncompleteError or *OverstagedError when staged, per
// collection, is not exactly what end's END counts, nil when it is.
func compare(end End, staged map[string]int64) error {
	m := end.Marker
	want := wanted(m)
	inc := &IncompleteError{ID: m.ID, Offset: end.Offset, Staged: staged, Want: want}
	for c, n := range staged {
		inc.StagedTotal += n
		if n > want[c] {
			return &OverstagedError{ID: m.ID, Collection: c, Staged: n, Want: want[c]}
		}
	}
	complete := true
	for c, n := range want {
		inc.WantTotal += n
		complete = complete && staged[c] == n
	}
	if !complete {
		return inc
	}
	return nil
}

// apply runs the target transaction of Resolve.
func (r *Resolver) apply(ctx context.Context, claim *dedup.Claim, ends []End, resolved []bool, next int64, optimistic bool, taken *txlocal.Taken, local localSet) (res Result, err error) {
	var sourceTs time.Time
	lastID := "none (BEGIN markers only)"
	if len(ends) > 0 {
		sourceTs, lastID = ends[len(ends)-1].SourceTs, ends[len(ends)-1].Marker.ID
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("txapply: acquire connection: %w", err)
	}
	released := false
	defer func() {
		if !released {
			if !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
				_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			}
			conn.Release()
		}
	}()
	before := *claim
	// The offsets compare-and-set first: its row lock serialises the
	// resolvers, and a fenced one stops before writing (I2).
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if err := r.offsets.QueueAdvance(b, before, next, sourceTs); err != nil {
		return Result{}, err
	}
	// Each direct partition's offsets row moves past the records taken of
	// it, in this transaction that applies them (I1), by the same
	// compare-and-set as its own batches: its epoch (a revoked partition's
	// new owner fences this apply, I2) and the position the store has for
	// it (a second writer of the row in this process fails it too).
	applying := taken.Applying()
	for _, p := range applying {
		if err := r.offsets.QueueAdvance(b, p.Claim, p.Next(), time.Time{}); err != nil {
			return Result{}, err
		}
	}
	// Not against a staging table reset since the stagers synced
	// (dedup/txgeneration.go).
	r.staging.QueueMarkerCheck(b)
	if mem := r.sortMemory(); mem != "" {
		// Raised only: a server or role that gives more keeps it.
		b.Queue(`SELECT set_config('work_mem', $1, true) WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes($1)`, mem)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, dedup.ErrNotAdvanced) {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			if len(applying) > 0 {
				stored, rerr := r.offsets.Read(ctx, conn, before.PartitionID)
				if rerr != nil {
					return Result{}, rerr
				}
				if stored.Epoch == before.Epoch && stored.NextOffset == before.NextOffset {
					// The resolver's row is as it held it: a direct
					// partition's did not match (revoked and claimed by
					// another owner, or moved by a second writer). Those
					// partitions stage from now on; the apply is tried
					// again and reads their records from staging.
					taken.Doubt(txlocal.Leaving{Cause: txlocal.CauseRowMoved, Why: "its offsets row was not where the local path had it"})
					return Result{}, &LocalMovedError{Err: err}
				}
			}
			return Result{}, r.offsets.Mismatch(ctx, conn, before)
		}
		if errors.Is(err, dedup.ErrStagingReset) {
			return Result{}, fmt.Errorf("txapply: %w", err)
		}
		return Result{}, fmt.Errorf("txapply: begin: %w", err)
	}
	c := &chunk{w: r.applier.WriteIn(conn.Conn(), optimistic), progress: r.progress}
	w := c.w
	defer func() {
		if err != nil && w.Conflicted(err) {
			err = fmt.Errorf("%w: %w", errConflicted, err)
		}
	}()
	b = &pgx.Batch{}
	writing := time.Now()
	if r.progress != nil {
		defer r.progress(0)
	}
	var apply []End
	for i, end := range ends {
		if resolved[i] {
			res.Passed++
			continue
		}
		apply = append(apply, end)
	}
	if res.FirstStaged, err = r.writeAll(ctx, conn, c, claim.Group, apply, local); err != nil {
		return Result{}, err
	}
	for _, p := range applying {
		// Records taken of passed transactions (re-emitted, applied
		// before) are passed over as staging passes over them, and the
		// partition's frontier moves past them with its offsets row.
		c.passed(p.Claim.Topic, p.Claim.Partition, p.Next()-1)
	}
	// The counts were checked in another transaction (Resolve's
	// ProgressAt): what this one read must be exactly what each END
	// counts, or a transaction would be applied in part and recorded as
	// resolved. Staged rows that vanished in between (an UNLOGGED tx_staged
	// emptied by a crash of the target or a failover, rows deleted by
	// hand) make it roll back and wait again for the partitions.
	for _, end := range apply {
		if err := compare(end, c.counted[end.Marker.TxID]); err != nil {
			return Result{}, fmt.Errorf("txapply: staged records changed after their counts were checked: %w", err)
		}
	}
	ids, lsns, counts := make([]int64, len(apply)), make([]int64, len(apply)), make([]int64, len(apply))
	for i, end := range apply {
		ids[i], lsns[i], counts[i] = end.Marker.TxID, end.Marker.CommitLSN, end.Marker.EventCount
	}
	if r.auditLocal != nil && len(applying) > 0 {
		var recs []debezium.Record
		for _, p := range applying {
			for i := range p.Items {
				recs = append(recs, p.Items[i].Record)
			}
		}
		r.auditLocal(b, recs)
	}
	r.staging.QueueResolveAll(b, claim.Group, ids, lsns, counts)
	r.staging.QueueApplied(b, claim.Group, c.appliedOffsets())
	res.Applied = len(apply)
	if err := c.flush(ctx); err != nil {
		return Result{}, err
	}
	res.Records = c.written
	if err := w.Finish(ctx); err != nil {
		return Result{}, err
	}
	res.Writing = time.Since(writing)
	committing := time.Now()
	if r.beforeCommit != nil {
		r.beforeCommit()
	}
	committed := false
	b.Queue("COMMIT").Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		committed = true
		return nil
	}
	err = conn.SendBatch(ctx, b).Close()
	if !committed {
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Severity == "ERROR" {
			return Result{}, fmt.Errorf("txapply: apply transactions up to %s: %w", lastID, err)
		}
		// The COMMIT's outcome is unknown: read it from the offsets row
		// on another connection, as a batch does.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
		released = true
		done, rerr := r.offsets.ResolveCommit(ctx, r.pool, before, next)
		if rerr != nil || !done {
			return Result{}, fmt.Errorf("txapply: commit of transactions up to %s: %v (outcome: %v)", lastID, err, errors.Join(rerr))
		}
	} else {
		w.Committed()
	}
	claim.NextOffset = next
	res.Stats = w.Stats()
	res.Committing = time.Since(committing)
	return res, nil
}

// sortMemory is the work_mem the apply transaction asks for at least, ""
// to keep the server's: room to sort twice a chunk of apply.batch.max_bytes. Reading
// staged records of many transactions in their END order sorts them (the
// order of the ENDs is not the table's), and at the default work_mem a
// chunk's sort went to disk. Bounded by the configuration, as the chunk is.
func (r *Resolver) sortMemory() string {
	const floor = 4 << 20 // PostgreSQL's default work_mem
	if r.bytes <= 0 || 2*r.bytes <= floor {
		return ""
	}
	return strconv.FormatInt(min(2*r.bytes, maxSortMemory)>>10, 10) + "kB"
}

// maxSortMemory caps sortMemory below work_mem's largest value on every
// platform (2 GB less 1 kB).
const maxSortMemory = 1 << 30

// writeAll adds the transactions of ends from staging, in their order, to
// the chunk, and returns the oldest Kafka timestamp among each one's
// records. Consecutive transactions whose ENDs count no more events than
// the chunk has room for are read in one query; a larger one is read a
// chunk at a time (writeStaged).
func (r *Resolver) writeAll(ctx context.Context, conn *pgxpool.Conn, c *chunk, group string, ends []End, local localSet) ([]time.Time, error) {
	firsts := make([]time.Time, len(ends))
	for i := 0; i < len(ends); {
		if recs := local.of[ends[i].Marker.TxID]; len(recs) > 0 {
			var err error
			if firsts[i], err = r.writeMixed(ctx, conn, c, group, ends[i], recs); err != nil {
				return nil, err
			}
			i++
			continue
		}
		j, room, roomBytes := i, int64(r.chunk-len(c.items)), r.roomBytes(c)
		for n := int64(0); j < len(ends) && len(local.of[ends[j].Marker.TxID]) == 0 && n+ends[j].Marker.EventCount <= room &&
			(roomBytes == 0 || (n+ends[j].Marker.EventCount)*r.recordBytes <= roomBytes); j++ {
			n += ends[j].Marker.EventCount
		}
		if j-i < 2 {
			var err error
			if firsts[i], err = r.writeStaged(ctx, conn, c, group, ends[i], math.MinInt64, nil); err != nil {
				return nil, err
			}
			i++
			continue
		}
		at := make(map[int64]int, j-i) // a transaction's place in ends
		ids := make([]int64, 0, j-i)
		for k := i; k < j; k++ {
			at[ends[k].Marker.TxID] = k
			ids = append(ids, ends[k].Marker.TxID)
		}
		staged, cut, err := r.staging.ReadStagedOf(ctx, conn, group, ids, r.roomBytes(c))
		if err != nil {
			return nil, err
		}
		r.noteBytes(staged)
		for _, s := range staged {
			k := at[s.TxID]
			if err := r.add(ctx, c, ends[k], s, &firsts[k]); err != nil {
				return nil, err
			}
		}
		next := j
		if cut && len(staged) > 0 {
			// The bytes ran out within the last transaction read: the
			// rest of it, then of the group, is read anew.
			last := staged[len(staged)-1]
			k := at[last.TxID]
			if err := r.flushFull(ctx, c); err != nil {
				return nil, err
			}
			first, err := r.writeStaged(ctx, conn, c, group, ends[k], last.TotalOrder, nil)
			if err != nil {
				return nil, err
			}
			if firsts[k].IsZero() || (!first.IsZero() && first.Before(firsts[k])) {
				firsts[k] = first
			}
			next = k + 1
		}
		if err := r.flushFull(ctx, c); err != nil {
			return nil, err
		}
		i = next
	}
	return firsts, nil
}

// roomBytes is the maxBytes of the next read into c: what is left of
// apply.batch.max_bytes (at least one record), 0 for no bound.
func (r *Resolver) roomBytes(c *chunk) int64 {
	if r.bytes <= 0 {
		return 0
	}
	return max(1, r.bytes-c.bytes)
}

// flushFull writes the chunk when it holds apply.batch.max_records or
// max_bytes, or has no room left for a record of recordBytes: a read of
// one record before the chunk is written is a round trip (and a query)
// for nothing.
func (r *Resolver) flushFull(ctx context.Context, c *chunk) error {
	if len(c.items) >= r.chunk || (r.bytes > 0 && c.bytes+r.recordBytes > r.bytes) {
		return c.flush(ctx)
	}
	return nil
}

// noteBytes keeps in recordBytes the mean bytes of the records just read.
func (r *Resolver) noteBytes(staged []dedup.StagedRecord) {
	if len(staged) == 0 {
		return
	}
	var size int64
	for _, s := range staged {
		size += s.Size()
	}
	r.recordBytes = size / int64(len(staged))
}

// writeStaged adds end's transaction from staging, from after its place
// after, in its order, to the chunk, which writes itself into the
// transaction open on conn whenever it is full: the records of several
// small transactions are written together. It returns the oldest Kafka
// timestamp among the records it read.
func (r *Resolver) writeStaged(ctx context.Context, conn *pgxpool.Conn, c *chunk, group string, end End, after int64, local *localCursor) (first time.Time, err error) {
	for {
		// The chunk never holds more than apply.batch.max_records records
		// (and about max_bytes): what is read is what is left of it.
		limit, maxBytes := r.chunk-len(c.items), r.roomBytes(c)
		staged, err := r.staging.ReadStaged(ctx, conn, group, end.Marker.TxID, after, limit, maxBytes)
		if err != nil {
			return first, err
		}
		r.noteBytes(staged)
		var size int64
		for _, s := range staged {
			after = s.TotalOrder
			size += s.Size()
			if err := r.addLocalBefore(ctx, c, end, local, s.TotalOrder, &first); err != nil {
				return first, err
			}
			if err := r.add(ctx, c, end, s, &first); err != nil {
				return first, err
			}
		}
		if err := r.flushFull(ctx, c); err != nil {
			return first, err
		}
		// Fewer records than asked for, not stopped by the bytes: the
		// transaction is read whole, no need to ask again.
		if len(staged) < limit && (maxBytes == 0 || size < maxBytes) {
			return first, nil
		}
	}
}

// add decodes a staged record of end's transaction into the chunk, and
// keeps in first the oldest Kafka timestamp seen.
func (r *Resolver) add(ctx context.Context, c *chunk, end End, s dedup.StagedRecord, first *time.Time) error {
	return r.addRecord(ctx, c, end, s, record(s), first)
}

// addRecord is add of a record rec whose staging row is s (for a record of
// the local path, one built from it: localCursor).
func (r *Resolver) addRecord(ctx context.Context, c *chunk, end End, s dedup.StagedRecord, rec debezium.Record, first *time.Time) error {
	if !s.Timestamp.IsZero() && (first.IsZero() || s.Timestamp.Before(*first)) {
		*first = s.Timestamp
	}
	c.read++
	c.applied(s)
	if s.Dead {
		return nil
	}
	it, ok, err := r.route(ctx, rec)
	if err != nil {
		return fmt.Errorf("txapply: transaction %s: %s[%d]@%d: %w", end.Marker.ID, s.Topic, s.Partition, s.Offset, err)
	}
	if lsn := it.Change.Version.LSN; end.earlier > 0 && lsn > 0 && lsn < end.earlier {
		// Staged records are keyed by xid: a record left staged by an
		// earlier transaction of this xid (applied, committed at
		// end.earlier) took the place of one of this transaction's.
		return fmt.Errorf("txapply: transaction %s: %s[%d]@%d staged at LSN %d is of an earlier transaction with the same xid (applied, committed at LSN %d), left staged: "+
			"refusing to apply the transaction without its own record, which was not staged in its place (delete the row from tx_staged, then replay the data partitions from before this transaction with pgsink replay)",
			end.Marker.ID, s.Topic, s.Partition, s.Offset, lsn, end.earlier)
	}
	if !ok {
		return nil
	}
	return c.add(ctx, it, end.Marker.ID, s.Size())
}

// route decodes and routes a staged record, a panic turned into an error:
// the resolver then stops at the transaction naming the record (a staged
// record is decoded whole only here, its partition having checked its row
// images' syntax alone), instead of the worker's generic internal error.
func (r *Resolver) route(ctx context.Context, rec debezium.Record) (it sink.Item, ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			it, ok, err = sink.Item{}, false, fmt.Errorf("decoding or routing the staged record panicked: %w", sink.NewPanicError(v))
		}
	}()
	return r.router.Item(ctx, r.decoder, rec)
}

// chunk is the staged records read and not written yet, of one or more
// source transactions of one target transaction.
type chunk struct {
	w           *sink.TxWriter
	items       []sink.Item
	bytes       int64
	first, last string // the transactions the chunk holds records of
	// read counts the staged records read since the last write, those
	// that write nothing (tombstones, dead-lettered ones) included;
	// written, those of every write so far, told to progress.
	read, written int64
	progress      func(int64)
	// through is the highest offset read of each data partition: the
	// frontier its stager counts its records ahead of
	// (dedup.QueueApplied).
	through map[dataPartition]int64
	// counted is the staged records read, per source transaction and
	// collection: checked against the ENDs before the COMMIT.
	counted map[int64]map[string]int64
}

// dataPartition is a Kafka partition of a table's topic.
type dataPartition struct {
	topic     string
	partition int32
}

// applied notes a staged record read into the transaction.
func (c *chunk) applied(s dedup.StagedRecord) {
	if c.through == nil {
		c.through, c.counted = map[dataPartition]int64{}, map[int64]map[string]int64{}
	}
	if c.counted[s.TxID] == nil {
		c.counted[s.TxID] = map[string]int64{}
	}
	c.counted[s.TxID][s.DataCollection]++
	k := dataPartition{s.Topic, s.Partition}
	if o, ok := c.through[k]; !ok || s.Offset > o {
		c.through[k] = s.Offset
	}
}

// passed notes a data partition's records up to offset as passed by the
// transaction, applied or passed over.
func (c *chunk) passed(topic string, partition int32, offset int64) {
	if c.through == nil {
		c.through, c.counted = map[dataPartition]int64{}, map[int64]map[string]int64{}
	}
	k := dataPartition{topic, partition}
	if o, ok := c.through[k]; !ok || offset > o {
		c.through[k] = offset
	}
}

// appliedOffsets are the highest offsets read, per data partition.
func (c *chunk) appliedOffsets() []dedup.PartitionOffset {
	out := make([]dedup.PartitionOffset, 0, len(c.through))
	for k, o := range c.through {
		out = append(out, dedup.PartitionOffset{Topic: k.topic, Partition: k.partition, Offset: o})
	}
	return out
}

// add adds a record to the chunk. A record without a key (a truncate, a
// row of a keyless table) may be on any partition and its place among the
// table's other records matters: it is written on its own, after what the
// chunk holds and before what follows.
func (c *chunk) add(ctx context.Context, it sink.Item, txID string, bytes int64) error {
	barrier := len(it.Record.Key) == 0 || it.Change.Op == debezium.OpTruncate
	if barrier {
		if err := c.flush(ctx); err != nil {
			return err
		}
	}
	if len(c.items) == 0 {
		c.first = txID
	}
	c.items, c.last, c.bytes = append(c.items, it), txID, c.bytes+bytes
	if barrier {
		return c.flush(ctx)
	}
	return nil
}

// flush writes the chunk, each run of one topic's records (in total order)
// grouped by partition, each partition's in their order: a partition's
// records are written in one go instead of a round trip at each change of
// partition. Within a run the order between partitions does not matter:
// they hold different keys of the same table, and all of them commit
// together. Between runs it does: the target may check a foreign key at
// once (an order's lines reference it), so a table's records are never
// moved ahead of another table's that came before them.
func (c *chunk) flush(ctx context.Context) error {
	if len(c.items) == 0 {
		c.wrote()
		return nil
	}
	groupPartitions(c.items)
	if err := c.w.Write(ctx, c.items); err != nil {
		if c.first == c.last {
			return fmt.Errorf("txapply: transaction %s: %w", c.first, err)
		}
		return fmt.Errorf("txapply: transactions %s to %s: %w", c.first, c.last, err)
	}
	clear(c.items)
	c.items, c.bytes = c.items[:0], 0
	c.wrote()
	return nil
}

// wrote counts the records read as written and tells progress.
func (c *chunk) wrote() {
	if c.read == 0 {
		return
	}
	c.written += c.read
	c.read = 0
	if c.progress != nil {
		c.progress(c.written)
	}
}

// groupPartitions sorts each run of consecutive records of one topic by
// partition, keeping each partition's records, and the runs, in order. A
// run is regrouped through a copy, each record moved twice: a stable sort
// moves records of several hundred bytes many times over.
func groupPartitions(items []sink.Item) {
	var scratch []sink.Item
	var parts []int32
	for lo := 0; lo < len(items); {
		hi, grouped := lo+1, true
		for hi < len(items) && items[hi].Record.Topic == items[lo].Record.Topic {
			grouped = grouped && items[hi].Record.Partition >= items[hi-1].Record.Partition
			hi++
		}
		if !grouped {
			run := items[lo:hi]
			parts = parts[:0]
			for _, it := range run {
				if !slices.Contains(parts, it.Record.Partition) {
					parts = append(parts, it.Record.Partition)
				}
			}
			slices.Sort(parts)
			scratch = append(scratch[:0], run...)
			k := 0
			for _, p := range parts {
				for i := range scratch {
					if scratch[i].Record.Partition == p {
						run[k] = scratch[i]
						k++
					}
				}
			}
			clear(scratch)
		}
		lo = hi
	}
}

// record is the Kafka record a staged row keeps.
func record(s dedup.StagedRecord) debezium.Record {
	rec := debezium.Record{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, Timestamp: s.Timestamp, Key: s.Key, Value: s.Value,
		KeySchema: s.KeySchema, ValueSchema: s.ValueSchema}
	for _, h := range s.Headers {
		rec.Headers = append(rec.Headers, debezium.Header{Key: h.Key, Value: []byte(h.Value)})
	}
	return rec
}

// CheckEnds returns a *NoEndError when a staged transaction's first staged
// record is older than maxWait. Call it only once the resolver has read every END
// of the transaction topic (its position at the high watermark): a lagging
// resolver has not read the END yet, and its transactions wait for that.
func (r *Resolver) CheckEnds(ctx context.Context, group string, maxWait time.Duration) error {
	oldest, ok, err := r.staging.StagedLongerThan(ctx, r.pool, group, maxWait)
	if err != nil || !ok {
		return err
	}
	counts, err := r.staging.StagedCounts(ctx, r.pool, group, oldest.TxID)
	if err != nil {
		return err
	}
	var records int64
	for _, n := range counts {
		records += n
	}
	return &NoEndError{TxID: oldest.TxID, Records: records, FirstStaged: oldest.FirstStaged}
}
