package debezium

import (
	"strconv"
	"strings"
)

// catalogStruct compiles a table's columns into the row type that records
// without schemas are decoded with: the conversion Debezium applies to each
// PostgreSQL type, under the configured decimal and time modes.
func catalogStruct(cols []Column, o *Options) *typ {
	t := &typ{conv: convStruct, optional: true, byName: make(map[string]int, len(cols)), schemaless: true}
	for i, c := range cols {
		ft := catalogType(c.Type, o)
		ft.optional = !c.NotNull
		ft.unchange = placeholderForms(ft, o.Unavailable)
		t.fields = append(t.fields, &field{name: c.Name, key: memberPrefix(c.Name), t: ft})
		t.byName[c.Name] = i
	}
	return t
}

func catalogType(pgType string, o *Options) *typ {
	if elem, ok := strings.CutSuffix(pgType, "[]"); ok {
		return &typ{conv: convArray, name: pgType, optional: true, items: catalogType(elem, o)}
	}
	base, mod, _ := strings.Cut(pgType, "(")
	mod, rest, _ := strings.Cut(mod, ")")
	base = strings.TrimSpace(base + rest)
	t := &typ{name: pgType, optional: true}
	switch base {
	case "smallint":
		t.conv = convInt16
	case "integer":
		t.conv = convInt32
	case "bigint":
		t.conv = convInt64
	case "real":
		t.conv = convFloat32
	case "double precision":
		t.conv = convFloat64
	case "boolean":
		t.conv = convBool
	case "bytea":
		t.conv = convBytes
	case "numeric", "money":
		switch o.DecimalHandling {
		case "string":
			t.conv = convDecimalString
		case "double":
			t.conv = convFloat64
		default:
			_, scale, ok := strings.Cut(mod, ",")
			switch {
			case base == "money":
				// money.fraction.digits defaults to 2, as lc_monetary does.
				t.conv, t.scale = convDecimal, 2
			case ok:
				s, _ := strconv.Atoi(strings.TrimSpace(scale))
				t.conv, t.scale = convDecimal, int32(s)
			case mod != "":
				t.conv = convDecimal // numeric(p): scale 0
			default:
				t.conv = convVariableDecimal
			}
		}
	case "date":
		t.conv = convDate
	case "time without time zone":
		t.conv = timeConv(mod, o, convTimeMilli, convTimeMicro)
	case "timestamp without time zone":
		t.conv = timeConv(mod, o, convTimestampMilli, convTimestampMicro)
	case "timestamp with time zone":
		t.conv = convZonedTimestamp
	case "interval":
		t.conv = convInterval
	case "bit":
		if mod == "1" {
			t.conv = convBool // Debezium sends bit(1) as a boolean
			break
		}
		t.conv = convBits
		t.bits, _ = strconv.Atoi(mod)
		if t.bits == 0 {
			t.bits = 1 // "bit" alone is bit(1)
		}
	case "bit varying":
		t.conv = convBits
	case "point":
		t.conv = convPoint
	default:
		// text, varchar, char, uuid, json, jsonb, xml, inet, cidr, macaddr,
		// timetz, enums, and anything else Debezium sends as a string.
		t.conv = convString
	}
	return t
}

// timeConv picks the unit of a time or timestamp column as
// time.precision.mode does: adaptive sends precision 0-3 in milliseconds
// and 4-6 in microseconds; connect always milliseconds.
func timeConv(mod string, o *Options, milli, micro conv) conv {
	switch o.TimePrecision {
	case "connect":
		return milli
	case "adaptive_time_microseconds":
		if milli == convTimeMilli {
			return micro
		}
	}
	p := 6
	if mod != "" {
		p, _ = strconv.Atoi(mod)
	}
	if p <= 3 {
		return milli
	}
	return micro
}
