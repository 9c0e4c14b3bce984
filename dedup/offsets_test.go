package dedup

import (
	"testing"
	"time"
)

// BehindSource: with records waiting, the time since the newest applied
// change's source commit; caught up, the lag it had when applied; nothing
// before a source time was stored; never negative.
func TestStoredBehindSource(t *testing.T) {
	src := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	applied := src.Add(1500 * time.Millisecond)
	now := src.Add(time.Minute)
	future := now.Add(time.Second)
	for _, tc := range []struct {
		name     string
		stored   Stored
		caughtUp bool
		want     time.Duration
		wantOK   bool
	}{
		{"behind", Stored{SourceTs: &src, SourceAppliedAt: &applied}, false, time.Minute, true},
		{"caught up", Stored{SourceTs: &src, SourceAppliedAt: &applied}, true, 1500 * time.Millisecond, true},
		{"no source time yet", Stored{}, false, 0, false},
		{"source clock ahead", Stored{SourceTs: &future, SourceAppliedAt: &applied}, true, 0, true},
	} {
		got, ok := tc.stored.BehindSource(now, tc.caughtUp)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: BehindSource = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
