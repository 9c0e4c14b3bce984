package stacktest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/test/recording"
)

// FromMessage converts a consumed message to its recorded form.
func FromMessage(m *kafka.Message) recording.Record {
	r := recording.Record{
		Topic:     *m.TopicPartition.Topic,
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Timestamp: m.Timestamp.UTC(),
	}
	if m.Key != nil {
		r.Key = recording.Bytes(m.Key)
	}
	if m.Value != nil {
		r.Value = recording.Bytes(m.Value)
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, recording.Header{Key: h.Key, Value: recording.Bytes(h.Value)})
	}
	return r
}

// ReadUntil consumes every topic whose name starts with prefix, from the
// beginning, until done reports true for the records read so far or ctx ends.
// Records come in the order read, each (topic, partition, offset) once.
// New topics are picked up within a second (Debezium creates them lazily).
func ReadUntil(ctx context.Context, bootstrap, prefix string, done func([]recording.Record) bool) ([]recording.Record, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":                  bootstrap,
		"group.id":                           fmt.Sprintf("stacktest-%d", time.Now().UnixNano()),
		"auto.offset.reset":                  "earliest",
		"enable.auto.commit":                 false,
		"topic.metadata.refresh.interval.ms": 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("stacktest: consumer: %w", err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{"^" + regexpQuote(prefix) + ".*"}, nil); err != nil {
		return nil, fmt.Errorf("stacktest: subscribe %s*: %w", prefix, err)
	}
	// The consumer commits nothing, so a rebalance (a new topic matching the
	// pattern) rewinds to the beginning: keep each offset once.
	type position struct {
		topic     string
		partition int32
		offset    int64
	}
	seen := map[position]bool{}
	var records []recording.Record
	for !done(records) {
		if err := ctx.Err(); err != nil {
			return records, fmt.Errorf("stacktest: read %s*: %d record(s) before %w", prefix, len(records), err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				return records, fmt.Errorf("stacktest: read %s*: %w", prefix, ev.TopicPartition.Error)
			}
			r := FromMessage(ev)
			if pos := (position{r.Topic, r.Partition, r.Offset}); !seen[pos] {
				seen[pos] = true
				records = append(records, r)
			}
		case kafka.Error:
			// Unknown-topic errors are expected while a regex matches nothing yet.
			if ev.IsFatal() {
				return records, fmt.Errorf("stacktest: read %s*: %w", prefix, ev)
			}
		}
	}
	return records, nil
}

// regexpQuote escapes the regex metacharacters librdkafka's regex subscription
// understands; topic names only contain [a-zA-Z0-9._-].
func regexpQuote(s string) string {
	return strings.NewReplacer(".", `\.`, "-", `\-`).Replace(s)
}

// DeleteTopics deletes every topic whose name starts with prefix.
func DeleteTopics(ctx context.Context, bootstrap, prefix string) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("stacktest: admin client: %w", err)
	}
	defer admin.Close()
	md, err := admin.GetMetadata(nil, true, 10000)
	if err != nil {
		return fmt.Errorf("stacktest: metadata: %w", err)
	}
	var topics []string
	for name := range md.Topics {
		if strings.HasPrefix(name, prefix) {
			topics = append(topics, name)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	results, err := admin.DeleteTopics(ctx, topics)
	if err != nil {
		return fmt.Errorf("stacktest: delete topics %v: %w", topics, err)
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrUnknownTopicOrPart {
			return fmt.Errorf("stacktest: delete topic %s: %w", r.Topic, r.Error)
		}
	}
	return nil
}

// CreateTopic creates a topic with the given partition count (replication
// factor 1, the local stack has one broker) and topic configs, if any.
func CreateTopic(ctx context.Context, bootstrap, name string, partitions int, configs ...map[string]string) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("stacktest: admin client: %w", err)
	}
	defer admin.Close()
	spec := kafka.TopicSpecification{Topic: name, NumPartitions: partitions, ReplicationFactor: 1, Config: map[string]string{}}
	for _, c := range configs {
		for k, v := range c {
			spec.Config[k] = v
		}
	}
	results, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{spec})
	if err != nil {
		return fmt.Errorf("stacktest: create topic %s: %w", name, err)
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("stacktest: create topic %s: %w", r.Topic, r.Error)
		}
	}
	return awaitTopicMetadata(ctx, admin, name, partitions)
}

// awaitTopicMetadata waits until the broker's metadata shows the topic
// with its partitions and their leaders. CreateTopics returns once the
// controller created it; on a loaded machine the broker's metadata cache
// has been seen to lag, and a client asking at once (pgsink validate, a
// consumer's subscription) is told the topic does not exist.
func awaitTopicMetadata(ctx context.Context, admin *kafka.AdminClient, name string, partitions int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := admin.GetMetadata(&name, false, 5000)
		if err == nil {
			if t, ok := md.Topics[name]; ok && t.Error.Code() == kafka.ErrNoError && len(t.Partitions) == partitions && allLed(t.Partitions) {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("stacktest: topic %s created but not in the broker's metadata with %d partitions after 30 s (last error: %v)", name, partitions, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func allLed(ps []kafka.PartitionMetadata) bool {
	for _, p := range ps {
		if p.Leader < 0 || p.Error.Code() != kafka.ErrNoError {
			return false
		}
	}
	return true
}

// HighWatermark returns the next offset Kafka will write to a partition.
func HighWatermark(bootstrap, topic string, partition int32) (int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "stacktest-watermarks"})
	if err != nil {
		return 0, fmt.Errorf("stacktest: consumer: %w", err)
	}
	defer c.Close()
	_, high, err := c.QueryWatermarkOffsets(topic, partition, 5000)
	if err != nil {
		return 0, fmt.Errorf("stacktest: watermarks of %s[%d]: %w", topic, partition, err)
	}
	return high, nil
}
