package connector

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// A stopped partition takes a replay's rewind while its instance runs
// (park): `pgsink replay` is the operator's fix for what stopped it, and
// a restart is not needed for it.

// testLook is how often the stopped partitions of these tests look at
// their row (idleCheck in production).
const testLook = 5 * time.Millisecond

// looking shortens a worker's looks at its row while stopped.
func looking(d *workerDeps) { d.stoppedLook = testLook }

// stopKind is a way a partition stops: stop returns a worker at offset 5
// under epoch 1 stopped so, built with set.
type stopKind struct {
	name string
	stop func(t *testing.T, set ...func(*workerDeps)) *worker
}

var stopKinds = []stopKind{
	{"poison record under errors.tolerance none", func(t *testing.T, set ...func(*workerDeps)) *worker {
		poison := &sink.PoisonError{Topic: testTopic, Offset: 5, Err: errors.New("value too long")}
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 5, newFakeApplier(applyResult{err: poison}), set...)
		w.queue(0, 5, "a", "b")
		w.start()
		next(t, w.applies.calls, "apply")
		next(t, w.poll.stops, "stop report")
		return w
	}},
	{"hole while running", func(t *testing.T, set ...func(*workerDeps)) *worker {
		a := newFakeApplier()
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 5, a, append(set, func(d *workerDeps) { d.applier = advancingApplier{a} })...)
		w.queueHole(0, 100)
		w.start()
		next(t, w.poll.stops, "stop report")
		return w
	}},
	{"stopped at its claim", func(t *testing.T, set ...func(*workerDeps)) *worker {
		// As begin stops it: before its worker ever ran.
		w := newWorker(t, batchOf(2, 1<<20, time.Minute), 5, newFakeApplier(), set...)
		w.fail("the stored offset is outside what Kafka holds", errors.New("stored next offset 5, Kafka has [100, 120)"))
		w.started = true
		go w.parked()
		next(t, w.poll.stops, "stop report")
		return w
	}},
}

// replayRow is the row `pgsink replay --from offset:3` leaves: a new epoch
// under a replay's owner.
var replayRow = dedup.Claim{Epoch: 2, NextOffset: 3, Owner: dedup.ReplayOwnerPrefix + "ops:1"}

// A stopped partition whose row a replay rewound re-claims it under a new
// epoch, seeks to the stored position, clears its stop (the gauge, and
// the poll loop's registry behind /readyz) and applies again from there.
func TestStoppedPartitionTakesAReplaysRewind(t *testing.T) {
	for _, kind := range stopKinds {
		t.Run(kind.name, func(t *testing.T) {
			w := kind.stop(t, looking)
			if !w.stopped.Load() || value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 1 {
				t.Fatal("partition not stopped")
			}
			w.store.awaitReads(t, 1) // a look at the unchanged row first
			none(t, w.store.claims, "claim before the rewind")
			w.store.set(replayRow, dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 3, Owner: "me"}, nil)
			next(t, w.store.claims, "re-claim")
			if start := next(t, w.poll.seeks, "seek"); start != 3 {
				t.Errorf("seek to %d, want the rewound position 3", start)
			}
			next(t, w.poll.resumes, "resume report to the poll loop")
			if w.stopped.Load() || value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 0 {
				t.Error("partition still marked stopped after the rewind")
			}
			// The poll loop seeks; the records come again from offset 3.
			w.gen.Add(1)
			w.seeking.Store(false)
			w.queue(1, 3, "c", "d")
			got := next(t, w.applies.calls, "apply after the rewind")
			if got.epoch != 3 || !slices.Equal(got.offsets, []int64{3, 4}) {
				t.Errorf("applied %v under epoch %d, want [3 4] under the new epoch 3", got.offsets, got.epoch)
			}
			if c := next(t, w.poll.commits, "commit report"); c != 5 {
				t.Errorf("reported the commit up to %d, want 5", c)
			}
			none(t, w.poll.fatals, "fatal error")
		})
	}
}

