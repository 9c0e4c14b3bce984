package connector

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/sink"
)

// deadLetterTopic writes records that cannot be decoded to a Kafka topic, as
// Kafka Connect's errors.deadletterqueue does: the original key, value and
// headers, plus __connect.errors.* headers that say where the record came
// from and why it failed. It is written before the batch that moves the
// offset past the record is applied, so a crash in between repeats the
// dead letter rather than losing it (the topic is at-least-once).
type deadLetterTopic struct {
	producer *kafka.Producer // nil: dead letters go to the table
	topic    string
	group    string // named as the connector in the error headers
	owner    string // this instance, named in the task id
	metrics  *Metrics
}

// divert produces the failed items of batch to the topic and removes them
// from it; batch.Next still covers them. With no producer it leaves the
// batch alone and the sink writes them to the dead-letter table.
func (d *deadLetterTopic) divert(ctx context.Context, batch *sink.Batch) error {
	if d.producer == nil {
		return nil
	}
	kept := batch.Items[:0]
	var pending []chan kafka.Event
	for _, it := range batch.Items {
		if it.Err == nil {
			kept = append(kept, it)
			continue
		}
		r := it.Record
		stage, class := errorStage(it.Err)
		headers := make([]kafka.Header, 0, len(r.Headers)+8)
		for _, h := range r.Headers {
			headers = append(headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		headers = append(headers,
			kafka.Header{Key: "__connect.errors.topic", Value: []byte(r.Topic)},
			kafka.Header{Key: "__connect.errors.partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
			kafka.Header{Key: "__connect.errors.offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
			kafka.Header{Key: "__connect.errors.connector.name", Value: []byte(d.group)},
			kafka.Header{Key: "__connect.errors.stage", Value: []byte(stage)},
			kafka.Header{Key: "__connect.errors.class.name", Value: []byte(class)},
			kafka.Header{Key: "__connect.errors.exception.class.name", Value: []byte(fmt.Sprintf("%T", it.Err))},
			kafka.Header{Key: "__connect.errors.exception.message", Value: []byte(it.Err.Error())},
			// Kafka Connect numbers its tasks; pgsink's unit of work is an
			// instance applying a partition.
			kafka.Header{Key: "__connect.errors.task.id", Value: []byte(d.owner + "/" + strconv.Itoa(int(r.Partition)))},
		)
		var panicked *sink.PanicError
		if errors.As(it.Err, &panicked) {
			// Kafka Connect sends the exception's stack trace; a decoding
			// error has none worth sending, a recovered panic has its Go
			// stack.
			headers = append(headers, kafka.Header{Key: "__connect.errors.exception.stacktrace", Value: panicked.Stack})
		}
		done := make(chan kafka.Event, 1)
		topic := d.topic
		err := d.producer.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            r.Key, Value: r.Value, Headers: headers,
		}, done)
		if err != nil {
			return fmt.Errorf("dead-letter topic %s: produce %s[%d]@%d: %w", d.topic, r.Topic, r.Partition, r.Offset, err)
		}
		pending = append(pending, done)
	}
	for _, done := range pending {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-done:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				return fmt.Errorf("dead-letter topic %s: delivery failed: %w", d.topic, m.TopicPartition.Error)
			}
		}
	}
	if n := len(batch.Items) - len(kept); n > 0 {
		d.metrics.DeadLetters.WithLabelValues(batch.Claim.Topic, "topic").Add(float64(n))
	}
	batch.Items = kept
	return nil
}

// errorStage names, in Kafka Connect's terms, where a dead letter's record
// failed: decoding it (VALUE_CONVERTER, as Connect's converters), or, for a
// record that decoded but whose schema asks for a column type no DDL may
// name, handing it to the target (TASK_PUT, as a sink task's put).
func errorStage(err error) (stage, class string) {
	if typeErr := (*sink.TypeError)(nil); errors.As(err, &typeErr) {
		return "TASK_PUT", "pgsink.sink.Router"
	}
	return "VALUE_CONVERTER", "pgsink.connector.debezium.Decoder"
}
