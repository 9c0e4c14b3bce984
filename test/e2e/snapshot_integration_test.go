//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EResnapshotSweepsDeletesInTheGap: a target holding rows the source
// never had is reconciled by the initial snapshot; then the replication
// slot is lost, rows are deleted, updated and inserted in the source while
// nothing streams, and Debezium (same connector, its offsets kept,
// snapshot.mode when_needed) snapshots again. The deletes in the gap are in no
// record: the sweep after the second snapshot removes them. The target ends
// equal to the source, and the swept counts, in pgsink.snapshots and the
// metric, are the stray rows and the deletes in the gap, each once. The
// topic has three partitions, so each snapshot is spread over them.
func TestE2EResnapshotSweepsDeletesInTheGap(t *testing.T) {
	st := stacktest.New(t)
	ctx := context.Background()
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i * 1.25, now(), jsonb_build_object('i', i), NULL FROM generate_series(1, 500) AS i`)
	topic := st.TopicPrefix + ".public.items"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 3); err != nil {
		t.Fatal(err)
	}
	targetURL, target := itemsTarget(t)
	const stray = 5
	if _, err := target.Exec(ctx, `INSERT INTO public.items (id, name) SELECT i, 'stray' FROM generate_series(10001, 10000 + $1) AS i`, stray); err != nil {
		t.Fatal(err)
	}
	name := st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	port := freePort(t)
	// itemsConfig on a known metrics port, to read the swept count from.
	cfg := strings.Replace(itemsConfig(st, topic, ""), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)

	converge := itemsConverge(t, st, targetURL, 120*time.Second)
	converge("the initial snapshot over a populated target: target equals source")
	waitSwept := func(want int64) {
		eventually(t, 60*time.Second, fmt.Sprintf("%d rows swept in all", want), func() (bool, string) {
			got, ok := sweptRows(port)
			return ok && got == want, fmt.Sprintf("pgsink_snapshot_swept_rows_total %d (%v)", got, ok)
		})
	}
	waitSwept(stray)
	// Streamed versions on the rows the gap will update: the re-snapshot
	// must order after them. Debezium sends the first transaction it
	// streams without a commit LSN, the second with one.
	st.Exec(`UPDATE public.items SET note = 'first streamed' WHERE id = 1`)
	st.Exec(`UPDATE public.items SET note = 'streamed' WHERE id % 5 = 0`)
	converge("streaming: target equals source")

	// The slot is lost while the connector is down.
	if err := st.Connect.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := st.LoseSlots(ctx); err != nil {
		t.Fatal(err)
	}
	st.Exec(`DELETE FROM public.items WHERE id % 7 = 0`)
	const gapDeletes = 500 / 7
	st.Exec(`UPDATE public.items SET name = name || ' (updated in the gap)' WHERE id % 5 = 0`)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i, now(), '{}', 'gap' FROM generate_series(501, 520) AS i`)

	dbz, err := stacktest.DebeziumPostgres(st.SourceURL, name, st.TopicPrefix)
	if err != nil {
		t.Fatal(err)
	}
	dbz["table.include.list"] = "public.items"
	dbz["snapshot.mode"] = "when_needed"
	if err := st.Connect.Put(ctx, name, dbz); err != nil {
		t.Fatal(err)
	}
	if err := st.Connect.WaitRunning(ctx, name, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	converge("after the re-snapshot: target equals source")
	waitSwept(stray + gapDeletes)

	rows, err := target.Query(ctx, `SELECT swept FROM pgsink.snapshots WHERE swept_at IS NOT NULL ORDER BY commit_lsn, lsn`)
	if err != nil {
		t.Fatal(err)
	}
	swept, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(swept) != fmt.Sprint([]int64{stray, gapDeletes}) {
		t.Fatalf("swept per snapshot %v, want [%d %d]", swept, stray, gapDeletes)
	}
	var pending int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM pgsink.snapshots WHERE swept_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("%d snapshot ends left unswept (%v)", pending, err)
	}

	// Streaming goes on after the re-snapshot, deletes included.
	st.Exec(`DELETE FROM public.items WHERE id % 11 = 0`)
	st.Exec(`UPDATE public.items SET amount = amount + 1 WHERE id % 3 = 0`)
	converge("streaming after the re-snapshot: target equals source")
	if got, _ := sweptRows(port); got != stray+gapDeletes {
		t.Fatalf("pgsink_snapshot_swept_rows_total %d after streaming, want %d", got, stray+gapDeletes)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}

var sweptRE = regexp.MustCompile(`(?m)^pgsink_snapshot_swept_rows_total\{table="public\.items"\} (\d+)`)

// sweptRows reads pgsink_snapshot_swept_rows_total for public.items; 0 and
// true before the first sweep creates the series.
func sweptRows(port int) (int64, bool) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	m := sweptRE.FindSubmatch(body)
	if m == nil {
		return 0, true
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return n, err == nil
}
