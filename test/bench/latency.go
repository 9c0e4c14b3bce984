package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/test/stacktest"
)

const latencyTopic = "bench.latency.orders"

// Latency is pgsink's commit latency at a steady produce rate.
type Latency struct {
	MaxWait string `json:"max_wait"` // apply.batch.max_wait of the run
	// SynchronousCommit is postgres.synchronous_commit when not the default.
	SynchronousCommit string  `json:"synchronous_commit,omitempty"`
	Rate              int     `json:"rate"` // events/s produced
	Events            int64   `json:"events"`
	Seconds           float64 `json:"seconds"`
	AchievedPS        float64 `json:"achieved_per_s"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	// Steady*: the same quantiles without the first WarmupSeconds of the
	// run, when the consumer group, the connections and the plans are
	// still being set up: the rate the issue asks about is a steady one.
	WarmupSeconds float64 `json:"warmup_seconds"`
	SteadyP50ms   float64 `json:"steady_p50_ms"`
	SteadyP99ms   float64 `json:"steady_p99_ms"`
	// Receive*: the steady state's share before batching and the apply
	// (pgsink_record_receive_latency_seconds): Kafka's delivery and
	// pgsink's fetch buffer.
	ReceiveP50ms float64 `json:"steady_receive_p50_ms"`
	ReceiveP99ms float64 `json:"steady_receive_p99_ms"`
	// Received in two stages: Dispatch* from the Kafka timestamp to the
	// poll loop's hand-over (pgsink_record_dispatch_latency_seconds),
	// Queued* from there to the worker taking the record
	// (pgsink_record_queued_seconds); Pauses the partition pauses of the run.
	DispatchP50ms float64 `json:"steady_dispatch_p50_ms,omitempty"`
	DispatchP99ms float64 `json:"steady_dispatch_p99_ms,omitempty"`
	QueuedP50ms   float64 `json:"steady_queued_p50_ms,omitempty"`
	QueuedP99ms   float64 `json:"steady_queued_p99_ms,omitempty"`
	Pauses        float64 `json:"pauses"`
	// Pipelined and PipelineRetries, in a pipelined run: transactions sent
	// behind another of their partition, and followers applied again.
	Pipelined       float64 `json:"pipelined,omitempty"`
	PipelineRetries float64 `json:"pipeline_retries,omitempty"`
	Maxms           float64 `json:"max_bucket_ms"`
	CPUPerM         float64 `json:"cpu_s_per_million_events"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	CommitCount     int64   `json:"samples"`
	// The apply transactions' own share: pgsink_apply_seconds per batch,
	// and the mean batch size.
	ApplyP50ms float64 `json:"apply_p50_ms"`
	ApplyP99ms float64 `json:"apply_p99_ms"`
	MeanBatch  float64 `json:"mean_batch_records"`
	// ConnWait*: the share of each apply spent waiting for a pool
	// connection (pgsink_apply_connection_wait_seconds).
	ConnWaitP50ms float64 `json:"connection_wait_p50_ms,omitempty"`
	ConnWaitP99ms float64 `json:"connection_wait_p99_ms,omitempty"`
	// Round is the run's place among the interleaved rounds of the
	// latency phase, from 1.
	Round int `json:"round,omitempty"`
	// Background is what else ran on the stack from the first record
	// produced to the last committed.
	Background *Background `json:"background,omitempty"`
}

// measureLatency produces the workload's records (their keys and values as
// Debezium wrote them) at a steady rate into a LogAppendTime topic that a
// running pgsink applies, and reads pgsink's per-record "Kafka append time
// to target commit" histogram.
// latencyVariant is what a latency run changes from the default settings.
type latencyVariant struct {
	maxWait  string // apply.batch.max_wait; "" = default
	syncOff  bool   // postgres.synchronous_commit: off
	pipeline string // apply.pipeline; "" = default
	conns    string // postgres.max_connections; "" = default
	// bin, when set, is another pgsink binary run at default settings
	// (-latency-compare): the code before a change, measured in the same
	// rounds as this one.
	bin string
}

