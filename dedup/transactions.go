package dedup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// Transactions stores the staging of apply.consistency: transaction:
// tx_staged, the records of source transactions not applied yet, and
// tx_resolved, the transactions the resolver applied (docs/transactions.md).
type Transactions struct {
	staged, resolved, modes, schemas string // quoted, schema-qualified
	frontier, waits                  string
	// generation, marker and partitions tell a reset of tx_staged
	// (txgeneration.go); offsets is the partitions' positions, which a
	// rewind after one moves.
	generation, marker, partitions string
	offsets                        Offsets
	// env splits staged JsonConverter records from their schemas and
	// joins them back (see txenvelope.go).
	env *envelopes
}

// NewTransactions returns the staging tables of pgsink's tables in schema.
func NewTransactions(schema string) Transactions {
	return Transactions{
		staged:     pgx.Identifier{schema, "tx_staged"}.Sanitize(),
		resolved:   pgx.Identifier{schema, "tx_resolved"}.Sanitize(),
		modes:      pgx.Identifier{schema, "consistency_modes"}.Sanitize(),
		schemas:    pgx.Identifier{schema, "tx_schemas"}.Sanitize(),
		frontier:   pgx.Identifier{schema, "tx_frontier"}.Sanitize(),
		waits:      pgx.Identifier{schema, "tx_resolver_waits"}.Sanitize(),
		generation: pgx.Identifier{schema, "tx_staging_generation"}.Sanitize(),
		marker:     pgx.Identifier{schema, "tx_staging_marker"}.Sanitize(),
		partitions: pgx.Identifier{schema, "tx_staging_partitions"}.Sanitize(),
		offsets:    NewOffsets(schema),
		env:        newEnvelopes(),
	}
}

// StagedTable is the name of the staging table, unqualified and unquoted,
// as PostgreSQL names it in an error.
func (Transactions) StagedTable() string { return "tx_staged" }

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
	// KeySchema and ValueSchema, on a record read from staging, are the
	// schema S of a JsonConverter key or value {"schema": S, "payload": P}
	// whose Key or Value holds only P (see txenvelope.go): the decoder
	// takes them apart (debezium.Record), and a schema is held once for
	// every record of it. Whole puts them back together.
	KeySchema, ValueSchema []byte
	Headers                []Header
	// Dead marks a record the stager dead-lettered: it counts towards its
	// transaction's END, and is not applied.
	Dead bool
	// LSN is the event's own source LSN (source.lsn), below its
	// transaction's commit position: it tells a record of a transaction
	// applied already from one of a later transaction whose xid came round
	// (see QueueResolveAll). Not stored; 0 when unknown, which matches any
	// applied transaction of its xid.
	LSN int64
}

// Whole returns the record's key and value as they were consumed, put
// back together from their schemas when read split.
func (r StagedRecord) Whole() (key, value []byte) {
	key, value = r.Key, r.Value
	if r.KeySchema != nil && key != nil {
		key = jsonenvelope.Join(r.KeySchema, key)
	}
	if r.ValueSchema != nil && value != nil {
		value = jsonenvelope.Join(r.ValueSchema, value)
	}
	return key, value
}

// Size is the bytes of the record's key and value as they were consumed:
// what apply.batch.max_bytes counts of a record, staged or not.
func (r StagedRecord) Size() int64 {
	n := int64(len(r.Key) + len(r.Value))
	if r.KeySchema != nil && r.Key != nil {
		n += int64(len(r.KeySchema) + jsonenvelope.Overhead)
	}
	if r.ValueSchema != nil && r.Value != nil {
		n += int64(len(r.ValueSchema) + jsonenvelope.Overhead)
	}
	return n
}

// QueueStage queues into b, a batch transaction after its offsets
// compare-and-set, the staging of records, and returns the bytes of keys
// and values they take in tx_staged (StagedBytesAbove counts the same). A record whose (transaction,
// place) is staged already (Debezium re-emits events at new offsets after
// its restarts) is kept once; one of a transaction the resolver applied
// already (a replay) is not staged again, so no staged row waits for an
// END that was consumed. The bytes are those of all the records given;
// short, unless nil, is called when the statement's result is read if it
// staged fewer of them (the bytes then count more than tx_staged holds).
func (t Transactions) QueueStage(b *pgx.Batch, group string, records []StagedRecord, short func()) (int64, error) {
	return t.queueStage(b, group, records, true, short)
}

// QueueStageNew is QueueStage for records expected not to be staged yet:
// they go in by plain INSERT, without ON CONFLICT's speculative insertion
// (a heavyweight lock, a pre-check of the key and a confirming WAL record
// per row). A record staged already (a re-emission, a replay of a
// transaction not resolved yet) fails the transaction with a unique
// violation; its caller then runs it again with QueueStage.
func (t Transactions) QueueStageNew(b *pgx.Batch, group string, records []StagedRecord, short func()) (int64, error) {
	return t.queueStage(b, group, records, false, short)
}

