package sink

import (
	"fmt"
	"testing"

	"github.com/pgsink/pgsink/debezium"
)

// TestByPartition: the resolver writes a chunk of a source transaction,
// whose events alternate between partitions, a partition at a time; each
// partition's records keep their order (the order of each key's changes).
func TestByPartition(t *testing.T) {
	rec := func(topic string, p int32, off int64) Item {
		return Item{Record: debezium.Record{Topic: topic, Partition: p, Offset: off}}
	}
	in := []Item{rec("a", 1, 10), rec("a", 0, 20), rec("b", 1, 5), rec("a", 1, 11), rec("a", 0, 21), rec("a", 1, 12)}
	got := ""
	for _, it := range byPartition(in) {
		got += fmt.Sprintf("%s%d@%d ", it.Record.Topic, it.Record.Partition, it.Record.Offset)
	}
	if want := "a1@10 a1@11 a1@12 a0@20 a0@21 b1@5 "; got != want {
		t.Errorf("byPartition = %q, want %q", got, want)
	}
	one := in[:1]
	if out := byPartition(one); len(out) != 1 || &out[0] != &one[0] {
		t.Errorf("byPartition of one partition copied its items")
	}
}
