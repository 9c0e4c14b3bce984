package txapply

import (
	"fmt"
	"testing"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// A chunk's records are grouped by partition within each run of one
// topic, each partition's in their order, and never moved across another
// topic's records: a source transaction's events alternate between
// partitions (one write per partition instead of one per record or two),
// while a table written before another must stay before it (a foreign
// key may be checked at once).
func TestGroupPartitions(t *testing.T) {
	rec := func(topic string, p int32, off int64) sink.Item {
		return sink.Item{Record: debezium.Record{Topic: topic, Partition: p, Offset: off}}
	}
	items := []sink.Item{rec("orders", 1, 10), rec("orders", 0, 20), rec("orders", 1, 11),
		rec("lines", 1, 5), rec("lines", 0, 6), rec("orders", 0, 21), rec("orders", 1, 12)}
	groupPartitions(items)
	got := ""
	for _, it := range items {
		got += fmt.Sprintf("%s%d@%d ", it.Record.Topic, it.Record.Partition, it.Record.Offset)
	}
	if want := "orders0@20 orders1@10 orders1@11 lines0@6 lines1@5 orders0@21 orders1@12 "; got != want {
		t.Errorf("grouped %q, want %q", got, want)
	}
}
