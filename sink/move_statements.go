package sink

import (
	"strconv"
	"strings"
	"sync"
)

// Key moves that Debezium sends as a delete of the old key and a create of
// the new one can be applied in either order, in different transactions:
// the two halves are on the partitions of their keys. Under REPLICA
// IDENTITY DEFAULT the create carries a placeholder for each unchanged
// TOASTed column; the value is the old key's row's. The moved_rows ledger
// (dedup) joins the halves on (old key, version), which both carry:
//
//   - the delete, before it deletes, keeps the old row in the ledger
//     (keepMoved) and fills the columns a create applied before it left
//     waiting (resolveMoved): the old row is exact then, every change of the
//     old key before the move being applied in its partition's order;
//   - the create, after its upsert, fills its unchanged columns from the
//     kept row, or from the old key's row in the target when the delete has
//     not come yet, and notes the columns it left to the delete (takeMoved).

// moveStatements are the statements of one table's key moves.
type moveStatements struct {
	keepMoved string
	// resolveMoved takes the target's name and then the names of the
	// non-key columns (resolveNames), bound, to test each against the
	// ledger's awaiting list; empty when the table has no non-key column.
	resolveMoved string
	resolveNames []any
	takes        sync.Map // takeMoved's texts by unchanged-column signature
}

// movedMask marks a staged delete as the old key of a move (row.movedAway);
// other deletes are staged with mask 0. The delete statements take every
// staged delete, whatever its mask.
const movedMask = 1

