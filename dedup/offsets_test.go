package dedup

import (
	"testing"
	"time"
)

// BehindSource: with records waiting, the time since the oldest waiting
// record reached Kafka, or since the newest applied change's source commit
// when that is unknown or later; caught up, the lag the applied change had
// when applied; nothing before a source time was stored; never negative.
func TestStoredBehindSource(t *testing.T) {
	src := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	applied := src.Add(1500 * time.Millisecond)
	now := src.Add(time.Minute)
	future := now.Add(time.Second)
	for _, tc := range []struct {
		name     string
		stored   Stored
		caughtUp bool
		waiting  time.Time
		want     time.Duration
		wantOK   bool
	}{
		{"behind, the waiting record unknown", Stored{SourceTs: &src, SourceAppliedAt: &applied}, false, time.Time{}, time.Minute, true},
		{"behind since the waiting record", Stored{SourceTs: &src, SourceAppliedAt: &applied}, false, now.Add(-5 * time.Second), 5 * time.Second, true},
		{"waiting record older than the applied change", Stored{SourceTs: &src, SourceAppliedAt: &applied}, false, src.Add(-time.Hour), time.Minute, true},
		{"caught up", Stored{SourceTs: &src, SourceAppliedAt: &applied}, true, time.Time{}, 1500 * time.Millisecond, true},
		{"no source time yet", Stored{}, false, now, 0, false},
		{"source clock ahead", Stored{SourceTs: &future, SourceAppliedAt: &applied}, true, time.Time{}, 0, true},
	} {
		got, ok := tc.stored.BehindSource(now, tc.caughtUp, tc.waiting)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: BehindSource = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
