package sink

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The class a dead letter is filed under names what failed.
func TestErrorClass(t *testing.T) {
	typeErr := fmt.Errorf("route: %w", &TypeError{Table: "public.t", Column: "c", Err: errors.New("bad type")})
	for _, tc := range []struct {
		err         error
		undecodable bool
		want        string
	}{
		{&PanicError{Value: "x"}, true, "panic"},
		{typeErr, true, "schema"},
		{errors.New("not JSON"), true, "decode"},
		{&pgconn.PgError{Code: "22P02"}, false, "postgres:22P02"},
		{errors.New("cannot encode"), false, "apply"},
	} {
		if got := errorClass(tc.err, tc.undecodable); got != tc.want {
			t.Errorf("errorClass(%v, %v) = %q, want %q", tc.err, tc.undecodable, got, tc.want)
		}
	}
}
