//go:build integration

package sink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// pipelineLock is the advisory lock the first transaction of these tests
// waits for just before its COMMIT, with its offsets row locked.
const pipelineLock = 2727

// pipelined builds two consecutive batches of the fixture's partition, as
// apply.pipeline sends them: the second's claim expects the first's end.
// The applier holds the first (the batch at offset 0) before its COMMIT
// until the test releases pipelineLock.
func pipelined(t *testing.T) (f *fixture, first, second *sink.Batch) {
	t.Helper()
	f = newFixture(t, sink.DeleteHard, false)
	f.applier = sink.NewApplier(f.pool, sink.Options{Schema: schema, BeforeCommit: func(b *pgx.Batch, records []debezium.Record) {
		if len(records) > 0 && records[0].Offset == 0 {
			b.Queue("SELECT pg_advisory_xact_lock($1)", pipelineLock)
		}
	}})
	c1 := *f.claim
	first = f.batch(ev{debezium.OpCreate, 1, "first", nil, 1})
	first.Claim = &c1
	f.claim.NextOffset = first.Next
	second = f.batch(ev{debezium.OpCreate, 2, "second", nil, 2})
	c2 := *f.claim
	second.Claim = &c2
	second.Chained = true
	f.claim.NextOffset = 0
	return f, first, second
}

// holdFirst takes pipelineLock on a connection of its own, returned.
func holdFirst(t *testing.T, f *fixture) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), f.pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_lock($1)", pipelineLock); err != nil {
		t.Fatal(err)
	}
	return conn
}

// awaitWaiting polls pg_stat_activity until a session of the database
// waits with wait_event_type Lock on the given event: advisory (the first
// transaction, at its COMMIT) or transactionid (the second, on the offsets
// row the first holds).
func awaitWaiting(t *testing.T, f *fixture, event string, ended <-chan applyOutcome) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1`, event).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case o := <-ended:
			t.Fatalf("the transaction ended (%v) before waiting on a %s lock", o.err, event)
		default:
		}
		if time.Now().After(deadline) {
			rows, _ := f.pool.Query(context.Background(), `SELECT coalesce(wait_event_type,'') || '/' || coalesce(wait_event,'') || ' ' || state || ': ' || left(query, 120) FROM pg_stat_activity WHERE datname = current_database()`)
			seen, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("no session waiting on a %s lock within 30 s; sessions: %q", event, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type applyOutcome struct {
	st  sink.Stats
	err error
}

func applyAsync(ctx context.Context, a *sink.Applier, b *sink.Batch) <-chan applyOutcome {
	out := make(chan applyOutcome, 1)
	go func() {
		st, err := a.Apply(ctx, b)
		out <- applyOutcome{st, err}
	}()
	return out
}

// The second transaction of a partition, sent while the first holds the
// offsets row, waits on the row lock and commits once the first committed.
func TestIntegrationPipelineSecondCommitsAfterTheFirst(t *testing.T) {
	f, first, second := pipelined(t)
	lock := holdFirst(t, f)
	ctx := context.Background()
	r1 := applyAsync(ctx, f.applier, first)
	awaitWaiting(t, f, "advisory", r1)
	r2 := applyAsync(ctx, f.applier, second)
	awaitWaiting(t, f, "transactionid", r2)
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_unlock($1)", pipelineLock); err != nil {
		t.Fatal(err)
	}
	if o := <-r1; o.err != nil {
		t.Fatalf("first: %v", o.err)
	}
	if o := <-r2; o.err != nil {
		t.Fatalf("second: %v", o.err)
	}
	f.want("1:first:∅@1 2:second:∅@2")
	if got := f.storedOffset(); got != 2 {
		t.Fatalf("stored offset %d, want 2", got)
	}
}

// When the first transaction rolls back, the second, waiting on the
// offsets row behind it, cannot commit: its compare-and-set finds the row
// at the first's start, and it fails with a moved position. Neither row
// is written and the offset stays where it was (I1).
func TestIntegrationPipelineSecondCannotCommitIfTheFirstRollsBack(t *testing.T) {
	f, first, second := pipelined(t)
	holdFirst(t, f)
	ctx1, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	r1 := applyAsync(ctx1, f.applier, first)
	awaitWaiting(t, f, "advisory", r1)
	r2 := applyAsync(context.Background(), f.applier, second)
	awaitWaiting(t, f, "transactionid", r2)
	cancelFirst() // the first's session is cancelled: it rolls back
	if o := <-r1; o.err == nil {
		t.Fatal("first committed, want it rolled back")
	}
	o := <-r2
	var moved *dedup.PositionMovedError
	if !errors.As(o.err, &moved) || moved.Expected != 1 || moved.Stored != 0 {
		t.Fatalf("second: %v, want a moved position (expected 1, stored 0)", o.err)
	}
	if o.st.Transactions != 0 {
		t.Fatalf("second counted %d committed transactions, want 0", o.st.Transactions)
	}
	f.want("")
	if got := f.storedOffset(); got != 0 {
		t.Fatalf("stored offset %d, want 0", got)
	}
}

// A pipelined batch's ClaimHeld is called once its compare-and-set ran and
// before its COMMIT, with the offsets row locked by its transaction: a
// follower sent from then on waits for it on the row instead of reaching
// the row first.
func TestIntegrationPipelineClaimHeldBeforeCommit(t *testing.T) {
	f, first, _ := pipelined(t)
	lock := holdFirst(t, f)
	held := make(chan struct{})
	calls := 0
	first.ClaimHeld = func() {
		calls++
		close(held)
	}
	ctx := context.Background()
	r1 := applyAsync(ctx, f.applier, first)
	select {
	case <-held:
	case o := <-r1:
		t.Fatalf("the first ended (%v) before ClaimHeld", o.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no ClaimHeld within 30 s")
	}
	awaitWaiting(t, f, "advisory", r1) // still open, before its COMMIT
	_, err := f.pool.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "offsets"}.Sanitize()+
		` WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE NOWAIT`, f.claim.Group, f.claim.Topic, f.claim.Partition)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("locking the offsets row after ClaimHeld: %v, want lock_not_available (the first holds it)", err)
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_unlock($1)", pipelineLock); err != nil {
		t.Fatal(err)
	}
	if o := <-r1; o.err != nil {
		t.Fatalf("first: %v", o.err)
	}
	if calls != 1 {
		t.Fatalf("ClaimHeld called %d times, want 1", calls)
	}
	if got := f.storedOffset(); got != first.Next {
		t.Fatalf("stored offset %d, want %d", got, first.Next)
	}
}
