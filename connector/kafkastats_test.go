package connector

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The summary reads the fields of librdkafka's statistics JSON that break
// down the dispatched stage: per-broker fetch round trips (in
// microseconds there), the queue towards Poll, and the prefetched records.
func TestKafkaStatsSummary(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	logKafkaStats(zap.New(core), `{"replyq": 3,
		"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "rtt": {"avg": 2500, "p50": 2000, "p99": 40000, "max": 51000, "cnt": 90}, "req": {"Fetch": 120}},
		            "GroupCoordinator": {"nodeid": -1, "rtt": {"p99": 1}}},
		"topics": {"t": {"partitions": {"0": {"fetchq_cnt": 5, "consumer_lag": 7}, "1": {"fetchq_cnt": 2, "consumer_lag": 9}, "-1": {}}}}}`)
	entries := logs.FilterMessage("librdkafka statistics").All()
	if len(entries) != 1 {
		t.Fatalf("%d summaries logged, want 1", len(entries))
	}
	got := entries[0].ContextMap()
	broker, ok := got["127.0.0.1:9092/1"].(map[string]any)
	if !ok {
		t.Fatalf("no summary of broker 1 in %v", got)
	}
	if broker["rtt_p99_ms"] != 40.0 || broker["fetch_requests"] != int64(120) {
		t.Errorf("broker summary %v, want rtt_p99_ms 40 and fetch_requests 120", broker)
	}
	if _, ok := got["GroupCoordinator"]; ok {
		t.Error("the coordinator placeholder (nodeid -1) was summarised")
	}
	if got["replyq"] != int64(3) || got["fetchq_messages"] != int64(7) || got["max_consumer_lag"] != int64(9) {
		t.Errorf("summary %v, want replyq 3, fetchq_messages 7, max_consumer_lag 9", got)
	}
	logKafkaStats(zap.New(core), "not json")
	if logs.FilterMessage("librdkafka statistics unreadable").Len() != 1 {
		t.Error("unreadable statistics not reported")
	}
}
