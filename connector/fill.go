package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// Fill applies a table's topics into another table (a point-in-time copy,
// or the shadow of an online rebuild) through the same sink.Applier as the
// instances: version guard, tombstones, ledgers, offsets in the
// transaction. It is no consumer-group member: it assigns the partitions
// itself and keeps its positions in pgsink.offsets under a group of its own
// (dedup.FillGroup), so it never fences an instance nor is fenced by one,
// and a fill killed at any point resumes from what it committed.
type Fill struct {
	cfg     *config.Config // the table's rules, aimed at the filled table
	pool    *pgxpool.Pool
	log     *zap.Logger
	owner   string
	group   string
	until   Bound
	offsets dedup.Offsets
	router  *sink.Router
	applier *sink.Applier
	parts   map[fillKey]*fillPart
	order   []*fillPart
	// txGroup and txCut are FillOptions', staging its transactions'
	// tables; endAtUnresolved is set by EndAtUnresolved.
	txGroup         string
	txCut           *dedup.TxCut
	staging         dedup.Transactions
	endAtUnresolved bool
	// into is the filled table, named in errors that tell how to recover.
	into config.TableName
}

// FillOptions are what a Fill needs besides the configuration.
type FillOptions struct {
	Pool  *pgxpool.Pool
	Log   *zap.Logger
	Owner string // names the fill in its offsets rows
	// Group is the fill's offsets group (dedup.FillGroup).
	Group string
	// Source is the configured target whose rules are followed, Into the
	// table they fill instead.
	Source, Into config.TableName
	// Partitions are the partitions to fill, each with its end: the
	// offset at which it is done (a bounded fill stops at the high
	// watermark it read at its start), or -1 to follow it until stopped.
	Partitions []FillPartition
	// Until stops each partition at its first record past the bound.
	Until Bound
	// TxGroup, set for an online rebuild under apply.consistency:
	// transaction, is the instances' consumer group: a record of a source
	// transaction is applied only once that group's resolver has applied
	// the transaction to the live table, and a partition waits at the
	// first record of one it has not (see EndAtUnresolved). The shadow then
	// never holds part of a transaction; without it, the swap would show
	// readers the staged part of one the resolver has not applied yet.
	TxGroup string
	// TxCut, with TxGroup, is for a copy (`replay --into`): a record of a
	// source transaction is applied only if the transaction is in the cut
	// (what the resolver had applied when the copy began), and a partition
	// ends, rather than waits, at its first record of one that is not.
	// With an LSN bound, a record of a transaction in the cut is placed by
	// its transaction's commit position, not its own: the bound never
	// splits a transaction.
	TxCut *dedup.TxCut
}

// FillPartition is one partition of a fill and where it ends (-1: never).
type FillPartition struct {
	ID  dedup.PartitionID
	End int64
}

// FillProgress is a partition's stored position in a running fill.
type FillProgress struct {
	ID   dedup.PartitionID
	Next int64
	Done bool
	// Unapplied: the record at Next is of a source transaction the
	// instances' resolver has not applied (FillOptions.TxGroup; with TxCut,
	// had not when the fill began). The partition waits there, or, Done,
	// ended there.
	Unapplied bool
}

// Bound is the point in time of a fill: a source commit time
// (source.ts_us, else ts_ms), up to and including it, or a source WAL
// position (source.lsn), changes before it: what pg_current_wal_insert_lsn()
// reads at a moment is the first position of the changes made after it,
// and the LSN of a bad change is where the state just before it ends. The
// zero Bound is none.
type Bound struct {
	At  time.Time
	LSN int64
}

// IsZero reports whether b bounds nothing.
func (b Bound) IsZero() bool { return b.At.IsZero() && b.LSN == 0 }

// past reports whether ch happened after b. A record that carries no
// source position cannot be placed: an error, never a guess.
func (b Bound) past(ch *debezium.Change) (bool, error) {
	if !b.At.IsZero() {
		if ch.SourceTs.IsZero() {
			return false, fmt.Errorf("%s[%d]@%d carries no source time (source.ts_ms): a point in time cannot place it", ch.Topic, ch.Partition, ch.Offset)
		}
		return ch.SourceTs.After(b.At), nil
	}
	if ch.Version.LSN == 0 {
		return false, fmt.Errorf("%s[%d]@%d carries no source LSN (source.lsn): a point in time cannot place it", ch.Topic, ch.Partition, ch.Offset)
	}
	return ch.Version.LSN >= b.LSN, nil
}

