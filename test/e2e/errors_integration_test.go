//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// poisonPipeline is a source table streamed by Debezium, a target, and a
// garbage record produced into the table's topic between valid events.
type poisonPipeline struct {
	st        *stacktest.T
	topic     string
	targetURL string
}

func newPoisonPipeline(t *testing.T) *poisonPipeline {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, _ := itemsTarget(t)
	pp := &poisonPipeline{st: st, topic: st.TopicPrefix + ".public.items", targetURL: targetURL}
	st.Exec(`INSERT INTO public.items VALUES (1, 'before the poison', 1, now(), '{}', NULL)`)
	st.ReadUntil(60*time.Second, func(rs []recording.Record) bool { return len(rs) >= 1 })
	produce(t, st.Env.KafkaBootstrap, pp.topic, []byte(`{"id":2}`), []byte(`{"schema":{"type":"struct"},"payload":{"op":"c","after":`))
	st.Exec(`INSERT INTO public.items VALUES (3, 'after the poison', 3, now(), '{}', NULL)`)
	return pp
}

func produce(t *testing.T, bootstrap, topic string, key, value []byte) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Key: key, Value: value,
		Headers: []kafka.Header{{Key: "origin", Value: []byte("test")}}}, done); err != nil {
		t.Fatal(err)
	}
	if m := (<-done).(*kafka.Message); m.TopicPartition.Error != nil {
		t.Fatal(m.TopicPartition.Error)
	}
}

func (pp *poisonPipeline) config(extra string) string {
	return itemsConfig(pp.st, pp.topic, quickBatches+extra+"\n")
}

// quickBatches are the small, quick batches of the error tests, a
// top-level section to append to itemsConfig.
const quickBatches = "apply:\n  batch: { max_records: 100, max_wait: 50ms }\n"

