package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgsink/pgsink/test/stacktest"
)

// BinaryCompare is a compare phase: pgsink's drain of one topic by two
// binaries, alternated (this one, the other, the other, this one) so that
// the machine's drift between runs falls on both alike. It measures a
// change to pgsink's own CPU per event, or to the drain's rate, in one run,
// which separate runs on this shared machine cannot resolve. The
// avro-compare phase drains the Avro topic, the compare phase the JSON one.
type BinaryCompare struct {
	Format   string   `json:"format"` // "Avro" or "JSON"
	Workload Workload `json:"workload"`
	Other    string   `json:"other_binary"`
	New      []*Drain `json:"new"`
	Old      []*Drain `json:"old"`
}

// measureAvroCompare drains the Avro topic with bin and other in ABBA order.
func measureAvroCompare(ctx context.Context, env stacktest.Env, bin, other string, events, rounds int, res *Results) *BinaryCompare {
	reg, w, ok := avroTopic(ctx, env, events, res)
	if !ok {
		return nil
	}
	return measureCompare(ctx, env, bin, other, w, reg, rounds, res)
}

// measureCompare drains w's topic with bin and other in ABBA order, rounds
// times, reading Avro through registry when it is set and JSON otherwise.
// A first drain, of the other binary and left out of the figures, warms
// the machine: in the runs before it, the first drain of a run was the
// dearest in most runs whichever binary it ran (docs/benchmark-analysis.md),
// which ABBA does not cancel.
func measureCompare(ctx context.Context, env stacktest.Env, bin, other string, w Workload, registry string, rounds int, res *Results) *BinaryCompare {
	format, prefix := "JSON", "json"
	if registry != "" {
		format, prefix = "Avro", "avro"
	}
	c := &BinaryCompare{Format: format, Workload: w, Other: other}
	if _, err := drainPgsink(ctx, env, other, w, pgsinkRun{label: prefix + "_warmup", registry: registry}); err != nil {
		res.soft("pgsink "+prefix+"_warmup", err)
	}
	i := 0
	for round := 0; round < max(rounds, 1); round++ {
		for _, old := range []bool{false, true, true, false} {
			step, label := bin, fmt.Sprintf("%s_new_%d", prefix, i)
			if old {
				step, label = other, fmt.Sprintf("%s_old_%d", prefix, i)
			}
			d, err := drainPgsink(ctx, env, step, w, pgsinkRun{label: label, profile: i == 0 || i == 1, registry: registry})
			res.soft("pgsink "+label, err)
			i++
			if d == nil {
				continue
			}
			if old {
				c.Old = append(c.Old, d)
			} else {
				c.New = append(c.New, d)
			}
		}
	}
	return c
}

// compareSection is a compare phase's table and the ratios of the binaries'
// mean CPU per event and summed rates.
func compareSection(c *BinaryCompare) string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	format := c.Format
	if format == "" {
		format = "Avro" // results written before the JSON compare phase
	}
	p("## pgsink on %s: this binary against `%s`, alternated\n\n", format, c.Other)
	p("Drains of the %s topic (%d events) in the order new, old, old, new (repeated with `-compare-rounds`), after one drain of the old binary left out, each at default settings.\n\n", format, c.Workload.Events)
	p("| run | events/s | pgsink CPU-µs per event | PostgreSQL CPU-µs per event | peak RSS | end state |\n|---|---:|---:|---:|---:|---|\n")
	sum := func(ds []*Drain) (cpu, pg, rate float64) {
		for _, d := range ds {
			cpu += d.CPUPerM
			pg += d.PGCPUPerM
			rate += d.EventsPS
		}
		n := float64(max(len(ds), 1))
		return cpu / n, pg / n, rate / n
	}
	for _, d := range append(append([]*Drain{}, c.New...), c.Old...) {
		p("| %s | %.0f | %.2f | %.2f | %.0f MiB | %s |\n", d.Label, d.EventsPS, d.CPUPerM, d.PGCPUPerM, d.PeakRSSMiB, d.Verified)
	}
	nc, npg, nr := sum(c.New)
	oc, opg, or := sum(c.Old)
	p("\nMeans: new %.2f µs (PostgreSQL %.2f), old %.2f µs (PostgreSQL %.2f): pgsink's CPU per event new/old **%.2f**, PostgreSQL's **%.2f**; events/s new/old **%.3f** (%.0f against %.0f).\n",
		nc, npg, oc, opg, nc/max(oc, 1e-9), npg/max(opg, 1e-9), nr/max(or, 1e-9), nr, or)
	return b.String()
}

// compareReport is the report of a run of a compare phase alone.
func compareReport(r *Results, c *BinaryCompare) string {
	var b strings.Builder
	format := "Avro"
	if c != nil && c.Format != "" {
		format = c.Format
	}
	fmt.Fprintf(&b, "# Benchmarks: pgsink on %s, two binaries alternated\n\nWritten by `%s` (test/bench `-only %s`) on %s, run %s–%s UTC%s.\n\n**Machine:** %s.\n\n",
		format, r.Command, r.Phases, r.Finished.Format("2006-01-02"), r.Started.Format("15:04"), r.Finished.Format("15:04"), onCommit(r), r.Machine)
	b.WriteString(compareSection(c))
	b.WriteString(failedSection(r))
	if c != nil && len(c.New) > 0 && len(c.Old) > 0 {
		b.WriteString(profileSection("this binary on "+format, c.New[0]))
		b.WriteString(profileSection("the other binary on "+format, c.Old[0]))
	}
	return b.String()
}
