//go:build integration

package sink_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/sink/pgcopy"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/test/stacktest"
)

const schema = "pgsink"

// fixture is a migrated target database with one table whose names need
// quoting: a schema with a quote, a table with a semicolon, a column with a
// space (I8).
type fixture struct {
	t       *testing.T
	pool    *pgxpool.Pool
	table   *sink.Table
	applier *sink.Applier
	claim   *dedup.Claim
}

// migratedPool returns a pool on a fresh target database, owned by the
// sink's role, with pgsink's migrations applied.
func migratedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, schema).Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	// The codecs pgsink's own pool registers (cmd/pgsink's newPool), so
	// that the tests and benchmarks encode as pgsink does.
	pc.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgcopy.RegisterTypes(conn.TypeMap(), 2)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newFixture(t *testing.T, deletes sink.DeleteMode, stopOnError bool) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := migratedPool(t)
	tbl := &sink.Table{
		Schema: `App "x"`, Name: "Orders; DROP TABLE y",
		Columns: []sink.Column{
			{Name: "Order Id", Source: "id", Type: "bigint"},
			{Name: "status", Source: "status", Type: "text"},
			{Name: "amount", Source: "amount", Type: "numeric(12,2)"},
			{Name: "notes", Source: "notes", Type: "text"},
		},
		Key: []string{"Order Id"}, Deletes: deletes, SoftDeleteColumn: "deleted", Truncates: true,
		CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn",
	}
	if err := tbl.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE SCHEMA "App ""x"""; CREATE TABLE "App ""x"""."Orders; DROP TABLE y" (
		"Order Id" bigint PRIMARY KEY, status text NOT NULL CHECK (status <> 'poison'), amount numeric(12,2), notes text,
		deleted boolean NOT NULL DEFAULT false, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`); err != nil {
		t.Fatal(err)
	}
	claim, err := dedup.NewOffsets(schema).Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "src.public.orders", Partition: 0}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, pool: pool, table: tbl, claim: &claim,
		applier: sink.NewApplier(pool, sink.Options{Schema: schema, StopOnError: stopOnError})}
}

// onOneConnection has the fixture apply through a pool of one connection,
// which it returns: what a session keeps (staging tables, prepared
// statements) is then that connection's, and can be read on it.
func (f *fixture) onOneConnection() *pgxpool.Pool {
	f.t.Helper()
	cfg := f.pool.Config().Copy()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(one.Close)
	f.applier = sink.NewApplier(one, sink.Options{Schema: schema})
	return one
}

// ev builds a change event as the decoder would hand it over.
type ev struct {
	op      debezium.Op
	id      int64
	status  string
	notes   any // string, nil, or unchanged
	version int64
}

var unchanged = struct{}{}

func (f *fixture) batch(events ...ev) *sink.Batch {
	b := &sink.Batch{Claim: f.claim}
	for i, e := range events {
		offset := f.claim.NextOffset + int64(i)
		ch := debezium.Change{Topic: "src.public.orders", Offset: offset, Kind: debezium.KindChange, Op: e.op,
			Schema: "public", Table: "orders", Key: debezium.Row{{Name: "id", Value: e.id}},
			Version: debezium.Version{CommitLSN: e.version, LSN: e.version}}
		if e.op != debezium.OpDelete && e.op != debezium.OpTruncate {
			notes := debezium.Field{Name: "notes", Value: e.notes}
			if e.notes == unchanged {
				notes = debezium.Field{Name: "notes", Unchanged: true}
			}
			ch.After = debezium.Row{{Name: "id", Value: e.id}, {Name: "status", Value: e.status}, {Name: "amount", Value: "12.50"}, notes}
		}
		b.Items = append(b.Items, sink.Item{Table: f.table, Change: ch,
			Record: debezium.Record{Topic: ch.Topic, Offset: offset, Key: []byte(fmt.Sprintf(`{"id":%d}`, e.id))}})
		b.Next = offset + 1
	}
	return b
}

func (f *fixture) apply(events ...ev) sink.Stats {
	f.t.Helper()
	st, err := f.applier.Apply(context.Background(), f.batch(events...))
	if err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
	return st
}

// state renders the target table, ordered by key.
func (f *fixture) state() string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT "Order Id", status, coalesce(notes, '∅'), deleted, coalesce(_pgsink_lsn, -1)
		FROM "App ""x"""."Orders; DROP TABLE y" ORDER BY 1`)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	var id, lsn int64
	var status, notes string
	var deleted bool
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &notes, &deleted, &lsn}, func() error {
		d := ""
		if deleted {
			d = " deleted"
		}
		out = append(out, fmt.Sprintf("%d:%s:%s@%d%s", id, status, notes, lsn, d))
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func (f *fixture) want(want string) {
	f.t.Helper()
	if got := f.state(); got != want {
		f.t.Fatalf("target rows:\n got %q\nwant %q", got, want)
	}
}

func (f *fixture) storedOffset() int64 {
	f.t.Helper()
	c, err := dedup.NewOffsets(schema).Read(context.Background(), f.pool, f.claim.PartitionID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.NextOffset
}

// I1 and idempotence: a batch moves the offset with its data; applying the
// same records again (a redelivery) changes nothing.
func TestIntegrationApplyIdempotent(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	events := []ev{{debezium.OpCreate, 1, "new", "a", 10}, {debezium.OpCreate, 2, "new", nil, 11}, {debezium.OpUpdate, 1, "paid", "b", 12}}
	f.apply(events...)
	f.want("1:paid:b@12 2:new:∅@11")
	if got := f.storedOffset(); got != 3 {
		t.Fatalf("stored offset %d after 3 records, want 3", got)
	}
	// Kafka redelivers the same records at the same offsets: the stored
	// position rejects them before anything is written.
	stale := *f.claim
	stale.NextOffset = 0
	b := f.batch(events...)
	b.Claim = &stale
	_, err := f.applier.Apply(context.Background(), b)
	var moved *dedup.PositionMovedError
	if !errors.As(err, &moved) {
		t.Fatalf("redelivered batch: %v, want PositionMovedError", err)
	}
	// Debezium re-emits the same events at NEW offsets: the version guard
	// makes them no-ops.
	f.apply(events...)
	f.want("1:paid:b@12 2:new:∅@11")
}

// I3: an older version never overwrites a newer one, within a batch or across.
func TestIntegrationApplyNeverRegresses(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "v20", "x", 20}, ev{debezium.OpUpdate, 1, "v15", "y", 15})
	f.want("1:v20:x@20")
	if st := f.apply(ev{debezium.OpUpdate, 1, "v19", "z", 19}); st.Stale != 1 {
		t.Errorf("Stats.Stale = %d after a stale update, want 1", st.Stale)
	}
	f.want("1:v20:x@20")
	f.apply(ev{debezium.OpUpdate, 1, "v21", "z", 21})
	f.want("1:v21:z@21")
}

