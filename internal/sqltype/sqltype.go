package sqltype

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is a column type pgsink may write into DDL.
type Type struct {
	// name is a key of builtins, or a type's own name: a lowercase
	// identifier that is rendered quoted.
	name string
	mods []int
	// array is true for an array of the type.
	array bool
}

// builtin is a type with a fixed SQL spelling. Its modifiers, if any, are
// rendered after head, before tail: "timestamp" "(3)" " with time zone".
type builtin struct {
	head, tail string
	// mods checks the modifiers; nil means the type takes none.
	mods func(mods []int) error
}

// PostgreSQL's limits for type modifiers (src/include/utils/numeric.h,
// varchar.h, varbit.c, datetime.h).
const (
	maxNumericPrecision = 1000
	minNumericScale     = -1000
	maxNumericScale     = 1000
	maxCharLength       = 10485760 // MaxAttrSize
	maxBitLength        = maxCharLength * 8
	maxTimePrecision    = 6
)

var (
	numericMods = func(m []int) error {
		if len(m) < 1 || len(m) > 2 {
			return fmt.Errorf("numeric takes a precision and an optional scale, got %d modifiers", len(m))
		}
		if m[0] < 1 || m[0] > maxNumericPrecision {
			return fmt.Errorf("numeric precision %d must be between 1 and %d", m[0], maxNumericPrecision)
		}
		if len(m) == 2 && (m[1] < minNumericScale || m[1] > maxNumericScale) {
			return fmt.Errorf("numeric scale %d must be between %d and %d", m[1], minNumericScale, maxNumericScale)
		}
		return nil
	}
	charMods = oneMod("length", 1, maxCharLength)
	bitMods  = oneMod("length", 1, maxBitLength)
	timeMods = oneMod("precision", 0, maxTimePrecision)
)

func oneMod(what string, lo, hi int) func([]int) error {
	return func(m []int) error {
		if len(m) != 1 {
			return fmt.Errorf("the type takes one modifier, its %s, got %d", what, len(m))
		}
		if m[0] < lo || m[0] > hi {
			return fmt.Errorf("%s %d must be between %d and %d", what, m[0], lo, hi)
		}
		return nil
	}
}

// builtins are PostgreSQL's own types by every name a record may give
// them: format_type's spelling, the pg_type name, the SQL alias.
var builtins = map[string]builtin{}

func init() {
	add := func(b builtin, names ...string) {
		for _, n := range names {
			builtins[n] = b
		}
	}
	add(builtin{head: "smallint"}, "smallint", "int2")
	add(builtin{head: "integer"}, "integer", "int", "int4")
	add(builtin{head: "bigint"}, "bigint", "int8")
	add(builtin{head: "real"}, "real", "float4")
	add(builtin{head: "double precision"}, "double precision", "float8")
	add(builtin{head: "numeric", mods: numericMods}, "numeric", "decimal")
	add(builtin{head: "boolean"}, "boolean", "bool")
	add(builtin{head: "text"}, "text")
	add(builtin{head: "character varying", mods: charMods}, "character varying", "varchar")
	add(builtin{head: "character", mods: charMods}, "character", "char")
	// bpchar without a length is unbounded, character without one is
	// character(1): they are different types.
	add(builtin{head: "bpchar", mods: charMods}, "bpchar")
	add(builtin{head: "bit", mods: bitMods}, "bit")
	add(builtin{head: "bit varying", mods: bitMods}, "bit varying", "varbit")
	add(builtin{head: "bytea"}, "bytea")
	add(builtin{head: "date"}, "date")
	add(builtin{head: "time", tail: " without time zone", mods: timeMods}, "time without time zone", "time")
	add(builtin{head: "time", tail: " with time zone", mods: timeMods}, "time with time zone", "timetz")
	add(builtin{head: "timestamp", tail: " without time zone", mods: timeMods}, "timestamp without time zone", "timestamp")
	add(builtin{head: "timestamp", tail: " with time zone", mods: timeMods}, "timestamp with time zone", "timestamptz")
	add(builtin{head: "interval", mods: timeMods}, "interval")
	for _, n := range []string{"json", "jsonb", "uuid", "xml", "money", "inet", "cidr", "macaddr", "macaddr8",
		"point", "line", "lseg", "box", "path", "polygon", "circle", "tsvector", "tsquery", "oid",
		"int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange"} {
		add(builtin{head: n}, n)
	}
}

