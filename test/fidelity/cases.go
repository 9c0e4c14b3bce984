package fidelity

import (
	"fmt"
	"strings"
)

// Type is one source column type of the matrix and the values tried in it.
// Unless NoArray, an array column of the same element type is tried too,
// with the cases ArrayCases derives.
type Type struct {
	Column string // the column's name in public.fidelity
	SQL    string // its type, as DDL
	Cases  []Case
	// ArrayExtra are more cases for the array column (multi-dimensional).
	ArrayExtra []Case
	// ArrayFix, when set, is the fix of every derived array case: a limit
	// of Debezium's for arrays of the type.
	ArrayFix string
	NoArray  bool
}

// Case is one value tried in a column: a SQL expression of the column's
// type. Fix names what makes the case exact where it is not: a Debezium
// setting, or what is missing upstream. Touch rows are updated after
// they are written, leaving this column unchanged (Debezium's unchanged
// TOAST placeholder).
type Case struct {
	Name  string
	Expr  string
	Fix   string
	Touch bool
}

// Row is one row of public.fidelity: one case of one column, every other
// column NULL.
type Row struct {
	ID     int // the snapshot row's key; the streamed row's is ID+StreamOffset
	Column string
	Type   string
	Case
}

// StreamOffset is added to a row's ID for its copy written while streaming.
const StreamOffset = 100000

// Sentinel is the key of the row written last: once the target has it,
// everything before it on the (single) partition was applied or refused.
const Sentinel = 999999

// Fixes for the Debezium settings the fidelity test compares.
const (
	fixDecimal  = "decimal.handling.mode=string"
	fixInterval = "interval.handling.mode=string"
	fixScale    = "decimal.handling.mode=string (precise drops trailing zeros)"
	fixInfinity = "decimal.handling.mode=string, and pgsink reading its POSITIVE_INFINITY / NEGATIVE_INFINITY"
	fixUnknown  = "none upstream: Debezium leaves the column out of the event (include.unknown.datatypes=true sends bytes pgsink cannot decode)"
	fixNoArray  = "none upstream: Debezium leaves arrays of this type out of the event"
	fixNullArr  = "none upstream: Debezium sends null for arrays of this type"
	fixMultiDim = "none upstream: Debezium does not support multi-dimensional arrays"
	fixBounds   = "none upstream: a JSON array has no lower bound"
	fixBCSnap   = "none upstream: Debezium's snapshot reads BC dates as AD (streaming is exact)"
	fixBCArray  = "none upstream: Debezium reads BC values in arrays as AD, in snapshot and streaming"
	fixTimetz   = "none upstream: Debezium converts timetz to UTC, so the offset (and 24:00:00) is lost"
	fixTimeArr  = "none upstream: arrays of time carry milliseconds and turn 24:00:00 into 00:00:00"
	fixNumArr   = "decimal.handling.mode=string keeps the scale; an array holding NaN or ±Infinity arrives as null in every mode (upstream)"
	fixName     = "none upstream: Debezium's streaming sends null for name"
	fixToastPH  = "none: the value equals Debezium's unchanged-TOAST placeholder (choose another unavailable.value.placeholder)"
)

// toastText and friends are uncompressible values larger than a TOAST
// page, so PostgreSQL stores them out of line and an update that leaves
// them alone sends Debezium's placeholder.
const (
	toastText  = `(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400))`
	toastBytea = `(SELECT decode(string_agg(md5(random()::text), ''), 'hex') FROM generate_series(1, 800))`
	toastJSONB = `(SELECT jsonb_build_object('blob', string_agg(md5(random()::text), '')) FROM generate_series(1, 400))`
	toastArray = `(SELECT array_agg(md5(random()::text)) FROM generate_series(1, 400))`
)

func c(name, expr string) Case { return Case{Name: name, Expr: expr} }

func cf(name, expr, fix string) Case { return Case{Name: name, Expr: expr, Fix: fix} }

var null = c("NULL", "NULL")

