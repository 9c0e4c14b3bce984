package verify

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// side is one of the two servers: the same statement shapes over the
// source's or the target's names. Every row is hashed over the text form
// PostgreSQL itself renders (ROW(...)::text, under the session settings of
// sessionParams), so equal values hash equal on both servers.
type side struct {
	table   string   // quoted, schema-qualified
	key     []string // quoted key columns, in key order
	columns []string // quoted compared columns, in source order
	// live keeps the rows that stand for source rows: with deletes: soft,
	// not those marked deleted. Empty: every row.
	live string
}

func sourceSide(t *Table) side {
	return newSide(t.Source.Schema, t.Source.Name, t.Key, t.Columns, func(c Column) string { return c.Source })
}

func targetSide(t *Table) side {
	s := newSide(t.Target.Schema, t.Target.Name, t.Key, t.Columns, func(c Column) string { return c.Target })
	if t.SoftDeleteColumn != "" {
		s.live = "NOT coalesce(" + pgx.Identifier{t.SoftDeleteColumn}.Sanitize() + ", false)"
	}
	return s
}

// andLive adds the live-row condition to where.
func (s side) andLive(where string) string {
	if s.live == "" {
		return where
	}
	return where + " AND " + s.live
}

func newSide(schema, name string, key, cols []Column, pick func(Column) string) side {
	s := side{table: pgx.Identifier{schema, name}.Sanitize()}
	for _, c := range key {
		s.key = append(s.key, pgx.Identifier{pick(c)}.Sanitize())
	}
	for _, c := range cols {
		s.columns = append(s.columns, pgx.Identifier{pick(c)}.Sanitize())
	}
	return s
}

// sessionParams fix every setting that changes a value's text form.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
}

func (s side) rowText() string  { return "ROW(" + strings.Join(s.columns, ", ") + ")::text" }
func (s side) keyText() string  { return "ROW(" + strings.Join(s.key, ", ") + ")::text" }
func (s side) keyList() string  { return strings.Join(s.key, ", ") }
func (s side) keyTuple() string { return "(" + s.keyList() + ")" }

// params returns "($first, ..., $first+n-1)".
func params(first, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", first+i)
	}
	return "(" + strings.Join(p, ", ") + ")"
}

// after is the lower bound of a chunk (exclusive), or none for the first.
func (s side) after(bounded bool, first int) string {
	if !bounded {
		return "true"
	}
	return s.keyTuple() + " > " + params(first, len(s.key))
}

// between is a chunk's key range: after the lower bound ($1...), when
// there is one, and up to the upper bound (the parameters after it).
func (s side) between(lower, upper bool) string {
	n := len(s.key)
	where := s.after(lower, 1)
	if upper {
		first := 1
		if lower {
			first += n
		}
		where += " AND " + s.keyTuple() + " <= " + params(first, n)
	}
	return s.andLive(where)
}

// sourceChunk hashes the next chunk of at most $1 rows after the bound
// ($2...) and returns its row count, its hash and its last key.
func (s side) sourceChunk(bounded bool) string {
	desc := make([]string, len(s.key))
	for i, k := range s.key {
		desc[i] = k + " DESC"
	}
	return fmt.Sprintf(`WITH c AS MATERIALIZED (SELECT %[1]s, %[2]s AS r FROM %[3]s WHERE %[4]s ORDER BY %[1]s LIMIT $1)
SELECT (SELECT count(*) FROM c), (SELECT md5(string_agg(r, E'\n' ORDER BY %[1]s)) FROM c), l.*
  FROM (SELECT %[1]s FROM c ORDER BY %[5]s LIMIT 1) l`,
		s.keyList(), s.rowText(), s.table, s.after(bounded, 2), strings.Join(desc, ", "))
}

// targetChunk hashes the rows after the lower bound and up to the upper
// one (none: to the end), the same way sourceChunk does.
func (s side) targetChunk(lower, upper bool) string {
	where := s.between(lower, upper)
	return fmt.Sprintf(`SELECT count(*), md5(string_agg(r, E'\n' ORDER BY %[1]s)) FROM (SELECT %[1]s, %[2]s AS r FROM %[3]s WHERE %[4]s) c`,
		s.keyList(), s.rowText(), s.table, where)
}

// rangeRows lists a chunk's rows as key text, row hash and key values.
func (s side) rangeRows(lower, upper bool) string {
	where := s.between(lower, upper)
	return fmt.Sprintf(`SELECT %s, md5(%s), %s FROM %s WHERE %s`, s.keyText(), s.rowText(), s.keyList(), s.table, where)
}

// rowsByKey reads whole rows, every compared column as text, of count keys
// bound as key values ($1... in key order, key after key). With version,
// the target's commit LSN column follows.
func (s side) rowsByKey(count int, version string) string {
	n := len(s.key)
	tuples := make([]string, count)
	for i := range tuples {
		tuples[i] = params(1+i*n, n)
	}
	cols := make([]string, len(s.columns))
	for i, c := range s.columns {
		cols[i] = c + "::text"
	}
	extra := ""
	if version != "" {
		extra = ", " + pgx.Identifier{version}.Sanitize()
	}
	keyTexts := make([]string, n)
	for i, k := range s.key {
		keyTexts[i] = k + "::text"
	}
	return fmt.Sprintf(`SELECT %s, ARRAY[%s], ARRAY[%s]%s FROM %s WHERE %s`,
		s.keyText(), strings.Join(keyTexts, ", "), strings.Join(cols, ", "), extra, s.table,
		s.andLive(s.keyTuple()+" IN ("+strings.Join(tuples, ", ")+")"))
}
