package config

import (
	"fmt"
	"strings"
)

// maxIdentifierBytes is PostgreSQL's NAMEDATALEN - 1: longer names are
// silently truncated by the server, so two long names could collide.
const maxIdentifierBytes = 63

// TableName is a schema-qualified table name, written as in SQL: unquoted
// parts are folded to lower case, double-quoted parts are kept as they are
// ("My Schema"."Order"). Schema and Name hold the names themselves, unquoted;
// the sink quotes them with pgx.Identifier (I8).
type TableName struct {
	Schema string
	Name   string
}

// IsZero reports whether no name was given.
func (t TableName) IsZero() bool { return t.Schema == "" && t.Name == "" }

// String renders the name as it would be written in the configuration.
func (t TableName) String() string {
	if t.IsZero() {
		return ""
	}
	return quoteIfNeeded(t.Schema) + "." + quoteIfNeeded(t.Name)
}

func (t *TableName) parseScalar(s string) error {
	parts, err := splitQualifiedName(s)
	if err != nil {
		return err
	}
	if len(parts) != 2 {
		return fmt.Errorf("must be schema-qualified (schema.table); got %q", s)
	}
	*t = TableName{Schema: parts[0], Name: parts[1]}
	return nil
}

// splitQualifiedName splits a dotted SQL name into its parts.
func splitQualifiedName(s string) ([]string, error) {
	var parts []string
	rest := s
	for {
		part, tail, err := nextNamePart(rest)
		if err != nil {
			return nil, fmt.Errorf("is not a valid name: %w; got %q", err, s)
		}
		if len(part) > maxIdentifierBytes {
			return nil, fmt.Errorf("has a part longer than %d bytes, which PostgreSQL would truncate: %q", maxIdentifierBytes, part)
		}
		parts = append(parts, part)
		if tail == "" {
			return parts, nil
		}
		if tail[0] != '.' {
			return nil, fmt.Errorf("is not a valid name: unexpected %q after %q; got %q", tail[:1], part, s)
		}
		rest = tail[1:]
	}
}

// nextNamePart reads one quoted or unquoted identifier from the start of s.
func nextNamePart(s string) (part, tail string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("empty part")
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != '"' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			if b.Len() == 0 {
				return "", "", fmt.Errorf("empty quoted part")
			}
			return b.String(), s[i+1:], nil
		}
		return "", "", fmt.Errorf("unterminated quote")
	}
	end := 0
	for end < len(s) && isUnquotedIdentByte(s[end], end == 0) {
		end++
	}
	if end == 0 {
		return "", "", fmt.Errorf("%q cannot start an unquoted name (quote it)", s[:1])
	}
	return strings.ToLower(s[:end]), s[end:], nil
}

func isUnquotedIdentByte(c byte, first bool) bool {
	switch {
	case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= 0x80:
		return true
	case c >= '0' && c <= '9', c == '$':
		return !first
	}
	return false
}

// quoteIfNeeded renders name unquoted when SQL would read it back unchanged.
func quoteIfNeeded(name string) string {
	plain := name != ""
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isUnquotedIdentByte(c, i == 0) || (c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// ParseTableName parses a schema-qualified name written as in the
// configuration (for command-line flags).
func ParseTableName(s string) (TableName, error) {
	var t TableName
	err := t.parseScalar(s)
	return t, err
}
