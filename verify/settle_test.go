package verify

import (
	"testing"

	"github.com/pgsink/pgsink/dedup"
)

func TestAppliedNeedsEveryMarkedPartition(t *testing.T) {
	stored := func(topic string, p int32, next int64) dedup.Stored {
		return dedup.Stored{Claim: dedup.Claim{PartitionID: dedup.PartitionID{Topic: topic, Partition: p}, NextOffset: next}}
	}
	marks := []Mark{{"t", 0, 10}, {"t", 1, 5}, {"t", 2, 0}}
	for _, c := range []struct {
		name   string
		stored []dedup.Stored
		want   bool
	}{
		{"every partition at its mark", []dedup.Stored{stored("t", 0, 10), stored("t", 1, 7)}, true},
		{"one behind", []dedup.Stored{stored("t", 0, 9), stored("t", 1, 7)}, false},
		{"one with records never claimed", []dedup.Stored{stored("t", 0, 10)}, false},
		{"another topic's row does not count", []dedup.Stored{stored("t", 0, 10), stored("u", 1, 7)}, false},
	} {
		if got := applied(marks, c.stored); got != c.want {
			t.Errorf("%s: applied = %v, want %v", c.name, got, c.want)
		}
	}
}
