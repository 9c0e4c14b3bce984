package main

import (
	"strings"
	"testing"
)

// The latency runs are grouped per setting, in the order a round ran them,
// each by round; the median is taken per figure, of an odd or even count.
func TestLatencySettingsAndMedians(t *testing.T) {
	r := &Results{}
	run := func(v latencyVariant, round int, p99, recv float64) {
		r.addLatency(v, &Latency{MaxWait: v.maxWait, Round: round, SteadyP99ms: p99, ReceiveP99ms: recv})
	}
	for round, p99 := range []float64{300, 40, 90, 1000, 60} {
		run(latencyVariant{}, round+1, p99, p99/10)
		run(latencyVariant{syncOff: true}, round+1, p99/2, 1)
		run(latencyVariant{maxWait: "100ms"}, round+1, 150, 2)
		run(latencyVariant{maxWait: "50ms"}, round+1, 80, 3)
	}
	settings := r.latencySettings()
	if len(settings) != 4 {
		t.Fatalf("%d settings, want 4 (default, synchronous_commit off, 100ms, 50ms)", len(settings))
	}
	for i, want := range []string{"", "", "100ms", "50ms"} {
		if len(settings[i]) != 5 || settings[i][0].MaxWait != want || settings[i][4].Round != 5 {
			t.Errorf("setting %d: %d runs, max_wait %q, last round %d; want 5 runs of %q by round", i, len(settings[i]), settings[i][0].MaxWait, settings[i][4].Round, want)
		}
	}
	if m := medianLatency(settings[0]); m.SteadyP99ms != 90 || m.ReceiveP99ms != 9 {
		t.Errorf("median of the defaults: p99 %v, received p99 %v; want 90 and 9", m.SteadyP99ms, m.ReceiveP99ms)
	}
	if m := medianLatency(settings[0][:4]); m.SteadyP99ms != 195 {
		t.Errorf("median of 4 runs = %v, want 195 (the mean of the middle two)", m.SteadyP99ms)
	}
	if got := metCount(settings[0], receivedP99, 10); got != 3 {
		t.Errorf("received p99 ≤ 10 ms in %d runs, want 3", got)
	}
	out := report(r)
	if strings.Contains(out, "%!") || !strings.Contains(out, "*median of 5*") || !strings.Contains(out, "met in 3 of 5 runs") {
		t.Errorf("report: a formatting error, or no median row, or no count of runs meeting the targets:\n%s", out)
	}
}

func TestMeanwhile(t *testing.T) {
	if got := meanwhile(nil); got != "–" {
		t.Errorf("meanwhile(nil) = %q, want –", got)
	}
	b := &Background{AutovacuumSeconds: 1.5, AutovacuumTables: []string{"bench: VACUUM ANALYZE public.orders", "x: a|b"},
		Checkpoints: 1, BrokerCPUSeconds: 12.25, BrokerJITSeconds: 3}
	want := `autovacuum 1.5 s (bench: VACUUM ANALYZE public.orders; x: a\|b), 1 checkpoints, broker 12.2 CPU-s (JIT 3.0)`
	if got := meanwhile(b); got != want {
		t.Errorf("meanwhile = %q, want %q", got, want)
	}
}
