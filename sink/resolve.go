package sink

import (
	"fmt"
	"strings"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
)

// Resolve builds the Table the sink writes from a table's configuration and
// the target catalog (which `pgsink validate` checks with catalog.Check):
// every writable target column that some event field maps to, through the
// include/exclude/rename rules, in table order. cfg has passed config
// validation, which refuses what the sink cannot do (version.guard: false).
func Resolve(cfg config.Table, cat *catalog.Table) (*Table, error) {
	if !cat.Exists {
		return nil, fmt.Errorf("sink: %s: target %s.%s does not exist (create it, or set schema.create: true): %w", cfg.Path, cat.Schema, cat.Name, ErrNoTarget)
	}
	if cfg.Format == config.FormatOutbox {
		return resolveOutbox(cfg, cat)
	}
	t := &Table{
		Schema: cat.Schema, Name: cat.Name,
		Key:              cfg.Key,
		SoftDeleteColumn: cfg.SoftDelete.Column,
		Truncates:        cfg.Truncate == config.TruncateApply,
		CommitColumn:     cfg.Version.CommitColumn,
		LSNColumn:        cfg.Version.LSNColumn,
		Reconcile:        cfg.Snapshot.Reconcile,
	}
	switch cfg.Deletes {
	case config.DeletesHard:
		t.Deletes = DeleteHard
	case config.DeletesSoft:
		t.Deletes = DeleteSoft
	case config.DeletesIgnore:
		t.Deletes = DeleteIgnore
	default:
		return nil, fmt.Errorf("sink: %s: unknown deletes mode %q", cfg.Path, cfg.Deletes)
	}
	if len(t.Key) == 0 {
		t.Key = cat.PrimaryKey
	}
	// A target column takes its value from the field renamed to it, or from
	// the field of its own name unless that field is renamed elsewhere.
	renamedTo := map[string]string{}
	for from, to := range cfg.Columns.Rename {
		renamedTo[to] = from
	}
	for _, c := range cat.Columns {
		if c.Generated || c.Identity == "a" || c.Name == t.CommitColumn || c.Name == t.LSNColumn || c.Name == t.SoftDeleteColumn {
			continue
		}
		source, ok := renamedTo[c.Name]
		if !ok {
			if _, renamedAway := cfg.Columns.Rename[c.Name]; renamedAway {
				continue
			}
			source = c.Name
		}
		if target, ok := cfg.Columns.Column(source); !ok || target != c.Name {
			continue
		}
		t.Columns = append(t.Columns, Column{Name: c.Name, Source: source, Type: c.Type})
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	return t, nil
}

// resolveOutbox maps an outbox table: each target column named in payload
// takes the value at its path; with no payload mapping, every writable
// column takes the top-level payload member of its name. Columns follow the
// table's order. The version columns are not written: outbox rows are
// guarded by the event-id ledger alone (see writeOutbox).
func resolveOutbox(cfg config.Table, cat *catalog.Table) (*Table, error) {
	t := &Table{Schema: cat.Schema, Name: cat.Name, Key: cfg.Key, Deletes: DeleteIgnore,
		Outbox: &Outbox{EventTypes: cfg.EventTypes}}
	for _, c := range cat.Columns {
		path, ok := cfg.Payload[c.Name]
		if len(cfg.Payload) == 0 {
			if c.Generated || c.Identity == "a" || c.Name == cfg.Version.CommitColumn || c.Name == cfg.Version.LSNColumn {
				continue
			}
			source := "$." + c.Name
			if strings.ContainsAny(c.Name, ".[]'") {
				source = "$['" + c.Name + "']" // for messages only: Steps is what is evaluated
			}
			path, ok = config.JSONPath{Source: source, Steps: []config.PathStep{{Member: c.Name}}}, true
		}
		if ok {
			t.Columns = append(t.Columns, Column{Name: c.Name, Source: path.Source, Type: c.Type, Path: path})
		}
	}
	for col := range cfg.Payload {
		if _, ok := cat.Column(col); !ok {
			return nil, fmt.Errorf("sink: %s: payload maps column %q, which %s.%s does not have", cfg.Path, col, cat.Schema, cat.Name)
		}
	}
	if len(t.Key) == 0 {
		t.Key = cat.PrimaryKey
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	return t, nil
}
