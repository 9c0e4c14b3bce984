package connector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/schemaregistry"
	"github.com/pgsink/pgsink/txapply"
)

// Inspector reads topic metadata and offsets from Kafka without joining the
// consumer group, for `replay` and `status`.
type Inspector struct {
	c *kafka.Consumer
	// markers decodes the transaction topic's END markers
	// (TransactionEnd), in the file's encoding.
	markers *markerRouter
}

// NewInspector connects with the configured Kafka settings.
func NewInspector(cfg *config.Config) (*Inspector, error) {
	c, err := kafka.NewConsumer(consumerConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	in := &Inspector{c: c, markers: &markerRouter{encoding: markerEncoding(cfg)}}
	if cfg.SchemaRegistry.URL != "" {
		// An END in Avro is read through the registry, as the resolver
		// reads it.
		client, err := schemaregistry.New(cfg.SchemaRegistry)
		if err != nil {
			c.Close()
			return nil, err
		}
		in.markers.schemas = client
	}
	return in, nil
}

// markerEncoding is the file's encoding as the resolver reads the
// transaction topic in it (a topic no table claims: sink.Router.Encoding).
func markerEncoding(cfg *config.Config) debezium.Encoding {
	switch cfg.Encoding {
	case config.EncodingAvro:
		return debezium.EncodingAvro
	case config.EncodingAuto:
		return debezium.EncodingAuto
	}
	return debezium.EncodingJSON
}

// Close releases the client.
func (in *Inspector) Close() { in.c.Close() }

// Topics lists the topics the configuration consumes that exist now.
func (in *Inspector) Topics(cfg *config.Config) ([]string, error) {
	md, err := in.c.GetMetadata(nil, true, 10000)
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	return configuredTopics(cfg, md), nil
}

// Partitions returns a topic's partition numbers.
func (in *Inspector) Partitions(topic string) ([]int32, error) {
	md, err := in.c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return nil, fmt.Errorf("kafka metadata of %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart || len(t.Partitions) == 0 {
		return nil, fmt.Errorf("topic %s does not exist", topic)
	}
	var ps []int32
	for _, p := range t.Partitions {
		ps = append(ps, p.ID)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps, nil
}

// Watermarks returns the earliest offset Kafka holds and the next one it
// will write.
func (in *Inspector) Watermarks(topic string, partition int32) (low, high int64, err error) {
	low, high, err = in.c.QueryWatermarkOffsets(topic, partition, 10000)
	if err != nil {
		return 0, 0, fmt.Errorf("watermarks of %s[%d]: %w", topic, partition, err)
	}
	return low, high, nil
}

// OffsetAt returns the first offset whose timestamp is at or after t; the
// high watermark when none is.
func (in *Inspector) OffsetAt(topic string, partition int32, t time.Time) (int64, error) {
	tp := kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(t.UnixMilli())}
	res, err := in.c.OffsetsForTimes([]kafka.TopicPartition{tp}, 10000)
	if err != nil || len(res) != 1 {
		return 0, fmt.Errorf("offset of %s[%d] at %s: %v", topic, partition, t.Format(time.RFC3339), err)
	}
	if res[0].Error != nil {
		return 0, fmt.Errorf("offset of %s[%d] at %s: %w", topic, partition, t.Format(time.RFC3339), res[0].Error)
	}
	if res[0].Offset < 0 { // no record at or after t
		_, high, err := in.Watermarks(topic, partition)
		return high, err
	}
	return int64(res[0].Offset), nil
}

// TimestampAt returns the Kafka timestamp of the first record at or after
// offset (the producer's create time, Debezium's produce time, or the
// append time of a LogAppendTime topic), waiting up to timeout for it. It
// assigns the partition to the inspector's client without joining the
// group and stores no offset, so it commits nothing.
func (in *Inspector) TimestampAt(topic string, partition int32, offset int64, timeout time.Duration) (time.Time, error) {
	m, err := in.recordAt(topic, partition, offset, timeout)
	if err != nil {
		return time.Time{}, err
	}
	return m.Timestamp, nil
}

// TransactionEnd reads the END marker at offset of the transaction topic:
// `pgsink status` shows the transaction the resolver waits at. Like
// TimestampAt, it joins no group and commits nothing.
func (in *Inspector) TransactionEnd(topic string, offset int64, timeout time.Duration) (txapply.End, error) {
	m, err := in.recordAt(topic, 0, offset, timeout)
	if err != nil {
		return txapply.End{}, err
	}
	if int64(m.TopicPartition.Offset) != offset {
		return txapply.End{}, fmt.Errorf("read %s[0]@%d: the next record is at %d", topic, offset, m.TopicPartition.Offset)
	}
	it, ok, err := in.markers.Item(context.Background(), nil, toRecord(dedup.PartitionID{Topic: topic}, m))
	if err != nil {
		return txapply.End{}, err
	}
	if !ok {
		return txapply.End{}, fmt.Errorf("%s[0]@%d is no END marker", topic, offset)
	}
	return txapply.End{Offset: offset, Marker: it.Change.TxMark, SourceTs: it.Change.EventTs}, nil
}

// recordAt reads the first record at or after offset, waiting up to
// timeout for it.
func (in *Inspector) recordAt(topic string, partition int32, offset int64, timeout time.Duration) (*kafka.Message, error) {
	tp := kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(offset)}
	if err := in.c.Assign([]kafka.TopicPartition{tp}); err != nil {
		return nil, fmt.Errorf("read %s[%d]@%d: %w", topic, partition, offset, err)
	}
	defer func() { _ = in.c.Unassign() }()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		switch e := in.c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return nil, fmt.Errorf("read %s[%d]@%d: %w", topic, partition, offset, e.TopicPartition.Error)
			}
			if e.TopicPartition.Partition == partition && int64(e.TopicPartition.Offset) >= offset {
				return e, nil
			}
		case kafka.Error:
			return nil, fmt.Errorf("read %s[%d]@%d: %w", topic, partition, offset, e)
		}
	}
	return nil, fmt.Errorf("read %s[%d]@%d: no record within %s", topic, partition, offset, timeout)
}

// configuredTopics lists the topics of md the configuration claims: named
// ones and those a topic_pattern matches.
func configuredTopics(cfg *config.Config, md *kafka.Metadata) []string {
	router := cfg.Router()
	set := map[string]bool{}
	for _, t := range router.NamedTopics() {
		set[t] = true
	}
	if md != nil {
		for name := range md.Topics {
			// A topic a rule matches but cannot route (ambiguous, a template
			// failing) is consumed too: its partitions stop with the reason.
			if _, err := router.Resolve(name); !errors.Is(err, config.ErrNoTable) {
				set[name] = true
			}
		}
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	return topics
}

// errNoTopics is returned when nothing is there to consume.
var errNoTopics = errors.New("no topic to consume: no table's topic exists and none is named")

// CleanupPolicy returns a topic's cleanup.policy ("delete", "compact" or
// both, comma-separated): whether Kafka may have dropped its old records.
func (in *Inspector) CleanupPolicy(ctx context.Context, topic string) (string, error) {
	admin, err := kafka.NewAdminClientFromConsumer(in.c)
	if err != nil {
		return "", fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		return "", fmt.Errorf("configuration of %s: %w", topic, err)
	}
	if len(res) != 1 || res[0].Error.Code() != kafka.ErrNoError {
		return "", fmt.Errorf("configuration of %s: %v", topic, res)
	}
	e, ok := res[0].Config["cleanup.policy"]
	if !ok {
		return "", fmt.Errorf("configuration of %s: no cleanup.policy", topic)
	}
	return e.Value, nil
}
