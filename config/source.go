package config

import (
	"fmt"
	"strings"
)

// source is the file a configuration came from and the line of every key
// path that was present in it.
type source struct {
	file  string
	lines map[string]int
	// failed holds the paths whose value could not be decoded: checks that
	// relate keys skip them rather than add a second message.
	failed map[string]bool
}

func newSource(file string) *source {
	return &source{file: file, lines: map[string]int{}, failed: map[string]bool{}}
}

func (s *source) present(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// decodeFailed reports whether path or a key enclosing it failed to decode.
func (s *source) decodeFailed(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if s.failed[p] {
			return true
		}
	}
	return false
}

// position returns the line of path or, for a key that is missing, of the
// nearest enclosing key that is present.
func (s *source) position(path string) Position {
	for p := path; ; p = parentPath(p) {
		if line, ok := s.lines[p]; ok {
			return Position{File: s.file, Line: line}
		}
		if p == "" {
			return Position{File: s.file}
		}
	}
}

func (s *source) problem(path, format string, args ...any) Problem {
	return Problem{Position: s.position(path), Path: path, Message: fmt.Sprintf(format, args...)}
}

// parentPath strips the last ".key" or "[i]" from a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
