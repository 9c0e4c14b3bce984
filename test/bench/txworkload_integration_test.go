//go:build integration

package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// bench_rounds keeps finding its rows by the primary key after the table
// has grown past the size at which the session cached the procedure's
// plans. With a generic plan made on the nearly empty table, every later
// round's UPDATE scanned the whole table, and producing the 1,000,000-event
// workload slowed down round after round.
func TestIntegrationRoundsUseTheKeyAsTheTableGrows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("bench_rounds_plans_%d", time.Now().UnixNano())
	if err := stacktest.CreateDatabase(ctx, env.AdminURL, db, "postgres"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stacktest.DropDatabase(context.Background(), env.AdminURL, db) })
	url, err := stacktest.WithDatabase(env.AdminURL, db)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE public.orders `+tableDDL+`; `+roundsProcedure+`; `+roundsSession); err != nil {
		t.Fatal(err)
	}
	m := txMix(20)
	call := func(first int64, rounds int) {
		t.Helper()
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CALL public.bench_rounds(%d, %d, %d, %d, %d)`, first, rounds, m.creates, m.updates, m.deletes),
			pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	// The session's first rounds, on a nearly empty table, are where a
	// generic plan would be made and cached.
	call(1, 20)
	const grown = 200_000
	if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO public.orders (id) SELECT g FROM generate_series(1000, %d) g`, grown)); err != nil {
		t.Fatal(err)
	}
	seqScans := func() int64 {
		t.Helper()
		// The session's statistics reach the shared ones only when
		// flushed; the count is read after the flush.
		if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := conn.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'public.orders'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := seqScans()
	const rounds = 20
	call(grown+1, rounds)
	if n := seqScans() - before; n > 0 {
		t.Fatalf("%d rounds on a table of %d rows scanned it whole %d times; want every row found by its key (a plan cached on the empty table?)", rounds, grown, n)
	}
}
