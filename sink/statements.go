package sink

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// Bookkeeping columns of the staging table. Their names contain a dot, so no
// target column can collide with them unnoticed (Validate rejects it).
const (
	stageOp     = "pgsink.op"
	stageMask   = "pgsink.mask"
	stageCommit = "pgsink.commit"
	stageLSN    = "pgsink.lsn"
)

// statements are the SQL texts for one table, built once; every identifier
// is quoted with pgx's sanitizer and every value is a bound parameter (I8).
type statements struct {
	stageName   string   // the staging table, a session's temporary table
	stage       string   // its quoted pg_temp name
	stageCols   []string // unquoted staging columns, in COPY order
	createStage string
	deleteHard  string
	deleteSoft  string
	tombstones  string
	// tombstonesNew writes the same tombstones without ON CONFLICT, for a
	// transaction that expects its deleted keys to have none yet (see
	// optimistic): the speculative insertion is a large share of the
	// ledger's time (docs/benchmarks.md).
	tombstonesNew string
	truncate      string
	truncateTS    string
	// unresolved counts the staged upserts of one mask group whose key the
	// target does not hold: their unchanged-TOAST columns have no stored
	// value to keep (see Stats.Unresolved).
	unresolved string
	insert     string // see buildInsert
	// insertCols are the target columns a fresh row fills, unquoted, in
	// COPY order (see copyFresh).
	insertCols []string
	// blockedFresh answers which of a batch's fresh rows a tombstone may
	// block (see buildBlockedFresh); freshKeyCols are the key columns it
	// takes, as arrays, by index into Table.Columns.
	blockedFresh string
	freshKeyCols []int
	ledger       string // quoted tombstones table
	movedLedger  string // quoted moved_rows table
	moves        moveStatements
	// lockTarget takes the lock a COPY into the target takes, early, so
	// that the table's definition read under it holds until the COPY (see
	// copyFresh and tableRevision).
	lockTarget string
	table      *Table
	// noGuard drops the version guard: test-only (Options.TestNoVersionGuard).
	noGuard bool
	// upserts caches upsert's texts by unchanged-column signature: every
	// batch asks for one, and partitions share the statements; updates and
	// missing do the same for update's and upsertMissing's.
	upserts, updates, missing sync.Map
	// pessimistic counts the batches left that write this table with
	// upserts only, after a plain INSERT met an existing key (see
	// optimistic).
	pessimistic atomic.Int32
}

// pessimisticBatches is how many batches of a table skip the plain INSERT
// after one met an existing key. Such keys come in runs (Debezium
// re-emitting after a restart, a new snapshot, a replay over a populated
// table), and each meeting costs a batch's transaction once more; a run that
// lasts costs one wasted transaction in this many.
const pessimisticBatches = 64

// optimistic tells whether the next batch may write its fresh rows with the
// plain INSERT, counting down a pause after a conflict.
func (st *statements) optimistic() bool {
	for {
		n := st.pessimistic.Load()
		if n <= 0 {
			return true
		}
		if st.pessimistic.CompareAndSwap(n, n-1) {
			return false
		}
	}
}

// conflicted starts a pause of the plain INSERT.
func (st *statements) conflicted() { st.pessimistic.Store(pessimisticBatches) }

func q(name string) string { return pgx.Identifier{name}.Sanitize() }

func newStatements(t *Table, schema string) *statements {
	return buildStatements(t, schema, false)
}

