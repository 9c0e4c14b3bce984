package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
)

const routerTestConfig = `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic_pattern: 'app\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
    deletes: soft
  - topic: app.public.orders
    target: public.order_override
  - topic_pattern: 'fixed\..*'
    target: public.fixed
  - topic: merged
    target: 'public.${source.table}'
  - topic: outbox
    format: outbox
    key: [id]
    target: 'events.${header.aggregatetype}'
  - topic: outbox_fields
    format: outbox
    key: [id]
    target: 'events.${field.kind}'
`

// testRouter is a Router whose targets are known in advance, so that no
// catalog is read: every target a test routes to must be in targets.
func testRouter(t testing.TB, src string, targets ...config.TableName) *Router {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(cfg, nil)
	for _, n := range targets {
		r.tables[n.String()] = &Table{Schema: n.Schema, Name: n.Name}
	}
	return r
}

func TestRouterTemplates(t *testing.T) {
	r := testRouter(t, routerTestConfig,
		config.TableName{Schema: "public", Name: "customers"}, config.TableName{Schema: "Sales", Name: "Order"},
		config.TableName{Schema: "public", Name: "order_override"}, config.TableName{Schema: "public", Name: "a"},
		config.TableName{Schema: "public", Name: "b"}, config.TableName{Schema: "events", Name: "Order"},
		config.TableName{Schema: "events", Name: "Invoice"})
	ctx := context.Background()
	route := func(topic, schema, table string, headers ...debezium.Header) (*Table, error) {
		ch := debezium.Change{Topic: topic, Kind: debezium.KindChange, Schema: schema, Table: table}
		return r.resolve(ctx, &ch, headers)
	}
	tests := []struct {
		topic, schema, table string
		headers              []debezium.Header
		want                 string // the target's Ref, or the error's text
	}{
		{topic: "app.public.customers", want: "public.customers"},
		{topic: "app.Sales.Order", want: "Sales.Order"},
		{topic: "app.public.orders", want: "public.order_override"},
		{topic: "merged", schema: "public", table: "a", want: "public.a"},
		{topic: "merged", schema: "public", table: "b", want: "public.b"},
		{topic: "outbox", headers: []debezium.Header{{Key: "aggregatetype", Value: []byte("Order")}}, want: "events.Order"},
		{topic: "merged", schema: "public", want: `tables[3]: target "public.${source.table}" for topic "merged": ${source.table} is empty in the record`},
		{topic: "outbox", want: `tables[4]: target "events.${header.aggregatetype}" for topic "outbox": the record has no header "aggregatetype"`},
		{topic: "app.public.x.y", want: `tables[0]: target "${schema}.${table}" for topic "app.public.x.y": ${table} is "x.y", whose dot makes the schema.table name ambiguous`},
		{topic: "nothing", want: `topic "nothing": no table is configured for this topic`},
	}
	for _, tt := range tests {
		got, err := route(tt.topic, tt.schema, tt.table, tt.headers...)
		var text string
		if err != nil {
			text = err.Error()
		} else {
			text = got.Ref()
		}
		if text != tt.want {
			t.Errorf("route %s %s.%s %v = %s; want %s", tt.topic, tt.schema, tt.table, tt.headers, text, tt.want)
		}
	}
	outbox := func(fields map[string]any) (*Table, error) {
		ch := debezium.Change{Topic: "outbox_fields", Kind: debezium.KindOutbox, Outbox: &debezium.OutboxEvent{Fields: fields}}
		return r.resolve(ctx, &ch, nil)
	}
	if got, err := outbox(map[string]any{"kind": "Invoice"}); err != nil || got.Ref() != "events.Invoice" {
		t.Errorf("outbox routed by its envelope field kind: %v, %v; want events.Invoice", got, err)
	}
	if _, err := outbox(map[string]any{"kind": 7.0}); err == nil || !strings.Contains(err.Error(), `no string envelope field (outbox events only) "kind"`) {
		t.Errorf("outbox with a numeric kind: %v; want an error naming the field", err)
	}
	// One state per derived table: the same pointer for the same target,
	// distinct tables for the records of one topic.
	a1, _ := route("merged", "public", "a")
	a2, _ := route("merged", "public", "a")
	b, _ := route("merged", "public", "b")
	if a1 != a2 || a1 == b {
		t.Errorf("per-record routes: a %p and %p (want equal), b %p (want different)", a1, a2, b)
	}
	var tmplErr *config.TemplateError
	if _, err := route("merged", "public", ""); !errors.As(err, &tmplErr) {
		t.Errorf("want a *config.TemplateError the partition stops with, got %T", err)
	}
}

