package debezium

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgsink/pgsink/internal/sqltype"
)

// columnsOf lists a row image schema's columns with the PostgreSQL type
// each would have in a table created for it (schema.create) or extended
// (schema.evolve). Computed once per compiled schema. A column whose schema
// gives no valid type carries the reason in TypeErr: only DDL needs the
// type, so only a record that would create or extend a table fails for it.
func columnsOf(row *connectSchema) []Column {
	cols := make([]Column, 0, len(row.Fields))
	for i := range row.Fields {
		f := &row.Fields[i]
		c := Column{Name: f.Field, NotNull: !f.Optional}
		if t, err := pgTypeOf(f); err != nil {
			c.TypeErr = fmt.Errorf("field %q: %w", f.Field, err)
		} else {
			c.Type = t.String()
		}
		cols = append(cols, c)
	}
	return cols
}

// logicalTypes are the PostgreSQL types of Connect's and Debezium's
// logical types that take no parameters.
var logicalTypes = map[string]string{
	nameVariableDecimal: "numeric",
	nameDate:            "date", nameConnectDate: "date",
	nameTime: "time without time zone", nameMicroTime: "time without time zone",
	nameNanoTime: "time without time zone", nameConnectTime: "time without time zone",
	nameTimestamp: "timestamp without time zone", nameMicroTimestamp: "timestamp without time zone",
	nameNanoTimestamp: "timestamp without time zone", nameConnectTS: "timestamp without time zone",
	nameZonedTimestamp: "timestamp with time zone",
	nameZonedTime:      "time with time zone",
	nameMicroDuration:  "interval", nameInterval: "interval",
	"io.debezium.data.Json": "jsonb",
	"io.debezium.data.Uuid": "uuid",
	"io.debezium.data.Xml":  "xml",
	nameBits:                "bit varying",
	"io.debezium.data.Enum": "text", "io.debezium.data.EnumSet": "text",
	namePoint: "point",
}

// plainTypes are the PostgreSQL types of Connect's plain types.
var plainTypes = map[string]string{
	"int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint",
	"float": "real", "float32": "real", "double": "double precision", "float64": "double precision",
	"boolean": "boolean", "bytes": "bytea", "struct": "jsonb", "map": "jsonb",
}

// pgTypeOf maps a Connect field schema to a PostgreSQL type. The source
// column's own type wins when Debezium propagates it
// (column.propagate.source.type); otherwise the logical type decides, and
// the plain Connect type last. Where Debezium's encoding has lost the
// source type (an enum is a string, a decimal in double mode a float), the
// widest faithful type is chosen. The schema's parameters are checked as
// PostgreSQL checks them in DDL: one that is not valid there is an error,
// never text passed on.
func pgTypeOf(cs *connectSchema) (sqltype.Type, error) {
	if src, ok, err := sourceColumnType(cs); ok || err != nil {
		return src, err
	}
	if cs.Name == nameDecimal {
		if p, ok := cs.Parameters["connect.decimal.precision"]; ok {
			return decimalType(p, cs.Parameters["scale"])
		}
		return sqltype.New("numeric")
	}
	if name, ok := logicalTypes[cs.Name]; ok {
		return sqltype.New(name)
	}
	if cs.Type == "array" && cs.Items != nil {
		item, err := pgTypeOf(cs.Items)
		return item.Array(), err
	}
	if name, ok := plainTypes[cs.Type]; ok {
		return sqltype.New(name)
	}
	return sqltype.New("text")
}

// decimalType is numeric(precision,scale) from a Decimal's parameters.
func decimalType(precision, scale string) (sqltype.Type, error) {
	p, err := strconv.Atoi(precision)
	if err != nil {
		return sqltype.Type{}, fmt.Errorf("connect.decimal.precision %q is not an integer", precision)
	}
	s, err := strconv.Atoi(scale)
	if err != nil {
		return sqltype.Type{}, fmt.Errorf("decimal scale %q is not an integer", scale)
	}
	return sqltype.New("numeric", p, s)
}

// sourceColumnType is the type Debezium propagates with
// column.propagate.source.type, e.g. NUMERIC with length 12 and scale 2.
// ok is false when the schema carries none. A length outside the type's
// range is Debezium's way of saying the column has none (an unbounded
// varchar has length 2147483647): the type is taken without it.
func sourceColumnType(cs *connectSchema) (t sqltype.Type, ok bool, err error) {
	name := strings.ToLower(cs.Parameters["__debezium.source.column.type"])
	if name == "" {
		return sqltype.Type{}, false, nil
	}
	length, hasLength, err := intParameter(cs.Parameters, "__debezium.source.column.length")
	if err != nil {
		return sqltype.Type{}, false, err
	}
	scale, hasScale, err := intParameter(cs.Parameters, "__debezium.source.column.scale")
	if err != nil {
		return sqltype.Type{}, false, err
	}
	switch name {
	case "varchar", "bpchar", "bit", "varbit", "numeric":
		if _, err := sqltype.New(name, length); !hasLength || err != nil {
			break // no length, or the "unbounded" one
		}
		if name == "numeric" && hasScale {
			t, err = sqltype.New(name, length, scale)
		} else {
			t, err = sqltype.New(name, length)
		}
		if err != nil {
			return sqltype.Type{}, false, fmt.Errorf("__debezium.source.column: %w", err)
		}
		return t, true, nil
	}
	if t, err = sqltype.New(name); err != nil {
		return sqltype.Type{}, false, fmt.Errorf("__debezium.source.column.type: %w", err)
	}
	return t, true, nil
}

// intParameter reads an integer schema parameter; ok is false when it is
// absent.
func intParameter(params map[string]string, key string) (n int, ok bool, err error) {
	v, ok := params[key]
	if !ok {
		return 0, false, nil
	}
	if n, err = strconv.Atoi(v); err != nil {
		return 0, false, fmt.Errorf("%s %q is not an integer", key, v)
	}
	return n, true, nil
}
