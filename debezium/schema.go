package debezium

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// connectSchema is a Kafka Connect JSON schema as JsonConverter writes it.
// It is parsed with encoding/json: that happens once per distinct schema.
type connectSchema struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Optional   bool              `json:"optional"`
	Field      string            `json:"field"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectSchema   `json:"fields"`
	Items      *connectSchema    `json:"items"`
	Keys       *connectSchema    `json:"keys"`
	Values     *connectSchema    `json:"values"`
}

// conv says how a JSON value becomes a Go value; it is resolved once per
// schema (or catalog column) so decoding a value is one switch.
type conv uint8

const (
	convInt16 conv = iota + 1
	convInt32
	convInt64
	convFloat32
	convFloat64
	convBool
	convString
	convBytes
	convDecimal         // base64 two's complement, scale from the schema
	convVariableDecimal // {scale, value}
	convDecimalString   // decimal.handling.mode=string
	convDate            // days since the epoch
	convTimeMilli       // io.debezium.time.Time, connect Time
	convTimeMicro       // MicroTime
	convTimeNano        // NanoTime
	convTimestampMilli  // io.debezium.time.Timestamp, connect Timestamp
	convTimestampMicro  // MicroTimestamp
	convTimestampNano   // NanoTimestamp
	convZonedTimestamp  // ISO-8601 string or ±infinity
	convInterval        // MicroDuration
	convIntervalISO     // io.debezium.time.Interval (interval.handling.mode=string)
	convBits            // io.debezium.data.Bits
	convPoint           // io.debezium.data.geometry.Point
	convArray
	convStruct // a nested struct without a logical type: kept as JSON text
	convMap    // a Connect map: kept as JSON text
	convJSON   // any value kept as its JSON text (schemaless fallback)
)

// typ is a compiled schema: everything the decoder needs for one value.
type typ struct {
	conv     conv
	name     string // Connect logical name, for errors
	optional bool
	scale    int32 // convDecimal
	bits     int   // convBits: length, 0 when unknown (varbit)
	items    *typ  // convArray
	fields   []*field
	byName   map[string]int // struct fields by name
	unchange [][]byte       // raw JSON forms of the unavailable-value placeholder
	// schemaless rows (from the catalog) leave out columns the payload
	// does not have, instead of reporting them NULL.
	schemaless bool
	// open rows take any member, each kept as convJSON.
	open bool
	// env is set on a compiled change event schema.
	env *envelopeType
}

type field struct {
	name string
	key  []byte // memberPrefix(name)
	t    *typ
}

// Logical type names Debezium and Kafka Connect put in schemas.
const (
	nameDecimal         = "org.apache.kafka.connect.data.Decimal"
	nameConnectDate     = "org.apache.kafka.connect.data.Date"
	nameConnectTime     = "org.apache.kafka.connect.data.Time"
	nameConnectTS       = "org.apache.kafka.connect.data.Timestamp"
	nameVariableDecimal = "io.debezium.data.VariableScaleDecimal"
	nameDate            = "io.debezium.time.Date"
	nameTime            = "io.debezium.time.Time"
	nameMicroTime       = "io.debezium.time.MicroTime"
	nameNanoTime        = "io.debezium.time.NanoTime"
	nameTimestamp       = "io.debezium.time.Timestamp"
	nameMicroTimestamp  = "io.debezium.time.MicroTimestamp"
	nameNanoTimestamp   = "io.debezium.time.NanoTimestamp"
	nameZonedTimestamp  = "io.debezium.time.ZonedTimestamp"
	nameZonedTime       = "io.debezium.time.ZonedTime"
	nameMicroDuration   = "io.debezium.time.MicroDuration"
	nameInterval        = "io.debezium.time.Interval"
	nameBits            = "io.debezium.data.Bits"
	namePoint           = "io.debezium.data.geometry.Point"
)

// parseSchema parses a schema's JSON text.
func parseSchema(raw []byte) (*connectSchema, error) {
	var cs connectSchema
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, fmt.Errorf("%w: schema is not a Connect schema: %v", ErrSchemaMismatch, err)
	}
	return &cs, nil
}

// compile turns a Connect schema into a typ, with placeholder forms taken
// from ph (the unavailable-value placeholder).
func compile(cs *connectSchema, ph string) (*typ, error) {
	t := &typ{name: cs.Name, optional: cs.Optional}
	switch cs.Name {
	case nameDecimal:
		t.conv = convDecimal
		scale, err := strconv.ParseInt(cs.Parameters["scale"], 10, 32)
		if err != nil {
			return nil, mismatch("Decimal without an integer scale parameter: %q", cs.Parameters["scale"])
		}
		t.scale = int32(scale)
	case nameVariableDecimal:
		t.conv = convVariableDecimal
	case nameDate, nameConnectDate:
		t.conv = convDate
	case nameTime, nameConnectTime:
		t.conv = convTimeMilli
	case nameMicroTime:
		t.conv = convTimeMicro
	case nameNanoTime:
		t.conv = convTimeNano
	case nameTimestamp, nameConnectTS:
		t.conv = convTimestampMilli
	case nameMicroTimestamp:
		t.conv = convTimestampMicro
	case nameNanoTimestamp:
		t.conv = convTimestampNano
	case nameZonedTimestamp:
		t.conv = convZonedTimestamp
	case nameMicroDuration:
		t.conv = convInterval
	case nameInterval:
		t.conv = convIntervalISO
	case nameBits:
		t.conv = convBits
		// PostgreSQL's bit lengths stop at 83886080.
		if n, err := strconv.Atoi(cs.Parameters["length"]); err == nil && n > 0 && n <= 83886080 {
			t.bits = n // Debezium gives 2^31-1 for varbit: the length is unknown
		}
	case namePoint:
		t.conv = convPoint
	}
	if t.conv == 0 {
		switch cs.Type {
		case "int8", "int16":
			t.conv = convInt16
		case "int32":
			t.conv = convInt32
		case "int64":
			t.conv = convInt64
		case "float", "float32":
			t.conv = convFloat32
		case "double", "float64":
			t.conv = convFloat64
		case "boolean":
			t.conv = convBool
		case "string":
			// Json, Xml, Uuid, Enum, EnumSet, ZonedTime, inet, macaddr...:
			// all text that PostgreSQL parses itself.
			t.conv = convString
		case "bytes":
			t.conv = convBytes
		case "array":
			if cs.Items == nil {
				return nil, mismatch("array schema without items")
			}
			items, err := compile(cs.Items, ph)
			if err != nil {
				return nil, err
			}
			t.conv, t.items = convArray, items
		case "map":
			t.conv = convMap
		case "struct":
			t.conv = convStruct
			t.byName = make(map[string]int, len(cs.Fields))
			for i := range cs.Fields {
				f, err := compile(&cs.Fields[i], ph)
				if err != nil {
					return nil, at(cs.Fields[i].Field, err)
				}
				t.fields = append(t.fields, &field{name: cs.Fields[i].Field, key: memberPrefix(cs.Fields[i].Field), t: f})
				t.byName[cs.Fields[i].Field] = i
			}
		default:
			return nil, mismatch("unknown Connect type %q", cs.Type)
		}
	}
	if want := expectedType(t.conv); want != "" && cs.Type != want {
		return nil, mismatch("logical type %s on a %s, want %s", cs.Name, cs.Type, want)
	}
	t.unchange = placeholderForms(t, ph)
	return t, nil
}

// expectedType is the Connect type each logical type must be carried in.
func expectedType(c conv) string {
	switch c {
	case convDecimal, convBits:
		return "bytes"
	case convVariableDecimal, convPoint:
		return "struct"
	case convDate, convTimeMilli:
		return "int32"
	case convTimeMicro, convTimeNano, convTimestampMilli, convTimestampMicro, convTimestampNano, convInterval:
		return "int64"
	case convZonedTimestamp, convIntervalISO:
		return "string"
	}
	return ""
}
