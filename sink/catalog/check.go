package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/config"
)

// Finding is one mismatch between a table's configuration and its target,
// at a key path of the configuration ("tables[1].key[0]").
type Finding struct {
	Path    string
	Message string
}

// Check compares a table's configuration with its target as read by Read,
// and returns every mismatch the sink would otherwise meet at run time.
func Check(cfg config.Table, t *Table) []Finding {
	c := &checker{cfg: cfg, t: t, name: pgx.Identifier{t.Schema, t.Name}.Sanitize()}
	if !c.exists() {
		return c.findings
	}
	c.privileges()
	c.key()
	c.columns()
	c.version()
	if cfg.Deletes == config.DeletesSoft && cfg.Format == config.FormatTable {
		c.column(cfg.Path+".soft_delete.column", cfg.SoftDelete.Column)
	}
	if cfg.Format == config.FormatOutbox {
		c.payload()
	}
	return c.findings
}

type checker struct {
	cfg      config.Table
	t        *Table
	name     string // the target, quoted, for messages
	findings []Finding
}

func (c *checker) fail(path, format string, args ...any) {
	c.findings = append(c.findings, Finding{Path: path, Message: fmt.Sprintf(format, args...)})
}

// exists reports whether the target can be checked further; a missing
// target is fine when pgsink may create it.
func (c *checker) exists() bool {
	target := c.cfg.Path + ".target"
	schema := pgx.Identifier{c.t.Schema}.Sanitize()
	switch {
	case !c.t.SchemaExists:
		c.fail(target, "schema %s does not exist", schema)
		return false
	case !c.t.SchemaUsage:
		c.fail(target, "role %q lacks USAGE on schema %s", c.t.Role, schema)
		return false
	case !c.t.Exists && c.cfg.Schema.Create:
		if !c.t.SchemaCreate {
			c.fail(c.cfg.Path+".schema.create", "role %q lacks CREATE on schema %s, needed to create %s", c.t.Role, schema, c.name)
		}
		return false
	case !c.t.Exists:
		c.fail(target, "table %s does not exist (create it, or set schema.create: true)", c.name)
		return false
	case c.t.Kind != "r" && c.t.Kind != "p":
		c.fail(target, "%s is not a table (relkind %q)", c.name, c.t.Kind)
		return false
	}
	return true
}

// privilege is one table privilege the sink needs, and why.
type privilege struct {
	has  bool
	name string
	why  string
}

func (c *checker) privileges() {
	p := c.t.Privileges
	need := []privilege{
		{p.Insert, "INSERT", "to write rows"},
		{p.Update, "UPDATE", "for upserts"},
		// ON CONFLICT … WHERE reads the stored version, which needs SELECT.
		{p.Select, "SELECT", "to compare versions and keys"},
	}
	switch hard, truncate := c.cfg.Deletes == config.DeletesHard, c.cfg.Truncate == config.TruncateApply; {
	case c.cfg.Format != config.FormatTable:
	case hard && truncate:
		need = append(need, privilege{p.Delete, "DELETE", "for deletes: hard and truncate: apply"})
	case hard:
		need = append(need, privilege{p.Delete, "DELETE", "for deletes: hard"})
	case truncate:
		// A truncate is applied as a version-guarded DELETE of the rows
		// older than it, never as TRUNCATE: rows a later event wrote stay.
		need = append(need, privilege{p.Delete, "DELETE", "for truncate: apply, which deletes the rows older than the truncate"})
	}
	for _, n := range need {
		if !n.has {
			c.fail(c.cfg.Path+".target", "role %q lacks %s on %s (%s)", c.t.Role, n.name, c.name, n.why)
		}
	}
}

