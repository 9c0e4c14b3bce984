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
// decides where a new group begins, resolved at the claim: librdkafka never
// resets an offset itself, which would jump over deleted records silently.
func TestConsumerConfigOffsetsInKafka(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "b", "group.id": "g"}}
	cfg.Apply.Offsets = config.OffsetsKafka
	cfg.Apply.Start = config.StartEarliest
	m := *consumerConfig(cfg)
	want := map[string]any{"partition.assignment.strategy": "cooperative-sticky", "auto.offset.reset": "error",
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

// Only the group member carries the instance's name: a status or fill
// client with it would fence the running instance out of its group.
func TestMemberConfigIsStaticOnlyForTheMember(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "b", "group.id": "g", "group.instance.id": "sink-0"}}
	cfg.Instance.Name = "sink-0"
	if m := *consumerConfig(cfg); m["group.instance.id"] != nil {
		t.Errorf("consumerConfig has group.instance.id %v, want none", m["group.instance.id"])
	}
	m := *memberConfig(cfg, "sink-0")
	if m["group.instance.id"] != "sink-0" || m["client.id"] != "sink-0" {
		t.Errorf("member config group.instance.id %v, client.id %v: want sink-0 for both", m["group.instance.id"], m["client.id"])
	}
	cfg.Instance.Name = ""
	delete(cfg.Kafka, "group.instance.id")
	cfg.Kafka["client.id"] = "mine"
	m = *memberConfig(cfg, "host:42")
	if m["group.instance.id"] != nil || m["client.id"] != "mine" {
		t.Errorf("dynamic member config group.instance.id %v, client.id %v: want none and the configured client.id", m["group.instance.id"], m["client.id"])
	}
}

// KIP-848's consumer protocol assigns on the broker: the client refuses an
// assignment strategy.
func TestConsumerConfigUnderTheConsumerProtocol(t *testing.T) {
	cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "b", "group.id": "g", "group.protocol": "consumer"}}
	if m := *consumerConfig(cfg); m["partition.assignment.strategy"] != nil {
		t.Errorf("partition.assignment.strategy = %v under group.protocol=consumer, want unset", m["partition.assignment.strategy"])
	}
}
