package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// pgsinkRun is one pgsink measurement: default settings unless said.
type pgsinkRun struct {
	label        string
	profile      bool          // take a CPU profile during the drain
	offsetsKafka bool          // apply.offsets: kafka (at least once)
	batch        int           // apply.batch.max_records; 0 = default
	limit        time.Duration // stop after this long and report the rate so far
	topic        string        // default: the workload topic
	buffered     string        // apply.max_buffered_bytes; "" = default
	maxWait      string        // apply.batch.max_wait; "" = default
	pipeline     string        // apply.pipeline; "" = default
	connections  string        // postgres.max_connections; "" = default
	syncOff      bool          // postgres.synchronous_commit: off
	registry     string        // encoding: avro with this schema_registry.url; "" = JSON
	// txTopic, when set, runs apply.consistency: transaction with this
	// transaction topic; txHigh is its high watermark, which the resolver
	// must reach for a drain to be complete.
	txTopic string
	txHigh  int64
	// txStaging is apply.transaction.staging; "" = default (logged).
	txStaging string
	// txLocal is apply.transaction.direct_local_partitions.
	txLocal bool
	start   string // apply.start; "" = earliest
}

// Drain is one sink's drain of the workload topic.
type Drain struct {
	Label      string  `json:"label"`
	Events     int64   `json:"events"`  // change events applied (estimated from offsets when capped)
	Records    int64   `json:"records"` // Kafka records consumed (events + tombstones)
	Seconds    float64 `json:"seconds"`
	EventsPS   float64 `json:"events_per_s"`
	MBPS       float64 `json:"mb_per_s"` // of Kafka data (key + value bytes)
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPerM    float64 `json:"cpu_s_per_million_events"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// MeanBatch is records per applied batch (pgsink_batch_records), and
	// PGCPUPerM below PostgreSQL's CPU: together they show a run starved
	// into small batches, which cost PostgreSQL more per event.
	MeanBatch float64 `json:"mean_batch_records,omitempty"`
	Budget    string  `json:"max_buffered_bytes,omitempty"` // when not the default
	// WALMB is the WAL the whole server wrote during the drain (pg_stat_wal).
	WALMB float64 `json:"wal_mb,omitempty"`
	// Connections is postgres.max_connections of a conns drain ("" the
	// default).
	Connections string `json:"max_connections,omitempty"`
	// PGCPUPerM is the target PostgreSQL's CPU seconds per million events.
	PGCPUPerM float64 `json:"postgres_cpu_s_per_million_events"`
	Complete  bool    `json:"complete"` // drained to the end (not capped)
	Verified  string  `json:"verified"` // target compared with the source
	Profile   string  `json:"profile,omitempty"`
	Note      string  `json:"note,omitempty"`
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freshDatabase (re)creates a target database owned by the pgsink role with
// the benchmark table, and returns its URL for that role.
func freshDatabase(ctx context.Context, env stacktest.Env, name, ddl string) (string, error) {
	if err := stacktest.DropDatabase(ctx, env.AdminURL, name); err != nil {
		return "", err
	}
	if err := stacktest.CreateDatabase(ctx, env.AdminURL, name, "pgsink"); err != nil {
		return "", err
	}
	u, err := stacktest.WithDatabase(env.TargetURL, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, ddl)
	return u, err
}

// settle drops a finished run's database and checkpoints, so the next
// phase does not share the machine with its autovacuum and its dirty
// buffers: the latency runs, which come after the drains, were the most
// disturbed by them.
func settle(ctx context.Context, env stacktest.Env, db string) {
	if err := stacktest.DropDatabase(ctx, env.AdminURL, db); err != nil {
		logf("dropping %s: %v", db, err)
	}
	quiesce(ctx, env)
}

// quiesce waits for PostgreSQL's autovacuum workers, checkpoints and
// flushes the page cache to disk.
func quiesce(ctx context.Context, env stacktest.Env) {
	awaitAutovacuum(ctx, env, time.Minute)
	conn, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		logf("checkpoint: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		logf("checkpoint: %v", err)
	}
	// The CHECKPOINT writes PostgreSQL's dirty buffers into the page cache;
	// the phase before also left Kafka's log segments there (a drain reads
	// and the workload wrote gigabytes). Flush them all before the next
	// phase, or its commits' WAL flushes queue behind the kernel's
	// writeback of the last phase: the first latency run after the drains
	// had p99s of 365 and 735 ms with a clean CHECKPOINT before it.
	t0 := time.Now()
	syscall.Sync()
	if d := time.Since(t0); d > time.Second {
		logf("settle: sync took %s", d.Round(time.Millisecond))
	}
}

const pgsinkDDL = `CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint, status text,
	amount numeric(12,2), created_at timestamptz, attrs jsonb, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`

func benchDir() string { return filepath.Join(stackDir(), "bench") }

// running is a started pgsink process.
type running struct {
	cmd     *exec.Cmd
	pid     int
	port    int
	url     string
	group   string
	log     string
	exited  chan error
	started time.Time
}

func (p *running) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startPgsink starts pgsink with default settings (except what r says) on
// a fresh target database.
func startPgsink(ctx context.Context, env stacktest.Env, bin string, r pgsinkRun) (*running, error) {
	db := "bench_pgsink_" + r.label
	url, err := freshDatabase(ctx, env, db, pgsinkDDL)
	if err != nil {
		return nil, err
	}
	group := fmt.Sprintf("bench-%s-%d", r.label, time.Now().Unix())
	port := freePort()
	var extra strings.Builder
	if r.offsetsKafka {
		extra.WriteString("  offsets: kafka\n")
	}
	switch {
	case r.batch > 0 && r.maxWait != "":
		fmt.Fprintf(&extra, "  batch: { max_records: %d, max_wait: %s }\n", r.batch, r.maxWait)
	case r.batch > 0:
		fmt.Fprintf(&extra, "  batch: { max_records: %d }\n", r.batch)
	case r.maxWait != "":
		fmt.Fprintf(&extra, "  batch: { max_wait: %s }\n", r.maxWait)
	}
	if r.pipeline != "" {
		fmt.Fprintf(&extra, "  pipeline: %s\n", r.pipeline)
	}
	if r.buffered != "" {
		fmt.Fprintf(&extra, "  max_buffered_bytes: %s\n", r.buffered)
	}
	if r.txTopic != "" {
		staging := ""
		if r.txStaging != "" {
			staging = ", staging: " + r.txStaging
		}
		if r.txLocal {
			staging += ", direct_local_partitions: true"
		}
		fmt.Fprintf(&extra, "  consistency: transaction\n  transaction: { topic: %s%s }\n", r.txTopic, staging)
	}
	start := "earliest"
	if r.start != "" {
		start = r.start
	}
	pgExtra := ""
	if r.syncOff {
		pgExtra = "  synchronous_commit: \"off\"\n"
	}
	if r.pipeline != "" {
		// A follower is sent only while the pool has an idle connection:
		// with the default four for six partitions it seldom has one.
		// docs/configuration.md asks for a connection per partition and
		// transaction in flight; so does this run.
		depth, err := strconv.Atoi(r.pipeline)
		if err != nil {
			return nil, fmt.Errorf("pipeline %q: %w", r.pipeline, err)
		}
		pgExtra += fmt.Sprintf("  max_connections: %d\n", depth*partitions)
	} else if r.connections != "" {
		n, err := strconv.Atoi(r.connections)
		if err != nil {
			return nil, fmt.Errorf("connections %q: %w", r.connections, err)
		}
		pgExtra += fmt.Sprintf("  max_connections: %d\n", n)
	}
	encoding := ""
	if r.registry != "" {
		encoding = fmt.Sprintf("encoding: avro\nschema_registry:\n  url: %s\n", r.registry)
	}
	// PGSINK_BENCH_KAFKA_STATS=<ms> has pgsink log librdkafka's
	// statistics (fetch round trips, queues) at that interval.
	kafkaExtra := ""
	if ms := os.Getenv("PGSINK_BENCH_KAFKA_STATS"); ms != "" {
		kafkaExtra = "  statistics.interval.ms: " + ms + "\n"
	}
	cfg := fmt.Sprintf(`%skafka:
  bootstrap.servers: %s
  group.id: %s
%spostgres:
  url: %s
%sapply:
  start: %s
%smetrics:
  listen: 127.0.0.1:%d
log:
  format: json
  level: info
tables:
  - topic: %s
    target: public.orders
`, encoding, env.KafkaBootstrap, group, kafkaExtra, url, pgExtra, start, extra.String(), port, r.topic)
	dir := benchDir()
	cfgPath := filepath.Join(dir, "pgsink-"+r.label+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "pgsink-"+r.label+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "PGSINK_PPROF=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &running{cmd: cmd, port: port, url: url, group: group, log: logFile.Name(), exited: make(chan error, 1), started: time.Now()}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	go func() { p.exited <- cmd.Wait(); logFile.Close() }()
	return p, nil
}

func drainPgsink(ctx context.Context, env stacktest.Env, bin string, w Workload, r pgsinkRun) (*Drain, error) {
	if r.topic == "" {
		r.topic = w.Topic
	}
	hw, err := highWatermarks(env.KafkaBootstrap, r.topic)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, h := range hw {
		total += h
	}
	logf("pgsink %s: draining %d records of %s", r.label, total, r.topic)
	pg0, wal0 := postgresCPU(ctx, env), walBytes(ctx, env)
	p, err := startPgsink(ctx, env, bin, r)
	if err != nil {
		return nil, err
	}
	t0 := p.started
	profDone := make(chan string, 1)
	if r.profile {
		go func() { profDone <- takeProfile(p.port, benchDir(), r.label) }()
	}
	pos := positionReader(ctx, p, r, hw)
	var done int64
	complete := false
	for {
		select {
		case err := <-p.exited:
			return nil, fmt.Errorf("pgsink %s exited during the drain (%v); log: %s", r.label, err, p.log)
		case <-time.After(100 * time.Millisecond):
		}
		n, err := pos()
		if err == nil {
			done = n
		}
		if done >= total {
			complete = true
			break
		}
		if r.limit > 0 && time.Since(t0) > r.limit {
			break
		}
	}
	elapsed := time.Since(t0)
	cpu, rss := procStats(p.pid)
	pg1, wal1 := postgresCPU(ctx, env), walBytes(ctx, env)
	d := &Drain{Label: r.label, Records: done, Seconds: elapsed.Seconds(), CPUSeconds: cpu, PeakRSSMiB: rss, Complete: complete}
	if wal0 > 0 && wal1 >= wal0 {
		d.WALMB = (wal1 - wal0) / 1e6
	}
	if _, batches, err := scrapeHistogram(p.port, "pgsink_batch_records"); err == nil {
		if records, err := scrapeSum(p.port, "pgsink_batch_records"); err == nil {
			d.MeanBatch = records / batches
		}
	}
	// Events are Kafka records minus tombstones; a capped run assumes the
	// workload's ratio.
	d.Events = int64(float64(done) * float64(w.Events) / float64(w.Records))
	d.EventsPS = float64(d.Events) / d.Seconds
	d.MBPS = float64(w.KVBytes) * float64(done) / float64(w.Records) / d.Seconds / 1e6
	d.CPUPerM = d.CPUSeconds / float64(max(d.Events, 1)) * 1e6
	d.PGCPUPerM = (pg1 - pg0) / float64(max(d.Events, 1)) * 1e6
	if !complete {
		d.Note = fmt.Sprintf("capped at %s: rate from its committed progress", r.limit)
	}
	if r.profile {
		select {
		case d.Profile = <-profDone:
		case <-time.After(30 * time.Second):
		}
	}
	p.stop()
	if complete && r.topic == w.Topic {
		d.Verified = verify(ctx, env, w, p.url)
	}
	settle(ctx, env, "bench_pgsink_"+r.label)
	logf("pgsink %s: %d events in %.1fs = %.0f events/s, %.1f MB/s, %.1f CPU-s/M events (PostgreSQL %.1f), peak RSS %.0f MiB, %.0f records per batch, %s",
		r.label, d.Events, d.Seconds, d.EventsPS, d.MBPS, d.CPUPerM, d.PGCPUPerM, d.PeakRSSMiB, d.MeanBatch, d.Verified)
	return d, nil
}

// positionReader returns how many records of the topic the run has
// committed: from pgsink.offsets, or the group's Kafka offsets when
// positions live there.
func positionReader(ctx context.Context, p *running, r pgsinkRun, hw []int64) func() (int64, error) {
	if r.offsetsKafka {
		// Not the group's committed offsets: librdkafka commits them once
		// a second, which would add up to a second to the run. Each
		// worker's lag gauge is set right after its PostgreSQL commit.
		return func() (int64, error) { return lagPosition(p.port, r.topic, hw) }
	}
	return func() (int64, error) {
		conn, err := pgx.Connect(ctx, p.url)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		var n, resolver int64
		err = conn.QueryRow(ctx, `SELECT coalesce(sum(next_offset) FILTER (WHERE topic = $2), 0),
			coalesce(max(next_offset) FILTER (WHERE topic = $3), 0) FROM pgsink.offsets WHERE group_id = $1`, p.group, r.topic, r.txTopic).Scan(&n, &resolver)
		if r.txTopic != "" && resolver < r.txHigh {
			// Staged is not applied: nothing counts until the resolver
			// has applied every END (a transaction-mode drain is not
			// capped, so no rate is read from this progress).
			n = 0
		}
		return n, err
	}
}

// lagPosition is how many records pgsink has committed, from its
// pgsink_partition_lag_records gauges and the topic's high watermarks
// (hw, per partition): a partition without a gauge has committed nothing.
func lagPosition(port int, topic string, hw []int64) (int64, error) {
	done := make([]int64, len(hw))
	err := metricLines(port, func(line string) {
		if !strings.HasPrefix(line, "pgsink_partition_lag_records{") || !strings.Contains(line, `topic="`+topic+`"`) {
			return
		}
		i := strings.Index(line, `partition="`)
		var part int
		var lag float64
		if i < 0 {
			return
		}
		if _, err := fmt.Sscanf(line[i:], `partition="%d"`, &part); err != nil || part < 0 || part >= len(hw) {
			return
		}
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &lag); err == nil {
			done[part] = hw[part] - int64(lag)
		}
	})
	var n int64
	for _, d := range done {
		n += d
	}
	return n, err
}

