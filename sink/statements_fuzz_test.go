package sink

import (
	"time"

	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// The statement fuzz targets check, for any names a configuration or a
// record can bring, that every statement pgsink builds is one statement and
// that input reaches it only as quoted identifiers: the statement equals,
// quoted identifiers aside, the one built from harmless names ("n00",
// "n01", ...) in the same order. ddl_integration_test.go sends the same
// statements, for the committed corpus, to PostgreSQL's parser.

// builderInput is one input of FuzzStatementBuilders: the names of a
// table, its columns and pgsink's schema, and flags choosing the shape.
type builderInput struct {
	Schema, Table, Key, Column, Soft, Commit, LSN, Own string
	Flags                                              uint8
}

// catalogTypes are format_type texts a target column can have: statements
// take column types from the target's catalog, never from records.
var catalogTypes = []string{"text", "numeric(12,2)", "inet", "integer[]", "timestamp(3) with time zone", `"mood"`, "jsonb", "bigint"}

var builderSeeds = []builderInput{
	{`App "Prod"`, "Order; DROP TABLE x", "Order Id", "amount", "__deleted", "_pgsink_commit_lsn", "_pgsink_lsn", "pgsink", 0},
	{"public", `t"; DROP TABLE victim; --`, `k")); --`, "c\x00d", `"`, "'", `\`, `own"."x`, 1},
	{"s", "t", "id", "payload", "del", "c", "l", "pgsink", 2},
	{"", "$1", "k' OR '1'='1", "/* c */", "-- c", "x;y", "E'\\x'", "Ünïcödé", 7},
}

// table builds the table of an input, and whether its statements apply:
// a table Validate refuses never gets statements.
func (in builderInput) table() (*Table, bool) {
	t := &Table{Schema: in.Schema, Name: in.Table,
		Columns: []Column{
			{Name: in.Key, Source: in.Key, Type: catalogTypes[int(in.Flags>>3)%len(catalogTypes)]},
			{Name: in.Column, Source: in.Column, Type: catalogTypes[int(in.Flags>>5)%len(catalogTypes)]},
		},
		Key: []string{in.Key}, Deletes: DeleteHard, Truncates: true,
		CommitColumn: in.Commit, LSNColumn: in.LSN}
	if in.Flags&1 != 0 {
		t.Deletes, t.SoftDeleteColumn = DeleteSoft, in.Soft
	}
	if in.Flags&2 != 0 {
		t.Deletes, t.Truncates, t.CommitColumn, t.LSNColumn = DeleteIgnore, false, "", ""
		t.Outbox = &Outbox{}
		for i := range t.Columns {
			t.Columns[i].Source = "$." + fmt.Sprint(i)
			t.Columns[i].Path = config.JSONPath{Source: t.Columns[i].Source}
		}
	}
	return t, t.Validate() == nil
}

// harmless replaces every name of in by a harmless one, keeping which
// names are equal and how they sort.
func (in builderInput) harmless() builderInput {
	names := []*string{&in.Schema, &in.Table, &in.Key, &in.Column, &in.Soft, &in.Commit, &in.LSN, &in.Own}
	var sorted []string
	for _, n := range names {
		sorted = append(sorted, *n)
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, n := range names {
		*n = fmt.Sprintf("n%02d", slices.Index(sorted, *n))
	}
	return in
}

// statements are every statement the builders make for an input (the
// table's, and the dead-letter and offset statements of pgsink's schema); nil
// when Validate refuses its table.
func (in builderInput) statements() []string {
	t, ok := in.table()
	if !ok {
		return nil
	}
	var out []string
	if t.Outbox != nil {
		ob := newOutboxStatements(t, in.Own)
		out = append(out, ob.createStage, ob.apply)
	} else {
		st := newStatements(t, in.Own)
		out = append(out, st.createStage, st.deleteHard, st.deleteSoft, st.tombstones, st.tombstonesNew, st.truncate,
			st.truncateTS, st.unresolved, st.insert, st.blockedFresh, st.lockTarget, stageValues(st.stage, st.stageCols, 2))
		for _, mask := range [][]bool{{false, false}, {false, true}} {
			out = append(out, st.upsert(mask), st.update(mask), st.upsertMissing(mask))
		}
	}
	dl, _ := dedup.NewDeadLetters(in.Own).Insert(dedup.DeadLetter{Topic: in.Table, Target: t.Ref(), Error: in.Column})
	var advance pgx.Batch
	_ = dedup.NewOffsets(in.Own).QueueAdvance(&advance, dedup.Claim{PartitionID: dedup.PartitionID{Group: in.Key, Topic: in.Table}}, 1, time.Time{})
	return append(out, dl, advance.QueuedQueries[0].SQL)
}

// ddlInput is one input of FuzzDDL: a schema.create table's names and the
// type text a record gives one column.
type ddlInput struct {
	Schema, Table, Key, Column, Renamed, Soft, Type string
	Flags                                           uint8
}

var ddlSeeds = []ddlInput{
	{`App "Prod"`, "Order; DROP TABLE x", "Order Id", "amount", "Amount", "__deleted", "numeric(10,2)); DROP TABLE victim; --", 0},
	{"public", "victim", "id", "amount", "amount", "deleted", "numeric(12,2)", 1},
	{"s", "t", "k", "c", `c"); --`, "d", "text not null default 'x'", 2},
	{"s", "t", "k", "c", "c", "d", `"mood"[]`, 3},
	{"s", "t", "k", "c", "c", "d", "timestamp(3) with time zone", 0},
	{"s", "t", "k", "c", "c", "d", `mood"; DROP TABLE x; --`, 0},
	{`s"; DROP TABLE x; --`, `t"."u`, `k"); DROP TABLE x; --`, "c", `C" text); --`, `d"--`, "numeric(12,2)", 1},
	{"s", "t", "k\x00", "c", "c';", "/*", "character varying(20)[]", 3},
}

func (in ddlInput) config() config.Table {
	cfg := config.Table{Path: "tables[0]", Format: config.FormatTable, Deletes: config.DeletesHard,
		Target:  config.Target{TableName: config.TableName{Schema: in.Schema, Name: in.Table}},
		Columns: config.Columns{Rename: map[string]string{in.Column: in.Renamed}},
		Version: config.Version{Guard: true, CommitColumn: in.Soft + "_commit", LSNColumn: in.Soft + "_lsn"}}
	if in.Flags&1 != 0 {
		cfg.Deletes, cfg.SoftDelete.Column = config.DeletesSoft, in.Soft
	}
	return cfg
}

func (in ddlInput) harmless() ddlInput {
	names := []*string{&in.Schema, &in.Table, &in.Key, &in.Column, &in.Renamed, &in.Soft}
	var sorted []string
	for _, n := range names {
		sorted = append(sorted, *n, *n+"_commit", *n+"_lsn")
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, n := range names {
		*n = fmt.Sprintf("n%02d", slices.Index(sorted, *n))
	}
	return in
}

// statements are the DDL statements of an input, and the column types
// they name; an error is the builders' refusal.
func (in ddlInput) statements() ([]string, []columnType, error) {
	cfg := in.config()
	cols := []debezium.Column{{Name: in.Key, Type: "bigint", NotNull: true}, {Name: in.Column, Type: in.Type, NotNull: in.Flags&2 != 0}}
	create, types, err := createTableStatement(cfg, cols, []string{in.Key})
	if err != nil {
		return nil, nil, err
	}
	add, _, err := addColumnsStatement(cfg, []debezium.Column{{Name: in.Renamed, Type: in.Type}})
	if err != nil {
		return nil, nil, err
	}
	return []string{create, add}, types, nil
}

// renderedType is every text a column type may have in DDL: a builtin's
// spelling or a quoted lowercase name, integer modifiers, an array mark.
var renderedType = regexp.MustCompile(`^([a-z ]+|"[a-z_][a-z0-9_]*")(\(-?[0-9]+(,-?[0-9]+)?\))?( with(out)? time zone)?(\[\])?$`)

// skeleton is sql with each quoted identifier replaced by "_", or an error
// when sql is not one statement: a quote left open, or a semicolon or a
// comment outside quotes.
func skeleton(sql string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '"' || c == '\'':
			end := i + 1
			for ; end < len(sql); end++ {
				if sql[end] == c {
					if end+1 < len(sql) && sql[end+1] == c {
						end++
						continue
					}
					break
				}
			}
			if end >= len(sql) {
				return "", fmt.Errorf("quote %c at %d is never closed", c, i)
			}
			if c == '"' {
				b.WriteString(`"_"`)
			} else {
				b.WriteString(sql[i : end+1])
			}
			i = end
		case c == ';':
			return "", fmt.Errorf("semicolon at %d: more than one statement", i)
		case strings.HasPrefix(sql[i:], "--") || strings.HasPrefix(sql[i:], "/*"):
			return "", fmt.Errorf("comment at %d", i)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// sameShape fails t unless each statement of got is one statement with
// the skeleton of the one at the same place in want.
func sameShape(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d statements, want %d as for harmless names", len(got), len(want))
	}
	for i := range got {
		g, err := skeleton(got[i])
		if err != nil {
			t.Fatalf("statement %d: %v\n%s", i, err, got[i])
		}
		w, err := skeleton(want[i])
		if err != nil {
			t.Fatalf("statement %d for harmless names: %v\n%s", i, err, want[i])
		}
		if g != w {
			t.Fatalf("statement %d differs from the one for harmless names outside quoted identifiers:\n%s\n--- harmless:\n%s", i, got[i], want[i])
		}
	}
}

func FuzzStatementBuilders(f *testing.F) {
	for _, s := range builderSeeds {
		f.Add(s.Schema, s.Table, s.Key, s.Column, s.Soft, s.Commit, s.LSN, s.Own, s.Flags)
	}
	f.Fuzz(func(t *testing.T, schema, table, key, column, soft, commit, lsn, own string, flags uint8) {
		in := builderInput{schema, table, key, column, soft, commit, lsn, own, flags}
		got := in.statements()
		if got == nil {
			return // a table Validate refuses
		}
		sameShape(t, got, in.harmless().statements())
	})
}

func FuzzDDL(f *testing.F) {
	for _, s := range ddlSeeds {
		f.Add(s.Schema, s.Table, s.Key, s.Column, s.Renamed, s.Soft, s.Type, s.Flags)
	}
	f.Fuzz(func(t *testing.T, schema, table, key, column, renamed, soft, typ string, flags uint8) {
		in := ddlInput{schema, table, key, column, renamed, soft, typ, flags}
		got, types, err := in.statements()
		var typeErr *TypeError
		switch {
		case errors.As(err, &typeErr):
			if typeErr.Column != column && typeErr.Column != renamed {
				t.Fatalf("TypeError %v names column %q, want %q or %q", err, typeErr.Column, column, renamed)
			}
			return
		case err != nil:
			return // a configuration the builders refuse (no key among the columns)
		}
		for _, ct := range types {
			if !renderedType.MatchString(ct.sql) {
				t.Fatalf("type %q of record text %q is not a rendered type", ct.sql, typ)
			}
		}
		want, _, err := in.harmless().statements()
		if err != nil {
			t.Fatalf("harmless names refused where %+v was not: %v", in, err)
		}
		sameShape(t, got, want)
	})
}
