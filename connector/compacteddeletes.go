package connector

import (
	"bytes"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
)

// watchTombstones counts the tombstones whose delete event is gone.
//
// Debezium writes a delete as two records of the same key, back to back in
// the key's partition: the delete event, which pgsink applies, and a
// tombstone, which only lets log compaction remove the key's earlier
// records. Compaction may remove the delete event too, leaving the
// tombstone alone: a consumer that reads the partition after that (one
// that fell behind, a replay, a rebuild) never learns of the delete, and a
// row the target already holds for that key stays there.
//
// A tombstone alone carries no source position, so pgsink cannot apply it
// under the version guard: a replayed or re-emitted range would let it
// delete a row a newer event wrote. What it does is say so: each such
// tombstone counts in pgsink_compacted_deletes_total, the first one of a
// topic is logged, and `pgsink verify --repair` removes the rows the
// source no longer has. The count errs on the loud side: a partition
// claimed right between a delete and its tombstone counts that tombstone.
// A partition leaving the local path's direct state reads again from where
// the resolver's last apply left its row, often such a tombstone: it
// starts with the key of the record that apply took last (leaveDirect).
//
// Any record of the tombstone's key right before it is taken for its
// delete event, whatever it decoded to: a delete that went to the dead
// letters (undecodable, a decoder's panic, a type the target cannot take)
// was not lost to compaction, and the dead letter says so already.
// Compaction keeps a key's newest records only, so a record of the key
// still there before the tombstone means nothing of it was removed.
func (p *partition) watchTombstones(m *kafka.Message, ok bool) {
	if ok || m.Value != nil {
		p.previousKey = m.Key
		return
	}
	followsItsDelete := p.previousKey != nil && bytes.Equal(m.Key, p.previousKey)
	p.previousKey = nil
	if m.Key == nil || followsItsDelete || !p.router.DeletesApplied(p.id.Topic) {
		return
	}
	p.metrics.CompactedDeletes.WithLabelValues(p.id.Topic).Inc()
	if p.warned.first("compacted_delete", p.id.Topic) {
		p.log.Warn("a tombstone arrived without its delete event: log compaction removed the delete, "+
			"so a row the target holds for this key may be one the source deleted; "+
			"pgsink_compacted_deletes_total counts them, `pgsink verify --repair` removes such rows (logged once per topic)",
			zap.Int64("offset", int64(m.TopicPartition.Offset)))
	}
}
