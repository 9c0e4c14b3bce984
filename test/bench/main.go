package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func repoRoot() string {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		wd, _ := os.Getwd()
		return wd
	}
	return strings.TrimSpace(string(out))
}

func main() {
	events := flag.Int("events", 1_000_000, "change events in the workload topic")
	pgsinkBin := flag.String("pgsink", "bin/pgsink", "the pgsink binary to measure")
	out := flag.String("out", "BENCHMARKS.md", "the report to write")
	only := flag.String("only", "", "comma-separated phases to run (workload,copy,pgsink,alo,budgets,conns,batch1,jdbc,latency,avro,compare,avro-compare,tx); default all but tx (make bench-tx, which make bench runs after). Such a run writes .stack/bench/results-partial.json and, unless -out is given, .stack/bench/BENCHMARKS-partial.md")
	batch1Cap := flag.Duration("batch1-cap", 60*time.Second, "how long pgsink with batches of 1 runs (its rate is read from its progress)")
	jdbcCap := flag.Duration("jdbc-cap", 15*time.Minute, "how long one Debezium JDBC sink run may take before its rate is read from its progress")
	latencyRate := flag.Int("latency-rate", 5000, "events/s produced for the latency run")
	latencyFor := flag.Duration("latency-for", 40*time.Second, "how long the latency run produces")
	latencyCompare := flag.String("latency-compare", "", "another pgsink binary measured for latency at default settings in every round, beside -pgsink (the code before a change)")
	latencyPipelines := flag.String("latency-pipelines", "", "comma-separated apply.pipeline values measured for latency besides the default (1: off)")
	latencyConns := flag.String("latency-conns", "", "comma-separated postgres.max_connections values measured for latency besides the default")
	latencySyncOff := flag.Bool("latency-sync-off", true, "measure latency with synchronous_commit: off too")
	latencyWaits := flag.String("latency-waits", "100ms", "comma-separated apply.batch.max_wait values measured for latency besides the default")
	latencyWarmup := flag.Duration("latency-warmup", 10*time.Second, "the start of the latency run left out of its steady-state quantiles")
	latencyPrime := flag.Duration("latency-prime", 20*time.Second, "before the latency rounds, one run of the default settings this long, reported apart from the rounds: a Kafka broker started minutes before spends its first minutes of this load compiling its request paths (docs/benchmark-analysis.md, issue 27); 0 leaves it out")
	latencyPrimeRuns := flag.Int("latency-prime-runs", 4, "at most this many priming runs: they repeat until the broker's JIT compiler takes less than 1 CPU-s in one")
	latencyRepeat := flag.Int("latency-repeat", 5, "how many rounds of the latency phase run: each round measures every setting once (the default, synchronous_commit: off, each of -latency-waits), interleaved, and the report gives each run and the median per setting (one 40-s run's p99 is at the mercy of the machine's phases)")
	drainConns := flag.String("drain-conns", "", "with phase conns: a postgres.max_connections value drained against the default, in ABBA order (default, it, it, default)")
	budgets := flag.String("budgets", "128MiB,256MiB", "comma-separated apply.max_buffered_bytes values drained besides the default: what a larger memory budget buys")
	txBaseline := flag.String("tx-baseline", "", "with -only tx: the results-partial.json of an earlier run of the phase (another commit, the same stack), shown in the report beside this run, each with its own ratios")
	txStaging := flag.String("tx-staging", "", "with -only tx: apply.transaction.staging of the transaction-mode drain and latency run (logged or unlogged; default: pgsink's, logged)")
	txLocal := flag.Bool("tx-local", false, "with -only tx: apply.transaction.direct_local_partitions in the transaction-mode drain and latency run (the local path: the single instance's partitions hand the resolver their records unstaged)")
	reportOnly := flag.Bool("report-only", false, "rewrite the report from the last run's .stack/bench/results.json (after editing docs/benchmark-analysis.md); with -only, from results-partial.json")
	compareRounds := flag.Int("compare-rounds", 1, "with -only compare or avro-compare: how many times the new, old, old, new drains repeat")
	compare := flag.String("compare", "", "with -only compare or avro-compare: the other pgsink binary, whose drains of the JSON or the Avro topic alternate with -pgsink's")
	flag.Parse()
	if *reportOnly {
		var res Results
		results := "results.json"
		if *only != "" {
			results = "results-partial.json" // what a run of -only wrote
		}
		b, err := os.ReadFile(filepath.Join(benchDir(), results))
		check(err)
		check(json.Unmarshal(b, &res))
		check(os.WriteFile(*out, []byte(report(&res)), 0o644))
		logf("rewrote %s from the run of %s", *out, res.Started.Format(time.RFC3339))
		return
	}

	env, err := stacktest.LoadEnv()
	if err != nil {
		logf("%v", err)
		os.Exit(1)
	}
	run := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, p := range strings.Split(*only, ",") {
			if p == name {
				return true
			}
		}
		return false
	}
	if (*only == "compare" || *only == "avro-compare") && *compare == "" {
		check(fmt.Errorf("-only %s needs -compare <the other pgsink binary>", *only))
	}
	ctx := context.Background()
	res := &Results{Started: time.Now().UTC(), Machine: describeMachine(ctx, env), Commit: describeCommit()}
	bin, _ := filepath.Abs(*pgsinkBin)
	res.Command = "make bench"
	switch *only {
	case "avro":
		res.Command, res.Phases = "make bench-avro", *only
	case "avro-compare":
		res.Command, res.Phases = "make bench-avro-compare", *only
	case "compare":
		res.Command, res.Phases = "make bench-compare", *only
	case "tx":
		// The transaction phase has its own workload and report.
		res.Command, res.Phases = "make bench-tx", *only
		if *txBaseline != "" {
			b, err := os.ReadFile(*txBaseline)
			check(err)
			res.TxBaseline = &Results{}
			check(json.Unmarshal(b, res.TxBaseline))
			res.TxBaseline.TxBaseline = nil
		}
		res.Tx = measureTx(ctx, env, bin, *events, *latencyRate, *latencyFor, *latencyWarmup, txSettings{staging: *txStaging, local: *txLocal}, res)
		res.Finished = time.Now().UTC()
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(filepath.Join(benchDir(), "results-partial.json"), b, 0o644)
		// As for any -only run: BENCHMARKS.md is the last full run's,
		// and make bench-tx names its report with -out.
		if !outGiven() {
			*out = filepath.Join(benchDir(), "BENCHMARKS-partial.md")
		}
		check(os.WriteFile(*out, []byte(report(res)), 0o644))
		logf("wrote %s", *out)
		return
	}

	w, err := ensureWorkload(ctx, env, *events, jsonSource)
	check(err)
	res.Workload = w
	if run("workload") && *only == "workload" {
		return
	}
	if run("copy") {
		res.Copy, err = copyLimit(ctx, env, w)
		res.soft("copy", err)
	}
	if run("pgsink") {
		res.PgsinkDefault, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "exactly_once", profile: true})
		res.soft("PgsinkDefault", err)
	}
	if run("alo") {
		res.PgsinkALO, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "at_least_once", offsetsKafka: true})
		res.soft("PgsinkALO", err)
		if run("pgsink") {
			// The price of exactly once is a few percent, less than this
			// machine's drift between two runs: measure the pair again in
			// the other order (exactly, at least, at least, exactly) and
			// compare the sums, which cancels a steady drift.
			res.PgsinkALO2, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "at_least_once_2", offsetsKafka: true})
			res.soft("PgsinkALO2", err)
			res.PgsinkDefault2, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "exactly_once_2"})
			res.soft("PgsinkDefault2", err)
		}
	}
	if run("budgets") {
		for _, b := range strings.Split(*budgets, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			d, err := drainPgsink(ctx, env, bin, w, pgsinkRun{label: "budget_" + b, buffered: b})
			res.soft("pgsink max_buffered_bytes "+b, err)
			if d != nil {
				d.Budget = b
				res.PgsinkBudgets = append(res.PgsinkBudgets, d)
			}
		}
	}
	if run("conns") && *drainConns != "" {
		// Default, the other value, the other value, default: the sums of
		// each pair cancel a steady drift of the machine (as alo's pair).
		for i, c := range []string{"", *drainConns, *drainConns, ""} {
			d, err := drainPgsink(ctx, env, bin, w, pgsinkRun{label: fmt.Sprintf("conns_%d", i+1), connections: c})
			res.soft(fmt.Sprintf("pgsink max_connections %q, drain %d", c, i+1), err)
			if d != nil {
				d.Connections = c
				res.PgsinkConns = append(res.PgsinkConns, d)
			}
		}
	}
	if run("batch1") {
		res.PgsinkBatch1, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "batch_1", batch: 1, limit: *batch1Cap})
		res.soft("PgsinkBatch1", err)
	}
	if run("latency") {
		// Every setting once per round, the rounds one after another: a
		// tail that comes and goes with the machine's phases then falls on
		// every setting alike, and the report shows each run and the
		// median. synchronous_commit: off keeps the exactly-once effect and
		// takes the WAL flush out of the commit: its tail is the disk's
		// (shared with Kafka here). Other batch waits trade latency for CPU.
		variants := []latencyVariant{{}}
		if *latencySyncOff {
			variants = append(variants, latencyVariant{syncOff: true})
		}
		for _, depth := range strings.Split(*latencyPipelines, ",") {
			if depth = strings.TrimSpace(depth); depth != "" {
				variants = append(variants, latencyVariant{pipeline: depth})
			}
		}
		if *latencyCompare != "" {
			other, _ := filepath.Abs(*latencyCompare)
			variants = append(variants, latencyVariant{bin: other})
		}
		for _, conns := range strings.Split(*latencyConns, ",") {
			if conns = strings.TrimSpace(conns); conns != "" {
				variants = append(variants, latencyVariant{conns: conns})
			}
		}
		for _, wait := range strings.Split(*latencyWaits, ",") {
			if wait = strings.TrimSpace(wait); wait != "" {
				variants = append(variants, latencyVariant{maxWait: wait})
			}
		}
		// The workload phase just wrote the source tables and Kafka's
		// log: the first round would otherwise meet its writeback, as
		// the other phases' runs do not (they settle after each), and
		// the autovacuum of the source table Debezium read, which
		// PostgreSQL starts within a minute of the writes: the first
		// round then shares two cores with it. Vacuumed and analysed
		// now, the table gives autovacuum nothing to do.
		vacuumSource(ctx, env, w)
		quiesce(ctx, env)
		// A broker started a minute before compiles its request paths
		// through more than one priming run, and round 1 then met its JIT
		// compiler (docs/benchmark-analysis.md). So priming repeats, up to
		// -latency-prime-runs, until a run sees the compiler settle.
		for i := 1; *latencyPrime > 0 && i <= max(1, *latencyPrimeRuns); i++ {
			l, err := measureLatency(ctx, env, bin, w, *latencyRate, *latencyPrime, min(*latencyWarmup, *latencyPrime/2), latencyVariant{})
			res.soft(fmt.Sprintf("Latency priming run %d", i), err)
			if l == nil {
				break
			}
			res.LatencyPrimes = append(res.LatencyPrimes, l)
			if l.Background == nil || l.Background.BrokerJITSeconds < primedJITSeconds {
				break
			}
		}
		for round := 1; round <= max(1, *latencyRepeat); round++ {
			for _, v := range variants {
				l, err := measureLatency(ctx, env, bin, w, *latencyRate, *latencyFor, *latencyWarmup, v)
				res.soft(fmt.Sprintf("Latency %s, round %d", v, round), err)
				if l != nil {
					l.Round = round
					res.addLatency(v, l)
				}
			}
		}
	}
	if run("compare") && *compare != "" {
		other, _ := filepath.Abs(*compare)
		res.Compare = measureCompare(ctx, env, bin, other, w, "", *compareRounds, res)
	}
	// A full run (no -only) has no other binary to compare with.
	if run("avro-compare") && *compare != "" {
		other, _ := filepath.Abs(*compare)
		res.AvroCompare = measureAvroCompare(ctx, env, bin, other, *events, *compareRounds, res)
	}
	if run("avro") {
		res.Avro = measureAvro(ctx, env, bin, w, *events, *jdbcCap, res)
	}
	// Last: the JDBC sink leaves Kafka Connect's JVM with a large heap to
	// collect, which disturbed the latency run that used to follow it.
	if run("jdbc") {
		res.JDBCUnnest, err = drainJDBC(ctx, env, w, true, *jdbcCap)
		res.soft("JDBCUnnest", err)
		res.JDBCNoUnnest, err = drainJDBC(ctx, env, w, false, *jdbcCap)
		res.soft("JDBCNoUnnest", err)
	}
	res.Finished = time.Now().UTC()
	b, _ := json.MarshalIndent(res, "", "  ")
	// A run of some phases (-only) must not replace the last full run's
	// figures, which -report-only rewrites the report from, nor its report.
	results, reportPath := "results.json", *out
	if *only != "" {
		results = "results-partial.json"
		if !outGiven() {
			reportPath = filepath.Join(benchDir(), "BENCHMARKS-partial.md")
		}
	}
	_ = os.WriteFile(filepath.Join(benchDir(), results), b, 0o644)
	*out = reportPath
	check(os.WriteFile(*out, []byte(report(res)), 0o644))
	logf("wrote %s", *out)
}

// soft records a failed measurement and goes on: one broken phase must not
// cost the figures of the others.
func (r *Results) soft(phase string, err error) {
	if err != nil {
		logf("%s FAILED: %v", phase, err)
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", phase, err))
	}
}

func check(err error) {
	if err != nil {
		logf("FAILED: %v", err)
		os.Exit(1)
	}
}

// outGiven reports whether -out was on the command line: a run of some
// phases (-only) writes its report beside its results unless told where.
func outGiven() bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "out" })
	return given
}
