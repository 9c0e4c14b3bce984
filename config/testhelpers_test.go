package config

import (
	"errors"
	"strings"
	"testing"
)

// testEnv is the environment every test parses with.
var testEnv = map[string]string{
	"PGSINK_DATABASE_URL": "postgres://pgsink:s3cret-pw@db.example:5432/target?sslmode=disable",
	"KAFKA_PASSWORD":      "kafka-s3cret",
	"EMPTY":               "",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// minimalHeader is the smallest valid configuration without its tables.
const minimalHeader = `kafka:
  bootstrap.servers: 127.0.0.1:9092
  group.id: sink
postgres:
  url: ${PGSINK_DATABASE_URL}
`

// parse parses src named test.yaml and returns its problems, failing the
// test if the error is of another kind.
func parse(t *testing.T, src string) (*Config, Problems) {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(src), lookupTestEnv)
	if err == nil {
		return cfg, nil
	}
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("Parse returned %T (%v), want Problems", err, err)
	}
	return nil, problems
}

// problemTexts drops the "file:line: " prefix, leaving "path: message".
func problemTexts(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.TrimPrefix(p.String(), p.Position.String()+": ")
	}
	return out
}
