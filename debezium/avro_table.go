package debezium

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// avroPart is one key or value in the Confluent wire format.
type avroPart struct {
	id   uint32
	t    *avroType
	body []byte
}

// avroPartOf splits data, fetching its schema (once per id). slot is 0
// for keys, 1 for values: each remembers its last schema, which the next
// record of a table carries too.
func (d *Decoder) avroPartOf(data []byte, slot int) (avroPart, error) {
	if len(data) < 5 || data[0] != 0 {
		return avroPart{}, ErrNoMagicByte
	}
	id := binary.BigEndian.Uint32(data[1:5])
	last := &d.avro.last[slot]
	if last.t == nil || last.id != id {
		t, err := d.avroType(id)
		if err != nil {
			return avroPart{}, err
		}
		*last = avroPart{id: id, t: t}
	}
	return avroPart{id: id, t: last.t, body: data[5:]}, nil
}

// avroFault names the schema id in err, keeping err's field path for the
// DecodeError.
func avroFault(id uint32, err error) error {
	if fe, ok := err.(*fieldError); ok {
		fe.err = fmt.Errorf("schema id %d: %w", id, fe.err)
		return fe
	}
	return fmt.Errorf("schema id %d: %w", id, err)
}

// reader returns the decoder's reader positioned at the part's body.
func (d *Decoder) reader(p avroPart) *avroReader {
	r := &d.avro.r
	*r = avroReader{buf: p.body}
	return r
}

// done checks that the body was read to its end.
func (r *avroReader) done() error {
	if r.err != nil {
		return r.err
	}
	if r.pos != len(r.buf) {
		return mismatch("bytes left after the Avro body")
	}
	return nil
}

// avroKeyRow decodes a table key, returning its typ for the record's
// key headers.
func (d *Decoder) avroKeyRow(p avroPart) (Row, *typ, error) {
	if !p.t.keyCompiled {
		p.t.keyCompiled = true
		p.t.key, p.t.keyErr = d.compileAvroKey(p.t)
	}
	if p.t.keyErr != nil {
		return nil, nil, avroFault(p.id, p.t.keyErr)
	}
	r := d.reader(p)
	row, err := p.t.key.read(r, d.avro.row(len(p.t.key.cols)))
	if err == nil {
		err = r.done()
	}
	if err != nil {
		return nil, nil, avroFault(p.id, at("payload", err))
	}
	return row, p.t.key.t, nil
}

func (d *Decoder) compileAvroKey(t *avroType) (*avroRow, error) {
	kt, err := t.compileConnect(d.compileValue)
	if err != nil {
		return nil, err
	}
	if kt.conv != convStruct {
		return nil, at("schema", mismatch("a table key must be a struct, got %s", kt.describe()))
	}
	p, err := compileAvroRow(t.node, kt, d.opts.Unavailable)
	return p, at("schema", err)
}

func (d *Decoder) compileAvroEnvelope(t *avroType) (*avroEnvelope, error) {
	et, err := t.compileConnect(d.compileEnvelope)
	if err != nil {
		return nil, err
	}
	p, err := compileAvroEnvelope(t.node, et, d.opts.Unavailable)
	return p, at("schema", err)
}

// compileConnect compiles t's Connect schema as the JSON path would.
func (t *avroType) compileConnect(compile func(*connectSchema) (*typ, error)) (*typ, error) {
	cs, err := parseSchema(t.connect)
	if err != nil {
		return nil, at("schema", err)
	}
	ct, err := compile(cs)
	return ct, at("schema", err)
}

// avroTable decodes a record of a table topic in Avro straight into ch,
// with the JSON path's rules: a tombstone carries its key, a logical
// message none, a truncate no key. It returns the part at fault with an
// error, and the key's typ for the key headers.
func (d *Decoder) avroTable(rec *Record, ch *Change) (string, *typ, error) {
	// The key's schema is fetched first, as before a value is read, so a
	// registry outage is reported for the key's id.
	var key avroPart
	if rec.Key != nil {
		var err error
		if key, err = d.avroPartOf(rec.Key, 0); err != nil {
			return "key", nil, err
		}
	}
	if rec.Value == nil {
		ch.Kind = KindTombstone
		ch.Schema, ch.Table = d.opts.TableOf(rec.Topic)
		if rec.Key == nil {
			return "", nil, nil
		}
		row, kt, err := d.avroKeyRow(key)
		ch.Key = row
		return "key", kt, err
	}
	val, err := d.avroPartOf(rec.Value, 1)
	if err != nil {
		return "value", nil, err
	}
	if !val.t.envCompiled {
		val.t.envCompiled = true
		val.t.env, val.t.envErr = d.compileAvroEnvelope(val.t)
	}
	if val.t.envErr != nil {
		return "value", nil, avroFault(val.id, val.t.envErr)
	}
	r := d.reader(val)
	err = d.avroEnvelope(r, val.t.env, ch)
	if err == nil {
		err = r.done()
	}
	if err != nil {
		return "value", nil, avroFault(val.id, at("payload", err))
	}
	if ch.Kind == KindChange {
		ch.Columns = val.t.env.env.columns
		if d.opts.DecimalHandling == "string" && d.opts.Catalog != nil {
			if err := d.stringDecimals(ch); err != nil {
				return "value", nil, avroFault(val.id, at("payload", err))
			}
		}
	}
	if ch.Kind == KindMessage || ch.Op == OpTruncate || rec.Key == nil {
		return "", nil, nil
	}
	row, kt, err := d.avroKeyRow(key)
	ch.Key = row
	return "key", kt, err
}

// slabSize is how many Fields (and Transactions) one allocation holds.
const slabSize = 512

