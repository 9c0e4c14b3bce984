package dedup

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// How far the stagers run ahead of the resolver
// (apply.transaction.max_staged_bytes, docs/transactions.md): the resolver
// publishes, per data partition, the highest offset of its records it
// applied (tx_frontier), and that it waits for events not staged yet
// (tx_resolver_waits); a stager reads both, by key, only when what it
// staged reaches the bound. The stager may be on another instance than
// the resolver: the target database is where they meet.

// PartitionOffset is an offset of one data partition.
type PartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Frontier is where the resolver stands for one data partition, as its
// stager sees it.
type Frontier struct {
	// Applied is the highest offset of the partition's staged records the
	// resolver applied, -1 when none. A partition's records are resolved
	// in their offset order, so every record staged above it is waiting.
	Applied int64
	// ResolverWaiting is set while the resolver waits at an END whose
	// events are not all staged: a stager must then stage whatever its
	// bound, as the events it waits for may be the stager's.
	ResolverWaiting bool
}

// QueueApplied queues into b, the resolver's apply transaction, the highest
// offset of each data partition's records it applied, and the end of its
// wait for events (MarkWaiting): the transaction it commits moves the
// frontier the stagers wait on. In (topic, partition) order, so that two
// resolvers' transactions (a zombie's, fenced by the offsets row before it
// gets here, and its successor's) take the rows' locks in one order.
func (t Transactions) QueueApplied(b *pgx.Batch, group string, applied []PartitionOffset) {
	b.Queue(`DELETE FROM `+t.waits+` WHERE group_id = $1`, group).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: end the resolver's wait for staged events: %w", err)
		}
		return nil
	}
	if len(applied) == 0 {
		return
	}
	applied = slices.Clone(applied)
	slices.SortFunc(applied, func(a, b PartitionOffset) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	topics, partitions, offsets := make([]string, len(applied)), make([]int32, len(applied)), make([]int64, len(applied))
	for i, a := range applied {
		topics[i], partitions[i], offsets[i] = a.Topic, a.Partition, a.Offset
	}
	// greatest: a replay of the transaction topic applies nothing new and
	// writes no record here, but a frontier never moves back.
	b.Queue(`INSERT INTO `+t.frontier+` AS f (group_id, topic, partition, kafka_offset)
		SELECT $1, * FROM unnest($2::text[], $3::integer[], $4::bigint[])
		ON CONFLICT (group_id, topic, partition) DO UPDATE SET kafka_offset = greatest(f.kafka_offset, excluded.kafka_offset)`,
		group, topics, partitions, offsets).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: record the applied offsets of %d data partitions: %w", len(applied), err)
		}
		return nil
	}
}

// MarkWaiting records that the resolver waits for the events, not all
// staged yet, of the transaction whose END is at endOffset: stagers at their bound stage
// on until the resolver's next apply transaction (QueueApplied) ends the
// wait. Outside any apply transaction: a mark left by a resolver that
// lost its partition only lets stagers past their bound until the next
// owner applies.
func (t Transactions) MarkWaiting(ctx context.Context, db DB, group string, endOffset int64) error {
	if _, err := db.Exec(ctx, `INSERT INTO `+t.waits+` (group_id, end_offset) VALUES ($1, $2)
		ON CONFLICT (group_id) DO NOTHING`, group, endOffset); err != nil {
		return fmt.Errorf("dedup: record that the resolver waits for the events of the END at offset %d: %w", endOffset, err)
	}
	return nil
}

// EndWaiting deletes the resolver's wait mark without applying: it
// stopped (the events never came), and stagers are to keep to their
// bound while nothing is applied.
func (t Transactions) EndWaiting(ctx context.Context, db DB, group string) error {
	if _, err := db.Exec(ctx, `DELETE FROM `+t.waits+` WHERE group_id = $1`, group); err != nil {
		return fmt.Errorf("dedup: end the resolver's wait for staged events: %w", err)
	}
	return nil
}

// FrontierOf returns where the resolver stands for a data partition: two
// reads by key, what a stager at its bound asks each time it looks again.
func (t Transactions) FrontierOf(ctx context.Context, db DB, group, topic string, partition int32) (Frontier, error) {
	var f Frontier
	err := db.QueryRow(ctx, `SELECT coalesce((SELECT kafka_offset FROM `+t.frontier+` WHERE group_id = $1 AND topic = $2 AND partition = $3), -1),
		EXISTS (SELECT 1 FROM `+t.waits+` WHERE group_id = $1)`, group, topic, partition).Scan(&f.Applied, &f.ResolverWaiting)
	if err != nil {
		return Frontier{}, fmt.Errorf("dedup: read the resolver's frontier for %s[%d]: %w", topic, partition, err)
	}
	return f, nil
}

