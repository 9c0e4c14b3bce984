package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
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
	a := NewApplier(pool, Options{Schema: cfg.Postgres.Schema, StopOnError: true, KafkaOffsets: true,
		StagingTablesPerConnection: cfg.Postgres.StagingTablesPerConnection})
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

// LowerFutureVersions sets the stored version of every row of target whose
// commit position is past bound to (bound, bound), and returns how many it
// changed. bound is the source's WAL position read just before: no event's
// version can pass it, so such a version came from no event (a hand edit, a
// backup restored from another server) and the guard (I3) would refuse
// every real change of the row from then on. (bound, bound) is at least the
// version of every event of the row Debezium has produced, so older
// re-deliveries stay refused and newer changes apply. `pgsink verify
// --repair` then has the rows' current content re-read through Debezium.
func LowerFutureVersions(ctx context.Context, pool *pgxpool.Pool, target config.TableName, version config.Version, bound int64) (int64, error) {
	tag, err := pool.Exec(ctx, lowerFutureVersionsSQL(target, version), bound)
	if err != nil {
		return 0, fmt.Errorf("sink: lower the versions of %s past the source's position: %w", target, err)
	}
	return tag.RowsAffected(), nil
}

func lowerFutureVersionsSQL(target config.TableName, version config.Version) string {
	commit, lsn := pgx.Identifier{version.CommitColumn}.Sanitize(), pgx.Identifier{version.LSNColumn}.Sanitize()
	return fmt.Sprintf(`UPDATE %s SET %s = $1, %s = $1 WHERE %s > $1`,
		pgx.Identifier{target.Schema, target.Name}.Sanitize(), commit, lsn, commit)
}
