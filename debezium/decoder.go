package debezium

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// Decoder turns Kafka records into Changes. It caches compiled schemas
// (keyed by their exact bytes) and catalog tables, so it is not safe for
// concurrent use: give each partition worker its own.
type Decoder struct {
	opts Options
	// schemas maps a schema's JSON text to its compiled form.
	schemas map[string]*typ
	// last remembers the latest value and key schema per topic: Debezium
	// repeats the same schema on every record of a table, so one byte
	// comparison usually replaces scanning the schema at all.
	last map[string]*lastSchemas
	// tables caches catalog row types; a struct key is looked up without
	// building a "schema.table" string per record.
	tables map[tableName]*typ
	// names are the last source schema and table names, interned.
	names [2]string
	// keyScan and valueScan are reused for every record, sparing two
	// allocations per record.
	keyScan, valueScan scanner
	avro               avroState
	// skipTxImages: see SkipTransactionalImages.
	skipTxImages bool
}

type tableName struct{ schema, table string }

type lastSchemas struct {
	value, key cached
}

type cached struct {
	raw []byte
	t   *typ
	// src is the caller's schema raw was last matched with, when given
	// apart from its payload (Record.KeySchema, ValueSchema): the same
	// bytes again, at the same address, need no comparison.
	src []byte
}

// matches reports whether c holds the schema raw, given apart.
func (c *cached) matches(raw []byte) bool {
	if c.t == nil || len(raw) != len(c.raw) {
		return false
	}
	if len(c.src) == len(raw) && &c.src[0] == &raw[0] {
		return true
	}
	if !bytes.Equal(c.raw, raw) {
		return false
	}
	c.src = raw
	return true
}

// maxCached bounds the schema and topic caches. Debezium sends few distinct
// schemas (one per table version); a stream that keeps sending new ones
// must not grow memory without end, so a full cache is simply emptied.
const maxCached = 4096

// NewDecoder returns a Decoder with opts, missing options defaulted.
func NewDecoder(opts Options) *Decoder {
	return &Decoder{
		opts:    opts.withDefaults(),
		schemas: map[string]*typ{},
		last:    map[string]*lastSchemas{},
		tables:  map[tableName]*typ{},
	}
}

// SkipTransactionalImages makes d leave the row images of a JSON change
// event that carries a transaction block undecoded (Change.ImagesSkipped):
// checked to be well-formed JSON, not typed. For a partition that stages
// such events raw (apply.consistency: transaction), whose resolver decodes
// them again to write them: decoding the images twice was the largest
// part of the mode's extra pgsink CPU (docs/transactions.md, Cost). Events
// without a transaction block (snapshot reads) are decoded whole, as are
// Avro records.
func (d *Decoder) SkipTransactionalImages() { d.skipTxImages = true }

// Forget drops a table's cached catalog columns, after the caller saw its
// target table change.
func (d *Decoder) Forget(schema, table string) {
	delete(d.tables, tableName{schema, table})
}

