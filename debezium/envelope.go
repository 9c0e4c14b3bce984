package debezium

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgsink/pgsink/internal/decimal"
)

// envelopeType is the compiled schema of a change event's value: only the
// row images need types, the rest of the envelope has a fixed shape.
type envelopeType struct {
	before, after *typ
	// columns are the row image's columns with PostgreSQL types, shared by
	// every Change decoded with this schema.
	columns []Column
}

// compileEnvelope compiles an envelope schema, keeping the before/after
// row types in a typ whose fields are looked up by the envelope decoder.
func (d *Decoder) compileEnvelope(cs *connectSchema) (*typ, error) {
	if cs.Type != "struct" {
		return nil, mismatch("a change event's schema must be a struct, got %q", cs.Type)
	}
	env := &typ{conv: convStruct, name: cs.Name, env: &envelopeType{}}
	for i := range cs.Fields {
		f := &cs.Fields[i]
		if f.Field != "before" && f.Field != "after" {
			continue
		}
		t, err := compile(f, d.opts.Unavailable)
		if err != nil {
			return nil, at(f.Field, err)
		}
		if t.conv != convStruct {
			return nil, at(f.Field, mismatch("a row image must be a struct"))
		}
		if f.Field == "before" {
			env.env.before = t
			if env.env.columns == nil {
				env.env.columns = columnsOf(f)
			}
		} else {
			env.env.after = t
			env.env.columns = columnsOf(f)
		}
	}
	return env, nil
}

// envelope decodes a table change event or logical message into ch.
func (d *Decoder) envelope(rec *Record, ch *Change) error {
	var env *envelopeType
	var s *scanner
	if d.opts.Schemaless {
		s = &scanner{data: rec.Value}
	} else {
		t, ps, err := d.unwrap(rec.Topic, rec.Value, rec.ValueSchema, false, d.compileEnvelope)
		if err != nil {
			return err
		}
		if t.env == nil {
			return at("schema", mismatch("not a change event schema"))
		}
		env, s = t.env, ps
	}
	if err := d.payload(s, env, ch); err != nil {
		return at("payload", err)
	}
	if env != nil && ch.Kind == KindChange {
		ch.Columns = env.columns
	}
	if !d.opts.Schemaless {
		if rec.ValueSchema == nil {
			if err := s.expect('}'); err != nil {
				return err
			}
		}
		if d.opts.DecimalHandling == "string" && d.opts.Catalog != nil && ch.Kind == KindChange {
			if err := d.stringDecimals(ch); err != nil {
				return at("payload", err)
			}
		}
	}
	return s.end()
}

// stringDecimals parses the numeric and money columns of a change sent
// under decimal.handling.mode=string. Their schema says only "string", so
// without a catalog they stay text (which PostgreSQL parses, but pgx's
// binary COPY cannot when Debezium writes NaN as "NAN"); with one, they
// become pgtype.Numeric like the other decimal forms.
func (d *Decoder) stringDecimals(ch *Change) error {
	t, err := d.catalogTable(ch.Schema, ch.Table)
	if err != nil {
		return nil // a table the catalog does not know keeps its text
	}
	for _, img := range [2]Row{ch.Before, ch.After} {
		for i := range img {
			text, ok := img[i].Value.(string)
			if !ok {
				continue
			}
			j := i // the catalog is usually in the schema's order
			if j >= len(t.fields) || t.fields[j].name != img[i].Name {
				if j, ok = t.byName[img[i].Name]; !ok {
					continue
				}
			}
			if t.fields[j].t.conv != convDecimalString {
				continue
			}
			n, err := decimal.ParseString(text)
			if err != nil {
				return at(img[i].Name, mismatch("%v", err))
			}
			img[i].Value = n
		}
	}
	return nil
}

