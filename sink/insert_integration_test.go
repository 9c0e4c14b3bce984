//go:build integration

package sink_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// Creates and snapshot reads go in by plain INSERT. One for a key the target
// already holds (Debezium re-emitting after a restart, a snapshot over a
// populated table) fails that INSERT with a unique violation: the batch is
// applied again with upserts, which decide by version, and the violation is
// never taken for a poison record. The table then takes upserts for a
// while, so a run of such events costs no second attempt per batch.
func TestIntegrationApplyCreateOfExistingKey(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", "x", 10}, ev{debezium.OpCreate, 2, "a", "y", 11})
	st := f.apply(ev{debezium.OpCreate, 1, "re-emitted", "old", 5}, ev{debezium.OpCreate, 3, "new", nil, 12},
		ev{debezium.OpRead, 2, "snapshot", "newer", 13})
	f.want("1:a:x@10 2:snapshot:newer@13 3:new:∅@12")
	if st.InsertConflicts != 1 || st.RestagedConflicts != 0 || st.Stale != 1 || st.Upserted != 3 || st.DeadLetters != 0 || st.Transactions != 1 {
		t.Fatalf("stats %+v: want one insert conflict, key 1 stale, 3 upserted, no dead letter, one commit", st)
	}
	if got := f.storedOffset(); got != 5 {
		t.Fatalf("stored offset %d, want 5", got)
	}
	st = f.apply(ev{debezium.OpCreate, 1, "re-emitted", "old", 6}, ev{debezium.OpCreate, 4, "new", nil, 14})
	f.want("1:a:x@10 2:snapshot:newer@13 3:new:∅@12 4:new:∅@14")
	if st.InsertConflicts != 0 || st.Stale != 1 {
		t.Fatalf("stats %+v: the next batch should have used upserts only (no conflict), key 1 stale", st)
	}
}

// Deleted keys' tombstones go into the ledger by plain INSERT too. A key
// deleted a second time (recreated in between, or a delete re-emitted) has
// one already: the violation sends the batch back to upserts, where the
// newer delete moves the tombstone forward, and an older create replayed
// afterwards stays dead (I4). Each case in a small batch (pipelined
// staging) and a large one (COPY).
func TestIntegrationApplyDeleteOfDeletedKey(t *testing.T) {
	for _, n := range []int64{3, 300} {
		t.Run(fmt.Sprintf("%d keys", n), func(t *testing.T) {
			f := newFixture(t, sink.DeleteHard, false)
			batch := func(op debezium.Op, version int64) []ev {
				var evs []ev
				for id := int64(1); id <= n; id++ {
					evs = append(evs, ev{op, id, "a", nil, version + id})
				}
				return evs
			}
			tombstone := func(id int64) (v int64) {
				t.Helper()
				err := f.pool.QueryRow(context.Background(), `SELECT commit_lsn FROM pgsink.tombstones WHERE key = jsonb_build_array($1::bigint)`, id).Scan(&v)
				if err != nil {
					t.Fatalf("tombstone of key %d: %v", id, err)
				}
				return v
			}
			f.apply(batch(debezium.OpCreate, 1000)...)
			if st := f.apply(batch(debezium.OpDelete, 2000)...); st.InsertConflicts != 0 || st.Deleted != n {
				t.Fatalf("first deletes: stats %+v; want %d deleted without an insert conflict", st, n)
			}
			f.apply(batch(debezium.OpCreate, 3000)...)
			st := f.apply(batch(debezium.OpDelete, 4000)...)
			if st.InsertConflicts != 1 || st.Deleted != n || st.DeadLetters != 0 {
				t.Fatalf("second deletes: stats %+v; want one insert conflict, %d deleted, no dead letter", st, n)
			}
			if got := tombstone(n); got != 4000+n {
				t.Fatalf("tombstone of key %d at %d, want the second delete's %d", n, got, 4000+n)
			}
			// Between the two deletes: must not come back.
			if st := f.apply(ev{debezium.OpCreate, n, "replayed", nil, 3500}); st.Stale != 1 {
				t.Fatalf("a create older than the second delete: stats %+v, want it stale", st)
			}
			f.want("")
			if got := f.storedOffset(); got != 4*n+1 {
				t.Fatalf("stored offset %d, want %d", got, 4*n+1)
			}
		})
	}
}

