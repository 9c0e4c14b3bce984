package debezium

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process used so far (user and system, all
// threads, GC included). On a shared, busy machine wall time measures the
// scheduler; records per CPU second measure the decoder.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMix is the schemas.enable=true fixture mix: every record of the JSON
// scenarios with schemas, each with the options it was recorded under (the
// Avro scenario has BenchmarkDecodeAvro).
func benchMix(b *testing.B) (decoders []*Decoder, records [][]Record, bytes int64, n int) {
	b.Helper()
	for _, f := range loadFixtures(b) {
		if f.schemaless() || f.avro() {
			continue
		}
		var recs []Record
		for _, r := range f.records {
			recs = append(recs, toRecord(r))
			bytes += int64(len(r.Key) + len(r.Value))
		}
		decoders = append(decoders, NewDecoder(f.options()))
		records = append(records, recs)
		n += len(recs)
	}
	return decoders, records, bytes, n
}

// BenchmarkDecode decodes the mix; one iteration is every record once.
func BenchmarkDecode(b *testing.B) {
	decoders, records, size, n := benchMix(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		for i, d := range decoders {
			for _, rec := range records[i] {
				if _, err := d.Decode(rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(b.N)*float64(size)/1e6/(cpuTime(b)-cpu0).Seconds(), "MB/cpu-s")
	b.ReportMetric(float64(n), "records/op")
}

// BenchmarkStdlibMap is the baseline: encoding/json unmarshalling the same
// keys and values into map[string]any, which is less work than decoding
// (no typed values) and still slower.
func BenchmarkStdlibMap(b *testing.B) {
	_, records, size, n := benchMix(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		for _, recs := range records {
			for _, rec := range recs {
				var k, v map[string]any
				if rec.Key != nil {
					if err := json.Unmarshal(rec.Key, &k); err != nil {
						b.Fatal(err)
					}
				}
				if rec.Value != nil {
					if err := json.Unmarshal(rec.Value, &v); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(b.N)*float64(size)/1e6/(cpuTime(b)-cpu0).Seconds(), "MB/cpu-s")
	b.ReportMetric(float64(n), "records/op")
}

// BenchmarkDecodeAvro decodes the table change events of one workload
// recorded twice, through the JsonConverter (shipped) and through
// Apicurio's Avro converter (shipped_avro): the same rows, so records/cpu-s
// of the two compare the encodings. One iteration is every record once.
// The _small cases leave out the events carrying TOAST-sized values (a
// 6,000-character text, a 3,000-element int[]), which dominate the mix:
// what remains is rows of the size of make bench's.
func BenchmarkDecodeAvro(b *testing.B) {
	fixtures := loadFixtures(b)
	for _, name := range []string{"shipped", "shipped_avro"} {
		var f *fixture
		for _, x := range fixtures {
			if x.name == name {
				f = x
			}
		}
		if f == nil {
			b.Fatalf("no fixture %s", name)
		}
		var all, small []Record
		var allSize, smallSize int64
		probe := NewDecoder(f.options())
		for _, r := range f.records {
			if strings.HasSuffix(r.Topic, ".public.all_types") && r.Value != nil {
				rec := toRecord(r)
				all = append(all, rec)
				allSize += int64(len(r.Key) + len(r.Value))
				ch, err := probe.Decode(rec)
				if err != nil {
					b.Fatal(err)
				}
				if !holdsLarge(ch.Before) && !holdsLarge(ch.After) {
					small = append(small, rec)
					smallSize += int64(len(r.Key) + len(r.Value))
				}
			}
		}
		run := func(name string, recs []Record, size int64) {
			b.Run(name, func(b *testing.B) { decodeLoop(b, NewDecoder(f.options()), recs, size) })
		}
		run(name, all, allSize)
		run(name+"_small", small, smallSize)
	}
}

// decodeLoop is the timed part of the decoding benchmarks: every record
// once per iteration, reported per CPU second and per record.
func decodeLoop(b *testing.B, d *Decoder, recs []Record, size int64) {
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		for _, rec := range recs {
			if _, err := d.Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(len(recs)) * float64(b.N)
	b.ReportMetric(n/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(size)/float64(len(recs)), "bytes/record")
	b.ReportMetric(float64(len(recs)), "records/op")
}

// holdsLarge reports a row image with a TOAST-sized value.
func holdsLarge(r Row) bool {
	for _, f := range r {
		switch v := f.Value.(type) {
		case string:
			if len(v) > 1024 {
				return true
			}
		case []byte:
			if len(v) > 1024 {
				return true
			}
		case []int32:
			if len(v) > 256 {
				return true
			}
		}
		if f.Unchanged {
			return true
		}
	}
	return false
}
