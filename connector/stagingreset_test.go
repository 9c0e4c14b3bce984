package connector

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// memResets is the staging generation as dedup keeps it, for one data
// partition: the generation, the unlogged marker (0 once a crash emptied
// it), the generation the partition last staged under and its rewind point.
type memResets struct {
	mu                  sync.Mutex
	gen, marker, parts  int64
	rewindTo            int64
	rewinds             chan int64
	m                   *memStaging
	syncs, stagingFails int
	// syncErrs are what the next Syncs fail with, in order.
	syncErrs []error
	// store, when set, is the offsets row a Rewind compares its claim's
	// epoch with (a *dedup.FencedError when it differs) and moves; with
	// lostCommit, the next Rewind that moves commits and fails as a
	// COMMIT without answer does.
	store      *fakePositions
	lostCommit bool
}

func newMemResets(m *memStaging) *memResets {
	return &memResets{gen: 1, marker: 1, rewinds: make(chan int64, 16), m: m}
}

func (r *memResets) Sync(context.Context) (int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	if len(r.syncErrs) > 0 {
		err := r.syncErrs[0]
		r.syncErrs = r.syncErrs[1:]
		return 0, false, err
	}
	if r.marker == r.gen {
		return r.gen, false, nil
	}
	r.gen++
	r.marker = r.gen
	return r.gen, true, nil
}

func (r *memResets) StagingOf(context.Context, dedup.PartitionID) (dedup.PartitionStaging, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return dedup.PartitionStaging{Generation: r.parts, RewindTo: r.rewindTo}, nil
}

func (r *memResets) Rewind(_ context.Context, c *dedup.Claim, gen, to int64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		r.store.mu.Lock()
		defer r.store.mu.Unlock()
		if stored := r.store.stored; stored.Epoch != c.Epoch {
			return false, &dedup.FencedError{Partition: c.PartitionID, Epoch: c.Epoch, Current: stored.Epoch, Owner: stored.Owner}
		}
	}
	r.parts = gen
	moved := to < c.NextOffset
	r.rewinds <- to
	if !moved {
		return false, nil
	}
	if r.store != nil {
		r.store.stored = dedup.Claim{PartitionID: c.PartitionID, Epoch: c.Epoch + 1, NextOffset: to, Owner: c.Owner}
		if r.lostCommit {
			r.lostCommit = false
			return false, targetDown
		}
	}
	c.NextOffset, c.Epoch = to, c.Epoch+1
	return true, nil
}

// awaitSyncs waits until the partition checked the staging generation n
// times.
func (r *memResets) awaitSyncs(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Duration(n)*idleCheck + testWait)
	for {
		r.mu.Lock()
		syncs := r.syncs
		r.mu.Unlock()
		if syncs >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d staging generation checks; want %d: one at the start, then one at each idle check", syncs, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crash empties the unlogged tables: the marker and what was staged.
func (r *memResets) crash() {
	r.mu.Lock()
	r.marker = 0
	r.mu.Unlock()
	r.m.mu.Lock()
	r.m.staged = nil
	r.m.mu.Unlock()
}

// Apply stages as memStaging does behind the marker check of
// dedup.QueueStagingCheck (QueueGenerationCheck for a batch that stages
// nothing).
func (r *memResets) Apply(ctx context.Context, b *sink.Batch) (sink.Stats, error) {
	if r.store != nil {
		r.store.mu.Lock()
		stored := r.store.stored
		r.store.mu.Unlock()
		if stored.Epoch != b.Claim.Epoch {
			return sink.Stats{}, &dedup.FencedError{Partition: b.Claim.PartitionID, Epoch: b.Claim.Epoch, Current: stored.Epoch, Owner: stored.Owner}
		}
	}
	r.mu.Lock()
	if b.StagingGeneration == 0 || b.StagingGeneration != r.marker {
		r.stagingFails++
		r.mu.Unlock()
		return sink.Stats{}, dedup.ErrStagingReset
	}
	if sink.Stages(b.Items) {
		r.parts = b.StagingGeneration
	}
	r.mu.Unlock()
	return r.m.Apply(ctx, b)
}

func resetWorker(t *testing.T, r *memResets) *worker {
	t.Helper()
	return newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.resets = r, r.m, 1<<20, r
	})
}

