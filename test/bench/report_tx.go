package main

import (
	"fmt"
	"strings"
)

// txReport is the report of the transaction-mode phase (make bench-tx).
func txReport(r *Results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks: transaction-consistent apply\n\n")
	p("Written by `%s` (test/bench `-only tx`) on %s, run %s–%s UTC%s. Every figure below comes from that ONE run: compare the ratios, not absolute figures of different runs (the machine is shared).\n\n",
		r.Command, r.Finished.Format("2006-01-02"), r.Started.Format("15:04"), r.Finished.Format("15:04"), onCommit(r))
	p("**Machine:** %s.\n\n", r.Machine)
	p("**Reproduce:** `make bench-tx` (brings the stack up; reuses the workload topics while they match, `rm .stack/bench/workload-tx.json` forces new ones). Raw figures: `.stack/bench/results-partial.json`; logs, configurations and the CPU profiles: `.stack/bench/`.\n\n")
	b.WriteString(txSection(r))
	b.WriteString(txBaselineSection(r.TxBaseline, r.Tx))
	b.WriteString(failedSection(r))
	if x := r.Tx; x != nil {
		b.WriteString(profileSection("transaction mode", x.Transaction))
		b.WriteString(profileSection("partition mode", x.Partition))
	}
	return b.String()
}

// txSection is the phase's workload, its two drains with their ratios, and
// the latency of each mode.
func txSection(r *Results) string {
	x := r.Tx
	if x == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w := x.Workload
	m := txMix(int(w.Events))
	m.rounds = int(w.Creates) / m.creates // a transaction's updates or delete may fall short, never its creates
	p("## Transaction mode against partition mode (issue 26)\n\n")
	p("The benchmark table again, written to the source database `%s` in **%d source transactions of %d events** (%d creates, %d updates, %d delete each: the JSON workload's 70/25/5 mix), ",
		txSource.db, m.rounds, m.creates+m.updates+m.deletes, m.creates, m.updates, m.deletes)
	p("produced by the real Debezium PostgreSQL connector with `provide.transaction.metadata=true` into the %d-partition topic `%s` and the transaction topic `%s` (BEGIN and END per transaction): ",
		partitions, w.Topic, txTopicOf(txSource))
	p("%d change events (%d creates, %d updates, %d deletes), %d Kafka records, %.0f MB of keys and values. Debezium took %s (≈ %d events/s).\n\n",
		w.Events, w.Creates, w.Updates, w.Deletes, w.Records, float64(w.KVBytes)/1e6, w.ProducedIn, w.DebeziumPS)
	p("Two drains of the same topics, one after the other, at default settings and each with the same 10-s CPU profile: `apply.consistency: partition` (the default; it ignores the transaction blocks) and `apply.consistency: transaction` (partitions stage their records in `pgsink.tx_staged`, the resolver applies each source transaction from there in commit order). ")
	p("A drain ends when the positions cover the whole data topic and, in transaction mode, the resolver has applied every END. CPU is utime + stime from `/proc` over each run: pgsink's process, and the whole target PostgreSQL server. CPU-µs per event equals CPU-s per million events.\n\n")
	b.WriteString(txDrains(x))
	if len(x.Latency) > 0 {
		p("### Latency at a steady rate\n\n")
		p("A live source (`%s`, its own connector with transaction metadata, LogAppendTime topics) written by %d sessions with source transactions of the same shape at a steady rate for `-latency-for` (40 s by default) while pgsink runs in each mode from the topics' ends; the first `-latency-warmup` (10 s) of each run left out. ",
			txLatencySource.db, liveDrivers)
		p("Partition mode: per record, from its Kafka append time to the commit of its batch (`pgsink_record_commit_latency_seconds`). Transaction mode: per source transaction, from the append time of its **oldest** record to the resolver's commit that made the transaction visible (`pgsink_transaction_commit_latency_seconds`): the wait of the transaction's first event, the longest of its events.\n\n")
		p("PostgreSQL's CPU here is the whole server's, the source's transactions and Debezium's WAL sender included (the same server holds source and target).\n\n")
		p("| mode | events/s asked | achieved | measure | samples | p50 | p99 | pgsink CPU-µs per event | PostgreSQL CPU-µs per event | peak RSS |\n")
		p("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
		for _, l := range x.Latency {
			p("| %s | %d | %.0f | `%s` | %.0f | %.1f ms | **%.1f ms** | %.2f | %.2f | %.0f MiB |\n",
				l.Mode, l.Rate, l.AchievedPS, l.Measure, l.Samples, l.SteadyP50ms, l.SteadyP99ms, l.CPUPerM, l.PGCPUPerM, l.PeakRSSMiB)
		}
		p("\n")
	}
	return b.String()
}

// txDrains is the table of a run's two drains and their ratios.
func txDrains(x *TxRuns) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("| mode | events/s | time | pgsink CPU-µs per event | PostgreSQL CPU-µs per event | pgsink + PostgreSQL | peak RSS | records per batch | end state |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(name string, d *Drain) {
		if d == nil {
			p("| %s | failed (below) | | | | | | | |\n", name)
			return
		}
		state := d.Verified
		if !d.Complete {
			state = "not drained: " + d.Note
		}
		p("| %s | %.0f | %.1f s | %.2f | %.2f | **%.2f** | %.0f MiB | %.0f | %s |\n",
			name, d.EventsPS, d.Seconds, d.CPUPerM, d.PGCPUPerM, d.CPUPerM+d.PGCPUPerM, d.PeakRSSMiB, d.MeanBatch, state)
	}
	row("partition", x.Partition)
	row("transaction", x.Transaction)
	p("\n")
	if t, q := x.Transaction, x.Partition; t != nil && q != nil {
		total := func(d *Drain) float64 { return d.CPUPerM + d.PGCPUPerM }
		p("- Transaction mode against partition mode: **%s** the events/s; cost per event (pgsink + PostgreSQL) **%s** — pgsink's own %s (%.2f vs %.2f µs), PostgreSQL's %s (%.2f vs %.2f µs). ",
			ratio(t.EventsPS, q.EventsPS), ratio(total(t), total(q)), ratio(t.CPUPerM, q.CPUPerM), t.CPUPerM, q.CPUPerM, ratio(t.PGCPUPerM, q.PGCPUPerM), t.PGCPUPerM, q.PGCPUPerM)
		if t.WALMB > 0 && q.WALMB > 0 {
			staging := x.Staging
			if staging == "" {
				staging = "logged"
			}
			if x.Local {
				staging += "`, `direct_local_partitions: true"
			}
			p("WAL written during each drain (the whole server's, `pg_stat_wal`): %.1f MB in transaction mode (`apply.transaction.staging: %s`), %.1f MB in partition mode. ", t.WALMB, staging, q.WALMB)
		}
		p("Issue 26's target, at most 2× the cost per event: %s\n\n", met(total(t) <= 2*total(q)))
	}
	return b.String()
}