// Nothing but a replay's rewind clears a stop (I5): a stopped partition
// whose row is unchanged, or claimed by another instance (the group moves
// the partition there), stays stopped with its offset unmoved and applies
// nothing; a row it cannot read is read again at the next look; under
// apply.offsets: kafka there is no row to look at.
func TestStoppedPartitionStaysStoppedWithoutARewind(t *testing.T) {
	for _, kind := range stopKinds {
		for _, tc := range []struct {
			name         string
			stored       dedup.Claim
			readErr      error
			kafkaOffsets bool
		}{
			{name: "row unchanged", stored: dedup.Claim{Epoch: 1, NextOffset: 5, Owner: "me"}},
			{name: "another instance's claim", stored: dedup.Claim{Epoch: 2, NextOffset: 5, Owner: "other:1"}},
			{name: "a replay's owner without a new epoch", stored: dedup.Claim{Epoch: 1, NextOffset: 3, Owner: dedup.ReplayOwnerPrefix + "ops:1"}},
			{name: "row unreadable", readErr: errors.New("permission denied for table offsets")},
			{name: "apply.offsets kafka", stored: replayRow, kafkaOffsets: true},
		} {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				w := kind.stop(t, looking, func(d *workerDeps) { d.kafkaOffsets = tc.kafkaOffsets })
				w.store.set(tc.stored, dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 3, Owner: "me"}, tc.readErr)
				if tc.kafkaOffsets {
					time.Sleep(20 * testLook)
					w.store.mu.Lock()
					reads := w.store.reads
					w.store.mu.Unlock()
					if reads > 0 {
						t.Errorf("%d reads of the offsets row under apply.offsets kafka, want none", reads)
					}
				} else {
					w.store.awaitReads(t, 3)
				}
				w.queue(0, 7, "c")
				w.awaitReleased(t)
				none(t, w.store.claims, "claim")
				none(t, w.poll.seeks, "seek")
				none(t, w.poll.resumes, "resume report")
				none(t, w.poll.commits, "commit report")
				if !w.stopped.Load() || value(w.metrics.Stopped.WithLabelValues(testTopic, "0")) != 1 {
					t.Error("partition no longer marked stopped")
				}
				if tc.readErr == nil {
					return
				}
				// A failed read is no verdict: the next look takes the
				// rewind.
				w.store.set(replayRow, dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 3, Owner: "me"}, nil)
				next(t, w.store.claims, "re-claim once the row reads")
				if start := next(t, w.poll.seeks, "seek"); start != 3 {
					t.Errorf("seek to %d, want 3", start)
				}
			})
		}
	}
}

// storedOutside claims every partition at a position past what the fake
// consumer's Kafka holds (a topic recreated, or a restore from a backup
// taken after records Kafka lost).
type storedOutside struct{ next int64 }

func (s storedOutside) ClaimAll(_ context.Context, starts []dedup.Start) ([]dedup.Claim, error) {
	out := make([]dedup.Claim, len(starts))
	for i, st := range starts {
		out[i] = dedup.Claim{PartitionID: st.PartitionID, Epoch: 1, NextOffset: s.next, Owner: "me"}
	}
	return out, nil
}

// A partition stopped at its claim was assigned paused and has no worker
// running: the replay's rewind starts its worker, and the poll loop
// resumes the partition with the seek to the rewound position, not
// before, and no other partition with it. Its stop leaves the registry
// behind /readyz.
func TestPartitionStoppedAtItsClaimResumedByAReplay(t *testing.T) {
	r, c := awaitingRunner(storedOutside{next: 20})
	positions := &fakePositions{claims: make(chan int64, 16)}
	applies := newFakeApplier()
	r.deps.positions, r.deps.applier, r.deps.batch = positions, applies, batchOf(1, 1<<20, time.Minute)
	r.deps.stoppedLook = testLook
	id := partitionIDs(1)[0]
	r.await(id, time.Now())
	r.claimAwaiting(c, later())
	p := r.workers[id]
	if p == nil || !p.stopped.Load() || !p.pausedAtClaim || r.stops.err() == nil {
		t.Fatalf("partition %v not stopped at its claim (stops: %v)", p, r.stops.err())
	}
	if got := value(r.metrics.Stopped.WithLabelValues(testTopic, "0")); got != 1 {
		t.Fatalf("pgsink_partition_stopped = %v, want 1", got)
	}
	positions.set(dedup.Claim{PartitionID: id, Epoch: 1, NextOffset: 20, Owner: "me"}, dedup.Claim{}, nil)
	positions.awaitReads(t, 1)
	r.service()
	if got := c.noted(&c.resumed); len(c.seeks) != 0 || len(got) != 0 {
		t.Fatalf("seeks %v, resumed %v before any rewind; want none", c.seeks, got)
	}

	positions.set(replayRow, dedup.Claim{PartitionID: id, Epoch: 3, NextOffset: 3, Owner: "me"}, nil)
	next(t, positions.claims, "re-claim")
	deadline := time.Now().Add(testWait)
	for {
		r.service()
		c.mu.Lock()
		sought := len(c.seeks)
		c.mu.Unlock()
		if sought > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no seek after the re-claim")
		}
		time.Sleep(time.Millisecond)
	}
	if s := c.seeks[0]; s.Offset != 3 || s.Partition != 0 {
		t.Errorf("seek %v, want partition 0 at the rewound position 3", s)
	}
	if got := c.noted(&c.resumed); !slices.Equal(got, []int32{0}) {
		t.Errorf("resumed %v, want partition 0 once, with its seek", got)
	}
	if p.pausedAtClaim || r.stops.err() != nil || value(r.metrics.Stopped.WithLabelValues(testTopic, "0")) != 0 {
		t.Errorf("still stopped after the rewind: pausedAtClaim %v, stops %v, gauge %v", p.pausedAtClaim, r.stops.err(),
			value(r.metrics.Stopped.WithLabelValues(testTopic, "0")))
	}
	// The worker now runs: what is fetched from the rewound position is
	// applied under the new epoch.
	r.dispatch(message(3, "c"))
	got := next(t, applies.calls, "apply after the rewind")
	if got.epoch != 3 || !slices.Equal(got.offsets, []int64{3}) {
		t.Errorf("applied %v under epoch %d, want [3] under the new epoch 3", got.offsets, got.epoch)
	}
	r.service()
	if got := c.noted(&c.resumed); len(got) != 1 {
		t.Errorf("resumed %v, want the one resume of the re-claim", got)
	}
	r.revoke([]kafka.TopicPartition{tpOf(0)}, false)
	if err := r.fatalErr(); err != nil {
		t.Errorf("fatal error: %v", err)
	}
}