// stagedResetWorker is a resetWorker started on two records of a source
// transaction, returned once it staged them; a reset rewinds it to
// rewindTo.
func stagedResetWorker(t *testing.T, rewindTo int64) (*memResets, *worker) {
	t.Helper()
	r := newMemResets(newMemStaging())
	r.rewindTo = rewindTo
	w := resetWorker(t, r)
	w.queue(0, 0, "tx:0", "tx:1")
	w.start()
	next(t, r.m.calls, "staging")
	return r, w
}

// TestStagingResetRewinds: a data partition whose staged records a crash
// emptied rewinds to its rewind point through its claim, whether it finds
// out staging (its transaction fails the marker check) or idle (it would
// never stage again otherwise, and the resolver would wait for ever). Its
// staging account is counted anew.
func TestStagingResetRewinds(t *testing.T) {
	t.Run("found staging", func(t *testing.T) {
		r, w := stagedResetWorker(t, 0)
		if got := next(t, w.poll.commits, "the first batch's commit"); got != 2 {
			t.Fatalf("committed up to %d, want 2", got)
		}
		r.crash()
		w.queue(0, 2, "tx:2", "tx:3")
		if got := next(t, r.rewinds, "a rewind"); got != 0 {
			t.Fatalf("rewound to %d, want 0 (nothing of the partition applied)", got)
		}
		for seek := range 2 {
			if got := next(t, w.poll.seeks, "a seek"); got != []int64{2, 0}[seek] {
				t.Fatalf("seek %d to %d, want %d (the failed batch's start, then the rewind)", seek, got, []int64{2, 0}[seek])
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.stagingFails != 1 || r.gen != 2 || r.parts != 2 {
			t.Errorf("%d staging transactions failed the check, generation %d, the partition's %d; want 1, 2, 2", r.stagingFails, r.gen, r.parts)
		}
	})
	t.Run("found busy with records that stage nothing", func(t *testing.T) {
		// An incremental snapshot's rows carry no transaction block: the
		// partition stages nothing and is never idle, and must still
		// rewind for what it staged before the crash.
		r, w := stagedResetWorker(t, 0)
		r.crash()
		w.queue(0, 2, "a", "b")
		if got := next(t, r.rewinds, "a rewind"); got != 0 {
			t.Fatalf("rewound to %d, want 0", got)
		}
	})
	t.Run("found idle", func(t *testing.T) {
		r, w := stagedResetWorker(t, 1) // the resolver applied offset 0
		r.crash()
		select {
		case got := <-r.rewinds:
			if got != 1 {
				t.Fatalf("rewound to %d, want 1 (its frontier + 1)", got)
			}
		case <-time.After(3 * idleCheck):
			t.Fatal("an idle partition whose staged records were lost never rewound")
		}
		w.stop()
		if fresh := len(w.staging.batches) == 0 && !w.staging.loaded; w.claim.NextOffset != 1 || w.claim.Epoch != 2 || !fresh {
			t.Errorf("after the rewind: claim at %d epoch %d, staging account counted anew %v; want 1, 2, true", w.claim.NextOffset, w.claim.Epoch, fresh)
		}
	})
	t.Run("no reset, no rewind", func(t *testing.T) {
		r, _ := stagedResetWorker(t, 0)
		// The third sync is the second idle check's: the first idle
		// check, and any rewind it made, is done by then. Waited for, not
		// slept for: a loaded machine runs an idle check late.
		r.awaitSyncs(t, 3)
		none(t, r.rewinds, "a rewind without a reset")
	})
}

// A partition that must sync before it stages again while the target is
// down (its restart emptied the marker) waits for it as every look at a
// target that is down does: counted in pgsink_apply_unavailable_retries_total
// and warned about by the instance's reporter, not once per attempt; then
// it syncs and rewinds.
func TestStagingSyncWaitsOutAnUnavailableTarget(t *testing.T) {
	r := newMemResets(newMemStaging())
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 2, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.resets = r, r.m, 1<<20, r
		withOutage(d)
	})
	r.parts, r.marker = 1, 0 // staged under generation 1, then the target crashed
	r.syncErrs = repeated(targetDown, 3)
	if err := w.awaitStagingSync(); err != nil {
		t.Fatalf("awaitStagingSync: %v", err)
	}
	if n := value(w.metrics.UnavailableRetries); n != 3 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v, want 3", n)
	}
	if got := next(t, r.rewinds, "a rewind once the target is back"); got != 0 {
		t.Errorf("rewound to %d, want 0", got)
	}
	if w.stagingGen != 2 || w.stagingStale {
		t.Errorf("synced to generation %d (stale %v), want 2", w.stagingGen, w.stagingStale)
	}
}

