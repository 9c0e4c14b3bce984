package config

// Config is one pgsink configuration file, decoded, defaulted and validated.
// Every field is documented by the YAML key it comes from; Keys lists them
// all for the reference documentation.
type Config struct {
	// Kafka passes librdkafka properties through unchanged, as strings.
	Kafka    map[string]string `yaml:"kafka"`
	Instance Instance          `yaml:"instance"`
	Postgres Postgres          `yaml:"postgres"`
	Debezium Debezium          `yaml:"debezium"`
	// Encoding is how records' keys and values are serialised, for every
	// table that does not set its own.
	Encoding        Encoding       `yaml:"encoding"`
	SchemaRegistry  SchemaRegistry `yaml:"schema_registry"`
	Apply           Apply          `yaml:"apply"`
	Errors          Errors         `yaml:"errors"`
	Retention       Retention      `yaml:"retention"`
	Metrics         Metrics        `yaml:"metrics"`
	Log             Log            `yaml:"log"`
	ShutdownTimeout Duration       `yaml:"shutdown_timeout"`
	Verify          Verify         `yaml:"verify"`
	Tables          []Table        `yaml:"tables"`

	// source remembers where every key was, so that checks made after
	// loading (the target catalog) can name a line too.
	source *source
}

// Instance names this process in its consumer group. A name that survives
// a restart (a StatefulSet pod's, a systemd unit's) makes it a static member
// (group.instance.id): restarted after a crash, it takes its partitions back
// at once instead of after the dead member's session times out.
type Instance struct {
	// Name is the group.instance.id; PGSINK_INSTANCE_NAME overrides it.
	// Empty (the default): a dynamic member, as before.
	Name string `yaml:"name,omitempty"`
	// nameFromEnv: Name came from InstanceNameEnv, for messages.
	nameFromEnv bool
}

// Postgres is the target database.
type Postgres struct {
	URL string `yaml:"url"`
	// MaxConnections bounds how many partitions are applied at once.
	MaxConnections int `yaml:"max_connections"`
	// StagingTablesPerConnection bounds the temporary staging tables each
	// connection keeps between transactions, one per target table (and
	// column set) it wrote: past it the least recently used is dropped.
	StagingTablesPerConnection int `yaml:"staging_tables_per_connection"`
	// SynchronousCommit "off" keeps the exactly-once effect (data and
	// offset commit together, a lost commit is redelivered) but not the
	// durability of side effects outside Postgres; see DESIGN.md. It takes
	// the WAL flush out of each commit's wait, which is most of the latency
	// tail when the disk is shared (docs/benchmarks.md). With
	// apply.offsets: kafka it would lose rows, and is refused.
	SynchronousCommit SynchronousCommit `yaml:"synchronous_commit"`
	// Schema holds pgsink's own tables (offsets, ledgers, dead letters).
	Schema string `yaml:"schema"`
}

// Debezium is where validate and run read the Debezium connectors'
// settings, to report those that lose data before it flows (package
// upstream). Nothing is read when ConnectURL is empty.
type Debezium struct {
	// ConnectURL is Kafka Connect's REST API (http or https), without
	// credentials: they go in User and Password, which are never printed.
	ConnectURL string `yaml:"connect_url,omitempty"`
	// User and Password are HTTP basic authentication, for a Connect
	// secured by rest.extension.classes' BasicAuthSecurityRestExtension.
	User     string `yaml:"user,omitempty"`
	Password string `yaml:"password,omitempty"`
	// TLSCA is a PEM file of the certificate authorities of an https
	// ConnectURL; empty trusts the system's.
	TLSCA string `yaml:"tls_ca,omitempty"`
}

// SchemaRegistry is where encoding: avro reads the schemas of records by
// their id, through the Confluent-compatible API (Confluent Schema Registry,
// or Apicurio Registry's /apis/ccompat/v7).
type SchemaRegistry struct {
	URL string `yaml:"url,omitempty"`
	// User and Password are HTTP basic authentication; the password comes
	// from the environment and is never printed.
	User     string `yaml:"user,omitempty"`
	Password string `yaml:"password,omitempty"`
	// TLSCA is a PEM file of the certificate authorities of an https URL;
	// empty trusts the system's.
	TLSCA string `yaml:"tls_ca,omitempty"`
}

