package connector

import (
	"errors"
	"testing"
	"time"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// A batch sets its partition's lag behind the source from its newest source
// commit time, and each table's from its own newest; an undecodable item
// and one without a source time count for nothing, and a source clock ahead
// of this one gives 0, not a negative lag.
func TestSourceLagPerPartitionAndTable(t *testing.T) {
	m := NewMetrics()
	p := &partition{workerDeps: &workerDeps{metrics: m}, log: zap.NewNop(), labels: [2]string{"t", "0"}}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a, b := &sink.Table{Schema: "public", Name: "a"}, &sink.Table{Schema: "public", Name: "b"}
	item := func(table *sink.Table, ago time.Duration) sink.Item {
		return sink.Item{Table: table, Change: debezium.Change{SourceTs: now.Add(-ago)}}
	}
	batch := &sink.Batch{Items: []sink.Item{
		item(a, 5*time.Second), item(a, 3*time.Second), item(b, 7*time.Second),
		{Table: a, Err: errors.New("undecodable"), Change: debezium.Change{SourceTs: now}},
		{Table: b}, // no source time
	}}
	p.reportSourceLag(batch, now)
	if got := value(m.SourceLag.WithLabelValues("t", "0")); got != 3 {
		t.Errorf("pgsink_source_lag_seconds = %v, want 3 (the newest applied change)", got)
	}
	if got := value(m.SourceApplied.WithLabelValues("t", "0")); got != float64(now.Add(-3*time.Second).Unix()) {
		t.Errorf("pgsink_source_applied_timestamp_seconds = %v, want %d", got, now.Add(-3*time.Second).Unix())
	}
	for table, want := range map[string]float64{"public.a": 3, "public.b": 7} {
		if got := value(m.TableSourceLag.WithLabelValues(table)); got != want {
			t.Errorf("pgsink_table_source_lag_seconds{%s} = %v, want %v", table, got, want)
		}
	}

	if !p.lagTables["public.a"] || !p.lagTables["public.b"] || len(p.lagTables) != 2 {
		t.Errorf("tables whose series the revocation drops: %v, want public.a and public.b", p.lagTables)
	}

	p.reportSourceLag(&sink.Batch{Items: []sink.Item{item(a, -time.Second)}}, now)
	if got := value(m.SourceLag.WithLabelValues("t", "0")); got != 0 {
		t.Errorf("pgsink_source_lag_seconds with the source clock ahead = %v, want 0", got)
	}
	p.reportSourceLag(&sink.Batch{}, now.Add(time.Hour))
	if got := value(m.SourceLag.WithLabelValues("t", "0")); got != 0 {
		t.Errorf("pgsink_source_lag_seconds after a batch without source times = %v, want it unchanged (0)", got)
	}
}
