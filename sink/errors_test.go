package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassifyInternalErrors: an internal error (XX000) raised while a
// type's input function reads a value is the record's; any other is
// fatal. The contexts are PostgreSQL 15's (bind_param_error_callback,
// CopyFromErrorCallback), as the integration test
// TestIntegrationInputInternalErrorContext reads them from the server.
func TestClassifyInternalErrors(t *testing.T) {
	for where, want := range map[string]class{
		`unnamed portal parameter $2 = '...'`:                         classRecord,
		`unnamed portal parameter $2`:                                 classRecord,
		`portal "p1" parameter $7 = '{"a":"1"}'`:                      classRecord,
		`COPY fidelity, line 3, column c_hstore: "{""a"":""1""}"`:     classRecord,
		`COPY fidelity, line 3, column c_hstore`:                      classRecord,
		"SQL function \"f\" statement 1\nunnamed portal parameter $1": classRecord,
		``:                                      classFatal,
		`COPY fidelity, line 3`:                 classFatal, // a trigger or index, not a value
		`PL/pgSQL function f() line 3 at RAISE`: classFatal,
	} {
		err := fmt.Errorf("stage rows: %w", &pgconn.PgError{Code: "XX000", Message: `Syntax error near "d" at position 21`, Where: where})
		if got := classify(err); got != want {
			t.Errorf("XX000 with context %q: class %d, want %d", where, got, want)
		}
	}
}

// TestUnavailable: the errors of a target that is down — restarting,
// recovering, shutting down, the connection lost or refused — are retried
// for as long as they last; conflicts and everything else are not
// "unavailable".
func TestUnavailable(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"cannot connect now (recovery)": {&pgconn.PgError{Code: "57P03", Message: "the database system is not yet accepting connections"}, true},
		"admin shutdown":                {&pgconn.PgError{Code: "57P01"}, true},
		"crash shutdown":                {&pgconn.PgError{Code: "57P02"}, true},
		"connection failure":            {&pgconn.PgError{Code: "08006"}, true},
		"connection refused":            {fmt.Errorf("apply: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		"lost connection":               {fmt.Errorf("apply: %w", io.ErrUnexpectedEOF), true},
		"commit without answer":         {&UnknownCommitError{Commit: io.EOF, Resolve: io.EOF}, true},
		// After the target was reached, a name DNS no longer knows is an
		// outage (a failover moving it, a headless Service's pod
		// restarting); the start reports it instead (cmd/pgsink).
		"DNS: no such host":     {fmt.Errorf("connect: %w", &net.DNSError{Err: "no such host", Name: "pg", IsNotFound: true}), true},
		"DNS: server failure":   {fmt.Errorf("connect: %w", &net.DNSError{Err: "server misbehaving", Name: "pg", IsTemporary: true}), true},
		"serialization failure": {&pgconn.PgError{Code: "40001"}, false},
		"deadlock":              {&pgconn.PgError{Code: "40P01"}, false},
		"lock timeout":          {&pgconn.PgError{Code: "55P03"}, false},
		"statement timeout":     {&pgconn.PgError{Code: "57014"}, false},
		"too many connections":  {&pgconn.PgError{Code: "53300"}, false},
		"bad password":          {&pgconn.PgError{Code: "28P01"}, false},
		"a record's data":       {&pgconn.PgError{Code: "22P02"}, false},
		"cancelled":             {context.Canceled, false},
	} {
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable = %v, want %v", name, got, c.want)
		}
	}
}

// TestRetryOutlastsAnUnavailableTarget: attempts that found the target
// down do not count against MaxAttempts — a PostgreSQL restart longer than
// the attempts' waits stopped every instance — and OnUnavailable hears of
// each with how long it has lasted; a conflict still gives up after
// MaxAttempts.
func TestRetryOutlastsAnUnavailableTarget(t *testing.T) {
	var heard []time.Duration
	a := &Applier{opts: Options{Retry: Retry{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond,
		OnUnavailable: func(_ error, since time.Duration) { heard = append(heard, since) }}}}
	down := &pgconn.PgError{Code: "57P03", Message: "the database system is not yet accepting connections"}
	calls := 0
	st := &Stats{}
	err := a.retry(context.Background(), st, func() error {
		calls++
		if calls <= 20 {
			return down
		}
		return nil
	})
	if err != nil || calls != 21 {
		t.Fatalf("retry across 20 unavailable attempts with MaxAttempts 3: %v after %d calls, want success at the 21st", err, calls)
	}
	if len(heard) != 20 || !slices.IsSorted(heard) {
		t.Fatalf("OnUnavailable heard %d attempts (%v), want 20 with a growing duration", len(heard), heard)
	}
	if st.Retries != 20 {
		t.Fatalf("Stats.Retries %d, want 20", st.Retries)
	}

	calls = 0
	conflict := &pgconn.PgError{Code: "40001"}
	err = a.retry(context.Background(), &Stats{}, func() error { calls++; return conflict })
	if !errors.Is(err, conflict) || calls != 3 {
		t.Fatalf("a conflict every attempt: %v after %d calls, want it back after MaxAttempts (3)", err, calls)
	}

	// Interleaved: the unavailable attempts between conflicts do not count.
	calls = 0
	err = a.retry(context.Background(), &Stats{}, func() error {
		calls++
		if calls%2 == 1 {
			return down
		}
		return conflict
	})
	if !errors.Is(err, conflict) || calls != 6 {
		t.Fatalf("conflicts between unavailable attempts: %v after %d calls, want the third conflict at call 6", err, calls)
	}
}
