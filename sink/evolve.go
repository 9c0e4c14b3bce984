package sink

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// drift compares a route's new event schema with its target, reports every
// difference once, acts as schema.evolve says, and returns the table the
// schema's events are written to: the target without the columns the
// schema lacks. Called under r.mu, once per event schema and route.
func (r *Router) drift(ctx context.Context, rt *route, ch *debezium.Change) (*Table, error) {
	cfg := rt.cfg
	if matches(cfg, rt.table, ch.Columns) {
		// The common case, a new decoder meeting the schema already
		// known: no catalog read, which would make a partition's start
		// depend on the target answering.
		return rt.table, nil
	}
	cat, base, err := r.readResolved(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d := diffSchema(*cfg, cat, base, ch.Columns)
	r.report(cfg, base, d, ch.Version)
	if cfg.Schema.Evolve == config.EvolveStrict && !d.empty() {
		_, _, rename := d.rename()
		return nil, &SchemaDriftError{Table: base.Ref(), New: columnNames(d.added), Missing: columnNames(d.missing), Rename: rename}
	}
	changed := false
	if cfg.Schema.Evolve == config.EvolveAddColumns || cfg.Schema.Evolve == config.EvolveFollow {
		if len(d.added) > 0 {
			if err := AddColumns(ctx, r.db, *cfg, d.added); err != nil {
				return nil, err
			}
			for _, c := range d.added {
				r.note(SchemaChange{Table: base.Ref(), Kind: ChangeAddColumn, Column: c.Name, Type: c.Type})
			}
			changed = true
		}
	}
	if cfg.Schema.Evolve == config.EvolveFollow {
		if relax := notNull(cat, d.missing); len(relax) > 0 {
			if err := DropNotNull(ctx, r.db, *cfg, relax); err != nil {
				return nil, err
			}
			for _, c := range relax {
				r.note(SchemaChange{Table: base.Ref(), Kind: ChangeDropNotNull, Column: c})
			}
			changed = true
		}
	}
	if changed {
		if cat, base, err = r.readResolved(ctx, cfg); err != nil {
			return nil, err
		}
		d = diffSchema(*cfg, cat, base, ch.Columns)
	}
	base = r.replaceTable(cfg, base)
	if len(d.missing) == 0 {
		return base, nil
	}
	key := base.Ref() + "\x00" + strings.Join(columnNames(d.missing), "\x00")
	if v, ok := r.views[key]; ok {
		return v, nil
	}
	v := withoutColumns(base, d.missing)
	r.views[key] = v
	return v, nil
}

func (r *Router) readResolved(ctx context.Context, cfg *config.Table) (*catalog.Table, *Table, error) {
	cat, err := catalog.Read(ctx, r.q, cfg.Target.Schema, cfg.Target.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("read target catalog of %s: %w", cfg.Target, err)
	}
	t, err := Resolve(*cfg, cat)
	return cat, t, err
}

// replaceTable keeps the table the routes of cfg's target share when t
// writes the same columns, and otherwise points every such route at t.
func (r *Router) replaceTable(cfg *config.Table, t *Table) *Table {
	ref := cfg.Target.String()
	if cur, ok := r.tables[ref]; ok && slices.EqualFunc(cur.Columns, t.Columns, func(a, b Column) bool {
		return a.Name == b.Name && a.Source == b.Source && a.Type == b.Type
	}) {
		return cur
	}
	r.tables[ref] = t
	for _, other := range r.routes {
		if other.cfg.Target.String() == ref {
			other.table = t
			clear(other.bySchema)
		}
	}
	clear(r.views)
	return t
}

// report passes each difference of d to the observer, once per table and
// column. A likely rename is reported as such, not as a missing column and
// a new one.
func (r *Router) report(cfg *config.Table, t *Table, d drift, since debezium.Version) {
	ref := t.Ref()
	added, missing := d.added, d.missing
	if from, to, ok := d.rename(); ok {
		fix := renameFix(t, from.Name, to.Name, since)
		if cfg.Schema.Evolve == config.EvolveNone || cfg.Schema.Evolve == config.EvolveStrict {
			fix = fmt.Sprintf("the target has no column %q and schema.evolve is %s: rename the target column (ALTER TABLE %s RENAME COLUMN %s TO %s) "+
				"or map the field to the old column (columns.rename: {%s: %s}), then replay the topic from the rename (pgsink replay)",
				to.Name, cfg.Schema.Evolve, t.Ident(), q(from.Name), q(to.Name), to.Name, from.Name)
		}
		if r.once(SchemaChange{Table: ref, Kind: ChangeLikelyRename, Column: from.Name, NewColumn: to.Name, Type: to.Type, Fix: fix}) {
			r.reported[ref+"\x00"+string(ChangeMissingField)+"\x00"+from.Name] = true
			r.reported[ref+"\x00"+string(ChangeNewField)+"\x00"+to.Name] = true
		}
		added, missing = nil, nil
	}
	for _, c := range added {
		r.once(SchemaChange{Table: ref, Kind: ChangeNewField, Column: c.Name, Type: c.Type})
	}
	for _, c := range missing {
		r.once(SchemaChange{Table: ref, Kind: ChangeMissingField, Column: c.Name, Type: c.Type})
	}
}

// once reports c unless it was reported already, and says whether it was.
func (r *Router) once(c SchemaChange) bool {
	key := c.Table + "\x00" + string(c.Kind) + "\x00" + c.Column
	if r.reported[key] {
		return false
	}
	r.reported[key] = true
	r.observe(c)
	return true
}

// note reports a change pgsink made: each is its own event, never deduplicated.
func (r *Router) note(c SchemaChange) { r.observe(c) }

// matches reports whether an event schema carries exactly the columns t
// writes: every field the configuration keeps has its column, and every
// column its field. A false answer is checked against the catalog, which
// knows the columns t does not write (generated, bookkeeping).
func matches(cfg *config.Table, t *Table, cols []debezium.Column) bool {
	written := make(map[string]bool, len(t.Columns))
	for _, c := range t.Columns {
		written[c.Name] = true
	}
	carried := make(map[string]bool, len(cols))
	for _, c := range cols {
		carried[c.Name] = true
		if target, ok := cfg.Columns.Column(c.Name); ok && !written[target] {
			return false
		}
	}
	for _, c := range t.Columns {
		if !carried[c.Source] {
			return false
		}
	}
	return true
}