// A unique violation that the upserts meet too (another unique index) is
// the record's own fault: it goes to the dead-letter table and the rest of
// its batch is applied, as before plain INSERTs.
func TestIntegrationApplyCreateViolatingOtherUniqueIndex(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	if _, err := f.pool.Exec(context.Background(), `CREATE UNIQUE INDEX ON "App ""x"""."Orders; DROP TABLE y" (notes)`); err != nil {
		t.Fatal(err)
	}
	f.apply(ev{debezium.OpCreate, 1, "a", "taken", 1})
	st := f.apply(ev{debezium.OpCreate, 2, "a", "free", 2}, ev{debezium.OpCreate, 3, "a", "taken", 3}, ev{debezium.OpCreate, 4, "a", nil, 4})
	f.want("1:a:taken@1 2:a:free@2 4:a:∅@4")
	if st.DeadLetters != 1 || st.InsertConflicts < 1 {
		t.Fatalf("stats %+v: want key 3 dead-lettered after an insert conflict", st)
	}
	var class, reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT error_class, error FROM pgsink.dead_letters`).Scan(&class, &reason); err != nil {
		t.Fatal(err)
	}
	if class != "postgres:23505" || !strings.Contains(reason, "notes") {
		t.Fatalf("dead letter class %s reason %q, want the unique violation on notes", class, reason)
	}
}

// Two partitions create the same key at once (two topics routed to one
// table): the second plain INSERT waits for the first transaction, meets
// its committed row, and the second attempt's upsert keeps the newer
// version, whichever partition holds it; nothing is dead-lettered.
func TestIntegrationApplyConcurrentCreatesOfOneKey(t *testing.T) {
	for _, secondNewer := range []bool{true, false} {
		t.Run(fmt.Sprintf("second_newer=%v", secondNewer), func(t *testing.T) {
			f := newFixture(t, sink.DeleteHard, false)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The first transaction holds its uncommitted row for a while.
			holding := sink.NewApplier(f.pool, sink.Options{Schema: schema,
				BeforeCommit: func(b *pgx.Batch, _ []debezium.Record) { b.Queue("SELECT pg_sleep(1.5)") }})
			other, err := dedup.NewOffsets(schema).Claim(ctx, f.pool, dedup.PartitionID{Group: "g", Topic: "src.public.orders", Partition: 1}, 0, "test")
			if err != nil {
				t.Fatal(err)
			}
			firstVersion, secondVersion := int64(20), int64(10)
			if secondNewer {
				firstVersion, secondVersion = 10, 20
			}
			first := f.batch(ev{debezium.OpCreate, 7, "first", nil, firstVersion})
			done := make(chan error, 1)
			go func() {
				_, err := holding.Apply(ctx, first)
				done <- err
			}()
			waitFor(t, ctx, f, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`)
			f.claim = &other
			var st sink.Stats
			second := make(chan error, 1)
			go func() {
				var err error
				st, err = f.applier.Apply(ctx, f.batch(ev{debezium.OpCreate, 7, "second", nil, secondVersion}))
				second <- err
			}()
			if err := <-done; err != nil {
				t.Fatalf("first Apply: %v", err)
			}
			if err := <-second; err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			if secondNewer {
				f.want("7:second:∅@20")
			} else {
				f.want("7:first:∅@20")
			}
			if st.InsertConflicts != 1 || st.DeadLetters != 0 {
				t.Fatalf("second batch stats %+v: want one insert conflict and no dead letter", st)
			}
		})
	}
}

