package connector

import (
	"testing"
)

// BenchmarkConsumedCounter is what counting a record in
// pgsink_records_consumed_total costs collect: the series looked up per
// record (as before) against once a batch.
func BenchmarkConsumedCounter(b *testing.B) {
	m := NewMetrics()
	const topic, batch = "bench_avro.public.orders", 4096
	b.Run("per-record-lookup", func(b *testing.B) {
		for b.Loop() {
			for range batch {
				m.Consumed.WithLabelValues(topic).Inc()
			}
		}
	})
	b.Run("per-batch-lookup", func(b *testing.B) {
		for b.Loop() {
			c := m.Consumed.WithLabelValues(topic)
			for range batch {
				c.Inc()
			}
		}
	})
}
