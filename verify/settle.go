package verify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// Mark is a partition's high watermark.
type Mark struct {
	Topic     string
	Partition int32
	Offset    int64
}

// PositionSettler is the Settler of a running pgsink: Debezium's slot
// tells when every change up to a position is in Kafka (Connect commits a
// source offset only after the producer has written its records), then the
// partitions' positions in pgsink's offsets table, committed with the data
// (I1), tell when everything Kafka held then is applied.
type PositionSettler struct {
	Source, Target *pgx.Conn
	Slot           string
	Group          string
	Offsets        dedup.Offsets
	// Marks reads the high watermarks of topics' partitions.
	Marks   func(ctx context.Context, topics []string) ([]Mark, error)
	Timeout time.Duration
	// TransactionTopic is apply.transaction.topic under apply.consistency:
	// transaction, else empty. There a data partition's position passes
	// a record once it is staged; the record is applied when the
	// resolver's position passes its transaction's END, so the
	// transaction topic must reach its mark too.
	TransactionTopic string
}

// markedTopics are the topics whose positions must reach their high
// watermarks before t is compared.
func (p *PositionSettler) markedTopics(t *Table) []string {
	if p.TransactionTopic == "" {
		return t.Topics
	}
	return append(slices.Clip(t.Topics), p.TransactionTopic)
}

const settlePoll = 200 * time.Millisecond

// Settle implements Settler.
func (p *PositionSettler) Settle(ctx context.Context, t *Table, lsn int64) error {
	deadline := time.Now().Add(p.Timeout)
	for {
		var flushed *int64
		err := p.Source.QueryRow(ctx, `SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots WHERE slot_name = $1`, p.Slot).Scan(&flushed)
		if err == pgx.ErrNoRows {
			return fmt.Errorf("verify: the source has no replication slot %q (verify.slot)", p.Slot)
		}
		if err != nil {
			return fmt.Errorf("verify: read slot %q: %w", p.Slot, err)
		}
		if flushed != nil && *flushed >= lsn {
			break
		}
		if err := wait(ctx, deadline); err != nil {
			return err
		}
	}
	marks, err := p.Marks(ctx, p.markedTopics(t))
	if err != nil {
		return err
	}
	for {
		stored, err := p.Offsets.List(ctx, p.Target, p.Group)
		if err != nil {
			return err
		}
		if applied(marks, stored) {
			return nil
		}
		if err := wait(ctx, deadline); err != nil {
			return err
		}
	}
}

// applied reports whether every marked partition's stored position has
// reached its mark. A partition with records and no stored row has not.
func applied(marks []Mark, stored []dedup.Stored) bool {
	next := map[dedup.PartitionID]int64{}
	for _, s := range stored {
		next[dedup.PartitionID{Topic: s.Topic, Partition: s.Partition}] = s.NextOffset
	}
	for _, m := range marks {
		n, ok := next[dedup.PartitionID{Topic: m.Topic, Partition: m.Partition}]
		if m.Offset > 0 && (!ok || n < m.Offset) {
			return false
		}
	}
	return true
}

func wait(ctx context.Context, deadline time.Time) error {
	if time.Now().After(deadline) {
		return ErrNotSettled
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settlePoll):
		return nil
	}
}
