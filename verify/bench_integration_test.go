//go:build integration

package verify_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/test/stacktest"
	"github.com/pgsink/pgsink/verify"
)

// benchRows is the target size: verify of 1,000,000 rows.
const benchRows = 1_000_000

const benchColumns = `id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), created_at timestamptz, attrs jsonb`

const benchFill = `INSERT INTO public.orders SELECT i, i %% 5000, 'status ' || (i %% 7), i * 1.25, timestamptz '2026-01-01' + i * interval '1 second',
	jsonb_build_object('i', i, 'tag', md5(i::text)) %s FROM generate_series(1, %d) i`

// noSettle is the settler of a benchmark whose tables are equal: a call
// means verify found a difference, which fails the benchmark.
type noSettle struct{ tb testing.TB }

func (n noSettle) Settle(context.Context, *verify.Table, int64) error {
	n.tb.Fatal("verify found a difference between two equal tables")
	return nil
}

// BenchmarkIntegrationVerify measures verify of two equal tables of
// 1,000,000 rows against the floor the issue sets: hashing each table with
// one plain SELECT (md5 over its rows' text forms in key order), one after
// the other. It reports the ratio of the two, measured in the same run
// (target: at most 2), and the ratio to both SELECTs run at once, since
// verify reads the two servers concurrently.
func BenchmarkIntegrationVerify(b *testing.B) {
	ctx := context.Background()
	srcURL := stacktest.OwnedTargetDatabase(b)
	dstURL := stacktest.OwnedTargetDatabase(b)
	for _, db := range []struct{ url, extra, fillExtra string }{
		{srcURL, "", ""},
		{dstURL, ", _pgsink_commit_lsn bigint, _pgsink_lsn bigint", ", 1, 1"},
	} {
		conn, err := pgx.Connect(ctx, db.url)
		if err != nil {
			b.Fatal(err)
		}
		for _, sql := range []string{
			`CREATE TABLE public.orders (` + benchColumns + db.extra + `)`,
			fmt.Sprintf(benchFill, db.fillExtra, benchRows),
			`VACUUM ANALYZE public.orders`,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				b.Fatalf("%v\n%s", err, sql)
			}
		}
		conn.Close(ctx)
	}
	cfg := config.Default()
	opts := verify.OptionsFrom(cfg.Verify)
	tc := &config.Table{Format: config.FormatTable, Target: config.Target{TableName: config.TableName{Schema: "public", Name: "orders"}}, Deletes: config.DeletesHard,
		Version: config.Version{Guard: true, CommitColumn: config.DefaultCommitLSNColumn, LSNColumn: config.DefaultLSNColumn}}

	floorSQL := `SELECT md5(string_agg(ROW(id, customer_id, status, amount, created_at, attrs)::text, E'\n' ORDER BY id)) FROM public.orders`
	hash := func(url string) time.Duration {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		start := time.Now()
		var sum string
		if err := conn.QueryRow(ctx, floorSQL).Scan(&sum); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var floor, parallelFloor, verifying time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		floor += hash(srcURL) + hash(dstURL)

		start := time.Now()
		var wg sync.WaitGroup
		for _, url := range []string{srcURL, dstURL} {
			wg.Add(1)
			go func() { defer wg.Done(); hash(url) }()
		}
		wg.Wait()
		parallelFloor += time.Since(start)

		start = time.Now()
		src, dst, err := verify.Connect(ctx, srcURL, dstURL, opts, false)
		if err != nil {
			b.Fatal(err)
		}
		t, err := verify.Describe(ctx, src, dst, tc, tc.Target.TableName)
		if err != nil {
			b.Fatal(err)
		}
		res, err := verify.New(src, dst, opts, noSettle{b}, io.Discard).Table(ctx, t)
		if err != nil {
			b.Fatal(err)
		}
		verifying += time.Since(start)
		src.Close(ctx)
		dst.Close(ctx)
		if !res.Clean() || res.SourceRows != benchRows || res.TargetRows != benchRows {
			b.Fatalf("verify of equal tables: %+v", res)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(floor.Seconds()/n, "floor-s")
	b.ReportMetric(parallelFloor.Seconds()/n, "parallel-floor-s")
	b.ReportMetric(verifying.Seconds()/n, "verify-s")
	b.ReportMetric(float64(verifying)/float64(floor), "verify/floor")
	b.ReportMetric(float64(verifying)/float64(parallelFloor), "verify/parallel-floor")
	b.ReportMetric(float64(benchRows)*n/verifying.Seconds(), "rows/s")
}