func (st *statements) buildMoves() {
	t, ledger := st.table, st.movedLedger
	st.moves.keepMoved = "INSERT INTO " + ledger + " AS m (target, key, commit_lsn, lsn, kept)\n" +
		"SELECT $1, " + st.keyJSON("s") + ", s." + q(stageCommit) + ", s." + q(stageLSN) + ", to_jsonb(t)\n" +
		"  FROM " + st.stage + " AS s\n" +
		"  LEFT JOIN " + t.Ident() + " AS t ON " + st.keyMatch("t", "s") + "\n" +
		"   AND " + st.olderThan("t", "s."+q(stageCommit), "s."+q(stageLSN)) + "\n" +
		" WHERE s." + q(stageOp) + " = 'd' AND s." + q(stageMask) + " = " + strconv.Itoa(movedMask) + "\n" +
		"ON CONFLICT (target, key, commit_lsn, lsn) DO UPDATE SET kept = coalesce(excluded.kept, m.kept)\n" +
		"RETURNING m.kept IS NULL AND m.awaiting IS NOT NULL"
	var sets []string
	var names []any
	for _, col := range t.Columns {
		if t.isKey(col.Name) {
			continue
		}
		names = append(names, col.Name)
		name := "$" + strconv.Itoa(len(names)+1) + "::text"
		sets = append(sets, q(col.Name)+" = CASE WHEN "+name+" = ANY (c.cols)\n"+
			"                AND coalesce(to_jsonb(n."+q(col.Name)+"), 'null') = coalesce(c.copied -> "+name+", 'null')\n"+
			"           THEN k."+q(col.Name)+" ELSE n."+q(col.Name)+" END")
	}
	if len(sets) == 0 {
		return
	}
	newKey := st.newKeyMatch("c")
	keptVersionOf := func(entry string) string {
		return "(jsonb_populate_record(NULL::" + t.Ident() + ", " + entry + ".kept))."
	}
	keptVersion := keptVersionOf("m")
	st.moves.resolveNames = names
	// chain follows each move whose delete is staged (its kept row exact)
	// to the moves onward from its new key that kept the new row while it
	// still held a copied value (kept at or after the version the create
	// wrote, and still holding what was copied: a value of the new key's
	// own, written before it moved on, is no copy and stops the chain for
	// that column): in each, the columns copied are corrected in kept
	// (kept_cols) and in the row the move wrote, as far as its create
	// copied them too (cols). What a correction writes into a row becomes that move's
	// copied value (ledger_fixed): a later correction down the chain,
	// from a delete further back, must recognise it as a copy, not as a
	// value an event wrote (the last create of a chain applied first
	// copies nothing, and its row is filled by the next delete); once
	// that row is gone, moved on, the row its delete kept stands for it,
	// corrected in the same statement (kept_cols of the next chain row).
	// When
	// deletes of several moves of one chain are staged together, a move
	// is reached from each of them; fixes keeps the correction from
	// furthest back (the deepest): the rows the nearer deletes kept held
	// copies that this correction replaces, and an UPDATE joined to two
	// rows would take either.
	st.moves.resolveMoved = "WITH RECURSIVE chain (key, commit_lsn, lsn, new_key, new_commit_lsn, new_lsn, kept_cols, kept_copied, cols, copied, source, depth) AS (\n" +
		"    SELECT m.key, m.commit_lsn, m.lsn, m.new_key, m.new_commit_lsn, m.new_lsn, NULL::text[], NULL::jsonb, m.awaiting, m.copied, m.kept, 0\n" +
		"      FROM " + st.stage + " AS s\n" +
		"      JOIN " + ledger + " AS m ON m.target = $1 AND m.key = " + st.keyJSON("s") + "\n" +
		"       AND m.commit_lsn = s." + q(stageCommit) + " AND m.lsn = s." + q(stageLSN) + "\n" +
		"     WHERE s." + q(stageOp) + " = 'd' AND s." + q(stageMask) + " = " + strconv.Itoa(movedMask) + "\n" +
		"       AND m.kept IS NOT NULL AND m.awaiting IS NOT NULL\n" +
		"    UNION ALL\n" +
		"    SELECT m.key, m.commit_lsn, m.lsn, m.new_key, m.new_commit_lsn, m.new_lsn, c.cols, c.copied,\n" +
		"           ARRAY(SELECT a FROM unnest(c.cols) AS a\n" +
		"                  WHERE a = ANY (coalesce(m.awaiting, '{}'))\n" +
		"                    AND coalesce(m.kept -> a, 'null') = coalesce(c.copied -> a, 'null')), m.copied, c.source, c.depth + 1\n" +
		"      FROM chain AS c\n" +
		"      JOIN " + ledger + " AS m ON m.target = $1 AND m.key = c.new_key\n" +
		"       AND (" + keptVersion + q(t.CommitColumn) + ", " + keptVersion + q(t.LSNColumn) + ") >= (c.new_commit_lsn, c.new_lsn)\n" +
		"     WHERE cardinality(c.cols) > 0),\n" +
		"fixes AS (\n" +
		"    SELECT DISTINCT ON (key, commit_lsn, lsn) * FROM chain ORDER BY key, commit_lsn, lsn, depth DESC),\n" +
		"ledger_fixed AS (\n" +
		"    UPDATE " + ledger + " AS m\n" +
		"       SET kept = CASE WHEN cardinality(c.kept_cols) > 0\n" +
		"                  THEN m.kept || " + sourceWhereStill("c.kept_cols", "m.kept", "c.kept_copied") + "\n" +
		"                  ELSE m.kept END,\n" +
		"           copied = coalesce(m.copied, '{}') || " + sourceWhereStill("c.cols", "r.cur", "c.copied") + "\n" +
		"      FROM fixes AS c\n" +
		"      LEFT JOIN LATERAL (SELECT coalesce(\n" +
		"                          (SELECT to_jsonb(n) FROM " + t.Ident() + " AS n\n" +
		"                            WHERE " + strings.Join(newKey, " AND ") + "\n" +
		"                              AND (n." + q(t.CommitColumn) + ", n." + q(t.LSNColumn) + ") >= (c.new_commit_lsn, c.new_lsn)),\n" +
		"                          (SELECT k.kept FROM " + ledger + " AS k\n" +
		"                            WHERE k.target = $1 AND k.key = c.new_key\n" +
		"                              AND (" + keptVersionOf("k") + q(t.CommitColumn) + ", " + keptVersionOf("k") + q(t.LSNColumn) + ") >= (c.new_commit_lsn, c.new_lsn)\n" +
		"                            ORDER BY k.commit_lsn, k.lsn LIMIT 1)) AS cur) AS r ON true\n" +
		"     WHERE (cardinality(c.kept_cols) > 0 OR (cardinality(c.cols) > 0 AND r.cur IS NOT NULL))\n" +
		"       AND m.target = $1 AND m.key = c.key AND m.commit_lsn = c.commit_lsn AND m.lsn = c.lsn\n" +
		"    RETURNING 1)\n" +
		"UPDATE " + t.Ident() + " AS n\n" +
		"   SET " + strings.Join(sets, ",\n       ") + "\n" +
		"  FROM fixes AS c\n" +
		" CROSS JOIN LATERAL jsonb_populate_record(NULL::" + t.Ident() + ", c.source) AS k\n" +
		" WHERE cardinality(c.cols) > 0\n" +
		"   AND " + strings.Join(newKey, " AND ") + "\n" +
		"   AND (n." + q(t.CommitColumn) + ", n." + q(t.LSNColumn) + ") >= (c.new_commit_lsn, c.new_lsn)"
}

// newKeyMatch matches the target row n with the new key a ledger entry
// (its alias) holds.
func (st *statements) newKeyMatch(entry string) []string {
	t := st.table
	var match []string
	for i, c := range t.keyColumns() {
		col := t.Columns[c]
		match = append(match, "n."+q(col.Name)+" = ("+entry+".new_key ->> "+strconv.Itoa(i)+")::"+col.Type)
	}
	return match
}

// takeMoved is the statement that fills, after its upsert, the columns a
// moved row's create left unchanged (flagged in unchanged): from the old
// key's row the delete kept, or else from the old key's row in the target
// at a version older than the move; and notes the move in the ledger for a
// delete applied later. Parameters: the target's name; the old key's
// values; the move's version; the new key's values; the version the new
// row was staged at; the unchanged columns' names. It returns whether a
// value was found and whether the delete had come. A create noted already
// (sent again by Debezium) notes again only when it filled its row: one
// whose row has moved on since filled nothing, and overwriting the copy
// recorded would hide from the delete what the row really holds.
func (st *statements) takeMoved(unchanged []bool) string {
	return cachedText(&st.moves.takes, unchanged, func() string { return st.buildTakeMoved(unchanged) })
}

