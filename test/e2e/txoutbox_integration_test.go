//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EOutboxRouterDropsCountedEvents records why apply.consistency:
// transaction refuses outbox tables (docs/transactions.md, Outbox tables),
// on the real Debezium: with provide.transaction.metadata=true, a source
// transaction that inserts an outbox row and deletes it (the usual outbox
// hygiene) has an END counting two events of the outbox table, while the
// Outbox Event Router writes one record, whose value has no transaction
// block. A transform before the router that copies the transaction block
// into a header (Kafka's HeaderFrom) does carry it through, which is not
// enough: the dropped delete is counted all the same.
func TestE2EOutboxRouterDropsCountedEvents(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL,
		type text NOT NULL, payload jsonb)`)
	connector := stacktest.OutboxRouter(st.TopicPrefix)
	connector["provide.transaction.metadata"] = "true"
	connector["transforms"] = "txid," + connector["transforms"]
	connector["transforms.txid.type"] = "org.apache.kafka.connect.transforms.HeaderFrom$Value"
	// HeaderFrom of Kafka 4.3 reads top-level fields only (a nested
	// transaction.id fails the task, field.syntax.version notwithstanding):
	// the whole transaction block goes into the header.
	connector["transforms.txid.fields"] = "transaction"
	connector["transforms.txid.headers"] = "tx"
	connector["transforms.txid.operation"] = "copy"
	// HeaderFrom fails the task on a tombstone (a null value), which the
	// router would drop anyway.
	connector["tombstones.on.delete"] = "false"
	connector["transforms.txid.predicate"] = "outboxTable"
	connector["predicates"] = "outboxTable"
	connector["predicates.outboxTable.type"] = "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"
	connector["predicates.outboxTable.pattern"] = `.*\.public\.outbox`
	name := st.RegisterDebezium("outbox", connector)

	st.Exec(`BEGIN;
		INSERT INTO public.outbox VALUES ('6a1c3a52-5b1e-4f37-9a55-0f3c1d2e4b10', 'Order', '7', 'OrderCreated', '{"id": 7}');
		DELETE FROM public.outbox;
		COMMIT`)

	txTopic := connector["topic.prefix"] + ".transaction"
	eventTopic := st.TopicPrefix + ".outbox.event.Order"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	records, err := stacktest.ReadUntil(ctx, st.Env.KafkaBootstrap, st.TopicPrefix, func(rs []recording.Record) bool {
		var end, event bool
		for _, r := range rs {
			end = end || r.Topic == txTopic && strings.Contains(string(r.Value), `"END"`)
			event = event || r.Topic == eventTopic
		}
		return end && event
	})
	if err != nil {
		for _, r := range records {
			t.Logf("read %s@%d headers %v: %s", r.Topic, r.Offset, r.Headers, r.Value)
		}
		if status, serr := stacktest.NewConnect(st.Env.ConnectURL).Status(context.Background(), name); serr == nil {
			t.Logf("connector: %+v", status)
		}
		t.Fatal(err)
	}
	// A little longer: a record the router let through for the delete
	// would arrive right after the insert's.
	time.Sleep(2 * time.Second)
	if records, err = stacktest.ReadUntil(ctx, st.Env.KafkaBootstrap, st.TopicPrefix, func(rs []recording.Record) bool { return len(rs) >= len(records) }); err != nil {
		t.Fatal(err)
	}

	var endID string
	var counted int64
	var events []recording.Record
	for _, r := range records {
		switch r.Topic {
		case txTopic:
			var v struct {
				Payload struct {
					Status          string `json:"status"`
					ID              string `json:"id"`
					DataCollections []struct {
						DataCollection string `json:"data_collection"`
						EventCount     int64  `json:"event_count"`
					} `json:"data_collections"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
			}
			if v.Payload.Status != "END" {
				continue
			}
			endID = v.Payload.ID
			for _, c := range v.Payload.DataCollections {
				if c.DataCollection == "public.outbox" {
					counted = c.EventCount
				}
			}
		case eventTopic:
			events = append(events, r)
		}
	}
	if counted != 2 || len(events) != 1 {
		t.Fatalf("END counts %d events of public.outbox and the router wrote %d records; want 2 counted (the insert and the delete) and 1 written", counted, len(events))
	}
	if strings.Contains(string(events[0].Value), `"total_order"`) {
		t.Errorf("the routed event carries a transaction block: %s", events[0].Value)
	}
	header, ok := events[0].Header("tx")
	endTx, _, _ := strings.Cut(endID, ":")
	if !ok || !strings.Contains(string(header), endTx+":") {
		t.Errorf("the routed event's tx header %q (present %v); want the END's transaction %s in it", header, ok, endTx)
	}
	t.Logf("END %s counts %d events of public.outbox; the router wrote %d, with header tx=%s", endID, counted, len(events), header)
}