func (v latencyVariant) String() string {
	switch {
	case v.syncOff:
		return "synchronous_commit off"
	case v.maxWait != "":
		return "max_wait " + v.maxWait
	case v.pipeline != "":
		return "pipeline " + v.pipeline
	case v.conns != "":
		return "max_connections " + v.conns
	case v.bin != "":
		return "binary " + filepath.Base(filepath.Dir(filepath.Dir(v.bin)))
	}
	return "default settings"
}

func measureLatency(ctx context.Context, env stacktest.Env, bin string, w Workload, rate int, dur, warmup time.Duration, v latencyVariant) (*Latency, error) {
	maxWait := v.maxWait
	if err := stacktest.DeleteTopics(ctx, env.KafkaBootstrap, latencyTopic); err != nil {
		return nil, err
	}
	if err := createTopic(ctx, env.KafkaBootstrap, latencyTopic, partitions, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		return nil, err
	}
	label := "latency"
	if maxWait != "" {
		label += "_wait_" + maxWait
	}
	if v.syncOff {
		label += "_sync_off"
	}
	if v.pipeline != "" {
		label += "_pipeline_" + v.pipeline
	}
	if v.conns != "" {
		label += "_conns_" + v.conns
	}
	if v.bin != "" {
		label += "_compare"
		bin = v.bin
	}
	defer settle(ctx, env, "bench_pgsink_"+label) // after p.stop, deferred below
	p, err := startPgsink(ctx, env, bin, pgsinkRun{label: label, topic: latencyTopic, maxWait: maxWait, syncOff: v.syncOff, pipeline: v.pipeline, connections: v.conns})
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := waitReady(p, 60*time.Second); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // the assignment settles
	n := int64(rate) * int64(dur/time.Second)
	logf("latency: producing %d events at %d/s into %s", n, rate, latencyTopic)
	type produced struct {
		sent int64
		took time.Duration
		err  error
	}
	done := make(chan produced, 1)
	background := watchBackground(ctx, env)
	defer background.stop()
	go func() {
		sent, took, err := produceAtRate(env.KafkaBootstrap, w.Topic, latencyTopic, rate, n)
		done <- produced{sent, took, err}
	}()
	time.Sleep(warmup)
	warm, warmCount, err := scrapeHistogram(p.port, "pgsink_record_commit_latency_seconds")
	if err != nil {
		return nil, fmt.Errorf("latency: after the warm-up: %w", err)
	}
	warmRecv, warmRecvCount, err := scrapeHistogram(p.port, "pgsink_record_receive_latency_seconds")
	if err != nil {
		return nil, fmt.Errorf("latency: after the warm-up: %w", err)
	}
	stages := newStages(p.port, "pgsink_record_dispatch_latency_seconds", "pgsink_record_queued_seconds")
	pr := <-done
	if pr.err != nil {
		return nil, pr.err
	}
	sent, took := pr.sent, pr.took
	total, err := topicRecords(env.KafkaBootstrap, latencyTopic)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	pos := positionReader(ctx, p, pgsinkRun{topic: latencyTopic}, nil)
	for {
		if done, err := pos(); err == nil && done >= total {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("latency: pgsink did not catch up within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	bg := background.stop()
	buckets, count, err := scrapeHistogram(p.port, "pgsink_record_commit_latency_seconds")
	if err != nil {
		return nil, err
	}
	ab, ac, err := scrapeHistogram(p.port, "pgsink_apply_seconds")
	if err != nil {
		return nil, err
	}
	recv, recvCount, err := scrapeHistogram(p.port, "pgsink_record_receive_latency_seconds")
	if err != nil {
		return nil, err
	}
	cpu, rss := procStats(p.pid)
	l := &Latency{ApplyP50ms: quantile(ab, ac, 0.5) * 1000, ApplyP99ms: quantile(ab, ac, 0.99) * 1000, MeanBatch: float64(count) / ac, MaxWait: maxWait, Rate: rate, Events: sent, Seconds: took.Seconds(), AchievedPS: float64(sent) / took.Seconds(),
		P50ms: quantile(buckets, count, 0.50) * 1000, P99ms: quantile(buckets, count, 0.99) * 1000,
		Maxms: quantile(buckets, count, 1) * 1000, CPUPerM: cpu / float64(sent) * 1e6, PeakRSSMiB: rss, CommitCount: int64(count)}
	steady := since(buckets, warm)
	l.WarmupSeconds = warmup.Seconds()
	l.SteadyP50ms, l.SteadyP99ms = quantile(steady, count-warmCount, 0.50)*1000, quantile(steady, count-warmCount, 0.99)*1000
	steadyRecv := since(recv, warmRecv)
	l.ReceiveP50ms, l.ReceiveP99ms = quantile(steadyRecv, recvCount-warmRecvCount, 0.50)*1000, quantile(steadyRecv, recvCount-warmRecvCount, 0.99)*1000
	if q, err := stages.steady(); err == nil {
		l.DispatchP50ms, l.DispatchP99ms = q[0][0], q[0][1]
		l.QueuedP50ms, l.QueuedP99ms = q[1][0], q[1][1]
	} else {
		logf("latency: stages: %v", err)
	}
	if cw, cc, err := scrapeHistogram(p.port, "pgsink_apply_connection_wait_seconds"); err == nil {
		l.ConnWaitP50ms, l.ConnWaitP99ms = quantile(cw, cc, 0.5)*1000, quantile(cw, cc, 0.99)*1000
	}
	l.Pauses = scrapeCounter(p.port, "pgsink_partition_pauses_total")
	l.Background = &bg
	if v.pipeline != "" {
		l.MaxWait = "pipeline " + v.pipeline
		l.Pipelined = scrapeCounter(p.port, "pgsink_apply_pipelined_total")
		l.PipelineRetries = scrapeCounter(p.port, "pgsink_apply_pipeline_retries_total")
		logf("latency, pipeline %s: %.0f of %.0f transactions sent behind another, %.0f applied again", v.pipeline, l.Pipelined, ac, l.PipelineRetries)
	}
	if v.conns != "" {
		l.MaxWait = "max_connections " + v.conns
	}
	if v.bin != "" {
		l.MaxWait = v.String()
	}
	logf("latency, %s: connection wait p50 %.1f ms, p99 %.1f ms", v, l.ConnWaitP50ms, l.ConnWaitP99ms)
	if l.MaxWait == "" {
		l.MaxWait = config.DefaultBatchMaxWait.String() + " (default)"
	}
	if v.syncOff {
		l.SynchronousCommit = "off"
	}
	logf("latency, max_wait %s, synchronous_commit %q: %d events at %.0f/s: p50 %.1f ms, p99 %.1f ms (from %d samples); after the first %.0f s: p50 %.1f ms, p99 %.1f ms (received: p50 %.1f ms, p99 %.1f ms; of which dispatched p99 %.1f ms, queued p99 %.1f ms; %.0f pauses); apply p50 %.1f ms, p99 %.1f ms, %.0f records per batch",
		l.MaxWait, l.SynchronousCommit, sent, l.AchievedPS, l.P50ms, l.P99ms, l.CommitCount, l.WarmupSeconds, l.SteadyP50ms, l.SteadyP99ms, l.ReceiveP50ms, l.ReceiveP99ms, l.DispatchP99ms, l.QueuedP99ms, l.Pauses, l.ApplyP50ms, l.ApplyP99ms, l.MeanBatch)
	logf("latency: the applies waited for a pool connection p50 %.1f ms, p99 %.1f ms", l.ConnWaitP50ms, l.ConnWaitP99ms)
	logf("latency: meanwhile autovacuum ran %.1f s (%s), %d checkpoints, the broker used %.1f CPU-s (JIT compiler %.1f)",
		bg.AutovacuumSeconds, strings.Join(bg.AutovacuumTables, "; "), bg.Checkpoints, bg.BrokerCPUSeconds, bg.BrokerJITSeconds)
	return l, nil
}

func waitReady(p *running, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			return fmt.Errorf("pgsink exited (%v); log: %s", err, p.log)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pgsink not ready after %s; log: %s", timeout, p.log)
}

// produceAtRate copies n records from one topic to another, paced to rate
// per second in 10 ms steps.
func produceAtRate(bootstrap, from, to string, rate int, n int64) (int64, time.Duration, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-latency-reader", "enable.auto.commit": false})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	t := from
	var tps []kafka.TopicPartition
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		return 0, 0, err
	}
	pr, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all",
		"enable.idempotence": true, "go.delivery.reports": false})
	if err != nil {
		return 0, 0, err
	}
	defer pr.Close()
	go func() {
		for range pr.Events() { // drain errors, if any
		}
	}()
	dst := to
	t0 := time.Now()
	var sent int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for sent < n {
		<-tick.C
		due := min(n, int64(time.Since(t0).Seconds()*float64(rate)))
		for sent < due {
			m, err := c.ReadMessage(5 * time.Second)
			if err != nil {
				return sent, time.Since(t0), fmt.Errorf("reading %s: %w", from, err)
			}
			if err := pr.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &dst, Partition: kafka.PartitionAny},
				Key: m.Key, Value: m.Value}, nil); err != nil {
				return sent, time.Since(t0), err
			}
			sent++
		}
	}
	took := time.Since(t0)
	pr.Flush(30000)
	return sent, took, nil
}

