package stacktest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
)

// T is a Sandbox bound to a test: every failure fails the test, and Cleanup
// tears the sandbox down.
type T struct {
	*Sandbox
	tb testing.TB
}

// New loads the stack's addresses, checks that every service answers, and
// creates a sandbox for tb. It fails tb (never skips) when the stack is down.
func New(tb testing.TB) *T {
	tb.Helper()
	env, err := LoadEnv()
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	ctx := context.Background()
	if err := env.Check(ctx); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	sb, err := NewSandbox(ctx, env, NewID(tb.Name()))
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Close(ctx); err != nil {
			tb.Errorf("stacktest: teardown of %s: %v", sb.ID, err)
		}
	})
	return &T{Sandbox: sb, tb: tb}
}

// Source opens a connection to the sandbox's source database as the
// debezium role; it is closed at cleanup.
func (s *T) Source() *pgx.Conn {
	s.tb.Helper()
	conn, err := pgx.Connect(context.Background(), s.SourceURL)
	if err != nil {
		s.tb.Fatalf("stacktest: connect to %s: %v", s.SourceDB, err)
	}
	s.tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL on the sandbox's source database.
func (s *T) Exec(sql string, args ...any) {
	s.tb.Helper()
	conn, err := pgx.Connect(context.Background(), s.SourceURL)
	if err != nil {
		s.tb.Fatalf("stacktest: connect to %s: %v", s.SourceDB, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		s.tb.Fatalf("stacktest: exec on %s: %v\nSQL: %s", s.SourceDB, err, sql)
	}
}

// RegisterDebezium registers a connector (see Sandbox.RegisterDebezium).
func (s *T) RegisterDebezium(name string, overrides map[string]string) string {
	s.tb.Helper()
	full, err := s.Sandbox.RegisterDebezium(context.Background(), name, overrides)
	if err != nil {
		s.tb.Fatalf("stacktest: %v", err)
	}
	return full
}

// RegisterDebeziumWithout registers a connector (see Sandbox.RegisterDebeziumWithout).
func (s *T) RegisterDebeziumWithout(name string, without []string, overrides map[string]string) string {
	s.tb.Helper()
	full, err := s.Sandbox.RegisterDebeziumWithout(context.Background(), name, without, overrides)
	if err != nil {
		s.tb.Fatalf("stacktest: %v", err)
	}
	return full
}

// ReadUntil reads the sandbox's topics until done is true, failing the test
// after timeout with what was read.
func (s *T) ReadUntil(timeout time.Duration, done func([]recording.Record) bool) []recording.Record {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	records, err := ReadUntil(ctx, s.Env.KafkaBootstrap, s.TopicPrefix+".", done)
	if err != nil {
		for _, r := range records {
			s.tb.Logf("read %s[%d]@%d key=%s", r.Topic, r.Partition, r.Offset, r.Key)
		}
		s.tb.Fatalf("stacktest: %v", err)
	}
	return records
}
