//go:build integration

package catalog_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/sink/catalog"
	"github.com/pgsink/pgsink/test/stacktest"
)

// roundTrips counts what a connection sends: single queries and batches
// (one pipeline, one round trip each).
type roundTrips struct {
	queries, batches atomic.Int64
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.queries.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.batches.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestIntegrationReadOneRoundTrip: Read sends its queries as one pipeline,
// so that routing to a fleet of tables pays one round trip per table, and
// still describes the table in full (columns and keys found by its names).
func TestIntegrationReadOneRoundTrip(t *testing.T) {
	url := stacktest.TargetDatabase(t,
		`CREATE SCHEMA app`,
		`GRANT USAGE ON SCHEMA app TO pgsink`,
		`CREATE TABLE app.t (id int PRIMARY KEY, code text NOT NULL UNIQUE, note text DEFAULT 'x')`,
		`GRANT SELECT, INSERT ON app.t TO pgsink`,
	)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	cfg.Tracer = trips
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	for _, table := range []string{"t", "missing"} {
		trips.queries.Store(0)
		trips.batches.Store(0)
		got, err := catalog.Read(ctx, conn, "app", table)
		if err != nil {
			t.Fatalf("Read app.%s: %v", table, err)
		}
		if q, b := trips.queries.Load(), trips.batches.Load(); q != 0 || b != 1 {
			t.Errorf("Read app.%s sent %d queries and %d batches, want one batch alone", table, q, b)
		}
		if table == "missing" {
			if got.Exists || !got.SchemaExists {
				t.Errorf("Read app.missing = %+v, want the schema and no table", got)
			}
			continue
		}
		var names []string
		for _, c := range got.Columns {
			names = append(names, c.Name)
		}
		if !got.Exists || len(names) != 3 || names[0] != "id" || names[2] != "note" || got.Columns[2].Default == "" ||
			len(got.PrimaryKey) != 1 || got.PrimaryKey[0] != "id" ||
			len(got.UniqueKeys) != 1 || got.UniqueKeys[0][0] != "code" ||
			!got.Privileges.Select || !got.Privileges.Insert || got.Privileges.Update {
			t.Errorf("Read app.t = %+v, want columns id, code, note (a default), key id, unique code, SELECT and INSERT", got)
		}
	}
}
