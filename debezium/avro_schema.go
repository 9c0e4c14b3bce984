package debezium

import (
	"encoding/json"
	"fmt"

	"github.com/hamba/avro/v2"
)

// avroType is an Avro schema compiled for transcoding: the Connect schema
// (as JsonConverter would have written it) and, per value, how the Avro
// binary form is read. Apicurio's AvroConverter, like Confluent's, keeps the
// Connect schema in the Avro schema's connect.* properties, so the Connect
// schema — and with it every logical type and parameter — is recovered
// exactly and compiled by the same code as a JSON record's.
type avroType struct {
	// connect is the Connect schema text, compiled through the JSON path.
	connect []byte
	root    avro.Schema
	// node is the writer schema as the plans read it.
	node *avroNode
	// The plans, compiled on first use as a key or as a change event.
	key         *avroRow
	keyErr      error
	keyCompiled bool
	env         *avroEnvelope
	envErr      error
	envCompiled bool
}

// compileAvro parses an Avro schema (the registry's text) and derives its
// Connect schema.
func compileAvro(text string) (*avroType, error) {
	// A cache per schema: a table's record keeps its name across schema
	// versions, and hamba's shared cache would hand a later version the
	// fields of the first.
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, mismatch("not an Avro schema: %v", err)
	}
	cs, err := connectOfAvro(s, false, map[string]bool{})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cs)
	if err != nil {
		return nil, err
	}
	node, err := avroNodes{}.of(s)
	if err != nil {
		return nil, err
	}
	return &avroType{connect: raw, root: s, node: node}, nil
}

// connectSchemaJSON is connectSchema with the members JsonConverter leaves
// out when empty left out, so the text stays small.
type connectSchemaJSON struct {
	Type       string               `json:"type"`
	Name       string               `json:"name,omitempty"`
	Optional   bool                 `json:"optional"`
	Field      string               `json:"field,omitempty"`
	Parameters map[string]string    `json:"parameters,omitempty"`
	Fields     []*connectSchemaJSON `json:"fields,omitempty"`
	Items      *connectSchemaJSON   `json:"items,omitempty"`
	Keys       *connectSchemaJSON   `json:"keys,omitempty"`
	Values     *connectSchemaJSON   `json:"values,omitempty"`
}

// connectOfAvro maps an Avro schema to the Connect schema AvroData made it
// from: a ["null", T] union is an optional T; connect.name, connect.type
// and connect.parameters restore the logical name, the narrow integer types
// and the parameters.
//
// open holds the records being mapped: Avro allows a record to contain
// itself, which no Connect schema can, and which would otherwise recurse
// without end.
func connectOfAvro(s avro.Schema, optional bool, open map[string]bool) (*connectSchemaJSON, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	cs := &connectSchemaJSON{Optional: optional}
	if p, ok := s.(interface{ Prop(string) any }); ok {
		if n, ok := p.Prop("connect.name").(string); ok {
			cs.Name = n
		}
		if params, ok := p.Prop("connect.parameters").(map[string]any); ok {
			cs.Parameters = make(map[string]string, len(params))
			for k, v := range params {
				text, ok := v.(string)
				if !ok {
					return nil, mismatch("connect.parameters %q is not a string", k)
				}
				cs.Parameters[k] = text
			}
		}
	}
	switch t := s.(type) {
	case *avro.UnionSchema:
		types := t.Types()
		if len(types) != 2 || !t.Nullable() {
			return nil, mismatch("an Avro union other than [null, T]: %s", t.String())
		}
		_, i := t.Indices()
		return connectOfAvro(types[i], true, open)
	case *avro.RecordSchema:
		cs.Type = "struct"
		if open[t.FullName()] {
			return nil, mismatch("Avro record %s contains itself", t.FullName())
		}
		open[t.FullName()] = true
		defer delete(open, t.FullName())
		if cs.Name == "" {
			cs.Name = t.FullName()
		}
		for _, f := range t.Fields() {
			fs, err := connectOfAvro(f.Type(), false, open)
			if err != nil {
				return nil, at(f.Name(), err)
			}
			fs.Field = f.Name()
			cs.Fields = append(cs.Fields, fs)
		}
	case *avro.ArraySchema:
		cs.Type = "array"
		items, err := connectOfAvro(t.Items(), false, open)
		if err != nil {
			return nil, err
		}
		cs.Items = items
	case *avro.MapSchema:
		cs.Type = "map"
		values, err := connectOfAvro(t.Values(), false, open)
		if err != nil {
			return nil, err
		}
		cs.Keys, cs.Values = &connectSchemaJSON{Type: "string"}, values
	case *avro.EnumSchema:
		cs.Type = "string"
	case *avro.FixedSchema:
		cs.Type = "bytes"
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.Int:
			cs.Type = "int32"
			if narrow, ok := t.Prop("connect.type").(string); ok && (narrow == "int8" || narrow == "int16") {
				cs.Type = narrow
			}
		case avro.Long:
			cs.Type = "int64"
		case avro.Float:
			cs.Type = "float"
		case avro.Double:
			cs.Type = "double"
		case avro.Boolean:
			cs.Type = "boolean"
		case avro.String:
			cs.Type = "string"
		case avro.Bytes:
			cs.Type = "bytes"
			if cs.Name == nameDecimal && cs.Parameters["scale"] == "" {
				if d, ok := t.Logical().(*avro.DecimalLogicalSchema); ok {
					if cs.Parameters == nil {
						cs.Parameters = map[string]string{}
					}
					cs.Parameters["scale"] = fmt.Sprint(d.Scale())
				}
			}
		default:
			return nil, mismatch("Avro type %s has no Connect type", t.Type())
		}
	default:
		return nil, mismatch("Avro schema %s has no Connect type", s.Type())
	}
	return cs, nil
}
