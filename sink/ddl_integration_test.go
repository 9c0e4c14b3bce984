//go:build integration

package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/stacktest"
)

func ddlPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), stacktest.OwnedTargetDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

// TestIntegrationDDLRunsOneStatement: the DDL runner refuses a string of
// two statements, where pgx's plain Exec (the simple protocol) runs both.
func TestIntegrationDDLRunsOneStatement(t *testing.T) {
	ctx := context.Background()
	pool := ddlPool(t)
	if _, err := pool.Exec(ctx, "CREATE TABLE victim (id int); CREATE TABLE witness (id int)"); err != nil {
		t.Fatal(err)
	}
	_, err := oneStatement{pool}.Exec(ctx, "CREATE TABLE a (x int); DROP TABLE victim")
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "42601" {
		t.Fatalf("two statements through oneStatement: %v, want SQLSTATE 42601 (cannot insert multiple commands)", err)
	}
	if !tableExists(t, pool, "victim") || tableExists(t, pool, "a") {
		t.Fatal("oneStatement ran part of a two-statement string")
	}
	if _, err := (oneStatement{pool}).Exec(ctx, "CREATE TABLE a (x int)"); err != nil || !tableExists(t, pool, "a") {
		t.Fatalf("one statement through oneStatement: %v", err)
	}
	// The control: what the DDL ran through before.
	if _, err := pool.Exec(ctx, "CREATE TABLE b (x int); DROP TABLE witness"); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, pool, "witness") {
		t.Fatal("the simple protocol no longer runs two statements: this test proves nothing, revisit it")
	}
}

// TestIntegrationDDLTypesAgainstTarget creates and extends a table with
// hostile names from an event's columns, and checks each type in the
// target's catalog; a type the target lacks and a hostile type are
// TypeErrors and change nothing.
func TestIntegrationDDLTypesAgainstTarget(t *testing.T) {
	ctx := context.Background()
	pool := ddlPool(t)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA "App ""Prod"""; CREATE TYPE mood AS ENUM ('ok', 'sad')`); err != nil {
		t.Fatal(err)
	}
	db := oneStatement{pool}
	cfg := goldenDDLTable(config.DeletesSoft)
	cols := goldenDDLColumns()
	if err := CreateTable(ctx, db, cfg, cols, []string{"Order Id", "region; DROP TABLE x"}); err != nil {
		t.Fatal(err)
	}
	extra := []debezium.Column{{Name: "added", Type: "numeric(5,-2)"}, {Name: "Added Later", Type: `"mood"[]`}}
	if err := AddColumns(ctx, db, cfg, extra); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Order Id": "integer", "region; DROP TABLE x": "text", "amount": "numeric(12,2)",
		`Note"); DROP TABLE x; --`: "character varying(20)", "at": "timestamp(3) with time zone", "mood": "mood",
		"tags": "text[]", "bits": "bit varying", `deleted"; --`: "boolean", "_pgsink_commit_lsn": "bigint",
		"_pgsink_lsn": "bigint", "added": "numeric(5,-2)", "Added Later": "mood[]",
	}
	rows, err := pool.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, pgx.Identifier{cfg.Target.Schema, cfg.Target.Name}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		got[name] = typ
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("column %q is %q, want %q", name, got[name], typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("columns %v, want %v", got, want)
	}

	missing := goldenDDLTable(config.DeletesHard)
	missing.Target.Name = "missing type"
	for _, c := range []debezium.Column{{Name: "shape", Type: "geometry"}, {Name: "amount", Type: "numeric(10,2)); DROP TABLE victim; --"}} {
		err := CreateTable(ctx, db, missing, append(goldenDDLColumns()[:2], c), []string{"Order Id"})
		var typeErr *TypeError
		if !errors.As(err, &typeErr) || typeErr.Column != c.Name {
			t.Errorf("create with type %q: %v, want a TypeError for column %q", c.Type, err, c.Name)
		}
		if err := AddColumns(ctx, db, cfg, []debezium.Column{c}); !errors.As(err, &typeErr) {
			t.Errorf("add column of type %q: %v, want a TypeError", c.Type, err)
		}
	}
	if tableExists(t, pool, pgx.Identifier{missing.Target.Schema, missing.Target.Name}.Sanitize()) {
		t.Error("a table was created with a column type the target lacks")
	}
}

