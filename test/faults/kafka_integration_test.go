//go:build integration

package faults

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// topicEnd is the sum of the topic's high watermarks.
func (s *scenario) topicEnd() int64 {
	s.t.Helper()
	return topicEnd(s.t, s.st.Env.KafkaBootstrap, s.topic)
}

// topicEnd sums the high watermarks of topic's partitions.
func topicEnd(t *testing.T, bootstrap, topic string) int64 {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "pgsink-faults-probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range md.Topics[topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		total += high
	}
	return total
}

func (s *scenario) producer(t *testing.T) *kafka.Producer {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": s.st.Env.KafkaBootstrap, "message.max.bytes": 10 << 20,
		"enable.idempotence": true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// produce writes one record straight to a partition of the table topic.
func (s *scenario) produce(t *testing.T, partition int32, key, value []byte) {
	t.Helper()
	p := s.producer(t)
	defer p.Close()
	s.send(t, p, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: partition}, Key: key, Value: value})
}

func (s *scenario) send(t *testing.T, p *kafka.Producer, m *kafka.Message) {
	t.Helper()
	delivery := make(chan kafka.Event, 1)
	if err := p.Produce(m, delivery); err != nil {
		t.Fatalf("produce: %v", err)
	}
	select {
	case ev := <-delivery:
		if msg := ev.(*kafka.Message); msg.TopicPartition.Error != nil {
			t.Fatalf("produce: %v", msg.TopicPartition.Error)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("produce: no delivery report within 30 s")
	}
}

// republish reads the first n records of each partition and produces them
// again, in order, to the same partition: old creates, updates and deletes
// at new offsets. It returns how many it re-published.
func (s *scenario) republish(t *testing.T, n int) int {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": s.st.Env.KafkaBootstrap, "group.id": s.st.ID + "-republish",
		"enable.auto.commit": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&s.topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	p := s.producer(t)
	defer p.Close()
	count := 0
	for _, part := range md.Topics[s.topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(s.topic, part.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		end := min(high, int64(n))
		if end == 0 {
			continue
		}
		if err := c.Assign([]kafka.TopicPartition{{Topic: &s.topic, Partition: part.ID, Offset: 0}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for next := int64(0); next < end; {
			if time.Now().After(deadline) {
				t.Fatalf("republish: partition %d stuck at %d of %d", part.ID, next, end)
			}
			m, err := c.ReadMessage(time.Second)
			if err != nil {
				continue
			}
			next = int64(m.TopicPartition.Offset) + 1
			s.send(t, p, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: part.ID},
				Key: m.Key, Value: m.Value, Headers: m.Headers})
			count++
		}
	}
	return count
}

// tombstonesBelow counts, per partition, the records with a null value
// (Debezium's tombstones) below the given end offsets.
func (s *scenario) tombstonesBelow(topic string, ends map[int32]int64) (map[int32]int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": s.st.Env.KafkaBootstrap, "group.id": s.st.ID + "-tombstones",
		"enable.auto.commit": false})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := map[int32]int64{}
	for partition, end := range ends {
		if end == 0 {
			continue
		}
		if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: 0}}); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(60 * time.Second)
		for next := int64(0); next < end; {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("partition %d: read stuck at %d of %d", partition, next, end)
			}
			m, err := c.ReadMessage(time.Second)
			if err != nil {
				continue
			}
			if int64(m.TopicPartition.Offset) >= end {
				break
			}
			next = int64(m.TopicPartition.Offset) + 1
			if m.Value == nil {
				out[partition]++
			}
		}
	}
	return out, nil
}

// servicePid reads a stack service's pid file and checks that the process
// belongs to this stack (its command line names the state folder), as
// stack.sh does, so a recycled pid is never killed.
func servicePid(t *testing.T, service string) int {
	t.Helper()
	dir := filepath.Join(stackDir(), service)
	b, err := os.ReadFile(filepath.Join(dir, service+".pid"))
	if err != nil {
		t.Fatalf("%s pid file: %v", service, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("%s pid file: %v", service, err)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), dir) {
		t.Fatalf("%s: pid %d is not this stack's (%s)", service, pid, dir)
	}
	return pid
}

