package txapply

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestStopReasons: what status and the metrics say when the resolver stops
// names the transaction and, for an incomplete one, each collection short
// of its count, so a topic not configured or a filtered table is visible.
func TestStopReasons(t *testing.T) {
	tests := []struct {
		err        error
		want       string
		wantReason string
	}{
		{err: &IncompleteError{ID: "771:2401", Offset: 9, Staged: map[string]int64{"public.accounts": 2}, Want: map[string]int64{"public.accounts": 2, "public.orders": 1, "public.audit": 3}, StagedTotal: 2, WantTotal: 6},
			want:       "transaction 771:2401 (END at offset 9): staged 2 of 6 events (public.audit: 0 of 3, public.orders: 0 of 1)",
			wantReason: "incomplete"},
		{err: &NoEndError{TxID: 771, Records: 4, FirstStaged: time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)},
			want:       "transaction 771: 4 events staged since 2026-12-06T19:00:00Z and no END in the transaction topic",
			wantReason: "no_end"},
		{err: &OverstagedError{ID: "771:2401", Collection: "public.orders", Staged: 2, Want: 1},
			want:       "transaction 771:2401: 2 events of public.orders staged, its END counts 1: refusing to apply it",
			wantReason: "overstaged"},
		{err: errors.New("connection refused"), want: "connection refused", wantReason: "error"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("message:\n%s\nwant:\n%s", got, tc.want)
		}
		if got := StopReason(fmt.Errorf("wrapped: %w", tc.err)); got != tc.wantReason {
			t.Errorf("StopReason(%v) = %q, want %q", tc.err, got, tc.wantReason)
		}
	}
}
