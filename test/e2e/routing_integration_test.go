//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

const routedDDL = `(id integer PRIMARY KEY, name text NOT NULL, qty integer)`

// writeSource inserts, updates and deletes rows of each table, after the
// snapshot.
func writeSource(st *stacktest.T, tables ...string) {
	for i, tbl := range tables {
		st.Exec(fmt.Sprintf(`INSERT INTO %s SELECT g, 'row ' || g || ' of %d', g * %d FROM generate_series(3, 60) AS g`, tbl, i, i+1))
		st.Exec(fmt.Sprintf(`UPDATE %s SET name = name || ' (updated)', qty = qty + 1 WHERE id %% 4 = 0`, tbl))
		st.Exec(fmt.Sprintf(`DELETE FROM %s WHERE id %% 5 = 0`, tbl))
	}
}

// convergeTables waits until each source table equals its target table.
func convergeTables(t *testing.T, st *stacktest.T, targetURL string, sourceToTarget map[string]string) {
	t.Helper()
	for src, dst := range sourceToTarget {
		eventually(t, 120*time.Second, "target "+dst+" equals source "+src, func() (bool, string) {
			a := checksum(t, st.SourceURL, `SELECT id, name, qty FROM `+src+` ORDER BY id`)
			b := checksumOrMissing(t, targetURL, `SELECT id, name, qty FROM `+dst+` ORDER BY id`)
			return a == b, fmt.Sprintf("source %s, target %s", a, b)
		})
	}
}

