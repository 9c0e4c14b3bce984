package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TxRuns is the transaction-mode phase (issue 26): the same workload of
// source transactions drained by pgsink per partition and in transaction
// mode, one after the other in one run, and the latency of each mode at a
// steady rate of such transactions.
type TxRuns struct {
	Workload    Workload   `json:"workload"`
	Partition   *Drain     `json:"partition,omitempty"`
	Transaction *Drain     `json:"transaction,omitempty"`
	Latency     []*TxDelay `json:"latency,omitempty"`
	// Staging is apply.transaction.staging in transaction mode ("":
	// pgsink's default, logged).
	Staging string `json:"staging,omitempty"`
	// Local is apply.transaction.direct_local_partitions in transaction
	// mode (the local path).
	Local bool `json:"local,omitempty"`
}

// TxDelay is one mode's latency at a steady rate of source transactions
// written to a live source database while pgsink runs.
type TxDelay struct {
	Mode       string  `json:"mode"`
	Rate       int     `json:"rate"` // events/s asked for
	Events     int64   `json:"events"`
	AchievedPS float64 `json:"achieved_per_s"`
	// Measure is the histogram the quantiles come from: per record in
	// partition mode, per source transaction (its oldest record) in
	// transaction mode.
	Measure     string  `json:"measure"`
	Samples     float64 `json:"samples"`
	SteadyP50ms float64 `json:"steady_p50_ms"`
	SteadyP99ms float64 `json:"steady_p99_ms"`
	CPUPerM     float64 `json:"cpu_s_per_million_events"`
	PGCPUPerM   float64 `json:"postgres_cpu_s_per_million_events"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
}

// txSettings are the transaction mode's settings under measure: its
// apply.transaction.staging ("": pgsink's default) and
// direct_local_partitions.
type txSettings struct {
	staging string
	local   bool
}

// measureTx produces (or reuses) the workload of source transactions and
// drains it per partition, then in transaction mode, both profiled alike;
// then measures each mode's latency at rate events/s.
func measureTx(ctx context.Context, env stacktest.Env, bin string, events, rate int, dur, warmup time.Duration, tx txSettings, res *Results) *TxRuns {
	w, err := ensureWorkload(ctx, env, events, txSource)
	if err != nil {
		res.soft("transaction workload", err)
		return nil
	}
	x := &TxRuns{Workload: w, Staging: tx.staging, Local: tx.local}
	x.Partition, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "tx_workload_partition", profile: true})
	res.soft("pgsink per partition on the transaction workload", err)
	txTopic := txTopicOf(txSource)
	high, err := highWatermark(env.KafkaBootstrap, txTopic)
	if err != nil {
		res.soft("transaction topic", err)
		return x
	}
	x.Transaction, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "tx_workload_transaction", profile: true, txTopic: txTopic, txHigh: high, txStaging: tx.staging, txLocal: tx.local})
	res.soft("pgsink in transaction mode", err)
	live, err := newLiveSource(ctx, env)
	if err != nil {
		res.soft("latency source", err)
		return x
	}
	defer live.close()
	for _, mode := range []string{"partition", "transaction"} {
		l, err := live.measure(ctx, env, bin, mode, tx, rate, dur, warmup)
		res.soft("latency in "+mode+" mode", err)
		if l != nil {
			x.Latency = append(x.Latency, l)
		}
	}
	return x
}

// highWatermark is a one-partition topic's high watermark.
func highWatermark(bootstrap, topic string) (int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_, high, err := c.QueryWatermarkOffsets(topic, 0, 5000)
	return high, err
}

// liveSource is a source database with a running Debezium connector that
// emits transaction metadata, into LogAppendTime topics: what a latency run
// writes source transactions into while pgsink applies them.
type liveSource struct {
	s       source
	name    string
	connect *stacktest.Connect
	conn    *pgx.Conn
	// drivers write the source transactions: one session does not keep
	// 250 transactions a second on this machine.
	drivers []*pgx.Conn
	next    atomic.Int64 // the first id of the next transaction's creates
}

// liveDrivers is how many sessions write a latency run's transactions.
const liveDrivers = 4

var txLatencySource = source{format: "json-tx", db: "bench_source_txlat", prefix: "bench_txlat", topic: "bench_txlat.public.orders"}

func newLiveSource(ctx context.Context, env stacktest.Env) (*liveSource, error) {
	s := txLatencySource
	connect := stacktest.NewConnect(env.ConnectURL)
	deleteConnectors(ctx, connect, s)
	if err := stacktest.DropDatabase(ctx, env.AdminURL, s.db); err != nil {
		return nil, err
	}
	if err := stacktest.CreateDatabase(ctx, env.AdminURL, s.db, "debezium"); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, sourceURL(env, s))
	if err != nil {
		return nil, err
	}
	l := &liveSource{s: s, connect: connect, conn: conn}
	l.next.Store(1)
	// The source's durability is not what is measured: without a WAL
	// flush per commit one session keeps the rate.
	if _, err := conn.Exec(ctx, `CREATE TABLE public.orders `+tableDDL+`; SET synchronous_commit = off`); err != nil {
		l.close()
		return nil, err
	}
	if _, err := conn.Exec(ctx, roundsProcedure); err != nil {
		l.close()
		return nil, err
	}
	for range liveDrivers {
		d, err := pgx.Connect(ctx, sourceURL(env, s))
		if err == nil {
			l.drivers = append(l.drivers, d)
			_, err = d.Exec(ctx, roundsSession)
		}
		if err != nil {
			l.close()
			return nil, err
		}
	}
	for t, n := range map[string]int{s.topic: partitions, txTopicOf(s): 1} {
		if err := stacktest.DeleteTopics(ctx, env.KafkaBootstrap, t); err != nil {
			l.close()
			return nil, err
		}
		if err := createTopic(ctx, env.KafkaBootstrap, t, n, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
			l.close()
			return nil, err
		}
	}
	l.name = s.db + "_" + fmt.Sprint(time.Now().Unix())
	cfg, err := stacktest.DebeziumPostgres(sourceURL(env, s), l.name, s.prefix)
	if err != nil {
		l.close()
		return nil, err
	}
	for k, v := range map[string]string{"table.include.list": "public.orders", "snapshot.mode": "no_data", "slot.drop.on.stop": "true",
		"provide.transaction.metadata": "true", "heartbeat.interval.ms": "0", "tombstones.on.delete": "true",
		"decimal.handling.mode": "precise", "time.precision.mode": "adaptive_time_microseconds", "value.converter.schemas.enable": "true"} {
		cfg[k] = v
	}
	if err := connect.Put(ctx, l.name, cfg); err != nil {
		l.close()
		return nil, err
	}
	if err := connect.WaitRunning(ctx, l.name, 120*time.Second); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *liveSource) close() {
	if l.name != "" {
		_ = l.connect.Delete(context.Background(), l.name)
	}
	_ = l.conn.Close(context.Background())
	for _, d := range l.drivers {
		_ = d.Close(context.Background())
	}
}

// measure starts pgsink in mode at the topics' ends, writes source
// transactions of txMix's shape at rate events/s for dur, waits until
// pgsink has applied them, and reads the latency after warmup.
func (l *liveSource) measure(ctx context.Context, env stacktest.Env, bin, mode string, tx txSettings, rate int, dur, warmup time.Duration) (*TxDelay, error) {
	r := pgsinkRun{label: "tx_latency_" + mode, topic: l.s.topic, start: "latest"}
	metric := "pgsink_record_commit_latency_seconds"
	if mode == "transaction" {
		r.txTopic, r.txStaging, r.txLocal = txTopicOf(l.s), tx.staging, tx.local
		metric = "pgsink_transaction_commit_latency_seconds"
	}
	pg0 := postgresCPU(ctx, env)
	p, err := startPgsink(ctx, env, bin, r)
	if err != nil {
		return nil, err
	}
	defer settle(ctx, env, "bench_pgsink_"+r.label)
	defer p.stop()
	if err := waitReady(p, 60*time.Second); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // the assignment settles
	m := txMix(20)
	per := m.creates + m.updates + m.deletes
	logf("latency, %s mode: source transactions of %d events at %d events/s for %s", mode, per, rate, dur)
	type driven struct {
		txs  int64
		took time.Duration
		err  error
	}
	done := make(chan driven, 1)
	go func() {
		t0 := time.Now()
		var claimed atomic.Int64
		errs := make(chan error, len(l.drivers))
		for _, conn := range l.drivers {
			go func() {
				for time.Since(t0) < dur {
					due := int64(time.Since(t0).Seconds() * float64(rate) / float64(per))
					if claimed.Load() >= due {
						time.Sleep(2 * time.Millisecond)
						continue
					}
					if claimed.Add(1) > due {
						claimed.Add(-1)
						continue
					}
					first := l.next.Add(int64(m.creates)) - int64(m.creates)
					_, err := conn.Exec(ctx, fmt.Sprintf(`CALL public.bench_rounds(%d, 1, %d, %d, %d)`, first, m.creates, m.updates, m.deletes),
						pgx.QueryExecModeSimpleProtocol)
					var pgErr *pgconn.PgError
					if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
						// Two sessions updated the same rows in another
						// order: the transaction rolled back, emitted
						// nothing, and is written again.
						claimed.Add(-1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		var err error
		for range l.drivers {
			err = errors.Join(err, <-errs)
		}
		done <- driven{claimed.Load(), time.Since(t0), err}
	}()
	time.Sleep(warmup)
	warm, warmCount, err := scrapeHistogram(p.port, metric)
	if err != nil {
		return nil, fmt.Errorf("latency, %s mode, after the warm-up: %w", mode, err)
	}
	d := <-done
	if d.err != nil {
		return nil, d.err
	}
	if err := l.caughtUp(ctx, env, p, r); err != nil {
		return nil, err
	}
	buckets, count, err := scrapeHistogram(p.port, metric)
	if err != nil {
		return nil, err
	}
	cpu, rss := procStats(p.pid)
	pg1 := postgresCPU(ctx, env)
	events := d.txs * int64(per)
	steady := since(buckets, warm)
	out := &TxDelay{Mode: mode, Rate: rate, Events: events, AchievedPS: float64(events) / d.took.Seconds(), Measure: metric,
		Samples: count - warmCount, SteadyP50ms: quantile(steady, count-warmCount, 0.5) * 1000, SteadyP99ms: quantile(steady, count-warmCount, 0.99) * 1000,
		CPUPerM: cpu / float64(max(events, 1)) * 1e6, PGCPUPerM: (pg1 - pg0) / float64(max(events, 1)) * 1e6, PeakRSSMiB: rss}
	logf("latency, %s mode: %d events at %.0f/s; after the first %s: p50 %.1f ms, p99 %.1f ms (%s, %.0f samples); %.1f CPU-s/M events (PostgreSQL %.1f)",
		mode, events, out.AchievedPS, warmup, out.SteadyP50ms, out.SteadyP99ms, metric, out.Samples, out.CPUPerM, out.PGCPUPerM)
	return out, nil
}

// caughtUp waits until pgsink's positions reach the topics' ends, and the
// ends stay put (Debezium may still be writing the last transactions).
func (l *liveSource) caughtUp(ctx context.Context, env stacktest.Env, p *running, r pgsinkRun) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last int64 = -1
	for time.Now().Before(deadline) {
		hw, err := highWatermarks(env.KafkaBootstrap, r.topic)
		if err != nil {
			return err
		}
		var total int64
		for _, h := range hw {
			total += h
		}
		if r.txTopic != "" {
			if r.txHigh, err = highWatermark(env.KafkaBootstrap, r.txTopic); err != nil {
				return err
			}
		}
		n, err := positionReader(ctx, p, r, hw)()
		if err == nil && n >= total && total == last {
			return nil
		}
		last = total
		time.Sleep(time.Second)
	}
	return fmt.Errorf("latency: pgsink did not catch up within 2 minutes")
}
