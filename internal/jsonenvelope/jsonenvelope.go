// Package jsonenvelope holds the layout of a Kafka Connect JsonConverter key
// or value with schemas, {"schema": S, "payload": P}, as JsonConverter
// writes it (schema first, no blanks between the members): transaction
// staging stores S apart from P (dedup), and the decoder decodes P against
// S given apart (debezium), each putting a record back together where it
// must.
package jsonenvelope

// The bytes around S and P.
var (
	Head = []byte(`{"schema":`)
	Mid  = []byte(`,"payload":`)
	Tail = []byte(`}`)
)

// Overhead is what Join adds to a schema and a payload.
const Overhead = len(`{"schema":`) + len(`,"payload":`) + len(`}`)

// Join puts a split key or value back together: Head, schema, Mid,
// payload, Tail.
func Join(schema, payload []byte) []byte {
	out := make([]byte, 0, Overhead+len(schema)+len(payload))
	out = append(out, Head...)
	out = append(out, schema...)
	out = append(out, Mid...)
	out = append(out, payload...)
	return append(out, Tail...)
}