func (st *statements) buildTakeMoved(unchanged []bool) string {
	t := st.table
	keys := t.keyColumns()
	p := 1
	param := func(typ string) string {
		p++
		return "$" + strconv.Itoa(p) + "::" + typ
	}
	// keyParams takes the next parameters for the key's values and
	// matches the row alias's key columns with them.
	keyParams := func(alias string) (values, matches []string) {
		for _, c := range keys {
			col := t.Columns[c]
			v := param(col.Type)
			values = append(values, v)
			matches = append(matches, alias+"."+q(col.Name)+" = "+v)
		}
		return values, matches
	}
	oldKey, oldMatch := keyParams("o")
	moveCommit, moveLSN := param("bigint"), param("bigint")
	newKey, newMatch := keyParams("n")
	rowCommit, rowLSN := param("bigint"), param("bigint")
	awaiting := param("text[]")
	var sets []string
	for c, col := range t.Columns {
		if unchanged[c] {
			sets = append(sets, q(col.Name)+" = k."+q(col.Name))
		}
	}
	ledgerKey := "jsonb_build_array(" + strings.Join(oldKey, ", ") + ")"
	return "WITH moved AS MATERIALIZED (\n" +
		"    SELECT m.kept, m.new_key FROM " + st.movedLedger + " AS m\n" +
		"     WHERE m.target = $1 AND m.key = " + ledgerKey + " AND m.commit_lsn = " + moveCommit + " AND m.lsn = " + moveLSN + "),\n" +
		"source AS MATERIALIZED (\n" +
		"    SELECT coalesce((SELECT kept FROM moved),\n" +
		"                    (SELECT to_jsonb(o) FROM " + t.Ident() + " AS o\n" +
		"                      WHERE " + strings.Join(oldMatch, " AND ") + "\n" +
		"                        AND " + st.olderThan("o", moveCommit, moveLSN) + ")) AS kept),\n" +
		"filled AS (\n" +
		"    UPDATE " + t.Ident() + " AS n\n" +
		"       SET " + strings.Join(sets, ", ") + "\n" +
		"      FROM source CROSS JOIN LATERAL jsonb_populate_record(NULL::" + t.Ident() + ", source.kept) AS k\n" +
		"     WHERE source.kept IS NOT NULL AND " + strings.Join(newMatch, " AND ") + "\n" +
		"       AND n." + q(t.CommitColumn) + " = " + rowCommit + " AND n." + q(t.LSNColumn) + " = " + rowLSN + "\n" +
		"    RETURNING 1),\n" +
		"noted AS (\n" +
		"    INSERT INTO " + st.movedLedger + " AS m (target, key, commit_lsn, lsn, new_key, new_commit_lsn, new_lsn, awaiting, copied)\n" +
		"    SELECT $1, " + ledgerKey + ", " + moveCommit + ", " + moveLSN + ", jsonb_build_array(" + strings.Join(newKey, ", ") + "), " + rowCommit + ", " + rowLSN + ", " + awaiting + ",\n" +
		"           (SELECT jsonb_object_agg(a, source.kept -> a) FROM unnest(" + awaiting + ") AS a)\n" +
		"      FROM source\n" +
		"     WHERE NOT EXISTS (SELECT FROM moved WHERE new_key IS NOT NULL) OR EXISTS (SELECT FROM filled)\n" +
		"    ON CONFLICT (target, key, commit_lsn, lsn) DO UPDATE\n" +
		"       SET new_key = excluded.new_key, new_commit_lsn = excluded.new_commit_lsn, new_lsn = excluded.new_lsn,\n" +
		"           awaiting = excluded.awaiting, copied = excluded.copied\n" +
		"    RETURNING 1)\n" +
		"SELECT (SELECT kept IS NOT NULL FROM source), EXISTS (SELECT FROM moved), (SELECT count(*) FROM filled), (SELECT count(*) FROM noted)"
}

// takeMovedArgs are takeMoved's parameters for row r of the table.
func (st *statements) takeMovedArgs(r *row) []any {
	t := st.table
	src := r.movedFrom
	args := []any{t.Ref()}
	args = append(args, src.key...)
	args = append(args, src.version.CommitLSN, src.version.LSN)
	var names []string
	for _, c := range t.keyColumns() {
		args = append(args, r.values[c])
	}
	for c, col := range t.Columns {
		if r.unchanged[c] {
			names = append(names, col.Name)
		}
	}
	return append(args, r.version.CommitLSN, r.version.LSN, names)
}

// sourceWhereStill is the SQL of a jsonb object holding the correction's
// source value of each column in cols whose value in row is still what the
// move copied: a column the row has since had a value of its own for is
// left out. The three arguments are SQL expressions of the statement.
func sourceWhereStill(cols, row, copied string) string {
	return "coalesce((SELECT jsonb_object_agg(a, c.source -> a) FROM unnest(" + cols + ") AS a\n" +
		"                                           WHERE coalesce(" + row + " -> a, 'null') = coalesce(" + copied + " -> a, 'null')), '{}')"
}
