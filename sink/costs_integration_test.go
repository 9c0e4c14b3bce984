//go:build integration

package sink_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// statementsPerTableBound is what docs/scaling.md sizes pgx's statement
// cache by (about 25 a table): a change that makes a table cost more
// prepared statements per connection moves the point where the cache
// starts to thrash, and the document must say so.
const statementsPerTableBound = 25

// The server-side state one connection keeps for a table it writes: one
// staging table, and the prepared statements of every kind of batch (rows
// staged by VALUES in each power-of-two chunk and by COPY, fresh rows,
// updates, unchanged-TOAST columns, deletes, a truncate). docs/scaling.md
// sizes statement_cache_capacity from this count.
func TestIntegrationCostPerTableOnAConnection(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	ctx := context.Background()
	one := f.onOneConnection()

	version := int64(1)
	next := func() int64 { version++; return version }
	creates := func(from, n int64) []ev {
		var evs []ev
		for id := from; id < from+n; id++ {
			evs = append(evs, ev{debezium.OpCreate, id, "new", "n", next()})
		}
		return evs
	}
	// 63 and 64 rows are staged by VALUES in every chunk (32, 16 … 1;
	// 64); 300 rows go by COPY.
	f.apply(creates(1, 63)...)
	f.apply(creates(100, 64)...)
	f.apply(creates(1000, 300)...)
	for _, n := range []int64{1, 3, 65} {
		var evs []ev
		for id := int64(1); id <= n; id++ {
			evs = append(evs, ev{debezium.OpUpdate, id, "upd", "n", next()})
		}
		f.apply(evs...)
	}
	f.apply(ev{debezium.OpUpdate, 2, "toast", unchanged, next()}, ev{debezium.OpUpdate, 3, "full", "n", next()})
	f.apply(ev{debezium.OpDelete, 4, "", nil, next()}, ev{debezium.OpCreate, 4, "again", "n", next()})
	f.apply(ev{debezium.OpTruncate, 0, "", nil, next()}, ev{debezium.OpCreate, 5, "after", "n", next()})

	var stages, prepared, forTable int64
	err := one.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'),
		(SELECT count(*) FROM pg_prepared_statements),
		(SELECT count(*) FROM pg_prepared_statements
		  WHERE statement LIKE '%pgsink_stage_%' OR statement LIKE '%Orders; DROP TABLE y%')`,
		// Not prepared itself: its text names the table.
		pgx.QueryExecModeSimpleProtocol).Scan(&stages, &prepared, &forTable)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one table on one connection: %d staging table(s), %d prepared statements naming the table or its stage, %d in all", stages, forTable, prepared)
	if stages != 1 {
		t.Fatalf("%d staging tables in the session, want 1 for one table", stages)
	}
	if forTable == 0 || forTable > statementsPerTableBound {
		t.Fatalf("%d prepared statements for one table; docs/scaling.md sizes the cache for at most %d", forTable, statementsPerTableBound)
	}
}