// Apply shapes batches and retries of the apply path.
type Apply struct {
	// Start is where a partition with no stored offset begins.
	Start Start `yaml:"start"`
	Batch Batch `yaml:"batch"`
	Retry Retry `yaml:"retry"`
	// MaxBufferedBytes bounds the records fetched but not yet applied
	// (queued for a worker or in its batch), over all partitions: past it
	// the consumer stops fetching (backpressure), so memory stays bounded
	// whatever the lag. pgsink run derives the Go heap's soft limit from it.
	MaxBufferedBytes ByteSize `yaml:"max_buffered_bytes"`
	// Offsets is where positions live: "table" (the default) moves them in
	// the apply transaction, exactly once (I1, I2); "kafka" commits them to
	// Kafka after the transaction, at least once, like Kafka Connect sinks.
	// It exists to measure what exactly-once costs and for targets where
	// replays are harmless; the version guard still refuses stale rows.
	Offsets Offsets `yaml:"offsets"`
	// Consistency is what a reader of the target sees: "partition" (the
	// default) applies each partition on its own; "transaction" makes each
	// source transaction visible whole, in commit order (docs/transactions.md).
	Consistency Consistency `yaml:"consistency"`
	// Transaction configures apply.consistency: transaction.
	Transaction TransactionApply `yaml:"transaction"`
	// Pipeline is how many transactions of one partition may be in flight
	// at once: with 2, the next batch's transaction starts on a second
	// connection while the previous one commits, chained to it by the
	// offsets compare-and-set. 1 applies one batch at a time.
	Pipeline int `yaml:"pipeline"`
}

// TransactionApply configures the transaction-consistent apply.
type TransactionApply struct {
	// Topic is the Debezium connector's transaction metadata topic
	// (<topic.prefix>.transaction), whose one partition orders the
	// source's transactions.
	Topic string `yaml:"topic"`
	// MaxWait is how long a transaction's END may wait for its staged
	// events, and staged events for their END, before the resolver stops
	// with the reason.
	MaxWait Duration `yaml:"max_wait"`
	// MaxStagedBytes bounds, per data partition, the keys and values of
	// records staged and not applied by the resolver yet: a partition at
	// it waits before staging more (its offset unmoved, its consumption
	// paused as by a full queue), so that staged rows are read and
	// deleted while still in the database's memory, and tx_staged's size
	// is bounded. A partition never waits while the resolver waits for
	// events not staged yet (a transaction larger than the bound).
	MaxStagedBytes ByteSize `yaml:"max_staged_bytes"`
	// Staging is the persistence of tx_staged, which every group of the
	// schema shares: logged, or unlogged (no WAL for staged records; a
	// crash of the target or a failover empties the table, and each
	// partition reads again what it staged above the resolver's frontier).
	Staging Staging `yaml:"staging"`
	// DirectLocalPartitions turns the local path on: a data partition owned
	// by the instance whose resolver owns the transaction topic hands its
	// transactions' records to that resolver in memory instead of staging
	// them, and the resolver moves its offsets row in the transaction that
	// applies them (docs/transactions.md). Off by default while it is new.
	DirectLocalPartitions bool `yaml:"direct_local_partitions"`
}

// Batch bounds one partition's batch; whichever limit is reached first closes it.
type Batch struct {
	MaxRecords int      `yaml:"max_records"`
	MaxBytes   ByteSize `yaml:"max_bytes"`
	MaxWait    Duration `yaml:"max_wait"`
}

// Retry governs transient errors (serialization failure, deadlock, lost
// connection): the batch is retried whole, with jittered exponential backoff (internal/backoff).
type Retry struct {
	MaxAttempts    int      `yaml:"max_attempts"`
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
}

// Errors decides what happens to a record that cannot be applied (I5).
type Errors struct {
	Tolerance  Tolerance  `yaml:"tolerance"`
	DeadLetter DeadLetter `yaml:"dead_letter"`
}

// DeadLetter says where records that cannot be applied go when Tolerance is all.
type DeadLetter struct {
	// Destination "table" writes in the transaction that moves the offset
	// (exactly once); "topic" produces before the offset moves (at least once).
	Destination Destination `yaml:"destination"`
	// Topic defaults to "<group.id>.dlq". The table is always
	// "<postgres.schema>.dead_letters", beside pgsink's other tables.
	Topic string `yaml:"topic,omitempty"`
}

// Retention bounds the exactly-once ledgers; entries younger than it are never pruned.
type Retention struct {
	Tombstones   Duration `yaml:"tombstones"`
	OutboxEvents Duration `yaml:"outbox_events"`
}

