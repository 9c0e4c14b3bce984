package sink

import (
	"errors"
	"testing"
	"time"

	"github.com/pgsink/pgsink/debezium"
)

// The source time stored with a span's offset is its newest decoded
// change's, whatever the order; zero when none carries one.
func TestNewestSourceTs(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) Item { return Item{Change: debezium.Change{SourceTs: t0.Add(d)}} }
	items := []Item{at(2 * time.Second), at(5 * time.Second), at(time.Second),
		{Err: errors.New("undecodable"), Change: debezium.Change{SourceTs: t0.Add(time.Hour)}}, {}}
	if got := NewestSourceTs(items); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("NewestSourceTs = %v, want %v", got, t0.Add(5*time.Second))
	}
	s := span{batch: &Batch{Items: items}, lo: 2, hi: 5}
	if got := s.sourceTs(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("span [2,5) sourceTs = %v, want %v", got, t0.Add(time.Second))
	}
	if got := NewestSourceTs(items[3:]); !got.IsZero() {
		t.Errorf("NewestSourceTs without a decoded source time = %v, want zero", got)
	}
}
