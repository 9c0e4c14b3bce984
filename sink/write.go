package sink

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// write stages and applies items [lo, hi), table by table, in x.
func (a *Applier) write(ctx context.Context, x *txn, items []Item, lo, hi int) error {
	byTable := map[*Table][]int{}
	var tables []*Table
	for i := lo; i < hi; i++ {
		if x.transactional(&items[i]) {
			continue // staged instead (see queueStaging)
		}
		t := items[i].Table
		if _, ok := byTable[t]; !ok {
			tables = append(tables, t)
		}
		byTable[t] = append(byTable[t], i)
	}
	for _, t := range tables {
		var err error
		if t.Outbox != nil {
			err = a.writeOutbox(ctx, x, t, items, byTable[t])
		} else {
			red, rerr := reduce(t, items, byTable[t])
			if rerr != nil {
				return rerr
			}
			x.stats.UndetectableMoves += red.undetectable
			err = a.writeTable(ctx, x, t, red)
		}
		if err != nil {
			return fmt.Errorf("sink: table %s: %w", t.Ref(), err)
		}
	}
	return nil
}

func (a *Applier) statementsFor(t *Table) *statements {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.stmts.get(t)
	if !ok {
		st = buildStatements(t, a.opts.Schema, a.opts.TestNoVersionGuard)
		a.stmts.put(t, st)
	}
	return st
}

// writeTable applies the table's reduced rows: a large batch's fresh rows
// by COPY into the target, the others through the staging table.
func (a *Applier) writeTable(ctx context.Context, x *txn, t *Table, red *reduced) error {
	stmts := a.statementsFor(t)
	// The staging table has no statistics and its size changes per batch:
	// a cached generic plan made for a small stage (a nested loop scanning
	// it per target row) turns quadratic on a large one. Custom plans see
	// the stage's real size. JIT compilation, which the planner turns on
	// for the cost it expects of the tombstone probes the upsert mostly
	// skips, costs these statements more time than it saves. Pipelined,
	// it costs no round trip.
	x.queue.Queue(applySettings)
	if takesPartInMoves(red) {
		// Transactions with halves of key moves of one table run one
		// after the other from here on, so that each reads the ledger
		// and the rows the others wrote (see lockMoves).
		x.queue.Queue(lockMoves, t.Ref())
	}
	if red.truncate != nil {
		x.queue.Queue(stmts.truncate, red.truncate.CommitLSN, red.truncate.LSN)
		x.queue.Queue(stmts.truncateTS, t.Ref(), red.truncate.CommitLSN, red.truncate.LSN)
		x.stats.Truncated++
	}
	if len(red.rows) == 0 {
		return nil
	}
	if err := x.useStage(ctx, stmts.stageName, stmts.createStage); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	insert := x.optimistic && !a.opts.UpsertOnly && stmts.optimistic()
	if insert && !valuesFit(len(red.rows), len(stmts.stageCols)) {
		rest, copied, err := copyFresh(ctx, x, stmts, red)
		if err != nil {
			return err
		}
		x.stats.Upserted += copied
		red = rest
	}
	if len(red.rows) == 0 {
		return nil
	}
	return writeStaged(ctx, x, stmts, red, insert)
}

// writeStaged stages the reduced rows and applies them from the stage:
// with insert, fresh rows by plain INSERT; the others by guarded upserts,
// one per group of unchanged-TOAST columns; then the deletes and their
// tombstones.
func writeStaged(ctx context.Context, x *txn, stmts *statements, red *reduced, insert bool) error {
	t := stmts.table
	rows, groups, inserts := stagingRows(red, insert)
	deletes := groups[0].rows > 0
	x.stats.Deleted += groups[0].rows
	x.stats.Upserted += inserts
	for _, g := range groups[1:] {
		x.stats.Upserted += g.rows
	}
	if err := x.stage(ctx, stmts.stageName, stmts.stageCols, rows); err != nil {
		return fmt.Errorf("stage rows: %w", err)
	}
	// A small stage keeps the generic plans of the insert and the
	// upserts: planning them afresh is a large share of the server's work
	// for a transaction of a few records. Their plans do not depend on
	// the stage's size (one scan of the stage, index probes per row),
	// unlike the statements that join the stage, which go back to
	// custom plans after them. The unresolved count runs in between
	// with the generic plan too: it probes the target per staged row.
	small := len(rows) <= genericPlanRows
	if small {
		x.queue.Queue(genericPlans)
	}
	if inserts > 0 {
		x.expectNew(stmts)
		x.queue.Queue(stmts.insert, t.Ref()).Exec(func(tag pgconn.CommandTag) error {
			x.stats.Stale += inserts - tag.RowsAffected()
			return nil
		})
	}
	queueUpserts(x, stmts, groups, small)
	if small {
		x.queue.Queue(customPlans)
	}
	// After the upserts: the creates of moved rows fill their unchanged
	// columns, from the target's old row when its delete is in this batch
	// (its last change, row.before, written by now); then the deletes keep
	// the rows they delete, filled ones included, for later creates.
	queueMovedTo(x, stmts, red)
	if movesAway(red) {
		queueMovedAway(x, stmts)
	}
	if deletes {
		queueDeletes(x, stmts, insert)
	}
	x.unstage(stmts.stage, len(rows))
	return nil
}