// buildStatements is newStatements, optionally without the version guard.
func buildStatements(t *Table, schema string, noGuard bool) *statements {
	h := fnv.New64a()
	h.Write([]byte(t.Ref()))
	// The columns are part of the name: after schema.evolve adds a column,
	// the table gets a new staging table rather than the session's old one.
	for _, c := range t.Columns {
		h.Write([]byte("\x00" + c.Name + "\x00" + c.Type))
	}
	name := fmt.Sprintf("pgsink_stage_%016x", h.Sum64())
	st := &statements{
		stageName:   name,
		stage:       pgx.Identifier{"pg_temp", name}.Sanitize(),
		ledger:      dedup.TombstonesTable(schema),
		movedLedger: dedup.MovedRowsTable(schema),
		table:       t,
		noGuard:     noGuard,
	}
	st.stageCols = []string{stageOp, stageMask, stageCommit, stageLSN}
	defs := []string{q(stageOp) + ` "char" NOT NULL`, q(stageMask) + " integer NOT NULL", q(stageCommit) + " bigint NOT NULL", q(stageLSN) + " bigint NOT NULL"}
	for _, c := range t.Columns {
		st.stageCols = append(st.stageCols, c.Name)
		defs = append(defs, q(c.Name)+" "+c.Type)
	}
	// It lives as long as the session, so each connection creates it
	// once; each transaction empties it before it commits (see unstage).
	st.createStage = "CREATE TEMP TABLE IF NOT EXISTS " + st.stage + " (\n    " + strings.Join(defs, ",\n    ") + "\n)"

	keyMatch := st.keyMatch("t", "s")
	older := st.olderThan("t", "s."+q(stageCommit), "s."+q(stageLSN))
	st.deleteHard = "DELETE FROM " + t.Ident() + " AS t\n USING " + st.stage + " AS s\n WHERE s." + q(stageOp) + " = 'd'\n   AND " + keyMatch + "\n   AND " + older
	if t.Deletes == DeleteSoft {
		st.deleteSoft = "UPDATE " + t.Ident() + " AS t\n   SET " + q(t.SoftDeleteColumn) + " = true, " + q(t.CommitColumn) + " = s." + q(stageCommit) + ", " + q(t.LSNColumn) + " = s." + q(stageLSN) +
			"\n  FROM " + st.stage + " AS s\n WHERE s." + q(stageOp) + " = 'd'\n   AND " + keyMatch + "\n   AND " + older
	}
	st.tombstonesNew = "INSERT INTO " + st.ledger + " AS tb (target, key, commit_lsn, lsn)\nSELECT $1, " + st.keyJSON("s") + ", s." + q(stageCommit) + ", s." + q(stageLSN) +
		"\n  FROM " + st.stage + " AS s\n WHERE s." + q(stageOp) + " = 'd'"
	st.tombstones = st.tombstonesNew + "\n" + tombstoneConflict
	st.unresolved = "SELECT count(*) FROM " + st.stage + " AS s\n WHERE s." + q(stageOp) + " = 'u' AND s." + q(stageMask) + " = $1\n   AND NOT EXISTS (SELECT FROM " + t.Ident() + " AS t WHERE " + keyMatch + ")"
	st.truncate = "DELETE FROM " + t.Ident() + " AS t\n WHERE " + st.olderThan("t", "$1", "$2")
	st.insert = st.buildInsert()
	for _, c := range t.Columns {
		st.insertCols = append(st.insertCols, c.Name)
	}
	st.insertCols = append(st.insertCols, t.CommitColumn, t.LSNColumn)
	if t.Deletes == DeleteSoft {
		st.insertCols = append(st.insertCols, t.SoftDeleteColumn)
	}
	st.blockedFresh, st.freshKeyCols = st.buildBlockedFresh()
	st.lockTarget = "LOCK TABLE " + t.Ident() + " IN ROW EXCLUSIVE MODE"
	st.buildMoves()
	st.truncateTS = "INSERT INTO " + st.ledger + " AS tb (target, key, commit_lsn, lsn)\nVALUES ($1, 'null'::jsonb, $2, $3)\n" + tombstoneConflict
	return st
}

const tombstoneConflict = "ON CONFLICT (target, key) DO UPDATE\n   SET commit_lsn = excluded.commit_lsn, lsn = excluded.lsn, deleted_at = now()\n WHERE (tb.commit_lsn, tb.lsn) < (excluded.commit_lsn, excluded.lsn)"

// keyMatch joins the target row to the staged row on every key column.
func (st *statements) keyMatch(t, s string) string {
	var parts []string
	for _, k := range st.table.Key {
		parts = append(parts, t+"."+q(k)+" = "+s+"."+q(k))
	}
	return strings.Join(parts, " AND ")
}

// keyJSON renders a staged row's key as the tombstone ledger stores it:
// PostgreSQL's own JSON rendering of the typed key values.
func (st *statements) keyJSON(s string) string {
	var parts []string
	for _, k := range st.table.Key {
		parts = append(parts, s+"."+q(k))
	}
	return "jsonb_build_array(" + strings.Join(parts, ", ") + ")"
}

// olderThan is the version guard (I3): the stored row's version is below the
// given one. A row written before pgsink managed the table has no version and
// counts as the oldest.
func (st *statements) olderThan(t, commit, lsn string) string {
	if st.noGuard {
		return "true"
	}
	return fmt.Sprintf("(coalesce(%s.%s, -1), coalesce(%s.%s, -1)) < (%s, %s)", t, q(st.table.CommitColumn), t, q(st.table.LSNColumn), commit, lsn)
}