// I4: an old create replayed after a delete does not bring the row back, in
// hard and soft modes; a newer create does.
func TestIntegrationApplyNoResurrection(t *testing.T) {
	for _, mode := range []sink.DeleteMode{sink.DeleteHard, sink.DeleteSoft} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			f := newFixture(t, mode, false)
			f.apply(ev{debezium.OpCreate, 1, "new", "a", 10}, ev{debezium.OpCreate, 2, "new", "b", 11})
			f.apply(ev{op: debezium.OpDelete, id: 1, version: 20})
			deleted := ""
			if mode == sink.DeleteSoft {
				deleted = "1:new:a@20 deleted "
			}
			f.want(deleted + "2:new:b@11")
			// Debezium restarts and re-emits the old create at a new offset.
			f.apply(ev{debezium.OpCreate, 1, "new", "a", 10}, ev{debezium.OpUpdate, 1, "paid", "a", 15})
			f.want(deleted + "2:new:b@11")
			// A create newer than the delete is a real re-insert.
			f.apply(ev{debezium.OpCreate, 1, "again", "c", 30})
			f.want("1:again:c@30 2:new:b@11")
		})
	}
}

// Within one batch: delete then re-create, and create then delete, keep the
// order of versions.
func TestIntegrationApplyDeleteInsertOrderInBatch(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", nil, 1}, ev{op: debezium.OpDelete, id: 1, version: 2}, ev{debezium.OpCreate, 1, "b", nil, 3},
		ev{debezium.OpCreate, 2, "a", nil, 4}, ev{op: debezium.OpDelete, id: 2, version: 5})
	f.want("1:b:∅@3")
}