// queueUpserts queues the upsert of each group of staged rows but the
// deletes (group 0).
func queueUpserts(x *txn, stmts *statements, groups []maskGroup, small bool) {
	t := stmts.table
	nested := false
	for m, g := range groups {
		if m == 0 || g.rows == 0 {
			continue
		}
		staged := g.rows
		if slices.Contains(g.unchanged, true) && !g.moved {
			// Asked before the upsert creates them. Rare: only
			// events with TOAST placeholders come here.
			x.queue.Queue(stmts.unresolved, int32(m)).QueryRow(func(row pgx.Row) error {
				var n int64
				err := row.Scan(&n)
				x.stats.Unresolved += n
				return err
			})
		}
		// Rows neither statement wrote were refused by the version
		// guard or a tombstone: stale events, counted, never applied.
		if small {
			x.queue.Queue(stmts.upsert(g.unchanged), int32(m), t.Ref()).Exec(func(tag pgconn.CommandTag) error {
				x.stats.Stale += staged - tag.RowsAffected()
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
			x.stats.Stale += staged - updated - tag.RowsAffected()
			return nil
		})
	}
}

// queueDeletes queues the deletes of the staged keys and their tombstones.
func queueDeletes(x *txn, stmts *statements, insert bool) {
	t := stmts.table
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
	// a reduced batch has one row per key and operation.
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
	blocked, revision, err := blockedFresh(ctx, x, stmts, candidates)
	if err != nil {
		return nil, 0, err
	}
	t := stmts.table
	width := len(stmts.insertCols)
	slab := make([]any, 0, len(candidates)*width)
	fresh := make([][]any, 0, len(candidates))
	// The version columns as pointers into one slab, as the stage's
	// (stageRows): an int64 in an interface is an allocation per value.
	versions := make([]pgtype.Int8, 2*len(candidates))
	for i, r := range candidates {
		if blocked[i] {
			rest.rows = append(rest.rows, r)
			continue
		}
		lo := len(slab)
		slab = append(slab, r.values...)
		commit, lsn := &versions[2*i], &versions[2*i+1]
		*commit, *lsn = pgtype.Int8{Int64: r.version.CommitLSN, Valid: true}, pgtype.Int8{Int64: r.version.LSN, Valid: true}
		slab = append(slab, commit, lsn)
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

// blockedFresh asks which of the candidates, fresh rows, a tombstone may
// block (statements.blockedFresh), and reads the target's revision under
// the lock that keeps its definition until the COPY.
func blockedFresh(ctx context.Context, x *txn, stmts *statements, candidates []*row) (blocked []bool, revision string, err error) {
	t := stmts.table
	args := blockedFreshArgs(t, stmts.freshKeyCols, candidates)
	// The COPY sends each value in its column's binary form, which must be
	// the column's type now, not when this connection first described it:
	// the lock keeps the table's definition from here to the COPY, and the
	// revision read under it tells pgcopy whether to describe it again.
	x.queue.Queue(stmts.lockTarget)
	x.queue.Queue(tableRevision, t.Ident()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&revision)
	})
	blocked = make([]bool, len(candidates))
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
		return nil, "", fmt.Errorf("ask which new rows a tombstone may block: %w", err)
	}
	return blocked, revision, nil
}

// blockedFreshArgs are statements.blockedFresh's arguments for the
// candidates: the table (when keyed), their versions' halves and their key
// columns' values, each array bound without an allocation per element.
func blockedFreshArgs(t *Table, keyCols []int, candidates []*row) []any {
	versions := make([]pgtype.Int8, 2*len(candidates))
	commits, lsns := versions[:len(candidates)], versions[len(candidates):]
	for i, r := range candidates {
		commits[i] = pgtype.Int8{Int64: r.version.CommitLSN, Valid: true}
		lsns[i] = pgtype.Int8{Int64: r.version.LSN, Valid: true}
	}
	args := []any{valuerArray[pgtype.Int8]{commits}, valuerArray[pgtype.Int8]{lsns}}
	if keyCols != nil {
		args = append([]any{t.Ref()}, args...)
	}
	for _, c := range keyCols {
		keys := make([]any, len(candidates))
		for i, r := range candidates {
			keys[i] = r.values[c]
		}
		args = append(args, typedSlice(keys))
	}
	return args
}

// typedSlice returns values as an array of pgtype.Int8 or pgtype.Text when
// they all are int64s or strings, else as they are. pgx encodes a typed
// array's elements with one plan, and a []any's element by element through
// reflection, which on a large batch's keys is a large share of the
// client's CPU.
func typedSlice(values []any) any {
	if out, ok := sliceOf(values, func(v int64) pgtype.Int8 { return pgtype.Int8{Int64: v, Valid: true} }); ok {
		return valuerArray[pgtype.Int8]{out}
	}
	if out, ok := sliceOf(values, func(v string) pgtype.Text { return pgtype.Text{String: v, Valid: true} }); ok {
		return valuerArray[pgtype.Text]{out}
	}
	return values
}

func sliceOf[T, E any](values []any, elem func(T) E) ([]E, bool) {
	out := make([]E, len(values))
	for i, v := range values {
		x, ok := v.(T)
		if !ok {
			return nil, false
		}
		out[i] = elem(x)
	}
	return out, true
}

// valuerArray binds a slice of pgtype values as a PostgreSQL array whose
// elements pgx reads through pointers. A plain []int64 or []string goes
// through pgtype.FlatArray, whose Index puts each element in an interface:
// an allocation per element of every batch's arrays. A pointer in an
// interface is not one, and pgx encodes a *pgtype.Int8 or *pgtype.Text
// through its valuer interface, where a *int64 would be dereferenced by
// reflection and boxed again.
type valuerArray[E pgtype.Int8 | pgtype.Text] struct{ elems []E }

func (a valuerArray[E]) Dimensions() []pgtype.ArrayDimension {
	if a.elems == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a.elems)), LowerBound: 1}}
}

func (a valuerArray[E]) Index(i int) any { return &a.elems[i] }

func (a valuerArray[E]) IndexType() any { return new(E) }

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
