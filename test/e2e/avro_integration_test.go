//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
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

// TestE2EAvroBadInput: on an Avro topic, a record without the Confluent
// magic byte and one whose schema id the registry does not have are dead
// letters whose reasons say so (naming the id); the rows Debezium writes
// around them are applied.
func TestE2EAvroBadInput(t *testing.T) {
	st := stacktest.New(t)
	topic := avroItemsSource(t, st, nil)
	st.Exec(`INSERT INTO public.items VALUES (1, 'before the poison', 1, now(), '{}', NULL)`)
	records := st.ReadUntil(60*time.Second, func(rs []recording.Record) bool { return len(rs) >= 1 })
	good := records[0]
	produce(t, st.Env.KafkaBootstrap, topic, good.Key, []byte(`{"schema":{"type":"struct"},"payload":{}}`))
	unknown := append([]byte{0, 0x7f, 0xff, 0xff, 0xfe}, good.Value[5:]...)
	produce(t, st.Env.KafkaBootstrap, topic, good.Key, unknown)
	st.Exec(`INSERT INTO public.items VALUES (3, 'after the poison', 3, now(), '{}', NULL)`)

	targetURL, target := itemsTarget(t)
	p := startPgsink(t, avroConfig(t, st, topic, "public.items", ""), "TARGET_URL="+targetURL)
	defer p.stop(30 * time.Second)
	convergeTo(t, st, targetURL, `SELECT `+itemsColumns+` FROM public.items ORDER BY id`, "rows around the poison applied")
	var reasons []string
	eventually(t, 60*time.Second, "two dead letters", func() (bool, string) {
		rows, err := target.Query(context.Background(), `SELECT error FROM pgsink.dead_letters ORDER BY "offset"`)
		if err != nil {
			return false, err.Error()
		}
		reasons, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err == nil && len(reasons) == 2, fmt.Sprintf("%d dead letters: %v", len(reasons), reasons)
	})
	for i, want := range []string{"not the Confluent wire format", "schema id 2147483646"} {
		if !strings.Contains(reasons[i], want) {
			t.Errorf("dead letter %d: %q does not say %q", i, reasons[i], want)
		}
	}
}

// TestE2EAvroConverterDefaultHeaders: Apicurio's AvroConverter left at
// apicurio.registry.headers.enabled (its default) writes each schema id in
// a binary record header and the body without the Confluent magic byte and
// id. Every record is bad input for encoding: avro, and each must become a
// dead letter with its reason and its headers byte for byte (they hold NUL
// bytes, which a JSON text column refuses), the offset moving on.
func TestE2EAvroConverterDefaultHeaders(t *testing.T) {
	st := stacktest.New(t)
	topic := avroItemsSource(t, st, func(overrides map[string]string) {
		for _, side := range []string{"key", "value"} {
			delete(overrides, side+".converter.apicurio.registry.headers.enabled")
		}
	})
	st.Exec(`INSERT INTO public.items VALUES (1, 'one', 1, now(), '{}', NULL), (2, 'two', 2, now(), '{}', NULL)`)
	records := st.ReadUntil(60*time.Second, func(rs []recording.Record) bool { return len(rs) >= 2 })
	if len(records[0].Headers) == 0 {
		t.Fatalf("the converter wrote no headers: %+v", records[0])
	}

	targetURL, target := itemsTarget(t)
	p := startPgsink(t, avroConfig(t, st, topic, "public.items", ""), "TARGET_URL="+targetURL)
	defer p.stop(30 * time.Second)
	eventually(t, 60*time.Second, "both records dead letters with their binary headers", func() (bool, string) {
		var n, withBinary int
		err := target.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE headers::text LIKE '%value_base64%')
			FROM pgsink.dead_letters WHERE error LIKE '%not the Confluent wire format%'`).Scan(&n, &withBinary)
		return err == nil && n == 2 && withBinary == 2, fmt.Sprintf("%d dead letters, %d with binary headers (%v)", n, withBinary, err)
	})
}

// avroItemsSource creates public.items at the source and a connector on
// Apicurio's Avro converter capturing it, its settings changed by change
// (if not nil); it returns the table's topic.
func avroItemsSource(t *testing.T, st *stacktest.T, change func(map[string]string)) string {
	t.Helper()
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	overrides := stacktest.AvroConverter(registry)
	overrides["table.include.list"] = "public.items"
	if change != nil {
		change(overrides)
	}
	st.RegisterDebezium("items", overrides)
	return st.TopicPrefix + ".public.items"
}