type fillKey struct {
	topic     string
	partition int32
}

type fillPart struct {
	id      dedup.PartitionID
	claim   dedup.Claim
	end     int64
	dec     *debezium.Decoder
	pending []*kafka.Message
	done    bool
	// unapplied is set while the partition stands at a record of a
	// transaction not applied (FillProgress.Unapplied); seek, when >= 0,
	// is where its consumer must read from again (the records fetched
	// after it were dropped), at retry: the partition waits there, paused,
	// for backoff, which doubles while it finds the transaction still not
	// applied.
	unapplied bool
	seek      int64
	retry     time.Time
	backoff   time.Duration
	paused    bool
}

// A partition waiting at a transaction the resolver has not applied looks
// again after fillWaitMin, then after twice as long each time, up to
// fillWaitMax: looking again means fetching its records anew from Kafka
// and asking the target about them, which, at every round of the fill's
// loop (apply.batch.max_wait), each waiting partition did while the others
// filled. The wait until the resolver applies a transaction is that of a
// source transaction to become visible; a second added to it is little
// beside a partition of a backlog being filled.
const (
	fillWaitMin = 50 * time.Millisecond
	fillWaitMax = time.Second
)

// fillConsumer is what a fill asks of its Kafka consumer besides polling
// (*kafka.Consumer).
type fillConsumer interface {
	Seek(kafka.TopicPartition, int) error
	Pause([]kafka.TopicPartition) error
	Resume([]kafka.TopicPartition) error
	Position([]kafka.TopicPartition) ([]kafka.TopicPartition, error)
}

// NewFill builds a fill of opts.Into from the rules of opts.Source.
func NewFill(cfg *config.Config, opts FillOptions) (*Fill, error) {
	derived := *cfg
	derived.Tables = nil
	for _, t := range cfg.Tables {
		if t.Target.Template == nil && t.Target.TableName == opts.Source {
			t.Target = config.Target{TableName: opts.Into}
			// The filled table exists (created from the source table's
			// definition): it is filled, never created nor evolved.
			t.Schema.Create = false
			derived.Tables = append(derived.Tables, t)
		}
	}
	derived.Tables = append(derived.Tables, templatedFillTables(cfg, opts)...)
	if len(derived.Tables) == 0 {
		return nil, fmt.Errorf("no table of the configuration targets %s", opts.Source)
	}
	derived.Kafka = map[string]string{}
	for k, v := range cfg.Kafka {
		derived.Kafka[k] = v
	}
	derived.Kafka["group.id"] = opts.Group
	f := &Fill{
		cfg: &derived, pool: opts.Pool, log: opts.Log, owner: opts.Owner, group: opts.Group, until: opts.Until, into: opts.Into,
		offsets: dedup.NewOffsets(cfg.Postgres.Schema),
		router:  sink.NewRouter(&derived, opts.Pool),
		applier: sink.NewApplier(opts.Pool, sink.Options{
			Schema:                     cfg.Postgres.Schema,
			StopOnError:                cfg.Errors.Tolerance == config.ToleranceNone,
			AsyncCommit:                cfg.Postgres.SynchronousCommit == config.SynchronousCommitOff,
			StagingTablesPerConnection: cfg.Postgres.StagingTablesPerConnection,
			Retry: sink.Retry{MaxAttempts: cfg.Apply.Retry.MaxAttempts, InitialBackoff: cfg.Apply.Retry.InitialBackoff.Std(),
				MaxBackoff: cfg.Apply.Retry.MaxBackoff.Std(), OnUnavailable: newUnavailableReporter(opts.Log, nil).report},
		}),
		parts:   map[fillKey]*fillPart{},
		txGroup: opts.TxGroup,
		txCut:   opts.TxCut,
		staging: dedup.NewTransactions(cfg.Postgres.Schema),
	}
	if _, err := useSchemaRegistry(&derived, f.router); err != nil {
		return nil, err
	}
	for _, p := range opts.Partitions {
		if p.ID.Group != opts.Group {
			return nil, fmt.Errorf("partition %s is not of the fill's group %s", p.ID, opts.Group)
		}
		fp := &fillPart{id: p.ID, end: p.End, dec: f.router.NewDecoder(), seek: -1}
		f.parts[fillKey{p.ID.Topic, p.ID.Partition}] = fp
		f.order = append(f.order, fp)
	}
	return f, nil
}

