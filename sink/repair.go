package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

// DeleteKeys deletes keys of the table topic is routed to, as a batch of
// Debezium delete events of them at version v would: reduced per key,
// deleted (or, with deletes: soft, marked) only where the stored version is
// older (I3), their tombstones written to the ledger in the same transaction
// (I4). It moves no partition's
// offset, since the deletes come from no record. `pgsink verify --repair`
// uses it for rows the source no longer has, which no snapshot deletes; keys
// are rows of the record key's fields (the source's column names).
func DeleteKeys(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, topic string, keys []debezium.Row, v debezium.Version) (Stats, error) {
	if len(keys) == 0 {
		return Stats{}, nil
	}
	r := NewRouter(cfg, pool)
	a := NewApplier(pool, Options{Schema: cfg.Postgres.Schema, StopOnError: true, KafkaOffsets: true})
	items := make([]Item, len(keys))
	for i, k := range keys {
		ch := debezium.Change{Topic: topic, Partition: -1, Offset: int64(i), Kind: debezium.KindChange, Op: debezium.OpDelete,
			Key: k, Before: k, Version: v}
		t, err := r.resolve(ctx, &ch, nil)
		if err != nil {
			return Stats{}, fmt.Errorf("sink: delete keys of %s: %w", topic, err)
		}
		if t.Deletes == DeleteIgnore {
			return Stats{}, fmt.Errorf("sink: delete keys of %s: table %s ignores deletes", topic, t.Ref())
		}
		items[i] = Item{Record: debezium.Record{Topic: topic, Partition: -1, Offset: int64(i)}, Table: t, Change: ch}
	}
	claim := &dedup.Claim{PartitionID: dedup.PartitionID{Group: cfg.Kafka["group.id"], Topic: topic, Partition: -1}}
	return a.Apply(ctx, &Batch{Claim: claim, Items: items, Next: int64(len(keys))})
}
