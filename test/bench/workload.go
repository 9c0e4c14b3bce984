package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

const (
	partitions = 6
	// tableDDL is the benchmark table; targets add pgsink's two
	// version columns.
	tableDDL = `(id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2),
		created_at timestamptz, attrs jsonb)`
)

// source is where one workload is written and read from: its source
// database, the Debezium topic prefix, the topic and the file its Workload
// is saved in. The JSON and the Avro workloads come from the same statements
// and seed in two source databases, each with its own connector: the same
// change events in each wire format, and each sink's end state is compared
// with its own source.
type source struct {
	format string // the connector's converter: json, or avro through the stack's registry
	db     string
	prefix string
	topic  string
	state  string
}

var (
	jsonSource = source{format: "json", db: "bench_source", prefix: "bench", topic: "bench.public.orders", state: "workload.json"}
	avroSource = source{format: "avro", db: "bench_source_avro", prefix: "bench_avro", topic: "bench_avro.public.orders", state: "workload-avro.json"}
)

// Workload is what the topic holds; it is saved beside the stack and a
// later run reuses the topic while it still matches.
type Workload struct {
	Format    string `json:"format,omitempty"` // "" is json: workload.json files from before Avro
	Topic     string `json:"topic"`
	Events    int64  `json:"events"` // change events: creates + updates + deletes
	Creates   int64  `json:"creates"`
	Updates   int64  `json:"updates"`
	Deletes   int64  `json:"deletes"`
	Records   int64  `json:"records"` // Kafka records: events + a tombstone per delete
	Keys      int64  `json:"keys"`    // distinct ids touched
	FinalRows int64  `json:"final_rows"`
	LogBytes  int64  `json:"log_bytes"` // the topic's segment files on disk
	KVBytes   int64  `json:"kv_bytes"`  // sum of key and value sizes
	// ContextHeaders is "on" when Debezium wrote its __debezium.context.*
	// headers into the topic, "off" when not; "" (saved before the
	// setting) matches neither, so such a topic is produced again.
	ContextHeaders string `json:"context_headers"`
	ProducedIn     string `json:"produced_in"`
	DebeziumPS     int64  `json:"debezium_events_per_s"`
}

// The mix of one round, run as one source transaction: 100 rounds give
// 700,000 creates, 250,000 updates and 50,000 deletes.
type mix struct{ rounds, creates, updates, deletes int }

func (m mix) events() int64 { return int64(m.rounds * (m.creates + m.updates + m.deletes)) }

func mixFor(events int) mix {
	rounds := max(1, events/10_000)
	per := events / rounds
	return mix{rounds: rounds, creates: per * 70 / 100, updates: per * 25 / 100, deletes: per * 5 / 100}
}

// source is the one the workload was written from.
func (w Workload) source() source {
	switch w.Format {
	case avroSource.format:
		return avroSource
	case txSource.format:
		return txSource
	}
	return jsonSource
}

func stateFile(name string) string {
	return filepath.Join(stackDir(), "bench", name)
}

// ensureWorkload reuses the topic when it matches the saved workload, and
// otherwise produces it again through Debezium.
func ensureWorkload(ctx context.Context, env stacktest.Env, events int, s source) (Workload, error) {
	m := mixFor(events)
	if s == txSource {
		m = txMix(events)
	}
	var w Workload
	// Creates, not events: the random samples of updates and deletes may
	// fall a few short of the mix, the creates never.
	if b, err := os.ReadFile(stateFile(s.state)); err == nil && json.Unmarshal(b, &w) == nil &&
		w.Creates == int64(m.rounds*m.creates) && w.Topic == s.topic && w.ContextHeaders == contextHeaders() {
		total, err := topicRecords(env.KafkaBootstrap, s.topic)
		if err == nil && total == w.Records {
			if n, err := sourceRows(ctx, env, s); err == nil && n == w.FinalRows {
				logf("workload: reusing topic %s (%d records, produced by Debezium in %s)", s.topic, total, w.ProducedIn)
				w.Format = s.format
				return w, nil
			}
		}
	}
	return produceWorkload(ctx, env, m, s)
}

// contextHeaders is "on" when PGSINK_BENCH_CONTEXT_HEADERS is set: the
// workload is then produced with Debezium's four __debezium.context.*
// headers on every record, its default, which the shipped connector files
// (and so stacktest.DebeziumPostgres) turn off because pgsink does not
// read them and copies them out of every record
// (docs/benchmark-analysis.md). A saved workload is reused only under the
// same setting.
func contextHeaders() string {
	if os.Getenv("PGSINK_BENCH_CONTEXT_HEADERS") != "" {
		return "on"
	}
	return "off"
}

func sourceURL(env stacktest.Env, s source) string {
	u, err := stacktest.WithDatabase(env.SourceURL, s.db)
	if err != nil {
		panic(err)
	}
	return u
}

func sourceRows(ctx context.Context, env stacktest.Env, s source) (int64, error) {
	conn, err := pgx.Connect(ctx, sourceURL(env, s))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&n)
	return n, err
}

