package debezium

import "strings"

// Format is what a topic carries. It is configuration: the decoder does not
// guess it from the data.
type Format uint8

const (
	// FormatTable is a Debezium table topic: change events, tombstones and,
	// on the <prefix>.message topic, logical decoding messages.
	FormatTable Format = iota + 1
	// FormatOutbox is a topic written by the Outbox Event Router.
	FormatOutbox
	// FormatTransaction is the transaction metadata topic, <prefix>.transaction.
	FormatTransaction
)

// DefaultFormat is the format used when Options.Format is nil, from
// Debezium's default topic names: "<prefix>.transaction" is transaction
// metadata, a topic with ".outbox.event." in it (the router's default
// route.topic.replacement, outbox.event.${routedByValue}) or starting with
// "outbox.event." is an outbox topic, and anything else is a table topic.
// Deployments with other names set Options.Format.
func DefaultFormat(topic string) Format {
	switch {
	case strings.HasSuffix(topic, ".transaction"):
		return FormatTransaction
	case strings.HasPrefix(topic, "outbox.event.") || strings.Contains(topic, ".outbox.event."):
		return FormatOutbox
	}
	return FormatTable
}

// Encoding is how a topic's keys and values are serialised.
type Encoding uint8

const (
	// EncodingJSON is Kafka Connect's JsonConverter.
	EncodingJSON Encoding = iota
	// EncodingAvro is Avro in the Confluent wire format: magic byte 0, a
	// 4-byte schema id, the Avro body.
	EncodingAvro
	// EncodingAuto tells the two apart per record by the value's first
	// byte (the key's for a tombstone): 0 is Avro, '{' (after whitespace)
	// is JSON, anything else is an ErrUnknownEncoding.
	EncodingAuto
)

// Column is one column of a target table, for records without schemas.
type Column struct {
	Name string
	// Type is PostgreSQL's format_type text: "numeric(12,2)",
	// "timestamp(3) without time zone", "integer[]", "mood".
	Type    string
	NotNull bool
	// TypeErr says why the event's schema gives the column no valid type
	// (Type is then empty): a parameter PostgreSQL would refuse in DDL.
	TypeErr error
}

// Options configure a Decoder. The zero value decodes Debezium's defaults:
// JSON with schemas, default topic names, the default placeholder.
type Options struct {
	// Schemaless is true when the key and value converters run with
	// schemas.enable=false. Types then come from Catalog.
	Schemaless bool
	// Catalog returns the columns of a captured table, by the source
	// schema and table name; required when Schemaless. A table's columns
	// are read once and cached until Forget.
	Catalog func(schema, table string) ([]Column, bool)
	// DecimalHandling and TimePrecision repeat the connector's
	// decimal.handling.mode ("precise", "string", "double") and
	// time.precision.mode ("adaptive", "adaptive_time_microseconds",
	// "connect") for schemaless records, whose JSON alone cannot tell a
	// base64 Decimal from a decimal string. Empty means Debezium's default.
	// With schemas, DecimalHandling "string" plus a Catalog turns the
	// numeric and money columns (which the schema calls plain strings) into
	// pgtype.Numeric.
	DecimalHandling string
	TimePrecision   string
	// Format says what a topic carries; nil means DefaultFormat.
	Format func(topic string) Format
	// TableOf names the captured table of a topic, for tombstones and keys
	// without schemas; nil takes the last two dot-separated parts of the
	// topic (Debezium's <prefix>.<schema>.<table>).
	TableOf func(topic string) (schema, table string)
	// Unavailable is the connector's unavailable.value.placeholder; empty
	// means Debezium's default, "__debezium_unavailable_value".
	Unavailable string
	// MaxBytes bounds the key plus value size; 0 means 8 MiB. Larger records
	// fail with ErrTooLarge rather than pin memory.
	MaxBytes int
	// Outbox configures Outbox Event Router topics.
	Outbox OutboxOptions
	// Encoding says how a topic's keys and values are serialised; nil
	// means EncodingJSON. Avro schemas come from Schemas by id.
	Encoding func(topic string) Encoding
	Schemas  SchemaSource
}

// OutboxOptions mirror the Event Router's settings.
type OutboxOptions struct {
	// EventIDHeader is the header holding the event id; default "id".
	EventIDHeader string
	// TypeHeader is the header holding the event type
	// (table.fields.additional.placement=type:header:<name>); default
	// "eventType".
	TypeHeader string
	// Envelope is true when additional fields are placed in the value
	// (placement type:envelope:<name>): the value is then an object with
	// the payload in PayloadField and the other fields beside it.
	Envelope bool
	// PayloadField is the envelope's payload field; default "payload".
	PayloadField string
	// TypeField is the envelope field holding the event type; default "type".
	TypeField string
}

// DefaultUnavailable is Debezium's default unavailable.value.placeholder.
const DefaultUnavailable = "__debezium_unavailable_value"

const defaultMaxBytes = 8 << 20

func (o Options) withDefaults() Options {
	if o.Format == nil {
		o.Format = DefaultFormat
	}
	if o.TableOf == nil {
		o.TableOf = tableFromTopic
	}
	if o.Unavailable == "" {
		o.Unavailable = DefaultUnavailable
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.DecimalHandling == "" {
		o.DecimalHandling = "precise"
	}
	if o.TimePrecision == "" {
		o.TimePrecision = "adaptive"
	}
	if o.Outbox.EventIDHeader == "" {
		o.Outbox.EventIDHeader = "id"
	}
	if o.Outbox.TypeHeader == "" {
		o.Outbox.TypeHeader = "eventType"
	}
	if o.Outbox.PayloadField == "" {
		o.Outbox.PayloadField = "payload"
	}
	if o.Outbox.TypeField == "" {
		o.Outbox.TypeField = "type"
	}
	return o
}

func tableFromTopic(topic string) (schema, table string) {
	i := strings.LastIndexByte(topic, '.')
	if i < 0 {
		return "", topic
	}
	table = topic[i+1:]
	rest := topic[:i]
	j := strings.LastIndexByte(rest, '.')
	return rest[j+1:], table
}
