package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Transactions stores the staging of apply.consistency: transaction:
// tx_staged, the records of source transactions not applied yet, and
// tx_resolved, the transactions the resolver applied (docs/transactions.md).
type Transactions struct {
	staged, resolved, modes string // quoted, schema-qualified
}

// NewTransactions returns the staging tables of pgsink's tables in schema.
func NewTransactions(schema string) Transactions {
	return Transactions{
		staged:   pgx.Identifier{schema, "tx_staged"}.Sanitize(),
		resolved: pgx.Identifier{schema, "tx_resolved"}.Sanitize(),
		modes:    pgx.Identifier{schema, "consistency_modes"}.Sanitize(),
	}
}

// StagedRecord is one Kafka record of a source transaction, staged by the
// partition that consumed it.
type StagedRecord struct {
	TxID           int64
	TotalOrder     int64
	DataCollection string
	Topic          string
	Partition      int32
	Offset         int64
	Timestamp      time.Time
	Key, Value     []byte
	Headers        []Header
	// Dead marks a record the stager dead-lettered: it counts towards its
	// transaction's END, and is not applied.
	Dead bool
}

// QueueStage queues into b, a batch transaction after its offsets
// compare-and-set, the staging of records. A record whose (transaction,
// place) is staged already (Debezium re-emits events at new offsets after
// its restarts) is kept once; one of a transaction the resolver applied
// already (a replay) is not staged again, so no staged row waits for an
// END that was consumed.
func (t Transactions) QueueStage(b *pgx.Batch, group string, records []StagedRecord) error {
	if len(records) == 0 {
		return nil
	}
	n := len(records)
	txIDs, orders, offsets := make([]int64, n), make([]int64, n), make([]int64, n)
	collections, topics, headers := make([]string, n), make([]string, n), make([]string, n)
	partitions := make([]int32, n)
	stamps := make([]*time.Time, n)
	keys, values := make([][]byte, n), make([][]byte, n)
	dead := make([]bool, n)
	for i, r := range records {
		txIDs[i], orders[i], offsets[i] = r.TxID, r.TotalOrder, r.Offset
		collections[i], topics[i], partitions[i] = r.DataCollection, r.Topic, r.Partition
		if !r.Timestamp.IsZero() {
			stamps[i] = &records[i].Timestamp
		}
		keys[i], values[i], dead[i] = r.Key, r.Value, r.Dead
		hs := r.Headers
		if hs == nil {
			hs = []Header{}
		}
		h, err := json.Marshal(hs)
		if err != nil {
			return fmt.Errorf("dedup: stage %s[%d]@%d: headers: %w", r.Topic, r.Partition, r.Offset, err)
		}
		headers[i] = string(h)
	}
	b.Queue(`INSERT INTO `+t.staged+` (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset,
		record_ts, record_key, record_value, headers, dead)
SELECT $1, r.tx_id, r.total_order, r.data_collection, r.topic, r.partition, r.kafka_offset,
       r.record_ts, r.record_key, r.record_value, r.headers::jsonb, r.dead
  FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::bigint[],
              $8::timestamptz[], $9::bytea[], $10::bytea[], $11::text[], $12::boolean[])
       AS r(tx_id, total_order, data_collection, topic, partition, kafka_offset, record_ts, record_key, record_value, headers, dead)
 WHERE NOT EXISTS (SELECT 1 FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = r.tx_id)
ON CONFLICT (group_id, tx_id, total_order) DO NOTHING`,
		group, txIDs, orders, collections, topics, partitions, offsets, stamps, keys, values, headers, dead).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: stage %d records of transactions: %w", n, err)
		}
		return nil
	}
	return nil
}

// TxProgress is where one source transaction stands in staging: applied
// by the resolver already, or how many of its records are staged, per data
// collection.
type TxProgress struct {
	Resolved bool
	Staged   map[string]int64
}

