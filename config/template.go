package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// TargetTemplate is a target whose names are derived, per topic or per
// record, from ${…} variables: a topic_pattern's named capture groups,
// ${topic}, and from the record ${source.schema}, ${source.table} and
// ${header.NAME}. Literal text is read as unquoted SQL (folded to lower
// case); a variable's value is taken as it is, a quoted identifier.
type TargetTemplate struct {
	Source string
	schema []segment
	table  []segment
	// headers and needsRecord are derived once at parsing: the router
	// asks them of every record.
	headers     []string
	fields      []string
	needsRecord bool
}

// segment is literal text or, when variable is set, a variable.
type segment struct {
	literal  string
	variable string
}

// Template variables taken from the record rather than the topic.
const (
	varTopic        = "topic"
	varSourceSchema = "source.schema"
	varSourceTable  = "source.table"
	varHeaderPrefix = "header."
	varFieldPrefix  = "field."
)

func isTemplate(s string) bool { return strings.Contains(s, "${") }

func parseTemplate(s string) (*TargetTemplate, error) {
	t := &TargetTemplate{Source: s}
	parts := [][]segment{nil}
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "${") {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("has an unterminated ${ in %q", s)
			}
			name := s[i+2 : i+2+end]
			if err := checkVariable(name); err != nil {
				return nil, err
			}
			parts[len(parts)-1] = append(parts[len(parts)-1], segment{variable: name})
			i += 3 + end
			continue
		}
		c := s[i]
		switch {
		case c == '.':
			parts = append(parts, nil)
		case isUnquotedIdentByte(c, false):
			parts[len(parts)-1] = append(parts[len(parts)-1], segment{literal: strings.ToLower(string(c))})
		default:
			return nil, fmt.Errorf("has %q outside a ${…} variable; literal text may hold only letters, digits, _ and $ (got %q)", string(c), s)
		}
		i++
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("must be schema-qualified with exactly one literal dot (schema.table); got %q", s)
	}
	if len(parts[0]) == 0 || len(parts[1]) == 0 {
		return nil, fmt.Errorf("has an empty schema or table part; got %q", s)
	}
	t.schema, t.table = mergeLiterals(parts[0]), mergeLiterals(parts[1])
	for _, v := range t.Variables() {
		if h, ok := strings.CutPrefix(v, varHeaderPrefix); ok {
			t.headers = append(t.headers, h)
		}
		if f, ok := strings.CutPrefix(v, varFieldPrefix); ok {
			t.fields = append(t.fields, f)
		}
		t.needsRecord = t.needsRecord || !isCaptureVariable(v) && v != varTopic
	}
	return t, nil
}

// mergeLiterals joins consecutive literal bytes into one segment.
func mergeLiterals(in []segment) []segment {
	var out []segment
	for _, s := range in {
		if n := len(out); s.variable == "" && n > 0 && out[n-1].variable == "" {
			out[n-1].literal += s.literal
			continue
		}
		out = append(out, s)
	}
	return out
}

func checkVariable(name string) error {
	switch {
	case name == varTopic, name == varSourceSchema, name == varSourceTable:
		return nil
	case strings.HasPrefix(name, varHeaderPrefix), strings.HasPrefix(name, varFieldPrefix):
		if name == varHeaderPrefix || name == varFieldPrefix {
			return fmt.Errorf("${%s} names nothing (write ${header.NAME} or ${field.NAME})", name)
		}
		return nil
	case strings.HasPrefix(name, "source."):
		return fmt.Errorf("${%s} is not a template variable: of the source block only ${source.schema} and ${source.table} are", name)
	case isEnvName(name):
		return nil // a capture group, checked against the pattern
	}
	return fmt.Errorf("${%s} is not a template variable (a capture group name, topic, source.schema, source.table, header.NAME or field.NAME)", name)
}

// Variables lists the template's variables in order, each once.
func (t *TargetTemplate) Variables() []string {
	var out []string
	for _, seg := range append(append([]segment(nil), t.schema...), t.table...) {
		if seg.variable != "" && !contains(out, seg.variable) {
			out = append(out, seg.variable)
		}
	}
	return out
}

// CaptureGroups lists the variables that name topic_pattern capture groups.
func (t *TargetTemplate) CaptureGroups() []string {
	var out []string
	for _, v := range t.Variables() {
		if isCaptureVariable(v) {
			out = append(out, v)
		}
	}
	return out
}

func isCaptureVariable(v string) bool {
	return v != varTopic && v != varSourceSchema && v != varSourceTable && !strings.HasPrefix(v, varHeaderPrefix) && !strings.HasPrefix(v, varFieldPrefix)
}

// Headers lists the names of the headers the template reads.
func (t *TargetTemplate) Headers() []string { return t.headers }

