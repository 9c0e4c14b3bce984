package config

import (
	"fmt"
	"strconv"
	"strings"
)

// JSONPath addresses a value inside an outbox payload: "$" is the payload,
// ".name" or "['name']" a member, "[2]" an array element ($.lines[0].sku).
type JSONPath struct {
	Source string
	Steps  []PathStep
}

// PathStep is one member name or one array index.
type PathStep struct {
	Member  string
	Index   int
	IsIndex bool
}

func (p JSONPath) String() string { return p.Source }

func (p *JSONPath) parseScalar(s string) error {
	rest, ok := strings.CutPrefix(s, "$")
	if !ok {
		return fmt.Errorf("must be a JSON path starting with $ (such as $.id); got %q", s)
	}
	var steps []PathStep
	for rest != "" {
		var step PathStep
		var err error
		step, rest, err = nextPathStep(rest)
		if err != nil {
			return fmt.Errorf("is not a valid JSON path: %w; got %q", err, s)
		}
		steps = append(steps, step)
	}
	*p = JSONPath{Source: s, Steps: steps}
	return nil
}

func nextPathStep(s string) (PathStep, string, error) {
	switch {
	case s[0] == '.':
		end := 1
		for end < len(s) && s[end] != '.' && s[end] != '[' {
			end++
		}
		if end == 1 {
			return PathStep{}, "", fmt.Errorf("empty member name")
		}
		return PathStep{Member: s[1:end]}, s[end:], nil
	case strings.HasPrefix(s, "['"):
		end := strings.Index(s[2:], "']")
		if end < 0 {
			return PathStep{}, "", fmt.Errorf("unterminated ['")
		}
		return PathStep{Member: s[2 : 2+end]}, s[2+end+2:], nil
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return PathStep{}, "", fmt.Errorf("unterminated [")
		}
		n, err := strconv.Atoi(s[1:end])
		if err != nil || n < 0 {
			return PathStep{}, "", fmt.Errorf("array index %q is not a non-negative integer", s[1:end])
		}
		return PathStep{Index: n, IsIndex: true}, s[end+1:], nil
	}
	return PathStep{}, "", fmt.Errorf("unexpected %q", s[:1])
}
