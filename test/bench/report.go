package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pgsink/pgsink/config"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// Results is one run of every measurement.
type Results struct {
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	Machine       string    `json:"machine"`
	Commit        string    `json:"commit,omitempty"` // of the worktree the run was started in
	Command       string    `json:"command"`
	Workload      Workload  `json:"workload"`
	Copy          *Copy     `json:"copy,omitempty"`
	PgsinkDefault *Drain    `json:"pgsink_exactly_once,omitempty"`
	PgsinkALO     *Drain    `json:"pgsink_at_least_once,omitempty"`
	// The same pair again in the other order (ABBA), for the price of
	// exactly once.
	PgsinkALO2     *Drain `json:"pgsink_at_least_once_2,omitempty"`
	PgsinkDefault2 *Drain `json:"pgsink_exactly_once_2,omitempty"`
	// PgsinkBudgets are drains with other apply.max_buffered_bytes.
	PgsinkBudgets []*Drain `json:"pgsink_budgets,omitempty"`
	// PgsinkConns are the conns phase's drains, ABBA: the default
	// postgres.max_connections, -drain-conns, -drain-conns, the default.
	PgsinkConns  []*Drain `json:"pgsink_conns,omitempty"`
	PgsinkBatch1 *Drain   `json:"pgsink_batch_1,omitempty"`
	JDBCUnnest   *Drain   `json:"jdbc_unnest_on,omitempty"`
	JDBCNoUnnest *Drain   `json:"jdbc_unnest_off,omitempty"`
	Latency      *Latency `json:"latency,omitempty"`
	// LatencyRepeats are the default settings' further runs, and
	// LatencySyncOff the runs with synchronous_commit: off between them.
	LatencyRepeats []*Latency `json:"latency_repeats,omitempty"`
	LatencySyncOff []*Latency `json:"latency_synchronous_commit_off,omitempty"`
	// LatencyPrime is the run before the rounds that warms the stack
	// (-latency-prime): reported, not a round.
	LatencyPrime *Latency `json:"latency_prime,omitempty"`
	// LatencyPrimes are the priming runs, which repeat until the broker
	// has compiled its request paths (-latency-prime-runs); LatencyPrime
	// is the single priming run of results written before.
	LatencyPrimes []*Latency `json:"latency_primes,omitempty"`
	// LatencyOtherWaits is the same with other apply.batch.max_wait values.
	LatencyOtherWaits []*Latency `json:"latency_other_max_waits,omitempty"`
	// Avro is issue 23's phase: pgsink on Avro and on JSON, the JDBC sink
	// on Avro.
	Avro *AvroRuns `json:"avro,omitempty"`
	// AvroCompare is the avro-compare phase: two binaries on the Avro topic.
	AvroCompare *BinaryCompare `json:"avro_compare,omitempty"`
	// Compare is the compare phase: two binaries on the JSON topic.
	Compare *BinaryCompare `json:"compare,omitempty"`
	// Tx is issue 26's phase: the same source transactions per partition
	// and in transaction mode, and each mode's latency.
	Tx *TxRuns `json:"transactions,omitempty"`
	// TxBaseline is an earlier run of the transaction phase (-tx-baseline),
	// on other code, which the report shows beside this one.
	TxBaseline *Results `json:"transactions_baseline,omitempty"`
	// Phases is -only when a run's report is the Avro phase alone.
	Phases string   `json:"phases,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

func describeMachine(ctx context.Context, env stacktest.Env) string {
	var b strings.Builder
	cpu := "unknown CPU"
	if out, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if out, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(out), "\n", 2)[0])[1]
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "%d vCPU (%s), %s kB RAM, Linux %s, %s; load average at start: %s",
		runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(kernel)), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	if conn, err := pgx.Connect(ctx, env.AdminURL); err == nil {
		var v, sb string
		_ = conn.QueryRow(ctx, `SELECT split_part(version(), ' on ', 1), current_setting('shared_buffers')`).Scan(&v, &sb)
		fmt.Fprintf(&b, "; %s (shared_buffers %s, fsync on, synchronous_commit on)", v, sb)
		conn.Close(ctx)
	}
	b.WriteString("; Kafka 4.3.0 (KRaft, one broker), Kafka Connect 4.3.0 with Debezium PostgreSQL connector 3.6.1.Final and JDBC sink 3.6.0.Final, all on the same machine")
	return b.String()
}

// describeCommit names the checked-out commit, and says so when tracked
// files differ from it: the figures are then of code no commit holds.
func describeCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

func onCommit(r *Results) string {
	if r.Commit == "" {
		return ""
	}
	return ", commit `" + r.Commit + "`"
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func report(r *Results) string {
	switch r.Phases {
	case "avro":
		return avroReport(r)
	case "avro-compare":
		return compareReport(r, r.AvroCompare)
	case "compare":
		return compareReport(r, r.Compare)
	case "tx":
		return txReport(r)
	}
	var b strings.Builder
	w := r.Workload
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (test/bench) on %s, run %s–%s UTC%s. Every figure below comes from that ONE run;\n",
		r.Finished.Format("2006-01-02"), r.Started.Format("15:04"), r.Finished.Format("15:04"), onCommit(r))
	p("compare the ratios, not absolute figures from different runs.\n\n")
	p("**Machine:** %s.\n\n", r.Machine)
	p("**Reproduce:** `make bench` (brings the stack up; reuses the workload topic while it matches, `rm .stack/bench/workload.json` forces a new one). Raw figures: `.stack/bench/results.json`; logs, configurations and the CPU profile: `.stack/bench/`.\n\n")
	p("## Workload\n\n")
	p("The issue's table `orders(id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), created_at timestamptz, attrs jsonb ≈ 200 B)`. ")
	p("%d change events — %d creates, %d updates, %d deletes — written to a source PostgreSQL in 100 transactions and produced by the **real Debezium** PostgreSQL connector ", w.Events, w.Creates, w.Updates, w.Deletes)
	p("(pgoutput, JSON with schemas, REPLICA IDENTITY DEFAULT, a tombstone after each delete) into the %d-partition topic `%s`: %d Kafka records, %.0f MB of keys and values (%.0f MB of log segments), %.0f bytes per record. ",
		partitions, w.Topic, w.Records, float64(w.KVBytes)/1e6, float64(w.LogBytes)/1e6, float64(w.KVBytes)/float64(w.Records))
	p("Debezium took %s to produce them (≈ %d events/s). Updates and deletes hit uniformly random live ids. ", w.ProducedIn, w.DebeziumPS)
	p("The issue also asks for \"400,000 keys\": with 70%% creates that is impossible (700,000 inserts need 700,000 keys unless 300,000 deletes free ids, and there are 50,000), so the op mix was kept and the keys are %d; %d rows remain at the end.\n\n", w.Keys, w.FinalRows)
	p("Events/s below count change events (tombstones are read and skipped, not counted); MB/s counts all key and value bytes read.\n\n")

	p("## Results\n\n")
	jdbc := r.JDBCUnnest
	if r.JDBCNoUnnest != nil && (jdbc == nil || r.JDBCNoUnnest.EventsPS > jdbc.EventsPS) {
		jdbc = r.JDBCNoUnnest
	}
	var copyPS float64
	if r.Copy != nil {
		copyPS = r.Copy.RowsPS
	}
	p("| run | events/s | MB/s | time | vs COPY rows/s | vs best JDBC sink | sink CPU-s per M events | PostgreSQL CPU-s per M events | peak RSS | end state |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(name string, d *Drain) {
		if d == nil {
			return
		}
		rss := "–"
		if d.PeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", d.PeakRSSMiB)
		}
		jd := "–"
		if jdbc != nil && d != jdbc {
			jd = ratio(d.EventsPS, jdbc.EventsPS)
		}
		state := d.Verified
		if !d.Complete {
			state = "not drained: " + d.Note
		}
		p("| %s | %.0f | %.1f | %.1f s | %s | %s | %.1f | %.1f | %s | %s |\n", name, d.EventsPS, d.MBPS, d.Seconds, ratio(d.EventsPS, copyPS), jd, d.CPUPerM, d.PGCPUPerM, rss, state)
	}
	row("pgsink, default settings (exactly once)", r.PgsinkDefault)
	row("pgsink, `apply.offsets: kafka` (at least once)", r.PgsinkALO)
	row("pgsink, `apply.offsets: kafka` (at least once), second run", r.PgsinkALO2)
	row("pgsink, default settings (exactly once), second run", r.PgsinkDefault2)
	for _, d := range r.PgsinkBudgets {
		row(fmt.Sprintf("pgsink, `max_buffered_bytes: %s` (exactly once)", d.Budget), d)
	}
	for i, d := range r.PgsinkConns {
		c := d.Connections
		if c == "" {
			c = fmt.Sprintf("%d (default)", config.DefaultMaxConnections)
		}
		row(fmt.Sprintf("pgsink, `postgres.max_connections: %s`, drain %d of the ABBA", c, i+1), d)
	}
	row("pgsink, batches of 1 (exactly once)", r.PgsinkBatch1)
	row("Debezium JDBC sink, unnest insert ON", r.JDBCUnnest)
	row("Debezium JDBC sink, unnest insert OFF", r.JDBCNoUnnest)
	if r.Copy != nil {
		p("| COPY of the %d final row images into an empty keyed table (the limit) | %.0f rows/s | – | %.1f s | 1.00× | – | – | %.1f per M rows | – | – |\n", r.Copy.Rows, r.Copy.RowsPS, r.Copy.Seconds, r.Copy.PGCPUPerM)
	}
	p("\nTimes run from starting the sink (pgsink process start, or the JDBC connector's registration) to the moment its committed positions cover the whole topic, so they include start-up and group join. ")
	p("PostgreSQL's CPU is the whole target server's (postmaster, backends, WAL writer, checkpointer) over the run. pgsink's CPU and RSS are the process's own (`/proc/PID/stat` utime+stime, `VmHWM`); the JDBC sink's CPU is the Kafka Connect JVM's during its run (the worker does nothing else then) — its RSS is not comparable (a JVM heap sized by -Xmx1g) and is left out. ")
	p("End state: the target table compared with the source table (row count and a digest of every column).\n\n")
	p("%s", connsSummary(r.PgsinkConns))
	if l := r.Latency; l != nil {
		p("**Latency** at a steady %d events/s (%d Debezium records of the workload re-produced at that rate for %.0f s into a 6-partition `LogAppendTime` topic), from the Kafka append time to the commit in the target, per record (`pgsink_record_commit_latency_seconds`, buckets 25%% apart, interpolated). ", l.Rate, l.Events, l.Seconds)
		p("*Steady* leaves out the first %.0f s (group join, connections, first plans); *whole run* keeps them. *Received* is the steady state's share before batching and the apply (`pgsink_record_receive_latency_seconds`), in two stages: *dispatched*, Kafka's delivery, librdkafka's fetch and the poll loop up to the partition's queue (`pgsink_record_dispatch_latency_seconds`), and *queued*, the wait in that queue until the worker takes the record, which includes the partition's batch in flight (`pgsink_record_queued_seconds`). *Pauses* are partition pauses over the whole run. The apply columns are the transactions alone.\n\n", l.WarmupSeconds)
		p("The phase runs in rounds: each round measures every setting once, in the order listed, so a tail that comes and goes with the machine falls on every setting alike; each setting's runs are listed by round, then their **median** (of each column separately). ")
		p("*Meanwhile* is what else ran on the stack from the first record produced to the last committed: PostgreSQL's autovacuum workers (seconds with one running, and their tables), checkpoints, and the Kafka broker's CPU with its JIT compiler's share (a broker started minutes before still compiles its request paths). Before the first round the bench vacuums and analyses the workload's source table, waits for autovacuum and runs the priming runs below; before every round it checkpoints and syncs (docs/benchmark-analysis.md, issue 27).\n\n")
		p("`postgres.synchronous_commit: off` keeps the exactly-once effect (rows and offsets are lost together in a crash, and Kafka redelivers them) and takes the WAL flush out of each commit's wait; it is refused with `apply.offsets: kafka`.\n\n")
		p("| apply.batch.max_wait | synchronous_commit | run | steady p50 | steady p99 | whole run p50 | whole run p99 | received p50 | received p99 | dispatched p99 | queued p99 | pauses | apply p50 | apply p99 | records per batch | pgsink CPU-s per M events | peak RSS | meanwhile |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, runs := range r.latencySettings() {
			for _, x := range runs {
				run := "–"
				if x.Round > 0 {
					run = fmt.Sprint(x.Round)
				}
				p("| %s | %s | %s | **%.1f ms** | **%.1f ms** | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.0f | %.1f ms | %.1f ms | %.0f | %.1f | %.0f MiB | %s |\n", x.MaxWait, synchronousCommit(x), run, x.SteadyP50ms, x.SteadyP99ms, x.P50ms, x.P99ms, x.ReceiveP50ms, x.ReceiveP99ms, x.DispatchP99ms, x.QueuedP99ms, x.Pauses, x.ApplyP50ms, x.ApplyP99ms, x.MeanBatch, x.CPUPerM, x.PeakRSSMiB, meanwhile(x.Background))
			}
			if len(runs) > 1 {
				m := medianLatency(runs)
				p("| %s | %s | *median of %d* | ***%.1f ms*** | ***%.1f ms*** | *%.1f ms* | *%.1f ms* | *%.1f ms* | *%.1f ms* | *%.1f ms* | *%.1f ms* | *%.0f* | *%.1f ms* | *%.1f ms* | *%.0f* | *%.1f* | *%.0f MiB* | |\n", m.MaxWait, synchronousCommit(m), len(runs), m.SteadyP50ms, m.SteadyP99ms, m.P50ms, m.P99ms, m.ReceiveP50ms, m.ReceiveP99ms, m.DispatchP99ms, m.QueuedP99ms, m.Pauses, m.ApplyP50ms, m.ApplyP99ms, m.MeanBatch, m.CPUPerM, m.PeakRSSMiB)
			}
		}
		primes := r.LatencyPrimes
		if len(primes) == 0 && r.LatencyPrime != nil {
			primes = []*Latency{r.LatencyPrime}
		}
		if len(primes) > 0 {
			p("\nBefore round 1, %d priming run(s) of the default settings (%.0f s each at %d events/s; they repeat until the broker's JIT compiler takes under %.0f CPU-s in one; not rounds, not in the medians or the targets):", len(primes), primes[0].Seconds, primes[0].Rate, primedJITSeconds)
			for i, x := range primes {
				p(" %d. steady p99 %.1f ms, received p99 %.1f ms, apply p99 %.1f ms; meanwhile %s.", i+1, x.SteadyP99ms, x.ReceiveP99ms, x.ApplyP99ms, meanwhile(x.Background))
			}
			p("\n")
		}
		p("\n")
	}
	p("## Against the targets of issue 8\n\n")
	if d := r.PgsinkDefault; d != nil {
		if jdbc != nil {
			p("- pgsink ≥ 10× the Debezium JDBC sink: **%s** (%.0f vs %.0f events/s, best JDBC variant). %s\n", ratio(d.EventsPS, jdbc.EventsPS), d.EventsPS, jdbc.EventsPS, met(d.EventsPS >= 10*jdbc.EventsPS))
		}
		if r.Copy != nil {
			p("- pgsink ≥ 0.5× the raw COPY rate: **%s** (%.0f events/s vs %.0f rows/s). %s\n", ratio(d.EventsPS, copyPS), d.EventsPS, copyPS, met(d.EventsPS >= 0.5*copyPS))
		}
		p("- ≥ 100,000 events/s end to end: **%.0f**. %s\n", d.EventsPS, met(d.EventsPS >= 100000))
		if a := r.PgsinkALO; a != nil {
			eo, alo := []*Drain{d}, []*Drain{a}
			if r.PgsinkDefault2 != nil && r.PgsinkALO2 != nil {
				eo, alo = append(eo, r.PgsinkDefault2), append(alo, r.PgsinkALO2)
			}
			// Events over time summed over the runs: the pair's rates in
			// ABBA order, weighted by their length.
			rate := func(ds []*Drain) (ps, cpu float64) {
				var ev, sec, c float64
				for _, x := range ds {
					ev, sec, c = ev+float64(x.Events), sec+x.Seconds, c+(x.CPUPerM+x.PGCPUPerM)*float64(x.Events)
				}
				return ev / sec, c / ev
			}
			eoPS, eoCPU := rate(eo)
			aloPS, aloCPU := rate(alo)
			cost := (aloPS - eoPS) / aloPS * 100
			p("- Exactly-once costs ≤ 10%% against at-least-once: **%.1f%%** in rate over %d run(s) of each in ABBA order (%.0f vs %.0f events/s). %s", cost, len(eo), eoPS, aloPS, met(cost <= 10))
			// CPU per event holds up better than the rate on a shared
			// machine: the neighbours slow both runs' clocks, not their work.
			if aloCPU > 0 && d.PGCPUPerM > 0 && a.PGCPUPerM > 0 {
				p(" In CPU per event, pgsink and PostgreSQL together: **%+.1f%%** (%.1f vs %.1f CPU-s per M events).", (eoCPU-aloCPU)/aloCPU*100, eoCPU, aloCPU)
			}
			p("\n")
		}
		p("- Peak RSS ≤ 256 MiB at default settings: **%.0f MiB**. %s\n", d.PeakRSSMiB, met(d.PeakRSSMiB <= 256))
	}
	if l := r.Latency; l != nil {
		defaults := append([]*Latency{l}, r.LatencyRepeats...)
		p("- p99 ≤ 100 ms at %d events/s: at default settings, steady p99 **%s** (median %.1f ms), met in %d of %d runs.", l.Rate, listMs(defaults, steadyP99), medianLatency(defaults).SteadyP99ms, metCount(defaults, steadyP99, 100), len(defaults))
		if len(r.LatencySyncOff) > 0 {
			p(" With `synchronous_commit: off`: **%s** (median %.1f ms), met in %d of %d.", listMs(r.LatencySyncOff, steadyP99), medianLatency(r.LatencySyncOff).SteadyP99ms, metCount(r.LatencySyncOff, steadyP99, 100), len(r.LatencySyncOff))
		}
		p("\n- Received p99 ≤ 10 ms at default settings: **%s** (median %.1f ms), met in %d of %d runs.\n", listMs(defaults, receivedP99), medianLatency(defaults).ReceiveP99ms, metCount(defaults, receivedP99, 10), len(defaults))
	}
	if b1 := r.PgsinkBatch1; b1 != nil && r.PgsinkDefault != nil {
		p("\nBatching buys **%s** (default batches vs batches of 1).\n", ratio(r.PgsinkDefault.EventsPS, b1.EventsPS))
	}
	if r.Avro != nil {
		p("\n%s", avroSection(r))
	}
	b.WriteString(compareSection(r.Compare))
	b.WriteString(compareSection(r.AvroCompare))
	b.WriteString(failedSection(r))
	b.WriteString(profileSection("pgsink, default settings", r.PgsinkDefault))
	if notes, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "benchmark-analysis.md")); err == nil {
		p("\n%s", notes)
	}
	return b.String()
}

// failedSection lists the measurements that failed, if any.
func failedSection(r *Results) string {
	if len(r.Errors) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Failed measurements\n\n")
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "- %s\n", firstLines(e, 3))
	}
	return b.String()
}

// profileSection shows the CPU profile of a drain that took one.
func profileSection(what string, d *Drain) string {
	if d == nil || d.Profile == "" {
		return ""
	}
	return fmt.Sprintf("\n## Profile of the drain (%s)\n\n"+
		"A 10-second CPU profile taken 3 s into the drain (`PGSINK_PPROF=1` serves net/http/pprof on the metrics listener), `go tool pprof -top`:\n\n```\n%s```\n",
		what, trimProfile(d.Profile))
}

func met(ok bool) string {
	if ok {
		return "Met."
	}
	return "**Not met.**"
}

func trimProfile(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// steadyP99 and receivedP99 are the figures the targets are judged on.
func steadyP99(x *Latency) float64   { return x.SteadyP99ms }
func receivedP99(x *Latency) float64 { return x.ReceiveP99ms }

// listMs lists one figure of latency runs, in ms.
func listMs(runs []*Latency, figure func(*Latency) float64) string {
	var parts []string
	for _, x := range runs {
		parts = append(parts, fmt.Sprintf("%.1f ms", figure(x)))
	}
	return strings.Join(parts, ", ")
}

// metCount counts the runs whose figure is at most limit ms.
func metCount(runs []*Latency, figure func(*Latency) float64, limit float64) int {
	n := 0
	for _, x := range runs {
		if figure(x) <= limit {
			n++
		}
	}
	return n
}

// meanwhile is a latency run's background in the report's last column.
func meanwhile(b *Background) string {
	if b == nil {
		return "–"
	}
	s := fmt.Sprintf("autovacuum %.1f s", b.AutovacuumSeconds)
	if len(b.AutovacuumTables) > 0 {
		s += " (" + strings.Join(b.AutovacuumTables, "; ") + ")"
	}
	s += fmt.Sprintf(", %d checkpoints, broker %.1f CPU-s (JIT %.1f)", b.Checkpoints, b.BrokerCPUSeconds, b.BrokerJITSeconds)
	return strings.ReplaceAll(s, "|", `\|`) // a table cell
}

// connsSummary compares the conns phase's ABBA drains: events over time
// and CPU per event summed over each value's pair.
func connsSummary(ds []*Drain) string {
	if len(ds) != 4 {
		return ""
	}
	sum := func(a, b *Drain) (ps, cpu, pg float64) {
		ev := float64(a.Events + b.Events)
		return ev / (a.Seconds + b.Seconds), (a.CPUPerM*float64(a.Events) + b.CPUPerM*float64(b.Events)) / ev, (a.PGCPUPerM*float64(a.Events) + b.PGCPUPerM*float64(b.Events)) / ev
	}
	dps, dcpu, dpg := sum(ds[0], ds[3])
	ops, ocpu, opg := sum(ds[1], ds[2])
	return fmt.Sprintf("\n`postgres.max_connections: %s` against the default (%d), drained ABBA in this run: events/s **%.3f×** (%.0f vs %.0f), pgsink CPU per event %.3f× (%.2f vs %.2f µs), PostgreSQL's %.3f× (%.2f vs %.2f µs).\n\n",
		ds[1].Connections, config.DefaultMaxConnections, ops/dps, ops, dps, ocpu/dcpu, ocpu, dcpu, opg/dpg, opg, dpg)
}
