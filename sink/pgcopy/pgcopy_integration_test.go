//go:build integration

package pgcopy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/sink/pgcopy"
	"github.com/pgsink/pgsink/test/stacktest"
)

const columnsDDL = `(i8 bigint, i4 integer, t text, n numeric(14,2), ts timestamptz, j jsonb,
	b bytea, ok boolean, c "char", a integer[], d date, u uuid, "Odd ""name""; x" text)`

var columns = []string{"i8", "i4", "t", "n", "ts", "j", "b", "ok", "c", "a", "d", "u", `Odd "name"; x`}

// randomRow is a row of the Go values the Debezium decoder produces for
// these columns, with NULLs, typed nils and a uuid given as text (which
// only the COPY's text fallback encodes).
func randomRow(r *rand.Rand, i int) []any {
	row := []any{
		int64(r.Int64()), int32(r.Int32()), fmt.Sprintf("row %d ✓", i),
		pgtype.Numeric{Int: big.NewInt(r.Int64N(1e12) - 5e11), Exp: -2, Valid: true},
		time.Unix(r.Int64N(4e9), r.Int64N(1e9)/1000*1000),
		json.RawMessage(fmt.Sprintf(`{"i": %d, "tags": ["a", "b"], "nested": {"x": null}}`, i)),
		[]byte(fmt.Sprintf("bytes %d", i)), r.IntN(2) == 1, byte('a' + i%26),
		[]int32{int32(i), -1, 0}, time.Date(2000+i%50, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC),
		fmt.Sprintf("%08x-0000-4000-8000-%012x", i, r.Int64N(1<<40)), "plain",
	}
	for j := range row {
		switch r.IntN(12) {
		case 0:
			row[j] = nil
		case 1:
			switch row[j].(type) {
			case []byte:
				row[j] = []byte(nil)
			case json.RawMessage:
				row[j] = json.RawMessage(nil)
			case int64:
				row[j] = (*int64)(nil)
			}
		}
	}
	return row
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	pgcopy.RegisterTypes(conn.TypeMap(), 2)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestIntegrationCopyMatchesPgx copies the same rows with pgx's CopyFrom and
// with pgcopy into two tables and compares what PostgreSQL stored, row for
// row and column for column.
func TestIntegrationCopyMatchesPgx(t *testing.T) {
	ctx := context.Background()
	url := stacktest.TargetDatabase(t, "CREATE TABLE public.by_pgx "+columnsDDL, "CREATE TABLE public.by_pgcopy "+columnsDDL,
		"GRANT SELECT, INSERT ON public.by_pgx, public.by_pgcopy TO pgsink")
	conn := connect(t, url)
	r := rand.New(rand.NewPCG(1, 2))
	const n = 3000
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = randomRow(r, i)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"public", "by_pgx"}, columns, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("pgx CopyFrom: %v", err)
	}
	// In two COPYs: the second reuses the first's column types.
	for _, part := range [][][]any{rows[:n/3], rows[n/3:]} {
		copied, err := pgcopy.Copy(ctx, conn, pgx.Identifier{"public", "by_pgcopy"}, columns, part)
		if err != nil {
			t.Fatalf("pgcopy: %v", err)
		}
		if copied != int64(len(part)) {
			t.Fatalf("pgcopy copied %d rows of %d", copied, len(part))
		}
	}
	var nulls int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.by_pgcopy WHERE u IS NULL OR b IS NULL`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls == 0 || nulls == n {
		t.Fatalf("%d rows of %d have NULLs: the rows do not exercise both", nulls, n)
	}
	var onlyPgx, onlyPgcopy int
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM (SELECT * FROM public.by_pgx EXCEPT ALL SELECT * FROM public.by_pgcopy) a),
		(SELECT count(*) FROM (SELECT * FROM public.by_pgcopy EXCEPT ALL SELECT * FROM public.by_pgx) b)`).Scan(&onlyPgx, &onlyPgcopy)
	if err != nil {
		t.Fatal(err)
	}
	if onlyPgx != 0 || onlyPgcopy != 0 {
		t.Fatalf("%d rows only in pgx's copy, %d only in pgcopy's", onlyPgx, onlyPgcopy)
	}
}

// TestIntegrationCopyEncodeError fails a COPY on a value with no encoding:
// the error names the row and column, nothing is copied, and the
// connection goes on working.
func TestIntegrationCopyEncodeError(t *testing.T) {
	ctx := context.Background()
	url := stacktest.TargetDatabase(t, "CREATE TABLE public.t (id bigint, n bigint)", "GRANT SELECT, INSERT ON public.t TO pgsink",
		"CREATE TABLE public.locked (id bigint, n bigint)", "GRANT SELECT ON public.locked TO pgsink")
	conn := connect(t, url)
	rows := make([][]any, 5000)
	for i := range rows {
		rows[i] = []any{int64(i), int64(i)}
	}
	rows[4321][1] = "not a number"
	// The server refuses this COPY before it reads a row: its error, not
	// the row's, is the answer.
	_, err := pgcopy.Copy(ctx, conn, pgx.Identifier{"public", "locked"}, []string{"id", "n"}, rows)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("COPY into a table without INSERT: got %v, want permission denied", err)
	}
	_, err = pgcopy.Copy(ctx, conn, pgx.Identifier{"public", "t"}, []string{"id", "n"}, rows)
	var ee *pgcopy.EncodeError
	if !errors.As(err, &ee) || ee.Row != 4321 || ee.Column != "n" {
		t.Fatalf("got %v, want an EncodeError for row 4321, column n", err)
	}
	rows[4321][1] = int64(4321)
	if _, err := pgcopy.Copy(ctx, conn, pgx.Identifier{"public", "t"}, []string{"id", "n"}, rows); err != nil {
		t.Fatalf("the COPY after the failed one: %v", err)
	}
	var count, sum int64
	if err := conn.QueryRow(ctx, "SELECT count(*), sum(n) FROM public.t").Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != 5000 || sum != 4999*5000/2 {
		t.Fatalf("%d rows summing to %d; want only the second COPY's 5000", count, sum)
	}
}
