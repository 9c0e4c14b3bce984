//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// sourceLagStatus is what the test reads of `pgsink status --json`.
type sourceLagStatus struct {
	Partitions []struct {
		Partition    int32    `json:"partition"`
		CaughtUp     bool     `json:"caught_up"`
		BehindSource *float64 `json:"behind_source_seconds"`
	} `json:"partitions"`
}

// TestE2ESourceLag checks the lag behind the source, in the metric and in
// `pgsink status`, against a delay the test makes: a change committed while
// pgsink is stopped is, once applied, at least as far behind the source as
// the time pgsink stayed stopped after its commit; status meanwhile shows the
// partition behind; a change applied while pgsink runs is less far behind
// than that. The delay is measured on the source's clock, which also stamps
// Debezium's source.ts_ms and (one server) the target's times.
func TestE2ESourceLag(t *testing.T) {
	const stoppedFor, idleFor = 6 * time.Second, 4 * time.Second
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'snapshot row', 1, now(), '{}', NULL)`)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, _ := itemsTarget(t)
	topic := st.TopicPrefix + ".public.items"
	port := freePort(t)
	cfg := strings.Replace(itemsConfig(st, topic, ""), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	status := func() sourceLagStatus {
		t.Helper()
		cmd := exec.Command(binary, "status", "--config", cfgPath, "--json")
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		var s sourceLagStatus
		if err := json.Unmarshal(out, &s); err != nil || len(s.Partitions) != 1 {
			t.Fatalf("status --json: %v\n%s\nwant one partition", err, out)
		}
		return s
	}
	sourceClock := func() time.Time {
		t.Helper()
		var now time.Time
		if err := st.Source().QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}
	lagMetric := fmt.Sprintf(`pgsink_source_lag_seconds{partition="0",topic="%s"}`, topic)
	converge := itemsConverge(t, st, targetURL, 90*time.Second)

	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	converge("the snapshot")
	st.Exec(`INSERT INTO public.items VALUES (2, 'streamed', 2, now(), '{}', NULL)`)
	committed := sourceClock()
	converge("a streamed insert")
	if lag, ok := metricValue(port, lagMetric); !ok || lag < 0 {
		t.Fatalf("%s = %v (present %v), want a non-negative lag", lagMetric, lag, ok)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}

	// Stopped, after an idle spell: the next change waits in Kafka, and
	// status counts the target behind since that change reached Kafka, not
	// since the last applied one (which would add the idle spell).
	waitFor := func(since time.Time, d time.Duration, what string) {
		t.Helper()
		eventually(t, 2*d+10*time.Second, what, func() (bool, string) {
			waited := sourceClock().Sub(since)
			return waited >= d, waited.String()
		})
	}
	waitFor(committed, idleFor, "the partition to stay idle")
	beforeInsert := sourceClock()
	st.Exec(`INSERT INTO public.items VALUES (3, 'while stopped', 3, now(), '{}', NULL)`)
	delayed := sourceClock()
	eventually(t, 60*time.Second, "status shows the partition behind once Debezium has published the change", func() (bool, string) {
		s := status()
		return !s.Partitions[0].CaughtUp, fmt.Sprintf("%+v", s.Partitions[0])
	})
	seen := sourceClock() // the waiting record was in Kafka before this
	waitFor(delayed, stoppedFor, "the source clock to pass the delay")
	before := sourceClock()
	behind := status()
	after := sourceClock()
	floor, ceiling := before.Sub(seen).Seconds(), after.Sub(beforeInsert).Seconds()
	if b := behind.Partitions[0].BehindSource; behind.Partitions[0].CaughtUp || b == nil || *b < floor || *b > ceiling {
		t.Fatalf("status while stopped: %+v (behind_source_seconds %v), want behind by %.3f–%.3f s (since the waiting change reached Kafka, without the idle %s before it)",
			behind.Partitions[0], b, floor, ceiling, idleFor)
	}

	p = startPgsink(t, cfg, "TARGET_URL="+targetURL)
	converge("the change made while stopped")
	var afterDelay float64
	eventually(t, 30*time.Second, "the lag metric after the restart", func() (bool, string) {
		v, ok := metricValue(port, lagMetric)
		afterDelay = v
		return ok, "absent"
	})
	if afterDelay < stoppedFor.Seconds() {
		t.Fatalf("%s = %.3f after applying a change committed %s before pgsink started, want at least that", lagMetric, afterDelay, stoppedFor)
	}
	if s := status(); !s.Partitions[0].CaughtUp || s.Partitions[0].BehindSource == nil || *s.Partitions[0].BehindSource < stoppedFor.Seconds() {
		t.Fatalf("status after the restart: %+v, want caught up with at least %s behind source at apply", s.Partitions[0], stoppedFor)
	}

	// Running: a new change is applied close behind the source again.
	st.Exec(`INSERT INTO public.items VALUES (4, 'running', 4, now(), '{}', NULL)`)
	converge("a change applied while running")
	eventually(t, 30*time.Second, "the lag back below the delay", func() (bool, string) {
		v, _ := metricValue(port, lagMetric)
		return v >= 0 && v < stoppedFor.Seconds(), fmt.Sprintf("%s = %.3f", lagMetric, v)
	})
	s := status()
	if b := s.Partitions[0].BehindSource; !s.Partitions[0].CaughtUp || b == nil || *b < 0 || *b >= stoppedFor.Seconds() {
		t.Fatalf("status while running: %+v, want caught up and less than %s behind source", s.Partitions[0], stoppedFor)
	}
	cmd := exec.Command(binary, "status", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "BEHIND SOURCE") || !strings.Contains(string(out), "caught up (") {
		t.Fatalf("status: %v\n%s\nwant a BEHIND SOURCE column saying caught up", err, out)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}