// A partition whose fetcher stopped on offset out of range (a hole, or a
// position outside Kafka at its claim) cannot be sought: the client
// answers ErrState. The seek of its re-claim after a replay's rewind
// assigns it again at the rewound position, resumed; any other refusal
// stops the instance as before.
func TestSeekOfAStoppedFetcherAssignsThePartitionAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		reassign bool
	}{
		{"fetcher stopped", kafka.NewError(kafka.ErrState, "Local: Erroneous state", false), true},
		{"another refusal", kafka.NewError(kafka.ErrUnknownPartition, "Local: Unknown partition", false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c := newTestRunner(1 << 20)
			p := r.own(0, 8)
			p.pausedAtClaim = true
			c.seekErrs = []error{tc.err}
			p.seeking.Store(true)
			r.requestSeek(p, 7)
			r.service()
			if got := r.fatalErr() != nil; got == tc.reassign {
				t.Fatalf("fatal error %v, want one: %v", r.fatalErr(), !tc.reassign)
			}
			if p.seeking.Load() || p.gen.Load() != 1 {
				t.Errorf("seeking %v, generation %d after the seek; want false and 1", p.seeking.Load(), p.gen.Load())
			}
			if !tc.reassign {
				if len(c.assigned) != 0 || len(c.unassigned) != 0 {
					t.Errorf("assigned %v, unassigned %v after a refusal that stops the instance; want none", c.assigned, c.unassigned)
				}
				return
			}
			if !slices.Equal(c.noted(&c.unassigned), []int32{0}) || len(c.assigned) != 1 ||
				c.assigned[0].Partition != 0 || c.assigned[0].Offset != 7 {
				t.Errorf("unassigned %v, assigned %v; want partition 0 unassigned and assigned again at offset 7", c.unassigned, c.assigned)
			}
			if got := c.resumes(); !slices.Equal(got, []int32{0}) || p.pausedAtClaim || p.paused {
				t.Errorf("resumed %v (pausedAtClaim %v, paused %v); want partition 0 resumed once", got, p.pausedAtClaim, p.paused)
			}
		})
	}
}

// Under apply.consistency: transaction a data partition that was stopped
// did not follow the staging generation meanwhile: un-stopped by a
// replay, it syncs before it stages again, as at a claim, rather than
// have its first staging transaction fail the marker check.
func TestStoppedDataPartitionSyncsStagingOnTheRewind(t *testing.T) {
	r := newMemResets(newMemStaging())
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), looking, func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.resets = r, r.m, 1<<20, r
	})
	w.queue(0, 0, "unroutable")
	w.start()
	next(t, w.poll.stops, "stop report")
	r.crash() // the target restarted while the partition was stopped
	r.mu.Lock()
	syncs := r.syncs
	r.mu.Unlock()
	w.store.set(dedup.Claim{Epoch: 2, NextOffset: 0, Owner: dedup.ReplayOwnerPrefix + "ops:1"}, dedup.Claim{PartitionID: w.id, Epoch: 3, NextOffset: 0, Owner: "me"}, nil)
	next(t, w.store.claims, "re-claim")
	if start := next(t, w.poll.seeks, "seek"); start != 0 {
		t.Fatalf("seek to %d, want 0", start)
	}
	w.gen.Add(1)
	w.seeking.Store(false)
	w.queue(1, 0, "tx:0", "tx:1")
	// Without the sync its staging transaction fails the marker check,
	// and the partition seeks again: nothing comes.
	if got := next(t, r.m.calls, "staging after the rewind"); !slices.Equal(got.offsets, []int64{0, 1}) {
		t.Errorf("staged %v, want [0 1]", got.offsets)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.syncs == syncs || r.stagingFails != 0 || r.gen != 2 {
		t.Errorf("syncs %d (before the rewind %d), staging transactions that failed the marker check %d, generation %d; want a sync, no failure, generation 2",
			r.syncs, syncs, r.stagingFails, r.gen)
	}
}
