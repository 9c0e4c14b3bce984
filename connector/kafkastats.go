package connector

import (
	"encoding/json"

	"go.uber.org/zap"
)

// kafkaStats is the part of librdkafka's statistics (emitted every
// statistics.interval.ms when the configuration sets it) that tells where
// a fetched record waits before the poll loop dispatches it: the fetch
// round trip to each broker, librdkafka's queue towards Poll, and what is
// prefetched per partition.
type kafkaStats struct {
	ReplyQ  int64 `json:"replyq"`
	Brokers map[string]struct {
		NodeID int64 `json:"nodeid"`
		RTT    struct {
			Avg int64 `json:"avg"`
			P50 int64 `json:"p50"`
			P99 int64 `json:"p99"`
			Max int64 `json:"max"`
			Cnt int64 `json:"cnt"`
		} `json:"rtt"`
		Req map[string]int64 `json:"req"`
	} `json:"brokers"`
	Topics map[string]struct {
		Partitions map[string]struct {
			FetchqCnt   int64 `json:"fetchq_cnt"`
			ConsumerLag int64 `json:"consumer_lag"`
		} `json:"partitions"`
	} `json:"topics"`
}

// logKafkaStats logs a summary of one librdkafka statistics event; an
// event it cannot read is logged as such, never fatal.
func logKafkaStats(log *zap.Logger, raw string) {
	var s kafkaStats
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		log.Warn("librdkafka statistics unreadable", zap.Error(err))
		return
	}
	fields := []zap.Field{zap.Int64("replyq", s.ReplyQ)}
	for name, b := range s.Brokers {
		if b.NodeID < 0 {
			continue // bootstrap or coordinator placeholder
		}
		fields = append(fields, zap.Dict(name,
			zap.Float64("rtt_avg_ms", float64(b.RTT.Avg)/1000), zap.Float64("rtt_p50_ms", float64(b.RTT.P50)/1000),
			zap.Float64("rtt_p99_ms", float64(b.RTT.P99)/1000), zap.Float64("rtt_max_ms", float64(b.RTT.Max)/1000),
			zap.Int64("rtt_samples", b.RTT.Cnt), zap.Int64("fetch_requests", b.Req["Fetch"])))
	}
	var fetchq, lag int64
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			fetchq += p.FetchqCnt
			lag = max(lag, p.ConsumerLag)
		}
	}
	log.Info("librdkafka statistics", append(fields, zap.Int64("fetchq_messages", fetchq), zap.Int64("max_consumer_lag", lag))...)
}
