package main

import (
	"fmt"
	"strings"
)

// avroReport is the report of a run of the Avro phase alone (make
// bench-avro): its header, the phase, and the profiles of its two pgsink
// drains.
func avroReport(r *Results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks: Avro through the schema registry\n\n")
	p("Written by `%s` (test/bench `-only avro`) on %s, run %s–%s UTC%s. Every figure below comes from that ONE run; ",
		r.Command, r.Finished.Format("2006-01-02"), r.Started.Format("15:04"), r.Finished.Format("15:04"), onCommit(r))
	p("[BENCHMARKS.md](BENCHMARKS.md) is the last full `make bench`, which includes this phase.\n\n")
	p("**Machine:** %s.\n\n", r.Machine)
	p("**Reproduce:** `make bench-avro` (brings the stack up; reuses both workload topics while they match, `rm .stack/bench/workload*.json` forces new ones). Raw figures: `.stack/bench/results-partial.json`; logs, configurations and the CPU profiles: `.stack/bench/`.\n\n")
	b.WriteString(avroSection(r))
	b.WriteString(failedSection(r))
	if a := r.Avro; a != nil {
		b.WriteString(profileSection("pgsink on Avro", a.Pgsink))
		b.WriteString(profileSection("pgsink on JSON", a.PgsinkJSON))
	}
	return b.String()
}

