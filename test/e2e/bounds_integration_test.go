//go:build integration

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EStagingTablesBounded: pgsink writing four tables with
// postgres.staging_tables_per_connection: 1 keeps at most one staging
// table per connection on the target (each table's batches drop another's
// and create their own), and every table still equals its source.
func TestE2EStagingTablesBounded(t *testing.T) {
	st := stacktest.New(t)
	tables := []string{"public.b_one", "public.b_two", "public.b_three", "public.b_four"}
	for _, tbl := range tables {
		st.Exec(`CREATE TABLE ` + tbl + ` ` + routedDDL)
		st.Exec(`INSERT INTO ` + tbl + ` VALUES (1, 'snapshot one', 1), (2, 'snapshot two', 2)`)
	}
	st.RegisterDebezium("bounds", map[string]string{"table.include.list": strings.Join(tables, ",")})

	targetURL, conn := targetWith(t, `SELECT 1`)
	cfg := tablesConfig(st, fmt.Sprintf(`  - topic_pattern: '%s\.public\.(?P<table>b_.+)'
    target: 'public.${table}'
    schema: { create: true }
`, regexp.QuoteMeta(st.TopicPrefix)))
	const connections = 2 // max_connections: 1, and the one for claims
	cfg = strings.Replace(cfg, "  url: ${TARGET_URL}\n", "  url: ${TARGET_URL}\n  max_connections: 1\n  staging_tables_per_connection: 1\n", 1)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)

	writeSource(st, tables...)
	same := map[string]string{}
	for _, tbl := range tables {
		same[tbl] = tbl
	}
	convergeTables(t, st, targetURL, same)
	// Temporary tables of every session are in the database's pg_class.
	var stages int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname LIKE 'pg\_temp\_%' AND c.relname LIKE 'pgsink\_stage\_%'`).Scan(&stages); err != nil {
		t.Fatal(err)
	}
	if stages == 0 || stages > connections {
		t.Errorf("%d staging tables on the target after writing %d tables, want 1 to %d: one per connection at most", stages, len(tables), connections)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