// killService SIGKILLs a stack service (connect or kafka) and waits for it
// to be gone.
func killService(t *testing.T, service string) {
	t.Helper()
	pid := servicePid(t, service)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil {
			break
		}
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(b), ") Z ") {
			break // a zombie until its parent reaps it: dead enough
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("killed %s (pid %d) with SIGKILL", service, pid)
}

// stackUp restarts what is down with test/stack/stack.sh up, on the ports
// of the stack the tests use (the env file names only some of them).
func stackUp(t *testing.T) {
	t.Helper()
	env := os.Environ()
	env = append(env, "PGSINK_STACK_DIR="+stackDir())
	if u, err := url.Parse(os.Getenv("PGSINK_CONNECT_URL")); err == nil && u.Port() != "" {
		env = append(env, "PGSINK_CONNECT_PORT="+u.Port())
	}
	if _, port, ok := strings.Cut(os.Getenv("PGSINK_KAFKA_BOOTSTRAP"), ":"); ok {
		env = append(env, "PGSINK_KAFKA_PORT="+port)
	}
	if port := controllerPort(); port != "" {
		env = append(env, "PGSINK_KAFKA_CONTROLLER_PORT="+port)
	}
	// A second stack (other ports, a shared jar cache) must come back on
	// its own registry and jars, not on the defaults, which may be another
	// stack's.
	if u, err := url.Parse(os.Getenv("PGSINK_REGISTRY_URL")); err == nil && u.Port() != "" {
		env = append(env, "PGSINK_REGISTRY_PORT="+u.Port())
	}
	if jars := os.Getenv("PGSINK_KAFKA_JARS"); jars != "" && os.Getenv("PGSINK_JAR_CACHE") == "" {
		env = append(env, "PGSINK_JAR_CACHE="+filepath.Dir(jars))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(), "test/stack/stack.sh"), "up")
	cmd.Env = env
	// The services it starts outlive this test: their own session, so a
	// signal to the test's process group does not reach them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stack.sh up: %v\n%s", err, out)
	}
	t.Logf("stack.sh up:\n%s", out)
}

// controllerPort reads the KRaft controller port from the broker's
// properties (stack.sh's env file does not export it).
func controllerPort() string {
	b, err := os.ReadFile(filepath.Join(stackDir(), "kafka", "server.properties"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "listeners=") {
			for _, l := range strings.Split(strings.TrimPrefix(line, "listeners="), ",") {
				if strings.HasPrefix(l, "CONTROLLER://") {
					return l[strings.LastIndexByte(l, ':')+1:]
				}
			}
		}
	}
	return ""
}

// ghostRecord returns a copy of the topic's first record made into a change
// of a table nothing knows: source.table "ghosts" and the key column
// "ghost_id" in place of "id", in the schema and the payload alike. It is
// still a well-formed Debezium event, on a subscribed topic.
func (s *scenario) ghostRecord(t *testing.T) (key, value []byte) {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": s.st.Env.KafkaBootstrap, "group.id": s.st.ID + "-ghost",
		"enable.auto.commit": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &s.topic, Partition: 0, Offset: 0}}); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage(30 * time.Second)
	if err != nil {
		t.Fatalf("reading a record to disguise: %v", err)
	}
	ghost := func(b []byte) []byte {
		out := strings.ReplaceAll(string(b), `"id"`, `"ghost_id"`)
		return []byte(strings.ReplaceAll(out, `"table":"accounts"`, `"table":"ghosts"`))
	}
	key, value = ghost(m.Key), ghost(m.Value)
	if !strings.Contains(string(value), `"table":"ghosts"`) || !strings.Contains(string(key), `"ghost_id"`) {
		t.Fatalf("the record did not take the disguise: key %.200s value %.300s", key, value)
	}
	return key, value
}
