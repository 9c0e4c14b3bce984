package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/internal/sqltype"
	"github.com/pgsink/pgsink/sink/catalog"
)

// ErrNoTarget is wrapped by Resolve when the target table does not exist.
var ErrNoTarget = errors.New("target table missing")

// Execer is the target database as DDL uses it: QueryRow checks the
// types a statement will name, Exec runs the statement. Router gives DDL
// a oneStatement, so that no statement text can carry a second one.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TypeError is a column type an event's schema asks for that pgsink will
// not write into DDL: a parameter PostgreSQL would refuse, a name that is
// no type name, a type the target does not have. The record is at fault,
// not the table: it goes to the dead letters (or stops its partition
// under errors.tolerance none) and the records after it go on.
type TypeError struct {
	Table  string // the configured target, as config.TableName renders it
	Column string // the event's column
	Err    error
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("sink: %s: column %q: no valid PostgreSQL type for DDL: %v", e.Table, e.Column, e.Err)
}
func (e *TypeError) Unwrap() error { return e.Err }

// CreateTable creates a table's target from an event's columns
// (schema.create): every column the include/exclude/rename rules keep, typed
// as the event's schema maps to PostgreSQL, the key as primary key, and the
// bookkeeping columns the guard and soft deletes need. It is idempotent: an
// instance racing another one finds the table there.
func CreateTable(ctx context.Context, db Execer, cfg config.Table, cols []debezium.Column, recordKey []string) error {
	sql, types, err := createTableStatement(cfg, cols, recordKey)
	if err != nil {
		return err
	}
	return runDDL(ctx, db, cfg, "create", sql, types)
}

// runDDL checks the types a built statement names in the target, then
// runs it; what names the statement in its error.
func runDDL(ctx context.Context, db Execer, cfg config.Table, what, sql string, types []columnType) error {
	if err := checkTypes(ctx, db, cfg, types); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("sink: %s: %s %s: %w", cfg.Path, what, cfg.Target, err)
	}
	return nil
}

