//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// signalDDL is Debezium's signal table (signal.data.collection): a row
// inserted into it is an execute-snapshot request.
const signalDDL = `CREATE TABLE public.debezium_signal (id text PRIMARY KEY, type text NOT NULL, data text)`

// signalPipeline is a source items table of 20 rows, captured with its
// signal table by a connector, and the pgsink configuration of the items
// topic.
type signalPipeline struct {
	st        *stacktest.T
	topic     string
	connector string
	port      int
}

// itemRows inserts items lo..hi with contents fixed by their id, so that a
// target can be given the same rows before any snapshot.
const itemRows = `INSERT INTO public.items SELECT i, 'item ' || i, i, '2026-01-01T00:00:00Z', '{}', NULL FROM generate_series($1::int, $2::int) AS i`

func newSignalPipeline(t *testing.T, overrides map[string]string) *signalPipeline {
	p := &signalPipeline{st: stacktest.New(t)}
	p.st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	p.st.Exec(itemRows, 1, 20)
	p.st.Exec(signalDDL)
	p.topic = p.st.TopicPrefix + ".public.items"
	if err := stacktest.CreateTopic(context.Background(), p.st.Env.KafkaBootstrap, p.topic, 3); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{
		"table.include.list":     "public.items,public.debezium_signal",
		"signal.data.collection": "public.debezium_signal",
	}
	for k, v := range overrides {
		cfg[k] = v
	}
	p.connector = p.st.RegisterDebezium("items", cfg)
	p.port = freePort(t)
	return p
}

// config is the pgsink configuration of the items topic, metrics on the
// pipeline's port, tableExtra appended to the table entry.
func (p *signalPipeline) config(tableExtra string) string {
	return strings.Replace(itemsConfig(p.st, p.topic, tableExtra), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", p.port), 1)
}

// signal asks the connector for a snapshot: data is the signal's JSON.
func (p *signalPipeline) signal(id, data string) {
	p.st.Exec(`INSERT INTO public.debezium_signal VALUES ($1, 'execute-snapshot', $2)`, id, data)
}

// metric reads one series of the running pgsink (0 while it is absent).
func (p *signalPipeline) metric(series string) float64 {
	v, _ := metricValue(p.port, series)
	return v
}

const unsweptOff = `pgsink_snapshot_sweeps_skipped_total{reason="reconcile_off",table="public.items"}`

// TestE2EPartialSnapshotsNotSwept: snapshots that read part of a table — an
// initial snapshot under snapshot.select.statement.overrides, a blocking
// snapshot with additional-conditions — carry the same source.snapshot
// marks as whole ones, so pgsink cannot tell them apart; the table's
// snapshot.reconcile: false keeps the rows they did not select, and each
// completed snapshot is counted and warned about as not reconciled.
// pgsink validate, reading the connector from Kafka Connect, names the table
// while its reconcile is on.
func TestE2EPartialSnapshotsNotSwept(t *testing.T) {
	ctx := context.Background()
	p := newSignalPipeline(t, map[string]string{
		"snapshot.select.statement.overrides":              "public.items",
		"snapshot.select.statement.overrides.public.items": "SELECT * FROM public.items WHERE id <= 10",
	})
	targetURL, target := itemsTarget(t)
	// Rows 11..20 reached the target some other way, at no version: a
	// sweep after either snapshot would delete them.
	if _, err := target.Exec(ctx, `INSERT INTO public.items (id, name, amount, updated_at, doc) SELECT i, 'item ' || i, i, '2026-01-01T00:00:00Z', '{}' FROM generate_series(11, 20) AS i`); err != nil {
		t.Fatal(err)
	}

	// validate reads the connector from Kafka Connect (debezium.connect_url)
	// and names the table while it reconciles.
	withConnect := "debezium:\n  connect_url: " + p.st.Env.ConnectURL + "\n"
	const finding = "snapshot.select.statement.overrides=public.items"
	writeYAML := func(yaml string) string {
		path := filepath.Join(t.TempDir(), "pgsink.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	code, out, _ := validate(t, writeYAML(p.config("")+withConnect), "TARGET_URL="+targetURL)
	if code != 1 || !strings.Contains(out, "tables[0].snapshot.reconcile: error: connector \""+p.connector+"\" "+finding) || !strings.Contains(out, "set snapshot.reconcile: false") {
		t.Fatalf("validate with snapshot.reconcile on: exit %d, want 1 and the partial snapshot at tables[0]:\n%s", code, out)
	}
	notReconciling := p.config("    snapshot: { reconcile: false }\n")
	if _, out, _ := validate(t, writeYAML(notReconciling+withConnect), "TARGET_URL="+targetURL); strings.Contains(out, finding) {
		t.Fatalf("validate with snapshot.reconcile: false still reports the partial snapshot:\n%s", out)
	}

	proc := startPgsink(t, notReconciling, "TARGET_URL="+targetURL)
	converge := itemsConverge(t, p.st, targetURL, 90*time.Second)
	converge("the initial snapshot of rows 1..10: rows 11..20 kept")
	eventually(t, 30*time.Second, "the initial snapshot counted as not reconciled", func() (bool, string) {
		n := p.metric(unsweptOff)
		return n == 1, fmt.Sprintf("%s %v", unsweptOff, n)
	})

	p.st.Exec(`UPDATE public.items SET note = 'streamed' WHERE id % 4 = 0`)
	p.signal("blocking-filtered", `{"data-collections": ["public.items"], "type": "blocking",
		"additional-conditions": [{"data-collection": "public.items", "filter": "SELECT * FROM public.items WHERE id > 15"}]}`)
	eventually(t, 90*time.Second, "the blocking snapshot of rows 16..20 counted as not reconciled", func() (bool, string) {
		n := p.metric(unsweptOff)
		return n == 2, fmt.Sprintf("%s %v", unsweptOff, n)
	})
	converge("after the filtered blocking snapshot: rows 1..15 kept")
	var ends int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM pgsink.snapshots`).Scan(&ends); err != nil || ends != 0 {
		t.Fatalf("%d snapshot ends recorded for a table that does not reconcile (%v), want 0", ends, err)
	}
	if n := strings.Count(proc.Logs(), "is not reconciled"); n != 2 {
		t.Fatalf("%d warnings of a snapshot not reconciled, want 2 (one a snapshot)", n)
	}
	if code, _ := proc.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