// TestIntegrationStatementsParseAsOne sends every statement the builders
// make for the fuzz targets' seeds and committed corpora to PostgreSQL's
// parser: the extended protocol's Parse, which refuses a string of more
// than one statement (42601). The statements name tables that do not exist
// here: analysis, which runs only on a statement that parsed, says so.
func TestIntegrationStatementsParseAsOne(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stacktest.OwnedTargetDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var statements []string
	builders := builderSeeds
	for _, args := range readCorpus(t, "FuzzStatementBuilders") {
		builders = append(builders, builderInput{args[0].(string), args[1].(string), args[2].(string), args[3].(string),
			args[4].(string), args[5].(string), args[6].(string), args[7].(string), args[8].(uint8)})
	}
	for _, in := range builders {
		statements = append(statements, in.statements()...)
	}
	ddl := ddlSeeds
	for _, args := range readCorpus(t, "FuzzDDL") {
		ddl = append(ddl, ddlInput{args[0].(string), args[1].(string), args[2].(string), args[3].(string),
			args[4].(string), args[5].(string), args[6].(string), args[7].(uint8)})
	}
	for _, in := range ddl {
		s, _, err := in.statements()
		if err == nil {
			statements = append(statements, s...)
		}
	}
	if len(statements) < 100 {
		t.Fatalf("only %d statements built: the corpora did not load", len(statements))
	}
	codes := map[string]int{}
	for _, sql := range statements {
		_, err := conn.PgConn().Prepare(ctx, "", sql, nil)
		var pg *pgconn.PgError
		switch {
		case err == nil:
			codes["prepared"]++
		case !errors.As(err, &pg):
			t.Fatalf("prepare: %v", err)
		case !analysisErrors[pg.Code]:
			t.Errorf("PostgreSQL does not parse this as one statement: %v\n%s", err, sql)
		default:
			codes[pg.Code]++
		}
	}
	t.Logf("%d statements parsed as one statement each; outcomes of Parse: %v", len(statements), codes)
}

// analysisErrors are the errors of a statement that parsed: the objects it
// names do not exist in this empty database.
var analysisErrors = map[string]bool{
	"42P01": true, // undefined_table
	"3F000": true, // invalid_schema_name
	"42704": true, // undefined_object (a type)
	"42703": true, // undefined_column
}

// readCorpus reads the committed corpus of a fuzz target in this package:
// the arguments of each input, as strings and uint8s.
func readCorpus(t *testing.T, target string) [][]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus for %s: %v", target, err)
	}
	var inputs [][]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var args []any
		for _, line := range lines[1:] {
			arg, err := corpusValue(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			args = append(args, arg)
		}
		inputs = append(inputs, args)
	}
	return inputs
}

// corpusValue reads one line of a corpus file: string("…"), uint8(n) or
// byte('…'), as go test writes them.
func corpusValue(line string) (any, error) {
	kind, rest, ok := strings.Cut(line, "(")
	body, ok2 := strings.CutSuffix(rest, ")")
	if !ok || !ok2 {
		return nil, errors.New("not a corpus value: " + line)
	}
	switch kind {
	case "string":
		return strconv.Unquote(body)
	case "uint8":
		n, err := strconv.ParseUint(body, 0, 8)
		return uint8(n), err
	case "byte":
		quoted, ok := strings.CutPrefix(body, "'")
		if quoted, ok2 := strings.CutSuffix(quoted, "'"); ok && ok2 {
			if v, _, tail, err := strconv.UnquoteChar(quoted, '\''); err == nil && tail == "" && v < 256 {
				return uint8(v), nil
			}
		}
		return nil, errors.New("not a byte: " + line)
	}
	return nil, errors.New("unknown corpus type: " + line)
}
