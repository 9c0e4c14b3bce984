//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// rebuildBenchRowsEnv sets the rows of BenchmarkIntegrationRebuild
// (default 200,000 on a shared machine; the target is stated for
// 1,000,000).
const rebuildBenchRowsEnv = "PGSINK_REBUILD_BENCH_ROWS"

// BenchmarkIntegrationRebuild measures `replay --rebuild --online` against
// today's `replay --rebuild` (empty the table, let the running instance
// apply the topic again, `--wait` until it has) on one table snapshotted by
// Debezium, with a running instance and no other writes. The two run twice,
// in the order offline, online, online, offline, and the ratio is of the
// sums, which cancels a steady drift of this machine's speed. Reported:
// seconds of each and online/offline (the target: at most 1.5). Run with
// -benchtime 1x; a pgsink built without -race is measured.
func BenchmarkIntegrationRebuild(b *testing.B) {
	rows := 200_000
	if s := os.Getenv(rebuildBenchRowsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a number of rows", rebuildBenchRowsEnv, s)
		}
		rows = n
	}
	bin := filepath.Join(b.TempDir(), "pgsink")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pgsink/pgsink/cmd/pgsink").CombinedOutput(); err != nil {
		b.Fatalf("build pgsink: %v\n%s", err, out)
	}
	st := stacktest.New(b)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(fmt.Sprintf(`INSERT INTO public.items SELECT i, 'item ' || i, i / 100.0, now(), jsonb_build_object('n', i), NULL FROM generate_series(1, %d) i`, rows))
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, _ := itemsTarget(b)
	yaml := itemsConfig(st, st.TopicPrefix+".public.items", "")
	cfgPath := filepath.Join(b.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	live := exec.Command(bin, "run", "--config", cfgPath, "--log-format", "console")
	live.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	var logs strings.Builder
	live.Stdout, live.Stderr = &logs, &logs
	if err := live.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	want := checksum(b, st.SourceURL, query)
	// The snapshot is applied once every row is there: counting is cheap
	// enough to poll, the checksum confirms.
	deadline := time.Now().Add(20 * time.Minute)
	for countRows(b, targetURL) != rows || checksum(b, targetURL, query) != want {
		if time.Now().After(deadline) {
			b.Fatalf("the initial snapshot was not applied in time; pgsink:\n%s", logs.String())
		}
		time.Sleep(2 * time.Second)
	}
	replay := func(args ...string) time.Duration {
		b.Helper()
		cmd := exec.Command(bin, append([]string{"replay", "--config", cfgPath, "--table", "public.items", "--rebuild"}, args...)...)
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		elapsed := time.Since(t0)
		if err != nil {
			b.Fatalf("replay %v: %v\n%s", args, err, out)
		}
		if got := checksum(b, targetURL, query); got != want {
			b.Fatalf("after replay %v the target differs from the source", args)
		}
		return elapsed
	}
	offline := func() time.Duration { return replay("--from", "earliest", "--wait", "--wait-timeout", "30m") }
	online := func() time.Duration { return replay("--online") }
	b.ResetTimer()
	for range b.N {
		off1 := offline()
		on1 := online()
		on2 := online()
		off2 := offline()
		b.ReportMetric((off1+off2).Seconds()/2, "offline-s")
		b.ReportMetric((on1+on2).Seconds()/2, "online-s")
		b.ReportMetric(float64(on1+on2)/float64(off1+off2), "online/offline")
		b.Logf("%d rows: --rebuild %s and %s, --rebuild --online %s and %s", rows, off1.Round(time.Millisecond), off2.Round(time.Millisecond),
			on1.Round(time.Millisecond), on2.Round(time.Millisecond))
	}
}

// countRows counts the target's items.
func countRows(tb testing.TB, url string) int {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM public.items`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
