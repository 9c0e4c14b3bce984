//go:build integration

package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EStackSmoke proves the three services work together: a row inserted
// into a source table comes out of Kafka as a Debezium change event, read with
// confluent-kafka-go.
func TestE2EStackSmoke(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.smoke (id bigint PRIMARY KEY, name text NOT NULL)`)
	st.RegisterDebezium("smoke", map[string]string{"table.include.list": "public.smoke"})
	st.Exec(`INSERT INTO public.smoke VALUES (42, 'hello from postgres')`)

	topic := st.TopicPrefix + ".public.smoke"
	records := st.ReadUntil(90*time.Second, func(rs []recording.Record) bool { return len(rs) >= 1 })
	r := records[0]
	if r.Topic != topic {
		t.Fatalf("first record on topic %q, want %q", r.Topic, topic)
	}
	var key struct {
		Payload struct {
			ID int64 `json:"id"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(r.Key, &key); err != nil {
		t.Fatalf("key %s: %v", r.Key, err)
	}
	var value struct {
		Payload struct {
			Op    string `json:"op"`
			After struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"after"`
			Source struct {
				Connector string `json:"connector"`
				DB        string `json:"db"`
				Table     string `json:"table"`
			} `json:"source"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(r.Value, &value); err != nil {
		t.Fatalf("value %s: %v", r.Value, err)
	}
	p := value.Payload
	if key.Payload.ID != 42 || p.Op != "c" || p.After.ID != 42 || p.After.Name != "hello from postgres" ||
		p.Source.Connector != "postgresql" || p.Source.DB != st.SourceDB || p.Source.Table != "smoke" {
		t.Fatalf("unexpected change event:\nkey:   %s\nvalue: %s", r.Key, r.Value)
	}
}
