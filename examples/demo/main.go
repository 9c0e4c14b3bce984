// Command demo is what `make demo` runs once the local stack is up: it
// creates a small shop schema in the source database, registers Debezium
// for it, starts `pgsink run` with examples/demo.yaml, drives a live
// workload, and prints source and target row counts and checksums per table
// until they match. pgsink keeps running afterwards; `make demo-clean` or
// `make stack-down` stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/docker"
	"github.com/pgsink/pgsink/test/stacktest"
)

const (
	topicPrefix = docker.TopicPrefix
	// Connect keeps a deleted connector's offsets, and Debezium would resume
	// from them (skipping its snapshot): each run registers a new name.
	connectorPrefix = "demo-"
	tablesSlot      = "demo_tables"
	outboxSlot      = "demo_outbox"
	// demoConfig is the configuration the demo's pgsink runs, relative to
	// the repository root, where make runs the demo.
	demoConfig = "examples/demo.yaml"
)

// outboxDDL is the outbox the workload writes an event to in the same
// transaction as each order change: the outbox pattern.
const outboxDDL = `(id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL, aggregateid text NOT NULL,
	type text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())`

// views are what the demo compares: each source query against the target
// table pgsink fills.
var views = []struct{ name, source, target string }{
	{"customers", `SELECT id, name, email, credit, created_at, profile FROM public.customers ORDER BY id`,
		`SELECT id, name, email, credit, created_at, profile FROM public.customers ORDER BY id`},
	{"orders", `SELECT id, customer_id, status, total, placed_at, lines FROM public.orders ORDER BY id`,
		`SELECT id, customer_id, status, total, placed_at, lines FROM public.orders ORDER BY id`},
	// The latest event per order, as the outbox says, against the table
	// pgsink builds from the Outbox Event Router's topic.
	{"order_status", `SELECT DISTINCT ON (aggregateid) aggregateid AS order_id, payload->>'status' AS status,
		(payload->>'total')::numeric(12,2) AS total FROM public.outbox ORDER BY aggregateid, created_at DESC`,
		`SELECT order_id, status, total FROM public.order_status ORDER BY order_id`},
}

// tables are the source tables Debezium streams; the target has the same
// columns plus pgsink's version pair.
var tables = []struct{ name, ddl string }{
	{"customers", `(id bigint PRIMARY KEY, name text NOT NULL, email text, credit numeric(14,2) NOT NULL DEFAULT 0,
		created_at timestamptz NOT NULL DEFAULT now(), profile jsonb)`},
	{"orders", `(id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, total numeric(12,2) NOT NULL,
		placed_at timestamptz NOT NULL, lines jsonb NOT NULL)`},
}