// key checks that the configured key names a primary key or unique index,
// which ON CONFLICT needs; with no key configured (the record key's fields),
// the target must have one at least.
func (c *checker) key() {
	path := c.cfg.Path + ".key"
	if len(c.cfg.Key) == 0 {
		if len(c.t.PrimaryKey) == 0 && len(c.t.UniqueKeys) == 0 {
			c.fail(path, "%s has no primary key or unique index, which upserts need", c.name)
		}
		return
	}
	allExist := true
	for i, col := range c.cfg.Key {
		if !c.column(fmt.Sprintf("%s[%d]", path, i), col) {
			allExist = false
		}
	}
	if !allExist {
		return
	}
	keys := append([][]string{c.t.PrimaryKey}, c.t.UniqueKeys...)
	for _, k := range keys {
		if len(k) > 0 && sameSet(k, c.cfg.Key) {
			return
		}
	}
	c.fail(path, "[%s] is neither the primary key nor a unique index of %s (upserts need one); %s", strings.Join(c.cfg.Key, ", "), c.name, c.describeKeys())
}

func (c *checker) describeKeys() string {
	if len(c.t.PrimaryKey) == 0 && len(c.t.UniqueKeys) == 0 {
		return "it has none"
	}
	var parts []string
	if len(c.t.PrimaryKey) > 0 {
		parts = append(parts, "primary key ["+strings.Join(c.t.PrimaryKey, ", ")+"]")
	}
	for _, k := range c.t.UniqueKeys {
		parts = append(parts, "unique ["+strings.Join(k, ", ")+"]")
	}
	return "it has " + strings.Join(parts, ", ")
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// columns checks that every column the mapping names by its target name exists.
func (c *checker) columns() {
	m := c.cfg.Columns
	for i, field := range m.Include {
		if to, ok := m.Column(field); ok {
			c.column(fmt.Sprintf("%s.columns.include[%d]", c.cfg.Path, i), to)
		}
	}
	for _, from := range sortedKeys(m.Rename) {
		c.column(c.cfg.Path+".columns.rename."+from, m.Rename[from])
	}
}

func (c *checker) version() {
	// Outbox rows are guarded by the event-id ledger, not by versions:
	// their events carry none (see sink.writeOutbox). A table is always
	// guarded: config refuses version.guard: false for it.
	if c.cfg.Format == config.FormatOutbox {
		return
	}
	for _, v := range []struct{ path, col string }{
		{c.cfg.Path + ".version.commit_column", c.cfg.Version.CommitColumn},
		{c.cfg.Path + ".version.lsn_column", c.cfg.Version.LSNColumn},
	} {
		col, ok := c.t.Column(v.col)
		if !ok {
			c.fail(v.path, "column %q does not exist in %s (add it: ALTER TABLE %s ADD COLUMN %s bigint)",
				v.col, c.name, c.name, pgx.Identifier{v.col}.Sanitize())
			continue
		}
		if col.TypeOID != pgtype.Int8OID && col.TypeOID != pgtype.NumericOID {
			c.fail(v.path, "column %q of %s is %s; a version column must be bigint", v.col, c.name, col.Type)
		}
	}
}

// payload checks the outbox mapping, which names every column written, so
// a NOT NULL column it leaves out would fail every insert.
func (c *checker) payload() {
	if len(c.cfg.Payload) == 0 {
		return
	}
	for _, col := range sortedKeys(c.cfg.Payload) {
		c.column(c.cfg.Path+".payload."+col, col)
	}
	for _, col := range c.t.Columns {
		_, mapped := c.cfg.Payload[col.Name]
		isVersion := c.cfg.Version.Guard && (col.Name == c.cfg.Version.CommitColumn || col.Name == c.cfg.Version.LSNColumn)
		if col.NotNull && col.Default == "" && col.Identity == "" && !col.Generated && !mapped && !isVersion {
			c.fail(c.cfg.Path+".payload", "does not map column %q of %s, which is NOT NULL without a default", col.Name, c.name)
		}
	}
}

// column checks that a column pgsink writes exists and can be written.
func (c *checker) column(path, name string) bool {
	col, ok := c.t.Column(name)
	if !ok {
		c.fail(path, "column %q does not exist in %s", name, c.name)
		return false
	}
	if col.Generated {
		c.fail(path, "column %q of %s is generated and cannot be written", name, c.name)
		return false
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