// StagedBytesAbove returns the bytes of keys and values (as stored: a
// JsonConverter record without its schema) of a data partition's records
// staged above offset after, and the highest offset among them (-1 when
// none): what a stager that claims the partition finds staged ahead of
// the resolver by the partition's previous owners. Those bytes count until
// the resolver applies past that offset, not past the claim's position:
// the records just before it may stage nothing (a tombstone, a record of
// an applied transaction), and a frontier held short of the position by
// them would count records applied long ago. It reads the group's staged
// rows (no index leads with the partition), once per claim and now and
// then while a partition at its bound sees the frontier unmoved; the bound
// keeps them few.
func (t Transactions) StagedBytesAbove(ctx context.Context, db DB, group, topic string, partition int32, after int64) (bytes, through int64, err error) {
	err = db.QueryRow(ctx, `SELECT coalesce(sum(coalesce(octet_length(record_key), 0) + coalesce(octet_length(record_value), 0)), 0)::bigint,
		coalesce(max(kafka_offset), -1)
		FROM `+t.staged+` WHERE group_id = $1 AND topic = $2 AND partition = $3 AND kafka_offset > $4`, group, topic, partition, after).Scan(&bytes, &through)
	if err != nil {
		return 0, 0, fmt.Errorf("dedup: read the bytes staged by %s[%d] above offset %d: %w", topic, partition, after, err)
	}
	return bytes, through, nil
}

// StagedAhead is what a data partition staged above the resolver's
// frontier: what its stager counts against
// apply.transaction.max_staged_bytes.
type StagedAhead struct {
	Topic     string
	Partition int32
	// Frontier is the highest offset of the partition's records the
	// resolver applied, -1 when none.
	Frontier int64
	// Bytes are the keys and values, as stored, of its Records staged
	// above Frontier.
	Bytes, Records int64
}

// StagedAheadByPartition returns, per data partition of group with records
// staged above the resolver's frontier, what they are, for `pgsink
// status`. It reads the group's staged rows: a status command's cost (the
// bound keeps them few), not a stager's, which counts as it stages.
func (t Transactions) StagedAheadByPartition(ctx context.Context, db Querier, group string) ([]StagedAhead, error) {
	rows, err := db.Query(ctx, `SELECT s.topic, s.partition, coalesce(f.kafka_offset, -1), count(*),
		coalesce(sum(coalesce(octet_length(s.record_key), 0) + coalesce(octet_length(s.record_value), 0)), 0)::bigint
		FROM `+t.staged+` s LEFT JOIN `+t.frontier+` f ON f.group_id = s.group_id AND f.topic = s.topic AND f.partition = s.partition
		WHERE s.group_id = $1 AND s.kafka_offset > coalesce(f.kafka_offset, -1)
		GROUP BY s.topic, s.partition, f.kafka_offset ORDER BY s.topic, s.partition`, group)
	if err != nil {
		return nil, fmt.Errorf("dedup: read what the data partitions staged ahead of the resolver: %w", err)
	}
	var out []StagedAhead
	var a StagedAhead
	if _, err := pgx.ForEachRow(rows, []any{&a.Topic, &a.Partition, &a.Frontier, &a.Records, &a.Bytes}, func() error {
		out = append(out, a)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("dedup: read what the data partitions staged ahead of the resolver: %w", err)
	}
	return out, nil
}

// ResolverWait is the resolver's published wait (MarkWaiting): it waits at
// the END at EndOffset, since Since, for events not all staged yet.
type ResolverWait struct {
	EndOffset int64
	Since     time.Time
}

// ResolverWaitOf returns the resolver's published wait, ok false when it
// publishes none (it applies, is idle, waits without having published yet,
// or stopped).
func (t Transactions) ResolverWaitOf(ctx context.Context, db DB, group string) (w ResolverWait, ok bool, err error) {
	err = db.QueryRow(ctx, `SELECT end_offset, since FROM `+t.waits+` WHERE group_id = $1`, group).Scan(&w.EndOffset, &w.Since)
	if err == pgx.ErrNoRows {
		return ResolverWait{}, false, nil
	}
	if err != nil {
		return ResolverWait{}, false, fmt.Errorf("dedup: read the resolver's wait for staged events: %w", err)
	}
	return w, true, nil
}
