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

// Under apply.consistency: transaction status shows where the resolver
// stands and what it waits for, and each data partition waiting at
// apply.transaction.max_staged_bytes with what it staged ahead of the
// resolver's frontier.
func TestStatusShowsTheResolverAndTheStagingBound(t *testing.T) {
	at := time.Now()
	ptr := func(v int64) *int64 { return &v }
	data := func(partition int32, ahead int64, frontier int64, waiting bool) partitionStatus {
		return partitionStatus{Topic: "app.public.accounts", Partition: partition, NextOffset: ptr(50), HighWatermark: 90, Lag: ptr(40),
			Owner: "o", Epoch: 1, UpdatedAt: &at, StagedAheadBytes: ahead, ResolverFrontier: ptr(frontier), AtStagingBound: waiting}
	}
	since := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		report   statusReport
		want     []string
		wantNone []string
	}{
		{
			name: "partitions at the bound",
			report: statusReport{
				Partitions: []partitionStatus{data(0, 16<<20, 41, true), data(1, 3000, 7, false), data(2, 5<<20, -1, true)},
				Resolver:   &resolverStatus{Topic: "app.transaction", NextOffset: ptr(12), HighWatermark: 20, MaxStagedBytes: 16 << 20},
			},
			want: []string{
				"resolver: app.transaction[0] at offset 12 (high watermark 20, 8 markers to read)\n",
				"data partitions waiting at the staging bound (apply.transaction.max_staged_bytes 16MiB)",
				"  app.public.accounts[0]: waiting at the staging bound: 16.0 MiB staged ahead of the resolver's frontier (offset 41)\n",
				"  app.public.accounts[2]: waiting at the staging bound: 5.0 MiB staged ahead of the resolver's frontier (none of its records applied yet)\n",
			},
			wantNone: []string{"accounts[1]: waiting", "waits since", "stopped"},
		},
		{
			name: "the resolver waits for events",
			report: statusReport{
				Partitions: []partitionStatus{data(0, 16<<20, 41, false)},
				Resolver: &resolverStatus{Topic: "app.transaction", NextOffset: ptr(20), HighWatermark: 20, MaxStagedBytes: 1 << 20,
					WaitingAt: ptr(20), WaitingSince: &since, Waiting: "transaction 771:123 (END at offset 20): staged 2 of 3 events (public.orders: 0 of 1)"},
			},
			want: []string{
				"resolver: app.transaction[0] at offset 20 (high watermark 20, caught up)\n",
				"  waits since 2026-12-07T09:30:00Z at the END at offset 20 for events not all staged: transaction 771:123 (END at offset 20): staged 2 of 3 events (public.orders: 0 of 1); meanwhile every data partition stages past apply.transaction.max_staged_bytes\n",
			},
			wantNone: []string{"waiting at the staging bound"},
		},
		{
			name: "stopped",
			report: statusReport{
				Resolver: &resolverStatus{Topic: "app.transaction", NextOffset: ptr(3), HighWatermark: 9, Stopped: true, MaxStagedBytes: 1 << 20},
			},
			want: []string{"resolver: app.transaction[0] at offset 3 (high watermark 9, 6 markers to read), stopped (see the stopped partitions below)\n"},
		},
		{
			name:     "partition mode",
			report:   statusReport{Partitions: []partitionStatus{data(0, 0, -1, false)}},
			wantNone: []string{"resolver", "staging bound"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			printStatus(&out, &tc.report)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("status:\n%s\nwant %q", out.String(), w)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(out.String(), w) {
					t.Errorf("status:\n%s\nwant no %q", out.String(), w)
				}
			}
		})
	}
}