// Decode decodes one record. Every error is a *DecodeError but one: a
// *SchemaUnavailableError when an Avro record's schema cannot be fetched
// (the registry is down), which is no fault of the record. String values
// of the Change share memory with rec.Key and rec.Value rather than copy
// them: the caller must not modify those bytes while the Change is in use
// (Kafka clients hand each message its own buffer; a reader that reuses
// one, like bufio.Scanner, must copy first).
func (d *Decoder) Decode(rec Record) (Change, error) {
	ch := Change{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	fail := func(part string, err error) (Change, error) {
		de := &DecodeError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Part: part, Err: err}
		var fe *fieldError
		if errors.As(err, &fe) {
			de.Field, de.Err = fe.path, fe.err
		}
		return Change{}, de
	}
	if n := rec.size(); n > d.opts.MaxBytes {
		return fail("value", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, d.opts.MaxBytes))
	}
	format := d.opts.Format(rec.Topic)
	enc := EncodingJSON
	if d.opts.Encoding != nil {
		enc = d.opts.Encoding(rec.Topic)
	}
	if enc == EncodingAuto {
		var err error
		if enc, err = detectEncoding(&rec); err != nil {
			return fail("value", err)
		}
	}
	if rec.split() && (enc != EncodingJSON || format != FormatTable || d.opts.Schemaless) {
		// Only table change events are decoded from their parts.
		rec = rec.joined()
	}
	if enc == EncodingAvro {
		var err error
		var part string
		var keyType *typ
		if format == FormatTable {
			// Table change events, the bulk of a stream, are read straight
			// into the Change.
			part, keyType, err = d.avroTable(&rec, &ch)
		} else {
			part, err = d.fromAvro(&rec)
		}
		if err != nil {
			var su *SchemaUnavailableError
			if errors.As(err, &su) {
				return Change{}, su
			}
			return fail(part, err)
		}
		if format == FormatTable {
			if ch.Kind != KindChange {
				return ch, nil
			}
			if part, err := d.keyHeaders(&rec, &ch, keyType); err != nil {
				return fail(part, err)
			}
			return ch, nil
		}
	}
	switch {
	case rec.Value == nil:
		ch.Kind = KindTombstone
		if format == FormatOutbox {
			id, err := d.outboxKey(&rec)
			if err != nil {
				return fail("key", err)
			}
			ch.Outbox = &OutboxEvent{AggregateID: id}
			return ch, nil
		}
		ch.Schema, ch.Table = d.opts.TableOf(rec.Topic)
		key, err := d.key(&rec, ch.Schema, ch.Table)
		if err != nil {
			return fail("key", err)
		}
		ch.Key = key
		return ch, nil
	case format == FormatTransaction:
		if err := d.transactionMarker(&rec, &ch); err != nil {
			return fail("value", err)
		}
		return ch, nil
	case format == FormatOutbox:
		part, err := d.outbox(&rec, &ch)
		if err != nil {
			return fail(part, err)
		}
		return ch, nil
	}
	if err := d.envelope(&rec, &ch); err != nil {
		return fail("value", err)
	}
	if ch.Kind == KindMessage {
		return ch, nil // the key is the message prefix, already in Message
	}
	if ch.Op != OpTruncate {
		key, err := d.key(&rec, ch.Schema, ch.Table)
		if err != nil {
			return fail("key", err)
		}
		ch.Key = key
	}
	var keyType *typ
	if last := d.last[rec.Topic]; last != nil {
		keyType = last.key.t
	}
	if part, err := d.keyHeaders(&rec, &ch, keyType); err != nil {
		return fail(part, err)
	}
	return ch, nil
}

// keyHeaders decodes the __debezium.oldkey and __debezium.newkey headers
// of a primary-key change, typed by keyType, the record key's type.
func (d *Decoder) keyHeaders(rec *Record, ch *Change, keyType *typ) (string, error) {
	for _, h := range rec.Headers {
		var err error
		switch h.Key {
		case "__debezium.oldkey":
			ch.OldKey, err = d.headerKey(h.Value, ch.Schema, ch.Table, keyType)
		case "__debezium.newkey":
			ch.NewKey, err = d.headerKey(h.Value, ch.Schema, ch.Table, keyType)
		}
		if err != nil {
			return "header " + h.Key, err
		}
	}
	return "", nil
}

// unwrap splits a JsonConverter value with schemas, {"schema": S,
// "payload": P}, returning the compiled S (through the caches) and a
// scanner positioned at P. key selects which per-topic schema slot to try.
// With schema set, data is P alone and schema is S (a record staged in
// parts, Record.KeySchema and ValueSchema): the scanner is at the start of
// data, and its caller expects no '}' of an envelope after P.
func (d *Decoder) unwrap(topic string, data, schema []byte, key bool, compileSchema func(*connectSchema) (*typ, error)) (*typ, *scanner, error) {
	s := &d.valueScan
	if key {
		s = &d.keyScan
	}
	*s = scanner{data: data}
	last := d.last[topic]
	if last == nil {
		if len(d.last) >= maxCached {
			clear(d.last)
		}
		last = &lastSchemas{}
		d.last[topic] = last
	}
	slot := &last.value
	if key {
		slot = &last.key
	}
	if schema != nil {
		s.base = len(jsonenvelope.Head) + len(schema) + len(jsonenvelope.Mid)
		if slot.matches(schema) {
			return slot.t, s, nil
		}
		t, err := d.compiled(slot, schema, compileSchema)
		if err != nil {
			return nil, nil, err
		}
		slot.src = schema
		return t, s, nil
	}
	if err := s.objectStart(); err != nil {
		return nil, nil, err
	}
	var t *typ
	payload := -1
	for first := true; ; first = false {
		k, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		switch string(k) {
		case "schema":
			s.ws()
			if slot.t != nil && bytes.HasPrefix(s.data[s.pos:], slot.raw) {
				s.pos += len(slot.raw)
				t = slot.t
				continue
			}
			raw, err := s.skip()
			if err != nil {
				return nil, nil, at("schema", err)
			}
			if t, err = d.compiled(slot, raw, compileSchema); err != nil {
				return nil, nil, err
			}
		case "payload":
			s.ws()
			if t != nil {
				// The schema came first, as JsonConverter writes it: the
				// caller decodes the payload in place.
				return t, s, nil
			}
			payload = s.pos
			if _, err := s.skip(); err != nil {
				return nil, nil, at("payload", err)
			}
		default:
			return nil, nil, mismatch("unexpected member %q beside schema and payload", k)
		}
	}
	if t == nil || payload < 0 {
		return nil, nil, mismatch("schemas are enabled but the record has no schema and payload")
	}
	s.pos = payload
	return t, s, nil
}

