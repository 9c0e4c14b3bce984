package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is where a key stands in a configuration file. Line is 0 when
// the file could not be read far enough to know it.
type Position struct {
	File string
	Line int
}

func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Problem is one thing wrong with a configuration, at a key path such as
// "tables[1].deletes" (empty for the file as a whole).
type Problem struct {
	Position Position
	Path     string
	Message  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Position.String() + ": " + p.Message
	}
	return p.Position.String() + ": " + p.Path + ": " + p.Message
}

// Problems is every problem found in one configuration; as an error it
// lists them one a line, ordered by line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sorted orders problems by line, then key path, so that output is stable
// whatever order the checks ran in.
func (ps Problems) Sorted() Problems {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Position.Line, b.Position.Line), strings.Compare(a.Path, b.Path))
	})
	return out
}