// createTableStatement builds CreateTable's statement; types are the
// column types it names, for checkTypes.
func createTableStatement(cfg config.Table, cols []debezium.Column, recordKey []string) (string, []columnType, error) {
	if len(cols) == 0 {
		return "", nil, fmt.Errorf("sink: %s: schema.create needs the event's schema (key and value converters with schemas.enable=true)", cfg.Path)
	}
	key := cfg.Key
	if len(key) == 0 {
		for _, f := range recordKey {
			if target, ok := cfg.Columns.Column(f); ok {
				key = append(key, target)
			}
		}
	}
	if len(key) == 0 {
		return "", nil, fmt.Errorf("sink: %s: schema.create needs a key: set key, or give the records a key", cfg.Path)
	}
	var kept []debezium.Column
	var names []string
	for _, c := range cols {
		target, ok := cfg.Columns.Column(c.Name)
		if !ok {
			continue
		}
		kept = append(kept, c)
		names = append(names, target)
	}
	for _, k := range key {
		if !slices.Contains(names, k) {
			return "", nil, fmt.Errorf("sink: %s: key column %q is not among the event's columns %v", cfg.Path, k, names)
		}
	}
	types, err := columnTypes(cfg, kept)
	if err != nil {
		return "", nil, err
	}
	var defs []string
	for i, c := range kept {
		def := q(names[i]) + " " + types[i].sql
		if c.NotNull || slices.Contains(key, names[i]) {
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	if cfg.Version.Guard {
		defs = append(defs, q(cfg.Version.CommitColumn)+" bigint", q(cfg.Version.LSNColumn)+" bigint")
	}
	if cfg.Deletes == config.DeletesSoft {
		defs = append(defs, q(cfg.SoftDelete.Column)+" boolean NOT NULL DEFAULT false")
	}
	var keyRefs []string
	for _, k := range key {
		keyRefs = append(keyRefs, q(k))
	}
	defs = append(defs, "PRIMARY KEY ("+strings.Join(keyRefs, ", ")+")")
	table := pgx.Identifier{cfg.Target.Schema, cfg.Target.Name}.Sanitize()
	return "CREATE TABLE IF NOT EXISTS " + table + " (\n    " + strings.Join(defs, ",\n    ") + "\n)", types, nil
}

// MissingColumns lists the event's columns that the configuration keeps but
// the target lacks, renamed to their target names.
func MissingColumns(cfg config.Table, cat *catalog.Table, cols []debezium.Column) []debezium.Column {
	var missing []debezium.Column
	for _, c := range cols {
		target, ok := cfg.Columns.Column(c.Name)
		if !ok {
			continue
		}
		if _, exists := cat.Column(target); !exists {
			c.Name = target
			missing = append(missing, c)
		}
	}
	return missing
}

// AddColumns adds columns to a table's target (schema.evolve: add_columns).
// They are nullable whatever the source says: the rows already there have no
// value for them. IF NOT EXISTS makes it safe for instances racing.
func AddColumns(ctx context.Context, db Execer, cfg config.Table, cols []debezium.Column) error {
	if len(cols) == 0 {
		return nil
	}
	sql, types, err := addColumnsStatement(cfg, cols)
	if err != nil {
		return err
	}
	return runDDL(ctx, db, cfg, "add columns to", sql, types)
}

// addColumnsStatement builds AddColumns' statement; cols have their target
// names already (MissingColumns).
func addColumnsStatement(cfg config.Table, cols []debezium.Column) (string, []columnType, error) {
	types, err := columnTypes(cfg, cols)
	if err != nil {
		return "", nil, err
	}
	var adds []string
	for i, c := range cols {
		adds = append(adds, "ADD COLUMN IF NOT EXISTS "+q(c.Name)+" "+types[i].sql)
	}
	return "ALTER TABLE " + pgx.Identifier{cfg.Target.Schema, cfg.Target.Name}.Sanitize() + " " + strings.Join(adds, ", "), types, nil
}

// columnType is the type a DDL statement gives a column.
type columnType struct {
	column string // the event's column, for the TypeError
	sql    string
}

// columnTypes renders the types of cols for DDL: each parsed by sqltype
// and rendered again from what was parsed, so that the text is fixed
// spellings, a quoted name and checked integers whatever the event said.
func columnTypes(cfg config.Table, cols []debezium.Column) ([]columnType, error) {
	types := make([]columnType, len(cols))
	for i, c := range cols {
		err := c.TypeErr
		if err == nil {
			var t sqltype.Type
			if t, err = sqltype.Parse(c.Type); err == nil {
				types[i] = columnType{column: c.Name, sql: t.String()}
			}
		}
		if err != nil {
			return nil, &TypeError{Table: cfg.Target.String(), Column: c.Name, Err: err}
		}
	}
	return types, nil
}

// checkTypes looks the types up in the target, so that one it lacks is the
// record's TypeError rather than a failed statement.
func checkTypes(ctx context.Context, db Execer, cfg config.Table, types []columnType) error {
	if len(types) == 0 {
		return nil
	}
	texts := make([]string, len(types))
	for i, t := range types {
		texts[i] = t.sql
	}
	var missing int
	err := db.QueryRow(ctx, missingTypeQuery, texts).Scan(&missing)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sink: %s: look up column types %v in the target: %w", cfg.Path, texts, err)
	}
	t := types[missing-1]
	return &TypeError{Table: cfg.Target.String(), Column: t.column, Err: fmt.Errorf("type %s does not exist in the target database", t.sql)}
}

// missingTypeQuery finds the first of a list of types the target lacks (its
// position, from 1). The types are sqltype's renderings: to_regtype parses
// each as a type name and nothing else.
const missingTypeQuery = `SELECT i::int FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) WHERE to_regtype(t) IS NULL ORDER BY i LIMIT 1`

// oneStatement runs DDL through the extended protocol, whose Parse step
// refuses a string that holds more than one statement. pgx's Exec without
// arguments would take the simple protocol, which runs every statement a
// string holds: a mistake in a builder would then be an injection.
type oneStatement struct{ pool *pgxpool.Pool }

func (o oneStatement) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := o.pool.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	if len(args) > 0 {
		// An explicit mode, so that a default_query_exec_mode of
		// simple_protocol in the connection string does not apply.
		return conn.Exec(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	}
	return conn.Conn().PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
}

func (o oneStatement) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return o.pool.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
}