// compiled returns the schema raw compiled, through the cache of compiled
// schemas, and keeps it in slot, the topic's last key or value schema.
func (d *Decoder) compiled(slot *cached, raw []byte, compileSchema func(*connectSchema) (*typ, error)) (*typ, error) {
	t := d.schemas[string(raw)]
	if t == nil {
		cs, err := parseSchema(raw)
		if err != nil {
			return nil, at("schema", err)
		}
		if t, err = compileSchema(cs); err != nil {
			return nil, at("schema", err)
		}
		if len(d.schemas) >= maxCached {
			clear(d.schemas)
		}
		d.schemas[string(raw)] = t
	}
	*slot = cached{raw: bytes.Clone(raw), t: t}
	return t, nil
}

// compileValue compiles a schema as a whole: used for keys, markers and
// outbox payloads, where the schema is one struct or primitive.
func (d *Decoder) compileValue(cs *connectSchema) (*typ, error) {
	return compile(cs, d.opts.Unavailable)
}

// key decodes a record key into a Row.
func (d *Decoder) key(rec *Record, schema, table string) (Row, error) {
	if rec.Key == nil {
		return nil, nil
	}
	if d.opts.Schemaless {
		t, err := d.catalogTable(schema, table)
		if err != nil {
			return nil, err
		}
		s := &scanner{data: rec.Key}
		r, err := row(s, t)
		if err != nil {
			return nil, err
		}
		return r, s.end()
	}
	t, s, err := d.unwrap(rec.Topic, rec.Key, rec.KeySchema, true, d.compileValue)
	if err != nil {
		return nil, err
	}
	if t.conv != convStruct {
		return nil, at("schema", mismatch("a table key must be a struct, got %s", t.describe()))
	}
	r, err := row(s, t)
	if err != nil {
		return nil, at("payload", err)
	}
	if rec.KeySchema == nil {
		if err := s.expect('}'); err != nil {
			return nil, err
		}
	}
	return r, s.end()
}

// headerKey decodes a __debezium.oldkey/newkey header: the key's payload
// as JSON, without a schema, typed by the table's key where known.
func (d *Decoder) headerKey(v []byte, schema, table string, keyType *typ) (Row, error) {
	if v == nil {
		return nil, nil
	}
	var t *typ
	if d.opts.Schemaless {
		var err error
		if t, err = d.catalogTable(schema, table); err != nil {
			return nil, err
		}
	} else {
		t = keyType
	}
	if t == nil {
		// Types unknown: keep each value as its JSON text, which PostgreSQL
		// casts from text for every key type Debezium emits.
		t = &typ{conv: convStruct, schemaless: true, open: true}
	}
	s := &scanner{data: v}
	r, err := row(s, t)
	if err != nil {
		return nil, err
	}
	return r, s.end()
}

// catalogTable returns the cached row type of a table without schemas.
func (d *Decoder) catalogTable(schema, table string) (*typ, error) {
	name := tableName{schema, table}
	if t := d.tables[name]; t != nil {
		return t, nil
	}
	if d.opts.Catalog == nil {
		return nil, errors.New("record has no schema and Options.Catalog is nil")
	}
	cols, ok := d.opts.Catalog(schema, table)
	if !ok {
		return nil, fmt.Errorf("table %q.%q is not in the catalog", schema, table)
	}
	t := catalogStruct(cols, &d.opts)
	d.tables[name] = t
	return t, nil
}
