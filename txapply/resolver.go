package txapply

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// End is an END marker of the transaction topic, at Offset.
type End struct {
	Offset int64
	Marker *debezium.TransactionMarker
	// SourceTs is the transaction's commit time (the marker's ts_ms),
	// stored with the resolver's position for the lag status shows.
	SourceTs time.Time
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
	// Progress, when set, is told after each chunk how many staged records
	// the apply transaction in progress has written so far, and 0 once it
	// ends: a transaction of a million rows is one long apply, and this is
	// how an operator sees it move.
	Progress func(written int64)
}

// Resolver applies whole source transactions from staging.
type Resolver struct {
	pool     *pgxpool.Pool
	applier  *sink.Applier
	router   *sink.Router
	decoder  *debezium.Decoder
	offsets  dedup.Offsets
	staging  dedup.Transactions
	chunk    int
	bytes    int64
	progress func(int64)
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
		progress: opts.Progress}
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
	ids := make([]int64, len(ends))
	for i, end := range ends {
		ids[i] = end.Marker.TxID
	}
	applied, staged, err := r.staging.StagedState(ctx, r.pool, claim.Group, ids)
	if err != nil {
		return Result{}, err
	}
	for _, end := range ends {
		done, err := check(end, applied[end.Marker.TxID], staged[end.Marker.TxID])
		var incomplete *IncompleteError
		if errors.As(err, &incomplete) && len(ready) > 0 {
			// Apply what is ready; the caller comes back for this one.
			next = ready[len(ready)-1].Offset + 1
			break
		}
		if err != nil {
			return Result{}, err
		}
		ready = append(ready, end)
		resolved = append(resolved, done)
	}
	if next == claim.NextOffset && len(ready) == 0 {
		return Result{}, nil
	}
	checking := time.Since(started)
	res, err := r.apply(ctx, claim, ready, resolved, next)
	res.Checking = checking
	return res, err
}

// check reports whether end's transaction was applied already (resolved),
// or returns an *IncompleteError or *OverstagedError when its staged
// events (per data collection) are not exactly those its END counts.
// Logical decoding messages are not counted: pgsink applies none, so none
// is staged.
func check(end End, resolved bool, staged map[string]int64) (bool, error) {
	if resolved {
		return true, nil
	}
	if staged == nil {
		staged = map[string]int64{}
	}
	m := end.Marker
	want := map[string]int64{}
	for _, c := range m.DataCollections {
		if name := c.Collection(); name != debezium.MessageCollection {
			want[name] += c.EventCount
		}
	}
	inc := &IncompleteError{ID: m.ID, Offset: end.Offset, Staged: staged, Want: want}
	for c, n := range staged {
		inc.StagedTotal += n
		if n > want[c] {
			return false, &OverstagedError{ID: m.ID, Collection: c, Staged: n, Want: want[c]}
		}
	}
	complete := true
	for c, n := range want {
		inc.WantTotal += n
		complete = complete && staged[c] == n
	}
	if !complete {
		return false, inc
	}
	return false, nil
}

// apply runs the target transaction of Resolve.
func (r *Resolver) apply(ctx context.Context, claim *dedup.Claim, ends []End, resolved []bool, next int64) (res Result, err error) {
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
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, dedup.ErrNotAdvanced) {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return Result{}, r.offsets.Mismatch(ctx, conn, before)
		}
		return Result{}, fmt.Errorf("txapply: begin: %w", err)
	}
	w := r.applier.WriteIn(conn.Conn())
	b = &pgx.Batch{}
	writing := time.Now()
	if r.progress != nil {
		defer r.progress(0)
	}
	out := &pending{w: w, chunk: r.chunk, bytes: r.bytes, progress: r.progress}
	for i, end := range ends {
		if resolved[i] {
			res.Passed++
			continue
		}
		first, err := r.writeStaged(ctx, conn, out, claim.Group, end)
		if err != nil {
			return Result{}, err
		}
		r.staging.QueueResolve(b, claim.Group, end.Marker.TxID, end.Marker.EventCount)
		res.Applied++
		res.FirstStaged = append(res.FirstStaged, first)
	}
	if err := out.flush(ctx); err != nil {
		return Result{}, err
	}
	res.Records = out.written
	if err := w.Finish(ctx); err != nil {
		return Result{}, err
	}
	res.Writing = time.Since(writing)
	committing := time.Now()
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

