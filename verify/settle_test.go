package verify

import (
	"slices"
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

// TestMarkedTopicsUnderTransactionMode: in transaction mode a table's
// partitions at their marks say only that its records are staged; the
// settler waits for the transaction topic's resolver too.
func TestMarkedTopicsUnderTransactionMode(t *testing.T) {
	tbl := &Table{Topics: []string{"app.public.t"}}
	if got := (&PositionSettler{}).markedTopics(tbl); !slices.Equal(got, []string{"app.public.t"}) {
		t.Errorf("partition mode: marked topics %v, want the table's", got)
	}
	p := &PositionSettler{TransactionTopic: "app.transaction"}
	if got := p.markedTopics(tbl); !slices.Equal(got, []string{"app.public.t", "app.transaction"}) {
		t.Errorf("transaction mode: marked topics %v, want the table's and app.transaction", got)
	}
	if !slices.Equal(tbl.Topics, []string{"app.public.t"}) {
		t.Errorf("the table's topics changed to %v", tbl.Topics)
	}
	marks := []Mark{{"app.public.t", 0, 10}, {"app.transaction", 0, 4}}
	staged := []dedup.Stored{
		{Claim: dedup.Claim{PartitionID: dedup.PartitionID{Topic: "app.public.t"}, NextOffset: 10}},
		{Claim: dedup.Claim{PartitionID: dedup.PartitionID{Topic: "app.transaction"}, NextOffset: 2}},
	}
	if applied(marks, staged) {
		t.Error("staged but not resolved counts as applied")
	}
}
