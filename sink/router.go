package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// route is where the records of one topic go.
type route struct {
	cfg   *config.Table
	table *Table
	// checked is the first column of the event schema last compared with
	// the target (schema.evolve): Changes of one schema share the slice.
	checked *debezium.Column
}

// Router resolves topics to target tables: the configuration names the
// table, the target catalog gives its columns. With schema.create it creates
// a missing target from the first event; with schema.evolve add_columns it
// adds the columns an event brings that the target lacks. `pgsink run` and
// `pgsink dlq retry` route through it alike. It is safe for concurrent use.
type Router struct {
	cfg    *config.Router
	q      catalog.Querier
	db     Execer
	mu     sync.Mutex
	routes map[string]*route
	tables map[string]*Table // by target, so topics sharing a table share it
}

// NewRouter returns a Router over the target pool. Its DDL runs one
// statement per call (oneStatement).
func NewRouter(cfg *config.Config, pool *pgxpool.Pool) *Router {
	return &Router{cfg: cfg.Router(), q: pool, db: oneStatement{pool}, routes: map[string]*route{}, tables: map[string]*Table{}}
}

// Format says how to decode a topic, from the configuration alone.
func (r *Router) Format(topic string) debezium.Format {
	tc, err := r.cfg.Resolve(topic)
	if err != nil {
		return debezium.DefaultFormat(topic)
	}
	if tc.Format == config.FormatOutbox {
		return debezium.FormatOutbox
	}
	return debezium.FormatTable
}

// resolve returns the route of a change's topic, creating or extending the
// target first when the configuration asks for it.
func (r *Router) resolve(ctx context.Context, ch *debezium.Change) (*route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[ch.Topic]
	if !ok {
		tc, err := r.cfg.Resolve(ch.Topic)
		if err != nil {
			return nil, err
		}
		rt = &route{cfg: tc}
		if rt.table, err = r.table(ctx, tc, ch); err != nil {
			return nil, err
		}
		r.routes[ch.Topic] = rt
	}
	if err := r.evolve(ctx, rt, ch); err != nil {
		return nil, err
	}
	return rt, nil
}

// table reads the target catalog of tc the first time it is met.
func (r *Router) table(ctx context.Context, tc *config.Table, ch *debezium.Change) (*Table, error) {
	ref := tc.Target.String()
	if tbl, ok := r.tables[ref]; ok {
		return tbl, nil
	}
	tbl, err := r.read(ctx, tc)
	if errors.Is(err, ErrNoTarget) && tc.Schema.Create && ch.Kind == debezium.KindChange {
		var key []string
		for _, f := range ch.Key {
			key = append(key, f.Name)
		}
		if err := CreateTable(ctx, r.db, *tc, ch.Columns, key); err != nil {
			return nil, err
		}
		tbl, err = r.read(ctx, tc)
	}
	if err != nil {
		return nil, err
	}
	r.tables[ref] = tbl
	return tbl, nil
}

func (r *Router) read(ctx context.Context, tc *config.Table) (*Table, error) {
	cat, err := catalog.Read(ctx, r.q, tc.Target.Schema, tc.Target.Name)
	if err != nil {
		return nil, fmt.Errorf("read target catalog of %s: %w", tc.Target, err)
	}
	return Resolve(*tc, cat)
}

// evolve adds the columns a change's schema has and its target lacks, once
// per distinct schema, and points every route of that target at the
// extended table.
func (r *Router) evolve(ctx context.Context, rt *route, ch *debezium.Change) error {
	if rt.cfg.Schema.Evolve != config.EvolveAddColumns || len(ch.Columns) == 0 || rt.checked == &ch.Columns[0] {
		return nil
	}
	cat, err := catalog.Read(ctx, r.q, rt.cfg.Target.Schema, rt.cfg.Target.Name)
	if err != nil {
		return fmt.Errorf("read target catalog of %s: %w", rt.cfg.Target, err)
	}
	if missing := MissingColumns(*rt.cfg, cat, ch.Columns); len(missing) > 0 {
		if err := AddColumns(ctx, r.db, *rt.cfg, missing); err != nil {
			return err
		}
		if cat, err = catalog.Read(ctx, r.q, rt.cfg.Target.Schema, rt.cfg.Target.Name); err != nil {
			return fmt.Errorf("read target catalog of %s: %w", rt.cfg.Target, err)
		}
	}
	tbl, err := Resolve(*rt.cfg, cat)
	if err != nil {
		return err
	}
	if len(tbl.Columns) != len(rt.table.Columns) {
		ref := rt.cfg.Target.String()
		r.tables[ref] = tbl
		for _, other := range r.routes {
			if other.cfg.Target.String() == ref {
				other.table = tbl
			}
		}
	}
	rt.checked = &ch.Columns[0]
	return nil
}

// NewDecoder returns a decoder that reads each topic in the format its
// table entry names. A decoder is for one goroutine.
func (r *Router) NewDecoder() *debezium.Decoder {
	return debezium.NewDecoder(debezium.Options{Format: r.Format})
}

// Item decodes and routes one record. ok is false for records that write
// nothing: tombstones, transaction markers, logical messages. A record that
// does not decode is an Item with Err, for the dead letters; its Table names
// the configured target when there is one (only for the dead letter's target
// column, so a missing one is no reason to stop). So is a record whose
// schema asks for a column type no DDL may name (TypeError). An error means
// the record cannot be routed at all (no table for its topic, the target
// missing, its catalog unreadable): no reason to dead-letter it.
func (r *Router) Item(ctx context.Context, dec *debezium.Decoder, rec debezium.Record) (Item, bool, error) {
	ch, err := dec.Decode(rec)
	if err != nil {
		return r.failed(rec, err), true, nil
	}
	if ch.Kind != debezium.KindChange && ch.Kind != debezium.KindOutbox {
		return Item{}, false, nil
	}
	rt, err := r.resolve(ctx, &ch)
	if typeErr := (*TypeError)(nil); errors.As(err, &typeErr) {
		return r.failed(rec, err), true, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	return Item{Record: rec, Table: rt.table, Change: ch}, true, nil
}

// failed is the Item of a record that goes to the dead letters for err.
func (r *Router) failed(rec debezium.Record, err error) Item {
	var table *Table
	if tc, cerr := r.cfg.Resolve(rec.Topic); cerr == nil {
		table = &Table{Schema: tc.Target.Schema, Name: tc.Target.Name}
	}
	return Item{Record: rec, Table: table, Err: err}
}
