//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationStagingReset: a staging transaction checks the staging
// marker against the generation its partition synced to and records it;
// once the unlogged tables are emptied (as crash recovery does) the check
// fails with ErrStagingReset and nothing of the transaction commits, as
// does the resolver's check; SyncGeneration moves the generation on once
// however many partitions call it at the same time; a partition that staged
// under the old generation rewinds, through its claim's compare-and-set,
// to past its frontier, or to the lowest offset it staged when the
// resolver applied nothing of it yet.
func TestIntegrationStagingReset(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	offsets := dedup.NewOffsets(schema)
	const topic = `app "x"; DROP`
	applied := dedup.PartitionID{Group: "g", Topic: topic, Partition: 0} // the resolver applied some of it
	pending := dedup.PartitionID{Group: "g", Topic: topic, Partition: 1} // staged, nothing applied
	stage := func(id dedup.PartitionID, gen, first int64) error {
		t.Helper()
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		tx.QueueStagingCheck(b, id, gen, first)
		// Something the transaction writes after the check: it must not
		// commit when the check fails.
		tx.QueueApplied(b, "witness", []dedup.PartitionOffset{{Topic: id.Topic, Partition: id.Partition, Offset: first}})
		b.Queue("COMMIT")
		err := pool.SendBatch(ctx, b).Close()
		if err != nil {
			_, _ = pool.Exec(ctx, "ROLLBACK")
		}
		return err
	}
	gen, wasReset, err := tx.SyncGeneration(ctx, pool)
	if err != nil || gen != 1 || wasReset {
		t.Fatalf("SyncGeneration on a fresh schema = %d, %v, %v; want 1, no reset", gen, wasReset, err)
	}
	for _, s := range []struct {
		id    dedup.PartitionID
		first int64
	}{{applied, 20}, {applied, 10}, {pending, 40}, {pending, 35}, {pending, 50}} {
		if err := stage(s.id, gen, s.first); err != nil {
			t.Fatalf("staging %s from %d at generation %d: %v", s.id, s.first, gen, err)
		}
	}
	b := &pgx.Batch{}
	tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: topic, Partition: 0, Offset: 25}})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[dedup.PartitionID]dedup.PartitionStaging{
		applied:                        {Generation: 1, RewindTo: 26}, // its frontier + 1
		pending:                        {Generation: 1, RewindTo: 35}, // the lowest offset it staged
		{Group: "other", Topic: topic}: {},                            // never staged
	} {
		if got, err := tx.StagingOf(ctx, pool, id); err != nil || got != want {
			t.Errorf("StagingOf(%s) = %+v, %v; want %+v", id, got, err, want)
		}
	}

	// Crash recovery empties the unlogged tables.
	if _, err := pool.Exec(ctx, `TRUNCATE pgsink.tx_staged, pgsink.tx_staging_marker`); err != nil {
		t.Fatal(err)
	}
	if err := stage(applied, gen, 30); !errors.Is(err, dedup.ErrStagingReset) {
		t.Fatalf("staging after the reset at generation %d: %v; want ErrStagingReset", gen, err)
	}
	var witnessed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_frontier WHERE group_id = 'witness' AND kafka_offset = 30`).Scan(&witnessed); err != nil || witnessed != 0 {
		t.Errorf("a staging transaction that failed its check committed its writes (%d rows, %v)", witnessed, err)
	}
	for what, queue := range map[string]func(*pgx.Batch){
		"the resolver's check":                  tx.QueueMarkerCheck,
		"the check of a batch that stages none": func(b *pgx.Batch) { tx.QueueGenerationCheck(b, gen) },
	} {
		b = &pgx.Batch{}
		b.Queue("BEGIN")
		queue(b)
		b.Queue("COMMIT")
		if err := pool.SendBatch(ctx, b).Close(); !errors.Is(err, dedup.ErrStagingReset) {
			t.Errorf("%s after the reset: %v; want ErrStagingReset", what, err)
		}
		_, _ = pool.Exec(ctx, "ROLLBACK")
	}

	// Several partitions see the reset at once: one moves the generation.
	var wg sync.WaitGroup
	gens, resets := make([]int64, 8), make([]bool, 8)
	errs := make([]error, 8)
	for i := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gens[i], resets[i], errs[i] = tx.SyncGeneration(ctx, pool)
		}()
	}
	wg.Wait()
	moved := 0
	for i := range gens {
		if errs[i] != nil || gens[i] != 2 {
			t.Errorf("concurrent SyncGeneration %d = %d, %v; want generation 2", i, gens[i], errs[i])
		}
		if resets[i] {
			moved++
		}
	}
	if moved != 1 {
		t.Errorf("%d of 8 concurrent SyncGeneration moved the generation on; want exactly 1", moved)
	}
	if err := stage(pending, 1, 60); !errors.Is(err, dedup.ErrStagingReset) {
		t.Errorf("staging at the old generation after the sync: %v; want ErrStagingReset", err)
	}

	// The partition rewinds through its claim.
	claim, err := offsets.Claim(ctx, pool, applied, 0, "me")
	if err != nil {
		t.Fatal(err)
	}
	if err := offsets.Advance(ctx, pool, &claim, 31); err != nil {
		t.Fatal(err)
	}
	stale := claim
	stale.Epoch--
	if _, err := tx.RewindStaging(ctx, pool, &stale, 2, 26, nil); !errors.As(err, new(*dedup.FencedError)) {
		t.Errorf("RewindStaging with a superseded epoch: %v; want a FencedError", err)
	}
	if got, _ := tx.StagingOf(ctx, pool, applied); got.Generation != 1 {
		t.Errorf("a refused rewind recorded generation %d; want 1 still", got.Generation)
	}
	epoch := claim.Epoch
	if m, err := tx.RewindStaging(ctx, pool, &claim, 2, 26, nil); err != nil || !m || claim.NextOffset != 26 || claim.Epoch != epoch+1 {
		t.Fatalf("RewindStaging = %v, %v, claim at %d epoch %d; want moved to 26 under epoch %d", m, err, claim.NextOffset, claim.Epoch, epoch+1)
	}
	if stored, err := offsets.Read(ctx, pool, applied); err != nil || stored.NextOffset != 26 || stored.Epoch != claim.Epoch {
		t.Errorf("offsets row after the rewind = %+v, %v; want next offset 26 under epoch %d", stored, err, claim.Epoch)
	}
	if got, _ := tx.StagingOf(ctx, pool, applied); got.Generation != 2 {
		t.Errorf("generation after the rewind = %d; want 2", got.Generation)
	}
	// A partition whose position is below its rewind point only records
	// the generation.
	low, err := offsets.Claim(ctx, pool, pending, 30, "me")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := tx.RewindStaging(ctx, pool, &low, 2, 35, nil); err != nil || m || low.NextOffset != 30 {
		t.Errorf("RewindStaging below the rewind point = %v, %v, claim at %d; want unmoved at 30", m, err, low.NextOffset)
	}
	if err := stage(applied, 2, 26); err != nil {
		t.Errorf("staging at the new generation: %v", err)
	}
	b = &pgx.Batch{}
	tx.QueueGenerationCheck(b, 2)
	tx.QueueMarkerCheck(b)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Errorf("the checks at the new generation: %v", err)
	}
}

// TestIntegrationStagingRewindBelowItsPointIsFenced: a former owner whose
// stale claim is below the partition's rewind point records nothing. The
// partition's current owner staged past that point under the old
// generation, and those records are what the reset lost: had the former
// owner's sync recorded the new generation for the partition, the owner
// would find it synced and never stage them again (the resolver waiting for
// them until it stops).
func TestIntegrationStagingRewindBelowItsPointIsFenced(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	offsets := dedup.NewOffsets(schema)
	id := dedup.PartitionID{Group: "g", Topic: "app.public.t", Partition: 0}
	gen, _, err := tx.SyncGeneration(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	former, err := offsets.Claim(ctx, pool, id, 30, "former")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := offsets.Claim(ctx, pool, id, 30, "owner")
	if err != nil {
		t.Fatal(err)
	}
	// The owner stages offsets 40 to 59 (the former owner's claim still
	// says 30), and the reset loses them.
	gen, reset := stageThenReset(t, pool, &owner, gen)
	if !reset {
		t.Fatalf("SyncGeneration after the reset = %d, no reset; want a reset", gen)
	}
	st, err := tx.StagingOf(ctx, pool, id)
	if err != nil || st.Generation != gen-1 || st.RewindTo != 40 {
		t.Fatalf("StagingOf = %+v, %v; want generation %d, rewind to 40", st, err, gen-1)
	}
	if moved, err := tx.RewindStaging(ctx, pool, &former, gen, st.RewindTo, nil); !errors.As(err, new(*dedup.FencedError)) {
		t.Errorf("RewindStaging with the former owner's claim (at 30, below the rewind point 40) = %v, %v; want a FencedError", moved, err)
	}
	if got, err := tx.StagingOf(ctx, pool, id); err != nil || got.Generation != gen-1 {
		t.Fatalf("after the former owner's sync the partition is recorded at generation %d (%v); want %d still, so that its owner rewinds", got.Generation, err, gen-1)
	}
	if moved, err := tx.RewindStaging(ctx, pool, &owner, gen, st.RewindTo, nil); err != nil || !moved || owner.NextOffset != 40 {
		t.Errorf("the owner's RewindStaging = %v, %v, claim at %d; want moved to 40", moved, err, owner.NextOffset)
	}
}

// TestIntegrationStagingRewindRacesAClaim: a partition revoked while it
// rewinds. The next owner's claim waits for the rewind's transaction (the
// offsets row it locked) and resumes from the rewind point under an epoch
// above the rewind's, and finds the generation recorded: it neither reads
// from the position before the rewind nor rewinds again.
func TestIntegrationStagingRewindRacesAClaim(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	offsets := dedup.NewOffsets(schema)
	id := dedup.PartitionID{Group: "g", Topic: "app.public.t", Partition: 0}
	gen, _, err := tx.SyncGeneration(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := offsets.Claim(ctx, pool, id, 40, "owner")
	if err != nil {
		t.Fatal(err)
	}
	gen, _ = stageThenReset(t, pool, &owner, gen)
	inRewind, release := make(chan struct{}), make(chan struct{})
	claimed := make(chan dedup.Claim, 1)
	claimErr := make(chan error, 1)
	go func() {
		<-inRewind
		c, err := offsets.Claim(ctx, pool, id, 0, "next")
		claimed <- c
		claimErr <- err
	}()
	done := make(chan error, 1)
	go func() {
		_, err := tx.RewindStaging(ctx, pool, &owner, gen, 40, func(context.Context, pgx.Tx, int64, int64) error {
			close(inRewind)
			<-release
			return nil
		})
		done <- err
	}()
	select {
	case c := <-claimed:
		t.Fatalf("the next owner's claim did not wait for the rewind in progress: %+v, %v", c, <-claimErr)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("RewindStaging: %v", err)
	}
	next, err := <-claimed, <-claimErr
	if err != nil || next.NextOffset != 40 || next.Epoch != owner.Epoch+1 {
		t.Errorf("the next owner's claim = %+v, %v; want the rewind point 40 under epoch %d (above the rewind's %d)", next, err, owner.Epoch+1, owner.Epoch)
	}
	if st, err := tx.StagingOf(ctx, pool, id); err != nil || st.Generation != gen {
		t.Errorf("StagingOf after the rewind = %+v, %v; want generation %d recorded", st, err, gen)
	}
	if _, err := tx.RewindStaging(ctx, pool, &owner, gen, 40, nil); !errors.As(err, new(*dedup.FencedError)) {
		t.Errorf("the revoked owner's next rewind: %v; want a FencedError", err)
	}
}

// TestIntegrationStagingCrashFollowsPersistence: what crash recovery does
// to the staging, emptying exactly the schema's unlogged tables, is a reset
// in unlogged mode and none in logged mode, where tx_staged keeps every
// row and the marker, altered with it, keeps its generation: no partition
// rewinds for a crash that lost nothing.
func TestIntegrationStagingCrashFollowsPersistence(t *testing.T) {
	for _, unlogged := range []bool{false, true} {
		t.Run(map[bool]string{false: "logged", true: "unlogged"}[unlogged], func(t *testing.T) {
			ctx := context.Background()
			pool := migrated(t)
			tx := dedup.NewTransactions(schema)
			if err := tx.SetStagingPersistence(ctx, pool, unlogged, "5s"); err != nil {
				t.Fatal(err)
			}
			if p, err := tx.StagingPersistence(ctx, pool); err != nil || p.StagedUnlogged != unlogged || p.MarkerUnlogged != unlogged {
				t.Errorf("persistence after SetStagingPersistence(unlogged %v) = %+v, %v; want tx_staged and the marker both so", unlogged, p, err)
			}
			gen, _, err := tx.SyncGeneration(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			id := dedup.PartitionID{Group: "g", Topic: "app.public.t", Partition: 0}
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			tx.QueueStagingCheck(b, id, gen, 10)
			if _, err := tx.QueueStage(b, "g", []dedup.StagedRecord{{TxID: 1, TotalOrder: 1, DataCollection: "public.t", Topic: id.Topic, Offset: 10}}, nil); err != nil {
				t.Fatal(err)
			}
			b.Queue("COMMIT")
			if err := pool.SendBatch(ctx, b).Close(); err != nil {
				t.Fatal(err)
			}

			// Crash recovery resets every unlogged relation to its empty
			// init fork; the logged ones keep their rows.
			var emptied []string
			if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY c.relname), '{}')
				FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relpersistence = 'u'`, schema).Scan(&emptied); err != nil {
				t.Fatal(err)
			}
			if len(emptied) > 0 {
				if _, err := pool.Exec(ctx, `TRUNCATE `+strings.Join(emptied, ", ")); err != nil {
					t.Fatal(err)
				}
			}
			var staged int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil {
				t.Fatal(err)
			}
			after, reset, err := tx.SyncGeneration(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tx.StagingOf(ctx, pool, id)
			if err != nil {
				t.Fatal(err)
			}
			rewinds := st.Generation < after
			if unlogged {
				if staged != 0 || !reset || !rewinds {
					t.Errorf("unlogged, after the crash (emptied %v): %d rows staged, reset %v, partition at generation %d of %d; want the rows gone, a reset and the partition rewinding",
						emptied, staged, reset, st.Generation, after)
				}
				return
			}
			if staged != 1 || reset || rewinds || len(emptied) > 0 {
				t.Errorf("logged, after the crash (emptied %v): %d rows staged, reset %v, partition at generation %d of %d; want the row kept, no reset and no rewind",
					emptied, staged, reset, st.Generation, after)
			}
		})
	}
}