func (t Transactions) queueStage(b *pgx.Batch, group string, records []StagedRecord, dedupe bool, short func()) (int64, error) {
	if len(records) == 0 {
		return 0, nil
	}
	rows, err := t.stagedRows(records)
	if err != nil {
		return 0, err
	}
	if len(rows.schemas) > 0 {
		t.queueSchemas(b, rows.schemas)
	}
	// done reads the batch's resolved transactions by the key of
	// tx_resolved: a NOT EXISTS against the table itself is planned as an
	// anti-join that reads every resolved transaction of the retention
	// period per batch.
	// A record is of an applied transaction when its LSN is below that
	// transaction's commit position (or the position is not known: 0).
	onConflict := ""
	if dedupe {
		onConflict = `
ON CONFLICT (group_id, tx_id, total_order) DO NOTHING`
	}
	n := len(records)
	b.Queue(`WITH done AS (SELECT x.tx_id, x.commit_lsn FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = ANY($2::bigint[]))
INSERT INTO `+t.staged+` (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset,
		record_ts, record_key, record_value, headers, dead, key_schema, value_schema)
SELECT $1, r.tx_id, r.total_order, r.data_collection, r.topic, r.partition, r.kafka_offset,
       r.record_ts, r.record_key, r.record_value, r.headers::jsonb, r.dead, r.key_schema, r.value_schema
  FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::bigint[],
              $8::timestamptz[], $9::bytea[], $10::bytea[], $11::text[], $12::boolean[], $13::bytea[], $14::bytea[], $15::bigint[])
       AS r(tx_id, total_order, data_collection, topic, partition, kafka_offset, record_ts, record_key, record_value, headers, dead,
            key_schema, value_schema, lsn)
 WHERE NOT EXISTS (SELECT 1 FROM done WHERE done.tx_id = r.tx_id AND (done.commit_lsn = 0 OR r.lsn < done.commit_lsn))`+onConflict,
		group, rows.txIDs, rows.orders, rows.collections, rows.topics, rows.partitions, rows.offsets, rows.stamps, rows.keys, rows.values,
		rows.headers, rows.dead, rows.keySchemas, rows.valueSchemas, rows.lsns).Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("dedup: stage %d records of transactions: %w", n, err)
		}
		if short != nil && tag.RowsAffected() < int64(n) {
			short()
		}
		return nil
	}
	return rows.bytes, nil
}

// stagedRows are records as tx_staged stores them, column by column: keys
// and values split from their schemas where they can be, headers as JSON.
type stagedRows struct {
	txIDs, orders, offsets, lsns []int64
	collections, topics, headers []string
	partitions                   []int32
	stamps                       []*time.Time
	keys, values                 [][]byte
	keySchemas, valueSchemas     [][]byte
	dead                         []bool
	// bytes are the keys' and values' bytes as stored.
	bytes int64
	// schemas are the distinct schemas split off, to be stored before
	// the rows that name them.
	schemas []schemaPart
}

func (t Transactions) stagedRows(records []StagedRecord) (*stagedRows, error) {
	n := len(records)
	rows := &stagedRows{
		txIDs: make([]int64, n), orders: make([]int64, n), offsets: make([]int64, n), lsns: make([]int64, n),
		collections: make([]string, n), topics: make([]string, n), headers: make([]string, n),
		partitions: make([]int32, n), stamps: make([]*time.Time, n),
		keys: make([][]byte, n), values: make([][]byte, n), keySchemas: make([][]byte, n), valueSchemas: make([][]byte, n),
		dead: make([]bool, n),
	}
	seen := map[string]bool{}
	split := func(data []byte, digest *[]byte) []byte {
		s, payload, ok := t.env.split(data)
		if !ok {
			return data
		}
		if !seen[string(s.digest)] {
			seen[string(s.digest)] = true
			rows.schemas = append(rows.schemas, s)
		}
		*digest = s.digest
		return payload
	}
	for i, r := range records {
		rows.txIDs[i], rows.orders[i], rows.offsets[i], rows.lsns[i] = r.TxID, r.TotalOrder, r.Offset, r.LSN
		rows.collections[i], rows.topics[i], rows.partitions[i] = r.DataCollection, r.Topic, r.Partition
		if !r.Timestamp.IsZero() {
			rows.stamps[i] = &records[i].Timestamp
		}
		rows.keys[i], rows.values[i], rows.dead[i] = split(r.Key, &rows.keySchemas[i]), split(r.Value, &rows.valueSchemas[i]), r.Dead
		rows.bytes += int64(len(rows.keys[i]) + len(rows.values[i]))
		if len(r.Headers) == 0 {
			rows.headers[i] = "[]"
			continue
		}
		h, err := json.Marshal(r.Headers)
		if err != nil {
			return nil, fmt.Errorf("dedup: stage %s[%d]@%d: headers: %w", r.Topic, r.Partition, r.Offset, err)
		}
		rows.headers[i] = string(h)
	}
	return rows, nil
}

