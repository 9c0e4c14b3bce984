//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

const schema = "pgsink"

// migrated returns a pool on a fresh target database with pgsink's tables.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, schema).Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestIntegrationMigrations(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	m := dedup.NewMigrator(url, "My Schema; DROP")
	if v, dirty, err := m.Version(ctx); err != nil || v != 0 || dirty {
		t.Fatalf("Version() before Up = %d, %v, %v; want 0, false, nil", v, dirty, err)
	}
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Up(ctx); err != nil {
		t.Fatalf("a second Up must be a no-op: %v", err)
	}
	if v, dirty, err := m.Version(ctx); err != nil || v != dedup.LatestVersion() || dirty {
		t.Fatalf("Version() after Up = %d, %v, %v; want %d, false, nil", v, dirty, err, dedup.LatestVersion())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'My Schema; DROP'
		AND table_name = ANY($1)`, dedup.Tables).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != len(dedup.Tables) {
		t.Fatalf("%d of pgsink's %d tables in the quoted schema after Up", tables, len(dedup.Tables))
	}
	// Every table the migrations create is one a running instance uses:
	// validate checks the role's privileges on dedup.Tables, and a table
	// left out of it is found missing only by the running instance.
	var unlisted []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(table_name::text ORDER BY table_name), '{}') FROM information_schema.tables
		WHERE table_schema = 'My Schema; DROP' AND table_name <> 'schema_migrations' AND NOT table_name = ANY($1)`, dedup.Tables).Scan(&unlisted); err != nil {
		t.Fatal(err)
	}
	if len(unlisted) > 0 {
		t.Errorf("tables the migrations create that dedup.Tables does not list: %v", unlisted)
	}
	if err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'My Schema; DROP'
		AND table_name <> 'schema_migrations'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables left after Down", tables)
	}
}

func TestIntegrationOffsetsClaimAndAdvance(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	p := dedup.PartitionID{Group: "g", Topic: "app.public.t", Partition: 3}

	c, err := o.Claim(ctx, pool, p, 100, "a")
	if err != nil {
		t.Fatal(err)
	}
	if c.Epoch != 1 || c.NextOffset != 100 {
		t.Fatalf("first claim = epoch %d next %d, want epoch 1 at the start offset 100", c.Epoch, c.NextOffset)
	}
	apply := func(c *dedup.Claim, next int64) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, c, next) })
	}
	if err := apply(&c, 150); err != nil {
		t.Fatal(err)
	}
	if err := apply(&c, 140); err == nil {
		t.Fatal("Advance backwards succeeded")
	}

	// A second owner claims: the epoch rises, the position is kept.
	c2, err := o.Claim(ctx, pool, p, 0, "b")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Epoch != 2 || c2.NextOffset != 150 {
		t.Fatalf("second claim = epoch %d next %d, want epoch 2 at the stored 150", c2.Epoch, c2.NextOffset)
	}
	// The first owner is now a zombie: fenced, and nothing moves.
	var fenced *dedup.FencedError
	if err := apply(&c, 200); !errors.As(err, &fenced) || fenced.Current != 2 || fenced.Owner != "b" {
		t.Fatalf("zombie advance: %v, want a FencedError naming epoch 2 of b", err)
	}
	// A rewind (replay) under the same epoch is a position move.
	if _, err := pool.Exec(ctx, `UPDATE pgsink.offsets SET next_offset = 10`); err != nil {
		t.Fatal(err)
	}
	var moved *dedup.PositionMovedError
	if err := apply(&c2, 160); !errors.As(err, &moved) || moved.Stored != 10 || moved.Expected != 150 {
		t.Fatalf("advance after rewind: %v, want PositionMovedError expected 150 stored 10", err)
	}
	stored, err := o.Read(ctx, pool, p)
	if err != nil || stored.NextOffset != 10 || stored.Epoch != 2 {
		t.Fatalf("stored row = %+v, %v; want next 10 epoch 2, untouched by the failed advances", stored, err)
	}
	if _, err := o.Read(ctx, pool, dedup.PartitionID{Group: "g", Topic: "other"}); !errors.Is(err, dedup.ErrNotClaimed) {
		t.Fatalf("Read of an unclaimed partition: %v, want ErrNotClaimed", err)
	}
}