// TestIdleStagingSyncTellsItsFailure: an idle partition whose sync fails
// says so (a target that is down through the instance's reporter, any
// other error as a warning) and syncs before it stages again; before, the
// idle path dropped the error, and a partition that could not sync (a role
// without privileges on the staging generation's tables) logged nothing
// for as long as it stayed idle.
func TestIdleStagingSyncTellsItsFailure(t *testing.T) {
	r := newMemResets(newMemStaging())
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 2, newFakeApplier(), func(d *workerDeps) {
		d.applier, d.frontier, d.maxStaged, d.resets = r, r.m, 1<<20, r
		withOutage(d)
	})
	core, logs := observer.New(zapcore.WarnLevel)
	w.log = zap.New(core)
	denied := &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table tx_staging_generation"}
	r.syncErrs = []error{denied, targetDown}
	for range 2 {
		if err := w.idleStagingSync(); err != nil {
			t.Fatalf("idleStagingSync: %v", err)
		}
		if !w.stagingStale {
			t.Fatal("a partition whose idle sync failed is not marked to sync before it stages")
		}
	}
	if n := logs.FilterMessageSnippet("staging generation").FilterField(zap.Error(denied)).Len(); n != 1 {
		t.Errorf("%d warnings about the failed sync (permission denied); want 1; logged: %v", n, logs.All())
	}
	if n := value(w.metrics.UnavailableRetries); n != 1 {
		t.Errorf("pgsink_apply_unavailable_retries_total = %v after an idle sync met a target that is down; want 1", n)
	}
}

// TestStagingRewindCommitWithoutAnswer: a rewind whose COMMIT went
// unanswered (the target crashing again) and took effect raised the
// partition's epoch under the worker's feet. The worker takes it as its
// own rewind once it can read the row, instead of as another instance's
// claim: before, it warned that another instance had the partition,
// counted a fenced batch, and stood still for fence_grace before claiming
// it back.
func TestStagingRewindCommitWithoutAnswer(t *testing.T) {
	for _, found := range []string{"idle", "by a batch"} {
		t.Run("found "+found, func(t *testing.T) {
			r := newMemResets(newMemStaging())
			w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
				d.applier, d.frontier, d.maxStaged, d.resets = r, r.m, 1<<20, r
				withOutage(d)
			})
			r.store = w.store
			w.queue(0, 0, "tx:0", "tx:1")
			w.start()
			next(t, r.m.calls, "staging")
			if got := next(t, w.poll.commits, "the first batch's commit"); got != 2 {
				t.Fatalf("committed up to %d, want 2", got)
			}
			r.mu.Lock()
			r.lostCommit = true
			r.mu.Unlock()
			r.crash()
			if got := next(t, r.rewinds, "a rewind"); got != 0 {
				t.Fatalf("rewound to %d, want 0", got)
			}
			if found == "by a batch" {
				// Records come before the next idle check: the batch's
				// compare-and-set meets the rewind's epoch.
				w.queue(0, 2, "tx:2")
			}
			select {
			case got := <-w.poll.seeks:
				if got != 0 {
					t.Fatalf("seek to %d, want 0 (the rewind's point)", got)
				}
			case <-time.After(3 * idleCheck):
				t.Fatal("the partition never took its rewind whose COMMIT went unanswered")
			}
			// The poll loop seeks and fetches from there.
			w.gen.Add(1)
			w.seeking.Store(false)
			w.queue(1, 0, "tx:0")
			if got := next(t, w.poll.commits, "a commit after the rewind"); got != 1 {
				t.Errorf("committed up to %d after the rewind, want 1", got)
			}
			w.stop()
			if n := value(w.metrics.Fenced); n != 0 || w.fenced {
				t.Errorf("pgsink_fenced_batches_total = %v, fenced %v: the worker took its own rewind for another instance's claim", n, w.fenced)
			}
			if w.claim.Epoch != 2 || w.claim.NextOffset != 1 {
				t.Errorf("claim at %d epoch %d, want 1 epoch 2", w.claim.NextOffset, w.claim.Epoch)
			}
		})
	}
}