// I7: the unchanged-TOAST marker leaves the stored value intact, and takes
// the value of an older change of the same batch when there is one.
func TestIntegrationApplyUnchangedToast(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "new", "large value", 10})
	f.apply(ev{debezium.OpUpdate, 1, "paid", unchanged, 11})
	f.want("1:paid:large value@11")
	f.apply(ev{debezium.OpUpdate, 1, "shipped", "changed in batch", 12}, ev{debezium.OpUpdate, 1, "done", unchanged, 13})
	f.want("1:done:changed in batch@13")
}

// A create whose TOAST column is a placeholder for a key the target does not
// hold (the new key of a primary-key change under REPLICA IDENTITY DEFAULT)
// has no stored value to keep: the column is NULL, and Stats says so rather
// than leaving it silent. A placeholder for a key the target holds is not
// counted.
func TestIntegrationApplyUnresolvedToastCounted(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "new", "large value", 10})
	st := f.apply(ev{debezium.OpUpdate, 1, "paid", unchanged, 11}, ev{debezium.OpCreate, 2, "moved", unchanged, 12})
	f.want("1:paid:large value@11 2:moved:∅@12")
	if st.Unresolved != 1 || st.Upserted != 2 {
		t.Fatalf("stats %+v: want Unresolved 1 (key 2) of Upserted 2", st)
	}
	if st := f.apply(ev{debezium.OpUpdate, 2, "paid", unchanged, 13}); st.Unresolved != 0 {
		t.Fatalf("stats %+v: key 2 is stored now, want Unresolved 0", st)
	}
}

// Truncate removes the rows older than it and blocks their replay.
func TestIntegrationApplyTruncate(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", nil, 1}, ev{debezium.OpCreate, 2, "a", nil, 2})
	f.apply(ev{op: debezium.OpTruncate, version: 5}, ev{debezium.OpCreate, 3, "after", nil, 6})
	f.want("3:after:∅@6")
	f.apply(ev{debezium.OpCreate, 1, "replayed", nil, 1})
	f.want("3:after:∅@6")
}

// I5: a poison record lands in the dead-letter table with its reason, the
// rest of its batch is applied, and the offset passes it in that transaction.
func TestIntegrationApplyPoisonRecord(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	st := f.apply(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "poison", nil, 2}, ev{debezium.OpCreate, 3, "ok", nil, 3},
		ev{debezium.OpCreate, 4, "ok", nil, 4})
	f.want("1:ok:∅@1 3:ok:∅@3 4:ok:∅@4")
	if st.DeadLetters != 1 || f.storedOffset() != 4 {
		t.Fatalf("dead letters %d, stored offset %d; want 1 and 4", st.DeadLetters, f.storedOffset())
	}
	var offset int64
	var key []byte
	var reason, class string
	if err := f.pool.QueryRow(context.Background(), `SELECT "offset", key, error, error_class FROM pgsink.dead_letters`).Scan(&offset, &key, &reason, &class); err != nil {
		t.Fatal(err)
	}
	if offset != 1 || string(key) != `{"id":2}` || !strings.Contains(reason, "check constraint") || class != "postgres:23514" {
		t.Fatalf("dead letter: offset %d key %s class %s reason %q", offset, key, class, reason)
	}
}

