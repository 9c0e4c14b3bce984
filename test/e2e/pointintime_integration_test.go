//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// pitWorkload is one step of a sequential workload on the source items:
// each step commits before the next begins, so a checksum taken between
// two steps is the table's state at that moment, and the commit time (or
// WAL position) read with it separates the steps before from those after.
func pitWorkload(ctx context.Context, t *testing.T, src *pgx.Conn, step int) {
	t.Helper()
	var sql string
	switch step % 4 {
	case 0:
		sql = fmt.Sprintf(`UPDATE public.items SET amount = amount + 1, name = 'step %d' WHERE id %% 7 = %d`, step, step%7)
	case 1:
		sql = fmt.Sprintf(`DELETE FROM public.items WHERE id = (SELECT min(id) FROM public.items WHERE id > %d)`, step*3)
	case 2:
		sql = fmt.Sprintf(`INSERT INTO public.items VALUES (%d, 'new %d', %d, now(), '{}', NULL)`, 10000+step, step, step)
	case 3:
		sql = fmt.Sprintf(`UPDATE public.items SET note = 'n%d' WHERE id IN (SELECT id FROM public.items ORDER BY id LIMIT 5 OFFSET %d)`, step, step%50)
	}
	if _, err := src.Exec(ctx, sql); err != nil {
		t.Fatalf("workload step %d: %v", step, err)
	}
}

// TestE2EPointInTime rebuilds a table as of a moment in the past with
// `pgsink replay --into --until`: a sequential workload runs (snapshot rows,
// then updates, deletes, inserts); at its middle the source's checksum,
// commit clock and WAL insert position are recorded; the workload goes on
// and is applied. The table filled as of that time, and the one filled as
// of that LSN, equal the recorded checksum; the live target equals the
// source. A point in time after a topic lost its beginning is refused.
func TestE2EPointInTime(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i, now(), '{}', NULL FROM generate_series(1, 300) i`)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	yaml := itemsConfig(st, st.TopicPrefix+".public.items", "")
	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	src := st.Source()

	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	for step := 0; step < 60; step++ {
		pitWorkload(ctx, t, src, step)
	}
	var at time.Time
	var lsn string
	if err := src.QueryRow(ctx, `SELECT clock_timestamp(), pg_current_wal_insert_lsn()::text`).Scan(&at, &lsn); err != nil {
		t.Fatal(err)
	}
	want := checksum(t, st.SourceURL, query)
	for step := 60; step < 120; step++ {
		pitWorkload(ctx, t, src, step)
	}
	if want == checksum(t, st.SourceURL, query) {
		t.Fatal("the workload after the recorded moment changed nothing: the test would prove nothing")
	}
	itemsConverge(t, st, targetURL, 90*time.Second)("live apply")

	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	replay := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"replay", "--config", cfgPath, "--table", "public.items"}, args...)...)
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	until := at.UTC().Format(time.RFC3339Nano)
	out, err := replay("--into", "public.items_at", "--until", until)
	if err != nil {
		t.Fatalf("replay --into --until %s: %v\n%s", until, err, out)
	}
	t.Logf("replay --into output:\n%s", out)
	atQuery := `SELECT ` + itemsColumns + ` FROM public.items_at ORDER BY id`
	if got := checksum(t, targetURL, atQuery); got != want {
		t.Fatalf("public.items_at as of %s: checksum %s, want the source's at that moment %s", until, got, want)
	}
	out, err = replay("--into", "public.items_lsn", "--until", "lsn:"+lsn)
	if err != nil {
		t.Fatalf("replay --into --until lsn:%s: %v\n%s", lsn, err, out)
	}
	if got := checksum(t, targetURL, `SELECT `+itemsColumns+` FROM public.items_lsn ORDER BY id`); got != want {
		t.Fatalf("public.items_lsn as of lsn %s: checksum %s, want the source's at that moment %s", lsn, got, want)
	}
	// The fills leave no positions behind, and the live table is untouched.
	var fills int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM pgsink.offsets WHERE group_id LIKE 'fill:%'`).Scan(&fills); err != nil || fills != 0 {
		t.Fatalf("fill positions left: %d (%v)", fills, err)
	}
	itemsConverge(t, st, targetURL, 30*time.Second)("live table after the fills")

	// An existing --into is refused, not overwritten.
	if out, err := replay("--into", "public.items_at", "--until", until); err == nil || !strings.Contains(out, "exists") {
		t.Fatalf("replay into an existing table: err %v, output:\n%s\nwant a refusal", err, out)
	}
	// Retention removed the beginning of the topic: no point in time can
	// be rebuilt any more.
	deleteRecordsBefore(t, st, st.TopicPrefix+".public.items", 10)
	if out, err := replay("--into", "public.items_late", "--until", until); err == nil || !strings.Contains(out, "no longer holds the beginning") {
		t.Fatalf("replay --into after the topic lost its start: err %v, output:\n%s\nwant a refusal", err, out)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
