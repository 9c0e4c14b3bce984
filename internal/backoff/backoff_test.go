package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestNextStaysWithinBounds draws many schedules and checks every wait
// lies in [base, limit].
func TestNextStaysWithinBounds(t *testing.T) {
	base, limit := 100*time.Millisecond, 10*time.Second
	for range 200 {
		j := New(base, limit)
		for range 30 {
			if d := j.Next(); d < base || d > limit {
				t.Fatalf("wait %v outside [%v, %v]", d, base, limit)
			}
		}
	}
}

// TestLoopsStartedTogetherSpreadOut is the point of the package: 100 retry
// loops that fail at the same moment must not retry in step. After three
// retries their cumulative waits must spread over a wide window (no two
// loops a millisecond apart for most of them), where plain doubling puts
// every loop at exactly the same instant.
func TestLoopsStartedTogetherSpreadOut(t *testing.T) {
	base, limit := 100*time.Millisecond, 10*time.Second
	src := rand.New(rand.NewPCG(1, 2))
	at := make([]time.Duration, 100)
	for i := range at {
		j := New(base, limit)
		j.rand = src.Float64
		for range 3 {
			at[i] += j.Next()
		}
	}
	lo, hi := at[0], at[0]
	buckets := map[time.Duration]bool{}
	for _, d := range at {
		lo, hi = min(lo, d), max(hi, d)
		buckets[d/(10*time.Millisecond)] = true
	}
	if hi-lo < 500*time.Millisecond {
		t.Errorf("100 loops' third retries span %v, want at least 500ms", hi-lo)
	}
	if len(buckets) < 50 {
		t.Errorf("100 loops' third retries fall in %d distinct 10ms slots, want at least 50", len(buckets))
	}
}

// TestGrowsTowardsTheLimit: the schedule still backs off — late waits are
// longer than early ones on average, and reach the limit's range.
func TestGrowsTowardsTheLimit(t *testing.T) {
	base, limit := 100*time.Millisecond, 10*time.Second
	var first, tenth time.Duration
	for range 500 {
		j := New(base, limit)
		first += j.Next()
		for range 8 {
			j.Next()
		}
		tenth += j.Next()
	}
	if tenth < 10*first {
		t.Errorf("mean tenth wait %v not well above mean first wait %v", tenth/500, first/500)
	}
}