// I5 with errors.tolerance=none: the partition stops at the poison record,
// the records before it are applied, the offset stays on it.
func TestIntegrationApplyStopOnError(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, true)
	_, err := f.applier.Apply(context.Background(), f.batch(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "poison", nil, 2}, ev{debezium.OpCreate, 3, "ok", nil, 3}))
	var poison *sink.PoisonError
	if !errors.As(err, &poison) || poison.Offset != 1 {
		t.Fatalf("Apply: %v, want PoisonError at offset 1", err)
	}
	f.want("1:ok:∅@1")
	if got := f.storedOffset(); got != 1 {
		t.Fatalf("stored offset %d, want 1 (on the poison record)", got)
	}
}

// An undecodable record goes to the dead letters with class decode.
func TestIntegrationApplyUndecodable(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	b := f.batch(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "ok", nil, 2})
	b.Items[1].Err = errors.New("truncated JSON at byte 17")
	b.Items[1].Record.Value = []byte(`{"payload":{"op":`)
	if _, err := f.applier.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f.want("1:ok:∅@1")
	var class, reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT error_class, error FROM pgsink.dead_letters WHERE "offset" = 1`).Scan(&class, &reason); err != nil {
		t.Fatal(err)
	}
	if class != "decode" || reason != "truncated JSON at byte 17" {
		t.Fatalf("dead letter class %q reason %q", class, reason)
	}
}

// I2: a zombie's batch is rejected, nothing of it is written.
func TestIntegrationApplyZombieFenced(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", nil, 1})
	if _, err := dedup.NewOffsets(schema).Claim(context.Background(), f.pool, f.claim.PartitionID, 0, "new owner"); err != nil {
		t.Fatal(err)
	}
	_, err := f.applier.Apply(context.Background(), f.batch(ev{debezium.OpUpdate, 1, "zombie", nil, 2}))
	var fenced *dedup.FencedError
	if !errors.As(err, &fenced) {
		t.Fatalf("zombie Apply: %v, want FencedError", err)
	}
	f.want("1:a:∅@1")
}

// I4 when a row is older than the newest tombstone of the ledger: the
// upsert cannot skip the per-key probe, and the probe judges by the row's
// own key (and the table's truncates), not by the newest tombstone.
func TestIntegrationApplyTombstoneProbePerKey(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", nil, 10}, ev{debezium.OpCreate, 2, "a", nil, 11})
	f.apply(ev{op: debezium.OpDelete, id: 1, version: 20}, ev{op: debezium.OpDelete, id: 2, version: 30})
	// Key 1 at 25 is newer than its own delete (20) though older than key
	// 2's (30): it is applied. Key 2 at 28 is older than its delete: not.
	f.apply(ev{debezium.OpCreate, 1, "back", nil, 25}, ev{debezium.OpCreate, 2, "stale", nil, 28})
	f.want("1:back:∅@25")
	f.apply(ev{op: debezium.OpTruncate, version: 40})
	f.apply(ev{debezium.OpCreate, 3, "stale", nil, 35}, ev{debezium.OpCreate, 4, "new", nil, 41})
	f.want("4:new:∅@41")
}

// The rows older than the newest tombstone are tested against the keys of
// the recent tombstones (the window from the oldest row on) when there are
// fewer of those than rows, and probed one by one otherwise. Both ways stop
// exactly the rows older than their own key's delete.
func TestIntegrationApplyTombstoneWindow(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	// Tombstones of keys 1000..3099 at the same versions: more than the
	// window holds.
	var deletes []ev
	for id := int64(1000); id < 3100; id++ {
		deletes = append(deletes, ev{op: debezium.OpDelete, id: id, version: id})
	}
	f.apply(deletes...)
	// Two rows against a window of 2,100 tombstones: probed. Key 3099's
	// tombstone is past the keys the window keeps, so only the probe
	// stops its create.
	f.apply(ev{debezium.OpCreate, 3099, "stale", nil, 500}, ev{debezium.OpCreate, 30, "new", nil, 500})
	f.want("30:new:∅@500")
	// Fourteen rows against a window of four tombstones (3096..3099):
	// tested against its keys. Key 3098 at 3099 is newer than its delete,
	// key 3090's delete is older than the window; keys 3096 and 3097 at
	// 3096 are not newer than their deletes (3096's is the window's first,
	// as old as the oldest row); keys 40.. have none.
	batch := []ev{{debezium.OpCreate, 3098, "back", nil, 3099}, {debezium.OpCreate, 3090, "back", nil, 3097},
		{debezium.OpCreate, 3097, "stale", nil, 3096}, {debezium.OpCreate, 3096, "stale", nil, 3096}}
	var want []string
	for id := int64(40); id < 50; id++ {
		batch = append(batch, ev{debezium.OpCreate, id, "new", nil, 3096})
		want = append(want, fmt.Sprintf("%d:new:∅@3096", id))
	}
	if st := f.apply(batch...); st.Stale != 2 || st.Upserted != 14 {
		t.Fatalf("stats %+v: want 14 rows, keys 3096 and 3097 stale", st)
	}
	f.want("30:new:∅@500 " + strings.Join(want, " ") + " 3090:back:∅@3097 3098:back:∅@3099")
}

// A COMMIT killed in flight on a pool of one connection: the outcome is read
// on a new connection once the dead one is given back (holding it while
// waiting for another used to hang forever), and the batch, which did not
// commit, is applied on the retry, once.
func TestIntegrationApplyAmbiguousCommitOnePooledConnection(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A deferred trigger keeps COMMIT busy long enough to be killed.
	if _, err := f.pool.Exec(ctx, `
		CREATE FUNCTION "App ""x""".slow_commit() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN IF NEW.status = 'slow' THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON "App ""x"""."Orders; DROP TABLE y"
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "App ""x""".slow_commit()`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	killed := make(chan error, 1)
	go func() {
		// Once: the retry's COMMIT sleeps too, and must be let through.
		for ctx.Err() == nil {
			var n int
			err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = $1 AND wait_event = 'PgSleep'`, cfg.ConnConfig.Database).Scan(&n)
			if err != nil || n > 0 {
				killed <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		killed <- ctx.Err()
	}()
	applier := sink.NewApplier(one, sink.Options{Schema: schema})
	st, err := applier.Apply(ctx, f.batch(ev{debezium.OpCreate, 1, "slow", "n", 5}))
	if err != nil {
		t.Fatalf("Apply after a killed COMMIT: %v", err)
	}
	if err := <-killed; err != nil {
		t.Fatalf("terminating the COMMIT: %v", err)
	}
	if st.Retries < 1 || st.Transactions != 1 {
		t.Fatalf("stats %+v: want the killed transaction retried and one commit", st)
	}
	f.want("1:slow:n@5")
	if got := f.storedOffset(); got != 1 {
		t.Fatalf("stored offset %d, want 1", got)
	}
}