// waitFor polls query (a count) until it is positive.
func waitFor(t *testing.T, ctx context.Context, f *fixture, query string) {
	t.Helper()
	for {
		var n int
		if err := f.pool.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(errors.Join(ctx.Err(), fmt.Errorf("waiting for %s", query)))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A batch too large for the pipelined stage COPYs its fresh rows straight
// into the target when no tombstone is as new as they are; a fresh row older
// than a tombstone goes through the stage, where its key's tombstone stops
// it (I4); a key the target holds fails the COPY and the batch is applied
// again with upserts.
func TestIntegrationApplyLargeBatchOfCreates(t *testing.T) {
	f := newFixture(t, sink.DeleteHard, false)
	f.apply(ev{debezium.OpCreate, 1, "a", nil, 10}, ev{debezium.OpCreate, 2, "a", nil, 11})
	f.apply(ev{op: debezium.OpDelete, id: 2, version: 20})
	var events []ev
	var want []string
	for id := int64(100); id < 200; id++ {
		events = append(events, ev{debezium.OpCreate, id, "new", nil, 100 + id})
		want = append(want, fmt.Sprintf("%d:new:∅@%d", id, 100+id))
	}
	if st := f.apply(events...); st.InsertConflicts != 0 || st.Upserted != 100 || st.Stale != 0 {
		t.Fatalf("stats %+v: want 100 rows created without conflict", st)
	}
	created := strings.Join(want, " ")
	f.want("1:a:∅@10 " + created)

	// The stage's tombstone test stops key 2; the fresh rows newer than
	// the tombstone are copied.
	var again []string
	events = events[:0]
	for id := int64(300); id < 400; id++ {
		events = append(events, ev{debezium.OpCreate, id, "new", nil, id})
		again = append(again, fmt.Sprintf("%d:new:∅@%d", id, id))
	}
	events = append(events, ev{debezium.OpCreate, 2, "resurrected?", nil, 15})
	if st := f.apply(events...); st.InsertConflicts != 0 || st.Stale != 1 || st.Upserted != 101 {
		t.Fatalf("stats %+v: want key 2 stale, no conflict", st)
	}
	created += " " + strings.Join(again, " ")
	f.want("1:a:∅@10 " + created)

	// Key 1 is held by the target: the COPY fails, the upserts apply it.
	events, again = events[:0], again[:0]
	for id := int64(400); id < 500; id++ {
		events = append(events, ev{debezium.OpCreate, id, "new", nil, id})
		again = append(again, fmt.Sprintf("%d:new:∅@%d", id, id))
	}
	events = append(events, ev{debezium.OpCreate, 1, "re-created", nil, 500})
	st := f.apply(events...)
	if st.InsertConflicts != 1 || st.Stale != 0 || st.DeadLetters != 0 || st.Upserted != 101 {
		t.Fatalf("stats %+v: want one insert conflict, nothing stale, no dead letter", st)
	}
	f.want("1:re-created:∅@500 " + created + " " + strings.Join(again, " "))
}

// A key whose type blockedFresh does not take as arrays (numeric here):
// every fresh row not newer than the newest tombstone goes through the
// stage, whose tombstone test still stops a create older than its key's
// delete; the others are copied.
func TestIntegrationApplyLargeBatchOfCreatesNumericKey(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	tbl := &sink.Table{Schema: "public", Name: "by_code",
		Columns: []sink.Column{{Name: "code", Source: "code", Type: "numeric(10,0)"}, {Name: "note", Source: "note", Type: "text"}},
		Key:     []string{"code"}, Deletes: sink.DeleteHard, CommitColumn: "_c", LSNColumn: "_l"}
	if _, err := pool.Exec(ctx, `CREATE TABLE public.by_code (code numeric(10,0) PRIMARY KEY, note text, _c bigint, _l bigint)`); err != nil {
		t.Fatal(err)
	}
	claim, err := dedup.NewOffsets(schema).Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "codes", Partition: 0}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	applier := sink.NewApplier(pool, sink.Options{Schema: schema})
	apply := func(changes ...debezium.Change) sink.Stats {
		t.Helper()
		b := &sink.Batch{Claim: &claim}
		for _, ch := range changes {
			ch.Kind, ch.Offset = debezium.KindChange, claim.NextOffset+int64(len(b.Items))
			b.Items = append(b.Items, sink.Item{Table: tbl, Change: ch, Record: debezium.Record{Topic: "codes", Offset: ch.Offset}})
			b.Next = ch.Offset + 1
		}
		st, err := applier.Apply(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	code := func(n int64) pgtype.Numeric { return pgtype.Numeric{Int: big.NewInt(n), Valid: true} }
	create := func(n, v int64) debezium.Change {
		return debezium.Change{Op: debezium.OpCreate, Version: debezium.Version{CommitLSN: v, LSN: v},
			Key: debezium.Row{{Name: "code", Value: code(n)}}, After: debezium.Row{{Name: "code", Value: code(n)}, {Name: "note", Value: "v"}}}
	}
	apply(create(1, 10))
	apply(debezium.Change{Op: debezium.OpDelete, Version: debezium.Version{CommitLSN: 20, LSN: 20}, Key: debezium.Row{{Name: "code", Value: code(1)}}})
	var batch []debezium.Change
	for n := int64(100); n < 200; n++ {
		batch = append(batch, create(n, n%30)) // a third newer than the tombstone
	}
	batch = append(batch, create(1, 15)) // older than its delete
	if st := apply(batch...); st.Stale != 1 || st.Upserted != 101 || st.InsertConflicts != 0 {
		t.Fatalf("stats %+v: want 101 rows sent, code 1 stale, no conflict", st)
	}
	var rows int
	var one bool
	if err := pool.QueryRow(ctx, `SELECT count(*), bool_or(code = 1) FROM public.by_code`).Scan(&rows, &one); err != nil {
		t.Fatal(err)
	}
	if rows != 100 || one {
		t.Fatalf("%d rows, code 1 present %v: want the 100 new codes and code 1 still deleted", rows, one)
	}
}

// A large stage's updates go to the keys the target holds by UPDATE, and
// the rest by the upsert, only when the UPDATE left some (buildUpdate). The
// history below has every kind of rest: stale updates (the stored row is
// newer), updates of keys the target lacks, of keys a newer delete blocks,
// and of a row stored without a version (written before pgsink). Applied in
// one batch (the UPDATE) and in batches of 7 (the upsert), in hard and soft
// delete modes, it must leave the same rows and count the same stale events.
func TestIntegrationApplyLargeStageUpdates(t *testing.T) {
	var setup, updates []ev
	for id := int64(1); id <= 100; id++ {
		setup = append(setup, ev{debezium.OpCreate, id, "new", fmt.Sprintf("n%d", id), id})
	}
	for id := int64(91); id <= 100; id++ {
		setup = append(setup, ev{op: debezium.OpDelete, id: id, version: 500 + id})
	}
	for id := int64(1); id <= 80; id++ {
		notes := any(fmt.Sprintf("u%d", id))
		if id > 40 {
			notes = unchanged // a second mask group, which keeps the stored notes
		}
		updates = append(updates, ev{debezium.OpUpdate, id, "paid", notes, 1000 + id})
	}
	for id := int64(81); id <= 90; id++ {
		updates = append(updates, ev{debezium.OpUpdate, id, "stale", "old", 5})
	}
	for id := int64(91); id <= 100; id++ {
		updates = append(updates, ev{debezium.OpUpdate, id, "deleted later", "old", 100 + id})
	}
	for id := int64(101); id <= 110; id++ {
		updates = append(updates, ev{debezium.OpUpdate, id, "missing", nil, 2000 + id})
	}
	updates = append(updates, ev{debezium.OpUpdate, 200, "versioned", "v", 3000})

	apply := func(f *fixture, size int) (stale int64) {
		if _, err := f.pool.Exec(context.Background(), `INSERT INTO "App ""x"""."Orders; DROP TABLE y" ("Order Id", status) VALUES (200, 'legacy')`); err != nil {
			f.t.Fatal(err)
		}
		f.apply(setup...)
		for lo := 0; lo < len(updates); lo += size {
			stale += f.apply(updates[lo:min(lo+size, len(updates))]...).Stale
		}
		return stale
	}
	for _, mode := range []sink.DeleteMode{sink.DeleteHard, sink.DeleteSoft} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			whole := newFixture(t, mode, false)
			pieces := newFixture(t, mode, false)
			wholeStale, piecesStale := apply(whole, len(updates)), apply(pieces, 7)
			got := whole.state()
			for _, want := range []string{"1:paid:u1@1001 ", "41:paid:n41@1041 ", "80:paid:n80@1080 ", "81:new:n81@81 ", "90:new:n90@90 ",
				"101:missing:∅@2101 ", "110:missing:∅@2110 ", "200:versioned:v@3000"} {
				if !strings.Contains(got, want) {
					t.Errorf("one batch: no %q in %q", want, got)
				}
			}
			if strings.Contains(got, "deleted later") || strings.Contains(got, "stale") {
				t.Errorf("one batch: a stale or deleted update was applied: %q", got)
			}
			pieces.want(got)
			if wholeStale != 20 || piecesStale != 20 {
				t.Errorf("stale events counted %d in one batch and %d in batches of 7, want 20 (81–100)", wholeStale, piecesStale)
			}
		})
	}
}