// EndAt gives partitions a new end (the live table's positions, for an
// online rebuild's last catch-up): the next Run stops each there.
func (f *Fill) EndAt(ends map[dedup.PartitionID]int64) {
	for _, p := range f.order {
		if end, ok := ends[p.id]; ok {
			p.end, p.done = end, false
		}
	}
}

// EndAtUnresolved makes the next Run end each partition at its first
// record of a transaction the instances' resolver has not applied
// (FillOptions.TxGroup) instead of waiting there. Only for an online
// rebuild's last catch-up, run while its swap holds the instances'
// positions and the resolver's: the swap moves the instances back to
// where the fill ended, so that they read those records again (staged
// already, they are kept once), and the resolver applies each such
// transaction once whole to the table by its name, the shadow's once
// swapped.
func (f *Fill) EndAtUnresolved() { f.endAtUnresolved = true }

// Progress returns each partition's position.
func (f *Fill) Progress() []FillProgress {
	out := make([]FillProgress, len(f.order))
	for i, p := range f.order {
		out[i] = FillProgress{ID: p.id, Next: p.claim.NextOffset, Done: p.done, Unapplied: p.unapplied}
	}
	return out
}

// Run fills until every partition is done (each has an end, or the bound
// has passed on it), stop returns true (asked after each round of
// batches, with the positions committed so far), or ctx ends. The
// partitions' offsets rows must exist (the caller creates them with the
// table, in one transaction): Run claims them under a new epoch, which
// fences a former fill still running, and resumes where they stand.
func (f *Fill) Run(ctx context.Context, stop func([]FillProgress) bool) error {
	var assign []kafka.TopicPartition
	for _, p := range f.order {
		// A new consumer reads from the stored position, which is where a
		// partition left waiting by the last Run waits: it looks at once
		// (the swap's catch-up runs under locks).
		p.seek, p.paused, p.retry = -1, false, time.Time{}
		stored, err := f.offsets.Read(ctx, f.pool, p.id)
		if err != nil {
			return err
		}
		if p.claim, err = f.offsets.Claim(ctx, f.pool, p.id, stored.NextOffset, f.owner); err != nil {
			return err
		}
		if p.end >= 0 && p.claim.NextOffset >= p.end {
			p.done = true
			continue
		}
		assign = append(assign, kafka.TopicPartition{Topic: &p.id.Topic, Partition: p.id.Partition, Offset: kafka.Offset(p.claim.NextOffset)})
	}
	if len(assign) == 0 {
		return nil
	}
	cc := consumerConfig(f.cfg)
	// Positions are the fill's offsets rows: nothing is committed to Kafka.
	(*cc)["enable.auto.commit"] = false
	c, err := kafka.NewConsumer(cc)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer c.Close()
	if err := c.Assign(assign); err != nil {
		return fmt.Errorf("assign %d partitions: %w", len(assign), err)
	}
	batch := f.cfg.Apply.Batch
	last := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		full := false
		switch ev := c.Poll(50).(type) {
		case *kafka.Message:
			p := f.parts[fillKey{*ev.TopicPartition.Topic, ev.TopicPartition.Partition}]
			// A waiting partition's records (fetched before it was paused)
			// are dropped: it reads them again from seek.
			if p != nil && !p.done && p.seek < 0 {
				p.pending = append(p.pending, ev)
				full = len(p.pending) >= batch.MaxRecords
			}
			if !full && time.Since(last) < batch.MaxWait.Std() {
				continue
			}
		case kafka.Error:
			if ev.Code() == kafka.ErrOffsetOutOfRange || ev.Code() == kafka.ErrAutoOffsetReset {
				return f.deletedWhileFilling(ev)
			}
			if ev.IsFatal() {
				return fmt.Errorf("kafka: %w", ev)
			}
			f.log.Warn("kafka error", zap.Error(ev))
		}
		if err := f.flush(ctx, c); err != nil {
			return err
		}
		if err := f.lookAgain(c, time.Now()); err != nil {
			return err
		}
		f.passedEnds(c)
		last = time.Now()
		if f.allDone() || (stop != nil && stop(f.Progress())) {
			return nil
		}
	}
}