// TestIntegrationZombieRace races a zombie's batch transaction against a new
// owner's claim on real connections: the claim waits for the zombie's row
// lock, and whichever order results, every offset is written once and the
// zombie can never write after the claim.
func TestIntegrationZombieRace(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	p := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
	// The zombie opens a batch and holds it while the new owner claims.
	zombie, tx := zombieBatch(t, pool, o, p, 10)
	claimed := make(chan dedup.Claim, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := o.Claim(ctx, pool, p, 0, "owner")
		if err != nil {
			t.Error(err)
		}
		claimed <- c
	}()
	select {
	case c := <-claimed:
		t.Fatalf("claim returned %+v while the zombie's transaction held the row", c)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	owner := <-claimed
	if owner.NextOffset != 10 || owner.Epoch != 2 {
		t.Fatalf("new owner resumed at %d epoch %d, want 10 (after the zombie's committed batch) epoch 2", owner.NextOffset, owner.Epoch)
	}

	// Now both try to write concurrently; only the owner may.
	var zombieErr, ownerErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		zombieErr = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &zombie, 20) })
	}()
	go func() {
		defer wg.Done()
		ownerErr = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &owner, 20) })
	}()
	wg.Wait()
	var fenced *dedup.FencedError
	if !errors.As(zombieErr, &fenced) {
		t.Errorf("zombie write: %v, want FencedError", zombieErr)
	}
	if ownerErr != nil {
		t.Errorf("owner write: %v", ownerErr)
	}
	stored, _ := o.Read(ctx, pool, p)
	if stored.NextOffset != 20 || stored.Epoch != 2 || stored.Owner != "owner" {
		t.Fatalf("stored %+v, want next 20, epoch 2, owner", stored)
	}
}

// TestIntegrationAmbiguousCommit kills the connection of a batch during its
// COMMIT and resolves the outcome by re-reading the row.
func TestIntegrationAmbiguousCommit(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	p := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
	c, err := o.Claim(ctx, pool, p, 0, "me")
	if err != nil {
		t.Fatal(err)
	}

	// Not committed: the backend is terminated before COMMIT reaches it.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := c
	if err := o.Advance(ctx, tx, &c, 5); err != nil {
		t.Fatal(err)
	}
	pid := conn.Conn().PgConn().PID()
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("COMMIT on a terminated connection succeeded")
	}
	conn.Release()
	committed, err := o.ResolveCommit(ctx, pool, before, 5)
	if err != nil || committed {
		t.Fatalf("ResolveCommit = %v, %v; want not committed", committed, err)
	}

	// Committed: the outcome is known only from the row.
	c = before
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return o.Advance(ctx, tx, &c, 5) }); err != nil {
		t.Fatal(err)
	}
	committed, err = o.ResolveCommit(ctx, pool, before, 5)
	if err != nil || !committed {
		t.Fatalf("ResolveCommit = %v, %v; want committed", committed, err)
	}
	// Fenced meanwhile: neither, and the error says so.
	if _, err := o.Claim(ctx, pool, p, 0, "other"); err != nil {
		t.Fatal(err)
	}
	var fenced *dedup.FencedError
	if _, err := o.ResolveCommit(ctx, pool, c, 9); !errors.As(err, &fenced) {
		t.Fatalf("ResolveCommit after a new claim: %v, want FencedError", err)
	}
}