type bucket struct {
	le    float64
	count float64
}

// metricLines calls visit with each line of pgsink's /metrics.
func metricLines(port int, visit func(line string)) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		visit(sc.Text())
	}
	return sc.Err()
}

// scrapeHistogram reads a classic histogram's cumulative buckets from /metrics.
func scrapeHistogram(port int, name string) ([]bucket, float64, error) {
	var bs []bucket
	var count float64
	err := metricLines(port, func(line string) {
		if rest, ok := strings.CutPrefix(line, name+"_bucket{le=\""); ok {
			le, val, _ := strings.Cut(rest, "\"} ")
			v, _ := strconv.ParseFloat(val, 64)
			f := math.Inf(1)
			if le != "+Inf" {
				f, _ = strconv.ParseFloat(le, 64)
			}
			bs = append(bs, bucket{le: f, count: v})
		} else if v, ok := strings.CutPrefix(line, name+"_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if count == 0 {
		return nil, 0, fmt.Errorf("histogram %s is empty or missing", name)
	}
	return bs, count, nil
}

// stages are histograms scraped after the warm-up, for their steady
// quantiles at the end.
type stages struct {
	port   int
	names  []string
	warm   [][]bucket
	counts []float64
}

func newStages(port int, names ...string) *stages {
	st := &stages{port: port, names: names}
	for _, n := range names {
		b, c, _ := scrapeHistogram(port, n) // absent in an older binary: steady then fails
		st.warm, st.counts = append(st.warm, b), append(st.counts, c)
	}
	return st
}

// steady returns each histogram's p50 and p99 in ms since the warm-up.
func (st *stages) steady() ([][2]float64, error) {
	var out [][2]float64
	for i, n := range st.names {
		b, c, err := scrapeHistogram(st.port, n)
		if err != nil {
			return nil, err
		}
		d, dc := since(b, st.warm[i]), c-st.counts[i]
		out = append(out, [2]float64{quantile(d, dc, 0.5) * 1000, quantile(d, dc, 0.99) * 1000})
	}
	return out, nil
}

// scrapeCounter sums every series of a counter from /metrics (0 when absent).
func scrapeCounter(port int, name string) float64 {
	var sum float64
	_ = metricLines(port, func(line string) {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			fields := strings.Fields(rest)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			sum += v
		}
	})
	return sum
}

// scrapeSum reads a histogram's _sum from /metrics.
func scrapeSum(port int, name string) (float64, error) {
	sum, found := 0.0, false
	err := metricLines(port, func(line string) {
		if v, ok := strings.CutPrefix(line, name+"_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
			found = true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("%s_sum missing", name)
	}
	return sum, err
}

// since subtracts an earlier scrape of the same histogram: the
// observations made between the two.
func since(now, before []bucket) []bucket {
	out := make([]bucket, len(now))
	for i, b := range now {
		out[i] = b
		for _, o := range before {
			if o.le == b.le {
				out[i].count -= o.count
			}
		}
	}
	return out
}

// quantile interpolates linearly inside the bucket holding the q-th
// observation, as Prometheus' histogram_quantile does.
func quantile(bs []bucket, count, q float64) float64 {
	rank := q * count
	prevLE, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLE
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLE + (b.le-prevLE)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLE, prevCount = b.le, b.count
	}
	return prevLE
}