// avroSection is the Avro phase's workload, its three drains with their
// ratios, and issue 23's targets.
func avroSection(r *Results) string {
	a := r.Avro
	if a == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w := a.Workload
	perEvent := func(w Workload) float64 { return float64(w.KVBytes) / float64(max(w.Events, 1)) }
	jsonW := r.Workload
	p("## Avro through the schema registry (issue 23)\n\n")
	p("The workload's change events again — the same statements from the same seed, into a second source database `%s` — produced by the **real Debezium** PostgreSQL connector with **Apicurio Registry's `AvroConverter`** for key and value in the Confluent wire format (magic byte, 4-byte contentId, Avro body; `stacktest.AvroConverter`) into the %d-partition topic `%s`: ",
		avroSource.db, partitions, w.Topic)
	p("%d change events (%d creates, %d updates, %d deletes), %d Kafka records, %.0f MB of keys and values (%.0f MB of log segments). Debezium took %s (≈ %d events/s). ",
		w.Events, w.Creates, w.Updates, w.Deletes, w.Records, float64(w.KVBytes)/1e6, float64(w.LogBytes)/1e6, w.ProducedIn, w.DebeziumPS)
	p("Debezium's `__debezium.context.*` headers: **%s** on both topics (`extended.headers.enabled`, off in the shipped connector files; `PGSINK_BENCH_CONTEXT_HEADERS=1` turns them on). ",
		headersSetting(w, jsonW))
	p("Bytes per event are all key and value bytes of the topic (tombstones' keys included) over its change events: **%.0f B on Avro, %.0f B on JSON** with schemas (%s smaller).\n\n",
		perEvent(w), perEvent(jsonW), ratio(perEvent(jsonW), perEvent(w)))
	p("Three drains in this order, each from the start of the sink to its committed positions covering the whole topic: pgsink on the Avro topic (`encoding: avro`, `schema_registry.url` the registry's Confluent-compatible API), pgsink on the JSON topic — both at default settings (exactly once), each with the same 10-s CPU profile — and the Debezium JDBC sink (unnest inserts on; the batch settings of its JSON runs) reading the Avro topic through the same `AvroConverter`. ")
	p("CPU is utime + stime from `/proc`: pgsink's process, the whole Kafka Connect JVM (idle otherwise) for the JDBC sink, and the whole target PostgreSQL server (postmaster, backends, WAL writer, checkpointer) over each run; the times include start-up and group join. CPU-µs per event equals CPU-s per million events. End state: the target table compared with its own source table (row count and a digest of every column).\n\n")
	p("| run | bytes per event | events/s | MB/s | time | sink CPU-µs per event | PostgreSQL CPU-µs per event | sink + PostgreSQL | peak RSS | end state |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(name string, d *Drain, w Workload) {
		if d == nil {
			p("| %s | %.0f | failed (below) | | | | | | | |\n", name, perEvent(w))
			return
		}
		rss := "–"
		if d.PeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", d.PeakRSSMiB)
		}
		state := d.Verified
		if !d.Complete {
			state = "not drained: " + d.Note
		}
		p("| %s | %.0f | %.0f | %.1f | %.1f s | %.2f | %.2f | **%.2f** | %s | %s |\n",
			name, perEvent(w), d.EventsPS, d.MBPS, d.Seconds, d.CPUPerM, d.PGCPUPerM, d.CPUPerM+d.PGCPUPerM, rss, state)
	}
	row("pgsink on Avro", a.Pgsink, w)
	row("pgsink on JSON", a.PgsinkJSON, jsonW)
	row("Debezium JDBC sink on Avro (unnest insert ON)", a.JDBC, w)
	p("\n")
	total := func(d *Drain) float64 { return d.CPUPerM + d.PGCPUPerM }
	if x, j := a.Pgsink, a.PgsinkJSON; x != nil && j != nil {
		p("- pgsink, Avro against JSON: **%s** the events/s, pgsink's own CPU per event **%s** (%.2f vs %.2f µs), PostgreSQL's %s, sink + PostgreSQL %s, peak RSS %.0f vs %.0f MiB.\n",
			ratio(x.EventsPS, j.EventsPS), ratio(x.CPUPerM, j.CPUPerM), x.CPUPerM, j.CPUPerM, ratio(x.PGCPUPerM, j.PGCPUPerM), ratio(total(x), total(j)), x.PeakRSSMiB, j.PeakRSSMiB)
	}
	if x, k := a.Pgsink, a.JDBC; x != nil && k != nil {
		p("- On Avro, pgsink against the JDBC sink: **%s** the events/s; the sink's own CPU per event %s cheaper (%.2f vs %.2f µs), PostgreSQL's %s cheaper (%.2f vs %.2f µs).\n",
			ratio(x.EventsPS, k.EventsPS), ratio(k.CPUPerM, x.CPUPerM), x.CPUPerM, k.CPUPerM, ratio(k.PGCPUPerM, x.PGCPUPerM), x.PGCPUPerM, k.PGCPUPerM)
	}
	p("\n### Against the targets of issue 23\n\n")
	if x := a.Pgsink; x != nil {
		p("- pgsink's own CPU per event on Avro ≤ 4 µs: **%.2f µs**. %s\n", x.CPUPerM, met(x.CPUPerM <= 4))
		p("- pgsink + PostgreSQL ≤ 8 µs per event on Avro: **%.2f µs** (%.2f + %.2f). %s\n", total(x), x.CPUPerM, x.PGCPUPerM, met(total(x) <= 8))
		if k := a.JDBC; k != nil {
			p("- pgsink on Avro ≥ 8× cheaper in total CPU per event (sink + PostgreSQL) than the Debezium JDBC sink on Avro: **%s** (%.2f vs %.2f µs). %s\n",
				ratio(total(k), total(x)), total(x), total(k), met(total(k) >= 8*total(x)))
		}
		p("- Peak RSS ≤ 256 MiB at default settings, on Avro: **%.0f MiB**. %s\n", x.PeakRSSMiB, met(x.PeakRSSMiB <= 256))
	}
	p("- Avro decode ≥ 1,000,000 records/s on one core: the decoder's micro-benchmark, `go test -run XXX -bench . -benchmem -cpu 1 ./debezium/`, which `make bench` runs after this report is written; not in this report.\n")
	return b.String()
}

// headersSetting says whether the two topics carry Debezium's context
// headers, and says so when they differ.
func headersSetting(avro, json Workload) string {
	name := func(w Workload) string {
		if w.ContextHeaders == "" {
			return "unknown"
		}
		return w.ContextHeaders
	}
	if name(avro) == name(json) {
		return name(avro)
	}
	return name(avro) + " on Avro, " + name(json) + " on JSON"
}