// TestIntegrationMigration14Down: migration 0014's down makes the marker
// unlogged again, as a pgsink that knows only 0013 needs it whatever
// tx_staged is (it alters tx_staged alone), and keeps the generation.
func TestIntegrationMigration14Down(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	m := dedup.NewMigrator(url, schema)
	if err := m.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tx := dedup.NewTransactions(schema)
	if err := tx.SetStagingPersistence(ctx, pool, false, "5s"); err != nil {
		t.Fatal(err)
	}
	if err := m.UpTo(ctx, 13); err != nil {
		t.Fatal(err)
	}
	if p, err := tx.StagingPersistence(ctx, pool); err != nil || p.StagedUnlogged || !p.MarkerUnlogged {
		t.Fatalf("after migrating down to 13 = %+v, %v; want tx_staged logged and the marker unlogged", p, err)
	}
	if gen, reset, err := tx.SyncGeneration(ctx, pool); err != nil || reset || gen != 1 {
		t.Fatalf("SyncGeneration after migrating down to 13 = %d, %v, %v; want generation 1, no reset", gen, reset, err)
	}
}

// TestIntegrationMigration14KeepsStaging: migration 0014 runs on a live
// fleet (a rolling upgrade) beside a resolver's long apply, which reads
// the marker and deletes from tx_staged, and stagers: it must not queue
// behind them (its comments take no lock they hold a conflicting one of).
func TestIntegrationMigration14KeepsStaging(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	m := dedup.NewMigrator(url, schema)
	if err := m.UpTo(ctx, 13); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	apply, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer apply.Rollback(ctx)
	for _, stmt := range []string{
		`SELECT count(*) FROM pgsink.tx_staging_marker m JOIN pgsink.tx_staging_generation g USING (generation)`,
		`INSERT INTO pgsink.tx_staged (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset) VALUES ('g', 1, 1, 'public.t', 't', 0, 1)`,
		`DELETE FROM pgsink.tx_staged WHERE group_id = 'g'`,
		`UPDATE pgsink.tx_staging_marker SET generation = generation`,
	} {
		if _, err := apply.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	migrated := make(chan error, 1)
	go func() { migrated <- m.UpTo(ctx, 14) }()
	select {
	case err := <-migrated:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		// Let it finish before the database is dropped.
		_ = apply.Rollback(ctx)
		<-migrated
		t.Fatal("migration 0014 waited 15 s for an open transaction that reads the marker and writes tx_staged; want it done without waiting for it")
	}
}

// stageThenReset stages offsets 40 to 59 under owner's claim (its position
// moved to 60, the staging check recording gen and 40 as the first offset
// staged), then empties the unlogged tables as crash recovery does and
// syncs the generation: it returns the generation after and whether the
// sync saw a reset.
func stageThenReset(t *testing.T, pool *pgxpool.Pool, owner *dedup.Claim, gen int64) (int64, bool) {
	t.Helper()
	ctx := context.Background()
	tx := dedup.NewTransactions(schema)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if err := dedup.NewOffsets(schema).QueueAdvance(b, *owner, 60, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tx.QueueStagingCheck(b, owner.PartitionID, gen, 40)
	b.Queue("COMMIT")
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	owner.NextOffset = 60
	if _, err := pool.Exec(ctx, `TRUNCATE pgsink.tx_staged, pgsink.tx_staging_marker`); err != nil {
		t.Fatal(err)
	}
	gen, reset, err := tx.SyncGeneration(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return gen, reset
}