// tableRevision names the current definition of the table whose quoted
// name is $1: its oid, and each column's number, type and catalog row
// version (xmin), which every ALTER of the column replaces.
const tableRevision = "SELECT a.attrelid::text || ':' || string_agg(a.attnum || '.' || a.atttypid || '.' || a.xmin, ',' ORDER BY a.attnum)\n" +
	"  FROM pg_catalog.pg_attribute AS a\n" +
	" WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped\n" +
	" GROUP BY a.attrelid"

// upsert builds the guarded upsert of the staged rows of one mask group:
// columns flagged in unchanged (TOAST placeholders) are neither inserted nor
// updated, so the stored value stays (I7). The tombstone ledger stops an
// event older than a delete or truncate of its key (I4).
func (st *statements) upsert(unchanged []bool) string {
	return cachedText(&st.upserts, unchanged, func() string { return st.buildUpsert(unchanged, false) })
}

// update builds the UPDATE that writes a large stage's upserts of one mask
// group (staged with mask $1) to the target rows that hold their keys at an
// older version, and counts them, leaving the count in the transaction's
// setting pgsink.updated for upsertMissing. See buildUpdate.
func (st *statements) update(unchanged []bool) string {
	return cachedText(&st.updates, unchanged, func() string { return st.buildUpdate(unchanged) })
}

// upsertMissing is the upsert of the same group ($1, the target's name $2)
// gated on the count of update: it runs only when fewer rows were updated
// than the group stages ($3), and writes, as the upsert would, those whose
// key the target lacks or holds without a version.
func (st *statements) upsertMissing(unchanged []bool) string {
	return cachedText(&st.missing, unchanged, func() string { return st.buildUpsert(unchanged, true) })
}

func cachedText(cache *sync.Map, unchanged []bool, build func() string) string {
	sig := maskSignature(unchanged)
	if sql, ok := cache.Load(sig); ok {
		return sql.(string)
	}
	sql := build()
	cache.Store(sig, sql)
	return sql
}

// updatedSetting carries update's count to upsertMissing within the
// transaction (set_config's is_local), where a second reading of the stage
// or of the target would cost a probe a row.
const updatedSetting = "pgsink.updated"

// buildUpdate is the common case of a large stage's upserts: their keys are
// stored, at an older version. UPDATE … FROM the stage writes them more
// cheaply than INSERT … ON CONFLICT DO UPDATE (docs/benchmarks.md): it skips
// the speculative insertion's probe and the tombstone test, which a stored row
// does not need: a delete removes every older row of its key and a create
// older than the delete is refused, so a stored row is newer than its
// key's tombstone, and a staged row newer than the stored one is too.
// Rows the stored version is not older than, and rows stored without a
// version (the comparison is NULL), are left to upsertMissing, which
// applies the upsert's whole test. It must run with nested loops only (see
// nestedLoops): the stage has no statistics.
func (st *statements) buildUpdate(unchanged []bool) string {
	t := st.table
	sets := st.assignments(unchanged, func(_, staged string) string { return "s." + q(staged) })
	guard := "(t." + q(t.CommitColumn) + ", t." + q(t.LSNColumn) + ") < (s." + q(stageCommit) + ", s." + q(stageLSN) + ")"
	if st.noGuard {
		guard = "true"
	}
	return "WITH updated AS (\n" +
		"UPDATE " + t.Ident() + " AS t\n" +
		"   SET " + strings.Join(sets, ", ") + "\n" +
		"  FROM " + st.stage + " AS s\n" +
		" WHERE s." + q(stageOp) + " = 'u' AND s." + q(stageMask) + " = $1\n" +
		"   AND " + st.keyMatch("t", "s") + "\n" +
		"   AND " + guard + "\n" +
		"RETURNING 1)\n" +
		"SELECT count(*), set_config('" + updatedSetting + "', count(*)::text, true) FROM updated"
}

