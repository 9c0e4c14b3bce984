package connector

import (
	"context"
	"fmt"
	"sync"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector/debezium"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/sink/catalog"
)

// route is where the records of one topic go.
type route struct {
	cfg    *config.Table
	table  *sink.Table
	format debezium.Format
}

// router resolves topics to target tables once per topic: the configuration
// names the table, the target catalog gives its columns.
type router struct {
	cfg    *config.Router
	q      catalog.Querier
	mu     sync.Mutex
	routes map[string]*route
	tables map[string]*sink.Table // by target, so topics sharing a table share it
}

func newRouter(cfg *config.Config, q catalog.Querier) *router {
	return &router{cfg: cfg.Router(), q: q, routes: map[string]*route{}, tables: map[string]*sink.Table{}}
}

// resolve returns the route of topic, reading the target catalog the first
// time a table is met.
func (r *router) resolve(ctx context.Context, topic string) (*route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.routes[topic]; ok {
		return rt, nil
	}
	tc, err := r.cfg.Resolve(topic)
	if err != nil {
		return nil, err
	}
	ref := tc.Target.String()
	tbl, ok := r.tables[ref]
	if !ok {
		cat, err := catalog.Read(ctx, r.q, tc.Target.Schema, tc.Target.Name)
		if err != nil {
			return nil, fmt.Errorf("read target catalog of %s: %w", ref, err)
		}
		if tbl, err = sink.Resolve(*tc, cat); err != nil {
			return nil, err
		}
		r.tables[ref] = tbl
	}
	format := debezium.FormatTable
	if tc.Format == config.FormatOutbox {
		format = debezium.FormatOutbox
	}
	rt := &route{cfg: tc, table: tbl, format: format}
	r.routes[topic] = rt
	return rt, nil
}
