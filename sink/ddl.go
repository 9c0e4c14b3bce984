package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// ErrNoTarget is wrapped by Resolve when the target table does not exist.
var ErrNoTarget = errors.New("target table missing")

// Execer runs DDL.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateTable creates a table's target from an event's columns
// (schema.create): every column the include/exclude/rename rules keep, typed
// as the event's schema maps to PostgreSQL, the key as primary key, and the
// bookkeeping columns the guard and soft deletes need. It is idempotent: an
// instance racing another one finds the table there.
func CreateTable(ctx context.Context, db Execer, cfg config.Table, cols []debezium.Column, recordKey []string) error {
	if len(cols) == 0 {
		return fmt.Errorf("sink: %s: schema.create needs the event's schema (key and value converters with schemas.enable=true)", cfg.Path)
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
		return fmt.Errorf("sink: %s: schema.create needs a key: set key, or give the records a key", cfg.Path)
	}
	var defs []string
	var names []string
	for _, c := range cols {
		target, ok := cfg.Columns.Column(c.Name)
		if !ok {
			continue
		}
		def := q(target) + " " + c.Type
		if c.NotNull || slices.Contains(key, target) {
			def += " NOT NULL"
		}
		defs = append(defs, def)
		names = append(names, target)
	}
	for _, k := range key {
		if !slices.Contains(names, k) {
			return fmt.Errorf("sink: %s: key column %q is not among the event's columns %v", cfg.Path, k, names)
		}
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
	sql := "CREATE TABLE IF NOT EXISTS " + table + " (\n    " + strings.Join(defs, ",\n    ") + "\n)"
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("sink: %s: create %s: %w", cfg.Path, table, err)
	}
	return nil
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
			missing = append(missing, debezium.Column{Name: target, Type: c.Type})
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
	table := pgx.Identifier{cfg.Target.Schema, cfg.Target.Name}.Sanitize()
	var adds []string
	for _, c := range cols {
		adds = append(adds, "ADD COLUMN IF NOT EXISTS "+q(c.Name)+" "+c.Type)
	}
	if _, err := db.Exec(ctx, "ALTER TABLE "+table+" "+strings.Join(adds, ", ")); err != nil {
		return fmt.Errorf("sink: %s: add columns to %s: %w", cfg.Path, table, err)
	}
	return nil
}
