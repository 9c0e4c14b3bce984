package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// drainJDBC runs the Debezium JDBC sink connector on the workload topic into
// its own database and times it until its consumer group has committed
// the whole topic. An Avro workload is read through the converter that
// wrote it, against the same registry.
func drainJDBC(ctx context.Context, env stacktest.Env, w Workload, unnest bool, limit time.Duration) (*Drain, error) {
	label := "jdbc_unnest_off"
	if unnest {
		label = "jdbc_unnest_on"
	}
	var converters map[string]string
	if w.Format == avroSource.format {
		registry, err := env.Registry()
		if err != nil {
			return nil, err
		}
		converters = stacktest.AvroConverter(registry)
		label = "jdbc_avro_" + strings.TrimPrefix(label, "jdbc_")
	}
	db := "bench_" + label
	// The same table as pgsink's, without the version columns the JDBC sink
	// knows nothing of.
	url, err := freshDatabase(ctx, env, db, `CREATE TABLE public.orders `+tableDDL)
	if err != nil {
		return nil, err
	}
	_ = url
	connect := stacktest.NewConnect(env.ConnectURL)
	name := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(label, "_", "-"), time.Now().Unix())
	cfg := map[string]string{
		"connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
		// One task per core: more tasks than cores only adds contention here.
		"tasks.max":              "2",
		"topics":                 w.Topic,
		"connection.url":         fmt.Sprintf("jdbc:postgresql://%s:%s/%s", os.Getenv("PGSINK_PG_HOST"), os.Getenv("PGSINK_PG_PORT"), db),
		"connection.username":    "pgsink",
		"connection.password":    "",
		"insert.mode":            "upsert",
		"delete.enabled":         "true",
		"primary.key.mode":       "record_key",
		"primary.key.fields":     "id",
		"schema.evolution":       "none",
		"collection.name.format": "orders",
		"use.time.zone":          "UTC",
		// Its best batch settings: large batches, the same from the consumer,
		// and the reduction buffer that keeps one change per key per batch.
		"batch.size":                             "5000",
		"use.reduction.buffer":                   "true",
		"consumer.override.max.poll.records":     "5000",
		"consumer.override.auto.offset.reset":    "earliest",
		"consumer.override.fetch.min.bytes":      "1048576",
		"connection.pool.min_size":               "2",
		"connection.pool.max_size":               "4",
		"dialect.postgres.unnest.insert.enabled": strconv.FormatBool(unnest),
	}
	maps.Copy(cfg, converters)
	if os.Getenv("PGSINK_PG_HOST") == "" {
		cfg["connection.url"] = "jdbc:postgresql://127.0.0.1:" + portOf(env.AdminURL) + "/" + db
	}
	hw, err := highWatermarks(env.KafkaBootstrap, w.Topic)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, h := range hw {
		total += h
	}
	connectPID := readPID(filepath.Join(stackDir(), "connect", "connect.pid"))
	cpu0, _ := procStats(connectPID)
	pg0 := postgresCPU(ctx, env)
	logf("jdbc %s: draining %d records of %s", label, total, w.Topic)
	t0 := time.Now()
	if err := connect.Put(ctx, name, cfg); err != nil {
		return nil, err
	}
	defer func() { _ = connect.Delete(context.Background(), name) }()
	group := "connect-" + name
	var done int64
	complete := false
	lastCheck := time.Now()
	for {
		time.Sleep(250 * time.Millisecond)
		if n, err := groupPosition(env.KafkaBootstrap, group, w.Topic); err == nil {
			done = n
		}
		if done >= total {
			complete = true
			break
		}
		if time.Since(lastCheck) > 5*time.Second {
			lastCheck = time.Now()
			if st, err := connect.Status(ctx, name); err == nil {
				for _, t := range st.Tasks {
					if t.State == "FAILED" {
						return nil, fmt.Errorf("jdbc %s: task %d FAILED: %s", label, t.ID, firstLines(t.Trace, 12))
					}
				}
			}
		}
		if time.Since(t0) > limit {
			break
		}
	}
	elapsed := time.Since(t0)
	cpu1, _ := procStats(connectPID)
	pg1 := postgresCPU(ctx, env)
	d := &Drain{Label: label, Records: done, Seconds: elapsed.Seconds(), CPUSeconds: cpu1 - cpu0, Complete: complete}
	d.Events = int64(float64(done) * float64(w.Events) / float64(w.Records))
	d.EventsPS = float64(d.Events) / d.Seconds
	d.MBPS = float64(w.KVBytes) * float64(done) / float64(w.Records) / d.Seconds / 1e6
	d.CPUPerM = d.CPUSeconds / float64(max(d.Events, 1)) * 1e6
	d.PGCPUPerM = (pg1 - pg0) / float64(max(d.Events, 1)) * 1e6
	d.Note = "CPU of the whole Kafka Connect JVM (idle otherwise) during the run; committed offsets lag by up to offset.flush.interval.ms = 1s"
	if complete {
		d.Verified = verify(ctx, env, w, url)
	} else {
		d.Note = fmt.Sprintf("capped at %s: rate from its committed progress; ", limit) + d.Note
	}
	_ = connect.Delete(ctx, name) // before its database goes
	settle(ctx, env, db)
	logf("jdbc %s: %d events in %.1fs = %.0f events/s, %.1f CPU-s/M events (Connect JVM), %s", label, d.Events, d.Seconds, d.EventsPS, d.CPUPerM, d.Verified)
	return d, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func stackDir() string {
	if d := os.Getenv("PGSINK_STACK_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), ".stack")
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

func portOf(url string) string {
	i := strings.LastIndex(url, ":")
	j := strings.Index(url[i:], "/")
	if i < 0 || j < 0 {
		return "5432"
	}
	return url[i+1 : i+j]
}
