//go:build integration

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

const itemsDDL = `(id integer PRIMARY KEY, name text NOT NULL, amount numeric(12,2), updated_at timestamptz, doc jsonb, note text)`

const itemsColumns = `id, name, amount, updated_at, doc, note`

// itemsConfig is the pgsink configuration the items tests share: the
// sandbox's group and the items topic into public.items, with the target URL
// from $TARGET_URL; tableExtra is appended to the table entry (indented).
func itemsConfig(st *stacktest.T, topic, tableExtra string) string {
	return tableConfig(st, topic, "public.items", tableExtra)
}

// tableConfig is a pgsink configuration of one table: the sandbox's group,
// topic into target, with the target URL from $TARGET_URL; tableExtra is
// appended to the table entry (indented).
func tableConfig(st *stacktest.T, topic, target, tableExtra string) string {
	return tablesConfig(st, fmt.Sprintf("  - topic: %s\n    target: %s\n%s", topic, target, tableExtra))
}

// tablesConfig is a pgsink configuration of the sandbox's group, with the
// target URL from $TARGET_URL, whose tables are the given YAML list.
func tablesConfig(st *stacktest.T, tables string) string {
	return fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
metrics:
  listen: 127.0.0.1:0
tables:
%s`, st.Env.KafkaBootstrap, st.ID, tables)
}

// itemsConverge returns a wait, up to timeout, for the target's items to
// equal the source's, row for row; what names the state in a failure.
func itemsConverge(t *testing.T, st *stacktest.T, targetURL string, timeout time.Duration) func(what string) {
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	return func(what string) {
		t.Helper()
		eventually(t, timeout, what, func() (bool, string) {
			src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
			return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
		})
	}
}

// itemsTarget creates a fresh target database with the items table pgsink
// writes (the source's columns and the version pair) and returns its URL and
// a connection to it, closed at cleanup.
func itemsTarget(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	return targetWith(t, `CREATE TABLE public.items `+itemsDDL[:len(itemsDDL)-1]+`, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`)
}

// targetWith creates a fresh target database, runs ddl in it, and returns
// its URL and a connection to it, closed at cleanup.
func targetWith(t testing.TB, ddl string) (string, *pgx.Conn) {
	t.Helper()
	url := stacktest.OwnedTargetDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

// convergeTo waits until query reads the same rows in the source and in
// the target.
func convergeTo(t *testing.T, st *stacktest.T, targetURL, query, what string) {
	t.Helper()
	eventually(t, 90*time.Second, what, func() (bool, string) {
		src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
	})
}

// itemsWorkload writes the items tests' changes to a source holding row 1:
// inserts, updates (one leaving a TOASTed note unchanged), deletes and
// primary-key changes.
func itemsWorkload(st *stacktest.T) {
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i * 1.25, '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute',
		jsonb_build_object('i', i), CASE WHEN i % 10 = 0 THEN repeat(md5(i::text), 200) END FROM generate_series(2, 300) AS i`)
	st.Exec(`UPDATE public.items SET name = name || ' (updated)', amount = amount + 0.01 WHERE id % 3 = 0`)
	st.Exec(`DELETE FROM public.items WHERE id % 7 = 0`)
	st.Exec(`UPDATE public.items SET id = 10000 + id WHERE id BETWEEN 100 AND 110`) // primary-key changes
	st.Exec(`UPDATE public.items SET doc = '{"changed": true}' WHERE id % 10 = 0`)  // leaves the TOASTed note unchanged
}

// TestE2ERunTableChanges runs the whole pipeline: rows written to a source
// table flow through Debezium and Kafka into the target through
// `pgsink run`, for inserts, updates (one leaving a TOASTed value
// unchanged), deletes, a primary-key change and a truncate; the target must
// equal the source row for row.
func TestE2ERunTableChanges(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'snapshot row', 1.50, '2026-01-01T00:00:00Z', '{"a": 1}', NULL)`)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items", "skipped.operations": "none"})

	targetURL, _ := itemsTarget(t)

	p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
apply:
  batch: { max_records: 500, max_wait: 50ms }
metrics:
  listen: 127.0.0.1:0
tables:
  - topic: %s.public.items
    target: public.items
`, st.Env.KafkaBootstrap, st.ID, st.TopicPrefix), "TARGET_URL="+targetURL)

	itemsWorkload(st)

	converge := itemsConverge(t, st, targetURL, 90*time.Second)
	converge("target equals source after inserts, updates, deletes and key changes")

	st.Exec(`TRUNCATE public.items`)
	st.Exec(`INSERT INTO public.items VALUES (1, 'after truncate', 9.99, now(), '[]', 'x')`)
	converge("target equals source after a truncate")

	code, took := p.stop(30 * time.Second)
	if code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
	t.Logf("pgsink exited 0 %s after SIGTERM", took.Round(time.Millisecond))
}