// txBaselineSection shows an earlier run of the phase (-tx-baseline): the
// code before a change, measured on the same stack shortly before.
func txBaselineSection(base *Results, this *TxRuns) string {
	if base == nil || base.Tx == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("### The same drains on the code before (baseline)\n\n")
	topics := "the same workload topics"
	if this != nil && this.Workload.Events != base.Tx.Workload.Events {
		topics = fmt.Sprintf("workload topics of %d events (this run's: %d)", base.Tx.Workload.Events, this.Workload.Events)
	}
	fmt.Fprintf(&b, "`make bench-tx` on the same stack, run %s–%s UTC%s, with %s: its own two drains and ratios, from its own run.\n\n",
		base.Started.Format("15:04"), base.Finished.Format("15:04"), onCommit(base), topics)
	b.WriteString(txDrains(base.Tx))
	for _, l := range base.Tx.Latency {
		fmt.Fprintf(&b, "- Latency at %d events/s asked, %s mode: achieved %.0f, p50 %.1f ms, p99 %.1f ms; %.2f pgsink and %.2f PostgreSQL CPU-µs per event.\n",
			l.Rate, l.Mode, l.AchievedPS, l.SteadyP50ms, l.SteadyP99ms, l.CPUPerM, l.PGCPUPerM)
	}
	b.WriteString("\n")
	return b.String()
}
