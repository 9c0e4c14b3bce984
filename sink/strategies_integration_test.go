//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
)

// BenchmarkIntegrationWriteStrategies is the measurement behind the sink's
// choice of write path (issue 4): the apply benchmark's 200,000 changes, in
// batches of 5,000 reduced to one row per key, written by each candidate
// into a fresh keyed table with the version guard. Besides rows/s it reports
// the PostgreSQL backend's CPU per 1,000 rows, read from /proc (the stack's
// server runs on this machine): on a shared machine wall time measures the
// scheduler as much as the strategy. Deletes are left out: every strategy
// would write them the same way.
//
//	go test -tags integration -run XXX -bench IntegrationWriteStrategies -benchtime 1x ./sink/
func BenchmarkIntegrationWriteStrategies(b *testing.B) {
	ctx := context.Background()
	pool := migratedPool(b)
	batches := strategyBatches(benchWorkload(benchChanges), 5000)
	names := []string{"id", "customer_id", "status", "amount", "created_at", "attrs", "_pgsink_commit_lsn", "_pgsink_lsn"}
	cols := strings.Join(names, ", ")
	sets := "customer_id = excluded.customer_id, status = excluded.status, amount = excluded.amount, created_at = excluded.created_at, attrs = excluded.attrs, _pgsink_commit_lsn = excluded._pgsink_commit_lsn, _pgsink_lsn = excluded._pgsink_lsn"
	guard := "(coalesce(t._pgsink_commit_lsn, -1), coalesce(t._pgsink_lsn, -1)) < (excluded._pgsink_commit_lsn, excluded._pgsink_lsn)"
	const stage = "pg_temp.strategy_stage"
	stageDDL := "CREATE TEMP TABLE IF NOT EXISTS strategy_stage (id bigint, customer_id bigint, status text, amount numeric(12,2), created_at timestamptz, attrs jsonb, _pgsink_commit_lsn bigint, _pgsink_lsn bigint) ON COMMIT DELETE ROWS"
	settings := "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)"
	copyRows := func(tx pgx.Tx, table pgx.Identifier, rows [][]any) {
		if _, err := tx.CopyFrom(ctx, table, names, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	exec := func(tx pgx.Tx, sql string, args ...any) {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	strategies := []struct {
		name    string
		write   func(tx pgx.Tx, table string, rows [][]any)
		unkeyed bool
	}{
		// Not a strategy: the floor, the same rows copied into a table
		// with no key, in the same batches.
		{"reference_copy_unkeyed", func(tx pgx.Tx, table string, rows [][]any) {
			copyRows(tx, pgx.Identifier{"public", table}, rows)
		}, true},
		{"staged_copy_upsert", func(tx pgx.Tx, table string, rows [][]any) {
			// What the sink does (plus its tombstone test).
			exec(tx, stageDDL)
			copyRows(tx, pgx.Identifier{"pg_temp", "strategy_stage"}, rows)
			exec(tx, settings)
			exec(tx, "INSERT INTO "+table+" AS t ("+cols+") SELECT "+cols+" FROM "+stage+" ON CONFLICT (id) DO UPDATE SET "+sets+" WHERE "+guard)
		}, false},
		{"unnest_upsert", func(tx pgx.Tx, table string, rows [][]any) {
			args := make([]any, len(names))
			for c := range names {
				col := make([]any, len(rows))
				for i, r := range rows {
					col[i] = r[c]
				}
				args[c] = col
			}
			exec(tx, "INSERT INTO "+table+" AS t ("+cols+") SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::numeric(12,2)[], $5::timestamptz[], $6::jsonb[], $7::bigint[], $8::bigint[]) ON CONFLICT (id) DO UPDATE SET "+sets+" WHERE "+guard, args...)
		}, false},
		{"pgx_batch_row_upserts", func(tx pgx.Tx, table string, rows [][]any) {
			var batch pgx.Batch
			sql := "INSERT INTO " + table + " AS t (" + cols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET " + sets + " WHERE " + guard
			for _, r := range rows {
				batch.Queue(sql, r...)
			}
			if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
				b.Fatal(err)
			}
		}, false},
		{"staged_update_then_insert", func(tx pgx.Tx, table string, rows [][]any) {
			exec(tx, stageDDL)
			copyRows(tx, pgx.Identifier{"pg_temp", "strategy_stage"}, rows)
			exec(tx, settings+", set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
			exec(tx, "UPDATE "+table+" AS t SET customer_id = s.customer_id, status = s.status, amount = s.amount, created_at = s.created_at, attrs = s.attrs, _pgsink_commit_lsn = s._pgsink_commit_lsn, _pgsink_lsn = s._pgsink_lsn FROM "+stage+" AS s WHERE t.id = s.id AND (coalesce(t._pgsink_commit_lsn, -1), coalesce(t._pgsink_lsn, -1)) < (s._pgsink_commit_lsn, s._pgsink_lsn)")
			exec(tx, "INSERT INTO "+table+" ("+cols+") SELECT "+cols+" FROM "+stage+" AS s WHERE NOT EXISTS (SELECT FROM "+table+" AS t WHERE t.id = s.id)")
		}, false},
		{"probe_then_copy_new_rows", func(tx pgx.Tx, table string, rows [][]any) {
			ids := make([]int64, len(rows))
			for i, r := range rows {
				ids[i] = r[0].(int64)
			}
			found, err := tx.Query(ctx, "SELECT id FROM "+table+" WHERE id = ANY($1)", ids)
			if err != nil {
				b.Fatal(err)
			}
			exists, err := pgx.CollectRows(found, pgx.RowTo[int64])
			if err != nil {
				b.Fatal(err)
			}
			old := map[int64]bool{}
			for _, id := range exists {
				old[id] = true
			}
			var fresh, updates [][]any
			for _, r := range rows {
				if old[r[0].(int64)] {
					updates = append(updates, r)
				} else {
					fresh = append(fresh, r)
				}
			}
			copyRows(tx, pgx.Identifier{"public", table}, fresh)
			exec(tx, stageDDL)
			copyRows(tx, pgx.Identifier{"pg_temp", "strategy_stage"}, updates)
			exec(tx, settings+", set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
			exec(tx, "UPDATE "+table+" AS t SET customer_id = s.customer_id, status = s.status, amount = s.amount, created_at = s.created_at, attrs = s.attrs, _pgsink_commit_lsn = s._pgsink_commit_lsn, _pgsink_lsn = s._pgsink_lsn FROM "+stage+" AS s WHERE t.id = s.id AND (coalesce(t._pgsink_commit_lsn, -1), coalesce(t._pgsink_lsn, -1)) < (s._pgsink_commit_lsn, s._pgsink_lsn)")
		}, false},
	}
	var rowsTotal int
	for _, batch := range batches {
		rowsTotal += len(batch)
	}
	for i, s := range strategies {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				table := fmt.Sprintf("strategy_%d_%d", i, time.Now().UnixNano())
				pk := "PRIMARY KEY"
				if s.unkeyed {
					pk = ""
				}
				if _, err := pool.Exec(ctx, "CREATE TABLE public."+table+" "+fmt.Sprintf(benchDDL, pk, ", _pgsink_commit_lsn bigint, _pgsink_lsn bigint")); err != nil {
					b.Fatal(err)
				}
				conn, err := pool.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				cpu := backendCPU(b, conn)
				b.StartTimer()
				t0, cpu0 := time.Now(), cpu()
				for _, rows := range batches {
					tx, err := conn.Begin(ctx)
					if err != nil {
						b.Fatal(err)
					}
					s.write(tx, table, rows)
					if err := tx.Commit(ctx); err != nil {
						b.Fatal(err)
					}
				}
				elapsed, used := time.Since(t0), cpu()-cpu0
				conn.Release()
				b.ReportMetric(float64(rowsTotal)/elapsed.Seconds(), "rows/s")
				if used >= 0 {
					b.ReportMetric(float64(used.Milliseconds())/float64(rowsTotal)*1000, "backend-cpu-ms/1k-rows")
				}
			}
		})
	}
}

// strategyBatches cuts the workload's upserts into batches of n changes,
// each reduced to the newest image per key, with the version columns.
func strategyBatches(changes []debezium.Change, n int) [][][]any {
	var out [][][]any
	for lo := 0; lo < len(changes); lo += n {
		newest := map[int64][]any{}
		var order []int64
		for _, ch := range changes[lo:min(lo+n, len(changes))] {
			if ch.After == nil {
				continue
			}
			id := ch.Key[0].Value.(int64)
			if _, ok := newest[id]; !ok {
				order = append(order, id)
			}
			newest[id] = append(rowImage(ch), ch.Version.CommitLSN, ch.Version.LSN)
		}
		batch := make([][]any, 0, len(order))
		for _, id := range order {
			batch = append(batch, newest[id])
		}
		out = append(out, batch)
	}
	return out
}

// backendCPU returns a reader of the CPU time the connection's server
// process has used, from /proc; it reads -1 when the server is not local.
func backendCPU(b *testing.B, conn *pgxpool.Conn) func() time.Duration {
	var pid int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	return func() time.Duration {
		cpu, _, ok := procCPU(pid, false)
		if !ok {
			return -1
		}
		return cpu
	}
}
