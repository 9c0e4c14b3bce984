package connector

import (
	"testing"

	"github.com/pgsink/pgsink/config"
)

func TestConsumerConfigForcesTheProtocol(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{
		"bootstrap.servers": "127.0.0.1:9092", "group.id": "g", "security.protocol": "SASL_SSL",
	}}
	m := *consumerConfig(cfg)
	want := map[string]any{
		"bootstrap.servers": "127.0.0.1:9092", "group.id": "g", "security.protocol": "SASL_SSL",
		"partition.assignment.strategy": "cooperative-sticky", "auto.offset.reset": "error",
		"enable.auto.offset.store": false, "enable.auto.commit": true, "topic.metadata.refresh.interval.ms": 5000,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	cfg.Apply.MaxBufferedBytes = 64 << 20
	if got := (*consumerConfig(cfg))["queued.max.messages.kbytes"]; got != 16384 {
		t.Errorf("queued.max.messages.kbytes = %v, want a quarter of max_buffered_bytes (16384)", got)
	}
	if got := (*consumerConfig(cfg))["fetch.queue.backoff.ms"]; got != 10 {
		t.Errorf("fetch.queue.backoff.ms = %v, want 10: pgsink applies backpressure itself", got)
	}
	cfg.Kafka["topic.metadata.refresh.interval.ms"] = "60000"
	if got := (*consumerConfig(cfg))["topic.metadata.refresh.interval.ms"]; got != "60000" {
		t.Errorf("a configured metadata refresh was overridden: %v", got)
	}
}

// With apply.offsets: kafka the group's offsets are the positions: the
// workers store them after each PostgreSQL commit (never librdkafka on its
// own), librdkafka commits what is stored every second, and apply.start
// decides where a new group begins.
func TestConsumerConfigOffsetsInKafka(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "b", "group.id": "g"}}
	cfg.Apply.Offsets = config.OffsetsKafka
	cfg.Apply.Start = config.StartEarliest
	m := *consumerConfig(cfg)
	want := map[string]any{"partition.assignment.strategy": "cooperative-sticky", "auto.offset.reset": "earliest",
		"enable.auto.offset.store": false, "enable.auto.commit": true, "auto.commit.interval.ms": 1000}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestProducerConfigIsIdempotentAndDropsConsumerKeys(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "b", "group.id": "g", "session.timeout.ms": "10000", "sasl.username": "u"}}
	m := *producerConfig(cfg)
	if m["enable.idempotence"] != true || m["acks"] != "all" || m["sasl.username"] != "u" {
		t.Errorf("producer config %v: want idempotence, acks=all and the security settings", m)
	}
	for _, k := range []string{"group.id", "session.timeout.ms"} {
		if _, ok := m[k]; ok {
			t.Errorf("consumer-only key %s passed to the producer", k)
		}
	}
}
