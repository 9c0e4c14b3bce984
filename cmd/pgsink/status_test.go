package main

import "testing"

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
