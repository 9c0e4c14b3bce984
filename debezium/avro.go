package debezium

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
)

// SchemaSource returns the Avro schema text registered under a Confluent
// wire-format schema id. The registry client implements it; it must cache,
// since the decoder asks once per id per decoder.
type SchemaSource interface {
	Schema(id uint32) (string, error)
}

// ErrUnknownSchemaID is a record's schema id the registry answered it has no
// schema for. The record is at fault (a dead letter), unlike a registry that
// cannot be reached, which is a *SchemaUnavailableError.
var ErrUnknownSchemaID = errors.New("the schema registry has no schema with this id")

// ErrNoMagicByte is a record of an Avro topic that is not in the Confluent
// wire format (magic byte 0, a 4-byte schema id, the Avro body).
var ErrNoMagicByte = errors.New("not the Confluent wire format (magic byte 0 and a 4-byte schema id)")

// ErrUnknownEncoding is a record of a topic with encoding auto that is
// neither Avro (magic byte 0) nor a JSON object.
var ErrUnknownEncoding = errors.New("neither Avro in the Confluent wire format (magic byte 0) nor JSON (an object)")

// detectEncoding tells Avro from JSON by the value's first byte, or the
// key's for a tombstone (whose null value is neither).
func detectEncoding(rec *Record) (Encoding, error) {
	if rec.Value == nil {
		if len(rec.Key) > 0 && rec.Key[0] == 0 {
			return EncodingAvro, nil
		}
		return EncodingJSON, nil
	}
	v := rec.Value
	if len(v) > 0 && v[0] == 0 {
		return EncodingAvro, nil
	}
	for i, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return EncodingJSON, nil
		}
		return 0, fmt.Errorf("%w: byte %d is 0x%02x", ErrUnknownEncoding, i, c)
	}
	return 0, fmt.Errorf("%w: %d bytes of whitespace", ErrUnknownEncoding, len(v))
}

// SchemaUnavailableError says that a record's schema could not be fetched
// because the registry is unreachable or failing: nothing is wrong with the
// record, so Decode returns this error itself, not in a DecodeError, and the
// caller retries the record later with its offset unmoved.
type SchemaUnavailableError struct {
	ID  uint32
	Err error
}

func (e *SchemaUnavailableError) Error() string {
	return fmt.Sprintf("schema id %d: schema registry unavailable: %v", e.ID, e.Err)
}

func (e *SchemaUnavailableError) Unwrap() error { return e.Err }

// avroState is a Decoder's Avro side: compiled schemas by id and a reader
// reused for every body.
type avroState struct {
	types  map[uint32]*avroType
	reader *avro.Reader
	r      avroReader
	// fields and txs are the unused rest of the current slabs.
	fields []Field
	txs    []Transaction
	// last is the last key's and value's schema (id and type).
	last [2]avroPart
}

// avroJSON turns a Confluent wire-format record part into the JsonConverter
// text {"schema": …, "payload": …} the JSON path decodes. data nil stays
// nil (a null key or a tombstone).
func (d *Decoder) avroJSON(data []byte) ([]byte, error) {
	if data == nil {
		return nil, nil
	}
	if len(data) < 5 || data[0] != 0 {
		return nil, ErrNoMagicByte
	}
	id := binary.BigEndian.Uint32(data[1:5])
	t, err := d.avroType(id)
	if err != nil {
		return nil, err
	}
	body := data[5:]
	out := make([]byte, 0, len(t.connect)+2*len(body)+32)
	out = append(out, `{"schema":`...)
	out = append(out, t.connect...)
	out = append(out, `,"payload":`...)
	r := d.avro.reader.Reset(body)
	r.Error = nil
	out = transcodeAvro(out, r, t.root)
	if r.Error != nil {
		return nil, mismatch("schema id %d: the Avro body does not match its schema: %v", id, r.Error)
	}
	// Peek at the end of the body sets io.EOF: anything else means bytes
	// the schema does not account for.
	if r.Peek(); r.Error == nil {
		return nil, mismatch("schema id %d: bytes left after the Avro body", id)
	}
	return append(out, '}'), nil
}

// avroType returns the compiled schema of id, fetching it once.
func (d *Decoder) avroType(id uint32) (*avroType, error) {
	if t := d.avro.types[id]; t != nil {
		return t, nil
	}
	if d.opts.Schemas == nil {
		return nil, errors.New("an Avro record but no schema registry is configured")
	}
	text, err := d.opts.Schemas.Schema(id)
	if err != nil {
		if errors.Is(err, ErrUnknownSchemaID) {
			return nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		var su *SchemaUnavailableError
		if errors.As(err, &su) {
			return nil, su
		}
		return nil, &SchemaUnavailableError{ID: id, Err: err}
	}
	t, err := compileAvro(text)
	if err != nil {
		return nil, avroFault(id, err)
	}
	if d.avro.types == nil || len(d.avro.types) >= maxCached {
		d.avro.types = map[uint32]*avroType{}
		d.avro.last = [2]avroPart{}
	}
	d.avro.types[id] = t
	return t, nil
}

// fromAvro rewrites rec's key and value from Avro to JsonConverter text.
func (d *Decoder) fromAvro(rec *Record) (part string, err error) {
	if d.avro.reader == nil {
		d.avro.reader = avro.NewReader(nil, 0)
	}
	if rec.Key, err = d.avroJSON(rec.Key); err != nil {
		return "key", err
	}
	if rec.Value, err = d.avroJSON(rec.Value); err != nil {
		return "value", err
	}
	return "", nil
}
