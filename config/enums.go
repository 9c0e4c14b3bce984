package config

import (
	"fmt"
	"strings"
)

// Staging is apply.transaction.staging: the persistence of the staging
// table, pgsink.tx_staged.
type Staging string

// Staging values.
const (
	// StagingLogged writes staged records to the WAL, as any table.
	StagingLogged Staging = "logged"
	// StagingUnlogged makes tx_staged UNLOGGED: no WAL for staging and
	// its deletion; a crash of the target or a failover empties it, and
	// the partitions read again from Kafka what they had staged
	// (docs/transactions.md, "Unlogged staging").
	StagingUnlogged Staging = "unlogged"
)

// Start is where a partition with no stored offset begins.
type Start string

// Start values.
const (
	StartEarliest Start = "earliest"
	StartLatest   Start = "latest"
)

// SynchronousCommit is the synchronous_commit of the apply transactions.
type SynchronousCommit string

// SynchronousCommit values.
const (
	SynchronousCommitOn  SynchronousCommit = "on"
	SynchronousCommitOff SynchronousCommit = "off"
)

// Offsets is apply.offsets: where a partition's position is kept.
type Offsets string

// Offsets values.
const (
	OffsetsTable Offsets = "table"
	OffsetsKafka Offsets = "kafka"
)

// Consistency is apply.consistency: what a reader of the target may see.
type Consistency string

// Consistency values.
const (
	// ConsistencyPartition applies each partition on its own: a reader may
	// see part of a source transaction.
	ConsistencyPartition Consistency = "partition"
	// ConsistencyTransaction applies whole source transactions in commit
	// order, from Debezium's transaction metadata.
	ConsistencyTransaction Consistency = "transaction"
)

// Tolerance is errors.tolerance: "all" dead-letters a record that cannot be
// applied and moves on; "none" stops its partition with the offset unmoved.
type Tolerance string

// Tolerance values.
const (
	ToleranceAll  Tolerance = "all"
	ToleranceNone Tolerance = "none"
)

// Destination is where dead letters go.
type Destination string

// Destination values.
const (
	DestinationTable Destination = "table"
	DestinationTopic Destination = "topic"
)

// Format is what a table's topics carry.
type Format string

// Format values.
const (
	// FormatTable is a Debezium change event stream of one source table.
	FormatTable Format = "table"
	// FormatOutbox is the output of Debezium's Outbox Event Router.
	FormatOutbox Format = "outbox"
)

// Encoding is how a record's key and value are serialised.
type Encoding string

// Encoding values.
const (
	// EncodingJSON is Kafka Connect's JsonConverter.
	EncodingJSON Encoding = "json"
	// EncodingAvro is Avro in the Confluent wire format (magic byte, 4-byte
	// schema id, body), its schemas in schema_registry.
	EncodingAvro Encoding = "avro"
	// EncodingAuto tells the two apart per record: a value starting with
	// the magic byte 0 is Avro, one starting with '{' is JSON.
	EncodingAuto Encoding = "auto"
)

// Deletes is how a delete event is applied.
type Deletes string

// Deletes values.
const (
	DeletesHard   Deletes = "hard"
	DeletesSoft   Deletes = "soft"
	DeletesIgnore Deletes = "ignore"
)

// Truncate is how a truncate event is applied.
type Truncate string

// Truncate values.
const (
	TruncateApply  Truncate = "apply"
	TruncateIgnore Truncate = "ignore"
)

// Evolve is what pgsink does when a source's schema drifts from its
// existing target table. Whatever the value, every difference is logged
// and counted once per table.
type Evolve string

// Evolve values.
const (
	// EvolveNone changes nothing: new fields are not written, columns the
	// source stopped sending are left alone.
	EvolveNone Evolve = "none"
	// EvolveAddColumns adds the new fields as nullable columns.
	EvolveAddColumns Evolve = "add_columns"
	// EvolveFollow adds new columns and relaxes NOT NULL on the columns
	// the source stopped sending.
	EvolveFollow Evolve = "follow"
	// EvolveStrict stops the partition, offset unmoved, at the first
	// record whose fields differ from the target's columns.
	EvolveStrict Evolve = "strict"
)

// LogFormat is the zap encoder.
type LogFormat string

// LogFormat values.
const (
	LogFormatJSON    LogFormat = "json"
	LogFormatConsole LogFormat = "console"
)

// LogLevel is the lowest level logged.
type LogLevel string

// LogLevel values.
const (
	LogLevelDebug LogLevel = "debug"
	LogLevelInfo  LogLevel = "info"
	LogLevelWarn  LogLevel = "warn"
	LogLevelError LogLevel = "error"
)

func (v *Start) parseScalar(s string) error { return parseEnum(v, s, StartEarliest, StartLatest) }
func (v *Staging) parseScalar(s string) error {
	return parseEnum(v, s, StagingLogged, StagingUnlogged)
}
func (v *SynchronousCommit) parseScalar(s string) error {
	return parseEnum(v, s, SynchronousCommitOn, SynchronousCommitOff)
}
func (v *Offsets) parseScalar(s string) error { return parseEnum(v, s, OffsetsTable, OffsetsKafka) }
func (v *Consistency) parseScalar(s string) error {
	return parseEnum(v, s, ConsistencyPartition, ConsistencyTransaction)
}
func (v *Tolerance) parseScalar(s string) error { return parseEnum(v, s, ToleranceAll, ToleranceNone) }
func (v *Destination) parseScalar(s string) error {
	return parseEnum(v, s, DestinationTable, DestinationTopic)
}
func (v *Format) parseScalar(s string) error { return parseEnum(v, s, FormatTable, FormatOutbox) }
func (v *Encoding) parseScalar(s string) error {
	return parseEnum(v, s, EncodingJSON, EncodingAvro, EncodingAuto)
}
func (v *Deletes) parseScalar(s string) error {
	return parseEnum(v, s, DeletesHard, DeletesSoft, DeletesIgnore)
}
func (v *Truncate) parseScalar(s string) error { return parseEnum(v, s, TruncateApply, TruncateIgnore) }
func (v *Evolve) parseScalar(s string) error {
	return parseEnum(v, s, EvolveNone, EvolveAddColumns, EvolveFollow, EvolveStrict)
}
func (v *LogFormat) parseScalar(s string) error {
	return parseEnum(v, s, LogFormatJSON, LogFormatConsole)
}
func (v *LogLevel) parseScalar(s string) error {
	return parseEnum(v, s, LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError)
}

func parseEnum[T ~string](dst *T, s string, allowed ...T) error {
	for _, a := range allowed {
		if string(a) == s {
			*dst = a
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("must be one of %s; got %q", strings.Join(names, ", "), s)
}