// Fields lists the names of the outbox envelope fields the template reads.
func (t *TargetTemplate) Fields() []string { return t.fields }

// NeedsRecord reports whether the target depends on the record, not only
// on its topic: then each record is routed by its own values.
func (t *TargetTemplate) NeedsRecord() bool { return t.needsRecord }

// RecordValues are the values of one record a template may use.
type RecordValues struct {
	SourceSchema string
	SourceTable  string
	// Header returns a header's value; nil when the record has none.
	Header func(name string) (string, bool)
	// Field returns an outbox envelope field's value, placed there by the
	// Outbox Event Router's table.fields.additional.placement.
	Field func(name string) (string, bool)
}

// TemplateError is a target template that yields no valid name for a topic
// or a record: the record cannot be routed.
type TemplateError struct {
	Table    string // key path of the table entry
	Template string
	Topic    string
	Reason   string
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("%s: target %q for topic %q: %s", e.Table, e.Template, e.Topic, e.Reason)
}

// expand derives the target from the topic's variables and, for templates
// that need it, the record's.
func (t *TargetTemplate) expand(topicVars map[string]string, rec *RecordValues) (TableName, string) {
	schema, why := t.part(t.schema, topicVars, rec)
	if why != "" {
		return TableName{}, why
	}
	name, why := t.part(t.table, topicVars, rec)
	if why != "" {
		return TableName{}, why
	}
	return TableName{Schema: schema, Name: name}, ""
}

func (t *TargetTemplate) part(segs []segment, topicVars map[string]string, rec *RecordValues) (string, string) {
	if len(segs) == 1 && segs[0].variable == "" {
		return segs[0].literal, ""
	}
	var b strings.Builder
	for _, seg := range segs {
		if seg.variable == "" {
			b.WriteString(seg.literal)
			continue
		}
		v, why := lookupVariable(seg.variable, topicVars, rec)
		if why != "" {
			return "", why
		}
		if strings.Contains(v, ".") {
			return "", fmt.Sprintf("${%s} is %q, whose dot makes the schema.table name ambiguous", seg.variable, v)
		}
		b.WriteString(v)
	}
	name := b.String()
	switch {
	case name == "":
		return "", "yields an empty name"
	case len(name) > maxIdentifierBytes:
		return "", fmt.Sprintf("yields %q, longer than %d bytes, which PostgreSQL would truncate (two names could collide)", name, maxIdentifierBytes)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return "", fmt.Sprintf("yields %q, which is not a valid identifier (invalid UTF-8 or a NUL byte)", name)
	}
	return name, ""
}

func lookupVariable(name string, topicVars map[string]string, rec *RecordValues) (string, string) {
	if v, ok := topicVars[name]; ok {
		if v == "" {
			return "", fmt.Sprintf("capture group ${%s} matched nothing", name)
		}
		return v, ""
	}
	if isCaptureVariable(name) {
		return "", fmt.Sprintf("capture group ${%s} is missing from the topic_pattern", name)
	}
	if rec == nil {
		return "", fmt.Sprintf("${%s} comes from the record", name)
	}
	var v string
	switch {
	case name == varSourceSchema:
		v = rec.SourceSchema
	case name == varSourceTable:
		v = rec.SourceTable
	default:
		what, key, get := "header", strings.TrimPrefix(name, varHeaderPrefix), rec.Header
		if f, ok := strings.CutPrefix(name, varFieldPrefix); ok {
			what, key, get = "string envelope field (outbox events only)", f, rec.Field
		}
		var ok bool
		if get != nil {
			v, ok = get(key)
		}
		if !ok {
			return "", fmt.Sprintf("the record has no %s %q", what, key)
		}
	}
	if v == "" {
		return "", fmt.Sprintf("${%s} is empty in the record", name)
	}
	return v, ""
}

// Target is a table entry's target: a fixed schema-qualified name, or a
// template deriving one per topic or record (then TableName is zero until
// the Router derives it).
type Target struct {
	TableName
	Template *TargetTemplate
}

// IsZero reports whether no target was given.
func (t Target) IsZero() bool { return t.TableName.IsZero() && t.Template == nil }

// String renders the target as written in the configuration.
func (t Target) String() string {
	if t.Template != nil && t.TableName.IsZero() {
		return t.Template.Source
	}
	return t.TableName.String()
}

// MarshalYAML renders the target as written.
func (t Target) MarshalYAML() (any, error) { return t.String(), nil }

// parseRaw reads a target without ${ENV} expansion: its ${…} are template
// variables (a target is no secret).
func (t *Target) parseRaw(s string) error {
	if !isTemplate(s) {
		return t.TableName.parseScalar(s)
	}
	tpl, err := parseTemplate(s)
	if err != nil {
		return err
	}
	*t = Target{Template: tpl}
	return nil
}