// The two ways a stage is filled — INSERT … VALUES in the transaction's
// pipeline for a small batch, COPY for a large one — apply the same history
// to the same rows: creates, updates, an unchanged-TOAST update, stale
// re-emissions and deletes, in one batch and in batches of 7.
func TestIntegrationApplyStagedEitherWay(t *testing.T) {
	var events []ev
	for id := int64(1); id <= 120; id++ {
		events = append(events, ev{debezium.OpCreate, id, "new", fmt.Sprintf("n%d", id), id})
	}
	for id := int64(1); id <= 40; id++ {
		events = append(events, ev{debezium.OpUpdate, id, "paid", unchanged, 200 + id})
	}
	events = append(events, ev{debezium.OpUpdate, 3, "stale", "old", 2}) // older than the update at 203
	for id := int64(101); id <= 120; id++ {
		events = append(events, ev{op: debezium.OpDelete, id: id, version: 300 + id})
	}
	events = append(events, ev{debezium.OpCreate, 110, "resurrected?", nil, 105}) // older than its delete
	whole := newFixture(t, sink.DeleteHard, false)
	whole.apply(events...)
	pieces := newFixture(t, sink.DeleteHard, false)
	for lo := 0; lo < len(events); lo += 7 {
		pieces.apply(events[lo:min(lo+7, len(events))]...)
	}
	got := whole.state()
	if !strings.HasPrefix(got, "1:paid:n1@201 2:paid:n2@202 3:paid:n3@203") || strings.Contains(got, "110:") || strings.Contains(got, "stale") {
		t.Fatalf("one batch: unexpected rows %q", got)
	}
	pieces.want(got)
	if whole.storedOffset() != int64(len(events)) || pieces.storedOffset() != int64(len(events)) {
		t.Fatalf("stored offsets %d and %d, want %d", whole.storedOffset(), pieces.storedOffset(), len(events))
	}
}