// writtenColumns lists what an upsert or insert writes: the target columns
// not flagged unchanged, then the version columns (and the soft-delete
// marker, cleared); selects are the matching staged expressions and sets
// the upsert's assignments of the non-key ones.
func (st *statements) writtenColumns(unchanged []bool) (cols, selects, sets []string) {
	t := st.table
	for c, col := range t.Columns {
		if unchanged[c] {
			continue
		}
		cols = append(cols, q(col.Name))
		selects = append(selects, "s."+q(col.Name))
	}
	cols = append(cols, q(t.CommitColumn), q(t.LSNColumn))
	selects = append(selects, "s."+q(stageCommit), "s."+q(stageLSN))
	if t.Deletes == DeleteSoft {
		cols = append(cols, q(t.SoftDeleteColumn))
		selects = append(selects, "false")
	}
	sets = st.assignments(unchanged, func(target, _ string) string { return "excluded." + q(target) })
	return cols, selects, sets
}

// assignments are the SET items that write a row over a stored one: the
// non-key columns not flagged unchanged, the version columns and the
// soft-delete marker, cleared. value renders a target column's new value
// from its name and the name of the staging column that holds it.
func (st *statements) assignments(unchanged []bool, value func(target, staged string) string) []string {
	t := st.table
	var sets []string
	for c, col := range t.Columns {
		if !unchanged[c] && !t.isKey(col.Name) {
			sets = append(sets, q(col.Name)+" = "+value(col.Name, col.Name))
		}
	}
	sets = append(sets, q(t.CommitColumn)+" = "+value(t.CommitColumn, stageCommit), q(t.LSNColumn)+" = "+value(t.LSNColumn, stageLSN))
	if t.Deletes == DeleteSoft {
		sets = append(sets, q(t.SoftDeleteColumn)+" = false")
	}
	return sets
}

// tombstoneCTEs are the statement-wide reads the tombstone test uses (see
// notTombstoned). newest is the newest tombstone of all targets. When
// target (the parameter holding the table's ledger name) is given, so are
// truncated, the table's truncate tombstone if it has one, and recent, the
// tombstone keys of the window the statement's rows fall in: rows is a
// query of the oldest commit LSN (oldest) and the number (n, see
// testedCount) of the rows the statement tests, and recent holds the keys
// of the tombstones at least that new, of any target, oldest first, up to
// recentTombstones. MATERIALIZED keeps PostgreSQL from inlining any of them
// per row; none is read unless a row is older than newest.
func (st *statements) tombstoneCTEs(target, rows string) string {
	ctes := "WITH newest AS MATERIALIZED (\n" +
		"    " + atLeastOne("SELECT tb.commit_lsn, tb.lsn FROM "+st.ledger+" AS tb\n"+
		"     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1") + ")"
	if target != "" {
		ctes += ",\n" +
			"truncated AS MATERIALIZED (\n" +
			"    " + atLeastOne("SELECT tb.commit_lsn, tb.lsn FROM "+st.ledger+" AS tb\n"+
			"     WHERE tb.target = "+target+" AND tb.key = 'null'::jsonb") + "),\n" +
			"tested AS MATERIALIZED (\n" +
			"    " + rows + "),\n" +
			"recent AS MATERIALIZED (\n" +
			"    SELECT tb.key FROM " + st.ledger + " AS tb\n" +
			"     WHERE tb.commit_lsn >= (SELECT oldest FROM tested)\n" +
			"     ORDER BY tb.commit_lsn, tb.lsn LIMIT " + strconv.Itoa(recentTombstones) + ")"
	}
	return ctes + "\n"
}

// atLeastOne wraps a query of at most one version (commit_lsn, lsn) so that
// it returns exactly one row, the lowest bigints when the query has none.
// A row compared with it is then an uncorrelated row comparison, which
// PostgreSQL evaluates once per statement (an InitPlan), where "> ALL" of
// the query was a subplan run again for every row, several times dearer
// (docs/benchmarks.md). The lowest version is as good as no tombstone: a staged
// version equal to it is only sent on to the probe, which finds nothing.
func atLeastOne(query string) string {
	return "SELECT coalesce(v.commit_lsn, " + lowestVersion + ") AS commit_lsn, coalesce(v.lsn, " + lowestVersion + ") AS lsn\n" +
		"      FROM (SELECT) AS one LEFT JOIN LATERAL (" + query + ") AS v ON true"
}

const lowestVersion = "'-9223372036854775808'::bigint"

