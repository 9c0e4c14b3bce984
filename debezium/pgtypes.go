package debezium

import (
	"strconv"
	"strings"
)

// columnsOf lists a row image schema's columns with the PostgreSQL type
// each would have in a table created for it (schema.create) or extended
// (schema.evolve). Computed once per compiled schema.
func columnsOf(row *connectSchema) []Column {
	cols := make([]Column, 0, len(row.Fields))
	for i := range row.Fields {
		f := &row.Fields[i]
		cols = append(cols, Column{Name: f.Field, Type: pgTypeOf(f), NotNull: !f.Optional})
	}
	return cols
}

// pgTypeOf maps a Connect field schema to a PostgreSQL type. The source
// column's own type wins when Debezium propagates it
// (column.propagate.source.type); otherwise the logical type decides, and
// the plain Connect type last. Where Debezium's encoding has lost the
// source type (an enum is a string, a decimal in double mode a float), the
// widest faithful type is chosen.
func pgTypeOf(cs *connectSchema) string {
	if src := sourceColumnType(cs); src != "" {
		return src
	}
	switch cs.Name {
	case nameDecimal:
		if p := cs.Parameters["connect.decimal.precision"]; p != "" {
			return "numeric(" + p + "," + cs.Parameters["scale"] + ")"
		}
		return "numeric"
	case nameVariableDecimal:
		return "numeric"
	case nameDate, nameConnectDate:
		return "date"
	case nameTime, nameMicroTime, nameNanoTime, nameConnectTime:
		return "time without time zone"
	case nameTimestamp, nameMicroTimestamp, nameNanoTimestamp, nameConnectTS:
		return "timestamp without time zone"
	case nameZonedTimestamp:
		return "timestamp with time zone"
	case nameZonedTime:
		return "time with time zone"
	case nameMicroDuration, nameInterval:
		return "interval"
	case "io.debezium.data.Json":
		return "jsonb"
	case "io.debezium.data.Uuid":
		return "uuid"
	case "io.debezium.data.Xml":
		return "xml"
	case nameBits:
		return "bit varying"
	case "io.debezium.data.Enum", "io.debezium.data.EnumSet":
		return "text"
	case namePoint:
		return "point"
	}
	switch cs.Type {
	case "int8", "int16":
		return "smallint"
	case "int32":
		return "integer"
	case "int64":
		return "bigint"
	case "float", "float32":
		return "real"
	case "double", "float64":
		return "double precision"
	case "boolean":
		return "boolean"
	case "bytes":
		return "bytea"
	case "array":
		if cs.Items != nil {
			return pgTypeOf(cs.Items) + "[]"
		}
	case "struct", "map":
		return "jsonb"
	}
	return "text"
}

// sourceColumnType renders the parameters Debezium adds with
// column.propagate.source.type, e.g. NUMERIC with length 12 and scale 2.
func sourceColumnType(cs *connectSchema) string {
	// The type name ends up in DDL: accept only what a type name can be.
	name := strings.ToLower(cs.Parameters["__debezium.source.column.type"])
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_ ") != "" {
		return ""
	}
	length, errL := strconv.Atoi(cs.Parameters["__debezium.source.column.length"])
	scale, errS := strconv.Atoi(cs.Parameters["__debezium.source.column.scale"])
	switch name {
	case "varchar", "bpchar", "bit", "varbit":
		if errL == nil && length > 0 && length < 1<<24 {
			return name + "(" + strconv.Itoa(length) + ")"
		}
	case "numeric":
		if errL == nil && length > 0 && length <= 1000 {
			if errS == nil {
				return "numeric(" + strconv.Itoa(length) + "," + strconv.Itoa(scale) + ")"
			}
			return "numeric(" + strconv.Itoa(length) + ")"
		}
	}
	return name
}
