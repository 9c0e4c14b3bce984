package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is what Read needs of a connection: *pgx.Conn, *pgxpool.Pool and
// pgx.Tx all satisfy it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Table is one target table as the catalog describes it to the current role.
type Table struct {
	Schema string
	Name   string
	// Role is the current role, whose privileges are described.
	Role string

	SchemaExists bool
	// SchemaUsage and SchemaCreate are the role's USAGE and CREATE
	// privileges on the schema.
	SchemaUsage  bool
	SchemaCreate bool

	Exists bool
	OID    uint32
	// Kind is pg_class.relkind: 'r' a table, 'p' a partitioned table; any
	// other (a view, a foreign table) cannot be a target.
	Kind       string
	Columns    []Column   // in table order
	PrimaryKey []string   // column names in key order; empty when there is none
	UniqueKeys [][]string // each usable unique index (valid, immediate, no predicate or expression), in key order
	Privileges Privileges
}

// Column is one column of a table.
type Column struct {
	Name    string
	Type    string // format_type(atttypid, atttypmod): "numeric(12,2)", "timestamp with time zone"
	TypeOID uint32
	NotNull bool
	// Default is the default expression (for a generated column, its
	// generation expression); empty when the column has none.
	Default string
	// Identity is pg_attribute.attidentity: "" none, "a" always, "d" by default.
	Identity string
	// Generated is true for a generated column, which cannot be written.
	Generated bool
	// Dims is pg_attribute.attndims: the dimensions an array column was
	// declared with (int[][] is 2), 0 for other types. PostgreSQL does not
	// enforce it, but a declared multi-dimensional column says what it holds.
	Dims int
	// Kind is pg_type.typtype of the column's type or, for an array, of its
	// element type: "b" base, "d" domain, "e" enum, "r" range, "m"
	// multirange, "c" composite, "p" pseudo. Debezium sends some kinds
	// differently (an array of a domain not at all), whatever their names.
	Kind string
}

// Privileges are the current role's table privileges.
type Privileges struct {
	Select, Insert, Update, Delete, Truncate bool
}

// Column returns the named column (names are exact, as in the catalog).
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Read describes table schema.name. A missing schema or table is no error:
// Exists and SchemaExists say so. Its four queries go in one pipeline, one
// round trip.
func Read(ctx context.Context, q Querier, schema, name string) (t *Table, err error) {
	b := &pgx.Batch{}
	b.Queue(schemaQuery, schema)
	b.Queue(tableQuery, schema, name)
	b.Queue(columnsQuery, schema, name)
	b.Queue(keysQuery, schema, name)
	br := q.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			t, err = nil, fmt.Errorf("catalog: read table %q.%q: %w", schema, name, cerr)
		}
	}()
	t = &Table{Schema: schema, Name: name}
	var schemaOID *uint32
	if err := br.QueryRow().Scan(&t.Role, &schemaOID, &t.SchemaUsage, &t.SchemaCreate); err != nil {
		return nil, fmt.Errorf("catalog: read schema %q: %w", schema, err)
	}
	t.SchemaExists = schemaOID != nil
	p := &t.Privileges
	err = br.QueryRow().Scan(&t.OID, &t.Kind, &p.Select, &p.Insert, &p.Update, &p.Delete, &p.Truncate)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: read table %q.%q: %w", schema, name, err)
	}
	t.Exists = true
	if t.Columns, err = readColumns(br); err != nil {
		return nil, fmt.Errorf("catalog: read columns of %q.%q: %w", schema, name, err)
	}
	if err := readKeys(br, t); err != nil {
		return nil, fmt.Errorf("catalog: read keys of %q.%q: %w", schema, name, err)
	}
	return t, nil
}

func readColumns(br pgx.BatchResults) ([]Column, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Column, error) {
		var c Column
		var def *string
		err := row.Scan(&c.Name, &c.Type, &c.TypeOID, &c.NotNull, &def, &c.Identity, &c.Generated, &c.Dims, &c.Kind)
		if def != nil {
			c.Default = *def
		}
		return c, err
	})
}

func readKeys(br pgx.BatchResults, t *Table) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	var primary bool
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&primary, &cols}, func() error {
		if primary {
			t.PrimaryKey = cols
		} else {
			t.UniqueKeys = append(t.UniqueKeys, cols)
		}
		return nil
	})
	return err
}
