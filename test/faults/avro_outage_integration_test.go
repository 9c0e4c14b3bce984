//go:build integration

package faults

import (
	"bytes"
	"context"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"

	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestAvroRegistryOutage stops the stack's schema registry under a running
// pgsink on encoding: avro. Records whose schema ids pgsink fetched before
// keep flowing; a record with an id it never fetched makes its partition
// wait — offset unmoved, nothing dead-lettered, a metric and a log line
// saying why — and the partition goes on once the registry is back.
//
// It stops and starts the registry of the stack in $PGSINK_STACK_DIR (like
// the other fault tests kill Connect): run it against your own stack.
func TestAvroRegistryOutage(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL)`)
	overrides := stacktest.AvroConverter(registry)
	overrides["table.include.list"] = "public.items"
	st.RegisterDebezium("items", overrides)
	topic := st.TopicPrefix + ".public.items"

	p, target := startAvroItems(t, st, "avro", registry, "", topic)
	count := func() int {
		var n int
		if err := target.QueryRow(context.Background(), `SELECT count(*) FROM public.items`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	st.Exec(`INSERT INTO public.items SELECT i, 'before ' || i FROM generate_series(1, 10) AS i`)
	waitFor("the first 10 rows", func() bool { return count() == 10 })

	// A second schema id the registry serves and pgsink has never asked
	// for: the value schema with a doc, whose bodies read the same.
	records := st.ReadUntil(30*time.Second, func(rs []recording.Record) bool { return len(rs) >= 10 })
	probe := records[len(records)-1]
	valueID := be.BigEndian.Uint32(probe.Value[1:5])
	fresh := registerVariant(t, registry, valueID, st.ID+"-probe")

	stack(t, registry, "registry-down")
	registryUp := false
	defer func() {
		if !registryUp {
			stack(t, registry, "registry-up")
		}
	}()

	// Known ids: the connector's converter and pgsink both cached them.
	st.Exec(`INSERT INTO public.items SELECT i, 'during ' || i FROM generate_series(11, 20) AS i`)
	waitFor("rows written during the outage with known schema ids", func() bool { return count() == 20 })

	// An id pgsink never fetched, while the registry is down: the probe's
	// body under the fresh id, then a row of Debezium's behind it.
	value := append(append([]byte{0}, be.BigEndian.AppendUint32(nil, fresh)...), probe.Value[5:]...)
	produce(t, st.Env.KafkaBootstrap, topic, probe.Key, value)
	st.Exec(`INSERT INTO public.items VALUES (21, 'behind the unknown id')`)
	waitFor("the partition to wait for the registry", func() bool {
		return p.metric("pgsink_schema_registry_unavailable_total") >= 2 &&
			p.metric("pgsink_partition_waiting_schema") == 1
	})
	if n := count(); n != 20 {
		t.Fatalf("%d rows while the partition waits, want 20: nothing past the waiting record is applied", n)
	}
	if !strings.Contains(p.Logs(), "partition waits for the schema registry") {
		t.Error("no log line says the partition waits for the schema registry")
	}
	if n := p.metric("pgsink_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters during a registry outage, want 0", n)
	}

	stack(t, registry, "registry-up")
	registryUp = true
	waitFor("row 21 after the registry came back", func() bool { return count() == 21 })
	checkRegistryRecovered(t, p)
}

// registerVariant registers, under subject, the schema of id with a doc
// added (new content, so a new id; the same binary form) and returns its id.
func registerVariant(t *testing.T, registry string, id uint32, subject string) uint32 {
	t.Helper()
	text, err := stacktest.RegistrySchema(registry, id)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(text), &schema); err != nil {
		t.Fatal(err)
	}
	schema["doc"] = "a variant for the registry outage test"
	variant, _ := json.Marshal(schema)
	body, _ := json.Marshal(map[string]string{"schema": string(variant)})
	resp, err := http.Post(registry+"/apis/ccompat/v7/subjects/"+url.PathEscape(subject)+"/versions",
		"application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID uint32 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.ID == id {
		t.Fatalf("registering a variant of schema %d: HTTP %d, id %d, %v", id, resp.StatusCode, out.ID, err)
	}
	return out.ID
}

// stack runs test/stack/stack.sh cmd on the stack of $PGSINK_STACK_DIR, its
// registry port taken from registryURL and its jar cache from the env file.
func stack(t *testing.T, registryURL, cmd string) {
	t.Helper()
	u, err := url.Parse(registryURL)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PGSINK_REGISTRY_PORT=" + u.Port()}
	if jars := os.Getenv("PGSINK_KAFKA_JARS"); jars != "" {
		env = append(env, "PGSINK_JAR_CACHE="+filepath.Dir(jars))
	}
	out, err := runScript(env, filepath.Join("..", "stack", "stack.sh"), cmd)
	if err != nil {
		t.Fatalf("stack.sh %s: %v\n%s", cmd, err, out)
	}
}

// produce writes one record to partition 0 of topic.
func produce(t *testing.T, bootstrap, topic string, key, value []byte) {
	t.Helper()
	pr, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan kafka.Event, 1)
	if err := pr.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Key: key, Value: value}, done); err != nil {
		t.Fatal(err)
	}
	if m := (<-done).(*kafka.Message); m.TopicPartition.Error != nil {
		t.Fatal(m.TopicPartition.Error)
	}
}

// runScript runs a shell script with env added to the test's environment.
func runScript(env []string, script string, args ...string) (string, error) {
	cmd := exec.Command(script, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAvroRegistryOutageTransactionTopic is TestAvroRegistryOutage for the
// resolver of apply.consistency: transaction on Avro: a BEGIN/END marker
// whose schema id pgsink never fetched, read while the registry is down,
// makes the transaction topic's partition wait — offset unmoved, the
// resolver not stopped, nothing dead-lettered — while the data partitions
// stage the transaction behind it; once the registry is back the resolver
// goes on and applies that transaction.
//
// It stops and starts the registry of the stack in $PGSINK_STACK_DIR: run it
// against your own stack.
func TestAvroRegistryOutageTransactionTopic(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL)`)
	topic, txTopic := st.TopicPrefix+".public.items", st.TopicPrefix+".transaction"
	for name, n := range map[string]int{topic: 2, txTopic: 1} {
		if err := stacktest.CreateTopic(context.Background(), st.Env.KafkaBootstrap, name, n); err != nil {
			t.Fatal(err)
		}
	}
	overrides := stacktest.AvroConverter(registry)
	overrides["table.include.list"] = "public.items"
	overrides["provide.transaction.metadata"] = "true"
	st.RegisterDebezium("items", overrides)

	p, target := startAvroItems(t, st, "avro-tx", registry, fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s, max_wait: 5m }\n", txTopic), topic)
	query := func(sql string) int {
		var n int
		if err := target.QueryRow(context.Background(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count := func() int { return query(`SELECT count(*) FROM public.items`) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	st.Exec(`INSERT INTO public.items SELECT i, 'before ' || i FROM generate_series(1, 10) AS i`)
	waitFor("the first transaction's 10 rows", func() bool { return count() == 10 })

	// A BEGIN of the transaction topic, to be sent again under a schema id
	// the registry serves and pgsink has never asked for (the marker
	// schema with a doc, whose bodies read the same): a repeated BEGIN
	// writes nothing, so only the wait is seen.
	var begin recording.Record
	st.ReadUntil(30*time.Second, func(rs []recording.Record) bool {
		for _, r := range rs {
			if r.Topic == txTopic && len(r.Value) > 5 && bytes.Contains(r.Value[5:], []byte("BEGIN")) {
				begin = r
				return true
			}
		}
		return false
	})
	if begin.Value[0] != 0 {
		t.Fatalf("the transaction topic is not in the Confluent wire format: % x", begin.Value[:5])
	}
	fresh := registerVariant(t, registry, be.BigEndian.Uint32(begin.Value[1:5]), st.ID+"-marker")

	stack(t, registry, "registry-down")
	registryUp := false
	defer func() {
		if !registryUp {
			stack(t, registry, "registry-up")
		}
	}()
	value := append(append([]byte{0}, be.BigEndian.AppendUint32(nil, fresh)...), begin.Value[5:]...)
	produce(t, st.Env.KafkaBootstrap, txTopic, begin.Key, value)
	// A transaction behind it, in schema ids the connector and pgsink have
	// cached: staged by the data partitions, its END behind the waiting
	// marker.
	st.Exec(`INSERT INTO public.items SELECT i, 'behind the unknown id ' || i FROM generate_series(11, 15) AS i`)
	txLabel := `topic="` + txTopic + `"`
	waitFor("the transaction topic to wait for the registry, the transaction behind it staged", func() bool {
		return p.metricWhere("pgsink_schema_registry_unavailable_total", txLabel) >= 2 &&
			p.metricWhere("pgsink_partition_waiting_schema", txLabel) == 1 &&
			query(`SELECT count(*) FROM pgsink.tx_staged`) == 5
	})
	if n := count(); n != 10 {
		t.Fatalf("%d rows while the resolver waits, want 10: nothing past the waiting marker is applied", n)
	}
	if logs := p.Logs(); !strings.Contains(logs, "partition waits for the schema registry") || strings.Contains(logs, "partition stopped") {
		t.Error("want a log line saying the partition waits for the schema registry, and no partition stopped")
	}
	if n := p.metric("pgsink_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters during a registry outage, want 0", n)
	}

	stack(t, registry, "registry-up")
	registryUp = true
	waitFor("the transaction behind the marker after the registry came back", func() bool { return count() == 15 })
	checkRegistryRecovered(t, p)
	waitFor("nothing left staged", func() bool { return query(`SELECT count(*) FROM pgsink.tx_staged`) == 0 })
}

// startAvroItems starts pgsink (named name) on encoding: avro through the
// stack's registry, applying topic to public.items of a target database of
// its own (created here with pgsink's version columns), with apply, when
// not empty, as the configuration's apply: block. The process is stopped,
// and its log's tail shown on failure, when the test ends.
func startAvroItems(t *testing.T, st *stacktest.T, name, registry, apply, topic string) (*proc, *pgx.Conn) {
	t.Helper()
	targetURL := stacktest.OwnedTargetDatabase(t)
	target, err := pgx.Connect(context.Background(), targetURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close(context.Background()) })
	if _, err := target.Exec(context.Background(), `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
metrics:
  listen: 127.0.0.1:%d
encoding: avro
schema_registry:
  url: %s/apis/ccompat/v7
%stables:
  - topic: %s
    target: public.items
`, st.Env.KafkaBootstrap, st.ID, port, registry, apply, topic)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, name, cfgPath, "TARGET_URL="+targetURL)
	p.port = port
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgsink logs:\n%s", tail(p.Logs(), 60))
		}
		p.stop(30 * time.Second)
	})
	return p, target
}

// checkRegistryRecovered checks a pgsink after the registry came back: no
// partition waits for it any more, and nothing was dead-lettered for it.
func checkRegistryRecovered(t *testing.T, p *proc) {
	t.Helper()
	if n := p.metric("pgsink_partition_waiting_schema"); n != 0 {
		t.Errorf("pgsink_partition_waiting_schema = %v after the registry came back, want 0", n)
	}
	if n := p.metric("pgsink_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters, want 0", n)
	}
}
