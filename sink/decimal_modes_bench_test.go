package sink

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/pgcopy"
	"github.com/pgsink/pgsink/test/recording"
)

// decimalColumns are the recorded all_types table's numeric and money
// columns, the only ones decimal.handling.mode changes.
var decimalColumns = []benchColumn{
	{"c_numeric", "numeric(12,2)", "numeric"}, {"c_numeric_free", "numeric", "numeric"}, {"c_money", "money", "money"},
}

// benchColumn is a target column of a benchmark: its name, its type as
// format_type() gives it, and that type's name in pgtype's map.
type benchColumn struct{ name, typ, pgtype string }

// copyColumns returns the binders of cols and their binary COPY encoder.
func copyColumns(b *testing.B, cols []benchColumn) ([]binder, *pgcopy.Encoder) {
	types := pgtype.NewMap()
	pgcopy.RegisterTypes(types, 2)
	names := make([]string, len(cols))
	oids := make([]uint32, len(cols))
	binders := make([]binder, len(cols))
	for i, c := range cols {
		names[i], binders[i] = c.name, binderFor(c.typ)
		t, ok := types.TypeForName(c.pgtype)
		if !ok {
			b.Fatalf("no type %s", c.pgtype)
		}
		oids[i] = t.OID
	}
	return binders, pgcopy.NewEncoder(types, names, oids)
}

// BenchmarkDecimalModes measures what decimal.handling.mode=string costs
// against precise on pgsink's side, in CPU per event: each of the recorded
// all_types change events (testdata/debezium, the same workload recorded
// under each mode) decoded as pgsink's router decodes it, then its numeric
// and money values bound for their columns and encoded for binary COPY as
// a batch write does. The other columns decode and encode alike in both
// modes. Results: docs/benchmarks.md.
func BenchmarkDecimalModes(b *testing.B) {
	for _, mode := range []struct{ name, fixture string }{{"precise", "identity_default"}, {"string", "decimal_string"}} {
		b.Run(mode.name, func(b *testing.B) {
			all, err := recording.ReadFile(filepath.Join("..", "testdata", "debezium", mode.fixture, "records.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			var records []debezium.Record
			var size int64
			for _, r := range all {
				if strings.HasSuffix(r.Topic, ".public.all_types") && r.Value != nil {
					records = append(records, debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
					size += int64(len(r.Key) + len(r.Value))
				}
			}
			binders, enc := copyColumns(b, decimalColumns)
			dec := debezium.NewDecoder(debezium.Options{})
			row := make([]any, len(decimalColumns))
			buf := make([]byte, 0, 4096)
			// bindAndEncode binds an event's decimal values and encodes
			// them as one COPY row.
			bindAndEncode := func(ch debezium.Change) {
				var err error
				for i, c := range decimalColumns {
					row[i] = nil
					if f, ok := ch.After.Get(c.name); ok && f.Value != nil && !f.Unchanged {
						if row[i], err = binders[i](f.Value); err != nil {
							b.Fatal(err)
						}
					}
				}
				if buf, err = enc.AppendRow(buf[:0], 0, row); err != nil {
					b.Fatal(err)
				}
			}
			decoded := make([]debezium.Change, len(records))
			for i, rec := range records {
				if decoded[i], err = dec.Decode(rec); err != nil {
					b.Fatal(err)
				}
			}
			// event: the whole event decoded, then its decimals bound and
			// encoded. values: only the binding and encoding, of events
			// decoded beforehand.
			b.Run("event", func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				cpu0 := benchCPU(b)
				for b.Loop() {
					for _, rec := range records {
						ch, err := dec.Decode(rec)
						if err != nil {
							b.Fatal(err)
						}
						bindAndEncode(ch)
					}
				}
				b.ReportMetric((benchCPU(b)-cpu0).Seconds()*1e9/(float64(len(records))*float64(b.N)), "cpu-ns/event")
			})
			b.Run("values", func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := benchCPU(b)
				for b.Loop() {
					for _, ch := range decoded {
						bindAndEncode(ch)
					}
				}
				b.ReportMetric((benchCPU(b)-cpu0).Seconds()*1e9/(float64(len(records))*float64(b.N)), "cpu-ns/event")
			})
		})
	}
}

// benchCPU is the CPU time the process used so far: on a shared machine
// wall time measures the scheduler.
func benchCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
