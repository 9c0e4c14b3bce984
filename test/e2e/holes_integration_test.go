//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EOffsetDeletedWhileRunning: a partition paused behind a target
// outage (its queue full) has its next offset deleted from Kafka
// (DeleteRecords, as retention would) while pgsink runs. Once the target
// is back, the records fetched before the hole are applied and the
// partition stops at the hole, loudly (log, pgsink_partition_stopped, the
// offsets row's stopped_reason), its offset unmoved past it. Before, the
// client's ErrAutoOffsetReset was only logged and the partition stalled
// with nothing to say so.
func TestE2EOffsetDeletedWhileRunning(t *testing.T) {
	offsetDeletedWhileRunning(t, false)
}

// TestE2EOffsetDeletedWhileRunningOffsetsInKafka is the same hole under
// apply.offsets: kafka, where the positions are the group's committed
// offsets. librdkafka was left to reset an offset there (to apply.start)
// and jumped over the deleted records in silence; now the partition stops
// as under the offsets table (no row to note the reason in: the log and
// pgsink_partition_stopped say it).
func TestE2EOffsetDeletedWhileRunningOffsetsInKafka(t *testing.T) {
	offsetDeletedWhileRunning(t, true)
}

func offsetDeletedWhileRunning(t *testing.T, kafkaOffsets bool) {
	st := stacktest.New(t)
	ctx := context.Background()
	targetURL := stacktest.OwnedTargetDatabase(t)
	topic := st.TopicPrefix + ".holes"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 1); err != nil {
		t.Fatal(err)
	}
	events := recordedAllTypes(t, 2)
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, len(events))
	extra := ""
	if kafkaOffsets {
		extra = "  offsets: kafka\n"
	}
	cfg, port, proxy, through, stored := oneRecordBatches(ctx, t, st, targetURL, topic, "public.holes", extra)
	p := startPgsink(t, cfg, "TARGET_URL="+through)
	lag := fmt.Sprintf(`pgsink_partition_lag_records{partition="0",topic="%s"}`, topic)
	eventually(t, 90*time.Second, "the first records applied", func() (bool, string) {
		if kafkaOffsets {
			v, ok := metricValue(port, lag)
			return ok && v == 0, fmt.Sprintf("%s %v", lag, v)
		}
		next, _ := stored()
		return next == int64(len(events)), fmt.Sprintf("next_offset %d", next)
	})

	// The worker blocks on its batch while the target is down; its queue
	// (64 records at max_records 1) fills and the partition is paused.
	proxy.Down()
	t.Cleanup(func() { _ = proxy.Up() })
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, 150)
	const pauses = `pgsink_partition_pauses_total{reason="queue_full"}`
	eventually(t, 60*time.Second, "the partition paused", func() (bool, string) {
		v, _ := metricValue(port, pauses)
		return v > 0, fmt.Sprintf("%v pauses", v)
	})
	// Records written while it is paused are never fetched; deleting up to
	// the high watermark puts its fetch position below the low one.
	produceCycling(t, st.Env.KafkaBootstrap, topic, events, 20)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	low := int64(len(events) + 150 + 20)
	res, err := admin.DeleteRecords(ctx, []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(low)}})
	if err != nil || res.DeleteRecordsResults[0].TopicPartition.Error != nil {
		t.Fatalf("delete records: %v %v", err, res)
	}
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}

	stoppedMetric := fmt.Sprintf(`pgsink_partition_stopped{partition="0",topic="%s"}`, topic)
	if kafkaOffsets {
		eventually(t, 90*time.Second, "the partition stops at the hole", func() (bool, string) {
			v, _ := metricValue(port, stoppedMetric)
			return v == 1, fmt.Sprintf("%s %v", stoppedMetric, v)
		})
		if !strings.Contains(p.Logs(), "partition stopped: the stored offset is outside what Kafka holds") {
			t.Errorf("no stop logged:\n%s", p.Logs())
		}
		if code, _ := p.stop(30 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		return
	}
	eventually(t, 90*time.Second, "the partition stops at the hole with the reason", func() (bool, string) {
		next, reason := stored()
		v, _ := metricValue(port, stoppedMetric)
		return strings.Contains(reason, "outside what Kafka holds") && strings.Contains(reason, "pgsink replay") && v == 1,
			fmt.Sprintf("next_offset %d, stopped_reason %q, %s %v", next, reason, stoppedMetric, v)
	})
	next, reason := stored()
	// The records fetched before the pause were applied: the position is
	// past the first run's and below the hole.
	if next <= int64(len(events)) || next >= low {
		t.Fatalf("stopped at next_offset %d (%s); want past %d (records before the hole applied) and below the low watermark %d", next, reason, len(events), low)
	}
	if !strings.Contains(p.Logs(), "partition stopped: the stored offset is outside what Kafka holds") {
		t.Errorf("no stop logged:\n%s", p.Logs())
	}
	time.Sleep(3 * time.Second)
	if again, _ := stored(); again != next {
		t.Fatalf("stored next offset moved from %d to %d after the stop", next, again)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	t.Logf("stopped at next_offset %d, low watermark %d: %s", next, low, reason)
}

// oneRecordBatches is the set-up of the tests that delete records under a
// running partition: a configuration applying topic to table (created) in
// batches of one record, apply lines appended from extra, its metrics on a
// fixed port; a proxy to the target for the instance (through); and
// stored, which reads the partition's offsets row (its next offset and
// stop reason) on a connection of the test's own.
func oneRecordBatches(ctx context.Context, t *testing.T, st *stacktest.T, targetURL, topic, table, extra string) (cfg string, port int, proxy *stacktest.Proxy, through string, stored func() (int64, string)) {
	t.Helper()
	port = freePort(t)
	cfg = tablesConfig(st, fmt.Sprintf("  - topic: %s\n    target: %s\n    schema: { create: true }\n", topic, table)) +
		"apply:\n  batch: { max_records: 1, max_wait: 10ms }\n  retry: { initial_backoff: 100ms, max_backoff: 500ms }\n" + extra
	cfg = strings.Replace(cfg, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy = stacktest.NewProxy(t, u.Host)
	if through, err = proxy.URL(targetURL); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	stored = func() (next int64, reason string) {
		var r *string
		if err := conn.QueryRow(ctx, `SELECT next_offset, stopped_reason FROM pgsink.offsets WHERE topic = $1`, topic).Scan(&next, &r); err != nil {
			return -1, err.Error()
		}
		if r != nil {
			reason = *r
		}
		return next, reason
	}
	return cfg, port, proxy, through, stored
}

// produceCycling writes n records to partition 0 of topic, cycling through
// events, with one producer.
func produceCycling(t *testing.T, bootstrap, topic string, events []recording.Record, n int) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan kafka.Event, n)
	for i := 0; i < n; i++ {
		e := events[i%len(events)]
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Key: []byte(e.Key), Value: []byte(e.Value)}, done); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if m := (<-done).(*kafka.Message); m.TopicPartition.Error != nil {
			t.Fatal(m.TopicPartition.Error)
		}
	}
}
