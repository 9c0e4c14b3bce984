//go:build integration

package connector

import (
	"context"
	"errors"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

const claimsPartitions = 24

// claimsTopic creates a topic of claimsPartitions partitions, partition p
// holding p%4 records, and returns it with a consumer of group (not
// subscribed: claiming asks it for watermarks and committed offsets only).
func claimsTopic(t *testing.T, group string) (string, *kafka.Consumer) {
	t.Helper()
	st := stacktest.New(t)
	ctx := context.Background()
	topic := st.TopicPrefix + ".claims"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, claimsPartitions); err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	delivered := make(chan kafka.Event, 4*claimsPartitions)
	sent := 0
	for p := range int32(claimsPartitions) {
		for range p % 4 {
			if err := producer.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p}, Value: []byte("v")}, delivered); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	for range sent {
		if m := (<-delivered).(*kafka.Message); m.TopicPartition.Error != nil {
			t.Fatal(m.TopicPartition.Error)
		}
	}
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": st.Env.KafkaBootstrap, "group.id": group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Close() })
	return topic, consumer
}

func claimsPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, "pgsink").Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestIntegrationClaimAssignment claims a whole assignment against the real
// Kafka and PostgreSQL: the partitions with a row get their epoch raised
// and keep their position, those without are created at their start
// (apply.start: latest, Kafka's high watermark), and a former owner holding
// an old epoch is fenced.
func TestIntegrationClaimAssignment(t *testing.T) {
	ctx := context.Background()
	const group = "g"
	topic, consumer := claimsTopic(t, group)
	pool := claimsPool(t)
	offsets := dedup.NewOffsets("pgsink")
	ids := make([]dedup.PartitionID, claimsPartitions)
	for p := range ids {
		ids[p] = dedup.PartitionID{Group: group, Topic: topic, Partition: int32(p)}
	}
	// Partitions 0-9 were owned before; partition 0 twice.
	var zombie dedup.Claim
	for p := range 10 {
		c, err := offsets.Claim(ctx, pool, ids[p], 0, "zombie")
		if err != nil {
			t.Fatal(err)
		}
		if p == 3 {
			zombie = c
		}
	}
	if _, err := offsets.Claim(ctx, pool, ids[0], 0, "zombie"); err != nil {
		t.Fatal(err)
	}

	c := claimer{start: config.StartLatest, owner: "new", store: storedPositions{offsets: offsets, db: pool, owner: "new"}, log: zap.NewNop(), firstWait: 0}
	got := c.claimAll(consumer, ids)
	for p, cl := range got {
		held := int64(p % 4)
		want := dedup.Claim{PartitionID: ids[p], Epoch: 1, NextOffset: held, Owner: "new"}
		switch {
		case p == 0:
			want.Epoch, want.NextOffset = 3, 0
		case p < 10:
			want.Epoch, want.NextOffset = 2, 0
		}
		if cl.err != nil || cl.claim != want || cl.low != 0 || cl.high != held {
			t.Fatalf("partition %d: %+v, %v; want %+v with watermarks [0, %d)", p, cl.claim, cl.err, want, held)
		}
		if stored, err := offsets.Read(ctx, pool, ids[p]); err != nil || stored != want {
			t.Fatalf("partition %d stored %+v, %v; want %+v", p, stored, err, want)
		}
	}
	var fenced *dedup.FencedError
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return offsets.Advance(ctx, tx, &zombie, 1) }); !errors.As(err, &fenced) || fenced.Owner != "new" {
		t.Fatalf("the former owner's write: %v; want a FencedError naming new", err)
	}
}

// TestIntegrationClaimAssignmentKafkaOffsets: under apply.offsets: kafka an
// assignment resumes from the group's committed offsets, one request for
// all, and partitions without one at their start; the offsets table is not
// touched.
func TestIntegrationClaimAssignmentKafkaOffsets(t *testing.T) {
	const group = "g-kafka"
	topic, consumer := claimsTopic(t, group)
	ids := make([]dedup.PartitionID, claimsPartitions)
	for p := range ids {
		ids[p] = dedup.PartitionID{Group: group, Topic: topic, Partition: int32(p)}
	}
	// The group committed offset 1 of partitions 1-3.
	var commits []kafka.TopicPartition
	for p := int32(1); p <= 3; p++ {
		commits = append(commits, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: 1})
	}
	if _, err := consumer.CommitOffsets(commits); err != nil {
		t.Fatal(err)
	}
	c := claimer{start: config.StartEarliest, kafkaOffsets: true, owner: "new", store: nil, log: zap.NewNop()}
	for p, cl := range c.claimAll(consumer, ids) {
		want := int64(0)
		if p >= 1 && p <= 3 {
			want = 1
		}
		if cl.err != nil || cl.claim.NextOffset != want || cl.claim.Epoch != 0 {
			t.Fatalf("partition %d: %+v, %v; want next offset %d", p, cl.claim, cl.err, want)
		}
	}
}
