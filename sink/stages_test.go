package sink

import (
	"slices"
	"testing"
)

// A session keeps at most its bound of staging tables after each commit,
// dropping the least recently used; what the committing transaction used
// is the most recent, and it drops its own only when it alone used more
// than the bound.
func TestSessionStagesEvictLeastRecentlyUsed(t *testing.T) {
	s := &sessionStages{lastUse: map[string]uint64{}}
	commit := func(limit int, used ...string) []string {
		drop := s.coldest(used, limit)
		s.committed(used, drop)
		return drop
	}
	if drop := commit(3, "a", "b", "c"); drop != nil {
		t.Fatalf("dropped %v with 3 of 3, want none", drop)
	}
	commit(3, "a") // a is now the most recent: b is the coldest
	if drop := commit(3, "d"); !slices.Equal(drop, []string{"b"}) {
		t.Errorf("dropped %v, want [b]: the least recently used", drop)
	}
	if len(s.lastUse) != 3 {
		t.Errorf("session keeps %d staging tables, want 3", len(s.lastUse))
	}
	// One transaction using five: the older ones go first, then its own
	// earliest.
	drop := commit(3, "e", "f", "a", "g", "h")
	slices.Sort(drop)
	if !slices.Equal(drop, []string{"c", "d", "e", "f"}) {
		t.Errorf("dropped %v, want [c d e f]: the others first, then the transaction's earliest", drop)
	}
	var kept []string
	for name := range s.lastUse {
		kept = append(kept, name)
	}
	slices.Sort(kept)
	if !slices.Equal(kept, []string{"a", "g", "h"}) {
		t.Errorf("session keeps %v, want [a g h]: the transaction's latest", kept)
	}
}