// maxIdentifier is NAMEDATALEN-1: PostgreSQL truncates longer names.
const maxIdentifier = 63

// New returns the type called name (any spelling builtins knows, or the
// name of a type of the target: a lowercase identifier) with modifiers
// mods, checked against PostgreSQL's limits.
func New(name string, mods ...int) (Type, error) {
	t := Type{name: name, mods: mods}
	if b, ok := builtins[name]; ok {
		switch {
		case len(mods) == 0:
		case b.mods == nil:
			return Type{}, fmt.Errorf("type %s takes no modifiers, got %v", b.head+b.tail, mods)
		default:
			if err := b.mods(mods); err != nil {
				return Type{}, fmt.Errorf("type %s: %w", b.head+b.tail, err)
			}
		}
		return t, nil
	}
	if !isIdentifier(name) {
		return Type{}, fmt.Errorf("type name %q is not a lowercase identifier of at most %d bytes", name, maxIdentifier)
	}
	if len(mods) > 0 {
		return Type{}, fmt.Errorf("type %q: modifiers %v on a type pgsink does not know the limits of", name, mods)
	}
	return t, nil
}

// Array returns an array of t.
func (t Type) Array() Type {
	t.array = true
	return t
}

// String renders t as a column type in DDL.
func (t Type) String() string {
	var b strings.Builder
	bt, known := builtins[t.name]
	if known {
		b.WriteString(bt.head)
	} else {
		// isIdentifier admits no '"': quoting is exact.
		b.WriteString(`"` + t.name + `"`)
	}
	if len(t.mods) > 0 {
		b.WriteByte('(')
		for i, m := range t.mods {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(m))
		}
		b.WriteByte(')')
	}
	b.WriteString(bt.tail)
	if t.array {
		b.WriteString("[]")
	}
	return b.String()
}

// Parse reads a type as String renders it, or in the spellings New takes
// with modifiers in either place: "numeric(12,2)", "timestamp(3) with time
// zone", "integer[]", "mood", `"mood"`. Anything else is an error. What
// reaches DDL is the parsed type rendered again, never s itself.
func Parse(s string) (Type, error) {
	rest, array := s, false
	for {
		r, ok := strings.CutSuffix(rest, "[]")
		if !ok {
			break
		}
		rest, array = r, true
	}
	name := rest
	var mods []int
	if head, after, ok := strings.Cut(rest, "("); ok {
		list, tail, ok := strings.Cut(after, ")")
		if !ok {
			return Type{}, fmt.Errorf("type %q: unbalanced parentheses", s)
		}
		name = head + tail
		for m := range strings.SplitSeq(list, ",") {
			n, err := strconv.Atoi(m)
			if err != nil {
				return Type{}, fmt.Errorf("type %q: modifier %q is not an integer", s, m)
			}
			mods = append(mods, n)
		}
	}
	if q, ok := strings.CutPrefix(name, `"`); ok {
		// Quoted, the name is a type's own, never one of the SQL
		// aliases (a quoted "int" is no type): String would unquote it.
		if name, ok = strings.CutSuffix(q, `"`); !ok || !isIdentifier(name) || known(name) {
			return Type{}, fmt.Errorf("type %q: not a quoted lowercase identifier of a type", s)
		}
	}
	t, err := New(name, mods...)
	if err != nil {
		return Type{}, fmt.Errorf("type %q: %w", s, err)
	}
	t.array = array
	return t, nil
}

func known(name string) bool {
	_, ok := builtins[name]
	return ok
}

func isIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifier || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