// passedEnds marks done the partitions whose consumer has fetched past
// their end with nothing left to apply: the last offsets below a high
// watermark can be transaction markers, which are never delivered.
func (f *Fill) passedEnds(c fillConsumer) {
	var ask []kafka.TopicPartition
	for _, p := range f.order {
		// A waiting partition's consumer may have fetched past its end:
		// those records were dropped, it reads them again from seek.
		if !p.done && p.end >= 0 && len(p.pending) == 0 && p.seek < 0 {
			ask = append(ask, kafka.TopicPartition{Topic: &p.id.Topic, Partition: p.id.Partition})
		}
	}
	if len(ask) == 0 {
		return
	}
	pos, err := c.Position(ask)
	if err != nil {
		return
	}
	for _, tp := range pos {
		if p := f.parts[fillKey{*tp.Topic, tp.Partition}]; p != nil && tp.Offset >= 0 && int64(tp.Offset) >= p.end {
			p.done = true
		}
	}
}

func (f *Fill) allDone() bool {
	for _, p := range f.order {
		if !p.done {
			return false
		}
	}
	return true
}

// flush applies every partition's pending records, the partitions in
// parallel as the instances apply them, and stops fetching the partitions
// that are done.
func (f *Fill) flush(ctx context.Context, c fillConsumer) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.order))
	for i, p := range f.order {
		if len(p.pending) == 0 && (p.done || p.end < 0 || p.claim.NextOffset < p.end) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.apply(ctx, p)
		}()
	}
	wg.Wait()
	var wait []kafka.TopicPartition
	for _, p := range f.order {
		if p.seek >= 0 && !p.paused {
			p.paused = true
			wait = append(wait, kafka.TopicPartition{Topic: &p.id.Topic, Partition: p.id.Partition})
		}
	}
	if len(wait) > 0 {
		if err := c.Pause(wait); err != nil {
			errs = append(errs, fmt.Errorf("pause %d partitions waiting for the resolver: %w", len(wait), err))
		}
	}
	var done []kafka.TopicPartition
	for _, p := range f.order {
		if p.done && p.pending != nil {
			p.pending = nil
			done = append(done, kafka.TopicPartition{Topic: &p.id.Topic, Partition: p.id.Partition})
		}
	}
	if len(done) > 0 {
		if err := c.Pause(done); err != nil {
			f.log.Warn("pausing filled partitions", zap.Error(err))
		}
	}
	return errors.Join(errs...)
}

// lookAgain resumes the waiting partitions whose retry is due, reading
// again from where they wait. Resume comes before Seek, with no poll in
// between: the seek discards whatever the consumer fetched from before it.
func (f *Fill) lookAgain(c fillConsumer, now time.Time) error {
	var errs []error
	for _, p := range f.order {
		if p.seek < 0 || now.Before(p.retry) {
			continue
		}
		tp := kafka.TopicPartition{Topic: &p.id.Topic, Partition: p.id.Partition, Offset: kafka.Offset(p.seek)}
		if p.paused {
			if err := c.Resume([]kafka.TopicPartition{{Topic: &p.id.Topic, Partition: p.id.Partition}}); err != nil {
				errs = append(errs, fmt.Errorf("%s: resume: %w", p.id, err))
				continue
			}
			p.paused = false
		}
		if err := c.Seek(tp, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s: read again from %d: %w", p.id, p.seek, err))
			continue
		}
		p.seek = -1
	}
	return errors.Join(errs...)
}