// payload decodes the envelope's payload object. Without a schema the row
// images are decoded after source names their table, so their bytes are
// only remembered on the first pass.
func (d *Decoder) payload(s *scanner, env *envelopeType, ch *Change) error {
	if err := s.objectStart(); err != nil {
		return mismatch("want an event object")
	}
	var beforePos, afterPos = -1, -1
	var haveBefore, haveAfter bool
	var op []byte
	var tsMs, tsUs int64
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "before", "after":
			var r Row
			if s.null() {
				break
			}
			if env == nil || d.skipTxImages {
				if string(key) == "before" {
					beforePos = s.pos
				} else {
					afterPos = s.pos
				}
				_, err = s.skip()
				break
			}
			t := env.after
			if string(key) == "before" {
				t = env.before
			}
			if t == nil {
				return at(string(key), mismatch("image without a schema"))
			}
			if r, err = row(s, t); err == nil {
				if string(key) == "before" {
					ch.Before, haveBefore = r, true
				} else {
					ch.After, haveAfter = r, true
				}
			}
		case "source":
			err = source(s, ch, &d.names)
		case "transaction":
			if !s.null() {
				ch.Transaction, err = transactionBlock(s)
			}
		case "op":
			op, err = s.stringBytes()
		case "ts_ms":
			if !s.null() {
				tsMs, err = s.int(64)
			}
		case "ts_us":
			if !s.null() {
				tsUs, err = s.int(64)
			}
		case "message":
			ch.Message, err = message(s)
		default:
			_, err = s.skip() // ts_ns and whatever later versions add
		}
		if err != nil {
			return at(string(key), err)
		}
	}
	ch.EventTs = micros(tsUs, tsMs)
	if d.skipTxImages && ch.Transaction != nil {
		// Staged raw, decoded by the resolver (SkipTransactionalImages):
		// the images need only be there for the op.
		err := finishEvent(ch, op, beforePos >= 0, afterPos >= 0)
		ch.ImagesSkipped = ch.Kind == KindChange
		return err
	}
	if env == nil || d.skipTxImages {
		// Schemaless: type the images from the catalog now that source
		// named the table. Skipped for a transaction block that did not
		// come: decoded now.
		if beforePos >= 0 || afterPos >= 0 {
			tb, ta, err := d.imageTypes(env, ch)
			if err != nil {
				return err
			}
			// Plain statements, not a loop over pointers: those would move
			// ch to the heap for every record.
			if beforePos >= 0 {
				if tb == nil {
					return at("before", mismatch("image without a schema"))
				}
				r, err := row(&scanner{data: s.data, pos: beforePos, base: s.base}, tb)
				if err != nil {
					return at("before", err)
				}
				ch.Before, haveBefore = r, true
			}
			if afterPos >= 0 {
				if ta == nil {
					return at("after", mismatch("image without a schema"))
				}
				r, err := row(&scanner{data: s.data, pos: afterPos, base: s.base}, ta)
				if err != nil {
					return at("after", err)
				}
				ch.After, haveAfter = r, true
			}
		}
	}
	return finishEvent(ch, op, haveBefore, haveAfter)
}

// imageTypes are the types of an event's before and after images: from
// its schema, or without one (schemaless) from the catalog's table that
// source named.
func (d *Decoder) imageTypes(env *envelopeType, ch *Change) (before, after *typ, err error) {
	if env != nil {
		return env.before, env.after, nil
	}
	t, err := d.catalogTable(ch.Schema, ch.Table)
	return t, t, err
}

// finishEvent checks a decoded event's op against its row images, the
// same for both wire formats.
func finishEvent(ch *Change, op []byte, haveBefore, haveAfter bool) error {
	if len(op) != 1 {
		return at("op", fmt.Errorf("%w %q", ErrUnknownOp, op))
	}
	ch.Op = Op(op[0])
	ch.Kind = KindChange
	if ch.Op != OpMessage && ch.Table == "" {
		return at("source.table", mismatch("a table change without a table name"))
	}
	switch ch.Op {
	case OpCreate, OpRead, OpUpdate:
		if !haveAfter {
			return at("after", fmt.Errorf("%w: op %q needs an after image", ErrMissingImage, op))
		}
	case OpDelete:
		if haveAfter {
			return at("after", mismatch("a delete has an after image"))
		}
	case OpTruncate:
		if haveAfter || haveBefore {
			return mismatch("a truncate has a row image")
		}
	case OpMessage:
		ch.Kind = KindMessage
		if ch.Message == nil {
			return at("message", fmt.Errorf("%w: op \"m\" without a message", ErrMissingImage))
		}
		// Debezium's message has no flag: a transactional message carries
		// its transaction's id, a non-transactional one none. The transaction
		// block is no guide: it needs provide.transaction.metadata.
		ch.Message.Transactional = ch.TxID != 0
	default:
		return at("op", fmt.Errorf("%w %q", ErrUnknownOp, op))
	}
	return nil
}

func micros(us, ms int64) time.Time {
	switch {
	case us != 0:
		return time.UnixMicro(us).UTC()
	case ms != 0:
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

// source reads the members of the source block pgsink uses. names holds
// the schema and table names of the previous event, reused when equal.
func source(s *scanner, ch *Change, names *[2]string) error {
	if err := s.objectStart(); err != nil {
		return mismatch("want a source object")
	}
	var tsMs, tsUs, lsn int64
	var seq []byte
	var seqBuf [64]byte
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if s.null() {
			continue
		}
		switch string(key) {
		case "schema":
			ch.Schema, err = s.intern(&names[0])
		case "table":
			ch.Table, err = s.intern(&names[1])
		case "snapshot":
			// A string ("true", "first", "last", "incremental", "false");
			// older versions wrote a boolean.
			if c := s.peek(); c == 't' || c == 'f' {
				ch.Snapshot, err = s.bool()
			} else {
				var v []byte
				v, err = s.stringBytes()
				ch.Snapshot = string(v) != "false"
				ch.SnapshotMark = snapshotMark(v)
			}
		case "txId":
			ch.TxID, err = s.int(64)
		case "lsn":
			lsn, err = s.int(64)
		case "sequence":
			seq, err = s.sequenceText(seqBuf[:0])
		case "ts_ms":
			tsMs, err = s.int(64)
		case "ts_us":
			tsUs, err = s.int(64)
		default:
			_, err = s.skip()
		}
		if err != nil {
			return at(string(key), err)
		}
	}
	return finishSource(ch, tsUs, tsMs, lsn, seq)
}

// finishSource sets the event's source time and version from the source
// block's members, the same for both wire formats.
func finishSource(ch *Change, tsUs, tsMs, lsn int64, seq []byte) error {
	ch.SourceTs = micros(tsUs, tsMs)
	ch.Version = Version{LSN: lsn}
	if seq != nil {
		v, err := sequence(seq)
		if err != nil {
			return at("sequence", err)
		}
		ch.Version = v
	}
	if ch.Version.CommitLSN == 0 {
		// Debezium's lastCommitLsn is null for snapshot rows and for the
		// first event streamed after a start: the event's own LSN stands in,
		// so that a snapshot taken at LSN L orders after every event
		// streamed before it (their commit LSNs are below L) and a
		// re-snapshot overwrites what streaming wrote before it.
		ch.Version.CommitLSN = ch.Version.LSN
	}
	return nil
}

// sequenceText reads the sequence string into buf when its only escapes
// are \" (as always: it is JSON in JSON), sparing an allocation per event.
func (s *scanner) sequenceText(buf []byte) ([]byte, error) {
	raw, escaped, err := s.rawString()
	if err != nil || !escaped {
		return raw, err
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			if i+1 >= len(raw) || raw[i+1] != '"' {
				return unescape(raw)
			}
			i++
		}
		buf = append(buf, raw[i])
	}
	return buf, nil
}