// Types are the PostgreSQL types Debezium's PostgreSQL connector documents,
// and a few it does not (to show what happens to them), with the values
// that break converters: limits, infinities, NaN, −0, BC, year 9999,
// 24:00:00, empty values beside NULL.
var Types = []Type{
	{Column: "c_bool", SQL: "boolean", Cases: []Case{c("true", "true"), c("false", "false"), null}},
	{Column: "c_bit1", SQL: "bit(1)", ArrayFix: fixNullArr, Cases: []Case{c("1", "B'1'"), c("0", "B'0'")}},
	{Column: "c_bit8", SQL: "bit(8)", ArrayFix: fixNullArr, Cases: []Case{c("10100101", "B'10100101'"), c("zeros", "B'00000000'")}},
	{Column: "c_varbit", SQL: "bit varying", ArrayFix: fixNoArray, Cases: []Case{c("19 bits", "B'1010101010101010101'"), c("empty", "B''")}},
	{Column: "c_int2", SQL: "smallint", Cases: []Case{c("min", "-32768"), c("max", "32767"), c("zero", "0")}},
	{Column: "c_int4", SQL: "integer", Cases: []Case{c("min", "-2147483648"), c("max", "2147483647"), null},
		ArrayExtra: []Case{
			cf("2-D", `'{{1,2},{3,4}}'`, fixMultiDim),
			cf("2-D with NULLs", `'{{1,NULL},{NULL,4}}'`, fixMultiDim),
			cf("lower bound not 1", `'[0:1]={7,8}'`, fixBounds),
		}},
	{Column: "c_int8", SQL: "bigint", Cases: []Case{c("min", "-9223372036854775808"), c("max", "9223372036854775807")}},
	{Column: "c_oid", SQL: "oid", Cases: []Case{c("max", "4294967295"), c("zero", "0")}},
	{Column: "c_num", SQL: "numeric", ArrayFix: fixNumArr, Cases: []Case{
		cf("many digits", "123456789012345678901234567890.123456789012345678901234567890", fixScale),
		cf("NaN", "'NaN'", fixDecimal), cf("Infinity", "'Infinity'", fixInfinity), cf("-Infinity", "'-Infinity'", fixInfinity),
		c("-0", "'-0'"), cf("trailing zeros", "1.500", fixScale), c("1e-30", "0.000000000000000000000000000001"),
		c("1e300", "1e300"),
	}},
	{Column: "c_num102", SQL: "numeric(10,2)", ArrayFix: fixNumArr, Cases: []Case{
		c("max", "99999999.99"), c("-0.01", "-0.01"), cf("NaN", "'NaN'", fixDecimal),
	}},
	{Column: "c_num_maxp", SQL: "numeric(1000,500)", Cases: []Case{
		c("1000 digits", "(repeat('9', 500) || '.' || repeat('9', 500))::numeric"),
	}},
	{Column: "c_real", SQL: "real", Cases: []Case{
		c("NaN", "'NaN'"), c("Infinity", "'Infinity'"), c("-Infinity", "'-Infinity'"), c("-0", "'-0'"),
		c("max", "3.4028235e38"), c("min subnormal", "1e-45"), c("0.1", "0.1"),
	}},
	{Column: "c_float8", SQL: "double precision", Cases: []Case{
		c("NaN", "'NaN'"), c("Infinity", "'Infinity'"), c("-Infinity", "'-Infinity'"), c("-0", "'-0'"),
		c("max", "1.7976931348623157e308"), c("min subnormal", "5e-324"), c("0.1", "0.1"),
	}},
	{Column: "c_money", SQL: "money", ArrayFix: fixNoArray, Cases: []Case{
		c("12.34", "12.34"), c("min", "'-92233720368547758.08'"), c("max", "'92233720368547758.07'"),
	}},
	{Column: "c_text", SQL: "text", Cases: []Case{
		c("empty", "''"), null, c("unicode", `'Grüße 👋 日本語'`), c("quotes, backslash, newline", `E'"q" \\ b\n\ttab'`),
		cf("Debezium's placeholder text", "'__debezium_unavailable_value'", fixToastPH),
	}},
	{Column: "c_varchar", SQL: "varchar(10)", Cases: []Case{c("full", "'0123456789'"), c("empty", "''")}},
	{Column: "c_char", SQL: "char(5)", Cases: []Case{c("padded", "'ab'"), c("empty", "''")}},
	{Column: "c_qchar", SQL: `"char"`, Cases: []Case{c("a", "'a'")}},
	{Column: "c_name", SQL: "name", ArrayFix: fixNoArray, Cases: []Case{cf("identifier", "'pg_catalog'", fixName)}},
	{Column: "c_citext", SQL: "citext", Cases: []Case{c("mixed case", "'MiXeD Case'")}},
	{Column: "c_bytea", SQL: "bytea", Cases: []Case{c("empty", `'\x'`), c("00ff", `'\x00ff'`), null}},
	{Column: "c_uuid", SQL: "uuid", Cases: []Case{c("max", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"), c("nil", "'00000000-0000-0000-0000-000000000000'")}},
	{Column: "c_json", SQL: "json", Cases: []Case{
		c("spacing and key order kept", `'{"b": 1,  "a": [1, 2.50]}'`), c("JSON null", "'null'"), c("string", `'"s"'`),
	}},
	{Column: "c_jsonb", SQL: "jsonb", Cases: []Case{
		c("object", `'{"b": 1, "a": [1, 2.50, "é"]}'`), c("JSON null", "'null'"), c("huge number", `'{"n": 1e400}'`),
	}},
	{Column: "c_xml", SQL: "xml", ArrayFix: fixNoArray, Cases: []Case{c("element", `'<a x="1">ü</a>'`), c("empty", "''")}},
	{Column: "c_hstore", SQL: "hstore", Cases: []Case{
		c("pairs with a NULL value", `'"a"=>"1", "b"=>NULL, "c d"=>"e"'`), c("empty", "''"),
	}},
	{Column: "c_ltree", SQL: "ltree", ArrayFix: fixNullArr, Cases: []Case{c("path", "'Top.Science.Astronomy'"), c("empty", "''")}},
	{Column: "c_tsvector", SQL: "tsvector", ArrayFix: fixNullArr, Cases: []Case{c("positions and weights", "'a:1A fat:2B cat:3'"), c("empty", "''")}},
	{Column: "c_date", SQL: "date", ArrayFix: fixBCArray, Cases: []Case{
		c("leap day", "'2024-02-29'"), c("year 9999", "'9999-12-31'"), c("year 10000", "'10000-01-01'"),
		cf("BC", "'0044-03-15 BC'", fixBCSnap), c("0001-01-01", "'0001-01-01'"),
		c("infinity", "'infinity'"), c("-infinity", "'-infinity'"),
	}},
	{Column: "c_time", SQL: "time", ArrayFix: fixTimeArr, Cases: []Case{
		c("midnight", "'00:00:00'"), c("24:00:00", "'24:00:00'"), c("max micros", "'23:59:59.999999'"),
	}},
	{Column: "c_time3", SQL: "time(3)", Cases: []Case{c("millis", "'12:34:56.789'")}},
	{Column: "c_timetz", SQL: "timetz", Cases: []Case{
		cf("+14", "'00:00:00+14'", fixTimetz), cf("-12 max micros", "'23:59:59.999999-12'", fixTimetz),
		cf("+05:30", "'12:00:00+05:30'", fixTimetz), cf("24:00:00", "'24:00:00+00'", fixTimetz),
	}},
	{Column: "c_ts", SQL: "timestamp", ArrayFix: fixBCArray, Cases: []Case{
		c("micros", "'2024-02-29 13:45:30.123456'"), c("year 9999", "'9999-12-31 23:59:59.999999'"),
		cf("BC", "'0044-03-15 12:00:00 BC'", fixBCSnap), c("epoch", "'1970-01-01 00:00:00'"),
		c("infinity", "'infinity'"), c("-infinity", "'-infinity'"),
	}},
	{Column: "c_ts3", SQL: "timestamp(3)", Cases: []Case{c("millis", "'2024-02-29 13:45:30.123'")}},
	{Column: "c_tstz", SQL: "timestamptz", ArrayFix: fixBCArray, Cases: []Case{
		c("micros", "'2024-02-29 13:45:30.123456+05:30'"), c("year 9999", "'9999-12-31 23:59:59.999999+00'"),
		cf("BC", "'0044-03-15 12:00:00+00 BC'", fixBCSnap), c("before epoch", "'1969-12-31 23:59:59.999999+00'"),
		c("infinity", "'infinity'"), c("-infinity", "'-infinity'"),
	}},
	{Column: "c_interval", SQL: "interval", ArrayFix: fixNoArray, Cases: []Case{
		cf("years, months, days, time", "'1 year 2 mons 3 days 04:05:06.789'", fixInterval),
		cf("one month", "'1 mon'", fixInterval), c("one microsecond", "'00:00:00.000001'"),
		cf("mixed signs", "'-1 days +04:00:00'", fixInterval), cf("178000000 years", "'178000000 years'", fixInterval),
	}},
	{Column: "c_enum", SQL: "mood", ArrayFix: fixNullArr, Cases: []Case{c("label", "'happy'")}},
	{Column: "c_dom_int", SQL: "posint", ArrayFix: fixNoArray, Cases: []Case{c("5", "5")}},
	{Column: "c_dom_text", SQL: "short_text", ArrayFix: fixNoArray, Cases: []Case{c("abc", "'abc'"), c("empty", "''")}},
	{Column: "c_dom_num", SQL: "price", ArrayFix: fixNoArray, Cases: []Case{c("12.34", "12.34")}},
	{Column: "c_point", SQL: "point", ArrayFix: fixNoArray, Cases: []Case{c("(1.5,2.5)", "'(1.5,2.5)'"), c("-0 and 1e300", "'(-0,1e300)'")}},
	{Column: "c_line", SQL: "line", Cases: []Case{cf("{1,2,3}", "'{1,2,3}'", fixUnknown)}},
	{Column: "c_lseg", SQL: "lseg", Cases: []Case{cf("segment", "'[(0,0),(1,1)]'", fixUnknown)}},
	{Column: "c_box", SQL: "box", Cases: []Case{cf("box", "'(1,1),(0,0)'", fixUnknown)}},
	{Column: "c_path", SQL: "path", Cases: []Case{cf("closed", "'((0,0),(1,1),(2,0))'", fixUnknown), cf("open", "'[(0,0),(1,1)]'", fixUnknown)}},
	{Column: "c_polygon", SQL: "polygon", Cases: []Case{cf("triangle", "'((0,0),(1,1),(1,0))'", fixUnknown)}},
	{Column: "c_circle", SQL: "circle", Cases: []Case{cf("unit", "'<(0,0),1>'", fixUnknown)}},
	{Column: "c_inet", SQL: "inet", Cases: []Case{c("v4 with mask", "'192.168.1.5/24'"), c("v6", "'::1'")}},
	{Column: "c_cidr", SQL: "cidr", Cases: []Case{c("v4", "'10.0.0.0/8'"), c("v6", "'2001:db8::/32'")}},
	{Column: "c_macaddr", SQL: "macaddr", Cases: []Case{c("max", "'ff:ff:ff:ff:ff:ff'")}},
	{Column: "c_macaddr8", SQL: "macaddr8", Cases: []Case{c("eui-64", "'08:00:2b:01:02:03:04:05'")}},
	{Column: "c_int4range", SQL: "int4range", Cases: []Case{c("[1,10)", "'[1,10)'"), c("empty", "'empty'"), c("unbounded", "'(,)'")}},
	{Column: "c_int8range", SQL: "int8range", Cases: []Case{c("[1,10)", "'[1,10)'")}},
	{Column: "c_numrange", SQL: "numrange", Cases: []Case{c("[1.5,2.5]", "'[1.5,2.5]'")}},
	{Column: "c_tsrange", SQL: "tsrange", Cases: []Case{c("to infinity", `'["2024-01-01 00:00:00",infinity)'`)}},
	{Column: "c_tstzrange", SQL: "tstzrange", Cases: []Case{c("bounded", `'["2024-01-01 00:00:00+00","2024-06-01 00:00:00+02")'`)}},
	{Column: "c_daterange", SQL: "daterange", Cases: []Case{c("[2024-01-01,2024-02-01)", "'[2024-01-01,2024-02-01)'")}},
	{Column: "c_int4multirange", SQL: "int4multirange", Cases: []Case{cf("two ranges", "'{[1,3), [5,7)}'", fixUnknown)}},
	// Unchanged TOAST: written, then the row is updated without them.
	{Column: "t_text", SQL: "text", NoArray: true, Cases: []Case{{Name: "unchanged TOAST, 12.8 KB", Expr: toastText, Touch: true}}},
	{Column: "t_bytea", SQL: "bytea", NoArray: true, Cases: []Case{{Name: "unchanged TOAST, 12.8 KB", Expr: toastBytea, Touch: true}}},
	{Column: "t_jsonb", SQL: "jsonb", NoArray: true, Cases: []Case{{Name: "unchanged TOAST, 12.8 KB", Expr: toastJSONB, Touch: true}}},
	{Column: "t_text_arr", SQL: "text[]", NoArray: true, Cases: []Case{{Name: "unchanged TOAST, 12.8 KB", Expr: toastArray, Touch: true}}},
}

// Setup creates what the column types need, in the source and the target.
var Setup = []string{
	`CREATE EXTENSION hstore`,
	`CREATE EXTENSION ltree`,
	`CREATE EXTENSION citext`,
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
	`CREATE DOMAIN short_text AS varchar(20)`,
	`CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0)`,
}

// Column is one column of public.fidelity.
type Column struct {
	Name, SQL string
}

// Columns lists public.fidelity's columns after id and touch: each type's,
// then its array's.
func Columns() []Column {
	var cols []Column
	for _, t := range Types {
		cols = append(cols, Column{t.Column, t.SQL})
		if !t.NoArray {
			cols = append(cols, Column{t.Column + "_arr", t.SQL + "[]"})
		}
	}
	return cols
}

// TableDDL is public.fidelity's definition; extra columns (the target's
// version columns) are appended.
func TableDDL(extra ...string) string {
	defs := []string{"id integer PRIMARY KEY", "touch integer"}
	for _, col := range Columns() {
		defs = append(defs, col.Name+" "+col.SQL)
	}
	defs = append(defs, extra...)
	return "CREATE TABLE public.fidelity (\n  " + strings.Join(defs, ",\n  ") + "\n)"
}

// Rows lists every case in matrix order, numbered from 1.
func Rows() []Row {
	var rows []Row
	add := func(col, typ string, cs Case) {
		rows = append(rows, Row{ID: len(rows) + 1, Column: col, Type: typ, Case: cs})
	}
	for _, t := range Types {
		for _, cs := range t.Cases {
			add(t.Column, t.SQL, cs)
		}
		if !t.NoArray {
			for _, cs := range arrayCases(t) {
				add(t.Column+"_arr", t.SQL+"[]", cs)
			}
		}
	}
	return rows
}

// arrayCases are, for an array of t: its first case's value beside a NULL
// element, every non-NULL case's value in one array, an empty array, and
// t's extra array cases. A case's fix carries over to the arrays holding
// its value.
func arrayCases(t Type) []Case {
	elem := func(cs Case) string { return "(" + cs.Expr + ")::" + t.SQL }
	first := t.Cases[0]
	out := []Case{{
		Name: fmt.Sprintf("{%s, NULL}", first.Name),
		Expr: fmt.Sprintf("ARRAY[%s, NULL]::%s[]", elem(first), t.SQL),
		Fix:  first.Fix,
	}}
	var all []string
	var fixes []string
	for _, cs := range t.Cases {
		if cs.Expr == "NULL" {
			continue
		}
		all = append(all, elem(cs))
		if cs.Fix != "" && !contains(fixes, cs.Fix) {
			fixes = append(fixes, cs.Fix)
		}
	}
	if len(all) > 1 {
		out = append(out, Case{Name: "every value", Expr: "ARRAY[" + strings.Join(all, ", ") + "]::" + t.SQL + "[]", Fix: strings.Join(fixes, "; ")})
	}
	out = append(out, Case{Name: "empty", Expr: "'{}'::" + t.SQL + "[]"})
	if t.ArrayFix != "" {
		for i := range out {
			out[i].Fix = t.ArrayFix
		}
	}
	return append(out, t.ArrayExtra...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Insert is the statement that writes r with key id.
func (r Row) Insert(id int) string {
	return fmt.Sprintf("INSERT INTO public.fidelity (id, %s) VALUES (%d, %s)", r.Column, id, r.Expr)
}