// QueueAdvance in a pipeline that also carries the transaction's writes and
// COMMIT: a claim that no longer matches fails the compare-and-set, which
// aborts the transaction, so the writes queued after it never commit; the
// position moves only for the matching claim.
func TestIntegrationQueueAdvancePipelined(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE written (n int)`); err != nil {
		t.Fatal(err)
	}
	o := dedup.NewOffsets(schema)
	p := dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}
	mine, err := o.Claim(ctx, pool, p, 0, "me")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	pipeline := func(c dedup.Claim, next int64, n int) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		if err := o.QueueAdvance(b, c, next, time.Time{}); err != nil {
			return err
		}
		b.Queue(`INSERT INTO written VALUES ($1)`, n)
		b.Queue("COMMIT")
		err := conn.SendBatch(ctx, b).Close()
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
				t.Fatal(rerr)
			}
		}
		return err
	}
	if err := pipeline(mine, 5, 1); err != nil {
		t.Fatalf("matching claim: %v", err)
	}
	// The same claim again: its position is stale now.
	err = pipeline(mine, 9, 2)
	if !errors.Is(err, dedup.ErrNotAdvanced) {
		t.Fatalf("stale position: %v, want ErrNotAdvanced", err)
	}
	var moved *dedup.PositionMovedError
	if err := o.Mismatch(ctx, pool, mine); !errors.As(err, &moved) || moved.Stored != 5 {
		t.Fatalf("Mismatch for a stale position: %v, want PositionMovedError stored 5", err)
	}
	// A zombie: another owner claimed the partition.
	mine.NextOffset = 5
	if _, err := o.Claim(ctx, pool, p, 0, "other"); err != nil {
		t.Fatal(err)
	}
	if err := pipeline(mine, 9, 3); !errors.Is(err, dedup.ErrNotAdvanced) {
		t.Fatalf("fenced claim: %v, want ErrNotAdvanced", err)
	}
	var fenced *dedup.FencedError
	if err := o.Mismatch(ctx, pool, mine); !errors.As(err, &fenced) {
		t.Fatalf("Mismatch for a superseded epoch: %v, want FencedError", err)
	}
	var got []int32
	rows, _ := pool.Query(ctx, `SELECT n FROM written ORDER BY n`)
	got, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(got) != 1 || got[0] != 1 {
		t.Fatalf("rows written: %v, %v; want only [1], the write of the matching claim", got, err)
	}
	if err := o.QueueAdvance(&pgx.Batch{}, mine, 4, time.Time{}); err == nil {
		t.Fatal("QueueAdvance accepted a position behind the claim's")
	}
}

// TestIntegrationMarkStopped: an owner notes why its partition stopped; a
// former owner (an older epoch) cannot; the next claim clears it.
func TestIntegrationMarkStopped(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	id := dedup.PartitionID{Group: "g", Topic: "app.public.items", Partition: 2}
	old, err := o.Claim(ctx, pool, id, 0, "a")
	if err != nil {
		t.Fatal(err)
	}
	current, err := o.Claim(ctx, pool, id, 0, "b")
	if err != nil {
		t.Fatal(err)
	}
	stoppedReason := func() (string, bool) {
		rows, err := o.List(ctx, pool, "g")
		if err != nil || len(rows) != 1 {
			t.Fatalf("List = %v, %v", rows, err)
		}
		return rows[0].StoppedReason, rows[0].StoppedAt != nil
	}
	if err := o.MarkStopped(ctx, pool, old, "from a zombie"); err != nil {
		t.Fatal(err)
	}
	if reason, at := stoppedReason(); reason != "" || at {
		t.Fatalf("a former owner marked the row: %q", reason)
	}
	if err := o.MarkStopped(ctx, pool, current, "record cannot be applied"); err != nil {
		t.Fatal(err)
	}
	if reason, at := stoppedReason(); reason != "record cannot be applied" || !at {
		t.Fatalf("stopped = %q (at set: %v), want the owner's reason", reason, at)
	}
	if _, err := o.Claim(ctx, pool, id, 0, "c"); err != nil {
		t.Fatal(err)
	}
	if reason, at := stoppedReason(); reason != "" || at {
		t.Fatalf("a new claim kept the old stop: %q", reason)
	}
}

// The source time a batch's compare-and-set carries is stored with the
// position, stamped with the time it was applied; a batch without one keeps
// both, so status goes on saying how far behind the last real change was.
func TestIntegrationOffsetsSourceTime(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	o := dedup.NewOffsets(schema)
	c, err := o.Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}, 0, "me")
	if err != nil {
		t.Fatal(err)
	}
	advance := func(next int64, sourceTs time.Time) {
		t.Helper()
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		if err := o.QueueAdvance(b, c, next, sourceTs); err != nil {
			t.Fatal(err)
		}
		b.Queue("COMMIT")
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		c.NextOffset = next
	}
	stored := func() dedup.Stored {
		t.Helper()
		rows, err := o.List(ctx, pool, "g")
		if err != nil || len(rows) != 1 {
			t.Fatalf("List = %v, %v", rows, err)
		}
		return rows[0]
	}
	if s := stored(); s.SourceTs != nil || s.SourceAppliedAt != nil {
		t.Fatalf("a fresh claim has source time %v applied at %v, want none", s.SourceTs, s.SourceAppliedAt)
	}
	src := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	advance(3, src)
	first := stored()
	if first.SourceTs == nil || !first.SourceTs.Equal(src) || first.SourceAppliedAt == nil {
		t.Fatalf("stored source time %v applied at %v, want %v and a time", first.SourceTs, first.SourceAppliedAt, src)
	}
	if lag, ok := first.BehindSource(time.Now(), true, time.Time{}); !ok || lag < time.Minute {
		t.Fatalf("BehindSource caught up = %v, %v; want at least the minute between source commit and apply", lag, ok)
	}
	advance(5, time.Time{})
	if s := stored(); !s.SourceTs.Equal(src) || !s.SourceAppliedAt.Equal(*first.SourceAppliedAt) {
		t.Fatalf("a batch without source time changed the stored one to %v applied at %v", s.SourceTs, s.SourceAppliedAt)
	}
	// A rewind (replay, replay --rebuild's emptied table, an online
	// rebuild's swap to the shadow's position) moves the position to
	// records whose source times nobody has read: the stored one described
	// the old position, and would report the target minutes behind while
	// it replays days of records.
	if _, err := o.Rewind(ctx, pool, c.PartitionID, 0, "test"); err != nil {
		t.Fatal(err)
	}
	if s := stored(); s.SourceTs != nil || s.SourceAppliedAt != nil {
		t.Fatalf("after a rewind the source time is %v applied at %v, want none until a batch carries one", s.SourceTs, s.SourceAppliedAt)
	}
}
