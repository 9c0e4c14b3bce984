package sink

import (
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/debezium"
)

// BenchmarkReduce measures the Go side of one 5,000-change batch of the
// apply benchmark's table before any SQL: reduction to one row per key and
// the staging rows. Run: go test -run XXX -bench Reduce -benchmem ./sink/
func BenchmarkReduce(b *testing.B) {
	t := &Table{Schema: "public", Name: "bench", Key: []string{"id"}, Deletes: DeleteHard,
		CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn",
		Columns: []Column{
			{Name: "id", Source: "id", Type: "bigint"}, {Name: "customer_id", Source: "customer_id", Type: "bigint"},
			{Name: "status", Source: "status", Type: "text"}, {Name: "amount", Source: "amount", Type: "numeric(12,2)"},
			{Name: "created_at", Source: "created_at", Type: "timestamp with time zone"}, {Name: "attrs", Source: "attrs", Type: "jsonb"},
		}}
	items := make([]Item, 5000)
	idx := make([]int, len(items))
	for i := range items {
		id := int64(i*7) % 4500 // some keys change twice in the batch
		v := debezium.Version{CommitLSN: int64(i + 1), LSN: int64(i + 1)}
		ch := debezium.Change{Kind: debezium.KindChange, Op: debezium.OpUpdate, Version: v, Key: debezium.Row{{Name: "id", Value: id}}}
		if i%20 == 0 {
			ch.Op = debezium.OpDelete
		} else {
			ch.After = debezium.Row{{Name: "id", Value: id}, {Name: "customer_id", Value: id % 50},
				{Name: "status", Value: "paid"}, {Name: "amount", Value: pgtype.Numeric{Int: big.NewInt(int64(i)), Exp: -2, Valid: true}},
				{Name: "created_at", Value: pgtype.Timestamptz{Time: time.Unix(int64(i), 0), Valid: true}},
				{Name: "attrs", Value: `{"channel":"web"}`}}
		}
		items[i] = Item{Table: t, Change: ch}
		idx[i] = i
	}
	b.ReportAllocs()
	cpu0 := benchCPU(b)
	for b.Loop() {
		red, err := reduce(t, items, idx)
		if err != nil {
			b.Fatal(err)
		}
		rows, _, _ := stagingRows(red, true)
		if len(rows) == 0 {
			b.Fatal("no rows")
		}
	}
	b.ReportMetric(float64(len(items))*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	// CPU time, the process's own (GC included), reads through the
	// neighbours' load that wall time does not.
	b.ReportMetric((benchCPU(b)-cpu0).Seconds()*1e9/(float64(len(items))*float64(b.N)), "cpu-ns/change")
}
