package connector

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logsToChannel asks librdkafka to hand its log lines to the Go client's
// Logs channel instead of writing them to stderr itself, so that they reach
// pgsink's logger (and its JSON stream) with a level, unless the user
// configured go.logs.channel.enable. It reports whether the channel is on:
// its reader must then drain it, or librdkafka's log thread blocks.
func logsToChannel(m *kafka.ConfigMap) bool {
	v, set := (*m)["go.logs.channel.enable"]
	if !set {
		(*m)["go.logs.channel.enable"] = true
		return true
	}
	on, _ := v.(bool)
	return on
}

// forwardClientLogs writes every librdkafka log line to log until the
// client closes the channel.
func forwardClientLogs(events <-chan kafka.LogEvent, log *zap.Logger) {
	for ev := range events {
		if ce := log.Check(syslogLevel(ev.Level), ev.Message); ce != nil {
			ce.Write(zap.String("client", ev.Name), zap.String("tag", ev.Tag))
		}
	}
}

// syslogLevel maps librdkafka's syslog levels to zap's: emergency to error
// are errors, warning a warning, notice and info are info, debug is debug.
func syslogLevel(level int) zapcore.Level {
	switch {
	case level <= 3:
		return zapcore.ErrorLevel
	case level == 4:
		return zapcore.WarnLevel
	case level <= 6:
		return zapcore.InfoLevel
	}
	return zapcore.DebugLevel
}
