// Package debezium decodes Debezium records (table change events, tombstones,
// logical decoding messages, transaction markers and Outbox Event Router
// records) into typed changes, with every PostgreSQL value exact.
//
// It must never import a Kafka client or build SQL: it turns bytes into values
// and nothing else, so it can be tested against recorded fixtures alone.
//
// # Formats
//
// What a topic carries is configuration (Options.Format; DefaultFormat follows
// Debezium's default topic names). Whether the converters send schemas is
// Options.Schemaless; without schemas, column types come from Options.Catalog
// (PostgreSQL format_type text), read under Options.DecimalHandling and
// Options.TimePrecision, which must repeat the connector's settings.
//
// # Values
//
// Field.Value is nil for SQL NULL. Otherwise its Go type depends on the
// Debezium (Kafka Connect) type, chosen so that pgx v5 binds it to the
// column's PostgreSQL type without loss through the extended protocol and
// CopyFrom (proved by TestIntegrationRoundTrip; call pgcopy.RegisterTypes on the
// connection's type map for timetz and money under COPY):
//
//	Connect type / logical name              Go value
//	int16 (smallint), int32, int64           int16, int32, int64
//	float (real), double                     float32, float64 (NaN, ±Inf kept)
//	boolean                                  bool
//	string (text, varchar, char, uuid, json,
//	  jsonb, xml, inet, cidr, macaddr, enum,
//	  EnumSet, Uuid, Json, Xml, ZonedTime)   string, as Debezium sent it
//	bytes (bytea)                            []byte
//	Decimal (base64 two's complement)        pgtype.Numeric (Int, Exp = -scale)
//	VariableScaleDecimal {scale, value}      pgtype.Numeric, never a float
//	decimal.handling.mode=string             pgtype.Numeric when the catalog
//	                                         names the column numeric or money
//	                                         (Options.Catalog); otherwise the
//	                                         string ("NAN", "POSITIVE_INFINITY"
//	                                         included), since the schema says
//	                                         only string: the sink reads it by
//	                                         its target column's type
//	decimal.handling.mode=double             float64
//	io.debezium.time.Date, connect Date      pgtype.Date (±infinity sentinels →
//	                                         InfinityModifier)
//	Time, MicroTime, NanoTime, connect Time  pgtype.Time (microseconds; 24:00:00
//	                                         kept)
//	Timestamp, MicroTimestamp, NanoTimestamp,
//	  connect Timestamp                      pgtype.Timestamp in UTC (±infinity
//	                                         sentinels → InfinityModifier)
//	ZonedTimestamp                           pgtype.Timestamptz ("infinity",
//	                                         "-infinity" → InfinityModifier)
//	MicroDuration                            pgtype.Interval{Microseconds}
//	Interval (interval.handling.mode=string) ISOInterval: pgtype.Interval
//	                                         {Months, Days, Microseconds},
//	                                         exact, and the ISO text for text
//	                                         columns
//	Bits                                     pgtype.Bits (most significant first)
//	geometry.Point                           pgtype.Point
//	array of int16/int32/int64/float/double/
//	  boolean/string                         []pgtype.Int2/Int4/Int8/Float4/
//	                                         Float8/Bool/Text (Valid false for
//	                                         a NULL element)
//	array of anything else                   []any (nil for a NULL element)
//	struct or map without a logical type     json.RawMessage
//
// # What Debezium loses (and the decoder cannot restore)
//
//   - MicroDuration folds an interval's months into 30.4375-day units and sums
//     everything into microseconds (saturating at ±2^63-1): the months/days/
//     time split is gone; the decoder keeps the microseconds. Configure
//     interval.handling.mode=string to have intervals exact.
//   - ZonedTime is normalised to UTC: timetz's original offset is gone; the
//     instant is kept.
//   - Numeric NaN arrives as null under decimal.handling.mode=precise.
//   - time.precision.mode=connect truncates times and timestamps to
//     milliseconds; decimal.handling.mode=double rounds numerics to float64.
//   - A varbit's leading zeros are dropped (the BitSet has no length): the
//     decoded length ends at the highest set bit.
//   - The unavailable-value placeholder is recognised by its per-type forms
//     (the string for text and json, its UTF-8 bytes for bytea, those bytes as
//     integers for integer arrays, a one-string array for text arrays): a real
//     value equal to one of those forms cannot be told apart.
//
// Under decimal.handling.mode=string with schemas and no catalog, a numeric
// stays Debezium's string, whose special values ("NAN", "POSITIVE_INFINITY",
// "NEGATIVE_INFINITY") neither pgx's binary COPY nor PostgreSQL's numeric
// input take as they are: internal/decimal reads them, and the sink binds
// such strings by the target column's type.
package debezium
