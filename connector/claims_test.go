package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
)

// fakeOffsetsClient is the consumer as claiming sees it: partition p has
// the watermarks [10p, 10p+5); failing says how many more times a
// partition's watermark request fails (-1: always); committed are the
// group's committed offsets.
type fakeOffsetsClient struct {
	mu        sync.Mutex
	failing   map[int32]int
	committed map[int32]kafka.Offset
	// inFlight and most count the watermark requests running at once;
	// gate, when set, holds every request until it is closed.
	inFlight, most int
	gate           chan struct{}
	arrived        chan struct{}
	committedCalls int
}

func (f *fakeOffsetsClient) QueryWatermarkOffsets(_ string, p int32, _ int) (int64, int64, error) {
	f.mu.Lock()
	f.inFlight++
	f.most = max(f.most, f.inFlight)
	fail := f.failing[p]
	if fail > 0 {
		f.failing[p]--
	}
	f.mu.Unlock()
	if f.arrived != nil {
		f.arrived <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	if fail != 0 {
		return 0, 0, kafka.NewError(kafka.ErrTransport, "broker down", false)
	}
	return 10 * int64(p), 10*int64(p) + 5, nil
}

func (f *fakeOffsetsClient) Committed(tps []kafka.TopicPartition, _ int) ([]kafka.TopicPartition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.committedCalls++
	out := make([]kafka.TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = tp
		out[i].Offset = kafka.OffsetInvalid
		if o, ok := f.committed[tp.Partition]; ok {
			out[i].Offset = o
		}
	}
	return out, nil
}

// fakeBulkPositions is the offsets table as claiming sees it: each
// ClaimAll fails while fails lasts, and otherwise claims at the start,
// epoch 1 for a new partition and one more for a claimed one.
type fakeBulkPositions struct {
	mu     sync.Mutex
	fails  int // -1: always
	epochs map[dedup.PartitionID]int64
	calls  [][]dedup.Start
	// errs are what the next ClaimAlls fail with, one each, before fails
	// is looked at.
	errs []error
	// called, when set, is told of each call.
	called func(n int)
}

func (f *fakeBulkPositions) ClaimAll(_ context.Context, starts []dedup.Start) ([]dedup.Claim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, starts)
	if f.called != nil {
		f.called(len(f.calls))
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	if f.fails != 0 {
		f.fails--
		return nil, errors.New("connection refused")
	}
	if f.epochs == nil {
		f.epochs = map[dedup.PartitionID]int64{}
	}
	out := make([]dedup.Claim, len(starts))
	for i, s := range starts {
		f.epochs[s.PartitionID]++
		out[i] = dedup.Claim{PartitionID: s.PartitionID, Epoch: f.epochs[s.PartitionID], NextOffset: s.Offset, Owner: "me"}
	}
	return out, nil
}

func testClaimer(store bulkPositions) claimer {
	return claimer{start: config.StartEarliest, owner: "me", store: store, log: zap.NewNop(), firstWait: time.Millisecond}
}

func partitionIDs(n int) []dedup.PartitionID {
	ids := make([]dedup.PartitionID, n)
	for i := range ids {
		ids[i] = dedup.PartitionID{Group: "g", Topic: testTopic, Partition: int32(i)}
	}
	return ids
}

func TestClaimAllInOneStatement(t *testing.T) {
	for _, start := range []config.Start{config.StartEarliest, config.StartLatest} {
		t.Run(string(start), func(t *testing.T) {
			store := &fakeBulkPositions{}
			c := testClaimer(store)
			c.start = start
			ids := partitionIDs(40)
			got := c.claimAll(&fakeOffsetsClient{}, ids)
			if len(store.calls) != 1 || len(store.calls[0]) != len(ids) {
				t.Fatalf("want one claim of %d partitions, got %d calls", len(ids), len(store.calls))
			}
			for i, cl := range got {
				want := 10 * int64(i)
				if start == config.StartLatest {
					want += 5
				}
				if cl.err != nil || cl.id != ids[i] || cl.claim.PartitionID != ids[i] || cl.claim.NextOffset != want || cl.claim.Epoch != 1 ||
					cl.low != 10*int64(i) || cl.high != 10*int64(i)+5 {
					t.Fatalf("claim %d = %+v; want %s at %d, epoch 1, watermarks [%d, %d)", i, cl, ids[i], want, 10*i, 10*i+5)
				}
			}
		})
	}
}

func TestClaimAllWatermarksConcurrentlyAndBounded(t *testing.T) {
	// Every request is held until watermarkParallelism of them run at
	// once: claiming finishes only if they are concurrent.
	client := &fakeOffsetsClient{gate: make(chan struct{}), arrived: make(chan struct{}, 100)}
	done := make(chan []claimed)
	go func() { done <- testClaimer(&fakeBulkPositions{}).claimAll(client, partitionIDs(100)) }()
	for i := range watermarkParallelism {
		select {
		case <-client.arrived:
		case <-time.After(testWait):
			t.Fatalf("only %d watermark requests at once; want %d", i, watermarkParallelism)
		}
	}
	close(client.gate)
	var got []claimed
	select {
	case got = <-done:
	case <-time.After(testWait):
		t.Fatal("claiming did not finish")
	}
	if client.most != watermarkParallelism {
		t.Fatalf("at most %d watermark requests ran at once; want %d", client.most, watermarkParallelism)
	}
	for _, cl := range got {
		if cl.err != nil {
			t.Fatal(cl.err)
		}
	}
}

func TestClaimAllRetriesTheStatement(t *testing.T) {
	store := &fakeBulkPositions{fails: 2}
	got := testClaimer(store).claimAll(&fakeOffsetsClient{}, partitionIDs(3))
	if len(store.calls) != 3 {
		t.Fatalf("%d claim statements; want 3 (two failed)", len(store.calls))
	}
	for _, cl := range got {
		if cl.err != nil || cl.claim.Epoch != 1 {
			t.Fatalf("claim %+v; want epoch 1 after the retries", cl)
		}
	}
}

func TestClaimAllGivesUpAfterAttempts(t *testing.T) {
	store := &fakeBulkPositions{fails: -1}
	got := testClaimer(store).claimAll(&fakeOffsetsClient{}, partitionIDs(3))
	if len(store.calls) != claimAttempts {
		t.Fatalf("%d claim statements; want %d", len(store.calls), claimAttempts)
	}
	for _, cl := range got {
		if cl.err == nil || cl.claim != (dedup.Claim{}) {
			t.Fatalf("claim %+v; want no claim and the error", cl)
		}
	}
}

// A PostgreSQL restart refuses connections for seconds: the claim goes on
// retrying past claimAttempts while within claimFor.
func TestClaimAllRetriesForItsTime(t *testing.T) {
	store := &fakeBulkPositions{fails: claimAttempts + 3}
	c := testClaimer(store)
	c.claimFor = time.Minute
	got := c.claimAll(&fakeOffsetsClient{}, partitionIDs(2))
	if len(store.calls) != claimAttempts+4 {
		t.Fatalf("%d claim statements; want %d (every failure retried within claimFor)", len(store.calls), claimAttempts+4)
	}
	for _, cl := range got {
		if cl.err != nil || cl.claim.Epoch != 1 {
			t.Fatalf("claim %+v; want epoch 1 after the retries", cl)
		}
	}
}

func TestClaimAllRidesOutUnansweredWatermarks(t *testing.T) {
	store := &fakeBulkPositions{}
	// Partition 1's broker answers on the third try; partition 2's never.
	client := &fakeOffsetsClient{failing: map[int32]int{1: 2, 2: -1}}
	got := testClaimer(store).claimAll(client, partitionIDs(4))
	for _, i := range []int{0, 1, 3} {
		if got[i].err != nil || got[i].claim.NextOffset != 10*int64(i) {
			t.Fatalf("partition %d: %+v; want claimed at %d", i, got[i], 10*i)
		}
	}
	if got[2].err == nil {
		t.Fatal("partition 2, whose watermarks never came, was claimed")
	}
	if len(store.calls) != 1 || len(store.calls[0]) != 3 {
		t.Fatalf("claim statements %v; want one, of the 3 partitions with watermarks", store.calls)
	}
	for _, s := range store.calls[0] {
		if s.Partition == 2 {
			t.Fatal("partition 2 was claimed without its watermarks")
		}
	}
}

func TestClaimAllInChunks(t *testing.T) {
	store := &fakeBulkPositions{}
	n := 2*claimChunk + 7
	got := testClaimer(store).claimAll(&fakeOffsetsClient{}, partitionIDs(n))
	var sizes []int
	for _, c := range store.calls {
		sizes = append(sizes, len(c))
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{claimChunk, claimChunk, 7}) {
		t.Fatalf("claim statements of %v partitions; want %d, %d, 7", sizes, claimChunk, claimChunk)
	}
	for i, cl := range got {
		if cl.err != nil || cl.claim.Partition != int32(i) {
			t.Fatalf("claim %d = %+v", i, cl)
		}
	}
}

func TestClaimAllKafkaOffsets(t *testing.T) {
	store := &fakeBulkPositions{}
	c := testClaimer(store)
	c.kafkaOffsets = true
	client := &fakeOffsetsClient{committed: map[int32]kafka.Offset{1: 12}}
	got := c.claimAll(client, partitionIDs(3))
	if client.committedCalls != 1 {
		t.Fatalf("%d requests for committed offsets; want one for the assignment", client.committedCalls)
	}
	if len(store.calls) != 0 {
		t.Fatal("apply.offsets: kafka claimed in the offsets table")
	}
	for i, want := range []int64{0, 12, 20} { // 0 and 2 have none: their start
		if got[i].err != nil || got[i].claim.NextOffset != want || got[i].claim.Epoch != 0 || got[i].claim.Owner != "me" {
			t.Fatalf("partition %d: %+v; want next offset %d, no epoch", i, got[i], want)
		}
	}
}