// TxProgress is where one source transaction stands in staging: applied
// by the resolver already, or how many of its records are staged, per data
// collection.
type TxProgress struct {
	Resolved bool
	Staged   map[string]int64
	// Earlier is, for ProgressAt, the highest commit position below the
	// END's at which a transaction of the same xid was applied (0: none):
	// the xid came round, and a staged record of that xid with an LSN
	// below Earlier is a leftover of the earlier transaction, not of this
	// one (see docs/transactions.md, Known limits).
	Earlier int64
}

// Progress returns where each of the transactions txIDs stands, in one
// round trip: the resolver looks at every END of a batch at once. An id
// may come more than once (an END Debezium re-emitted): each counts its
// staged records once. A transaction counts as applied when its xid is
// recorded under any commit position; ProgressAt tells them apart.
func (t Transactions) Progress(ctx context.Context, db Querier, group string, txIDs []int64) (map[int64]TxProgress, error) {
	return t.ProgressAt(ctx, db, group, txIDs, nil)
}

// ProgressAt is Progress for the ENDs of transactions txIDs committed at
// commitLSNs (the LSN part of each END's id, 0 when unknown): applied when
// recorded at that commit position (or at an unknown one), so that an END
// whose xid came round since an earlier transaction was recorded is not
// taken for that one.
func (t Transactions) ProgressAt(ctx context.Context, db Querier, group string, txIDs, commitLSNs []int64) (map[int64]TxProgress, error) {
	if commitLSNs == nil {
		commitLSNs = make([]int64, len(txIDs))
	}
	// Each id is looked up by the tables' keys (LATERAL): plain joins are
	// planned, for a few thousand ids, as hash joins reading every staged
	// row and every resolved transaction of the retention period.
	rows, err := db.Query(ctx, `SELECT i.tx_id, r.done IS NOT NULL, coalesce(e.earlier, 0), s.data_collection, coalesce(s.n, 0)
		FROM (SELECT i.tx_id, bool_or(i.lsn = 0) AS any_lsn, array_agg(i.lsn) AS lsns, max(i.lsn) AS max_lsn
		        FROM unnest($2::bigint[], $3::bigint[]) AS i(tx_id, lsn) GROUP BY i.tx_id) AS i
		LEFT JOIN LATERAL (SELECT true AS done FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = i.tx_id
		                     AND (i.any_lsn OR x.commit_lsn = 0 OR x.commit_lsn = ANY(i.lsns)) LIMIT 1) r ON true
		LEFT JOIN LATERAL (SELECT max(x.commit_lsn) AS earlier FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = i.tx_id
		                     AND x.commit_lsn > 0 AND x.commit_lsn < i.max_lsn) e ON true
		LEFT JOIN LATERAL (SELECT s.data_collection, count(*) AS n FROM `+t.staged+` s WHERE s.group_id = $1 AND s.tx_id = i.tx_id
		                   GROUP BY s.data_collection) s ON true`, group, txIDs, commitLSNs)
	if err != nil {
		return nil, fmt.Errorf("dedup: read the progress of %d transactions: %w", len(txIDs), err)
	}
	out := make(map[int64]TxProgress, len(txIDs))
	var id, n, earlier int64
	var resolved bool
	var collection *string
	_, err = pgx.ForEachRow(rows, []any{&id, &resolved, &earlier, &collection, &n}, func() error {
		p, ok := out[id]
		if !ok {
			p = TxProgress{Resolved: resolved, Staged: map[string]int64{}, Earlier: earlier}
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
	out, _, err := t.readStaged(ctx, db, maxBytes, `SELECT tx_id, total_order, data_collection, topic, partition, kafka_offset, record_ts,
		record_key, record_value, headers, dead, key_schema, value_schema
		FROM `+t.staged+` WHERE group_id = $1 AND tx_id = $2 AND total_order > $3
		ORDER BY total_order LIMIT $4`, group, txID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("dedup: read staged records of transaction %d: %w", txID, err)
	}
	return out, nil
}

// ReadStagedOf returns every staged record of the transactions txIDs, the
// transactions in the order of txIDs and each one's records in its order,
// in one query: the resolver reads many small transactions at once, and
// bounds how many records that is by their ENDs' counts (a large one it
// reads with ReadStaged, a chunk at a time). With maxBytes > 0 the reading
// ends with the record that brings keys and values to maxBytes; cut then
// reports that records may follow the last one returned. Each
// transaction's records are read by the primary key (a lateral join): as a
// plain join, the planner, misled by statistics taken while tx_staged was
// small (it fills and empties as the resolver goes), scanned the group's
// whole staging for every transaction asked (docs/transactions.md, Cost).
func (t Transactions) ReadStagedOf(ctx context.Context, db Querier, group string, txIDs []int64, maxBytes int64) (records []StagedRecord, cut bool, err error) {
	out, cut, err := t.readStaged(ctx, db, maxBytes, `SELECT s.tx_id, s.total_order, s.data_collection, s.topic, s.partition,
		s.kafka_offset, s.record_ts, s.record_key, s.record_value, s.headers, s.dead, s.key_schema, s.value_schema
		FROM unnest($2::bigint[]) WITH ORDINALITY AS i(tx_id, n)
		CROSS JOIN LATERAL (SELECT * FROM `+t.staged+` s WHERE s.group_id = $1 AND s.tx_id = i.tx_id ORDER BY s.total_order) s
		ORDER BY i.n, s.total_order`, group, txIDs)
	if err != nil {
		return nil, false, fmt.Errorf("dedup: read staged records of %d transactions: %w", len(txIDs), err)
	}
	return out, cut, nil
}

// readStaged runs a query of staged records, ending after the record that
// brings them to maxBytes (cut), and joins what it read.
func (t Transactions) readStaged(ctx context.Context, db Querier, maxBytes int64, sql string, args ...any) ([]StagedRecord, bool, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, err
	}
	var out []StagedRecord
	var digests [][2][]byte // per record of out: its key's and value's schema, when split
	var r StagedRecord
	var size int64
	var ts *time.Time
	var headers, keySchema, valueSchema []byte
	_, err = pgx.ForEachRow(rows, []any{&r.TxID, &r.TotalOrder, &r.DataCollection, &r.Topic, &r.Partition, &r.Offset, &ts,
		&r.Key, &r.Value, &headers, &r.Dead, &keySchema, &valueSchema}, func() error {
		rec := r
		if ts != nil {
			rec.Timestamp = *ts
		}
		// Most records have no headers: jsonb gives back '[]' as it was
		// staged.
		if string(headers) != "[]" {
			if err := json.Unmarshal(headers, &rec.Headers); err != nil {
				return fmt.Errorf("headers of %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
		}
		out = append(out, rec)
		digests = append(digests, [2][]byte{keySchema, valueSchema})
		// The bytes the record takes joined (a schema not read yet counts
		// from the next chunk on).
		size += int64(len(rec.Key) + len(rec.Value))
		for _, d := range [2][]byte{keySchema, valueSchema} {
			if schema, ok := t.env.schema(d); d != nil && ok {
				size += int64(len(schema) + jsonenvelope.Overhead)
			}
		}
		r, keySchema, valueSchema = StagedRecord{}, nil, nil
		if maxBytes > 0 && size >= maxBytes {
			return errChunkFull
		}
		return nil
	})
	cut := errors.Is(err, errChunkFull)
	if err != nil && !cut {
		return nil, false, err
	}
	if err := t.join(ctx, db, out, digests); err != nil {
		return nil, false, err
	}
	return out, cut, nil
}

// queueSchemas queues the storing of the schemas records of a staging
// batch were split from, before the records: in the same transaction, so
// a staged row never names a schema that is not stored. In digest order,
// so that two batches storing the same new schemas wait for each other
// rather than deadlock.
// schemaRefresh is how old a stored schema's stored_at may grow before a
// staging that names it sets it again; pruning keeps every schema stored
// within twice that (minSchemaRetention), so a staging transaction that
// found its schema recent cannot see it pruned before it commits.
const schemaRefresh = time.Hour

// minSchemaRetention is the least age at which a schema is pruned,
// whatever retention.tombstones says.
const minSchemaRetention = 2 * schemaRefresh

func (t Transactions) queueSchemas(b *pgx.Batch, schemas []schemaPart) {
	slices.SortFunc(schemas, func(a, b schemaPart) int { return bytes.Compare(a.digest, b.digest) })
	digests, raws := make([][]byte, len(schemas)), make([][]byte, len(schemas))
	for i, s := range schemas {
		digests[i], raws[i] = s.digest, s.raw
	}
	// A schema stored longer ago than schemaRefresh is marked as in use
	// again first: the UPDATE locks its row until this transaction ends,
	// so a prune deleting it waits, then finds it recent and keeps it
	// (see Ledgers.pruneSchemas). A recent schema is neither locked nor
	// written, so partitions staging the same schemas do not wait for
	// each other; an INSERT … ON CONFLICT DO UPDATE would lock every row.
	// The UPDATE goes first: after the INSERT met a row, a prune could
	// delete it before the UPDATE, which would then find nothing.
	b.Queue(`UPDATE `+t.schemas+` SET stored_at = now() WHERE digest = ANY($1::bytea[]) AND stored_at < now() - make_interval(secs => $2)`,
		digests, schemaRefresh.Seconds()).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: mark %d schemas of staged records as in use: %w", len(digests), err)
		}
		return nil
	}
	b.Queue(`INSERT INTO `+t.schemas+` (digest, schema) SELECT * FROM unnest($1::bytea[], $2::bytea[])
		ON CONFLICT (digest) DO NOTHING`, digests, raws).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: store %d schemas of staged records: %w", len(digests), err)
		}
		return nil
	}
}

