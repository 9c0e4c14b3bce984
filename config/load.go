package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the configuration file at path, taking
// ${ENV} references from the process environment. On failure the error is
// Problems (every problem found) or an error reading the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse decodes and validates a configuration; file names it in messages.
// The error, if any, is Problems. It never panics, whatever data holds.
func Parse(file string, data []byte, lookup LookupEnv) (*Config, error) {
	cfg := Default()
	cfg.source = newSource(file)
	d := &decoder{src: cfg.source, lookup: lookup}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, Problems{{Position: Position{File: file}, Message: "the file is empty"}}
	} else if err != nil {
		return nil, Problems{syntaxProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{Position: Position{File: file, Line: extra.Line}, Message: "more than one YAML document; pgsink reads one"}}
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{Position: Position{File: file}, Message: "the file is empty"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Problems{{Position: Position{File: file, Line: root.Line}, Message: "must be a mapping of keys (kafka:, postgres:, tables:, …)"}}
	}
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	cfg.overrideInstanceName(lookup)
	cfg.resolveDerived()
	problems := append(d.problems, cfg.validate()...)
	if len(problems) > 0 {
		return nil, problems.Sorted()
	}
	return &cfg, nil
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns the YAML parser's "yaml: line N: msg" into a Problem.
func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Position: Position{File: file, Line: line}, Message: "invalid YAML: " + m[2]}
	}
	return Problem{Position: Position{File: file}, Message: "invalid YAML: " + msg}
}

// Position returns where a key path ("tables[1].key") is in the file, or
// the nearest enclosing key present, for messages about checks made after
// loading.
func (c *Config) Position(path string) Position {
	if c.source == nil {
		return Position{}
	}
	return c.source.position(path)
}

// Problem makes a Problem at a key path, for checks made after loading
// (such as against the target catalog).
func (c *Config) Problem(path, format string, args ...any) Problem {
	return Problem{Position: c.Position(path), Path: path, Message: fmt.Sprintf(format, args...)}
}

// File is the name the configuration was loaded from.
func (c *Config) File() string {
	if c.source == nil {
		return ""
	}
	return c.source.file
}
