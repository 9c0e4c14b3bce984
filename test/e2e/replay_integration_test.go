//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EReplayWhileRunning rebuilds a table from its topic with `pgsink
// replay --rebuild --wait` while an instance runs: the instance sees the new
// epoch, re-claims and re-applies, and the target ends equal to the source.
// A --from that Kafka no longer holds is refused.
func TestE2EReplayWhileRunning(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	yaml := itemsConfig(st, st.TopicPrefix+".public.items", "")
	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i, now(), '{}', NULL FROM generate_series(1, 500) i`)
	st.Exec(`UPDATE public.items SET amount = amount * 2 WHERE id % 2 = 0`)
	st.Exec(`DELETE FROM public.items WHERE id % 5 = 0`)
	converged := itemsConverge(t, st, targetURL, 60*time.Second)
	converged("initial apply")

	// Someone damages the target; a rebuild replays the topic into it.
	if _, err := target.Exec(ctx, `UPDATE public.items SET name = 'damaged' WHERE id < 100`); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	replay := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"replay", "--config", cfgPath}, args...)...)
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := replay("--table", "public.items", "--from", "earliest", "--rebuild", "--wait", "--wait-timeout", "60s")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !strings.Contains(out, "replay applied") {
		t.Fatalf("replay output has no completion line:\n%s", out)
	}
	t.Logf("replay output:\n%s", out)
	converged("after the rebuild")
	if !strings.Contains(p.Logs(), "rewound by a replay: re-claimed") {
		t.Fatalf("the running instance did not re-claim the partition:\n%s", p.Logs())
	}
	// Writes still flow after the replay.
	st.Exec(`UPDATE public.items SET name = 'after replay' WHERE id = 1`)
	converged("after the replay, live changes still apply")

	// status shows the partition caught up, owned by the running instance.
	cmd := exec.Command(binary, "status", "--config", cfgPath, "--json")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	statusOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var report struct {
		Partitions []struct {
			Lag   *int64 `json:"lag"`
			Owner string `json:"owner"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(statusOut, &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, statusOut)
	}
	wantOwner := fmt.Sprintf(":%d", p.cmd.Process.Pid)
	if len(report.Partitions) != 1 || report.Partitions[0].Lag == nil || *report.Partitions[0].Lag != 0 ||
		!strings.HasSuffix(report.Partitions[0].Owner, wantOwner) {
		t.Fatalf("status: %s\nwant one partition, lag 0, owned by pid %d", statusOut, p.cmd.Process.Pid)
	}

	// Retention removed the start of the topic: an offset before it is refused.
	topic := st.TopicPrefix + ".public.items"
	deleteRecordsBefore(t, st, topic, 10)
	out, err = replay("--topic", topic, "--from", "offset:3")
	if err == nil || !strings.Contains(out, "not in Kafka any more") {
		t.Fatalf("replay from a deleted offset: err %v, output:\n%s\nwant a refusal", err, out)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2ERebuildFromCompactedTopic rebuilds a table from a compacted topic:
// after Kafka's log cleaner removed the superseded records (the offsets now
// have gaps), `replay --rebuild --from earliest` empties the target and
// rebuilds it from what is left, which is the latest record per key; so
// does `replay --rebuild --online`, and a point in time is refused.
func TestE2ERebuildFromCompactedTopic(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	topic := st.TopicPrefix + ".public.items"
	// Roll segments fast and clean eagerly, so compaction happens within
	// the test; tombstones are kept long enough for the replay to see them.
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 1, map[string]string{
		"cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms": "0", "delete.retention.ms": "600000",
	}); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	yaml := itemsConfig(st, topic, "")
	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items SELECT i, 'v0', i, now(), '{}', NULL FROM generate_series(1, 20) i`)
	for v := 1; v <= 30; v++ {
		st.Exec(fmt.Sprintf(`UPDATE public.items SET name = 'v%d'`, v))
	}
	st.Exec(`DELETE FROM public.items WHERE id > 15`)
	converged := itemsConverge(t, st, targetURL, 60*time.Second)
	converged("initial apply")
	// A later record makes the cleaner's dirty segments eligible; wait for
	// the topic to hold fewer records than its offsets span.
	high, err := stacktest.HighWatermark(st.Env.KafkaBootstrap, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 120*time.Second, "Kafka compacts the topic", func() (bool, string) {
		st.Exec(`UPDATE public.items SET note = 'tick' WHERE id = 1`)
		n := countRecords(t, st, topic)
		return n < int(high)/2, fmt.Sprintf("%d records left below offset %d", n, high)
	})
	converged("after the ticks")
	if _, err := target.Exec(ctx, `UPDATE public.items SET name = 'damaged'`); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.items", "--from", "earliest", "--rebuild", "--wait", "--wait-timeout", "60s")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("replay --rebuild: %v\n%s", err, out)
	}
	converged("rebuilt from the compacted topic")

	// An online rebuild from the compacted topic too; a point in time is
	// refused: compaction kept each key's latest record, not its history.
	if _, err := target.Exec(ctx, `UPDATE public.items SET name = 'damaged'`); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.items", "--rebuild", "--online")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("replay --rebuild --online: %v\n%s", err, out)
	}
	converged("rebuilt online from the compacted topic")
	cmd = exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.items", "--into", "public.items_at")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is compacted") {
		t.Fatalf("replay --into from a compacted topic: err %v, output:\n%s\nwant a refusal", err, out)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// countRecords reads a topic from the start and counts its records.
func countRecords(t *testing.T, st *stacktest.T, topic string) int {
	t.Helper()
	n := 0
	readPartition0(t, st, topic, func(*kafka.Message) { n++ })
	return n
}

// readPartition0 hands each record partition 0 of topic holds, up to its
// high watermark as it was at the call, to each, for up to 20 seconds.
func readPartition0(t *testing.T, st *stacktest.T, topic string, each func(*kafka.Message)) {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap, "group.id": "count-" + st.ID,
		"auto.offset.reset": "earliest", "enable.auto.commit": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	high, err := stacktest.HighWatermark(st.Env.KafkaBootstrap, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			continue
		}
		each(m)
		if int64(m.TopicPartition.Offset) >= high-1 {
			break
		}
	}
}

// deleteRecordsBefore has Kafka delete partition 0's records below offset,
// as retention would.
func deleteRecordsBefore(t *testing.T, st *stacktest.T, topic string, offset int64) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.DeleteRecords(context.Background(), []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(offset)}}); err != nil {
		t.Fatal(err)
	}
}
