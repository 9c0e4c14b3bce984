//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EStoppedPartitionTakesAReplay: a partition stopped because Kafka
// deleted records it had not applied takes `pgsink replay --rebuild --from
// earliest --wait` while its instance runs, both when it stopped at its
// claim (its worker never ran, the partition assigned paused) and when it
// stopped at a hole while running: the replay returns, the stop is cleared
// (pgsink_partition_stopped, /readyz, the offsets row's stopped_reason) and
// the target is rebuilt from what Kafka holds, without a restart. Before,
// a stopped partition never looked at its row: --wait waited for ever and
// the instance had to be restarted.
func TestE2EStoppedPartitionTakesAReplay(t *testing.T) {
	st := stacktest.New(t)
	ctx := context.Background()
	targetURL := stacktest.OwnedTargetDatabase(t)
	topic := st.TopicPrefix + ".parked"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 1); err != nil {
		t.Fatal(err)
	}
	// Two snapshot events of distinct rows: every batch of records that
	// cycles through them leaves the same two rows.
	events := recordedAllTypes(t, 2)
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, len(events))
	cfg, port, proxy, through, stored := oneRecordBatches(ctx, t, st, targetURL, topic, "public.parked", "")
	const rows = `SELECT * FROM public.parked ORDER BY 1`
	stoppedMetric := fmt.Sprintf(`pgsink_partition_stopped{partition="0",topic="%s"}`, topic)
	readyz := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	stoppedAtHole := func(what string) int64 {
		t.Helper()
		eventually(t, 90*time.Second, what, func() (bool, string) {
			next, reason := stored()
			v, _ := metricValue(port, stoppedMetric)
			return strings.Contains(reason, "outside what Kafka holds") && v == 1 && readyz() == http.StatusServiceUnavailable,
				fmt.Sprintf("next_offset %d, stopped_reason %q, %s %v, /readyz %d", next, reason, stoppedMetric, v, readyz())
		})
		next, _ := stored()
		return next
	}
	// replayed runs the operator's fix and checks that the running
	// instance took it: the replay's wait ends, and the stop is cleared
	// everywhere with the target rebuilt at Kafka's high watermark.
	replayed := func(want string, high int64) {
		t.Helper()
		began := time.Now()
		out, err := pgsinkRun(t, cfg, []string{"TARGET_URL=" + targetURL}, "replay",
			"--table", "public.parked", "--rebuild", "--from", "earliest", "--wait", "--wait-timeout", "60s")
		if err != nil || !strings.Contains(out, "replay applied") {
			t.Fatalf("replay --wait: %v after %s\n%s", err, time.Since(began).Round(time.Millisecond), out)
		}
		t.Logf("replay --wait returned after %s", time.Since(began).Round(time.Millisecond))
		eventually(t, 30*time.Second, "the stop cleared and the target rebuilt", func() (bool, string) {
			next, reason := stored()
			v, _ := metricValue(port, stoppedMetric)
			sum := checksum(t, targetURL, rows)
			return next == high && reason == "" && v == 0 && readyz() == http.StatusOK && sum == want,
				fmt.Sprintf("next_offset %d (want %d), stopped_reason %q, %s %v, /readyz %d, target %s (want %s)",
					next, high, reason, stoppedMetric, v, readyz(), sum, want)
		})
	}

	first := startPgsink(t, cfg, "TARGET_URL="+through)
	eventually(t, 90*time.Second, "the first records applied", func() (bool, string) {
		next, _ := stored()
		return next == int64(len(events)), fmt.Sprintf("next_offset %d", next)
	})
	want := checksum(t, targetURL, rows)
	if code, _ := first.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Stopped at its claim: Kafka deleted the records after the stored
	// position while no instance ran.
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, len(events))
	deleteRecordsBefore(t, st, topic, int64(2*len(events)))
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, len(events))
	p := startPgsink(t, cfg, "TARGET_URL="+through)
	if next := stoppedAtHole("the partition stops at its claim"); next != int64(len(events)) {
		t.Fatalf("stopped at next_offset %d, want %d (unmoved)", next, len(events))
	}
	replayed(want, int64(3*len(events)))
	if !strings.Contains(p.Logs(), "stopped partition rewound by a replay: re-claimed") {
		t.Fatalf("the stopped partition did not re-claim itself:\n%s", p.Logs())
	}

	// Stopped at a hole while running, in the same process: paused behind
	// a target outage (its queue full), its next offset deleted.
	const pauses = `pgsink_partition_pauses_total{reason="queue_full"}`
	before, _ := metricValue(port, pauses)
	proxy.Down()
	t.Cleanup(func() { _ = proxy.Up() })
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, 150)
	eventually(t, 60*time.Second, "the partition paused", func() (bool, string) {
		v, _ := metricValue(port, pauses)
		return v > before, fmt.Sprintf("%v pauses, %v before", v, before)
	})
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, 20)
	low := int64(3*len(events) + 150 + 20)
	deleteRecordsBefore(t, st, topic, low)
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, len(events))
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	if next := stoppedAtHole("the partition stops at the hole"); next >= low {
		t.Fatalf("stopped at next_offset %d, want below the low watermark %d", next, low)
	}
	replayed(want, low+int64(len(events)))
	var took []string
	for _, line := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(line, "rewound by a replay") || strings.Contains(line, "assigned again") {
			took = append(took, line)
		}
	}
	if n := strings.Count(p.Logs(), "stopped partition rewound by a replay: re-claimed"); n != 2 {
		t.Errorf("%d re-claims of a stopped partition logged, want 2:\n%s", n, strings.Join(took, "\n"))
	}
	t.Logf("how the instance took the replays:\n%s", strings.Join(took, "\n"))
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2EReplayResumesAPartitionStoppedOnARecord: under errors.tolerance
// none a row the target refuses (a CHECK constraint the source does not
// have) stops its partition, offset unmoved. The operator fixes the target
// and rewinds the partition to the stopped offset with `pgsink replay
// --from offset:N --wait`: the running instance takes it, applies the
// refused row and what followed, and the target converges with the source,
// nothing lost and no restart.
func TestE2EReplayResumesAPartitionStoppedOnARecord(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	if _, err := target.Exec(ctx, `ALTER TABLE public.items ADD CONSTRAINT small CHECK (amount < 100)`); err != nil {
		t.Fatal(err)
	}
	topic := st.TopicPrefix + ".public.items"
	port := freePort(t)
	cfg := itemsConfig(st, topic, "") + "errors:\n  tolerance: none\n"
	cfg = strings.Replace(cfg, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'fits', 1, now(), '{}', NULL)`)
	st.Exec(`INSERT INTO public.items VALUES (2, 'refused by the target', 500, now(), '{}', NULL)`)
	st.Exec(`INSERT INTO public.items VALUES (3, 'after it', 3, now(), '{}', NULL)`)
	stoppedMetric := fmt.Sprintf(`pgsink_partition_stopped{partition="0",topic="%s"}`, topic)
	var next int64
	eventually(t, 90*time.Second, "the partition stops at the refused row", func() (bool, string) {
		var reason *string
		if err := target.QueryRow(ctx, `SELECT next_offset, stopped_reason FROM pgsink.offsets WHERE topic = $1`, topic).Scan(&next, &reason); err != nil {
			return false, err.Error()
		}
		v, _ := metricValue(port, stoppedMetric)
		return reason != nil && v == 1, fmt.Sprintf("next_offset %d, stopped_reason %v, %s %v", next, reason, stoppedMetric, v)
	})
	if _, err := target.Exec(ctx, `ALTER TABLE public.items DROP CONSTRAINT small`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	out, err := pgsinkRun(t, cfg, []string{"TARGET_URL=" + targetURL}, "replay",
		"--topic", topic, "--partition", "0", "--from", fmt.Sprintf("offset:%d", next), "--wait", "--wait-timeout", "60s")
	if err != nil || !strings.Contains(out, "replay applied") {
		t.Fatalf("replay --wait: %v after %s\n%s", err, time.Since(began).Round(time.Millisecond), out)
	}
	t.Logf("replay --wait from offset %d returned after %s", next, time.Since(began).Round(time.Millisecond))
	itemsConverge(t, st, targetURL, 30*time.Second)("after the replay")
	if v, _ := metricValue(port, stoppedMetric); v != 0 {
		t.Errorf("%s = %v after the replay, want 0", stoppedMetric, v)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
