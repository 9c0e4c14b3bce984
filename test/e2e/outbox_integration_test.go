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

// TestE2ERunOutbox: outbox events written to an outbox table flow through
// Debezium's Outbox Event Router and Kafka into a target table through
// `pgsink run`: per order the latest event wins, events of other types are
// filtered out, and the event ids are in the ledger.
func TestE2ERunOutbox(t *testing.T) { runOutbox(t, false) }

// TestE2EAvroOutbox is TestE2ERunOutbox with the router's connector on
// Apicurio's Avro converter and pgsink on encoding: avro.
func TestE2EAvroOutbox(t *testing.T) { runOutbox(t, true) }

func runOutbox(t *testing.T, avro bool) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL,
		type text NOT NULL, payload jsonb)`)
	connector := stacktest.OutboxRouter(st.TopicPrefix)
	encoding := ""
	if avro {
		registry, err := st.Env.Registry()
		if err != nil {
			t.Fatal(err)
		}
		stacktest.UseAvro(connector, registry)
		encoding = fmt.Sprintf("encoding: avro\nschema_registry: { url: %s }\n", stacktest.ConfluentAPI(registry))
	}
	st.RegisterDebezium("outbox", connector)

	targetURL := stacktest.OwnedTargetDatabase(t)
	target, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close(ctx)
	if _, err := target.Exec(ctx, `CREATE TABLE public.orders (order_id text PRIMARY KEY, customer_id bigint, status text NOT NULL, total numeric(12,2))`); err != nil {
		t.Fatal(err)
	}
	p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
metrics:
  listen: 127.0.0.1:0
tables:
  - topic: %s.outbox.event.Order
    format: outbox
    target: public.orders
    key: [order_id]
    event_types: [OrderCreated, OrderPaid]
    payload: { order_id: $.id, customer_id: $.customerId, status: $.status, total: $.total }
%s`, st.Env.KafkaBootstrap, st.ID, st.TopicPrefix, encoding), "TARGET_URL="+targetURL)

	for i := 1; i <= 20; i++ {
		st.Exec(`INSERT INTO public.outbox VALUES (gen_random_uuid(), 'Order', $1, 'OrderCreated',
			jsonb_build_object('id', $1::text, 'customerId', $2::int, 'status', 'created', 'total', $3::numeric))`,
			fmt.Sprintf("order-%d", i), i%5, fmt.Sprintf("%d.99", i))
		if i%2 == 0 {
			st.Exec(`INSERT INTO public.outbox VALUES (gen_random_uuid(), 'Order', $1, 'OrderPaid',
				jsonb_build_object('id', $1::text, 'customerId', $2::int, 'status', 'paid', 'total', $3::numeric))`,
				fmt.Sprintf("order-%d", i), i%5, fmt.Sprintf("%d.99", i))
		}
		if i%5 == 0 { // a type the table does not take
			st.Exec(`INSERT INTO public.outbox VALUES (gen_random_uuid(), 'Order', $1, 'OrderAudited',
				jsonb_build_object('id', $1::text, 'status', 'audited'))`, fmt.Sprintf("order-%d", i))
		}
	}
	// The usual outbox hygiene: rows deleted right after; the router ignores deletes.
	st.Exec(`DELETE FROM public.outbox`)

	want := `SELECT order_id, customer_id, status, total FROM (VALUES ` + expectedOrders() + `) AS v(order_id, customer_id, status, total) ORDER BY order_id`
	got := `SELECT order_id, customer_id, status, total FROM public.orders ORDER BY order_id`
	eventually(t, 90*time.Second, "orders table built from the outbox events", func() (bool, string) {
		w, g := checksum(t, targetURL, want), checksum(t, targetURL, got)
		return w == g, fmt.Sprintf("want %s, got %s", w, g)
	})
	var ledger int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM pgsink.outbox_events`).Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	if ledger != 30 {
		t.Errorf("%d event ids in the ledger, want 30 (20 created + 10 paid; the 4 audited events are filtered out)", ledger)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func expectedOrders() string {
	var rows string
	for i := 1; i <= 20; i++ {
		status := "created"
		if i%2 == 0 {
			status = "paid"
		}
		if rows != "" {
			rows += ", "
		}
		rows += fmt.Sprintf("('order-%d', %d::bigint, '%s', %d.99::numeric(12,2))", i, i%5, status, i)
	}
	return rows
}