func (pp *poisonPipeline) ids(t *testing.T) string {
	conn, err := pgx.Connect(context.Background(), pp.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ids string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM public.items`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestE2EDeadLetterTopic: an undecodable record goes to the dead-letter topic
// with its key, value, original headers and Kafka Connect's error headers,
// and the partition moves on to the next valid event.
func TestE2EDeadLetterTopic(t *testing.T) {
	pp := newPoisonPipeline(t)
	dlq := pp.st.TopicPrefix + ".dlq"
	p := startPgsink(t, pp.config(fmt.Sprintf("errors:\n  tolerance: all\n  dead_letter: { destination: topic, topic: %s }", dlq)),
		"TARGET_URL="+pp.targetURL)
	eventually(t, 60*time.Second, "valid events around the poison record applied", func() (bool, string) {
		ids := pp.ids(t)
		return ids == "1,3", "target ids " + ids
	})
	records := pp.st.ReadUntil(30*time.Second, func(rs []recording.Record) bool {
		for _, r := range rs {
			if r.Topic == dlq {
				return true
			}
		}
		return false
	})
	var dead recording.Record
	for _, r := range records {
		if r.Topic == dlq {
			dead = r
		}
	}
	want := map[string]string{
		"origin": "test", "__connect.errors.topic": pp.topic, "__connect.errors.partition": "0", "__connect.errors.offset": "1",
	}
	for k, v := range want {
		if got, _ := dead.Header(k); string(got) != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	if msg, _ := dead.Header("__connect.errors.exception.message"); !strings.Contains(string(msg), pp.topic) {
		t.Errorf("exception message %q does not name the topic", msg)
	}
	if task, _ := dead.Header("__connect.errors.task.id"); !regexp.MustCompile(`^.+:[0-9]+/0$`).Match(task) {
		t.Errorf("task id %q, want the instance (host:pid) and the partition", task)
	}
	if string(dead.Key) != `{"id":2}` || !strings.HasPrefix(string(dead.Value), `{"schema"`) {
		t.Errorf("dead letter key %q value %q: want the original bytes", dead.Key, dead.Value)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2EToleranceNone: with errors.tolerance none the partition stops at
// the undecodable record, its offset unmoved, and says so in the log.
func TestE2EToleranceNone(t *testing.T) {
	pp := newPoisonPipeline(t)
	port := freePort(t)
	cfg := strings.Replace(pp.config("errors:\n  tolerance: none"), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	p := startPgsink(t, cfg, "TARGET_URL="+pp.targetURL)
	eventually(t, 60*time.Second, "the partition stops at the poison record", func() (bool, string) {
		return strings.Contains(p.Logs(), "partition stopped"), "no 'partition stopped' in the log yet"
	})
	time.Sleep(time.Second)
	if ids := pp.ids(t); ids != "1" {
		t.Fatalf("target ids %q, want only 1 (nothing past the poison record)", ids)
	}
	conn, err := pgx.Connect(context.Background(), pp.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var next int64
	if err := conn.QueryRow(context.Background(), `SELECT next_offset FROM pgsink.offsets`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != 1 {
		t.Fatalf("stored next offset %d, want 1 (the poison record's)", next)
	}
	// The stop is visible to an orchestrator and an operator: /readyz
	// fails naming the partition, and status shows why.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), pp.topic+"[0] stopped at offset 1") {
		t.Fatalf("/readyz = %d %q, want 503 naming %s[0] stopped at offset 1", resp.StatusCode, body, pp.topic)
	}
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The worker logs the stop and tells /readyz before it writes the
	// offsets row that status reads (PostgreSQL may be why it stopped):
	// the row is waited for, not expected at once.
	eventually(t, 30*time.Second, "pgsink status shows the partition stopped with its reason", func() (bool, string) {
		cmd := exec.Command(binary, "status", "--config", cfgPath, "--json")
		cmd.Env = append(os.Environ(), "TARGET_URL="+pp.targetURL)
		out, err := cmd.Output()
		if err != nil {
			return false, fmt.Sprintf("status: %v", err)
		}
		var report struct {
			Partitions []struct {
				Stopped string `json:"stopped"`
			} `json:"partitions"`
		}
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return len(report.Partitions) == 1 && strings.Contains(report.Partitions[0].Stopped, "errors.tolerance is none"), string(out)
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2ESecretsNeverLogged runs pgsink with a password in the database URL
// and a SASL password in the Kafka settings, through start, an error and a
// shutdown, and checks that neither value appears in any log line.
func TestE2ESecretsNeverLogged(t *testing.T) {
	pp := newPoisonPipeline(t)
	const dbSecret, kafkaSecret = "db-Secret-4417", "kafka-Secret-9931"
	// Trust authentication on the local stack accepts any password.
	url := strings.Replace(pp.targetURL, "pgsink@", "pgsink:"+dbSecret+"@", 1)
	cfg := strings.Replace(pp.config("errors:\n  tolerance: none"), "\n  group.id:", "\n  sasl.password: ${KAFKA_SECRET}\n  group.id:", 1)
	p := startPgsink(t, cfg, "TARGET_URL="+url, "KAFKA_SECRET="+kafkaSecret)
	eventually(t, 60*time.Second, "pgsink reaches the poison record", func() (bool, string) {
		return strings.Contains(p.Logs(), "partition stopped"), "not yet"
	})
	p.stop(30 * time.Second)
	logs := p.Logs()
	for _, secret := range []string{dbSecret, kafkaSecret} {
		if strings.Contains(logs, secret) {
			t.Fatalf("secret %q appears in the logs:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "pgsink starting") {
		t.Fatalf("no start line in the logs; the test saw nothing:\n%s", logs)
	}
}

// TestE2EStoredOffsetGone: when the stored position points below what Kafka
// still holds (records deleted by retention), the partition stops with an
// error that says so and what to do, instead of jumping silently.
func TestE2EStoredOffsetGone(t *testing.T) {
	ctx := context.Background()
	pp := newPoisonPipeline(t)
	cfg := pp.config("errors:\n  tolerance: all")
	first := startPgsink(t, cfg, "TARGET_URL="+pp.targetURL)
	eventually(t, 60*time.Second, "first run applies the topic", func() (bool, string) {
		ids := pp.ids(t)
		return ids == "1,3", "target ids " + ids
	})
	if code, _ := first.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Retention deletes the first two records; the stored position is put
	// back to 0, as an old backup of the target would have it.
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": pp.st.Env.KafkaBootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := pp.topic
	res, err := admin.DeleteRecords(ctx, []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 2}})
	if err != nil || res.DeleteRecordsResults[0].TopicPartition.Error != nil {
		t.Fatalf("delete records: %v %v", err, res)
	}
	conn, err := pgx.Connect(ctx, pp.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE pgsink.offsets SET next_offset = 0`); err != nil {
		t.Fatal(err)
	}
	second := startPgsink(t, cfg, "TARGET_URL="+pp.targetURL)
	eventually(t, 60*time.Second, "the partition stops with a message naming the gap and the fix", func() (bool, string) {
		logs := second.Logs()
		return strings.Contains(logs, "outside what Kafka holds") && strings.Contains(logs, "pgsink replay"), "not yet"
	})
	var next int64
	if err := conn.QueryRow(ctx, `SELECT next_offset FROM pgsink.offsets`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != 0 {
		t.Fatalf("stored next offset moved to %d; it must stay at 0 until an operator acts", next)
	}
	if code, _ := second.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2EDeadLetterRetry: a record the target refuses (a CHECK constraint)
// lands in the dead-letter table while the rest applies; once the cause is
// fixed, `pgsink dlq retry` applies it through the normal path and removes
// the dead letter in the same transaction.
func TestE2EDeadLetterRetry(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	if _, err := target.Exec(ctx, `ALTER TABLE public.items ADD CONSTRAINT no_poison CHECK (name <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	yaml := itemsConfig(st, st.TopicPrefix+".public.items", "")
	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'ok', 1, now(), '{}', NULL), (2, 'poison', 2, now(), '{"x": 1}', NULL), (3, 'ok', 3, now(), '{}', NULL)`)
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	eventually(t, 60*time.Second, "the good rows applied, the poison one dead-lettered", func() (bool, string) {
		var dead int
		_ = target.QueryRow(ctx, `SELECT count(*) FROM pgsink.dead_letters`).Scan(&dead)
		var ids string
		_ = target.QueryRow(ctx, `SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM public.items`).Scan(&ids)
		return ids == "1,3" && dead == 1, fmt.Sprintf("target ids %q, %d dead letters", ids, dead)
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// dlq runs `pgsink dlq ACTION --config F IDS...`.
	dlq := func(action string, ids ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"dlq", action, "--config", cfgPath}, ids...)...)
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var id string
	if err := target.QueryRow(ctx, `SELECT id::text FROM pgsink.dead_letters`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	out, err := dlq("retry", id)
	if err == nil || !strings.Contains(out, "still fails") || !strings.Contains(out, "no_poison") {
		t.Fatalf("retry before the fix: err %v, output:\n%s\nwant it to fail with the constraint named", err, out)
	}
	if _, err := target.Exec(ctx, `ALTER TABLE public.items DROP CONSTRAINT no_poison`); err != nil {
		t.Fatal(err)
	}
	if out, err := dlq("retry", id); err != nil || !strings.Contains(out, "applied and removed") {
		t.Fatalf("retry after the fix: %v\n%s", err, out)
	}
	if src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query); src != dst {
		t.Fatalf("after the retry the target differs from the source: %s vs %s", src, dst)
	}
	if out, err := dlq("list"); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list after the retry: %v\n%s", err, out)
	}
}

// TestE2EPanicContained: a record that trips a panic (injected with
// PGSINK_TEST_PANIC, in decoding and in writing) goes to the dead letters
// with class panic; the process lives and the records after it apply.
func TestE2EPanicContained(t *testing.T) {
	for _, where := range []string{"decode", "apply"} {
		t.Run(where, func(t *testing.T) {
			st := stacktest.New(t)
			st.Exec(`CREATE TABLE public.items ` + itemsDDL)
			st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
			targetURL, _ := itemsTarget(t)
			pp := &poisonPipeline{st: st, topic: st.TopicPrefix + ".public.items", targetURL: targetURL}
			st.Exec(`INSERT INTO public.items VALUES (1, 'fine', 1, now(), '{}', NULL)`)
			st.Exec(`INSERT INTO public.items VALUES (2, 'trips-a-bug', 2, now(), '{}', NULL)`)
			st.Exec(`INSERT INTO public.items VALUES (3, 'fine', 3, now(), '{}', NULL)`)
			p := startPgsink(t, pp.config("errors:\n  tolerance: all"), "TARGET_URL="+targetURL, "PGSINK_TEST_PANIC="+where+":trips-a-bug")
			eventually(t, 60*time.Second, "the records around the panicking one applied", func() (bool, string) {
				ids := pp.ids(t)
				return ids == "1,3", "target ids " + ids
			})
			st.Exec(`INSERT INTO public.items VALUES (4, 'after', 4, now(), '{}', NULL)`)
			eventually(t, 60*time.Second, "the process goes on applying", func() (bool, string) {
				ids := pp.ids(t)
				return ids == "1,3,4", "target ids " + ids
			})
			conn, err := pgx.Connect(context.Background(), targetURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var class, reason string
			if err := conn.QueryRow(context.Background(), `SELECT error_class, error FROM pgsink.dead_letters`).Scan(&class, &reason); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, "panic") || !strings.Contains(reason, "goroutine") {
				t.Fatalf("dead letter class %q reason %q: want the panic with its stack", class, reason)
			}
			if code, _ := p.stop(30 * time.Second); code != 0 {
				t.Fatalf("exit %d, want a clean stop", code)
			}
		})
	}
}
