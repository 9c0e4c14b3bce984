package config

import "time"

// Defaults of the keys that depend on no other key. Keys whose default
// derives from another (errors.dead_letter.topic from kafka group.id) are
// filled by resolveDerived after decoding.
const (
	DefaultPostgresSchema = "pgsink"
	DefaultMaxConnections = 4
	// DefaultStagingTables keeps every staging table of an instance that
	// writes up to a thousand tables (recreating one costs its batch a
	// round trip, and the catalog rows written and deleted), and bounds
	// the server's temporary tables beyond: docs/scaling.md sizes it.
	DefaultStagingTables   = 1024
	DefaultBatchMaxRecords = 5000
	DefaultBatchMaxBytes   = 16 << 20
	// DefaultBatchMaxWait is short: under a backlog batches fill to their
	// size limits at once and the wait never applies; when records trickle
	// in, it is latency. A short wait means smaller batches at moderate
	// rates, paid in pgsink CPU; docs/benchmarks.md has the trade measured.
	DefaultBatchMaxWait     = 10 * time.Millisecond
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultPipeline keeps one transaction per partition: pipelining
	// showed no gain in the measurement docs/benchmark-analysis.md has.
	DefaultPipeline         = 1
	maxPipeline             = 8
	DefaultRetryMaxAttempts = 10
	DefaultRetryInitial     = 100 * time.Millisecond
	DefaultRetryMax         = 10 * time.Second
	DefaultRetention        = 7 * 24 * time.Hour
	// DefaultTransactionMaxWait is long enough for a partition that lags
	// behind a rebalance or a restart, short enough that a transaction that
	// can never complete stops the resolver while someone still looks.
	DefaultTransactionMaxWait = 5 * time.Minute
	// DefaultTransactionMaxStagedBytes keeps a partition a few resolver
	// chunks ahead (apply.batch.max_records records of about 1 KB as
	// staged), and the staging of a few partitions within a default
	// shared_buffers' reach.
	DefaultTransactionMaxStagedBytes = 16 << 20
	DefaultMetricsListen             = "127.0.0.1:9187"
	DefaultShutdownTimeout           = 30 * time.Second
	DefaultSoftDeleteColumn          = "__deleted"
	DefaultCommitLSNColumn           = "_pgsink_commit_lsn"
	DefaultLSNColumn                 = "_pgsink_lsn"
	DefaultVerifyChunkRows           = 10000
	DefaultVerifyStatement           = 30 * time.Second
	DefaultVerifySettle              = 60 * time.Second
	maxVerifyChunkRows               = 1_000_000
	deadLetterTopicSuffix            = ".dlq"
	groupIDKey                       = "group.id"
	bootstrapServersKey              = "bootstrap.servers"
	maxBatchRecords                  = 1_000_000
	maxBatchBytes                    = 1 << 30
	maxConnectionsUpperBound         = 256
	maxStagingTables                 = 100_000
)

// Default returns a configuration with every default set and no tables.
func Default() Config {
	return Config{
		Postgres: Postgres{
			MaxConnections:             DefaultMaxConnections,
			StagingTablesPerConnection: DefaultStagingTables,
			SynchronousCommit:          SynchronousCommitOn,
			Schema:                     DefaultPostgresSchema,
		},
		Apply: Apply{
			Start:            StartEarliest,
			Batch:            Batch{MaxRecords: DefaultBatchMaxRecords, MaxBytes: DefaultBatchMaxBytes, MaxWait: Duration(DefaultBatchMaxWait)},
			Retry:            Retry{MaxAttempts: DefaultRetryMaxAttempts, InitialBackoff: Duration(DefaultRetryInitial), MaxBackoff: Duration(DefaultRetryMax)},
			MaxBufferedBytes: DefaultMaxBufferedBytes,
			Offsets:          OffsetsTable,
			Consistency:      ConsistencyPartition,
			Transaction:      TransactionApply{MaxWait: Duration(DefaultTransactionMaxWait), MaxStagedBytes: DefaultTransactionMaxStagedBytes, Staging: StagingLogged},
			Pipeline:         DefaultPipeline,
		},
		Errors:          Errors{Tolerance: ToleranceAll, DeadLetter: DeadLetter{Destination: DestinationTable}},
		Retention:       Retention{Tombstones: Duration(DefaultRetention), OutboxEvents: Duration(DefaultRetention)},
		Metrics:         Metrics{Listen: DefaultMetricsListen},
		Log:             Log{Format: LogFormatJSON, Level: LogLevelInfo},
		Encoding:        EncodingJSON,
		ShutdownTimeout: Duration(DefaultShutdownTimeout),
		Verify: Verify{ChunkRows: DefaultVerifyChunkRows, StatementTimeout: Duration(DefaultVerifyStatement),
			SettleTimeout: Duration(DefaultVerifySettle)},
	}
}

func (t *Table) setDefaults() {
	*t = Table{
		Format:     FormatTable,
		Deletes:    DeletesHard,
		SoftDelete: SoftDelete{Column: DefaultSoftDeleteColumn},
		Truncate:   TruncateApply,
		Version:    Version{Guard: true, CommitColumn: DefaultCommitLSNColumn, LSNColumn: DefaultLSNColumn},
		Schema:     Schema{Evolve: EvolveNone},
		Snapshot:   Snapshot{Reconcile: true},
	}
}

// resolveDerived fills the defaults that depend on other keys.
func (c *Config) resolveDerived() {
	if c.Instance.Name == "" {
		c.Instance.Name = c.Kafka[groupInstanceIDKey]
	}
	for i := range c.Tables {
		if c.Tables[i].Encoding == "" {
			c.Tables[i].Encoding = c.Encoding
		}
	}
	if c.Errors.DeadLetter.Topic == "" && c.Kafka[groupIDKey] != "" {
		c.Errors.DeadLetter.Topic = c.Kafka[groupIDKey] + deadLetterTopicSuffix
	}
	for i := range c.Tables {
		c.Tables[i].Path = indexPath("tables", i)
	}
}
