// Command kafkafloor drains a topic from its start with confluent-kafka-go's
// Poll and nothing else, and prints the process's CPU per record from the
// first record on: the Kafka client's share of pgsink's CPU per event, which
// no change to pgsink's own code can reduce (the client's threads, one cgo
// call and the copies of key and value per message, and the collection of
// what they allocate).
//
//	go run ./test/kafkafloor -topic bench_avro.public.orders -records 1050000
//
// It reads PGSINK_KAFKA_BOOTSTRAP (the stack's env) unless -bootstrap is
// given, and uses a new consumer group each run, committing nothing.
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	bootstrap := flag.String("bootstrap", os.Getenv("PGSINK_KAFKA_BOOTSTRAP"), "Kafka bootstrap servers")
	topic := flag.String("topic", "", "the topic to drain")
	records := flag.Int("records", 0, "how many records to read (the topic's count, for a drain)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" || *records <= 0 {
		fmt.Fprintln(os.Stderr, "kafkafloor: -bootstrap (or PGSINK_KAFKA_BOOTSTRAP), -topic and -records are required")
		os.Exit(2)
	}
	if err := run(*bootstrap, *topic, *records); err != nil {
		fmt.Fprintln(os.Stderr, "kafkafloor:", err)
		os.Exit(1)
	}
}

func run(bootstrap, topic string, records int) error {
	// pgsink's own consumer settings that bear on fetching
	// (connector/kafkaconfig.go at its default apply.max_buffered_bytes).
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": fmt.Sprintf("kafkafloor-%d", time.Now().UnixNano()),
		"auto.offset.reset": "earliest", "enable.auto.commit": false,
		"fetch.queue.backoff.ms": 10, "queued.max.messages.kbytes": 65536,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		return err
	}
	var cpu0 time.Duration
	var t0 time.Time
	n, bytes := 0, 0
	deadline := time.Now().Add(10 * time.Minute)
	for n < records {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d records after 10 minutes", n, records)
		}
		switch m := c.Poll(100).(type) {
		case *kafka.Message:
			if m.TopicPartition.Error != nil {
				return m.TopicPartition.Error
			}
			if n == 0 {
				cpu0, t0 = processCPU(), time.Now()
			}
			n++
			bytes += len(m.Key) + len(m.Value)
		case kafka.Error:
			if m.IsFatal() {
				return m
			}
		}
	}
	cpu := processCPU() - cpu0
	fmt.Printf("%d records, %d bytes of keys and values, %.1f s, %.2f CPU-s: %.2f CPU-µs per record\n",
		n, bytes, time.Since(t0).Seconds(), cpu.Seconds(), cpu.Seconds()*1e6/float64(n))
	return nil
}

// processCPU is the process's user and system time, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
