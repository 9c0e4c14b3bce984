//go:build integration

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// avroConfig is tableConfig for records in Avro through the stack's schema
// registry: encoding avro and its Confluent-compatible API.
func avroConfig(t *testing.T, st *stacktest.T, topic, target, tableExtra string) string {
	t.Helper()
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return tableConfig(st, topic, target, tableExtra) + fmt.Sprintf(`
encoding: avro
schema_registry:
  url: %s/apis/ccompat/v7
`, registry)
}

// TestE2EAvroTableChanges runs the whole pipeline with Debezium on Apicurio's
// Avro converter (the shipped connector settings otherwise: decimal and
// interval as strings): inserts, updates (one leaving a TOASTed value
// unchanged), deletes, primary-key changes and a truncate must leave the
// target equal to the source row for row, as on JSON. Then a source ADD
// COLUMN registers a new schema id, which pgsink follows without a restart
// (schema.evolve: add_columns).
func TestE2EAvroTableChanges(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'snapshot row', 1.50, '2026-01-01T00:00:00Z', '{"a": 1}', NULL)`)
	overrides := stacktest.AvroConverter(registry)
	overrides["table.include.list"] = "public.items"
	overrides["skipped.operations"] = "none"
	st.RegisterDebezium("items", overrides)

	targetURL, _ := itemsTarget(t)
	p := startPgsink(t, avroConfig(t, st, st.TopicPrefix+".public.items", "public.items", "    schema: { evolve: add_columns }\n"),
		"TARGET_URL="+targetURL)

	itemsWorkload(st)

	converge := itemsConverge(t, st, targetURL, 90*time.Second)
	converge("target equals source after inserts, updates, deletes and key changes over Avro")

	st.Exec(`TRUNCATE public.items`)
	st.Exec(`INSERT INTO public.items VALUES (1, 'after truncate', 9.99, now(), '[]', 'x')`)
	converge("target equals source after a truncate over Avro")

	st.Exec(`ALTER TABLE public.items ADD COLUMN extra text`)
	st.Exec(`INSERT INTO public.items VALUES (2, 'with extra', 2.00, now(), '{}', NULL, 'the new column')`)
	st.Exec(`UPDATE public.items SET extra = 'set later' WHERE id = 1`)
	withExtra := `SELECT ` + itemsColumns + `, extra FROM public.items ORDER BY id`
	eventually(t, 90*time.Second, "target follows a source ADD COLUMN (a new schema id) without a restart", func() (bool, string) {
		src, dst := checksum(t, st.SourceURL, withExtra), checksumOrMissing(t, targetURL, withExtra)
		return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
	})

	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
