package connector

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogsToChannel(t *testing.T) {
	m := kafka.ConfigMap{}
	if !logsToChannel(&m) || m["go.logs.channel.enable"] != true {
		t.Fatalf("not set by default: %v", m)
	}
	off := kafka.ConfigMap{"go.logs.channel.enable": false}
	if logsToChannel(&off) || off["go.logs.channel.enable"] != false {
		t.Fatalf("the user's false was overridden: %v", off)
	}
}

// TestForwardClientLogs: librdkafka's lines reach the logger with their
// level mapped and the client and tag as fields, and forwarding ends when
// the client closes the channel.
func TestForwardClientLogs(t *testing.T) {
	core, seen := observer.New(zapcore.DebugLevel)
	events := make(chan kafka.LogEvent, 4)
	events <- kafka.LogEvent{Name: "rdkafka#consumer-1", Tag: "FAIL", Message: "127.0.0.1:9/bootstrap: Connect failed", Level: 3}
	events <- kafka.LogEvent{Name: "rdkafka#consumer-1", Tag: "REQTMOUT", Message: "timed out", Level: 4}
	events <- kafka.LogEvent{Name: "rdkafka#consumer-1", Tag: "CONFWARN", Message: "note", Level: 5}
	events <- kafka.LogEvent{Name: "rdkafka#consumer-1", Tag: "FETCH", Message: "fetch", Level: 7}
	close(events)
	forwardClientLogs(events, zap.New(core))
	want := []struct {
		level zapcore.Level
		tag   string
	}{{zapcore.ErrorLevel, "FAIL"}, {zapcore.WarnLevel, "REQTMOUT"}, {zapcore.InfoLevel, "CONFWARN"}, {zapcore.DebugLevel, "FETCH"}}
	got := seen.All()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].ContextMap()["tag"] != w.tag || got[i].ContextMap()["client"] != "rdkafka#consumer-1" {
			t.Errorf("entry %d = %v %v, want level %v tag %s", i, got[i].Level, got[i].ContextMap(), w.level, w.tag)
		}
	}
}
