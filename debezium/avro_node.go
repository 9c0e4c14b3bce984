package debezium

import (
	"github.com/hamba/avro/v2"
)

// avroKind is an Avro schema's physical type: what its binary form is.
type avroKind uint8

const (
	avroNull avroKind = iota + 1
	avroBool
	avroInt
	avroLong
	avroFloat
	avroDouble
	avroString
	avroBytes
	avroFixed
	avroEnum
	avroRecord
	avroArray
	avroMap
	avroUnion
)

// avroNode is a writer schema reduced to what reading its binary form
// needs, built once per schema id. Named types referenced twice (Debezium's
// after is ["null", "Value"], Value defined in before) share one node.
type avroNode struct {
	kind     avroKind
	size     int      // avroFixed
	symbols  []string // avroEnum
	fields   []avroField
	items    *avroNode   // avroArray
	values   *avroNode   // avroMap
	branches []*avroNode // avroUnion
	// null is the index of the null branch of a two-branch union with one
	// null branch (Connect's optional value), -1 otherwise.
	null int
}

type avroField struct {
	name string
	node *avroNode
}

// nonNull is the other branch of a [null, T] or [T, null] union.
func (n *avroNode) nonNull() *avroNode {
	return n.branches[1-n.null]
}

// avroNodes builds nodes from hamba's parsed schemas.
type avroNodes map[string]*avroNode

func (m avroNodes) of(s avro.Schema) (*avroNode, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	named, isNamed := s.(avro.NamedSchema)
	if isNamed {
		if n := m[named.FullName()]; n != nil {
			return n, nil
		}
	}
	n := &avroNode{null: -1}
	if isNamed {
		// Registered before its fields: a recursive record refers to itself.
		m[named.FullName()] = n
	}
	switch t := s.(type) {
	case *avro.NullSchema:
		n.kind = avroNull
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.Boolean:
			n.kind = avroBool
		case avro.Int:
			n.kind = avroInt
		case avro.Long:
			n.kind = avroLong
		case avro.Float:
			n.kind = avroFloat
		case avro.Double:
			n.kind = avroDouble
		case avro.String:
			n.kind = avroString
		case avro.Bytes:
			n.kind = avroBytes
		default:
			return nil, mismatch("Avro type %s is not supported", t.Type())
		}
	case *avro.FixedSchema:
		n.kind, n.size = avroFixed, t.Size()
	case *avro.EnumSchema:
		n.kind, n.symbols = avroEnum, t.Symbols()
	case *avro.RecordSchema:
		n.kind = avroRecord
		for _, f := range t.Fields() {
			fn, err := m.of(f.Type())
			if err != nil {
				return nil, at(f.Name(), err)
			}
			n.fields = append(n.fields, avroField{name: f.Name(), node: fn})
		}
	case *avro.ArraySchema:
		items, err := m.of(t.Items())
		if err != nil {
			return nil, err
		}
		if items.kind == avroNull || (items.kind == avroRecord && len(items.fields) == 0) || (items.kind == avroFixed && items.size == 0) {
			// Items that take no bytes would let a short body claim any
			// number of them.
			return nil, mismatch("an Avro array of values that take no bytes")
		}
		n.kind, n.items = avroArray, items
	case *avro.MapSchema:
		values, err := m.of(t.Values())
		if err != nil {
			return nil, err
		}
		n.kind, n.values = avroMap, values
	case *avro.UnionSchema:
		n.kind = avroUnion
		for _, b := range t.Types() {
			bn, err := m.of(b)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		if len(n.branches) == 2 {
			switch {
			case n.branches[0].kind == avroNull && n.branches[1].kind != avroNull:
				n.null = 0
			case n.branches[1].kind == avroNull && n.branches[0].kind != avroNull:
				n.null = 1
			}
		}
	default:
		return nil, mismatch("Avro schema %s is not supported", s.Type())
	}
	return n, nil
}

// skipAvro reads past a value of n.
func skipAvro(r *avroReader, n *avroNode) {
	switch n.kind {
	case avroNull:
		return
	case avroBool:
		r.bool()
		return
	case avroInt, avroLong, avroEnum:
		r.long()
		return
	case avroFloat:
		r.float()
		return
	case avroDouble:
		r.double()
		return
	case avroString, avroBytes:
		r.bytes()
		return
	case avroFixed:
		r.fixed(n.size)
		return
	}
	if !r.enter() {
		return
	}
	defer r.leave()
	switch n.kind {
	case avroRecord:
		for _, f := range n.fields {
			skipAvro(r, f.node)
		}
	case avroArray:
		for c := r.blockCount(); c > 0; c = r.blockCount() {
			for ; c > 0 && r.err == nil; c-- {
				skipAvro(r, n.items)
			}
		}
	case avroMap:
		for c := r.blockCount(); c > 0; c = r.blockCount() {
			for ; c > 0 && r.err == nil; c-- {
				r.bytes()
				skipAvro(r, n.values)
			}
		}
	case avroUnion:
		if b := unionBranch(r, n); b != nil {
			skipAvro(r, b)
		}
	}
}

// unionBranch reads a union's branch index.
func unionBranch(r *avroReader, n *avroNode) *avroNode {
	i := r.long()
	if r.err != nil {
		return nil
	}
	if i < 0 || i >= int64(len(n.branches)) {
		r.fail("Avro union branch %d out of range", i)
		return nil
	}
	return n.branches[i]
}
