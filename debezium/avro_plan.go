package debezium

// A plan reads one schema id's Avro bodies straight into a Change: compiled
// once per id from the writer schema (fields in order, unions by index)
// paired with the typ the JSON path compiles from the same Connect schema,
// so both wire formats share every conversion's rules.

// avroRow reads a record of column values into a Row.
type avroRow struct {
	t    *typ
	cols []avroCol
}

type avroCol struct {
	name string
	node *avroNode // without the null branch
	null int       // the null branch's index, -1 for a required value
	t    *typ
	// ph is the unavailable-value placeholder when t has a form of it.
	ph string
}

// plainOf is the node of an optional value without its null branch.
func plainOf(n *avroNode) (node *avroNode, null int, err error) {
	if n.kind != avroUnion {
		return n, -1, nil
	}
	if n.null < 0 {
		return nil, 0, mismatch("an Avro union other than [null, T]")
	}
	return n.nonNull(), n.null, nil
}

// compileAvroRow pairs record n's fields with struct t's.
func compileAvroRow(n *avroNode, t *typ, ph string) (*avroRow, error) {
	n, _, err := plainOf(n)
	if err != nil {
		return nil, err
	}
	if n.kind != avroRecord || t.conv != convStruct || len(n.fields) != len(t.fields) {
		return nil, mismatch("the Avro schema is not the row's record")
	}
	p := &avroRow{t: t, cols: make([]avroCol, len(n.fields))}
	for i, f := range n.fields {
		ft := t.fields[i]
		if f.name != ft.name {
			return nil, at(f.name, mismatch("the Avro field is not the row's column %q", ft.name))
		}
		node, null, err := plainOf(f.node)
		if err != nil {
			return nil, at(f.name, err)
		}
		if !avroFits(node, ft.t) {
			return nil, at(f.name, mismatch("Avro type %s cannot carry %s", node.describe(), ft.t.describe()))
		}
		c := avroCol{name: ft.name, node: node, null: null, t: ft.t}
		if len(ft.t.unchange) > 0 {
			c.ph = ph
		}
		p.cols[i] = c
	}
	return p, nil
}

// read decodes one row image into out, of len(p.cols) zero Fields.
func (p *avroRow) read(r *avroReader, out Row) (Row, error) {
	for i := range p.cols {
		c := &p.cols[i]
		out[i].Name = c.name
		if c.null >= 0 {
			b := r.long()
			if r.err == nil && b != 0 && b != 1 {
				r.fail("Avro union branch %d out of range", b)
			}
			if r.err != nil {
				return nil, at(c.name, r.err)
			}
			if int(b) == c.null {
				continue
			}
		}
		v := avroScalar(r, c.node, c.t)
		if r.err != nil {
			return nil, at(c.name, r.err)
		}
		if c.ph != "" && avroPlaceholder(v, c.ph) {
			out[i].Unchanged = true
			continue
		}
		out[i].Value = v
	}
	return out, nil
}

// envRole is what the decoder does with a field of a change event.
type envRole uint8

const (
	envSkip envRole = iota
	envBefore
	envAfter
	envSource
	envTransaction
	envOp
	envTsMs
	envTsUs
	envMessage
)

// avroEnvelope reads a change event (or a logical message) into a Change.
type avroEnvelope struct {
	env    *envelopeType
	fields []avroEnvField
}

type avroEnvField struct {
	name string
	role envRole
	node *avroNode // as written, with its null branch
	row  *avroRow  // envBefore, envAfter
	// members are the roles of a source, transaction or message record's
	// fields, in order.
	members []envRole
}

// Roles of the members of the source, transaction and message records.
const (
	srcSchema envRole = iota + 1
	srcTable
	srcSnapshot
	srcTxID
	srcLSN
	srcSequence
	srcTsMs
	srcTsUs
	txID
	txTotalOrder
	txCollectionOrder
	msgPrefix
	msgContent
)

var (
	sourceRoles = map[string]memberRole{"schema": {srcSchema, avroString}, "table": {srcTable, avroString},
		"snapshot": {srcSnapshot, avroString}, "txId": {srcTxID, avroLong}, "lsn": {srcLSN, avroLong},
		"sequence": {srcSequence, avroString}, "ts_ms": {srcTsMs, avroLong}, "ts_us": {srcTsUs, avroLong}}
	transactionRoles = map[string]memberRole{"id": {txID, avroString}, "total_order": {txTotalOrder, avroLong},
		"data_collection_order": {txCollectionOrder, avroLong}}
	messageRoles = map[string]memberRole{"prefix": {msgPrefix, avroString}, "content": {msgContent, avroBytes}}
)

type memberRole struct {
	role envRole
	kind avroKind
}

// compileAvroEnvelope pairs a change event's Avro record with the
// envelope typ compiled from its Connect schema.
func compileAvroEnvelope(n *avroNode, t *typ, ph string) (*avroEnvelope, error) {
	if n.kind != avroRecord || t.env == nil {
		return nil, mismatch("not a change event schema")
	}
	p := &avroEnvelope{env: t.env}
	for _, f := range n.fields {
		ef := avroEnvField{name: f.name, node: f.node}
		plain, _, err := plainOf(f.node)
		if err != nil {
			switch f.name {
			case "before", "after", "source", "transaction", "message", "op", "ts_ms", "ts_us":
				return nil, at(f.name, err)
			}
		}
		var members map[string]memberRole
		switch f.name {
		case "before", "after":
			ef.role = envBefore
			rt := t.env.before
			if f.name == "after" {
				ef.role, rt = envAfter, t.env.after
			}
			if ef.row, err = compileAvroRow(f.node, rt, ph); err != nil {
				return nil, at(f.name, err)
			}
		case "source":
			ef.role, members = envSource, sourceRoles
		case "transaction":
			ef.role, members = envTransaction, transactionRoles
		case "message":
			ef.role, members = envMessage, messageRoles
		case "op":
			ef.role = envOp
			if plain.kind != avroString {
				return nil, at(f.name, mismatch("op is not an Avro string"))
			}
		case "ts_ms", "ts_us":
			ef.role = envTsMs
			if f.name == "ts_us" {
				ef.role = envTsUs
			}
			if plain.kind != avroLong && plain.kind != avroInt {
				return nil, at(f.name, mismatch("not an Avro long"))
			}
		}
		if members != nil {
			if plain.kind != avroRecord {
				return nil, at(f.name, mismatch("not an Avro record"))
			}
			for _, m := range plain.fields {
				role := members[m.name]
				mn, _, err := plainOf(m.node)
				if err == nil && role.role != 0 && !memberFits(mn.kind, role) {
					err = mismatch("Avro type %s is not a %s", mn.describe(), (&avroNode{kind: role.kind}).describe())
				}
				if err != nil && role.role != 0 {
					return nil, at(f.name+"."+m.name, err)
				}
				ef.members = append(ef.members, role.role)
			}
		}
		p.fields = append(p.fields, ef)
	}
	return p, nil
}

// memberFits allows an int for a long and a boolean for source.snapshot
// (older Debezium versions).
func memberFits(k avroKind, role memberRole) bool {
	switch {
	case k == role.kind:
		return true
	case role.kind == avroLong:
		return k == avroInt
	case role.role == srcSnapshot:
		return k == avroBool
	}
	return false
}

func (n *avroNode) describe() string {
	return [...]string{"?", "null", "boolean", "int", "long", "float", "double", "string", "bytes", "fixed", "enum", "record", "array", "map", "union"}[n.kind]
}