// Progress returns where each of the transactions txIDs stands, in one
// round trip: the resolver looks at every END of a batch at once. An id
// may come more than once (an END Debezium re-emitted): each counts its
// staged records once.
func (t Transactions) Progress(ctx context.Context, db Querier, group string, txIDs []int64) (map[int64]TxProgress, error) {
	rows, err := db.Query(ctx, `SELECT i.tx_id, r.tx_id IS NOT NULL, s.data_collection, count(s.tx_id)
		FROM (SELECT DISTINCT unnest($2::bigint[])) AS i(tx_id)
		LEFT JOIN `+t.resolved+` r ON r.group_id = $1 AND r.tx_id = i.tx_id
		LEFT JOIN `+t.staged+` s ON s.group_id = $1 AND s.tx_id = i.tx_id
		GROUP BY i.tx_id, r.tx_id, s.data_collection`, group, txIDs)
	if err != nil {
		return nil, fmt.Errorf("dedup: read the progress of %d transactions: %w", len(txIDs), err)
	}
	out := make(map[int64]TxProgress, len(txIDs))
	var id, n int64
	var resolved bool
	var collection *string
	_, err = pgx.ForEachRow(rows, []any{&id, &resolved, &collection, &n}, func() error {
		p, ok := out[id]
		if !ok {
			p = TxProgress{Resolved: resolved, Staged: map[string]int64{}}
		}
		if collection != nil {
			p.Staged[*collection] = n
		}
		out[id] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dedup: read the progress of %d transactions: %w", len(txIDs), err)
	}
	return out, nil
}

// StagedCounts returns how many records of transaction txID are staged,
// per data collection.
func (t Transactions) StagedCounts(ctx context.Context, db Querier, group string, txID int64) (map[string]int64, error) {
	p, err := t.Progress(ctx, db, group, []int64{txID})
	return p[txID].Staged, err
}

// Resolved reports whether the resolver applied transaction txID.
func (t Transactions) Resolved(ctx context.Context, db Querier, group string, txID int64) (bool, error) {
	p, err := t.Progress(ctx, db, group, []int64{txID})
	return p[txID].Resolved, err
}

// ReadStaged returns up to limit staged records of transaction txID after
// the place after, in the transaction's order: the resolver reads a
// transaction of any size a chunk at a time, within its apply transaction.
// With maxBytes > 0 the chunk also ends with the record that brings its
// keys and values to maxBytes (at least one record), so that a chunk of
// large records stays within apply.batch.max_bytes as a batch does.
func (t Transactions) ReadStaged(ctx context.Context, db Querier, group string, txID, after int64, limit int, maxBytes int64) ([]StagedRecord, error) {
	rows, err := db.Query(ctx, `SELECT total_order, data_collection, topic, partition, kafka_offset, record_ts,
		record_key, record_value, headers, dead
		FROM `+t.staged+` WHERE group_id = $1 AND tx_id = $2 AND total_order > $3
		ORDER BY total_order LIMIT $4`, group, txID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("dedup: read staged records of transaction %d: %w", txID, err)
	}
	var out []StagedRecord
	var r StagedRecord
	var bytes int64
	var ts *time.Time
	var headers []byte
	_, err = pgx.ForEachRow(rows, []any{&r.TotalOrder, &r.DataCollection, &r.Topic, &r.Partition, &r.Offset, &ts,
		&r.Key, &r.Value, &headers, &r.Dead}, func() error {
		rec := r
		rec.TxID = txID
		if ts != nil {
			rec.Timestamp = *ts
		}
		if err := json.Unmarshal(headers, &rec.Headers); err != nil {
			return fmt.Errorf("headers of %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, rec)
		r = StagedRecord{}
		if bytes += int64(len(rec.Key) + len(rec.Value)); maxBytes > 0 && bytes >= maxBytes {
			return errChunkFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errChunkFull) {
		return nil, fmt.Errorf("dedup: read staged records of transaction %d: %w", txID, err)
	}
	return out, nil
}

// errChunkFull ends the reading of a chunk of staged records at its bytes.
var errChunkFull = errors.New("chunk full")

// QueueResolve queues into b, the resolver's apply transaction, the record
// that transaction txID of eventCount events is applied and the deletion
// of its staged records. A transaction applied twice fails on the
// primary key rather than apply twice.
func (t Transactions) QueueResolve(b *pgx.Batch, group string, txID, eventCount int64) {
	b.Queue(`INSERT INTO `+t.resolved+` (group_id, tx_id, event_count) VALUES ($1, $2, $3)`, group, txID, eventCount).Fn =
		func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("dedup: record transaction %d applied: %w", txID, err)
			}
			return nil
		}
	b.Queue(`DELETE FROM `+t.staged+` WHERE group_id = $1 AND tx_id = $2`, group, txID).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: delete staged records of transaction %d: %w", txID, err)
		}
		return nil
	}
}

// Unresolved is a transaction with records staged and not applied.
type Unresolved struct {
	TxID        int64
	Records     int64
	FirstStaged time.Time
	// Age is how long ago its first record was staged, by the database's
	// clock, which also stamped it.
	Age time.Duration
}

// OldestUnresolved returns the transaction staged longest ago and not
// applied, and the number of staged records of the group; ok is false
// when nothing is staged. A record of an applied transaction can be left
// staged when a duplicate of it (a Debezium re-emission, a replay) was
// staged while the resolver applied the transaction; it is never applied
// and passed over here. The resolver stops on one older than
// apply.transaction.max_wait once it has read every END there is; status
// shows both.
func (t Transactions) OldestUnresolved(ctx context.Context, db DB, group string) (oldest Unresolved, staged int64, ok bool, err error) {
	var ageMicros int64
	err = db.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+t.staged+` WHERE group_id = $1), o.tx_id,
		(SELECT count(*) FROM `+t.staged+` s WHERE s.group_id = $1 AND s.tx_id = o.tx_id), o.staged_at,
		(extract(epoch FROM now() - o.staged_at) * 1e6)::bigint
		FROM (SELECT tx_id, staged_at FROM `+t.staged+` s WHERE group_id = $1
		        AND NOT EXISTS (SELECT 1 FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = s.tx_id)
		      ORDER BY staged_at LIMIT 1) o`, group).
		Scan(&staged, &oldest.TxID, &oldest.Records, &oldest.FirstStaged, &ageMicros)
	oldest.Age = time.Duration(ageMicros) * time.Microsecond
	if err == pgx.ErrNoRows {
		return Unresolved{}, 0, false, nil
	}
	if err != nil {
		return Unresolved{}, 0, false, fmt.Errorf("dedup: read the oldest staged transaction: %w", err)
	}
	return oldest, staged, true, nil
}