// join gives the split keys and values of records their schemas
// (digests[i] are those of records[i], nil where the record was staged
// whole), reading the schemas it does not know yet in one query. Every
// record of a schema shares its bytes.
func (t Transactions) join(ctx context.Context, db Querier, records []StagedRecord, digests [][2][]byte) error {
	// The schemas of this read are held here, not looked up in the cache
	// again: learning those it lacks may empty it (maxJoinSchemas).
	schemas := map[string][]byte{}
	var missing [][]byte
	for _, d := range digests {
		for _, digest := range d {
			if _, ok := schemas[string(digest)]; digest == nil || ok {
				continue
			}
			if raw, ok := t.env.schema(digest); ok {
				schemas[string(digest)] = raw
			} else if !slices.ContainsFunc(missing, func(m []byte) bool { return bytes.Equal(m, digest) }) {
				missing = append(missing, digest)
			}
		}
	}
	if len(missing) > 0 {
		rows, err := db.Query(ctx, `SELECT digest, schema FROM `+t.schemas+` WHERE digest = ANY($1::bytea[])`, missing)
		if err != nil {
			return fmt.Errorf("read the schemas of staged records: %w", err)
		}
		var found []schemaPart
		var s schemaPart
		if _, err := pgx.ForEachRow(rows, []any{&s.digest, &s.raw}, func() error {
			found = append(found, s)
			schemas[string(s.digest)] = s.raw
			s = schemaPart{}
			return nil
		}); err != nil {
			return fmt.Errorf("read the schemas of staged records: %w", err)
		}
		t.env.learn(found)
	}
	for i := range records {
		for part, digest := range digests[i] {
			if digest == nil {
				continue
			}
			schema, ok := schemas[string(digest)]
			if !ok {
				r := records[i]
				return fmt.Errorf("%s[%d]@%d was staged without its schema %x (tx_schemas lost a row)", r.Topic, r.Partition, r.Offset, digest)
			}
			if part == 0 && records[i].Key != nil {
				records[i].KeySchema = schema
			} else if part == 1 && records[i].Value != nil {
				records[i].ValueSchema = schema
			}
		}
	}
	return nil
}

