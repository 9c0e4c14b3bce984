package debezium

import (
	"time"

	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// Record is one Kafka record as the decoder needs it. The connector fills it
// from the consumer; tests fill it from test/recording. Key and Value are nil
// for a null key or value (a tombstone has a null Value).
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []Header
	// KeySchema and ValueSchema, when set, are S of a JsonConverter key
	// or value {"schema": S, "payload": P} kept apart from it, and Key or
	// Value hold only P: transaction staging stores each schema once
	// (dedup.Transactions), and the decoder decodes P against S without
	// the record being put back together. Unlike Key and Value, their
	// bytes must never change once given to a Decoder, even after Decode
	// returns: the decoder remembers the last schema's address and takes
	// the same address again for the same schema without comparing it
	// (a caller reusing a buffer for schemas must copy them instead).
	KeySchema, ValueSchema []byte
}

// joined returns rec with its split key and value put back together,
// {"schema": S, "payload": P}, as JsonConverter wrote them.
func (rec Record) joined() Record {
	if rec.KeySchema != nil && rec.Key != nil {
		rec.Key = jsonenvelope.Join(rec.KeySchema, rec.Key)
	}
	if rec.ValueSchema != nil && rec.Value != nil {
		rec.Value = jsonenvelope.Join(rec.ValueSchema, rec.Value)
	}
	rec.KeySchema, rec.ValueSchema = nil, nil
	return rec
}

// size is the bytes of rec's key and value, put back together if split.
func (rec *Record) size() int {
	n := len(rec.Key) + len(rec.Value)
	for _, part := range [2][2][]byte{{rec.KeySchema, rec.Key}, {rec.ValueSchema, rec.Value}} {
		if part[0] != nil && part[1] != nil {
			n += jsonenvelope.Overhead + len(part[0])
		}
	}
	return n
}

// split reports whether rec holds a key or value apart from its schema.
func (rec *Record) split() bool { return rec.KeySchema != nil || rec.ValueSchema != nil }

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Kind says what a record is, before any operation is considered.
type Kind uint8

const (
	// KindChange is a table change event (op c, r, u, d, t).
	KindChange Kind = iota + 1
	// KindTombstone is the null-valued record Debezium sends after a delete,
	// for log compaction. It carries the deleted key and nothing to apply.
	KindTombstone
	// KindOutbox is an Outbox Event Router record.
	KindOutbox
	// KindMessage is a logical decoding message (op m).
	KindMessage
	// KindTransaction is a BEGIN or END marker of the transaction metadata
	// topic (provide.transaction.metadata=true).
	KindTransaction
)

// Op is a change event's operation, Debezium's `op` field.
type Op byte

const (
	OpCreate   Op = 'c'
	OpRead     Op = 'r' // a snapshot row
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpTruncate Op = 't'
	OpMessage  Op = 'm'
)

// Version orders the changes of one source database: Debezium's
// source.sequence, ["lastCommitLsn","lsn"], compared as a pair. Debezium
// reports a null lastCommitLsn for snapshot rows and for the first event it
// streams after a snapshot; CommitLSN is 0 then. Sources whose events carry
// no sequence fall back to (0, source.lsn).
type Version struct {
	CommitLSN int64
	LSN       int64
}

// Less reports whether v orders before o.
func (v Version) Less(o Version) bool {
	if v.CommitLSN != o.CommitLSN {
		return v.CommitLSN < o.CommitLSN
	}
	return v.LSN < o.LSN
}

// Field is one column's value in a row image.
//
// Value is nil for SQL NULL. Non-nil values have Go types that pgx v5 binds
// to the column's PostgreSQL type without loss, through both the extended
// protocol and COPY; the decoder documents the type per Debezium logical
// type and proves it with a round trip through PostgreSQL.
//
// Unchanged is true when Debezium sent its unavailable-value placeholder (an
// unchanged TOASTed value under REPLICA IDENTITY DEFAULT): the stored value
// must be kept, and Value is nil. It is distinct from NULL (invariant I7).
type Field struct {
	Name      string
	Value     any
	Unchanged bool
}

// Row is a row image: fields in the order of the event's schema, or of the
// payload when the record has no schema.
type Row []Field

// Get returns the field named name.
func (r Row) Get(name string) (Field, bool) {
	for _, f := range r {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Transaction is an event's `transaction` block.
type Transaction struct {
	// ID is Debezium's "<txId>:<lsn>"; the LSN part differs per event, so
	// group by TxID, not by ID.
	ID                  string
	TxID                int64
	TotalOrder          int64
	DataCollectionOrder int64
}

// Change is one decoded Kafka record.
type Change struct {
	// Position, for errors, dead letters and offsets.
	Topic     string
	Partition int32
	Offset    int64

	Kind Kind
	Op   Op // KindChange and KindMessage only

	// Source identity: schema and table of the captured table.
	Schema string
	Table  string

	// Columns are the row image's columns with the PostgreSQL type each
	// maps to, from the event's schema: what schema.create and
	// schema.evolve build from. Shared between Changes; nil without schemas.
	Columns []Column

	Key    Row // the record key's fields
	Before Row // nil unless the event carries a before image
	After  Row // nil for deletes and truncates

	Version  Version
	TxID     int64
	Snapshot bool // source.snapshot is anything but "false"
	// SnapshotMark is where in its snapshot a snapshot record stands
	// (source.snapshot); SnapshotNone for streamed records.
	SnapshotMark SnapshotMark
	SourceTs     time.Time // source.ts_us (ts_ms when ts_us is absent)
	EventTs      time.Time // the envelope's ts_us (ts_ms when absent)

	Transaction *Transaction // nil unless provide.transaction.metadata
	// ImagesSkipped: the event's row images were left undecoded, Before
	// and After are nil (Decoder.SkipTransactionalImages).
	ImagesSkipped bool

	// OldKey and NewKey are set on the two halves of a primary-key change,
	// from the __debezium.oldkey / __debezium.newkey headers: the create of
	// the new key carries OldKey, the delete of the old key carries NewKey.
	OldKey Row
	NewKey Row

	Outbox  *OutboxEvent       // KindOutbox; on a KindTombstone of an outbox topic, AggregateID only
	Message *LogicalMessage    // KindMessage only
	TxMark  *TransactionMarker // KindTransaction only
}

// OutboxEvent is one record of Debezium's Outbox Event Router.
type OutboxEvent struct {
	AggregateID string // the record key
	EventID     string // header `id`
	Type        string // header or envelope field (table.fields.additional.placement)
	// Payload is the event payload as JSON text: the expanded JSON object
	// (table.expand.json.payload=true) or the JSON string as sent.
	Payload []byte
	// Fields are additional envelope fields placed by the router.
	Fields map[string]any
}

// LogicalMessage is a pg_logical_emit_message() record.
type LogicalMessage struct {
	Prefix        string
	Content       []byte
	Transactional bool
}

// TransactionMarker is a record of the transaction metadata topic.
type TransactionMarker struct {
	Status string // BEGIN or END
	ID     string
	TxID   int64
	// CommitLSN is the LSN part of an END's id, the transaction's commit
	// position (0 when the id has none): TxID is PostgreSQL's 32-bit xid,
	// which comes round, and the pair tells two transactions apart.
	CommitLSN  int64
	EventCount int64 // END only
	// DataCollections are END's events per captured table, as Debezium
	// names them ("public.orders").
	DataCollections []CollectionCount
}

// CollectionCount is one captured table's share of a transaction's events.
type CollectionCount struct {
	DataCollection string
	EventCount     int64
}
