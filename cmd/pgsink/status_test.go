package main

import (
	"strings"
	"testing"
	"time"
)

// The BEHIND SOURCE column of `pgsink status`.
func TestStatusBehindSource(t *testing.T) {
	secs := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		line partitionStatus
		want string
	}{
		{partitionStatus{}, "-"},
		{partitionStatus{BehindSource: secs(3.21)}, "3.2 s behind source"},
		{partitionStatus{BehindSource: secs(0.04), CaughtUp: true}, "caught up (0.0 s at apply)"},
	} {
		if got := behindSource(tc.line); got != tc.want {
			t.Errorf("behindSource(%+v) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// Under apply.consistency: transaction the LAG column shows what waits in
// staging beside the Kafka lag.
func TestStatusShowsStagedRecords(t *testing.T) {
	next, lag, at := int64(10), int64(0), time.Now()
	line := func(staged int64) partitionStatus {
		return partitionStatus{Topic: "t", NextOffset: &next, HighWatermark: 10, Lag: &lag, Owner: "o", Epoch: 1, UpdatedAt: &at, Staged: staged}
	}
	var out strings.Builder
	printStatus(&out, &statusReport{Partitions: []partitionStatus{line(3), line(0)}})
	if !strings.Contains(out.String(), "0 (+3 staged)") {
		t.Errorf("status with 3 staged records:\n%s\nwant the lag 0 with \"(+3 staged)\"", out.String())
	}
	if strings.Count(out.String(), "staged") != 1 {
		t.Errorf("status:\n%s\nwant \"staged\" only on the line that has staged records", out.String())
	}
}