// errChunkFull ends the reading of a chunk of staged records at its bytes.
var errChunkFull = errors.New("chunk full")

// QueueResolve queues into b, the resolver's apply transaction, the record
// that transaction txID of eventCount events, committed at commitLSN (the
// LSN part of its END's id; 0 when unknown), is applied, and the deletion
// of its staged records. A transaction applied twice fails on the primary
// key rather than apply twice. The commit position is part of the key:
// txID is PostgreSQL's 32-bit xid, which comes round.
func (t Transactions) QueueResolve(b *pgx.Batch, group string, txID, commitLSN, eventCount int64) {
	t.QueueResolveAll(b, group, []int64{txID}, []int64{commitLSN}, []int64{eventCount})
}

// QueueResolveAll is QueueResolve for the transactions txIDs, committed at
// commitLSNs, of eventCounts events each, in two statements whatever their
// number.
func (t Transactions) QueueResolveAll(b *pgx.Batch, group string, txIDs, commitLSNs, eventCounts []int64) {
	if len(txIDs) == 0 {
		return
	}
	b.Queue(`INSERT INTO `+t.resolved+` (group_id, tx_id, commit_lsn, event_count) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[])`,
		group, txIDs, commitLSNs, eventCounts).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: record %d transactions applied (%d to %d): %w", len(txIDs), txIDs[0], txIDs[len(txIDs)-1], err)
		}
		return nil
	}
	b.Queue(`DELETE FROM `+t.staged+` WHERE group_id = $1 AND tx_id = ANY($2::bigint[])`, group, txIDs).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("dedup: delete staged records of %d transactions (%d to %d): %w", len(txIDs), txIDs[0], txIDs[len(txIDs)-1], err)
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
// when nothing is staged. It reads the whole staging table (no index
// leads with staged_at, see StagedLongerThan): for the check at start, not
// for a loop. A record of an applied transaction can be left
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

