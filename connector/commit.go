package connector

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"go.uber.org/zap"
)

// committed records a batch's commit: the lag gauge, and the offset stored
// for librdkafka's background commit (lag dashboards only, I6).
func (r *Runner) committed(p *partition, next int64) {
	topic := p.id.Topic
	tp := kafka.TopicPartition{Topic: &topic, Partition: p.id.Partition, Offset: kafka.Offset(next)}
	r.faults.Failpoints.Hit("after-commit")
	// With apply.offsets: kafka the stored offset is the position (at
	// least once: librdkafka commits it in the background); otherwise it
	// only feeds lag dashboards.
	if _, err := r.consumer.StoreOffsets([]kafka.TopicPartition{tp}); err != nil {
		if r.cfg.Apply.Offsets == config.OffsetsKafka {
			p.log.Warn("store offset (apply.offsets: kafka): the batch may be applied again after a restart", zap.Error(err))
		} else {
			p.log.Debug("store offset for lag", zap.Error(err))
		}
	}
	if _, armed := r.faults.Failpoints["after-kafka-commit"]; armed {
		// Commit now rather than at the next auto-commit, so the point is
		// really after Kafka holds the offset.
		if _, err := r.consumer.CommitOffsets([]kafka.TopicPartition{tp}); err != nil {
			p.log.Debug("commit offset for lag", zap.Error(err))
		}
		r.faults.Failpoints.Hit("after-kafka-commit")
	}
	if _, high, err := r.consumer.GetWatermarkOffsets(topic, p.id.Partition); err == nil && high >= next {
		r.metrics.Lag.WithLabelValues(p.labels[0], p.labels[1]).Set(float64(high - next))
	}
}
