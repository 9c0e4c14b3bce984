//go:build integration

package connector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// claimBenchRounds is how many times each way of claiming runs, alternated.
const claimBenchRounds = 5

// BenchmarkIntegrationClaimAssignment measures claiming the assignment of a
// restarted instance in the fleet's shape (issue 24: one 100-partition topic
// and 499 one-partition topics, 599 partitions, all with a row in the
// offsets table) one partition after another, as pgsink did before, against
// claimAll; the two alternate, and the medians are reported. Run by `make
// bench-claim`.
func BenchmarkIntegrationClaimAssignment(b *testing.B) {
	st := stacktest.New(b)
	ctx := context.Background()
	specs := []kafka.TopicSpecification{{Topic: st.TopicPrefix + ".hot", NumPartitions: 100, ReplicationFactor: 1}}
	for i := range 499 {
		specs = append(specs, kafka.TopicSpecification{Topic: fmt.Sprintf("%s.t%03d", st.TopicPrefix, i), NumPartitions: 1, ReplicationFactor: 1})
	}
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap})
	if err != nil {
		b.Fatal(err)
	}
	results, err := admin.CreateTopics(ctx, specs)
	admin.Close()
	if err != nil {
		b.Fatal(err)
	}
	var ids []dedup.PartitionID
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			b.Fatal(r.Error)
		}
	}
	for _, s := range specs {
		for p := range int32(s.NumPartitions) {
			ids = append(ids, dedup.PartitionID{Group: "g", Topic: s.Topic, Partition: p})
		}
	}
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap, "group.id": "g"})
	if err != nil {
		b.Fatal(err)
	}
	defer consumer.Close()
	pool := claimsPool(b)
	offsets := dedup.NewOffsets("pgsink")
	c := claimer{start: config.StartEarliest, owner: "bench", store: storedPositions{offsets: offsets, db: pool, owner: "bench"}, log: zap.NewNop(), firstWait: time.Second}

	bulk := func() error {
		for _, cl := range c.claimAll(consumer, ids) {
			if cl.err != nil {
				return cl.err
			}
		}
		return nil
	}
	// oneByOne is how an assignment was claimed before claimAll.
	oneByOne := func() error {
		for _, id := range ids {
			low, _, err := consumer.QueryWatermarkOffsets(id.Topic, id.Partition, 10000)
			if err != nil {
				return err
			}
			if _, err := offsets.Claim(ctx, pool, id, low, "bench"); err != nil {
				return err
			}
		}
		return nil
	}
	// The first claim creates the rows and learns the partitions' leaders.
	if err := bulk(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var seq, blk []float64
	for round := range claimBenchRounds {
		for _, way := range []struct {
			name string
			run  func() error
			into *[]float64
		}{{"one by one", oneByOne, &seq}, {"bulk", bulk, &blk}} {
			began := time.Now()
			if err := way.run(); err != nil {
				b.Fatal(err)
			}
			took := time.Since(began).Seconds()
			*way.into = append(*way.into, took)
			b.Logf("round %d, %s: %d partitions claimed in %.3fs", round+1, way.name, len(ids), took)
		}
	}
	b.StopTimer()
	median := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	b.ReportMetric(median(seq), "onebyone-s")
	b.ReportMetric(median(blk), "bulk-s")
	b.ReportMetric(median(seq)/median(blk), "speedup")
}