// sequence parses source.sequence, a JSON array in a string:
// ["lastCommitLsn","lsn"], either of which may be null.
func sequence(b []byte) (Version, error) {
	if v, ok := compactSequence(b); ok {
		return v, nil
	}
	s := &scanner{data: b}
	var pair [2]int64
	if err := s.arrayStart(); err != nil {
		return Version{}, err
	}
	n := 0
	for first := true; ; first = false {
		more, err := s.nextElem(first)
		if err != nil {
			return Version{}, err
		}
		if !more {
			break
		}
		if n == 2 {
			return Version{}, errors.New("more than two LSNs")
		}
		if !s.null() {
			v, err := s.stringBytes()
			if err != nil {
				return Version{}, err
			}
			if pair[n], err = parseInt(v, 64); err != nil {
				return Version{}, err
			}
		}
		n++
	}
	if n != 2 {
		return Version{}, errors.New("want two LSNs")
	}
	return Version{CommitLSN: pair[0], LSN: pair[1]}, s.end()
}

// compactSequence reads the sequence as Debezium writes it, without
// spaces: ["<digits>","<digits>"], either part possibly null. Anything else
// reports false, for sequence's general reading (and its errors).
func compactSequence(b []byte) (Version, bool) {
	var pair [2]int64
	i := 0
	if i >= len(b) || b[i] != '[' {
		return Version{}, false
	}
	i++
	for n := 0; n < 2; n++ {
		if n == 1 {
			if i >= len(b) || b[i] != ',' {
				return Version{}, false
			}
			i++
		}
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			i += 4
			continue
		}
		if i >= len(b) || b[i] != '"' {
			return Version{}, false
		}
		i++
		start := i
		var u uint64
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			u = u*10 + uint64(b[i]-'0')
		}
		if i == start || i-start > 18 || i >= len(b) || b[i] != '"' {
			return Version{}, false
		}
		i++
		pair[n] = int64(u)
	}
	if i != len(b)-1 || b[i] != ']' {
		return Version{}, false
	}
	return Version{CommitLSN: pair[0], LSN: pair[1]}, true
}

// transactionBlock reads an event's transaction block.
func transactionBlock(s *scanner) (*Transaction, error) {
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a transaction object")
	}
	tx := &Transaction{}
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			if tx.ID, err = s.string(); err == nil {
				tx.TxID, err = txIDOf(tx.ID)
			}
		case "total_order":
			tx.TotalOrder, err = s.int(64)
		case "data_collection_order":
			tx.DataCollectionOrder, err = s.int(64)
		default:
			_, err = s.skip()
		}
		if err != nil {
			return nil, at(string(key), err)
		}
	}
	return tx, nil
}

// txIDOf takes the transaction id out of Debezium's "<txId>:<lsn>".
func txIDOf(id string) (int64, error) {
	head, _, _ := strings.Cut(id, ":")
	n, err := strconv.ParseInt(head, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("transaction id %q is not <txId>:<lsn>", id)
	}
	return n, nil
}

// lsnOf takes the LSN out of Debezium's "<txId>:<lsn>", 0 when there is
// none.
func lsnOf(id string) int64 {
	_, tail, ok := strings.Cut(id, ":")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(tail, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// message reads a logical decoding message, {prefix, content}.
func message(s *scanner) (*LogicalMessage, error) {
	if s.null() {
		return nil, nil
	}
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a message object")
	}
	m := &LogicalMessage{}
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch {
		case s.null():
		case string(key) == "prefix":
			m.Prefix, err = s.string()
		case string(key) == "content":
			m.Content, err = base64Value(s)
		default:
			_, err = s.skip()
		}
		if err != nil {
			return nil, at(string(key), err)
		}
	}
	return m, nil
}