// writeStaged reads end's transaction from staging in its order, a chunk
// at a time, in the transaction open on conn, and hands its records to out;
// it returns the oldest Kafka timestamp among them.
func (r *Resolver) writeStaged(ctx context.Context, conn *pgxpool.Conn, out *pending, group string, end End) (first time.Time, err error) {
	after := int64(math.MinInt64)
	for {
		staged, err := r.staging.ReadStaged(ctx, conn, group, end.Marker.TxID, after, r.chunk, r.bytes)
		if err != nil {
			return first, err
		}
		if len(staged) == 0 {
			return first, nil
		}
		for _, s := range staged {
			after = s.TotalOrder
			if !s.Timestamp.IsZero() && (first.IsZero() || s.Timestamp.Before(first)) {
				first = s.Timestamp
			}
			if s.Dead {
				out.skip()
				continue
			}
			it, ok, err := r.router.Item(ctx, r.decoder, record(s))
			if err != nil {
				return first, fmt.Errorf("txapply: transaction %s: %s[%d]@%d: %w", end.Marker.ID, s.Topic, s.Partition, s.Offset, err)
			}
			if err := out.add(ctx, end.Marker.ID, it, ok, int64(len(s.Key)+len(s.Value))); err != nil {
				return first, err
			}
		}
	}
}

// pending gathers the decoded records of the transactions one Resolve
// applies and writes them a chunk at a time: a chunk holds the records of
// many small source transactions (in their commit order, each in its own
// order), so that small transactions cost about what a partition's batch
// costs per record rather than a write each; a large one is written in
// chunks as it is read. What the resolver holds stays bounded by a chunk.
type pending struct {
	w        *sink.TxWriter
	chunk    int
	bytes    int64
	progress func(int64)
	items    []sink.Item
	size     int64
	read     int64 // records taken since the last write
	written  int64 // records written, tombstones and records routed nowhere included
	// firstID and lastID name the transactions of the records taken since
	// the last write, for an error.
	firstID, lastID string
}

// skip counts a record read that writes nothing.
func (p *pending) skip() { p.read++ }

// add takes a record of transaction id (ok: it writes something) and
// writes the chunk once it is full.
func (p *pending) add(ctx context.Context, id string, it sink.Item, ok bool, size int64) error {
	if p.firstID == "" {
		p.firstID = id
	}
	p.lastID = id
	p.read++
	if ok {
		p.items = append(p.items, it)
	}
	if p.size += size; int(p.read) >= p.chunk || p.bytes > 0 && p.size >= p.bytes {
		return p.flush(ctx)
	}
	return nil
}

// flush writes the records taken.
func (p *pending) flush(ctx context.Context) error {
	if p.read == 0 {
		return nil
	}
	if err := p.w.Write(ctx, p.items); err != nil {
		which := "transaction " + p.firstID
		if p.lastID != p.firstID {
			which = "transactions " + p.firstID + " to " + p.lastID
		}
		return fmt.Errorf("txapply: %s: %w", which, err)
	}
	p.written += p.read
	p.items, p.size, p.read, p.firstID, p.lastID = nil, 0, 0, "", ""
	if p.progress != nil {
		p.progress(p.written)
	}
	return nil
}

// record is the Kafka record a staged row keeps.
func record(s dedup.StagedRecord) debezium.Record {
	rec := debezium.Record{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, Timestamp: s.Timestamp, Key: s.Key, Value: s.Value}
	for _, h := range s.Headers {
		rec.Headers = append(rec.Headers, debezium.Header{Key: h.Key, Value: []byte(h.Value)})
	}
	return rec
}

// CheckEnds returns a *NoEndError when a staged transaction's first record
// is older than maxWait. Call it only once the resolver has read every END
// of the transaction topic (its position at the high watermark): a lagging
// resolver has not read the END yet, and its transactions wait for that.
func (r *Resolver) CheckEnds(ctx context.Context, group string, maxWait time.Duration) error {
	oldest, ok, err := r.staging.OldestStaged(ctx, r.pool, group)
	if err != nil || !ok || oldest.Age <= maxWait {
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