// waitAt makes p wait at off, a record of a transaction not applied, and
// look again after its backoff, which doubles from fillWaitMin up to
// fillWaitMax while it keeps finding one there.
func (p *fillPart) waitAt(off int64, now time.Time) {
	p.done, p.unapplied, p.seek = false, true, off
	p.backoff = min(max(2*p.backoff, fillWaitMin), fillWaitMax)
	p.retry = now.Add(p.backoff)
}

// apply applies a partition's pending records up to its end or its first
// record past the bound, in one transaction with its position (I1).
func (f *Fill) apply(ctx context.Context, p *fillPart) error {
	b := &sink.Batch{Claim: &p.claim, Next: p.claim.NextOffset, Items: make([]sink.Item, 0, len(p.pending))}
	for _, m := range p.pending {
		off := int64(m.TopicPartition.Offset)
		if off < b.Next {
			continue
		}
		if p.end >= 0 && off >= p.end {
			p.done = true
			break
		}
		it, ok, err := f.router.Item(ctx, p.dec, toRecord(p.id, m))
		if err != nil {
			return fmt.Errorf("%s@%d: %w", p.id, off, err)
		}
		if ok && it.Err == nil && !f.until.IsZero() {
			past, err := f.until.past(&it.Change)
			if err != nil {
				return err
			}
			if past {
				p.done = true
				break
			}
		}
		if ok {
			b.Items = append(b.Items, it)
		}
		b.Next = off + 1
	}
	p.pending = p.pending[:0]
	if err := f.keepTransactions(ctx, p, b); err != nil {
		return err
	}
	if !p.unapplied {
		p.backoff = 0 // past the transaction it waited for, if any
	}
	if p.end >= 0 && b.Next >= p.end && !p.unapplied {
		p.done = true
	}
	if len(b.Items) == 0 && b.Next == p.claim.NextOffset {
		return nil
	}
	if _, err := f.applier.Apply(ctx, b); err != nil {
		var fenced *dedup.FencedError
		if errors.As(err, &fenced) {
			return fmt.Errorf("another fill of the same table took over (%s): %w", fenced.Owner, err)
		}
		return err
	}
	return nil
}

