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

// pipeline is one source table streamed into its target by one pgsink
// process whose metrics listen on port.
type pipeline struct {
	st        *stacktest.T
	targetURL string
	target    *pgx.Conn
	p         *process
	port      int
	topic     string
}

// driftPipeline is a source items table streamed into a target items table
// created beforehand (name NOT NULL there, as in the source), with pgsink
// running under the given schema.evolve.
type driftPipeline struct{ pipeline }

func newDriftPipeline(t *testing.T, evolve string) *driftPipeline {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i * 1.5, now(), jsonb_build_object('i', i), 'note ' || i FROM generate_series(1, 20) i`)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, conn := itemsTarget(t)
	d := &driftPipeline{pipeline{st: st, targetURL: targetURL, target: conn, port: freePort(t), topic: st.TopicPrefix + ".public.items"}}
	cfg := strings.Replace(itemsConfig(st, d.topic, "    schema: { evolve: "+evolve+" }\n"),
		"listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", d.port), 1)
	d.p = startPgsink(t, cfg, "TARGET_URL="+targetURL)
	d.converge(t, "the snapshot", itemsColumns)
	return d
}

// converge waits until source and target hold the same rows over columns.
func (d *driftPipeline) converge(t *testing.T, what, columns string) {
	t.Helper()
	query := `SELECT ` + columns + ` FROM public.items ORDER BY id`
	eventually(t, 60*time.Second, what, func() (bool, string) {
		src, dst := checksum(t, d.st.SourceURL, query), checksumOrMissing(t, d.targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
	})
}

// schemaChanges reads one series of pgsink_schema_changes_total (0 when absent).
func (d *driftPipeline) schemaChanges(change string) float64 {
	v, _ := metricValue(d.port, `pgsink_schema_changes_total{change="`+change+`",table="public.items"}`)
	return v
}

func (d *driftPipeline) deadLetters(t *testing.T) int {
	t.Helper()
	var n int
	if err := d.target.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.dead_letters`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var renameLogRE = regexp.MustCompile(`a column was likely renamed[^{\n]*(\{[^\n]*\})`)

// renameWarning waits for the likely-rename warning and returns its fields.
func (d *driftPipeline) renameWarning(t *testing.T) map[string]string {
	t.Helper()
	var fields map[string]string
	eventually(t, 60*time.Second, "the likely-rename warning", func() (bool, string) {
		m := renameLogRE.FindStringSubmatch(d.p.Logs())
		if m == nil {
			return false, "no warning logged"
		}
		if err := json.Unmarshal([]byte(m[1]), &fields); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return fields
}

// carryOver runs the UPDATE of a rename's fix on the target.
func (d *driftPipeline) carryOver(t *testing.T, fix string) {
	t.Helper()
	update, _, ok := strings.Cut(fix, "; then")
	if !ok || !strings.HasPrefix(update, "UPDATE ") {
		t.Fatalf("the rename's fix is no UPDATE followed by the drop: %q", fix)
	}
	if _, err := d.target.Exec(context.Background(), update); err != nil {
		t.Fatalf("the rename's carry-over %q: %v", update, err)
	}
}

// renameAndCarryOver renames the source's note to remark while rows keep
// changing, expects pgsink to report a likely rename (log and metric, not
// the unchanged-TOAST warning), runs the carry-over it names, and expects
// the target to equal the source over the source's current columns.
func renameAndCarryOver(t *testing.T, d *driftPipeline) {
	d.st.Exec(`UPDATE public.items SET note = 'before rename' WHERE id = 1`)
	d.st.Exec(`ALTER TABLE public.items RENAME COLUMN note TO remark`)
	d.st.Exec(`INSERT INTO public.items VALUES (101, 'after rename', 1, now(), '{}', 'new remark')`)
	d.st.Exec(`UPDATE public.items SET remark = NULL WHERE id = 4`)
	d.st.Exec(`UPDATE public.items SET remark = 'changed', amount = amount + 1 WHERE id IN (2, 3)`)
	fields := d.renameWarning(t)
	if fields["column"] != "note" || fields["new_column"] != "remark" {
		t.Fatalf("likely rename reported as %v, want note → remark", fields)
	}
	// The last change made touches amount: once it is applied, every
	// change since the rename is.
	d.converge(t, "the changes since the rename", `id, name, amount, updated_at, doc`)
	d.carryOver(t, fields["fix"])
	d.converge(t, "the target after the rename's carry-over", `id, name, amount, updated_at, doc, remark`)
	if got := d.schemaChanges("likely_rename"); got != 1 {
		t.Errorf("pgsink_schema_changes_total{change=likely_rename} = %v, want 1", got)
	}
	if strings.Contains(d.p.Logs(), "unchanged-TOAST") {
		t.Errorf("the rename was diagnosed as unchanged TOAST:\n%s", d.p.Logs())
	}
}

// TestE2ESchemaRenameAddColumns: under add_columns a source RENAME COLUMN is
// reported as a likely rename with the commands that carry the old values
// over; after them the target equals the source.
func TestE2ESchemaRenameAddColumns(t *testing.T) {
	d := newDriftPipeline(t, "add_columns")
	renameAndCarryOver(t, d)
	if n := d.deadLetters(t); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// TestE2ESchemaFollow: under follow, a rename is reported and carried over
// as under add_columns, and a source DROP COLUMN of a column NOT NULL in
// the target relaxes the target's constraint instead of sending every later
// change to the dead letters.
func TestE2ESchemaFollow(t *testing.T) {
	d := newDriftPipeline(t, "follow")
	renameAndCarryOver(t, d)

	d.st.Exec(`ALTER TABLE public.items DROP COLUMN name`)
	d.st.Exec(`INSERT INTO public.items VALUES (102, 2, now(), '{}', 'no name')`)
	d.st.Exec(`UPDATE public.items SET amount = 0 WHERE id IN (5, 101)`)
	d.converge(t, "the target after the source dropped name", `id, amount, updated_at, doc, remark`)
	var notNull bool
	if err := d.target.QueryRow(context.Background(), `SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'name'`).Scan(&notNull); err != nil {
		t.Fatal(err)
	}
	if notNull {
		t.Error("target column name is still NOT NULL")
	}
	if got := d.schemaChanges("drop_not_null"); got != 1 {
		t.Errorf("pgsink_schema_changes_total{change=drop_not_null} = %v, want 1", got)
	}
	if got := d.schemaChanges("missing_field"); got != 1 {
		t.Errorf("pgsink_schema_changes_total{change=missing_field} = %v, want 1 (name)", got)
	}
	if n := d.deadLetters(t); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if code, _ := d.p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2ESchemaStrict: under strict the first record whose fields differ
// from the target's columns stops its partition with the offset unmoved,
// and the log and metrics say why.
func TestE2ESchemaStrict(t *testing.T) {
	d := newDriftPipeline(t, "strict")
	hw, err := stacktest.HighWatermark(d.st.Env.KafkaBootstrap, d.topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.st.Exec(`ALTER TABLE public.items ADD COLUMN extra integer`)
	d.st.Exec(`INSERT INTO public.items VALUES (201, 'after add', 1, now(), '{}', 'n', 7)`)
	waitStoppedAt(t, d.port, d.target, d.topic, hw)
	logs := d.p.Logs()
	if !strings.Contains(logs, "schema.evolve is strict") || !strings.Contains(logs, "new fields extra") {
		t.Errorf("the stop does not name the new column and the policy:\n%s", logs)
	}
	if got := d.schemaChanges("new_field"); got != 1 {
		t.Errorf("pgsink_schema_changes_total{change=new_field} = %v, want 1", got)
	}
	var n int
	if err := d.target.QueryRow(context.Background(), `SELECT count(*) FROM public.items WHERE id = 201`).Scan(&n); err != nil || n != 0 {
		t.Errorf("row 201 in the target (%d, %v), want none", n, err)
	}
}