// Each transaction empties its staging table before it commits (DELETE, and
// TRUNCATE once enough rows went through), on a connection that stays in
// the pool: the next batch must find it empty, whatever the sizes.
func TestIntegrationApplyLeavesStageEmpty(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	ctx := context.Background()
	one := f.onOneConnection()
	var big []ev
	for id := int64(1); id <= 5000; id++ { // past the TRUNCATE threshold, and COPY
		big = append(big, ev{debezium.OpCreate, id, "new", nil, id})
	}
	for _, events := range [][]ev{
		{{debezium.OpCreate, 1, "a", nil, 1}},
		big,
		{{debezium.OpUpdate, 1, "b", nil, 6000}, {op: debezium.OpDelete, id: 2, version: 6001}},
		{{debezium.OpUpdate, 3, "c", nil, 6002}},
	} {
		f.apply(events...)
		var staged int64
		err := one.QueryRow(ctx, `SELECT coalesce(sum((xpath('/row/n/text()',
			query_to_xml(format('SELECT count(*) AS n FROM pg_temp.%I', c.relname), false, true, '')))[1]::text::bigint), 0)
			FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'r'`).Scan(&staged)
		if err != nil {
			t.Fatal(err)
		}
		if staged != 0 {
			t.Fatalf("after a batch of %d: %d rows left in the session's staging tables", len(events), staged)
		}
	}
	var rows int64
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM "App ""x"""."Orders; DROP TABLE y"`).Scan(&rows); err != nil || rows != 4999 {
		t.Fatalf("%d target rows (%v), want 4999", rows, err)
	}
	if !strings.HasPrefix(f.state(), "1:b:∅@6000 3:c:∅@6002 4:new:∅@4") {
		t.Fatalf("target rows start %q", f.state()[:60])
	}
}

// I5 in a batch staged by COPY (more rows than go through the pipeline): the
// transaction that fails after its COPY is rolled back on its connection,
// the halves are retried, and the poison record alone is dead-lettered, on
// a pool of one connection that must survive all of it.
func TestIntegrationApplyPoisonInLargeBatch(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.onOneConnection()
	var events []ev
	for id := int64(1); id <= 300; id++ {
		status := "ok"
		if id == 217 {
			status = "poison"
		}
		events = append(events, ev{debezium.OpCreate, id, status, nil, id})
	}
	st := f.apply(events...)
	if st.DeadLetters != 1 || f.storedOffset() != 300 {
		t.Fatalf("stats %+v, stored offset %d; want 1 dead letter and offset 300", st, f.storedOffset())
	}
	var rows, deadOffset int64
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*), (SELECT "offset" FROM pgsink.dead_letters) FROM "App ""x"""."Orders; DROP TABLE y"`).Scan(&rows, &deadOffset); err != nil {
		t.Fatal(err)
	}
	if rows != 299 || deadOffset != 216 {
		t.Fatalf("%d target rows and the dead letter at offset %d; want 299 and 216", rows, deadOffset)
	}
	// The connection went back to the pool clean: the next batch applies.
	f.apply(ev{debezium.OpUpdate, 1, "again", nil, 1000})
	if !strings.HasPrefix(f.state(), "1:again:∅@1000 2:ok") {
		t.Fatalf("after the poison batch: %q", f.state()[:40])
	}
}

