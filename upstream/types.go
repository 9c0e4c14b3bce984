package upstream

import (
	"regexp"
	"strings"

	"github.com/pgsink/pgsink/sink/catalog"
)

// What Debezium 3.6.1 does to some column types whatever its settings, as
// the fidelity matrix (docs/fidelity.md) observed it. The catalog names the
// target column's type; it stands for the source column's.

// geometricTypes are left out of Debezium's events, scalar or array.
var geometricTypes = map[string]bool{"line": true, "lseg": true, "box": true, "path": true, "polygon": true, "circle": true}

// leftOutArrays are the element types whose arrays Debezium leaves out of
// its events (besides domains, found by their kind).
var leftOutArrays = map[string]bool{"bit varying": true, "money": true, "name": true, "xml": true, "interval": true, "point": true}

var (
	timeTZType  = regexp.MustCompile(`^time(?:\((\d)\))? with time zone$`)
	datedArrays = map[string]string{
		"date":                        "a BC element arrives as the AD date ('0044-03-15 BC' is written 0044-03-15)",
		"timestamp without time zone": "a BC element arrives two days off ('0044-03-15 12:00:00 BC' is written 0044-03-13 12:00:00 BC)",
		"timestamp with time zone": "a BC element arrives as the AD instant, and -infinity as a year past PostgreSQL's range, " +
			"which refuses the row (dead letter)",
	}
	typmod = regexp.MustCompile(`\(\d+(?:,\d+)?\)`)
)

// column is a target column's type as Debezium's rules need it.
type column struct {
	// base is the type without "[]" and, for the matching of an
	// extension's type (ltree), without its schema.
	base  string
	array bool
	kind  string
}

func columnOf(col *catalog.Column) column {
	base, array := strings.CutSuffix(col.Type, "[]")
	if i := strings.LastIndexByte(base, '.'); i >= 0 && !strings.Contains(base, "(") {
		base = base[i+1:]
	}
	return column{base: base, array: array, kind: col.Kind}
}

// unmodified is the type's name without its typmod: "bit varying(5)" is
// "bit varying", "timestamp(3) with time zone" "timestamp with time zone".
// Every interval ("interval year to month") is "interval".
func (c column) unmodified() string {
	if strings.HasPrefix(c.base, "interval") {
		return "interval"
	}
	return typmod.ReplaceAllString(c.base, "")
}

// carried reports whether Debezium sends col's values at all: it reports
// the types it leaves out of its events, or sends as null, as errors.
func (c *checker) carried(col *catalog.Column) bool {
	t := columnOf(col)
	name := t.unmodified()
	leftOut := "Debezium 3.6.1 leaves columns of this type out of its events (Connect logs \"No converter found for column\"): " +
		"no value of it reaches the target"
	if col.NotNull && col.Default == "" && col.Identity == "" {
		leftOut += ", and as the column is NOT NULL without a default, every new row is refused (dead letters)"
	}
	switch {
	case geometricTypes[name]:
		c.add(Error, "", col, leftOut, "carry the values at the source in a type Debezium sends (text, or point for one point)")
	case t.kind == "m":
		c.add(Error, "", col, leftOut, "carry the values at the source as an array of ranges, which Debezium sends")
	case t.array && t.kind == "d":
		c.add(Error, "", col, leftOut, "carry the values at the source as an array of the domain's base type")
	case t.array && leftOutArrays[name]:
		c.add(Error, "", col, leftOut, "carry the values at the source in a type Debezium sends (text[] or jsonb)")
	case t.array && name == "bit":
		c.add(Error, "", col, "Debezium 3.6.1 sends every array of bit(n) as null (Connect logs \"Failed to properly convert data value\"): it is written as NULL",
			"carry the values at the source in a type Debezium sends (text[], or bit varying outside an array)")
	case t.array && (t.kind == "e" || name == "ltree" || name == "tsvector"):
		c.add(Error, "", col, "Debezium 3.6.1 sends an array of this type that holds a NULL element as null: it is written as NULL",
			"keep NULL elements out of the arrays at the source, or carry them as text[]")
	case !t.array && name == "name":
		c.add(Error, "", col, "values arrive as null while Debezium 3.6.1 streams (its snapshot reads them): every row changed after the snapshot gets NULL",
			"carry the values at the source in a text or varchar column")
	default:
		return true
	}
	return false
}

// typeLosses reports, as warnings, the values of col's type that Debezium
// alters whatever its settings: which values a column holds decides.
func (c *checker) typeLosses(col *catalog.Column) {
	t := columnOf(col)
	name := t.unmodified()
	switch {
	case timeTZType.MatchString(t.base) && !t.array:
		c.add(Warning, "", col, "Debezium converts timetz to UTC: the instant is kept, the offset is not ('00:00:00+14' is written 10:00:00+00), "+
			"and 24:00:00 arrives as 00:00:00", "none in the connector's settings: use timestamptz, or keep the offset in a column of its own")
	case timeTZType.MatchString(t.base):
		c.add(Warning, "", col, "Debezium converts arrays of timetz to UTC and whole seconds: offsets and fractional seconds are lost",
			"carry the values at the source as text[]")
	case t.array && name == "time without time zone":
		if precision, _ := fractionalDigits(t.base); precision > 3 {
			c.add(Warning, "", col, "Debezium sends arrays of time in milliseconds: microseconds are dropped, and 24:00:00 arrives as 00:00:00",
				"declare the source column time(3)[] if milliseconds are enough, or carry the values as text[]")
		}
	case t.array && name == "numeric":
		c.add(Warning, "", col, "an array holding NaN or ±Infinity arrives as null whatever decimal.handling.mode: the whole array is written as NULL",
			"keep NaN and ±Infinity out of numeric arrays at the source, or carry them as text[]")
	case t.array && datedArrays[name] != "":
		c.add(Warning, "", col, "Debezium reads arrays of this type wrong before year 1, in snapshot and streaming: "+datedArrays[name],
			"keep BC values out of the arrays at the source, or carry them as text[]")
	case name == "date" && c.feed.connector.snapshots():
		c.add(Warning, "snapshot.mode", col, "a BC date read by the connector's snapshot arrives as the AD date "+
			"('0044-03-15 BC' is written 0044-03-15); streamed changes are exact",
			"keep BC dates out of the source table while it is snapshotted; an update after the snapshot sends the date right")
	}
}
