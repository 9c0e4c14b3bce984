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

// TestE2EIdlePartitionsHeap: pgsink owning 100 partitions that carry no
// record holds no queue for them: its Go heap stays far below the 40 MiB
// that queues allocated up front (2 × max_records slots each) took.
// docs/scaling.md has the figures before and after.
func TestE2EIdlePartitionsHeap(t *testing.T) {
	st := stacktest.New(t)
	topic := st.TopicPrefix + ".idle"
	if err := stacktest.CreateTopic(context.Background(), st.Env.KafkaBootstrap, topic, 100); err != nil {
		t.Fatal(err)
	}
	targetURL, _ := targetWith(t, `CREATE TABLE public.idle `+routedDDL)
	port := freePort(t)
	cfg := tablesConfig(st, fmt.Sprintf("  - topic: %s\n    target: public.idle\n", topic))
	cfg = strings.Replace(cfg, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	eventually(t, 120*time.Second, "100 partitions owned", func() (bool, string) {
		v, ok := metricValue(port, "pgsink_partitions_owned")
		return ok && v == 100, fmt.Sprintf("%v owned", v)
	})
	const bound = 24 << 20
	eventually(t, 30*time.Second, "Go heap under 24 MiB with 100 idle partitions", func() (bool, string) {
		heap, _ := metricValue(port, "go_memstats_heap_alloc_bytes")
		rss, _ := metricValue(port, "process_resident_memory_bytes")
		t.Logf("100 idle partitions: Go heap %.1f MiB, RSS %.1f MiB", heap/(1<<20), rss/(1<<20))
		return heap > 0 && heap < bound, fmt.Sprintf("heap %.1f MiB", heap/(1<<20))
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