// routerBenchConfigs are the same 200 topics routed by explicit entries, by
// one topic template, and by one record template.
func routerBenchConfigs() (explicit, templated, record string, targets []config.TableName, changes []debezium.Change) {
	const topics = 200
	head := "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n"
	explicit = head
	for i := 0; i < topics; i++ {
		explicit += fmt.Sprintf("  - topic: app.public.t%d\n    target: public.t%d\n", i, i)
		targets = append(targets, config.TableName{Schema: "public", Name: fmt.Sprintf("t%d", i)})
		changes = append(changes, debezium.Change{Topic: fmt.Sprintf("app.public.t%d", i), Kind: debezium.KindChange, Schema: "public", Table: fmt.Sprintf("t%d", i)})
	}
	templated = head + "  - topic_pattern: 'app\\.(?P<schema>[^.]+)\\.(?P<table>.+)'\n    target: '${schema}.${table}'\n"
	record = head + "  - topic_pattern: 'app\\..*'\n    target: '${source.schema}.${source.table}'\n"
	return explicit, templated, record, targets, changes
}

// warmRouter routes the first record of every topic, which derives and
// caches its route.
func warmRouter(b *testing.B, src string, targets []config.TableName, changes []debezium.Change) *Router {
	r := testRouter(b, src, targets...)
	for i := range changes {
		if _, err := r.resolve(context.Background(), &changes[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// BenchmarkRouterResolve routes records through explicit entries, one
// topic template and one record template, over the same topics.
func BenchmarkRouterResolve(b *testing.B) {
	explicit, templated, record, targets, changes := routerBenchConfigs()
	for _, bc := range []struct{ name, src string }{{"explicit", explicit}, {"templated", templated}, {"record", record}} {
		b.Run(bc.name, func(b *testing.B) {
			r := warmRouter(b, bc.src, targets, changes)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.resolve(ctx, &changes[i%len(changes)], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRouterTemplateRatio reports templated ÷ explicit routing cost
// from alternating rounds in one process, each side's fastest round: on a
// shared machine the minimum is what the code costs, the rest is
// neighbours. Run with -benchtime 1x.
func BenchmarkRouterTemplateRatio(b *testing.B) {
	explicit, templated, record, targets, changes := routerBenchConfigs()
	routers := []*Router{warmRouter(b, explicit, targets, changes), warmRouter(b, templated, targets, changes), warmRouter(b, record, targets, changes)}
	const rounds, perRound = 40, 200_000
	best := []time.Duration{time.Hour, time.Hour, time.Hour}
	ctx := context.Background()
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		for k, r := range routers {
			start := time.Now()
			for i := 0; i < perRound; i++ {
				if _, err := r.resolve(ctx, &changes[i%len(changes)], nil); err != nil {
					b.Fatal(err)
				}
			}
			best[k] = min(best[k], time.Since(start))
		}
	}
	perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / perRound }
	b.ReportMetric(perOp(best[0]), "explicit-ns/op")
	b.ReportMetric(perOp(best[1]), "templated-ns/op")
	b.ReportMetric(perOp(best[2]), "record-ns/op")
	b.ReportMetric(float64(best[1])/float64(best[0]), "templated/explicit")
	b.ReportMetric(float64(best[2])/float64(best[0]), "record/explicit")
}

// A template that derives one target from two source tables makes a
// fan-in: the sweep after one table's snapshot would delete the rows of
// the other, which that snapshot did not read. With snapshot.reconcile on
// it is refused (the partition stops with the reason), never swept.
func TestRouterTemplateFanInWithReconcile(t *testing.T) {
	const head = "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n"
	tenants := config.TableName{Schema: "public", Name: "orders"}
	ctx := context.Background()
	route := func(r *Router, topic, schema string) error {
		ch := debezium.Change{Topic: topic, Kind: debezium.KindChange, Schema: schema, Table: "orders"}
		_, err := r.resolve(ctx, &ch, nil)
		return err
	}
	byRecord := head + "  - topic: merged\n    target: 'public.${source.table}'\n"
	r := testRouter(t, byRecord, tenants)
	if err := route(r, "merged", "tenant_a"); err != nil {
		t.Fatal(err)
	}
	if err := route(r, "merged", "tenant_a"); err != nil {
		t.Fatalf("the same source again: %v", err)
	}
	var shared *SharedTargetError
	if err := route(r, "merged", "tenant_b"); !errors.As(err, &shared) ||
		!strings.Contains(err.Error(), "tenant_a.orders") || !strings.Contains(err.Error(), "tenant_b.orders") {
		t.Fatalf("a second source table into public.orders: %v; want a *SharedTargetError naming both", err)
	}
	byTopic := head + "  - topic_pattern: '(?P<db>[a-z]+)\\.(?P<s>[a-z_]+)\\.(?P<t>[a-z]+)'\n    target: '${s}.${t}'\n"
	r = testRouter(t, byTopic, tenants)
	if err := route(r, "one.public.orders", "public"); err != nil {
		t.Fatal(err)
	}
	if err := route(r, "two.public.orders", "public"); !errors.As(err, &shared) {
		t.Fatalf("a second topic into public.orders: %v; want a *SharedTargetError", err)
	}
	for _, opts := range []string{"    snapshot: { reconcile: false }\n", "    deletes: ignore\n"} {
		r = testRouter(t, byRecord+opts, tenants)
		if err := errors.Join(route(r, "merged", "tenant_a"), route(r, "merged", "tenant_b")); err != nil {
			t.Errorf("fan-in with %s: %v; want it routed, no sweep follows", strings.TrimSpace(opts), err)
		}
	}
}

// A topic whose templated entry cannot derive its target stops its
// partition with the routing error, whatever the entry's encoding: the
// decoder must not read an Avro entry's records as the file's JSON (or
// without the registry) and dead-letter them as undecodable.
func TestRouterItemRoutingErrorBeforeDecode(t *testing.T) {
	r := testRouter(t, `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
schema_registry: { url: 'http://registry:8081' }
tables:
  - topic_pattern: 'app\.(?P<s>[^.]+)\.(?P<t>.+)'
    target: '${s}.${t}'
    encoding: avro
`)
	rec := debezium.Record{Topic: "app.public.x.y", Value: []byte{0, 0, 0, 0, 1, 2}}
	item, _, err := r.Item(context.Background(), r.NewDecoder(), rec)
	var tmplErr *config.TemplateError
	if !errors.As(err, &tmplErr) || item.Err != nil {
		t.Fatalf("Item: error %v, item error %v; want the *config.TemplateError, no dead letter", err, item.Err)
	}
}

// A tombstone stands for a delete pgsink applies only on a source table's
// topic whose deletes are applied: not an outbox's, not one whose deletes
// are ignored, not a topic no entry claims.
func TestRouterDeletesApplied(t *testing.T) {
	r := testRouter(t, `
postgres: { url: postgres://x }
kafka: { bootstrap.servers: x, group.id: g }
tables:
  - topic: hard
    target: public.hard
  - topic: soft
    target: public.soft
    deletes: soft
  - topic: ignored
    target: public.ignored
    deletes: ignore
  - topic: outbox
    format: outbox
    key: [id]
    target: public.events
`)
	for topic, want := range map[string]bool{"hard": true, "soft": true, "ignored": false, "outbox": false, "unclaimed": false} {
		if got := r.DeletesApplied(topic); got != want {
			t.Errorf("DeletesApplied(%q) = %v, want %v", topic, got, want)
		}
	}
}