// keepTransactions (FillOptions.TxGroup) ends b before its first record
// of a source transaction the instances' resolver has not applied (with
// TxCut: that was not in the cut): the partition waits there, reading it
// again until its transaction is applied, or, after EndAtUnresolved or
// with a cut, is done there. Transactions are applied in commit order,
// and Debezium writes a partition's records in that order, so the records
// a partition passes are those of applied transactions (and records of no
// transaction): the filled table never holds part of a transaction, and
// its position never passes a record of one it lacks, whether the fill is
// killed, resumed or run again.
func (f *Fill) keepTransactions(ctx context.Context, p *fillPart, b *sink.Batch) error {
	p.unapplied = false
	if f.txGroup == "" {
		return nil
	}
	// By topic and partition, the instances' partition is the fill's.
	recs := dedup.TxRecords{Topic: p.id.Topic, Partition: p.id.Partition}
	var at []int // the items asked about
	for i, it := range b.Items {
		if tx := it.Change.Transaction; tx != nil && it.Err == nil {
			recs.TxIDs, recs.LSNs, recs.Offsets = append(recs.TxIDs, tx.TxID), append(recs.LSNs, it.Change.Version.LSN), append(recs.Offsets, it.Record.Offset)
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return nil
	}
	commits, err := f.staging.ResolvedCommits(ctx, f.pool, f.txGroup, recs, f.txCut)
	if err != nil {
		return err
	}
	if len(commits) != len(at) {
		return fmt.Errorf("%s: %d answers for %d records of transactions", p.id, len(commits), len(at))
	}
	oldestNow := int64(-1) // read by pastByCommit once a batch, if at all
	for k, i := range at {
		applied := commits[k] >= 0
		if f.txCut != nil {
			applied = f.txCut.Holds(commits[k])
		}
		past := false
		if applied && f.until.LSN > 0 {
			if past, err = f.pastByCommit(ctx, &b.Items[i].Change, commits[k], &oldestNow); err != nil {
				return err
			}
		}
		if applied && !past {
			continue
		}
		off := b.Items[i].Record.Offset
		clear(b.Items[i:])
		b.Items, b.Next = b.Items[:i], off
		switch {
		case past:
			p.done = true
		case f.endAtUnresolved || f.txCut != nil:
			p.done, p.unapplied = true, true
		default:
			p.waitAt(off, time.Now())
		}
		break
	}
	return nil
}

// pastByCommit places a record of an applied transaction against an LSN
// bound by the transaction's commit position, which ResolvedCommits read:
// its own LSN is below its commit's, and a transaction in flight at the
// bound would be split by it (Bound.past, which runs first, ends the
// partition at the first record whose own LSN is past). A transaction
// recorded without its commit position (before migration 0009) committed
// before every one recorded with it (a pruned one too): placed only if the
// bound is above the oldest of those — the oldest now, read after
// ResolvedCommits: a transaction recorded at the cut and pruned while the
// fill ran committed after the cut's oldest, and pruning only raises it.
// oldestNow caches that read for the batch (-1: not read yet).
func (f *Fill) pastByCommit(ctx context.Context, ch *debezium.Change, commit int64, oldestNow *int64) (bool, error) {
	if commit > 0 {
		return commit >= f.until.LSN, nil
	}
	if f.txCut != nil && f.txCut.OldestCommitLSN > 0 && f.txCut.OldestCommitLSN <= f.until.LSN {
		if *oldestNow < 0 {
			now, err := f.staging.OldestCommitNow(ctx, f.pool, f.txGroup)
			if err != nil {
				return false, err
			}
			*oldestNow = now
		}
		if *oldestNow > 0 && *oldestNow <= f.until.LSN {
			return false, nil
		}
	}
	return false, fmt.Errorf("%s[%d]@%d: its transaction %d was applied without its commit position recorded (before migration 0009, or pruned after retention.tombstones), "+
		"and the LSN bound is not past every transaction recorded with one: it cannot place the transaction whole; give --until as a time", ch.Topic, ch.Partition, ch.Offset, ch.Transaction.TxID)
}

// toRecord is a fetched message as the decoder reads it.
func toRecord(id dedup.PartitionID, m *kafka.Message) debezium.Record {
	rec := debezium.Record{Topic: id.Topic, Partition: id.Partition, Offset: int64(m.TopicPartition.Offset),
		Timestamp: m.Timestamp, Key: m.Key, Value: m.Value}
	if len(m.Headers) > 0 {
		rec.Headers = make([]debezium.Header, len(m.Headers))
		for i, h := range m.Headers {
			rec.Headers[i] = debezium.Header{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// templatedFillTables turns each templated rule that derives opts.Source for
// one of the fill's topics into an entry of that topic into opts.Into. A
// target the record decides is not filled this way: its topic feeds other
// tables too.
func templatedFillTables(cfg *config.Config, opts FillOptions) []config.Table {
	router := cfg.Router()
	var out []config.Table
	seen := map[string]bool{}
	for _, p := range opts.Partitions {
		if seen[p.ID.Topic] {
			continue
		}
		seen[p.ID.Topic] = true
		t, err := router.Resolve(p.ID.Topic)
		if err != nil || t.Target.Template == nil || t.Target.TableName != opts.Source {
			continue
		}
		entry := *t
		entry.Topic, entry.Topics, entry.TopicPattern = p.ID.Topic, nil, config.Pattern{}
		entry.Target = config.Target{TableName: opts.Into}
		entry.Schema.Create = false
		out = append(out, entry)
	}
	return out
}

// deletedWhileFilling is the error of a fill whose next records Kafka
// deleted (retention) before it read them: what it filled lacks them, and
// a fill run again resumes from the same position, so it can only start
// over (prepareFill refuses to resume it and says the same).
func (f *Fill) deletedWhileFilling(err error) error {
	return fmt.Errorf("kafka deleted records this fill had not read yet (retention shorter than the fill): %s cannot be completed from what Kafka holds; drop it and run the replay again, with a longer retention.ms on the topics while it runs: %w", f.into, err)
}