// I5 for a value that cannot be encoded for its column, in a batch COPYed
// into the target and in one small enough for the pipeline: the record is
// dead-lettered with its reason, the rest applied. Text that is no number
// fails in the client's COPY and in the server's parse of a parameter; a
// map has no encoding at all, and fails in the client either way. The
// client's error decides, not the server's answer to an abandoned COPY
// (query_canceled, which would be retried for ever).
func TestIntegrationApplyUnencodableValue(t *testing.T) {
	for _, tc := range []struct {
		rows   int64
		value  any
		reason string
	}{
		{300, "twelve and a half", "twelve and a half"},
		{3, "twelve and a half", "twelve and a half"},
		{300, map[string]int{"twelve": 1}, "unable to encode"},
		{3, map[string]int{"twelve": 1}, "unable to encode"},
	} {
		t.Run(fmt.Sprintf("%d rows, %T", tc.rows, tc.value), func(t *testing.T) {
			f := newFixture(t, sink.DeleteHard, false)
			var events []ev
			for id := int64(1); id <= tc.rows; id++ {
				events = append(events, ev{debezium.OpCreate, id, "ok", nil, id})
			}
			b := f.batch(events...)
			poison := tc.rows / 2
			after := b.Items[poison].Change.After
			for i := range after {
				if after[i].Name == "amount" {
					after[i].Value = tc.value
				}
			}
			st, err := f.applier.Apply(context.Background(), b)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if st.DeadLetters != 1 || f.storedOffset() != tc.rows {
				t.Fatalf("stats %+v, stored offset %d; want 1 dead letter and offset %d", st, f.storedOffset(), tc.rows)
			}
			var rows, deadOffset int64
			var reason string
			if err := f.pool.QueryRow(context.Background(), `SELECT count(*), (SELECT "offset" FROM pgsink.dead_letters), (SELECT error FROM pgsink.dead_letters)
				FROM "App ""x"""."Orders; DROP TABLE y"`).Scan(&rows, &deadOffset, &reason); err != nil {
				t.Fatal(err)
			}
			if rows != tc.rows-1 || deadOffset != poison || !strings.Contains(reason, tc.reason) {
				t.Fatalf("%d target rows, the dead letter at offset %d with %q; want %d, %d and %q", rows, deadOffset, reason, tc.rows-1, poison, tc.reason)
			}
		})
	}
}