func produceWorkload(ctx context.Context, env stacktest.Env, m mix, s source) (Workload, error) {
	logf("workload: producing %d events through Debezium with the %s converter (%d rounds of %d creates, %d updates, %d deletes)",
		m.events(), s.format, m.rounds, m.creates, m.updates, m.deletes)
	var registry string
	if s.format == avroSource.format {
		var err error
		if registry, err = env.Registry(); err != nil {
			return Workload{}, err
		}
	}
	connect := stacktest.NewConnect(env.ConnectURL)
	deleteConnectors(ctx, connect, s)
	if err := stacktest.DropDatabase(ctx, env.AdminURL, s.db); err != nil {
		return Workload{}, err
	}
	topics := map[string]int{s.topic: partitions}
	if s == txSource {
		topics[txTopicOf(s)] = 1 // orders the source's transactions
	}
	for t := range topics {
		if err := stacktest.DeleteTopics(ctx, env.KafkaBootstrap, t); err != nil {
			return Workload{}, err
		}
	}
	if err := stacktest.CreateDatabase(ctx, env.AdminURL, s.db, "debezium"); err != nil {
		return Workload{}, err
	}
	conn, err := pgx.Connect(ctx, sourceURL(env, s))
	if err != nil {
		return Workload{}, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE public.orders `+tableDDL); err != nil {
		return Workload{}, err
	}
	for t, n := range topics {
		if err := createTopic(ctx, env.KafkaBootstrap, t, n); err != nil {
			return Workload{}, err
		}
	}
	name := s.db + "_" + fmt.Sprint(time.Now().Unix())
	cfg, err := stacktest.DebeziumPostgres(sourceURL(env, s), name, s.prefix)
	if err != nil {
		return Workload{}, err
	}
	for k, v := range map[string]string{
		"table.include.list": "public.orders",
		"snapshot.mode":      "no_data",
		// Debezium's own throughput knobs: bigger batches and queue, and a
		// producer that batches (the topic is what is measured, not this).
		"max.batch.size":                 "8192",
		"max.queue.size":                 "65536",
		"producer.override.linger.ms":    "20",
		"producer.override.batch.size":   "524288",
		"slot.drop.on.stop":              "true",
		"provide.transaction.metadata":   "false",
		"heartbeat.interval.ms":          "0",
		"tombstones.on.delete":           "true",
		"decimal.handling.mode":          "precise",
		"time.precision.mode":            "adaptive_time_microseconds",
		"value.converter.schemas.enable": "true",
	} {
		cfg[k] = v
	}
	if registry != "" {
		stacktest.UseAvro(cfg, registry)
	}
	if contextHeaders() == "on" {
		cfg["extended.headers.enabled"] = "true"
	}
	if s == txSource {
		cfg["provide.transaction.metadata"] = "true"
	}
	if err := connect.Put(ctx, name, cfg); err != nil {
		return Workload{}, err
	}
	defer func() { _ = connect.Delete(context.Background(), name) }()
	if err := connect.WaitRunning(ctx, name, 120*time.Second); err != nil {
		return Workload{}, err
	}
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `SELECT setseed(0.42)`); err != nil {
		return Workload{}, err
	}
	w := Workload{Format: s.format, Topic: s.topic, ContextHeaders: contextHeaders()}
	next := int64(1)
	if s == txSource {
		if err := runRounds(ctx, conn, m, next, &w); err != nil {
			return Workload{}, err
		}
		next += int64(m.rounds * m.creates)
	}
	for r := 0; r < m.rounds && s != txSource; r++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return Workload{}, err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO public.orders
			SELECT g, (random()*50000)::bigint, (ARRAY['new','paid','shipped'])[1+(random()*2)::int],
			       round((random()*100000)::numeric, 2), `+createdAtSQL+`, `+attrsSQL+`
			FROM generate_series($1::bigint, $2::bigint) g`, next, next+int64(m.creates)-1)
		if err != nil {
			return Workload{}, err
		}
		w.Creates += tag.RowsAffected()
		next += int64(m.creates)
		// Uniformly random live ids: oversample, keep the first n that exist.
		tag, err = tx.Exec(ctx, `UPDATE public.orders o SET status = (ARRAY['paid','shipped','returned'])[1+(random()*2)::int],
			amount = round((random()*100000)::numeric, 2), attrs = `+attrsSQL+`
			WHERE o.id IN (SELECT id FROM public.orders WHERE id = ANY(ARRAY(
				SELECT 1 + (random()*($1::bigint-2))::bigint FROM generate_series(1, $2::int * 2))) LIMIT $2)`, next, m.updates)
		if err != nil {
			return Workload{}, err
		}
		w.Updates += tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM public.orders WHERE id IN (SELECT id FROM public.orders WHERE id = ANY(ARRAY(
				SELECT 1 + (random()*($1::bigint-2))::bigint FROM generate_series(1, $2::int * 2))) LIMIT $2)`, next, m.deletes)
		if err != nil {
			return Workload{}, err
		}
		w.Deletes += tag.RowsAffected()
		if err := tx.Commit(ctx); err != nil {
			return Workload{}, err
		}
	}
	w.Events = w.Creates + w.Updates + w.Deletes
	w.Records = w.Events + w.Deletes
	w.Keys = next - 1
	logf("workload: source done in %s: %d creates, %d updates, %d deletes; waiting for Debezium", time.Since(t0).Round(time.Millisecond), w.Creates, w.Updates, w.Deletes)
	if w.Events != m.events() {
		logf("workload: %d events instead of %d (the random id sample fell short)", w.Events, m.events())
	}
	last, lastAt := int64(-1), time.Now()
	for {
		n, err := topicRecords(env.KafkaBootstrap, s.topic)
		if err != nil {
			return Workload{}, err
		}
		if n >= w.Records {
			break
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 2*time.Minute {
			return Workload{}, fmt.Errorf("debezium stalled at %d of %d records", n, w.Records)
		}
		time.Sleep(time.Second)
	}
	elapsed := time.Since(t0)
	w.ProducedIn = elapsed.Round(time.Second).String()
	w.DebeziumPS = int64(float64(w.Events) / elapsed.Seconds())
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&w.FinalRows); err != nil {
		return Workload{}, err
	}
	logf("workload: %d records in Kafka after %s (Debezium ≈ %d events/s end to end)", w.Records, w.ProducedIn, w.DebeziumPS)
	if w.KVBytes, err = topicBytes(env.KafkaBootstrap, s.topic); err != nil {
		return Workload{}, err
	}
	w.LogBytes = logDirBytes(s.topic)
	b, _ := json.MarshalIndent(w, "", "  ")
	if err := os.MkdirAll(benchDir(), 0o755); err != nil {
		return Workload{}, err
	}
	return w, os.WriteFile(stateFile(s.state), b, 0o644)
}

// deleteConnectors deletes the connectors a run of source s left behind.
func deleteConnectors(ctx context.Context, connect *stacktest.Connect, s source) {
	names, _ := connect.List(ctx)
	for _, n := range names {
		// This source's connectors only: another's name may extend its prefix.
		if rest, ok := strings.CutPrefix(n, s.db+"_"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			_ = connect.Delete(ctx, n)
		}
	}
}

// createTopic creates a topic just deleted: deleting a topic is
// asynchronous in Kafka, so the creation is retried.
func createTopic(ctx context.Context, bootstrap, name string, partitions int, configs ...map[string]string) error {
	for i := 0; ; i++ {
		err := stacktest.CreateTopic(ctx, bootstrap, name, partitions, configs...)
		if err == nil || i == 40 {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// createdAtSQL is a timestamp within a fixed year: with the seed, the JSON
// and the Avro sources then hold the very same rows.
const createdAtSQL = `timestamptz '2026-01-01 00:00:00+00' - random()*interval '365 days'`

// attrsSQL builds a ~200-byte jsonb document per row.
const attrsSQL = `jsonb_build_object('channel', (ARRAY['web','app','store'])[1+(random()*2)::int],
	'tags', jsonb_build_array('a', 'b', (random()*9)::int), 'note', md5(random()::text) || md5(random()::text),
	'items', jsonb_build_array(jsonb_build_object('sku', left(md5(random()::text), 8), 'qty', (random()*5)::int),
	                           jsonb_build_object('sku', left(md5(random()::text), 8), 'qty', (random()*5)::int)),
	'score', (random()*1000)::int)`

// topicRecords sums the partitions' high watermarks (the topic has no
// compaction nor transactions, so that is its record count).
func topicRecords(bootstrap, name string) (int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var total int64
	for p := int32(0); p < partitions; p++ {
		low, high, err := c.QueryWatermarkOffsets(name, p, 5000)
		if err != nil {
			return 0, err
		}
		total += high - low
	}
	return total, nil
}

func highWatermarks(bootstrap, name string) ([]int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	hw := make([]int64, partitions)
	for p := int32(0); p < partitions; p++ {
		_, high, err := c.QueryWatermarkOffsets(name, p, 5000)
		if err != nil {
			return nil, err
		}
		hw[p] = high
	}
	return hw, nil
}

// topicBytes reads the whole topic once and sums key and value sizes.
func topicBytes(bootstrap, name string) (int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-reader",
		"enable.auto.commit": false, "enable.partition.eof": true})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	t := name
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		return 0, err
	}
	var total int64
	eof := 0
	for eof < partitions {
		switch ev := c.Poll(1000).(type) {
		case *kafka.Message:
			total += int64(len(ev.Key) + len(ev.Value))
		case kafka.PartitionEOF:
			eof++
		case kafka.Error:
			return 0, ev
		}
	}
	return total, nil
}

func logDirBytes(name string) int64 {
	var total int64
	matches, _ := filepath.Glob(filepath.Join(stackDir(), "kafka", "data", name+"-*", "*.log"))
	for _, f := range matches {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	return total
}
