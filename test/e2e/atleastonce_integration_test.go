//go:build integration

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EOffsetsInKafka runs pgsink with apply.offsets: kafka (at least
// once): the target converges as in the default mode, the offsets table
// stays empty, the group's committed offsets reach the end of the topic, and
// a restarted instance resumes from them.
func TestE2EOffsetsInKafka(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	topic := st.TopicPrefix + ".public.items"
	cfg := itemsConfig(st, topic, "") + "apply:\n  offsets: kafka\n  batch: { max_records: 50, max_wait: 20ms }\n"

	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	converge := func(what string) {
		eventually(t, 90*time.Second, what, func() (bool, string) {
			src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
			return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
		})
	}
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i * 1.25, now(), jsonb_build_object('i', i), NULL FROM generate_series(1, 300) AS i`)
	st.Exec(`UPDATE public.items SET name = name || ' (updated)' WHERE id % 3 = 0`)
	st.Exec(`DELETE FROM public.items WHERE id % 7 = 0`)
	converge("target equals source (offsets in Kafka)")

	var rows int
	if err := target.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.offsets`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("pgsink.offsets has %d rows with apply.offsets: kafka, want none", rows)
	}
	high, err := stacktest.HighWatermark(st.Env.KafkaBootstrap, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the group's committed offset reaches the end of the topic", func() (bool, string) {
		got := committedOffset(t, st.Env.KafkaBootstrap, st.ID, topic)
		return got == high, fmt.Sprintf("committed %d, high watermark %d", got, high)
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}

	// Changes made while it was down are applied from the committed offset.
	st.Exec(`UPDATE public.items SET amount = amount + 1 WHERE id % 5 = 0`)
	st.Exec(`INSERT INTO public.items VALUES (1000, 'while down', 1, now(), '{}', 'x')`)
	p = startPgsink(t, cfg, "TARGET_URL="+targetURL)
	converge("target equals source after a restart from Kafka's committed offset")
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
}

func committedOffset(t *testing.T, bootstrap, group, topic string) int64 {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group,
		Partitions: []kafka.TopicPartition{{Topic: &topic, Partition: 0}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			return int64(tp.Offset)
		}
	}
	return -1
}