// row returns n zero Fields. Rows are cut from a slab, one allocation for
// many records' rows instead of one per row image: a batch holds its
// Changes together anyway, so a slab lives no longer than its batch's
// last Change. Each row's capacity is its length, so appending to one
// never writes into the next.
func (a *avroState) row(n int) Row {
	if n > slabSize/8 {
		return make(Row, n)
	}
	if len(a.fields) < n {
		a.fields = make([]Field, slabSize)
	}
	out := a.fields[:n:n]
	a.fields = a.fields[n:]
	return out
}

// transaction returns a zero Transaction, cut from a slab like rows.
func (a *avroState) transaction() *Transaction {
	if len(a.txs) == 0 {
		a.txs = make([]Transaction, slabSize/8)
	}
	tx := &a.txs[0]
	a.txs = a.txs[1:]
	return tx
}

// avroEnvelope reads a change event's fields in the writer's order.
func (d *Decoder) avroEnvelope(r *avroReader, p *avroEnvelope, ch *Change) error {
	var op []byte
	var tsMs, tsUs int64
	var haveBefore, haveAfter bool
	for i := range p.fields {
		f := &p.fields[i]
		if f.role == envSkip {
			skipAvro(r, f.node)
			if r.err != nil {
				return at(f.name, r.err)
			}
			continue
		}
		n := f.node
		if n.kind == avroUnion {
			if n = unionBranch(r, n); n == nil {
				return at(f.name, r.err)
			}
		}
		if n.kind == avroNull {
			if f.role == envSource {
				return at(f.name, mismatch("want a source object"))
			}
			continue
		}
		var err error
		switch f.role {
		case envBefore:
			ch.Before, err = f.row.read(r, d.avro.row(len(f.row.cols)))
			haveBefore = err == nil
		case envAfter:
			ch.After, err = f.row.read(r, d.avro.row(len(f.row.cols)))
			haveAfter = err == nil
		case envSource:
			err = d.avroSource(r, n, f.members, ch)
		case envTransaction:
			ch.Transaction, err = avroTransaction(r, n, f.members, d.avro.transaction())
		case envMessage:
			ch.Message = avroMessage(r, n, f.members)
		case envOp:
			op = r.bytes()
		case envTsMs:
			tsMs = r.long()
		case envTsUs:
			tsUs = r.long()
		}
		if err == nil {
			err = r.err
		}
		if err != nil {
			return at(f.name, err)
		}
	}
	ch.EventTs = micros(tsUs, tsMs)
	return finishEvent(ch, op, haveBefore, haveAfter)
}

// avroMember reads the branch of a member of a source, transaction or
// message record: nil for a null value (or a member pgsink does not use,
// which is skipped).
func avroMember(r *avroReader, n *avroNode, role envRole) *avroNode {
	if n.kind == avroUnion {
		if n = unionBranch(r, n); n == nil {
			return nil
		}
	}
	if role == envSkip {
		skipAvro(r, n)
		return nil
	}
	if n.kind == avroNull {
		return nil
	}
	return n
}

// avroSource reads the source block's members pgsink uses.
func (d *Decoder) avroSource(r *avroReader, n *avroNode, roles []envRole, ch *Change) error {
	var tsMs, tsUs, lsn int64
	var seq []byte
	for i, m := range n.fields {
		role := roles[i]
		v := avroMember(r, m.node, role)
		if v == nil {
			if r.err != nil {
				return at(m.name, r.err)
			}
			continue
		}
		switch role {
		case srcSchema:
			ch.Schema = internBytes(r.bytes(), &d.names[0])
		case srcTable:
			ch.Table = internBytes(r.bytes(), &d.names[1])
		case srcSnapshot:
			if v.kind == avroBool {
				ch.Snapshot = r.bool()
			} else {
				b := r.bytes()
				ch.Snapshot = string(b) != "false"
				ch.SnapshotMark = snapshotMark(b)
			}
		case srcTxID:
			ch.TxID = r.long()
		case srcLSN:
			lsn = r.long()
		case srcSequence:
			seq = r.bytes()
		case srcTsMs:
			tsMs = r.long()
		case srcTsUs:
			tsUs = r.long()
		}
		if r.err != nil {
			return at(m.name, r.err)
		}
	}
	return finishSource(ch, tsUs, tsMs, lsn, seq)
}

// internBytes returns *last when b spells it, else a copy of b, kept in
// *last: a stream of one table's events does not allocate its name again.
func internBytes(b []byte, last *string) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// avroTransaction reads an event's transaction block.
func avroTransaction(r *avroReader, n *avroNode, roles []envRole, tx *Transaction) (*Transaction, error) {
	for i, m := range n.fields {
		role := roles[i]
		if avroMember(r, m.node, role) == nil {
			if r.err != nil {
				return nil, at(m.name, r.err)
			}
			continue
		}
		var err error
		switch role {
		case txID:
			tx.ID = r.str()
			if r.err == nil {
				tx.TxID, err = txIDOf(tx.ID)
			}
		case txTotalOrder:
			tx.TotalOrder = r.long()
		case txCollectionOrder:
			tx.DataCollectionOrder = r.long()
		}
		if err == nil {
			err = r.err
		}
		if err != nil {
			return nil, at(m.name, err)
		}
	}
	return tx, nil
}

// avroMessage reads a logical decoding message, {prefix, content}.
func avroMessage(r *avroReader, n *avroNode, roles []envRole) *LogicalMessage {
	m := &LogicalMessage{}
	for i, f := range n.fields {
		role := roles[i]
		if avroMember(r, f.node, role) == nil {
			continue
		}
		switch role {
		case msgPrefix:
			m.Prefix = r.str()
		case msgContent:
			m.Content = bytes.Clone(r.bytes())
		}
	}
	return m
}
