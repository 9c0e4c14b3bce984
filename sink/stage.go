package sink

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// maskGroup is the staged rows that share one set of unchanged-TOAST
// columns, written by one upsert statement; the group of deletes has a nil
// unchanged.
type maskGroup struct {
	unchanged []bool
	rows      int64
	// moved groups the upserts of keys rows moved to (row.movedFrom):
	// their unchanged columns are filled by takeMoved, not left unresolved.
	moved bool
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
	// The version columns are staged as pointers into one slab: an int64
	// in an interface is a heap allocation per value, and pgx's int8
	// codec encodes a *pgtype.Int8 (an Int64Valuer) without one, where a
	// plain *int64 would go through its reflective dereference, which
	// boxes again.
	versions := make([]pgtype.Int8, 2*len(red.rows))
	for i, r := range red.rows {
		mask := 0
		if r.op == opUpsert {
			mask = 1
			if slices.Contains(r.unchanged, true) {
				sig := maskSignature(r.unchanged)
				if r.movedFrom != nil {
					sig += "m"
				}
				m, ok := masks[sig]
				if !ok {
					m = len(groups)
					masks[sig] = m
					groups = append(groups, maskGroup{unchanged: r.unchanged, moved: r.movedFrom != nil})
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
		staged := int32(mask)
		if r.op == opDelete && r.movedAway {
			staged = movedMask
		}
		commit, lsn := &versions[2*i], &versions[2*i+1]
		*commit, *lsn = pgtype.Int8{Int64: r.version.CommitLSN, Valid: true}, pgtype.Int8{Int64: r.version.LSN, Valid: true}
		vals[0], vals[1], vals[2], vals[3] = byte(op), staged, commit, lsn
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
// staging table's name covers its columns, so it is key enough. Up to 7 a
// staging table (valuesChunks), for as many tables as the applier keeps
// statements of.
var stageValuesTexts = struct {
	sync.Mutex
	*lru[stageValuesKey, string]
}{lru: newLRU[stageValuesKey, string](7 * statementSets)}

type stageValuesKey struct {
	stage string
	rows  int
}

func cachedStageValues(stage string, cols []string, n int) string {
	key := stageValuesKey{stage, n}
	stageValuesTexts.Lock()
	defer stageValuesTexts.Unlock()
	if sql, ok := stageValuesTexts.get(key); ok {
		return sql
	}
	sql := stageValues(stage, cols, n)
	stageValuesTexts.put(key, sql)
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
// truncating a file costs more than the rest of a small transaction.
// DELETE leaves dead rows that PostgreSQL prunes from a temporary table's
// pages as the next stages scan them; the periodic TRUNCATE bounds the
// line pointers and pages pruning cannot give back.
func (x *txn) unstage(stage string, staged int) {
	pg := x.conn.PgConn()
	key := stageRowsKey(stage)
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

// stageRowsKey is where a connection counts the rows staged into a staging
// table (its quoted name) since its last TRUNCATE.
func stageRowsKey(stage string) string { return stage + " rows since truncate" }

// truncateStageRows is how many rows a connection stages into a table
// between two TRUNCATEs of it: a batch of that many is truncated at once.
const truncateStageRows = 4096
