package connector

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
)

// consumerConfig passes every configured librdkafka property through and
// sets the ones pgsink's protocol depends on.
func consumerConfig(cfg *config.Config) *kafka.ConfigMap {
	m := kafka.ConfigMap{}
	for k, v := range cfg.Kafka {
		m[k] = v
	}
	// Only the group member (memberConfig) takes the instance's name: a
	// fill's or status's client carrying it would fence the running
	// instance out of its group.
	delete(m, "group.instance.id")
	// A configured topic Debezium has not created yet (it creates them on
	// the first event) is picked up at the next metadata refresh: librdkafka's
	// default of 5 minutes is too long a wait for the first rows of a table.
	if _, set := m["topic.metadata.refresh.interval.ms"]; !set {
		m["topic.metadata.refresh.interval.ms"] = 5000
	}
	// librdkafka prefetches into its own queue (64 MiB by default), outside
	// the Go heap: keep that at a quarter of apply.max_buffered_bytes, so
	// fetched-but-unapplied records stay within 1.25 times the budget
	// whatever the lag. The poll loop empties it as fast as it fills.
	if _, set := m["queued.max.messages.kbytes"]; !set && cfg.Apply.MaxBufferedBytes > 0 {
		m["queued.max.messages.kbytes"] = max(1024, int(cfg.Apply.MaxBufferedBytes/4/1024))
	}
	// pgsink's own buffer applies backpressure by not polling, so
	// librdkafka's queue reaching its limit is normal here, not a reason
	// to stop fetching a partition for librdkafka's default of a second:
	// that stall, repeated each time the queue fills, slows the whole drain.
	if _, set := m["fetch.queue.backoff.ms"]; !set {
		m["fetch.queue.backoff.ms"] = 10
	}
	if m["group.protocol"] != GroupProtocolConsumer {
		m["partition.assignment.strategy"] = "cooperative-sticky"
	}
	// With group.protocol=consumer (KIP-848) the broker assigns, always
	// incrementally: the client refuses an assignment strategy, and the
	// rebalance callback sees the same incremental assign and revoke.
	if cfg.Apply.Offsets == config.OffsetsKafka {
		// At least once: the group's committed offsets are the positions.
		// A worker stores its partition's position only after the
		// PostgreSQL commit, and librdkafka commits what is stored in the
		// background, on revocation and on close, never past a batch not
		// applied. As in Kafka Connect, a crash re-applies what the last
		// commits did not cover (here at most a second); a synchronous
		// commit after every batch would cost a broker round trip each.
		// Every assignment names its offset (the committed one, or
		// apply.start resolved to a watermark at the claim), so librdkafka
		// never needs to pick one; left to pick, it would jump over
		// records that retention deleted under a committed offset, in
		// silence. With "error" such a hole stops the partition instead,
		// at its claim (begin) or while it runs (holes.go).
		m["auto.offset.reset"] = "error"
		m["enable.auto.offset.store"] = false
		m["enable.auto.commit"] = true
		if _, set := m["auto.commit.interval.ms"]; !set {
			m["auto.commit.interval.ms"] = 1000
		}
		return &m
	}
	// Positions come from PostgreSQL (I6): never let Kafka pick one.
	m["auto.offset.reset"] = "error"
	// Kafka's committed offsets only feed lag dashboards: store them after
	// each PostgreSQL commit and let librdkafka commit them in the background.
	m["enable.auto.offset.store"] = false
	m["enable.auto.commit"] = true
	return &m
}

// memberConfig is consumerConfig for the instance's group member.
func memberConfig(cfg *config.Config, owner string) *kafka.ConfigMap {
	m := consumerConfig(cfg)
	// A static member: restarted under the same name, it takes its
	// partitions back without waiting for the dead member's session to end.
	if cfg.Instance.Name != "" {
		(*m)["group.instance.id"] = cfg.Instance.Name
	}
	// The group's member list names each client: status tells a live owner
	// in the offsets table from a dead one by it.
	if _, set := (*m)["client.id"]; !set {
		(*m)["client.id"] = owner
	}
	return m
}

// GroupProtocolConsumer is the group.protocol value of KIP-848's consumer
// group protocol.
const GroupProtocolConsumer = "consumer"

func producerConfig(cfg *config.Config) *kafka.ConfigMap {
	m := kafka.ConfigMap{}
	for k, v := range cfg.Kafka {
		if k == "group.id" || k == "group.instance.id" || k == "session.timeout.ms" || k == "max.poll.interval.ms" {
			continue
		}
		m[k] = v
	}
	m["enable.idempotence"] = true
	m["acks"] = "all"
	return &m
}
