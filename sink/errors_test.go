package sink

import (
	"fmt"
	"testing"

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
