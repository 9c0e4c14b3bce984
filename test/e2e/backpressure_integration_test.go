//go:build integration

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EBackpressure starts pgsink on a backlog much larger than its
// buffer budget and samples pgsink_buffered_bytes while it catches up: the
// fetched-but-unapplied bytes (queued or in a batch) stay within
// apply.max_buffered_bytes (plus a record's worth of slack), the target
// converges, the count returns to zero, and the time the budget held the
// poll loop back is counted.
func TestE2EBackpressure(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, _ := itemsTarget(t)
	// About 20 MB of change events: 10,000 rows with a 1 KB note, then an
	// update of each.
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i, now(), '{}', repeat(md5(i::text), 32) FROM generate_series(1, 10000) i`)
	st.Exec(`UPDATE public.items SET amount = amount + 1`)
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	topic := st.TopicPrefix + ".public.items"
	// Let Debezium publish the backlog before pgsink starts.
	eventually(t, 120*time.Second, "the backlog is in Kafka", func() (bool, string) {
		n, err := stacktest.HighWatermark(st.Env.KafkaBootstrap, topic, 0)
		return err == nil && n >= 20000, fmt.Sprintf("%d records (%v)", n, err)
	})

	const budget = 2 << 20
	port := freePort(t)
	p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
apply:
  batch: { max_records: 500, max_bytes: 512KiB, max_wait: 50ms }
  max_buffered_bytes: %d
metrics:
  listen: 127.0.0.1:%d
tables:
  - topic: %s
    target: public.items
`, st.Env.KafkaBootstrap, st.ID, budget, port, topic), "TARGET_URL="+targetURL)

	var peak float64
	var samples int
	eventually(t, 180*time.Second, "target equals source after the backlog", func() (bool, string) {
		if v, ok := metricValue(port, "pgsink_buffered_bytes"); ok {
			samples++
			peak = max(peak, v)
		}
		src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s, buffered peak %.0f", src, dst, peak)
	})
	t.Logf("buffered bytes peak %.0f over %d samples, budget %d", peak, samples, budget)
	if samples < 3 {
		t.Fatalf("only %d metric samples: the test saw too little of the catch-up", samples)
	}
	// A record is counted when dispatched and may overshoot the budget by
	// itself before the poll loop stops; its decoded size is counted from
	// dispatch too, predicted, and the prediction's error is the rest of
	// the slack.
	if peak > budget+64<<10 {
		t.Fatalf("buffered bytes peaked at %.0f, over the budget of %d", peak, budget)
	}
	// The budget counts batches until they are applied: once the backlog
	// is in the target every byte must be given back, or fetching would
	// stall for good.
	eventually(t, 30*time.Second, "buffered bytes back to zero", func() (bool, string) {
		v, ok := metricValue(port, "pgsink_buffered_bytes")
		return ok && v == 0, fmt.Sprintf("pgsink_buffered_bytes %.0f", v)
	})
	// A backlog ten times the budget keeps the budget spent: the poll loop
	// must have waited for the apply, and said so.
	if v, ok := metricValue(port, "pgsink_buffer_full_seconds_total"); !ok || v <= 0 {
		t.Errorf("pgsink_buffer_full_seconds_total = %v (exported %v): want the time the budget stopped the poll loop", v, ok)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func metricValue(port int, name string) (float64, bool) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)`).FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}
