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

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ECompactedDeleteIsReported: pgsink is stopped while rows are
// deleted at the source, and Kafka's log cleaner removes the delete events
// before it is back, leaving only their tombstones. A tombstone carries no
// source position, so pgsink cannot apply it under the version guard; the
// rows stay in the target, and pgsink must say so: each such tombstone in
// pgsink_compacted_deletes_total and a warning in the log. The tombstones
// that follow their delete (rows deleted while pgsink runs) count nothing.
func TestE2ECompactedDeleteIsReported(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	topic := st.TopicPrefix + ".public.items"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 1, map[string]string{
		"cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms": "0", "delete.retention.ms": "600000",
	}); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	port := freePort(t)
	yaml := strings.Replace(itemsConfig(st, topic, ""), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	converged := itemsConverge(t, st, targetURL, 60*time.Second)

	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items SELECT i, 'v0', i, now(), '{}', NULL FROM generate_series(1, 20) i`)
	st.Exec(`DELETE FROM public.items WHERE id = 20`) // its delete and tombstone, both read
	// A change after the tombstone, so that the stored position is past it.
	st.Exec(`UPDATE public.items SET name = 'v1' WHERE id = 1`)
	converged("initial apply")
	if n := compactedDeletes(t, port, topic); n != 0 {
		t.Fatalf("pgsink_compacted_deletes_total = %v with every delete event read, want 0", n)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	st.Exec(`DELETE FROM public.items WHERE id > 15`)
	eventually(t, 120*time.Second, "Kafka removes the delete events, keeping their tombstones", func() (bool, string) {
		st.Exec(`UPDATE public.items SET note = 'tick' WHERE id = 1`) // rolls a segment for the cleaner
		deletes, tombstones := deletesAndTombstones(t, st, topic)
		return deletes == 0 && tombstones >= 5, fmt.Sprintf("%d delete events, %d tombstones left", deletes, tombstones)
	})

	p = startPgsink(t, yaml, "TARGET_URL="+targetURL)
	eventually(t, 60*time.Second, "pgsink reports the tombstones without their deletes", func() (bool, string) {
		n := compactedDeletes(t, port, topic)
		return n == 4, fmt.Sprintf("pgsink_compacted_deletes_total %v, want 4 (ids 16-19; 20's delete was applied before)", n)
	})
	if !strings.Contains(p.Logs(), "a tombstone arrived without its delete event") {
		t.Errorf("no warning in the log:\n%s", p.Logs())
	}
	// What the count warns of: the rows the lost deletes were for are
	// still in the target.
	var left int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM public.items WHERE id BETWEEN 16 AND 19`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 4 {
		t.Errorf("%d of the rows 16-19 are in the target, want 4: the count would then report what did not happen", left)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// compactedDeletes reads pgsink_compacted_deletes_total for topic, 0 when
// the series is not there yet.
func compactedDeletes(t *testing.T, port int, topic string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^pgsink_compacted_deletes_total\{topic="` + regexp.QuoteMeta(topic) + `"\} (\S+)`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// deletesAndTombstones counts the delete events and the tombstones the
// topic's partition 0 holds.
func deletesAndTombstones(t *testing.T, st *stacktest.T, topic string) (deletes, tombstones int) {
	t.Helper()
	readPartition0(t, st, topic, func(m *kafka.Message) {
		switch {
		case m.Value == nil:
			tombstones++
		case strings.Contains(string(m.Value), `"op":"d"`):
			deletes++
		}
	})
	return deletes, tombstones
}
