//go:build integration

package sink_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// columnTable creates public.<name>, keyed by id bigint, with the columns
// cols (name, type) and the version columns, claims the partition of its
// topic src.public.<name>, and returns the table as the sink sees it.
func columnTable(t *testing.T, pool *pgxpool.Pool, name string, cols [][2]string) (*sink.Table, *dedup.Claim) {
	t.Helper()
	ctx := context.Background()
	tbl := &sink.Table{Schema: "public", Name: name, Key: []string{"id"},
		Deletes: sink.DeleteHard, CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn",
		Columns: []sink.Column{{Name: "id", Source: "id", Type: "bigint"}}}
	ddl := "id bigint PRIMARY KEY"
	for _, c := range cols {
		tbl.Columns = append(tbl.Columns, sink.Column{Name: c[0], Source: c[0], Type: c[1]})
		ddl += ", " + c[0] + " " + c[1]
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE public."+name+" ("+ddl+", _pgsink_commit_lsn bigint, _pgsink_lsn bigint)"); err != nil {
		t.Fatal(err)
	}
	claim, err := dedup.NewOffsets(schema).Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "src.public." + name}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tbl, &claim
}

// rowsBatch is a batch of op on the keys 1..rows of tbl, from the claim's
// next offset on, key id with the after image after(id) and the version
// version+id.
func rowsBatch(claim *dedup.Claim, tbl *sink.Table, op debezium.Op, version, rows int64, after func(id int64) debezium.Row) *sink.Batch {
	b := &sink.Batch{Claim: claim}
	topic := "src.public." + tbl.Name
	for id := int64(1); id <= rows; id++ {
		offset := claim.NextOffset + id - 1
		ch := debezium.Change{Topic: topic, Offset: offset, Kind: debezium.KindChange, Op: op,
			Schema: tbl.Schema, Table: tbl.Name, Key: debezium.Row{{Name: "id", Value: id}}, After: after(id),
			Version: debezium.Version{CommitLSN: version + id, LSN: version + id}}
		b.Items = append(b.Items, sink.Item{Table: tbl, Change: ch, Record: debezium.Record{Topic: topic, Offset: offset}})
		b.Next = offset + 1
	}
	return b
}
