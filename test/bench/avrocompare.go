package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgsink/pgsink/test/stacktest"
)

// AvroCompare is the avro-compare phase: pgsink's drain of the Avro topic by
// two binaries, alternated (this one, the other, the other, this one) so
// that the machine's drift between runs falls on both alike. It measures a
// change to pgsink's own CPU per event in one run, which separate runs on
// this shared machine cannot resolve.
type AvroCompare struct {
	Workload Workload `json:"workload"`
	Other    string   `json:"other_binary"`
	New      []*Drain `json:"new"`
	Old      []*Drain `json:"old"`
}

// measureAvroCompare drains the Avro topic with bin and other in ABBA order.
func measureAvroCompare(ctx context.Context, env stacktest.Env, bin, other string, events int, res *Results) *AvroCompare {
	reg, w, ok := avroTopic(ctx, env, events, res)
	if !ok {
		return nil
	}
	c := &AvroCompare{Workload: w, Other: other}
	for i, step := range []struct {
		bin string
		old bool
	}{{bin, false}, {other, true}, {other, true}, {bin, false}} {
		label := fmt.Sprintf("avro_new_%d", i)
		if step.old {
			label = fmt.Sprintf("avro_old_%d", i)
		}
		d, err := drainPgsink(ctx, env, step.bin, w, pgsinkRun{label: label, profile: i == 0 || i == 1, registry: reg})
		res.soft("pgsink "+label, err)
		if d == nil {
			continue
		}
		if step.old {
			c.Old = append(c.Old, d)
		} else {
			c.New = append(c.New, d)
		}
	}
	return c
}

// avroCompareSection is the compare phase's table and the ratio of the
// binaries' summed CPU per event.
func avroCompareSection(c *AvroCompare) string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## pgsink on Avro: this binary against `%s`, alternated\n\n", c.Other)
	p("Drains of the Avro topic (%d events) in the order new, old, old, new, each at default settings.\n\n", c.Workload.Events)
	p("| run | events/s | pgsink CPU-µs per event | PostgreSQL CPU-µs per event | peak RSS | end state |\n|---|---:|---:|---:|---:|---|\n")
	sum := func(ds []*Drain) (cpu, pg float64) {
		for _, d := range ds {
			cpu += d.CPUPerM
			pg += d.PGCPUPerM
		}
		return cpu / float64(max(len(ds), 1)), pg / float64(max(len(ds), 1))
	}
	for _, d := range append(append([]*Drain{}, c.New...), c.Old...) {
		p("| %s | %.0f | %.2f | %.2f | %.0f MiB | %s |\n", d.Label, d.EventsPS, d.CPUPerM, d.PGCPUPerM, d.PeakRSSMiB, d.Verified)
	}
	nc, npg := sum(c.New)
	oc, opg := sum(c.Old)
	p("\nMeans: new %.2f µs (PostgreSQL %.2f), old %.2f µs (PostgreSQL %.2f): pgsink's CPU per event new/old **%.2f**.\n", nc, npg, oc, opg, nc/max(oc, 1e-9))
	return b.String()
}

// compareReport is the report of a run of the avro-compare phase alone.
func compareReport(r *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks: pgsink on Avro, two binaries alternated\n\nWritten by `%s` (test/bench `-only avro-compare`) on %s, run %s–%s UTC%s.\n\n**Machine:** %s.\n\n",
		r.Command, r.Finished.Format("2006-01-02"), r.Started.Format("15:04"), r.Finished.Format("15:04"), onCommit(r), r.Machine)
	b.WriteString(avroCompareSection(r.AvroCompare))
	b.WriteString(failedSection(r))
	if c := r.AvroCompare; c != nil && len(c.New) > 0 && len(c.Old) > 0 {
		b.WriteString(profileSection("this binary on Avro", c.New[0]))
		b.WriteString(profileSection("the other binary on Avro", c.Old[0]))
	}
	return b.String()
}
