package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarParser is implemented by the types that parse themselves from one
// YAML scalar (durations, sizes, names, patterns, enums).
type scalarParser interface {
	parseScalar(s string) error
}

// defaulter is implemented by structs whose elements in a list start from
// defaults (each entry of tables:).
type defaulter interface {
	setDefaults()
}

// decoder walks the YAML node tree into the config structs by their yaml
// tags. Unlike yaml.Unmarshal it reports every problem, not the first, and
// records the line of every key path for checks made later.
type decoder struct {
	src      *source
	lookup   LookupEnv
	problems Problems
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.src.failed[path] = true
	d.problems = append(d.problems, Problem{
		Position: Position{File: d.src.file, Line: line},
		Path:     path,
		Message:  fmt.Sprintf(format, args...),
	})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		// Aliases are refused rather than followed: an alias bomb would
		// make this walk exponential, and no key needs them.
		d.fail(n, path, "YAML aliases (*%s) are not supported", n.Value)
		return
	}
	if isNull(n) {
		return // an empty value keeps the default
	}
	if p, ok := v.Addr().Interface().(rawParser); ok {
		d.decodeRaw(n, path, p.parseRaw)
		return
	}
	if p, ok := v.Addr().Interface().(scalarParser); ok {
		d.decodeScalar(n, path, p.parseScalar)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		d.decodeScalar(n, path, func(s string) error { v.SetString(s); return nil })
	case reflect.Int:
		d.decodeScalar(n, path, func(s string) error {
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("must be an integer; got %q", s)
			}
			v.SetInt(i)
			return nil
		})
	case reflect.Bool:
		d.decodeScalar(n, path, func(s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("must be true or false; got %q", s)
			}
			v.SetBool(b)
			return nil
		})
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// rawParser is implemented by the types whose text is not ${ENV}-expanded.
type rawParser interface {
	parseRaw(s string) error
}

func (d *decoder) decodeRaw(n *yaml.Node, path string, parse func(string) error) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be a single value, not a %s", kindName(n))
		return
	}
	if err := parse(n.Value); err != nil {
		d.fail(n, path, "%s", err)
	}
}

// decodeScalar expands ${ENV} references and hands the text to parse. A
// message about an expanded value shows the reference, never the value,
// which may be a secret.
func (d *decoder) decodeScalar(n *yaml.Node, path string, parse func(string) error) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be a single value, not a %s", kindName(n))
		return
	}
	text, err := expand(n.Value, d.lookup)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	if err := parse(text); err != nil {
		msg := err.Error()
		if text != n.Value && text != "" {
			msg = strings.ReplaceAll(msg, strconv.Quote(text), strconv.Quote(n.Value))
			msg = strings.ReplaceAll(msg, text, n.Value)
		}
		d.fail(n, path, "%s", msg)
	}
}

// removedKeys are keys pgsink once accepted and no longer does, with what to
// do instead: a file that still sets one is refused with that advice rather
// than with a bare "unknown key".
var removedKeys = map[string]string{
	"errors.dead_letter.table": "is no longer a setting (it was never honoured): dead letters always go to " +
		"<postgres.schema>.dead_letters; delete this line (postgres.schema moves every pgsink table, dead letters included)",
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of keys, not a %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	d.eachKey(n, path, func(key string, keyNode, value *yaml.Node, keyPath string) {
		i, ok := fields[key]
		if why, removed := removedKeys[keyPath]; removed && !ok {
			d.fail(keyNode, keyPath, "%s", why)
			return
		}
		if !ok {
			d.fail(keyNode, keyPath, "unknown key%s", suggest(key, fields))
			return
		}
		d.decode(value, v.Field(i), keyPath)
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of keys, not a %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.eachKey(n, path, func(key string, _, value *yaml.Node, keyPath string) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(value, elem, keyPath)
		v.SetMapIndex(reflect.ValueOf(key), elem)
	})
}

// eachKey calls fn for every key of a mapping, after refusing duplicate and
// non-scalar keys, and records each key's line.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(key string, keyNode, value *yaml.Node, keyPath string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, value := n.Content[i], n.Content[i+1]
		if keyNode.Kind != yaml.ScalarNode {
			d.fail(keyNode, path, "keys must be single values, not a %s", kindName(keyNode))
			continue
		}
		key := keyNode.Value
		keyPath := joinPath(path, key)
		if first, dup := seen[key]; dup {
			d.fail(keyNode, keyPath, "duplicate key (first on line %d)", first)
			continue
		}
		seen[key] = keyNode.Line
		d.src.lines[keyPath] = keyNode.Line
		fn(key, keyNode, value, keyPath)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, not a %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elemPath := indexPath(path, i)
		d.src.lines[elemPath] = item.Line
		elem := out.Index(i)
		if def, ok := elem.Addr().Interface().(defaulter); ok {
			def.setDefaults()
		}
		d.decode(item, elem, elemPath)
	}
	v.Set(out)
}

// structFields maps yaml tag names to field indexes; fields tagged "-" are
// not configuration.
func structFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	return fields
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "single value"
}

// suggest names the known key closest to a misspelt one.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
