//go:build integration

package txapply_test

import (
	"context"
	"testing"

	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/txapply"
)

// TestIntegrationResolverKeepsTheOrderBetweenTables resolves the bank's
// transactions, several to a chunk, into a target whose order lines
// reference their order by a foreign key checked at once (not deferred):
// the kind of constraint transaction mode is for. A chunk may group a
// table's records by partition, but an order must still be written before
// its lines, as the source wrote it, whatever the topics' names (the
// lines' sorts first).
func TestIntegrationResolverKeepsTheOrderBetweenTables(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	if _, err := tg.pool.Exec(ctx, `ALTER TABLE public.order_lines ADD FOREIGN KEY (order_id) REFERENCES public.orders (id)`); err != nil {
		t.Fatal(err)
	}
	for _, p := range partitions(b) {
		tg.applyPartition(t, b.records, p.Topic, p.Partition, 100, nil)
	}
	claim, err := tg.offsets.Claim(ctx, tg.pool, dedup.PartitionID{Group: group, Topic: b.txTopic(), Partition: 0}, 0, "resolver")
	if err != nil {
		t.Fatal(err)
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res := resolve(t, resolver, &claim, ends(t, b))
	if res.Applied != transfers+orders {
		t.Errorf("applied %d transactions, want %d", res.Applied, transfers+orders)
	}
	var n int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&n); err != nil || n != orders {
		t.Errorf("%d orders in the target (%v), want %d", n, err, orders)
	}
}