func main() {
	duration := flag.Duration("duration", 20*time.Second, "how long the live workload runs")
	rate := flag.Int("rate", 100, "workload transactions per second")
	converge := flag.Duration("converge-timeout", 2*time.Minute, "give up waiting for the target to match after this")
	binary := flag.String("pgsink", "bin/pgsink", "the pgsink binary")
	cleanOnly := flag.Bool("clean", false, "stop the demo's pgsink, remove its connectors, replication slots and topics, and exit")
	format := flag.String("format", "json", "the connectors' converter and pgsink's encoding: json, or avro through the stack's schema registry")
	flag.Parse()
	if *cleanOnly {
		if err := clean(); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
		return
	}
	if *format != "json" && *format != "avro" {
		fmt.Fprintf(os.Stderr, "demo: -format must be json or avro; got %q\n", *format)
		os.Exit(2)
	}
	if err := run(*duration, *rate, *converge, *binary, *format); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

// stack reads the local stack's addresses, checks every service answers,
// and stops the pgsink an earlier demo left running.
func stack(ctx context.Context) (env stacktest.Env, stateDir string, err error) {
	if env, err = stacktest.LoadEnv(); err != nil {
		return env, "", err
	}
	if err = env.Check(ctx); err != nil {
		return env, "", err
	}
	stateDir = filepath.Join(os.Getenv("PGSINK_STACK_DIR"), "demo")
	if err = os.MkdirAll(stateDir, 0o755); err != nil {
		return env, "", err
	}
	stopPrevious(stateDir)
	return env, stateDir, nil
}

func run(duration time.Duration, rate int, convergeTimeout time.Duration, binary, format string) error {
	ctx := context.Background()
	env, stateDir, err := stack(ctx)
	if err != nil {
		return err
	}
	// The registry's address: set only for Avro, so a JSON demo runs on a
	// stack without one too.
	var registry string
	if format == "avro" {
		if registry, err = env.Registry(); err != nil {
			return err
		}
	}

	say("resetting the demo: connectors %s*, slots %s and %s, topics %s.*, tables in source and target", connectorPrefix, tablesSlot, outboxSlot, topicPrefix)
	if err := removeStreams(ctx, env); err != nil {
		return err
	}
	c := stacktest.NewConnect(env.ConnectURL)
	runID := strconv.FormatInt(time.Now().Unix(), 10)
	src, err := pgx.Connect(ctx, env.SourceURL)
	if err != nil {
		return err
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, env.TargetURL)
	if err != nil {
		return err
	}
	defer dst.Close(ctx)
	for _, t := range tables {
		if _, err := src.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS public.%s; CREATE TABLE public.%s %s`, t.name, t.name, t.ddl)); err != nil {
			return fmt.Errorf("source table %s: %w", t.name, err)
		}
		// The target has the same columns plus the version pair pgsink's
		// stale-update guard keeps per row.
		ddl := strings.TrimSuffix(strings.TrimSpace(t.ddl), ")") + `, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`
		if _, err := dst.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS public.%s; CREATE TABLE public.%s %s`, t.name, t.name, ddl)); err != nil {
			return fmt.Errorf("target table %s: %w", t.name, err)
		}
	}
	if _, err := src.Exec(ctx, `DROP TABLE IF EXISTS public.outbox; CREATE TABLE public.outbox `+outboxDDL); err != nil {
		return fmt.Errorf("source outbox: %w", err)
	}
	if _, err := dst.Exec(ctx, `DROP TABLE IF EXISTS public.order_status;
		CREATE TABLE public.order_status (order_id text PRIMARY KEY, status text NOT NULL, total numeric(12,2))`); err != nil {
		return fmt.Errorf("target order_status: %w", err)
	}
	if _, err := dst.Exec(ctx, `DROP SCHEMA IF EXISTS pgsink CASCADE`); err != nil {
		return err
	}
	if _, err := src.Exec(ctx, `INSERT INTO public.customers (id, name, email, credit, profile)
		SELECT i, 'customer ' || i, 'c' || i || '@example.com', i * 10, jsonb_build_object('tier', i % 3) FROM generate_series(1, 500) i`); err != nil {
		return err
	}

	say("registering Debezium on the %s converter: the tables (snapshot of 500 customers, then streaming) and the outbox (Event Router)", format)
	// The same connector files docker/compose.yaml registers, pointed at the
	// local stack's source database.
	tablesCfg, err := stacktest.ConnectorFile(docker.TablesConnector, stacktest.Run{SourceURL: env.SourceURL, Slot: tablesSlot, TopicPrefix: topicPrefix})
	if err != nil {
		return err
	}
	outboxCfg, err := stacktest.ConnectorFile(docker.OutboxConnector, stacktest.Run{SourceURL: env.SourceURL, Slot: outboxSlot, TopicPrefix: topicPrefix})
	if err != nil {
		return err
	}
	for name, cfg := range map[string]map[string]string{"tables-" + runID: tablesCfg, "outbox-" + runID: outboxCfg} {
		if registry != "" {
			stacktest.UseAvro(cfg, registry)
		}
		if err := c.Put(ctx, connectorPrefix+name, cfg); err != nil {
			return err
		}
		if err := c.WaitRunning(ctx, connectorPrefix+name, 90*time.Second); err != nil {
			return err
		}
	}

	logPath := filepath.Join(stateDir, "pgsink.log")
	say("starting pgsink run --config examples/demo.yaml, encoding %s (log: %s, metrics: http://127.0.0.1:9187/metrics)", format, logPath)
	pid, err := startPgsink(binary, stateDir, logPath, env, format, registry)
	if err != nil {
		return err
	}

	say("driving a live workload for %s (~%d transactions/s: new customers; orders placed, paid, shipped, cancelled, each with its outbox event)", duration, rate)
	stopLoad := make(chan struct{})
	loadErr := make(chan error, 1)
	go func() { loadErr <- workload(ctx, env.SourceURL, rate, stopLoad) }()
	// Ctrl-C ends the workload early; the demo then waits for convergence
	// as usual (a second Ctrl-C ends it at once).
	interrupted, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	deadline := time.After(duration)