// Metrics is the HTTP listener for /metrics, /healthz and /readyz.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Verify is how `pgsink verify` reads the source database and bounds the
// load it puts there; only verify reads it.
type Verify struct {
	// SourceURL is the source database (a read-only role is enough for
	// verify; --repair also inserts into SignalTable). Put the password in
	// the environment: ${PGSINK_SOURCE_URL}.
	SourceURL string `yaml:"source_url,omitempty"`
	// Slot is the Debezium connector's replication slot, whose confirmed
	// position tells when every change before a point has reached Kafka.
	Slot string `yaml:"slot,omitempty"`
	// SignalTable is the connector's signal.data.collection, where
	// --repair inserts its execute-snapshot signals.
	SignalTable TableName `yaml:"signal_table,omitempty"`
	// ChunkRows is how many rows one chunk hashes on each side.
	ChunkRows int `yaml:"chunk_rows"`
	// MaxRowsPerSecond bounds the rows read from the source per second; 0
	// does not bound them.
	MaxRowsPerSecond int `yaml:"max_rows_per_second"`
	// StatementTimeout bounds each statement on the source and the target.
	StatementTimeout Duration `yaml:"statement_timeout"`
	// SettleTimeout bounds the wait for pgsink to apply what the source
	// had committed when a difference was found.
	SettleTimeout Duration `yaml:"settle_timeout"`
}

// Log configures zap.
type Log struct {
	Format LogFormat `yaml:"format"`
	Level  LogLevel  `yaml:"level"`
}

// Table maps one topic, a topic list or a topic pattern to one target table.
type Table struct {
	// Exactly one of Topic, Topics and TopicPattern is set.
	Topic        string   `yaml:"topic,omitempty"`
	Topics       []string `yaml:"topics,omitempty"`
	TopicPattern Pattern  `yaml:"topic_pattern,omitempty"`

	Format Format `yaml:"format"`
	// Encoding overrides the file's encoding for this table's topics;
	// Load fills it from it when absent.
	Encoding Encoding `yaml:"encoding"`
	// Target is a fixed name or a template (see TargetTemplate).
	Target Target `yaml:"target"`
	// Key names target columns; empty means the record key's fields.
	Key     []string `yaml:"key,omitempty"`
	Columns Columns  `yaml:"columns"`

	Deletes    Deletes    `yaml:"deletes"`
	SoftDelete SoftDelete `yaml:"soft_delete"`
	Truncate   Truncate   `yaml:"truncate"`
	Version    Version    `yaml:"version"`
	Schema     Schema     `yaml:"schema"`
	Snapshot   Snapshot   `yaml:"snapshot"`

	// EventTypes filters outbox events by type; empty keeps all.
	EventTypes []string `yaml:"event_types,omitempty"`
	// Payload maps a target column to a JSON path into the outbox payload;
	// empty maps each top-level payload field to the column of its name.
	Payload map[string]JSONPath `yaml:"payload,omitempty"`

	// Path is the table's key path in the file ("tables[2]"), for messages.
	Path string `yaml:"-"`

	// topicVars are the template variables of the topic a templated
	// entry was derived for (Router.Resolve).
	topicVars map[string]string
}

// Columns selects and renames the fields of a change. Include and Exclude
// name source fields; Rename maps a source field to a target column.
type Columns struct {
	Include []string          `yaml:"include,omitempty"`
	Exclude []string          `yaml:"exclude,omitempty"`
	Rename  map[string]string `yaml:"rename,omitempty"`
}

// SoftDelete is the marker column of deletes: soft.
type SoftDelete struct {
	Column string `yaml:"column"`
}

// Version is the stale-update guard (I3, I4): two bigint columns holding the
// source's (commit LSN, LSN) pair of the row's last change.
type Version struct {
	// Guard must be true for format: table (validation refuses false):
	// the guard is what makes replays safe.
	Guard        bool   `yaml:"guard"`
	CommitColumn string `yaml:"commit_column"`
	LSNColumn    string `yaml:"lsn_column"`
}

// Snapshot is what a Debezium snapshot of the table does beyond its rows.
type Snapshot struct {
	// Reconcile deletes, once a snapshot of the table has been applied in
	// full, the target rows it did not read (and older than it). Turn it
	// off for a snapshot that does not read the whole table
	// (snapshot.select.statement.overrides, a filtered snapshot).
	Reconcile bool `yaml:"reconcile"`
}

// Schema says what pgsink may do to the target table's definition.
type Schema struct {
	Create bool   `yaml:"create"`
	Evolve Evolve `yaml:"evolve"`
}

// Column returns the target column a source field is written to, and false
// when the field is not written at all (excluded, or not included).
func (c Columns) Column(field string) (string, bool) {
	if len(c.Include) > 0 && !contains(c.Include, field) {
		return "", false
	}
	if contains(c.Exclude, field) {
		return "", false
	}
	if to, ok := c.Rename[field]; ok {
		return to, true
	}
	return field, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
