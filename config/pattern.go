package config

import (
	"fmt"
	"regexp"
)

// Pattern is a topic_pattern: a Go regular expression that must match the
// whole topic name (it is anchored at both ends).
type Pattern struct {
	Source string
	re     *regexp.Regexp
}

// IsZero reports whether no pattern was given.
func (p Pattern) IsZero() bool { return p.re == nil }

// Match reports whether topic matches the whole pattern.
func (p Pattern) Match(topic string) bool { return p.re != nil && p.re.MatchString(topic) }

func (p Pattern) String() string { return p.Source }

func (p *Pattern) parseScalar(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	// Compiled alone first, so that a pattern such as "a)|(b" cannot escape
	// the anchoring group below.
	if _, err := regexp.Compile(s); err != nil {
		return fmt.Errorf("is not a valid regular expression: %w", err)
	}
	re, err := regexp.Compile(`^(?:` + s + `)$`)
	if err != nil {
		return fmt.Errorf("is not a valid regular expression: %w", err)
	}
	*p = Pattern{Source: s, re: re}
	return nil
}

// groups lists the names of the pattern's named capture groups.
func (p Pattern) groups() []string {
	if p.re == nil {
		return nil
	}
	var out []string
	for _, name := range p.re.SubexpNames() {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}