live:
	for {
		select {
		case <-deadline:
			break live
		case <-interrupted.Done():
			stopSignals()
			say("interrupted: stopping the workload")
			break live
		case <-time.After(2 * time.Second):
			if _, err := report(ctx, src, dst, "live"); err != nil {
				return err
			}
		}
	}
	stopSignals()
	close(stopLoad)
	if err := <-loadErr; err != nil {
		return err
	}

	say("workload stopped; waiting for the target to catch up")
	end := time.Now().Add(convergeTimeout)
	for {
		same, err := report(ctx, src, dst, "catch-up")
		if err != nil {
			return err
		}
		if same {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("the target did not match the source within %s; see %s", convergeTimeout, logPath)
		}
		time.Sleep(2 * time.Second)
	}
	say("converged: every table matches its source row for row (checksums equal), order_status included, built from outbox events.")
	envFile := filepath.Join(stateDir, "env")
	pidFile := filepath.Join(stateDir, "pgsink.pid")
	fmt.Printf(`
pgsink (pid %[1]d) keeps running (log: %[2]s). Things to try, from this directory:
  - load the addresses and encoding examples/demo.yaml reads (PGSINK_DATABASE_URL, PGSINK_KAFKA_BOOTSTRAP, PGSINK_CONNECT_URL,
    PGSINK_ENCODING, PGSINK_SCHEMA_REGISTRY_URL) into your shell:
      source %[3]s
  - positions, lag, owner and epoch per partition, and the dead-letter count:
      %[4]s status --config examples/demo.yaml
  - the dead letters, if a record could not be applied (none in this demo):
      %[4]s dlq list --config examples/demo.yaml
  - apply a table's topic again from its start while pgsink runs; the version guard keeps every row as it is:
      %[4]s replay --config examples/demo.yaml --table public.orders --from earliest --wait
  - kill it and start it again; it resumes from its offsets in PostgreSQL, nothing lost or applied twice.
    The new instance waits about 40 s before it gets its partitions: Kafka keeps them with the killed
    member until its session times out (session.timeout.ms, 45 s by default). The pid file lets
    make demo-clean and make stack-down stop it:
      kill -9 %[1]d
      sh -c 'echo $$ > %[5]s; exec %[4]s run --config examples/demo.yaml --log-format console'
  - write to the source and watch the target follow:
      psql '%[6]s' -c "UPDATE customers SET credit = credit + 1 WHERE id < 10"
      psql '%[7]s' -c "SELECT id, credit FROM customers WHERE id < 10"
  - look at the metrics: curl -s http://127.0.0.1:9187/metrics | grep ^pgsink_
  - read the offsets it keeps with the data: psql '%[7]s' -c "TABLE pgsink.offsets"
  - stop pgsink and remove the demo's connectors, replication slots and topics: make demo-clean
    (make stack-down then stops the stack)
`, pid, logPath, envFile, binary, pidFile, env.SourceURL, env.TargetURL)
	return nil
}