// StagedLongerThan returns a transaction with records staged and not
// applied whose first staged record was staged more than age ago (of
// several, the lowest xid), without its counts (Records is 0); ok is false
// when there is none. The resolver's idle check (data whose END never
// comes) runs it every few seconds, so it must not read every staged
// record, a large transaction's million included.
//
// A transaction is found by its first staged record, whatever its
// total_order: an application that emits a logical decoding message
// (pg_logical_emit_message) at the start of every transaction makes the
// first data event's total_order 2, and pgsink stages no message, so a
// search for total_order 1 (the partial index of migration 0011) found no
// such transaction. The search skips through the primary key (group_id,
// tx_id, total_order), one index probe per staged transaction and none per
// record, and stops at the first old enough: when such a transaction
// exists it is usually among the lowest xids (assigned as transactions
// begin), so it is found after few probes; a long transaction (a low xid
// staged late) or the 32-bit xid coming round (the newest sort first) puts
// younger ones before it, probed first, never more than one probe per
// staged transaction; when none does, it probes every staged transaction, which an idle resolver (every
// END read) has few of unless no END comes at all (docs/transactions.md,
// Tables, has the cost). FirstStaged is the found record's staged_at.
func (t Transactions) StagedLongerThan(ctx context.Context, db DB, group string, age time.Duration) (oldest Unresolved, ok bool, err error) {
	var ageMicros int64
	err = db.QueryRow(ctx, `WITH RECURSIVE firsts AS (
		  (SELECT tx_id, staged_at FROM `+t.staged+` WHERE group_id = $1 ORDER BY tx_id, total_order LIMIT 1)
		  UNION ALL
		  SELECT n.tx_id, n.staged_at FROM firsts f CROSS JOIN LATERAL
		    (SELECT tx_id, staged_at FROM `+t.staged+` WHERE group_id = $1 AND tx_id > f.tx_id
		     ORDER BY tx_id, total_order LIMIT 1) n)
		SELECT f.tx_id, f.staged_at, (extract(epoch FROM now() - f.staged_at) * 1e6)::bigint
		FROM firsts f
		WHERE f.staged_at < now() - $2::interval
		  AND NOT EXISTS (SELECT 1 FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = f.tx_id)
		LIMIT 1`, group, age).Scan(&oldest.TxID, &oldest.FirstStaged, &ageMicros)
	if err == pgx.ErrNoRows {
		return Unresolved{}, false, nil
	}
	if err != nil {
		return Unresolved{}, false, fmt.Errorf("dedup: read a transaction staged longer than %s ago: %w", age, err)
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

// TxRecords are records of source transactions of one data partition: at
// Offsets, of the transactions TxIDs, at their own LSNs (source.lsn).
type TxRecords struct {
	Topic                string
	Partition            int32
	TxIDs, LSNs, Offsets []int64
}

// ResolvedCommits reports, for each of recs, the commit LSN of its
// transaction if the resolver of group applied it, 0 if it applied it and
// the commit position is not recorded, -1 if it did not, in one round
// trip: a fill applies a record of a source transaction only once its
// transaction is applied to the live table (an online rebuild, cut nil),
// or was at cut (TxCut, `replay --into`), so that the table it fills never
// holds part of one. Of two applied transactions of one xid, a record is
// of the first to commit after it.
//
// The commit position is not recorded for a transaction recorded before
// migration 0009, and for one whose row retention.tombstones pruned:
// a record at or below the partition's frontier (tx_frontier: records are
// resolved in their partition's order) whose transaction is neither
// recorded nor staged was applied and forgotten. Both are older than every
// transaction recorded with its commit. Without that, a fill of a topic
// older than the retention would take its first transaction's record for
// one not applied yet.
//
// With a cut, a transaction recorded without its commit position is in
// it only if it was recorded at the cut (resolved_at at or before the
// cut's ResolvedAt): an END whose id carries no LSN (Debezium before 2.1
// wrote "<txId>" alone) is recorded with 0, and Holds takes 0 for "before
// every recorded commit"; one recorded after the cut would be taken by a
// partition reaching it then, and not by one that reached it before.
//
// With a cut, "applied and forgotten" is decided as of the cut, not now:
// the partition's frontier is the cut's, and a transaction staged and not
// applied at the cut is not forgotten before it. What is staged now does
// not count: a partition stages its records in offset order, so every
// record at or below the cut's frontier was staged, or refused as
// applied, by the cut; one staged since is a re-emission of a transaction
// applied before the cut and pruned since, which a partition that reached
// it before the prune took. A copy longer than
// retention.tombstones otherwise met a transaction applied after its cut
// and pruned meanwhile as one applied before it (below today's frontier,
// neither recorded nor staged): a partition reaching it after the prune
// copied it, while one that reached it before, still recorded with its
// commit past the cut, had ended there.
func (t Transactions) ResolvedCommits(ctx context.Context, db Querier, group string, recs TxRecords, cut *TxCut) ([]int64, error) {
	asOfCut := cut != nil
	var cutFrontier *int64
	if asOfCut {
		if off, ok := cut.frontierOf(recs.Topic, recs.Partition); ok {
			cutFrontier = &off
		}
	}
	var cutResolvedAt *time.Time
	if asOfCut && !cut.ResolvedAt.IsZero() {
		cutResolvedAt = &cut.ResolvedAt
	}
	rows, err := db.Query(ctx, `SELECT coalesce(
		  (SELECT CASE WHEN x.commit_lsn = 0 AND $7::boolean AND x.resolved_at > coalesce($9::timestamptz, '-infinity') THEN -1 ELSE x.commit_lsn END
		     FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = r.tx_id
		     AND (x.commit_lsn = 0 OR r.lsn < x.commit_lsn) ORDER BY x.commit_lsn = 0, x.commit_lsn LIMIT 1),
		  CASE WHEN r.off <= CASE WHEN $7::boolean THEN $8::bigint
		                     ELSE (SELECT f.kafka_offset FROM `+t.frontier+` f WHERE f.group_id = $1 AND f.topic = $2 AND f.partition = $3) END
		        AND ($7::boolean OR NOT EXISTS (SELECT 1 FROM `+t.staged+` s WHERE s.group_id = $1 AND s.tx_id = r.tx_id)) THEN 0 END,
		  -1)
		FROM unnest($4::bigint[], $5::bigint[], $6::bigint[]) WITH ORDINALITY AS r(tx_id, lsn, off, n) ORDER BY r.n`,
		group, recs.Topic, recs.Partition, recs.TxIDs, recs.LSNs, recs.Offsets, asOfCut, cutFrontier, cutResolvedAt)
	if err != nil {
		return nil, fmt.Errorf("dedup: read which of %d transactions are applied: %w", len(recs.TxIDs), err)
	}
	out := make([]int64, 0, len(recs.TxIDs))
	var commit int64
	if _, err := pgx.ForEachRow(rows, []any{&commit}, func() error { out = append(out, commit); return nil }); err != nil {
		return nil, fmt.Errorf("dedup: read which of %d transactions are applied: %w", len(recs.TxIDs), err)
	}
	if asOfCut && len(out) == len(recs.TxIDs) {
		for i, c := range out {
			// Applied without a commit position known now, and staged at
			// the cut: applied after the cut and pruned since, unless the
			// cut recorded it applied too (a record left staged of an
			// applied transaction): then the cut's answer is the one a
			// partition got before the prune.
			if _, staged := slices.BinarySearch(cut.Staged, recs.TxIDs[i]); c == 0 && staged {
				out[i] = cut.stagedCommit(recs.TxIDs[i], recs.LSNs[i])
			}
		}
	}
	return out, nil
}

// TxCommit is a transaction recorded applied, with its commit position (0
// when not recorded).
type TxCommit struct {
	TxID, CommitLSN int64
}

// stagedCommit answers, for a record at lsn of a transaction staged at the
// cut, as ResolvedCommits' first clause did at the cut: the first commit
// of the xid after the record, else one recorded without its position
// (0), else -1 (not applied at the cut).
func (c *TxCut) stagedCommit(txID, lsn int64) int64 {
	answer := int64(-1)
	for _, a := range c.StagedApplied {
		switch {
		case a.TxID != txID:
		case a.CommitLSN > lsn && (answer <= 0 || a.CommitLSN < answer):
			answer = a.CommitLSN
		case a.CommitLSN == 0 && answer < 0:
			answer = 0
		}
	}
	return answer
}

// TxCut is the set of source transactions a group's resolver had applied
// at one moment. It applies them in commit order, so they are those
// recorded with a commit position at or below CommitLSN (and those
// recorded without one by then: before migration 0009, or from an END
// whose id has no LSN), and, of those whose
// tx_resolved row retention.tombstones prunes while a fill runs, those
// whose records lie at or below the cut's Frontier and were not Staged at
// it (or were, and recorded applied at it: StagedApplied): a transaction
// applied later commits after it. A fill that takes only
// these transactions, in every partition, holds each source transaction
// whole or not at all, however long it runs; "applied now", asked
// partition by partition as the fill reaches them, would let one
// partition take a transaction that another passed over a moment before.
type TxCut struct {
	CommitLSN int64
	// OldestCommitLSN is the lowest commit position still recorded (0 when
	// none is): a transaction applied without one recorded (before
	// migration 0009, or pruned) committed before it.
	OldestCommitLSN int64
	// Frontier is tx_frontier at the cut: per data partition, the highest
	// offset of its records the resolver had applied.
	Frontier []PartitionOffset
	// ResolvedAt is the latest resolved_at recorded at the cut (zero when
	// none is). The resolver's apply transactions run one after the other
	// (fenced by the offsets row, whose lock a new owner's claim waits
	// for) and resolved_at is each one's start time, so a row recorded
	// after the cut has a later one, as long as the target's clock does
	// not go back.
	ResolvedAt time.Time
	// Staged are the transactions with records staged at the cut, in
	// ascending order: not applied then, but for a record left staged of
	// an applied one (a re-emission staged while the resolver applied it,
	// or of an xid come round), whose rows at the cut are StagedApplied.
	Staged []int64
	// StagedApplied are the tx_resolved rows at the cut of the Staged
	// transactions, by xid and commit position: a transaction applied
	// before the cut with a record left staged is in the cut after its
	// row is pruned as before, or a partition reaching it after the prune
	// would end there while one that reached it before took it (split).
	StagedApplied []TxCommit
}

// frontierOf returns the cut's frontier of a data partition; ok is false
// when the resolver had applied none of its records (or none since
// migration 0010).
func (c *TxCut) frontierOf(topic string, partition int32) (int64, bool) {
	for _, f := range c.Frontier {
		if f.Topic == topic && f.Partition == partition {
			return f.Offset, true
		}
	}
	return 0, false
}

// Holds reports whether the transaction of a record, whose commit
// ResolvedCommits returned when asked with this cut, is in the cut.
func (c TxCut) Holds(commit int64) bool { return commit == 0 || (commit > 0 && commit <= c.CommitLSN) }

// CutNow reads the cut of what the resolver of group has applied now, in
// one statement (one snapshot: the resolver records a transaction, moves
// the frontier and deletes its staged records in one transaction). It
// reads every transaction the group records (no index leads with the
// commit position), its frontier, and the first staged record of each
// staged transaction: once per fill.
func (t Transactions) CutNow(ctx context.Context, db DB, group string) (TxCut, error) {
	var c TxCut
	var topics []string
	var partitions []int32
	var offsets []int64
	var resolvedAt *time.Time
	var appliedIDs, appliedCommits []int64
	err := db.QueryRow(ctx, `WITH RECURSIVE firsts AS (
		  (SELECT tx_id FROM `+t.staged+` WHERE group_id = $1 ORDER BY tx_id, total_order LIMIT 1)
		  UNION ALL
		  SELECT n.tx_id FROM firsts f CROSS JOIN LATERAL
		    (SELECT tx_id FROM `+t.staged+` WHERE group_id = $1 AND tx_id > f.tx_id ORDER BY tx_id, total_order LIMIT 1) n)
		SELECT r.max, r.min, r.at, f.topics, f.partitions, f.offsets, s.staged, a.tx_ids, a.commits
		FROM (SELECT coalesce(max(commit_lsn), 0) AS max, coalesce(min(commit_lsn) FILTER (WHERE commit_lsn > 0), 0) AS min,
		             max(resolved_at) AS at
		      FROM `+t.resolved+` WHERE group_id = $1) r,
		     (SELECT coalesce(array_agg(topic), '{}') AS topics, coalesce(array_agg(partition), '{}') AS partitions,
		             coalesce(array_agg(kafka_offset), '{}') AS offsets
		      FROM `+t.frontier+` WHERE group_id = $1) f,
		     (SELECT coalesce(array_agg(tx_id ORDER BY tx_id), '{}') AS staged FROM firsts) s,
		     (SELECT coalesce(array_agg(x.tx_id ORDER BY x.tx_id, x.commit_lsn), '{}') AS tx_ids,
		             coalesce(array_agg(x.commit_lsn ORDER BY x.tx_id, x.commit_lsn), '{}') AS commits
		      FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id IN (SELECT tx_id FROM firsts)) a`, group).
		Scan(&c.CommitLSN, &c.OldestCommitLSN, &resolvedAt, &topics, &partitions, &offsets, &c.Staged, &appliedIDs, &appliedCommits)
	if err != nil {
		return TxCut{}, fmt.Errorf("dedup: read the transactions group %s has applied: %w", group, err)
	}
	if resolvedAt != nil {
		c.ResolvedAt = *resolvedAt
	}
	for i := range topics {
		c.Frontier = append(c.Frontier, PartitionOffset{Topic: topics[i], Partition: partitions[i], Offset: offsets[i]})
	}
	for i := range appliedIDs {
		c.StagedApplied = append(c.StagedApplied, TxCommit{TxID: appliedIDs[i], CommitLSN: appliedCommits[i]})
	}
	return c, nil
}

// OldestCommitNow reads the lowest commit position group records now (0
// when none is): see TxCut.OldestCommitLSN.
func (t Transactions) OldestCommitNow(ctx context.Context, db DB, group string) (int64, error) {
	var oldest int64
	err := db.QueryRow(ctx, `SELECT coalesce(min(commit_lsn) FILTER (WHERE commit_lsn > 0), 0)
		FROM `+t.resolved+` WHERE group_id = $1`, group).Scan(&oldest)
	if err != nil {
		return 0, fmt.Errorf("dedup: read the oldest commit group %s records: %w", group, err)
	}
	return oldest, nil
}
