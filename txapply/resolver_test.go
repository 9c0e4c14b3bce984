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

// The resolver's transaction sorts staged records of a chunk of
// apply.batch.max_bytes in memory: work_mem twice that, never below
// PostgreSQL's default, capped below work_mem's largest value.
func TestSortMemory(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		want  string
	}{{0, ""}, {1 << 20, ""}, {2 << 20, ""}, {16 << 20, "32768kB"}, {1 << 40, "1048576kB"}} {
		if got := (&Resolver{bytes: c.bytes}).sortMemory(); got != c.want {
			t.Errorf("sortMemory at %d bytes a chunk = %q, want %q", c.bytes, got, c.want)
		}
	}
}