// stopPrevious stops the pgsinks an earlier demo left running: the one its
// pid file names (the demo's own, or one restarted from its tips) and any
// started by hand with this clone's examples/demo.yaml. A process is only
// stopped when its command line is `pgsink run` with that configuration
// file, so another clone's demo, or a pid reused since, is left alone.
func stopPrevious(stateDir string) {
	config, err := filepath.Abs(demoConfig)
	if err != nil {
		return
	}
	pids := map[int]bool{}
	if b, err := os.ReadFile(filepath.Join(stateDir, "pgsink.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && runsConfig(pid, config) {
			pids[pid] = true
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil && pid != os.Getpid() && runsConfig(pid, config) {
			pids[pid] = true
		}
	}
	for pid := range pids {
		say("stopping the demo's pgsink (pid %d)", pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil && runsConfig(pid, config) {
			say("pgsink (pid %d) still running after 10 s: killing it (its offsets are in PostgreSQL, nothing is lost)", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(filepath.Join(stateDir, "pgsink.pid"))
}

// runsConfig reports whether process pid is `pgsink run` with config (an
// absolute path) as its --config, resolved against its working directory.
func runsConfig(pid int, config string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 2 || filepath.Base(args[0]) != "pgsink" || args[1] != "run" {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	for i, a := range args[2:] {
		var path string
		switch {
		case a == "--config" || a == "-config":
			if i+3 < len(args) {
				path = args[i+3]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			path = a[strings.Index(a, "=")+1:]
		}
		if path == "" {
			continue
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(cwd, path)
		}
		return filepath.Clean(path) == config
	}
	return false
}

// startPgsink starts pgsink on examples/demo.yaml with the stack's addresses
// and the encoding in its environment; registry is empty for JSON.
func startPgsink(binary, stateDir, logPath string, env stacktest.Env, format, registry string) (int, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	registryAPI := ""
	if registry != "" {
		registryAPI = stacktest.ConfluentAPI(registry)
	}
	vars := []string{"PGSINK_DATABASE_URL=" + env.TargetURL, "PGSINK_KAFKA_BOOTSTRAP=" + env.KafkaBootstrap, "PGSINK_CONNECT_URL=" + env.ConnectURL,
		"PGSINK_ENCODING=" + format, "PGSINK_SCHEMA_REGISTRY_URL=" + registryAPI}
	if err := os.WriteFile(filepath.Join(stateDir, "env"), []byte("export "+strings.Join(vars, "\nexport ")+"\n"), 0o600); err != nil {
		return 0, err
	}
	cmd := exec.Command(binary, "run", "--config", demoConfig, "--log-format", "console")
	cmd.Env = append(os.Environ(), vars...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: it outlives the demo and `make`.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", binary, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(stateDir, "pgsink.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	time.Sleep(500 * time.Millisecond)
	if syscall.Kill(pid, 0) != nil {
		log, _ := os.ReadFile(logPath)
		return 0, fmt.Errorf("pgsink exited at once:\n%s", log)
	}
	return pid, nil
}

// workload places and moves orders until stop is closed. Every order change
// writes its event to the outbox in the same transaction.
func workload(ctx context.Context, url string, rate int, stop <-chan struct{}) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	var nextOrder, nextCustomer int64 = 1, 501
	event := func(tx pgx.Tx, order int64, typ string) error {
		_, err := tx.Exec(ctx, `INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
			SELECT 'Order', 'order-' || o.id, $2, jsonb_build_object('id', 'order-' || o.id, 'status', $3::text, 'total', o.total)
			  FROM orders o WHERE o.id = $1`, order, typ, strings.ToLower(strings.TrimPrefix(typ, "Order")))
		return err
	}
	step := func(tx pgx.Tx) error {
		switch p := rng.IntN(100); {
		case p < 10:
			_, err := tx.Exec(ctx, `INSERT INTO customers (id, name, email, profile) VALUES ($1, $2, $3, '{"tier": 0}')`,
				nextCustomer, fmt.Sprintf("customer %d", nextCustomer), fmt.Sprintf("c%d@example.com", nextCustomer))
			nextCustomer++
			return err
		case p < 50:
			id := nextOrder
			nextOrder++
			if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ($1, $2, 'placed', $3, now(), $4)`, id, rng.Int64N(nextCustomer-1)+1,
				fmt.Sprintf("%d.%02d", rng.IntN(500), rng.IntN(100)), fmt.Sprintf(`[{"sku": "SKU-%d", "qty": %d}]`, rng.IntN(100), rng.IntN(5)+1)); err != nil {
				return err
			}
			return event(tx, id, "OrderPlaced")
		case p < 75:
			id := rng.Int64N(nextOrder) + 1
			var status string
			err := tx.QueryRow(ctx, `UPDATE orders SET status = CASE status WHEN 'placed' THEN 'paid' ELSE 'shipped' END
				WHERE id = $1 AND status IN ('placed', 'paid') RETURNING status`, id).Scan(&status)
			if err == pgx.ErrNoRows {
				return nil
			}
			if err != nil {
				return err
			}
			return event(tx, id, "Order"+strings.ToUpper(status[:1])+status[1:])
		case p < 90:
			_, err := tx.Exec(ctx, `UPDATE customers SET credit = credit + $2, profile = profile || '{"active": true}' WHERE id = $1`,
				rng.Int64N(nextCustomer-1)+1, rng.IntN(100))
			return err
		default:
			id := rng.Int64N(nextOrder) + 1
			if err := event(tx, id, "OrderCancelled"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM orders WHERE id = $1`, id)
			return err
		}
	}
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		if err := pgx.BeginFunc(ctx, conn, step); err != nil {
			return fmt.Errorf("workload: %w", err)
		}
	}
}

// report prints one line per table and says whether all match.
func report(ctx context.Context, src, dst *pgx.Conn, phase string) (bool, error) {
	all := true
	var parts []string
	for _, t := range views {
		sc, ss, err := countAndSum(ctx, src, t.source)
		if err != nil {
			return false, err
		}
		dc, ds, err := countAndSum(ctx, dst, t.target)
		if err != nil {
			return false, err
		}
		mark := "≠"
		if sc == dc && ss == ds {
			mark = "="
		} else {
			all = false
		}
		parts = append(parts, fmt.Sprintf("%-12s source %6d rows %s  target %6d rows %s  %s", t.name, sc, ss[:8], dc, ds[:8], mark))
	}
	fmt.Printf("[%s %s]\n  %s\n", time.Now().Format("15:04:05"), phase, strings.Join(parts, "\n  "))
	return all, nil
}

func countAndSum(ctx context.Context, conn *pgx.Conn, query string) (int64, string, error) {
	var n int64
	var sum string
	err := conn.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(row_to_json(q)::text, E'\n')), md5('')) FROM (`+query+`) q`).Scan(&n, &sum)
	return n, sum, err
}

// removeStreams deletes what the demo leaves streaming after it ends: its
// Debezium connectors, their replication slots and its topics. A slot left
// behind keeps every WAL segment the source writes from then on, and when
// Kafka Connect runs again its walsender decodes them all: gigabytes after
// a benchmark, and both cores busy for minutes.
func removeStreams(ctx context.Context, env stacktest.Env) error {
	c := stacktest.NewConnect(env.ConnectURL)
	existing, err := c.List(ctx)
	if err != nil {
		return err
	}
	for _, name := range existing {
		if strings.HasPrefix(name, connectorPrefix) {
			if err := c.Delete(ctx, name); err != nil {
				return err
			}
		}
	}
	for _, slot := range []string{tablesSlot, outboxSlot} {
		if err := dropSlot(ctx, env.AdminURL, slot); err != nil {
			return err
		}
	}
	return stacktest.DeleteTopics(ctx, env.KafkaBootstrap, topicPrefix+".")
}

// clean stops the demo's pgsink and removes its streams.
func clean() error {
	ctx := context.Background()
	env, _, err := stack(ctx)
	if err != nil {
		return err
	}
	say("removing the demo's connectors %s*, slots %s and %s, topics %s.*", connectorPrefix, tablesSlot, outboxSlot, topicPrefix)
	return removeStreams(ctx, env)
}

func dropSlot(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for i := 0; i < 40; i++ {
		_, _ = conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, name)
		_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NULL`, name)
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("replication slot %s still in use: %v", name, err)
}
