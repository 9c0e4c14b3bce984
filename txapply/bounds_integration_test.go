//go:build integration

package txapply_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txapply"
)

// TestIntegrationResolverStagingTablesBounded resolves the bank's
// transactions, which write three tables, over one connection whose
// applier keeps at most one staging table
// (postgres.staging_tables_per_connection): the resolver's transactions
// drop the others before their COMMIT, as a batch's do, so the session
// holds no more than the bound, and the target is whole.
func TestIntegrationResolverStagingTablesBounded(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 50)
	cfg := tg.pool.Config().Copy()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(one.Close)
	writer := sink.NewApplier(one, sink.Options{Schema: schema, StopOnError: true, StagingTablesPerConnection: 1})
	resolver := txapply.New(one, writer, tg.router, txapply.Options{Schema: schema})
	es := ends(t, b)
	// One END at a time: every table is written by some transaction, the
	// last ones by the orders, which write two.
	for i := range es {
		if res := resolve(t, resolver, &claim, es[i:i+1]); res.Applied != 1 {
			t.Fatalf("END %d: applied %d transactions, want 1", i, res.Applied)
		}
	}
	var stages int
	if err := one.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'`,
		pgx.QueryExecModeSimpleProtocol).Scan(&stages); err != nil {
		t.Fatal(err)
	}
	if stages > 1 {
		t.Errorf("the resolver's session holds %d staging tables, want at most postgres.staging_tables_per_connection = 1", stages)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after resolving every transaction: %s", v)
	}
	var orderCount int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&orderCount); err != nil || orderCount != orders {
		t.Errorf("orders applied: %d (%v), want %d", orderCount, err, orders)
	}
}