// A target column's type altered while pgsink runs: the COPY of fresh rows
// on a connection that described the table before must send the new type's
// binary form. bigint's form read by numeric's receive function is a valid
// number for a small value (zero with a display scale), so a stale
// description stored zeros without an error.
func TestIntegrationApplyCopyAfterAlterType(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1 // one connection, which keeps what it described
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE public.stock (id bigint PRIMARY KEY, qty bigint, _c bigint, _l bigint)`); err != nil {
		t.Fatal(err)
	}
	tbl := &sink.Table{Schema: "public", Name: "stock", Key: []string{"id"}, Deletes: sink.DeleteHard,
		CommitColumn: "_c", LSNColumn: "_l",
		Columns: []sink.Column{{Name: "id", Source: "id", Type: "bigint"}, {Name: "qty", Source: "qty", Type: "bigint"}}}
	claim, err := dedup.NewOffsets(schema).Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "stock", Partition: 0}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	applier := sink.NewApplier(one, sink.Options{Schema: schema})
	creates := func(from, to int64) {
		b := &sink.Batch{Claim: &claim}
		for id := from; id <= to; id++ {
			offset := claim.NextOffset + id - from
			b.Items = append(b.Items, sink.Item{Table: tbl, Record: debezium.Record{Offset: offset}, Change: debezium.Change{
				Kind: debezium.KindChange, Op: debezium.OpCreate, Offset: offset,
				Version: debezium.Version{CommitLSN: id, LSN: id}, Key: debezium.Row{{Name: "id", Value: id}},
				After: debezium.Row{{Name: "id", Value: id}, {Name: "qty", Value: id + 7}}}})
			b.Next = offset + 1
		}
		st, err := applier.Apply(ctx, b)
		if err != nil || st.Upserted != to-from+1 {
			t.Fatalf("apply %d–%d: %+v, %v", from, to, st, err)
		}
	}
	creates(1, 300) // COPYed: the connection describes stock's columns
	if _, err := pool.Exec(ctx, `ALTER TABLE public.stock ALTER COLUMN qty TYPE numeric`); err != nil {
		t.Fatal(err)
	}
	creates(301, 600)
	var rows, wrong int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE qty IS DISTINCT FROM id + 7) FROM public.stock`).Scan(&rows, &wrong); err != nil {
		t.Fatal(err)
	}
	if rows != 600 || wrong != 0 {
		t.Fatalf("%d rows, %d with a wrong qty; want 600 rows, all qty = id + 7", rows, wrong)
	}
}