// notTombstoned is true for a staged row that no tombstone of its key, nor
// of a truncate of its table, is as new as (I4); target is the parameter
// holding the table's ledger name, and the statement must start with
// tombstoneCTEs(target, ...).
//
// The CTEs are read once per statement in the statement's own snapshot, so
// the test is no weaker than a per-row probe of the ledger. A row newer
// than newest cannot be blocked by any tombstone: in a forward-moving
// stream with one partition per table that is nearly every row. The rows
// older than it are many when partitions or tables interleave their
// deletes in the shared ledger (a partition whose batch lags another's
// deletes has every row older). For those, the truncate is compared with
// the statement-wide row, and the key with recent: a tombstone that blocks
// a row is at least as new as the row, so it is in recent when recent is
// complete: when fewer than n of its keys are read, which is checked by
// reading at most n, so that a long window (a replay) costs no more than
// the probes it spares. Only a row whose key is in recent, or every row
// when recent is not complete, probes the ledger's (target, key) index.
// Each probe compares jsonb keys down a btree, dear for every row it is
// paid on; testing by recent spares it to every row whose key has no recent
// tombstone (docs/benchmarks.md).
// The probe compares keys with plain equality, not key
// IN (k, null): without statistics for a new target the planner would
// rather scan all the target's tombstones per row than descend the index
// twice. Its version test is written NOT (... < ...) so that the version
// index cannot serve it: only the (target, key) key does.
func (st *statements) notTombstoned(target string) string {
	version := "(s." + q(stageCommit) + ", s." + q(stageLSN) + ")"
	return "(" + version + " > (SELECT commit_lsn, lsn FROM newest)\n" +
		"        OR (" + version + " > (SELECT commit_lsn, lsn FROM truncated)\n" +
		"            AND (((SELECT count(*) FROM (SELECT FROM recent LIMIT (SELECT n FROM tested)) AS w) < (SELECT n FROM tested)\n" +
		"                  AND " + st.keyJSON("s") + " NOT IN (SELECT key FROM recent))\n" +
		"                 OR NOT EXISTS (SELECT FROM " + st.ledger + " AS tb\n" +
		"                                WHERE tb.target = " + target + " AND tb.key = " + st.keyJSON("s") + "\n" +
		"                                  AND NOT (tb.commit_lsn, tb.lsn) < " + version + "))))"
}

// recentTombstones caps the keys recent holds. A constant LIMIT keeps the
// planner's estimate of recent small enough to hash it (2,048 keys are
// about 150 kB, under twice the smallest work_mem); a LIMIT of a subquery
// would be estimated at a tenth of the ledger, and a NOT IN the planner
// does not hash compares every key of recent with every row.
const recentTombstones = 2048

// testedCount is the n of tombstoneCTEs' rows query: the number of rows
// (count(*) over them), at most recentTombstones. recent is complete when fewer than n of its
// keys are read: it then holds all of the window, and reading it costs
// fewer steps than the probes it replaces.
func testedCount() string {
	return "least(count(*), " + strconv.Itoa(recentTombstones) + ")"
}

// testedRows is the query tombstoneCTEs takes for rows of the stage.
func (st *statements) testedRows(where string) string {
	return "SELECT min(s." + q(stageCommit) + ") AS oldest, " + testedCount() + " AS n FROM " + st.stage + " AS s WHERE " + where
}

// buildUpsert builds upsert, or with gated upsertMissing: the same
// statement with a test PostgreSQL evaluates once (a one-time filter), so
// that it reads nothing when update wrote every row.
func (st *statements) buildUpsert(unchanged []bool, gated bool) string {
	t := st.table
	insertCols, selectCols, sets := st.writtenColumns(unchanged)
	var keyRefs []string
	for _, k := range t.Key {
		keyRefs = append(keyRefs, q(k))
	}
	rows := "s." + q(stageOp) + " = 'u' AND s." + q(stageMask) + " = $1"
	from := st.stage + " AS s\n WHERE " + rows
	if gated {
		// The rows the target holds at their staged version or newer
		// (updated by update, or stale) are left out before the tombstone
		// test, which PostgreSQL would otherwise run first on every row
		// (OFFSET 0 keeps it outside). A row stored since update ran, by
		// a transaction writing the same key, is older than the staged
		// one or left out: the upsert's guard decides, as always.
		from = "(SELECT * FROM " + st.stage + " AS s\n" +
			"         WHERE " + rows + "\n" +
			"           AND coalesce(current_setting('" + updatedSetting + "', true)::bigint, -1) < $3\n" +
			"           AND NOT EXISTS (SELECT FROM " + t.Ident() + " AS t WHERE " + st.keyMatch("t", "s") + "\n" +
			"                              AND NOT " + st.olderThan("t", "s."+q(stageCommit), "s."+q(stageLSN)) + ")\n" +
			"        OFFSET 0) AS s\n WHERE true"
	}
	return st.tombstoneCTEs("$2", st.testedRows(rows)) +
		"INSERT INTO " + t.Ident() + " AS t (" + strings.Join(insertCols, ", ") + ")\n" +
		"SELECT " + strings.Join(selectCols, ", ") + "\n" +
		"  FROM " + from + "\n" +
		"   AND " + st.notTombstoned("$2") + "\n" +
		"ON CONFLICT (" + strings.Join(keyRefs, ", ") + ") DO UPDATE\n" +
		"   SET " + strings.Join(sets, ", ") + "\n" +
		" WHERE " + st.olderThan("t", "excluded."+q(t.CommitColumn), "excluded."+q(t.LSNColumn))
}