// OldestStaged is OldestUnresolved without its counts (Records is 0):
// the resolver's idle check runs it every few seconds, and counting the
// staged records there would scan the whole staging table, a large
// transaction's million rows included, each time.
func (t Transactions) OldestStaged(ctx context.Context, db DB, group string) (oldest Unresolved, ok bool, err error) {
	var ageMicros int64
	err = db.QueryRow(ctx, `SELECT s.tx_id, s.staged_at, (extract(epoch FROM now() - s.staged_at) * 1e6)::bigint
		FROM `+t.staged+` s WHERE group_id = $1
		 AND NOT EXISTS (SELECT 1 FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = s.tx_id)
		ORDER BY staged_at LIMIT 1`, group).Scan(&oldest.TxID, &oldest.FirstStaged, &ageMicros)
	if err == pgx.ErrNoRows {
		return Unresolved{}, false, nil
	}
	if err != nil {
		return Unresolved{}, false, fmt.Errorf("dedup: read the oldest staged transaction: %w", err)
	}
	oldest.Age = time.Duration(ageMicros) * time.Microsecond
	return oldest, true, nil
}

// Mode returns the apply.consistency group's positions were made under, ""
// when no run recorded one (a new group, or one older than the record).
func (t Transactions) Mode(ctx context.Context, db DB, group string) (string, error) {
	var mode string
	err := db.QueryRow(ctx, `SELECT consistency FROM `+t.modes+` WHERE group_id = $1`, group).Scan(&mode)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dedup: read the consistency of group %s: %w", group, err)
	}
	return mode, nil
}

// SetMode records that group runs under the apply.consistency mode.
func (t Transactions) SetMode(ctx context.Context, db DB, group, mode string) error {
	_, err := db.Exec(ctx, `INSERT INTO `+t.modes+` (group_id, consistency) VALUES ($1, $2)
		ON CONFLICT (group_id) DO UPDATE SET consistency = excluded.consistency, since = now()
		WHERE `+t.modes+`.consistency <> excluded.consistency`, group, mode)
	if err != nil {
		return fmt.Errorf("dedup: record the consistency of group %s: %w", group, err)
	}
	return nil
}

// StagedPartition is what a data partition has staged and the resolver has
// not applied yet, under apply.consistency: transaction: its records passed
// its stored position, but the target does not show them.
type StagedPartition struct {
	Topic     string
	Partition int32
	Records   int64
	// Oldest is the Kafka time of the oldest of them (zero when none has
	// one): the target is behind the source by at least the time since.
	Oldest time.Time
}

// StagedByPartition returns, per data partition of group, the staged
// records of transactions not applied yet (dead-lettered ones, which no
// one applies, and leftovers of applied transactions excluded), for
// `pgsink status`. It reads every such row: a status command's cost, not a
// hot path's.
func (t Transactions) StagedByPartition(ctx context.Context, db Querier, group string) ([]StagedPartition, error) {
	rows, err := db.Query(ctx, `SELECT s.topic, s.partition, count(*), min(s.record_ts)
		FROM `+t.staged+` s
		WHERE s.group_id = $1 AND NOT s.dead
		  AND NOT EXISTS (SELECT 1 FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = s.tx_id)
		GROUP BY s.topic, s.partition ORDER BY s.topic, s.partition`, group)
	if err != nil {
		return nil, fmt.Errorf("dedup: read the staged records per partition: %w", err)
	}
	var out []StagedPartition
	for rows.Next() {
		var p StagedPartition
		var oldest *time.Time
		if err := rows.Scan(&p.Topic, &p.Partition, &p.Records, &oldest); err != nil {
			return nil, fmt.Errorf("dedup: read the staged records per partition: %w", err)
		}
		if oldest != nil {
			p.Oldest = *oldest
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dedup: read the staged records per partition: %w", err)
	}
	return out, nil
}
