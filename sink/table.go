package sink

import (
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
)

// DeleteMode says what a delete event does to the target.
type DeleteMode uint8

const (
	// DeleteHard deletes the row and records the key in the tombstone ledger.
	DeleteHard DeleteMode = iota + 1
	// DeleteSoft keeps the row, sets its marker column and records the key
	// in the tombstone ledger.
	DeleteSoft
	// DeleteIgnore leaves the target as it is.
	DeleteIgnore
)

// Column is one target column the sink writes.
type Column struct {
	Name   string // the target column
	Source string // the field of the change it takes its value from
	Type   string // PostgreSQL type as format_type() renders it, for staging
	// Path addresses the column's value in an outbox event's payload
	// (outbox tables only; Source is then its text).
	Path config.JSONPath
}

// Table is a target table, resolved from configuration and the target
// catalog. The sink writes only the columns listed here.
type Table struct {
	Schema, Name string
	Columns      []Column // key columns included
	Key          []string // target key columns: the primary key or a unique index
	Deletes      DeleteMode
	// SoftDeleteColumn is the boolean marker column of DeleteSoft.
	SoftDeleteColumn string
	// Truncates applies truncate events (as a version-guarded delete of all
	// older rows); false ignores them.
	Truncates bool
	// CommitColumn and LSNColumn hold each row's source version (bigint).
	// The guard compares them as a pair on every write (I3).
	CommitColumn, LSNColumn string
	// Reconcile sweeps, once a snapshot of the table has been applied, the
	// rows it did not read (snapshot.reconcile; see sweep.go).
	Reconcile bool
	// Outbox is set for a table fed by Outbox Event Router events rather
	// than by table change events; the version columns are then unused.
	Outbox *Outbox
}

// Outbox configures a table written from outbox events: each fresh event
// upserts the row of its key with the values its payload paths select.
type Outbox struct {
	// EventTypes are the event types the table takes; empty takes all.
	EventTypes []string
}

// takes reports whether the table applies events of type typ.
func (o *Outbox) takes(typ string) bool {
	return len(o.EventTypes) == 0 || slices.Contains(o.EventTypes, typ)
}

// Ident returns the table's quoted, schema-qualified name.
func (t *Table) Ident() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// Ref is the table's name in ledgers and dead letters: schema.table,
// unquoted, which is unambiguous because it is only ever compared.
func (t *Table) Ref() string { return t.Schema + "." + t.Name }

// Validate reports a Table the statements cannot be built for.
func (t *Table) Validate() error {
	if t.Schema == "" || t.Name == "" {
		return fmt.Errorf("sink: table %q.%q: schema and name are required", t.Schema, t.Name)
	}
	if len(t.Key) == 0 {
		return fmt.Errorf("sink: table %s: no key columns", t.Ref())
	}
	if t.Outbox != nil {
		return t.validateOutbox()
	}
	if t.CommitColumn == "" || t.LSNColumn == "" {
		return fmt.Errorf("sink: table %s: version columns are required", t.Ref())
	}
	if err := t.validateColumns(t.CommitColumn, t.LSNColumn, t.SoftDeleteColumn, stageOp, stageMask, stageCommit, stageLSN); err != nil {
		return err
	}
	switch t.Deletes {
	case DeleteHard, DeleteIgnore:
	case DeleteSoft:
		if t.SoftDeleteColumn == "" {
			return fmt.Errorf("sink: table %s: soft deletes need a marker column", t.Ref())
		}
	default:
		return fmt.Errorf("sink: table %s: unknown delete mode %d", t.Ref(), t.Deletes)
	}
	return nil
}

// validateColumns checks the written columns against each other, the key
// and the names reserved for bookkeeping.
func (t *Table) validateColumns(reserved ...string) error {
	seen := map[string]bool{}
	for _, c := range t.Columns {
		if c.Name == "" || c.Source == "" || c.Type == "" {
			return fmt.Errorf("sink: table %s: column %+v needs a name, a source field and a type", t.Ref(), c)
		}
		if seen[c.Name] {
			return fmt.Errorf("sink: table %s: column %q listed twice", t.Ref(), c.Name)
		}
		if slices.Contains(reserved, c.Name) {
			return fmt.Errorf("sink: table %s: column %q is reserved for pgsink's bookkeeping", t.Ref(), c.Name)
		}
		seen[c.Name] = true
	}
	for _, k := range t.Key {
		if !seen[k] {
			return fmt.Errorf("sink: table %s: key column %q is not among the written columns", t.Ref(), k)
		}
	}
	return nil
}

// validateOutbox checks an outbox table: every column has a payload path;
// deletes and truncates do not exist for outbox events.
func (t *Table) validateOutbox() error {
	if err := t.validateColumns(stageEvent, stageOffset); err != nil {
		return err
	}
	for _, c := range t.Columns {
		if c.Path.Source == "" {
			return fmt.Errorf("sink: table %s: column %q has no payload path", t.Ref(), c.Name)
		}
	}
	if t.Deletes != DeleteIgnore || t.Truncates {
		return fmt.Errorf("sink: table %s: an outbox table takes no deletes or truncates", t.Ref())
	}
	return nil
}

func (t *Table) isKey(name string) bool { return slices.Contains(t.Key, name) }

// keyColumns are the indexes into Columns of the key columns, in Key's order.
func (t *Table) keyColumns() []int {
	idx := make([]int, 0, len(t.Key))
	for _, k := range t.Key {
		for c, col := range t.Columns {
			if col.Name == k {
				idx = append(idx, c)
			}
		}
	}
	return idx
}