// Another transaction writing a key of a large stage's updates (a second
// topic feeding the table, or a repartitioned one) while the batch runs:
// the UPDATE does not see its uncommitted row, nor does upsertMissing's
// reading of the target, and the upsert's ON CONFLICT waits for it and
// then lets the newer version win, whichever it is.
func TestIntegrationApplyLargeStageUpdateRacesInsert(t *testing.T) {
	for _, other := range []int64{5, 50} {
		t.Run(fmt.Sprintf("other at %d", other), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, sink.DeleteHard, false)
			var setup, updates []ev
			for id := int64(1); id <= 100; id++ {
				setup = append(setup, ev{debezium.OpCreate, id, "new", nil, id})
				updates = append(updates, ev{debezium.OpUpdate, id, "paid", nil, 1000 + id})
			}
			updates = append(updates, ev{debezium.OpUpdate, 500, "ours", nil, 10})
			f.apply(setup...)
			tx, err := f.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, err := tx.Exec(ctx, `INSERT INTO "App ""x"""."Orders; DROP TABLE y" ("Order Id", status, _pgsink_commit_lsn, _pgsink_lsn)
				VALUES (500, 'theirs', $1, $1)`, other); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := f.applier.Apply(ctx, f.batch(updates...))
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("the batch finished (%v) while the other transaction held key 500", err)
			case <-time.After(300 * time.Millisecond):
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			want := "500:ours:∅@10"
			if other > 10 {
				want = fmt.Sprintf("500:theirs:∅@%d", other)
			}
			if got := f.state(); !strings.HasSuffix(got, want) || !strings.HasPrefix(got, "1:paid:∅@1001 ") {
				t.Fatalf("target rows %q, want 1–100 paid and %s", got, want)
			}
		})
	}
}
