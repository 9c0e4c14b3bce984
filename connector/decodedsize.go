package connector

import (
	"encoding/json"
	"math/big"
	"reflect"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// decodedBytes estimates what a decoded record costs the heap besides its
// key and value bytes (which its Item keeps, for dead letters): the Item
// and the row images' fields with their values. It is charged to
// apply.max_buffered_bytes and apply.batch.max_bytes on top of the wire
// bytes because the two are far apart whatever the wire format: a compact
// encoding (Avro) decodes into many times its bytes, and a budget counted
// on the wire alone held that many times more events than it says.
//
// It is an estimate, not an account: strings and slices count their
// length and header, boxed values their size; what decoders share between
// records (schemas, column lists) is not counted.
func decodedBytes(it *sink.Item) int64 {
	n := int64(unsafe.Sizeof(*it))
	c := &it.Change
	for _, r := range [...]debezium.Row{c.Key, c.Before, c.After, c.OldKey, c.NewKey} {
		n += rowBytes(r)
	}
	n += int64(len(c.Topic) + len(c.Schema) + len(c.Table))
	if c.Outbox != nil {
		n += int64(unsafe.Sizeof(*c.Outbox)) + int64(len(c.Outbox.AggregateID)+len(c.Outbox.EventID)+len(c.Outbox.Type)+len(c.Outbox.Payload))
		for k, v := range c.Outbox.Fields {
			n += mapEntryBytes + int64(len(k)) + valueBytes(v)
		}
	}
	if c.Message != nil {
		n += int64(unsafe.Sizeof(*c.Message)) + int64(len(c.Message.Prefix)+len(c.Message.Content))
	}
	if c.Transaction != nil {
		n += int64(unsafe.Sizeof(*c.Transaction)) + int64(len(c.Transaction.ID))
	}
	if c.TxMark != nil {
		n += int64(unsafe.Sizeof(*c.TxMark))
	}
	return n
}

// mapEntryBytes is a map entry's share of its table besides key and value.
const mapEntryBytes = 16

func rowBytes(r debezium.Row) int64 {
	n := int64(cap(r)) * int64(unsafe.Sizeof(debezium.Field{}))
	for i := range r {
		n += int64(len(r[i].Name)) + valueBytes(r[i].Value)
	}
	return n
}

// valueBytes is what a field's value holds beyond the interface word in
// its Field: the boxed value, and what strings, slices and maps point to.
func valueBytes(v any) int64 {
	switch x := v.(type) {
	case nil, bool:
		return 0 // no allocation: the runtime boxes these statically
	case string:
		return int64(unsafe.Sizeof(x)) + int64(len(x))
	case []byte:
		return int64(unsafe.Sizeof(x)) + int64(cap(x))
	case int64, int32, int16, float64, float32:
		return 8
	case time.Time:
		return int64(unsafe.Sizeof(x))
	// The decoders' own value types, every record's: the reflective walk
	// below costs about half a record's decoding.
	case pgtype.Timestamptz:
		return int64(unsafe.Sizeof(x))
	case pgtype.Timestamp:
		return int64(unsafe.Sizeof(x))
	case pgtype.Date:
		return int64(unsafe.Sizeof(x))
	case pgtype.Time:
		return int64(unsafe.Sizeof(x))
	case pgtype.Interval:
		return int64(unsafe.Sizeof(x))
	case pgtype.Numeric:
		n := int64(unsafe.Sizeof(x))
		if x.Int != nil {
			n += int64(unsafe.Sizeof(*x.Int)) + int64(cap(x.Int.Bits()))*int64(unsafe.Sizeof(big.Word(0)))
		}
		return n
	case json.RawMessage:
		return int64(unsafe.Sizeof(x)) + int64(cap(x))
	}
	return reflectBytes(reflect.ValueOf(v), 0)
}

// maxValueDepth bounds the walk of nested values (arrays of composites):
// deeper parts count as their top-level size only.
const maxValueDepth = 4

func reflectBytes(v reflect.Value, depth int) int64 {
	n := int64(v.Type().Size())
	if depth >= maxValueDepth {
		return n
	}
	switch v.Kind() {
	case reflect.String:
		n += int64(v.Len())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return n + int64(v.Cap())
		}
		for i := range v.Len() {
			n += reflectBytes(v.Index(i), depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			n += mapEntryBytes + reflectBytes(it.Key(), depth+1) + reflectBytes(it.Value(), depth+1)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			n += reflectBytes(v.Elem(), depth+1)
		}
	case reflect.Struct:
		// Nested fields' own sizes are in the struct's; only what they
		// point to is added.
		for i := range v.NumField() {
			n += reflectBytes(v.Field(i), depth+1) - int64(v.Field(i).Type().Size())
		}
	}
	return n
}