// groupPosition sums a consumer group's committed offsets on the topic.
func groupPosition(bootstrap, group, topicName string) (int64, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	t := topicName
	var tps []kafka.TopicPartition
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: p})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: tps}})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Offset >= 0 {
				n += int64(tp.Offset)
			}
		}
	}
	return n, nil
}

// procStats reads a process's CPU time (user + system) and peak RSS.
func procStats(pid int) (cpuSeconds, peakMiB float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		cpuSeconds = (utime + stime) / 100 // USER_HZ
	}
	if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				peakMiB = kb / 1024
			}
		}
	}
	return cpuSeconds, peakMiB
}

// takeProfile takes a 10-second CPU profile early in the drain and returns
// the top of `go tool pprof -top`.
func takeProfile(port int, dir, label string) string {
	time.Sleep(3 * time.Second)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=10", port))
	if err != nil {
		return "profile failed: " + err.Error()
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, "pgsink-"+label+".cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		return err.Error()
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		return err.Error()
	}
	flat, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=22", path).CombinedOutput()
	if err != nil {
		return string(flat) + err.Error()
	}
	// Cumulative, pgsink's own functions only: which stage costs what.
	cum, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=22", "-focus=pgsink|pgx|kafka", path).CombinedOutput()
	if err != nil {
		return string(flat) + string(cum) + err.Error()
	}
	return string(flat) + "\n-- by cumulative time --\n" + string(cum)
}

// verify compares the target table with the final state of the source w
// was written from.
func verify(ctx context.Context, env stacktest.Env, w Workload, targetURL string) string {
	const digest = `SELECT count(*), coalesce(sum(hashtext(id::text || '|' || coalesce(customer_id::text,'') || '|' || coalesce(status,'') || '|' ||
		coalesce(amount::text,'') || '|' || coalesce(created_at::text,'') || '|' || coalesce(attrs::text,''))::bigint), 0) FROM public.orders`
	read := func(url string) (int64, int64, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, 0, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `SET TIME ZONE 'UTC'`); err != nil {
			return 0, 0, err
		}
		var n, h int64
		err = conn.QueryRow(ctx, digest).Scan(&n, &h)
		return n, h, err
	}
	sn, sh, err := read(sourceURL(env, w.source()))
	if err != nil {
		return "not verified: " + err.Error()
	}
	tn, th, err := read(targetURL)
	if err != nil {
		return "not verified: " + err.Error()
	}
	if sn == tn && sh == th {
		return fmt.Sprintf("identical to the source (%d rows)", tn)
	}
	return fmt.Sprintf("DIFFERS from the source: %d rows vs %d, digest %d vs %d", tn, sn, th, sh)
}
