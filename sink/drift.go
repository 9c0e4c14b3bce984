package sink

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// SchemaChangeKind names one kind of difference between an event's schema
// and its target table, or one change pgsink made to the target for it. It
// is the change label of pgsink_schema_changes_total.
type SchemaChangeKind string

// SchemaChangeKind values.
const (
	// ChangeNewField: the event carries a field the target has no column for.
	ChangeNewField SchemaChangeKind = "new_field"
	// ChangeMissingField: a target column the event no longer carries (the
	// source dropped or renamed it, or the target has a column of its own).
	// pgsink leaves it alone: new rows take its default, stored rows keep
	// their value.
	ChangeMissingField SchemaChangeKind = "missing_field"
	// ChangeLikelyRename: one field missing and one new field of the same
	// type in the same event schema.
	ChangeLikelyRename SchemaChangeKind = "likely_rename"
	// ChangeAddColumn: pgsink added a column (add_columns, follow).
	ChangeAddColumn SchemaChangeKind = "add_column"
	// ChangeDropNotNull: pgsink relaxed NOT NULL on a column the source no
	// longer sends (follow).
	ChangeDropNotNull SchemaChangeKind = "drop_not_null"
)

// SchemaChange is one difference pgsink saw, or one change it made, on a
// target table. The Router reports each once per table and column.
type SchemaChange struct {
	Table  string // schema.table of the target
	Kind   SchemaChangeKind
	Column string // the target column (the missing one, for a rename)
	// NewColumn is the target column of the new field, for a rename.
	NewColumn string
	// Type is the column's type: the event's for new fields, the
	// target's otherwise.
	Type string
	// Fix is what an operator may do about it: SQL for a rename's
	// carry-over, empty when nothing is needed.
	Fix string
}

// SchemaDriftError stops a partition under schema.evolve: strict: the
// record's schema differs from the target's columns. The offset does not
// move past the record.
type SchemaDriftError struct {
	Table   string
	New     []string // target names of fields the target lacks
	Missing []string // target columns the event does not carry
	Rename  bool     // the two look like one rename
}

func (e *SchemaDriftError) Error() string {
	var parts []string
	if len(e.New) > 0 {
		parts = append(parts, "new fields "+strings.Join(e.New, ", "))
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "target columns no longer sent "+strings.Join(e.Missing, ", "))
	}
	what := strings.Join(parts, "; ")
	if e.Rename {
		what += " (likely a rename of " + e.Missing[0] + " to " + e.New[0] + ")"
	}
	return fmt.Sprintf("sink: table %s: the source schema changed (%s) and schema.evolve is strict: "+
		"change the target to match (ALTER TABLE … ADD COLUMN / RENAME COLUMN / DROP COLUMN, see docs/operations.md#source-schema-changes), "+
		"or set schema.evolve: add_columns or follow, then restart pgsink; the offset stays at this record", e.Table, what)
}

// drift is how one event schema differs from the target: the fields the
// target lacks (typed as the event maps them) and the written columns the
// event does not carry.
type drift struct {
	added   []debezium.Column // target names
	missing []Column
}

func (d drift) empty() bool { return len(d.added) == 0 && len(d.missing) == 0 }

// rename returns the missing column and the new field when the drift looks
// like one column renamed: exactly one of each, of the same type.
func (d drift) rename() (Column, debezium.Column, bool) {
	if len(d.added) != 1 || len(d.missing) != 1 || !sameType(d.missing[0].Type, d.added[0].Type) {
		return Column{}, debezium.Column{}, false
	}
	return d.missing[0], d.added[0], true
}

// diffSchema compares an event's columns with the target's catalog and the
// table resolved from it. Key columns are never missing here: an event
// without its key fails on its own (a record error).
func diffSchema(cfg config.Table, cat *catalog.Table, t *Table, cols []debezium.Column) drift {
	d := drift{added: MissingColumns(cfg, cat, cols)}
	carried := make(map[string]bool, len(cols))
	for _, c := range cols {
		carried[c.Name] = true
	}
	for _, c := range t.Columns {
		if !carried[c.Source] && !t.isKey(c.Name) {
			d.missing = append(d.missing, c)
		}
	}
	return d
}

// sameType compares a target type (format_type) with an event's mapped
// type, ignoring modifiers and the text/varchar distinction Debezium's
// schema does not keep without column.propagate.source.type.
func sameType(target, event string) bool {
	base := func(s string) string {
		if i := strings.IndexByte(s, '('); i >= 0 {
			s = s[:i]
		}
		switch s = strings.TrimSpace(s); s {
		case "character varying", "character", "varchar", "bpchar":
			return "text"
		}
		return s
	}
	return base(target) == base(event)
}

// renameFix renders the commands that carry a renamed column's old values
// over to its new column: rows the source has not changed since the rename
// hold their value only in the old column. Only the rows never written
// since then are touched: their new column is NULL and their version is
// older than the first event that carried the new schema.
func renameFix(t *Table, from, to string, since debezium.Version) string {
	table := t.Ident()
	return fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NULL AND (%s, %s) < (%d, %d); "+
		"then, once nothing reads it: ALTER TABLE %s DROP COLUMN %s",
		table, q(to), q(from), q(to), q(t.CommitColumn), q(t.LSNColumn), since.CommitLSN, since.LSN, table, q(from))
}

// DropNotNull relaxes NOT NULL on target columns the source stopped sending
// (schema.evolve: follow): rows created after the change have no value for
// them. Key columns are never passed here.
func DropNotNull(ctx context.Context, db Execer, cfg config.Table, columns []string) error {
	if len(columns) == 0 {
		return nil
	}
	table := pgx.Identifier{cfg.Target.Schema, cfg.Target.Name}.Sanitize()
	alters := make([]string, len(columns))
	for i, c := range columns {
		alters[i] = "ALTER COLUMN " + q(c) + " DROP NOT NULL"
	}
	if _, err := db.Exec(ctx, "ALTER TABLE "+table+" "+strings.Join(alters, ", ")); err != nil {
		return fmt.Errorf("sink: %s: drop not null on %s: %w", cfg.Path, table, err)
	}
	return nil
}

// notNull lists the missing columns that are NOT NULL in the target.
func notNull(cat *catalog.Table, missing []Column) []string {
	var out []string
	for _, c := range missing {
		if cc, ok := cat.Column(c.Name); ok && cc.NotNull {
			out = append(out, c.Name)
		}
	}
	return out
}

// withoutColumns returns t writing only the columns an event schema
// carries: a column the source stopped sending is neither inserted (it
// takes its default) nor updated (the stored value stays), and never
// passes for an unchanged-TOAST column.
func withoutColumns(t *Table, missing []Column) *Table {
	v := *t
	v.Columns = slices.DeleteFunc(slices.Clone(t.Columns), func(c Column) bool {
		return slices.ContainsFunc(missing, func(m Column) bool { return m.Name == c.Name })
	})
	return &v
}

// columnNames lists the names of columns, for messages and cache keys.
func columnNames[C Column | debezium.Column](cols []C) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		switch x := any(c).(type) {
		case Column:
			out[i] = x.Name
		case debezium.Column:
			out[i] = x.Name
		}
	}
	return out
}