// A panic while writing a record is contained to that record: under
// tolerance all it goes to the dead letters with class panic and the stack
// in its reason, the records around it are applied; under none the
// partition stops at it with the offset unmoved.
func TestIntegrationApplyPanicIsolated(t *testing.T) {
	panicAt := func(offset int64) func(debezium.Record) bool {
		return func(r debezium.Record) bool { return r.Offset == offset }
	}
	t.Run("tolerance all", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, false)
		f.applier = sink.NewApplier(f.pool, sink.Options{Schema: schema, TestPanicOn: panicAt(2)})
		st := f.apply(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "ok", nil, 2}, ev{debezium.OpCreate, 3, "trips a bug", nil, 3},
			ev{debezium.OpCreate, 4, "ok", nil, 4}, ev{debezium.OpCreate, 5, "ok", nil, 5})
		f.want("1:ok:∅@1 2:ok:∅@2 4:ok:∅@4 5:ok:∅@5")
		if st.DeadLetters != 1 || st.Panics == 0 || f.storedOffset() != 5 {
			t.Fatalf("dead letters %d, panics %d, stored offset %d; want 1, > 0 and 5", st.DeadLetters, st.Panics, f.storedOffset())
		}
		var offset int64
		var reason, class string
		if err := f.pool.QueryRow(context.Background(), `SELECT "offset", error, error_class FROM pgsink.dead_letters`).Scan(&offset, &reason, &class); err != nil {
			t.Fatal(err)
		}
		if offset != 2 || class != "panic" || !strings.Contains(reason, "TestPanicOn") || !strings.Contains(reason, "goroutine") {
			t.Fatalf("dead letter: offset %d class %s reason %q; want offset 2, class panic, the panic and its stack", offset, class, reason)
		}
	})
	t.Run("tolerance none", func(t *testing.T) {
		f := newFixture(t, sink.DeleteHard, true)
		f.applier = sink.NewApplier(f.pool, sink.Options{Schema: schema, StopOnError: true, TestPanicOn: panicAt(1)})
		_, err := f.applier.Apply(context.Background(), f.batch(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "trips a bug", nil, 2}, ev{debezium.OpCreate, 3, "ok", nil, 3}))
		var poison *sink.PoisonError
		var panicked *sink.PanicError
		if !errors.As(err, &poison) || poison.Offset != 1 || !errors.As(err, &panicked) {
			t.Fatalf("Apply: %v, want a PoisonError at offset 1 wrapping the PanicError", err)
		}
		f.want("1:ok:∅@1")
		if got := f.storedOffset(); got != 1 {
			t.Fatalf("stored offset %d, want 1 (on the record that panics)", got)
		}
	})
}

// A record with binary headers goes to the dead letters with them intact:
// Apicurio's AvroConverter at its defaults puts each schema id in a header
// as 8 big-endian bytes (NULs among them) and leaves the body without the
// magic byte, so exactly those records are dead letters.
func TestIntegrationApplyDeadLetterBinaryHeaders(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	b := f.batch(ev{debezium.OpCreate, 1, "ok", nil, 1}, ev{debezium.OpCreate, 2, "ok", nil, 2})
	globalID := []byte{0, 0, 0, 0, 0, 0, 0, 7}
	notUTF8 := []byte{0xff, 0xfe, 'x'}
	b.Items[1].Err = debezium.ErrNoMagicByte
	b.Items[1].Record.Headers = []debezium.Header{{Key: "apicurio.value.globalId", Value: globalID}, {Key: "raw", Value: notUTF8}}
	if _, err := f.applier.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f.want("1:ok:∅@1")
	letters, err := dedup.NewDeadLetters("pgsink").List(context.Background(), f.pool, dedup.DeadLetterFilter{Group: b.Claim.Group, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || len(letters[0].Headers) != 2 {
		t.Fatalf("dead letters %+v, want one with two headers", letters)
	}
	if h := letters[0].Headers; h[0].Key != "apicurio.value.globalId" || h[0].Value != string(globalID) || h[1].Value != string(notUTF8) {
		t.Fatalf("headers %q, want the bytes %q and %q", h, globalID, notUTF8)
	}
}

// An apply that finds every pooled connection taken counts its wait in
// Stats.ConnectionWait (pgsink_apply_connection_wait_seconds): part of its
// time that is the pool's size, not the target's work.
func TestIntegrationApplyCountsConnectionWait(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	one := f.onOneConnection()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	held, err := one.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const hold = 300 * time.Millisecond
	go func() {
		time.Sleep(hold)
		held.Release()
	}()
	st, err := f.applier.Apply(ctx, f.batch(ev{debezium.OpCreate, 1, "ok", nil, 1}))
	if err != nil {
		t.Fatal(err)
	}
	if st.ConnectionWait < hold*2/3 {
		t.Errorf("ConnectionWait = %s with the only connection held for %s; want about %s", st.ConnectionWait, hold, hold)
	}
	// With the connection free, the next apply hardly waits.
	st, err = f.applier.Apply(ctx, f.batch(ev{debezium.OpCreate, 2, "ok", nil, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if st.ConnectionWait >= hold*2/3 {
		t.Errorf("ConnectionWait = %s with the connection free; want far less than %s", st.ConnectionWait, hold)
	}
}