// arrayKeyTypes are the key column types whose values blockedFresh takes
// as arrays: pgx encodes the decoder's values for them element by element
// as it does for COPY. A key of another type is not probed per key.
var arrayKeyTypes = map[string]bool{"smallint": true, "integer": true, "bigint": true, "text": true, "uuid": true}

func arrayKeyType(typ string) bool {
	return arrayKeyTypes[typ] || strings.HasPrefix(typ, "character varying") || strings.HasPrefix(typ, "character(")
}

// buildBlockedFresh returns the query that lists, by ordinality, the fresh
// rows (given as the target's name $1, arrays of versions $2 and $3, and
// of key values from $4 on) that the tombstone test would refuse or might:
// the staged INSERT's own test (notTombstoned) on the same values, so that
// it passes exactly the rows the INSERT would. When a key column's type is
// not one arrays are sent for, the query takes the versions alone ($1, $2)
// and every row not newer than the newest tombstone counts as blocked,
// which only sends more rows through the stage.
func (st *statements) buildBlockedFresh() (string, []int) {
	t := st.table
	types := []string{"bigint[]", "bigint[]"}
	aliases := []string{q(stageCommit), q(stageLSN)}
	var keyCols []int
	perKey := true
	for _, k := range t.Key {
		for c, col := range t.Columns {
			if col.Name != k {
				continue
			}
			if !arrayKeyType(col.Type) {
				perKey = false
			}
			keyCols = append(keyCols, c)
			types = append(types, col.Type+"[]")
			aliases = append(aliases, q(col.Name))
		}
	}
	if !perKey {
		types, aliases, keyCols = types[:2], aliases[:2], nil
	}
	// $1 is the target's name, for the per-key probe only.
	first := 2
	if !perKey {
		first = 1
	}
	var params []string
	for i, typ := range types {
		params = append(params, "$"+strconv.Itoa(i+first)+"::"+typ)
	}
	var ctes, test string
	if perKey {
		ctes = st.tombstoneCTEs("$1", "SELECT min(c) AS oldest, "+testedCount()+" AS n FROM unnest($2::bigint[]) AS c")
		test = st.notTombstoned("$1")
	} else {
		ctes = st.tombstoneCTEs("", "")
		test = "(s." + q(stageCommit) + ", s." + q(stageLSN) + ") > (SELECT commit_lsn, lsn FROM newest)"
	}
	return ctes +
		"SELECT s.i FROM unnest(" + strings.Join(params, ", ") + ") WITH ORDINALITY AS s(" + strings.Join(aliases, ", ") + ", i)\n" +
		" WHERE NOT " + test, keyCols
}

// buildInsert is the plain INSERT of the staged rows expected to create
// their key (op 'i', every column carried). Without ON CONFLICT it skips
// the speculative insertion an upsert pays per row: an index probe before
// the heap insert and a confirmation record after (measured in
// docs/benchmarks.md). A key that exists after
// all fails the statement with a unique violation; the transaction is then
// applied again with upserts only (see Applier.applyOnce). The tombstone
// test is the upsert's: a create older than a delete of its key must not
// bring the row back (I4).
func (st *statements) buildInsert() string {
	cols, selects, _ := st.writtenColumns(make([]bool, len(st.table.Columns)))
	rows := "s." + q(stageOp) + " = 'i'"
	return st.tombstoneCTEs("$1", st.testedRows(rows)) +
		"INSERT INTO " + st.table.Ident() + " (" + strings.Join(cols, ", ") + ")\n" +
		"SELECT " + strings.Join(selects, ", ") + "\n" +
		"  FROM " + st.stage + " AS s\n" +
		" WHERE " + rows + "\n" +
		"   AND " + st.notTombstoned("$1")
}