// targetTables lists the tables of the target's schemas other than pgsink's.
func targetTables(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var got string
	err := conn.QueryRow(context.Background(), `SELECT string_agg(format('%I.%I', table_schema, table_name), ',' ORDER BY format('%I.%I', table_schema, table_name) COLLATE "C")
		FROM information_schema.tables WHERE table_schema IN ('public', 'sales')`).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestE2ETemplatedRouting: one Debezium connector over tables in two
// schemas, one templated rule deriving each target from the topic's
// capture groups (with schema.create applying to every match) and one
// explicit entry overriding it for one table; each table lands in its own
// target, through the snapshot, inserts, updates and deletes, and validate
// lists what the template resolved to for the cluster's topics.
func TestE2ETemplatedRouting(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE SCHEMA sales`)
	for _, tbl := range []string{`public.customers`, `public."Items"`, `sales.orders`, `sales.refunds`} {
		st.Exec(`CREATE TABLE ` + tbl + ` ` + routedDDL)
		st.Exec(`INSERT INTO ` + tbl + ` VALUES (1, 'snapshot one', 1), (2, 'snapshot two', 2)`)
	}
	st.RegisterDebezium("routing", map[string]string{"table.include.list": `public.customers,public.Items,sales.orders,sales.refunds`})

	targetURL, conn := targetWith(t, `CREATE SCHEMA sales`)
	prefix := regexp.QuoteMeta(st.TopicPrefix)
	cfg := tablesConfig(st, fmt.Sprintf(`  - topic_pattern: '%s\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
    schema: { create: true }
  - topic: %s.sales.refunds
    target: sales.refunds_override
    schema: { create: true }
`, prefix, st.TopicPrefix))
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)

	writeSource(st, `public.customers`, `public."Items"`, `sales.orders`, `sales.refunds`)
	convergeTables(t, st, targetURL, map[string]string{
		`public.customers`: `public.customers`, `public."Items"`: `public."Items"`,
		`sales.orders`: `sales.orders`, `sales.refunds`: `sales.refunds_override`,
	})
	if got, want := targetTables(t, conn), `public."Items",public.customers,sales.orders,sales.refunds_override`; got != want {
		t.Errorf("target tables %s, want %s (one per source table, the override's instead of the template's)", got, want)
	}

	out := pgsinkOutput(t, cfg, []string{"TARGET_URL=" + targetURL}, "validate")
	for _, want := range []string{
		fmt.Sprintf(`tables[0]: topic %s.public.Items → public."Items"`, st.TopicPrefix),
		fmt.Sprintf(`tables[0]: topic %s.sales.orders → sales.orders`, st.TopicPrefix),
		fmt.Sprintf(`tables[1]: topic %s.sales.refunds → sales.refunds_override`, st.TopicPrefix),
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}

// TestE2EOneTopicManyTables: Debezium's ByLogicalTableRouter merges three
// source tables into one topic; one entry routes each record by its
// source.table into its own target, the tables of one partition applied
// in one transaction with one offset. A record whose derived name is too
// long stops the partition at its offset, with the reason in status.
func TestE2EOneTopicManyTables(t *testing.T) {
	st := stacktest.New(t)
	long := strings.Repeat("l", 62)
	for _, tbl := range []string{"m_one", "m_two", long} {
		st.Exec(`CREATE TABLE public.` + tbl + ` ` + routedDDL)
	}
	st.Exec(`INSERT INTO public.m_one VALUES (1, 'snapshot one', 1), (2, 'snapshot two', 2)`)
	merged := st.TopicPrefix + ".merged"
	st.RegisterDebezium("merged", map[string]string{
		"table.include.list":                      "public.m_one,public.m_two," + "public." + long,
		"transforms":                              "merge",
		"transforms.merge.type":                   "io.debezium.transforms.ByLogicalTableRouter",
		"transforms.merge.topic.regex":            regexp.QuoteMeta(st.TopicPrefix) + `\.public\..*`,
		"transforms.merge.topic.replacement":      merged,
		"transforms.merge.key.enforce.uniqueness": "false",
	})

	targetURL, conn := targetWith(t, `SELECT 1`)
	cfg := tablesConfig(st, fmt.Sprintf(`  - topic: %s
    target: 'public.${source.table}_c'
    schema: { create: true }
`, merged))
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)

	// Both tables in one source transaction, so that batches mix them.
	st.Exec(`BEGIN; INSERT INTO public.m_one SELECT g, 'one', 1 FROM generate_series(100, 120) AS g;
		INSERT INTO public.m_two SELECT g, 'two', 2 FROM generate_series(100, 120) AS g; COMMIT`)
	writeSource(st, `public.m_one`, `public.m_two`)
	convergeTables(t, st, targetURL, map[string]string{`public.m_one`: `public.m_one_c`, `public.m_two`: `public.m_two_c`})
	if got, want := targetTables(t, conn), `public.m_one_c,public.m_two_c`; got != want {
		t.Errorf("target tables %s, want %s", got, want)
	}
	var partitions int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.offsets WHERE topic = $1`, merged).Scan(&partitions); err != nil || partitions != 1 {
		t.Fatalf("offset rows of %s: %d (%v), want 1: one partition, several tables", merged, partitions, err)
	}
	// The sweeper finds a record-derived table by the target its snapshot
	// end recorded (only m_one had rows to snapshot).
	eventually(t, 60*time.Second, "the snapshot of m_one swept in public.m_one_c", func() (bool, string) {
		var swept int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.snapshots WHERE target = 'public.m_one_c' AND swept_at IS NOT NULL`).Scan(&swept)
		return err == nil && swept == 1, fmt.Sprintf("%d swept (%v)", swept, err)
	})
	// Every record so far applied: the next one is the one that cannot be.
	var before int64
	eventually(t, 60*time.Second, "the stored offset reaches the topic's end", func() (bool, string) {
		end, err := stacktest.HighWatermark(st.Env.KafkaBootstrap, merged, 0)
		if err != nil {
			return false, err.Error()
		}
		if err := conn.QueryRow(context.Background(), `SELECT next_offset FROM pgsink.offsets WHERE topic = $1`, merged).Scan(&before); err != nil {
			return false, err.Error()
		}
		return before == end, fmt.Sprintf("stored %d, end %d", before, end)
	})

	// public.<62 l>_c is 64 bytes: no valid name; the partition stops at it.
	st.Exec(`INSERT INTO public.` + long + ` VALUES (1, 'too long a target', 1)`)
	st.Exec(`INSERT INTO public.m_one VALUES (1000, 'after the stop', 1)`)
	eventually(t, 90*time.Second, "the partition stops at the record with no valid target", func() (bool, string) {
		return strings.Contains(p.Logs(), "partition stopped"), "no 'partition stopped' in the log yet"
	})
	var report struct {
		Partitions []struct {
			Topic      string `json:"topic"`
			NextOffset int64  `json:"next_offset"`
			Stopped    string `json:"stopped"`
		} `json:"partitions"`
	}
	// The worker logs the stop before it writes the offsets row that
	// status reads: the row is waited for, not expected at once.
	eventually(t, 30*time.Second, "pgsink status shows the partition stopped with the template's reason", func() (bool, string) {
		out := pgsinkOutput(t, cfg, []string{"TARGET_URL=" + targetURL}, "status", "--json")
		report.Partitions = nil // no field left from the look before
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return len(report.Partitions) == 1 && strings.Contains(report.Partitions[0].Stopped, "longer than 63 bytes"), string(out)
	})
	if got := report.Partitions[0].NextOffset; got != before {
		t.Errorf("stored next offset %d, want %d: unmoved by the record that cannot be routed", got, before)
	}
	var after int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM public.m_one_c WHERE id = 1000`).Scan(&after); err != nil || after != 0 {
		t.Errorf("row 1000 of m_one in the target: %d (%v), want none past the stop", after, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}

// TestE2EOutboxSplitByAggregateType: the Outbox Event Router sends every
// event to one topic, its aggregatetype in a header; one entry routes each
// event by that header into the table of its aggregate type.
func TestE2EOutboxSplitByAggregateType(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL,
		type text NOT NULL, payload jsonb)`)
	topic := st.TopicPrefix + ".outbox.all"
	router := stacktest.OutboxRouter(st.TopicPrefix)
	router["transforms.outbox.route.topic.replacement"] = topic
	router["transforms.outbox.table.fields.additional.placement"] = "type:header:eventType,aggregatetype:header:aggregatetype"
	st.RegisterDebezium("outbox", router)

	targetURL, conn := targetWith(t, `CREATE SCHEMA sales;
		CREATE TABLE sales.order (id text PRIMARY KEY, status text NOT NULL);
		CREATE TABLE sales.invoice (id text PRIMARY KEY, status text NOT NULL)`)
	p := startPgsink(t, tablesConfig(st, fmt.Sprintf(`  - topic: %s
    format: outbox
    key: [id]
    target: 'sales.${header.aggregatetype}'
    payload: { id: $.id, status: $.status }
`, topic)), "TARGET_URL="+targetURL)

	for i := 1; i <= 10; i++ {
		for _, agg := range []string{"order", "invoice"} {
			st.Exec(`INSERT INTO public.outbox VALUES (gen_random_uuid(), $1, $2, 'Created', jsonb_build_object('id', $2::text, 'status', 'created'))`,
				agg, fmt.Sprintf("%s-%d", agg, i))
			if i%2 == 0 {
				st.Exec(`INSERT INTO public.outbox VALUES (gen_random_uuid(), $1, $2, 'Done', jsonb_build_object('id', $2::text, 'status', 'done'))`,
					agg, fmt.Sprintf("%s-%d", agg, i))
			}
		}
	}
	for _, agg := range []string{"order", "invoice"} {
		want := fmt.Sprintf(`SELECT '%[1]s-' || i AS id, CASE WHEN i %% 2 = 0 THEN 'done' ELSE 'created' END AS status FROM generate_series(1, 10) AS i ORDER BY 1`, agg)
		got := fmt.Sprintf(`SELECT id, status FROM sales.%s ORDER BY 1`, agg)
		eventually(t, 90*time.Second, "sales."+agg+" built from its aggregate type's events", func() (bool, string) {
			w, g := checksum(t, targetURL, want), checksumOrMissing(t, targetURL, got)
			return w == g, fmt.Sprintf("want %s, got %s", w, g)
		})
	}
	var partitions int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.offsets WHERE topic = $1`, topic).Scan(&partitions); err != nil || partitions != 1 {
		t.Fatalf("offset rows of %s: %d (%v), want 1", topic, partitions, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
