//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// hostilePrecision is the schema parameter of issue 21: before the fix,
// schema.create wrote it into CREATE TABLE, and the simple protocol ran
// the DROP TABLE after it.
const hostilePrecision = "10,2)); DROP TABLE victim; --"

// injectionPipeline is a topic fed directly by a producer with two
// recorded all_types change events, the first with its numeric column's
// connect.decimal.precision made hostile, and a target holding a table
// named victim.
type injectionPipeline struct {
	st        *stacktest.T
	topic     string
	targetURL string
	target    *pgx.Conn
}

func newInjectionPipeline(t *testing.T) *injectionPipeline {
	st := stacktest.New(t)
	ip := &injectionPipeline{st: st, topic: st.TopicPrefix + ".public.items", targetURL: stacktest.OwnedTargetDatabase(t)}
	ctx := context.Background()
	var err error
	if ip.target, err = pgx.Connect(ctx, ip.targetURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ip.target.Close(context.Background()) })
	if _, err := ip.target.Exec(ctx, `CREATE TABLE public.victim (id int); INSERT INTO public.victim VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, ip.topic, 1); err != nil {
		t.Fatal(err)
	}
	events := recordedAllTypes(t, 2)
	produce(t, st.Env.KafkaBootstrap, ip.topic, []byte(events[0].Key), withPrecision(t, []byte(events[0].Value), hostilePrecision))
	produce(t, st.Env.KafkaBootstrap, ip.topic, []byte(events[1].Key), []byte(events[1].Value))
	return ip
}

// recordedAllTypes returns the first n change events of distinct rows of
// the recorded all_types table.
func recordedAllTypes(t *testing.T, n int) []recording.Record {
	t.Helper()
	records, err := recording.ReadFile(filepath.Join("..", "..", "testdata", "debezium", "identity_default", "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []recording.Record
	keys := map[string]bool{}
	for _, r := range records {
		if strings.HasSuffix(r.Topic, ".public.all_types") && r.Value != nil && !keys[string(r.Key)] &&
			strings.Contains(string(r.Value), `"op":"r"`) {
			keys[string(r.Key)] = true
			out = append(out, r)
		}
	}
	if len(out) < n {
		t.Fatalf("%d recorded all_types snapshot events, want %d", len(out), n)
	}
	return out[:n]
}

// withPrecision sets every connect.decimal.precision parameter of a
// recorded value's schema to precision, leaving every other byte as the
// converter wrote it (the decoder reads the schema before the payload).
func withPrecision(t *testing.T, value []byte, precision string) []byte {
	t.Helper()
	param := regexp.MustCompile(`"connect\.decimal\.precision":"[0-9]+"`)
	quoted, err := json.Marshal(precision)
	if err != nil {
		t.Fatal(err)
	}
	if !param.Match(value) {
		t.Fatal("the recorded value has no connect.decimal.precision to make hostile")
	}
	return param.ReplaceAllLiteral(value, append([]byte(`"connect.decimal.precision":`), quoted...))
}

// config writes the topic into public.items, created from the records'
// schema, under errors.tolerance (top-level, after the table entry).
func (ip *injectionPipeline) config(tolerance string) string {
	return itemsConfig(ip.st, ip.topic, "    schema: { create: true }\nerrors:\n  tolerance: "+tolerance+"\n")
}

func (ip *injectionPipeline) victimRows(t *testing.T) int {
	t.Helper()
	var n int
	if err := ip.target.QueryRow(context.Background(), `SELECT count(*) FROM public.victim`).Scan(&n); err != nil {
		t.Fatalf("victim is gone or unreadable: %v", err)
	}
	return n
}

// TestE2EHostileDecimalPrecision (issue 21): a record whose schema gives
// connect.decimal.precision = "10,2)); DROP TABLE victim; --", under
// schema.create, goes to the dead letters with a reason naming the
// parameter; victim still exists, and the next record creates the target
// and is applied.
func TestE2EHostileDecimalPrecision(t *testing.T) {
	ip := newInjectionPipeline(t)
	p := startPgsink(t, ip.config("all"), "TARGET_URL="+ip.targetURL)
	ctx := context.Background()
	eventually(t, 60*time.Second, "the good record applied after the hostile one", func() (bool, string) {
		var rows int
		err := ip.target.QueryRow(ctx, `SELECT count(*) FROM public.items`).Scan(&rows)
		return err == nil && rows == 1, fmt.Sprintf("rows %d, %v", rows, err)
	})
	var offset int64
	var reason, target string
	if err := ip.target.QueryRow(ctx, `SELECT "offset", error, coalesce(target, '') FROM pgsink.dead_letters WHERE topic = $1`, ip.topic).
		Scan(&offset, &reason, &target); err != nil {
		t.Fatalf("no dead letter for the hostile record: %v", err)
	}
	if offset != 0 || !strings.Contains(reason, "connect.decimal.precision") || !strings.Contains(reason, "is not an integer") ||
		!strings.Contains(reason, "c_numeric") || target != "public.items" {
		t.Errorf("dead letter at offset %d for %q: %q; want offset 0 and a reason naming c_numeric's connect.decimal.precision", offset, target, reason)
	}
	t.Logf("dead letter of offset %d: %s", offset, reason)
	if n := ip.victimRows(t); n != 1 {
		t.Errorf("victim has %d rows, want 1", n)
	}
	var numericType string
	if err := ip.target.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'public.items'::regclass AND attname = 'c_numeric'`).Scan(&numericType); err != nil || numericType != "numeric(12,2)" {
		t.Errorf("c_numeric created as %q (%v), want numeric(12,2) from the good record", numericType, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2EHostileDecimalPrecisionToleranceNone: under errors.tolerance
// none the same record stops its partition with the offset unmoved and
// nothing written; victim still exists.
func TestE2EHostileDecimalPrecisionToleranceNone(t *testing.T) {
	ip := newInjectionPipeline(t)
	p := startPgsink(t, ip.config("none"), "TARGET_URL="+ip.targetURL)
	eventually(t, 60*time.Second, "the partition stops at the hostile record", func() (bool, string) {
		return strings.Contains(p.Logs(), "partition stopped"), "no 'partition stopped' in the log yet"
	})
	if !strings.Contains(p.Logs(), "connect.decimal.precision") {
		t.Errorf("the log does not say which parameter stopped the partition")
	}
	ctx := context.Background()
	var next int64
	err := ip.target.QueryRow(ctx, `SELECT next_offset FROM pgsink.offsets WHERE topic = $1`, ip.topic).Scan(&next)
	if err != nil && err != pgx.ErrNoRows || next != 0 {
		t.Errorf("stored next offset %d (%v), want 0 or none: the hostile record's offset is not passed", next, err)
	}
	// Routing the batch may have created the target from the good record
	// after the hostile one; no row may be written past the stop.
	var created bool
	if err := ip.target.QueryRow(ctx, `SELECT to_regclass('public.items') IS NOT NULL`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created {
		var rows int
		if err := ip.target.QueryRow(ctx, `SELECT count(*) FROM public.items`).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("public.items has %d rows (%v), want none past the stop", rows, err)
		}
	}
	if n := ip.victimRows(t); n != 1 {
		t.Errorf("victim has %d rows, want 1", n)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
