//go:build integration

package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationInputInternalErrorContext: hstore's input function refuses
// Debezium's JSON text with an internal error (XX000), in a bound parameter
// and in a COPY field; PostgreSQL's context says a value was being read, so
// the record is at fault (classRecord), not the server.
func TestIntegrationInputInternalErrorContext(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stacktest.OwnedTargetDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION hstore; CREATE TABLE h (id int, v hstore)`); err != nil {
		t.Fatal(err)
	}
	bad := `{"a":"1","b":null,"c d":"e"}`
	_, bindErr := conn.Exec(ctx, `INSERT INTO h (id, v) VALUES (1, $1)`, bad)
	_, copyErr := conn.PgConn().CopyFrom(ctx, strings.NewReader("1\t"+bad+"\n"), `COPY h (id, v) FROM STDIN`)
	for name, err := range map[string]error{"bound parameter": bindErr, "COPY": copyErr} {
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "XX000" {
			t.Fatalf("%s: got %v, want hstore's internal error XX000", name, err)
		}
		if got := classify(err); got != classRecord {
			t.Errorf("%s: %v (context %q) is class %d, want the record's (%d)", name, err, pg.Where, got, classRecord)
		}
	}
}
