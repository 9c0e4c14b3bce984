//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// The dead-letter table through its one owner: the sink's INSERT (run in a
// transaction, as the sink queues it), the listing `pgsink dlq` filters, the
// delete `pgsink dlq retry` runs in its apply transaction, and the counts of
// `pgsink status`.
func TestIntegrationDeadLetters(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	dead := dedup.NewDeadLetters(schema)
	insert := func(l dedup.DeadLetter) {
		t.Helper()
		sql, args := dead.Insert(l)
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		}); err != nil {
			t.Fatalf("insert %s[%d]@%d: %v", l.Topic, l.Partition, l.Offset, err)
		}
	}
	refused := dedup.DeadLetter{Group: "g", Topic: "app.public.t", Partition: 2, Offset: 41, Target: "public.t",
		Key: []byte(`{"id":7}`), Value: []byte("\x00binary"), Headers: []dedup.Header{{Key: "origin", Value: "x"}, {Key: "id", Value: "e-1"}},
		Error: "first error", Class: "apply"}
	insert(refused)
	refused.Error, refused.Class = `new row violates check constraint "t_status_check"`, "postgres:23514"
	insert(refused) // a redelivery: the same row, the newest error
	undecodable := dedup.DeadLetter{Group: "g", Topic: "app.public.u", Partition: 0, Offset: 5, Value: []byte("{"), Error: "bad json", Class: "decode"}
	insert(undecodable)
	insert(dedup.DeadLetter{Group: "g", Topic: "app.public.t", Partition: 0, Offset: 9, Target: "public.t", Error: "e", Class: "apply"})
	insert(dedup.DeadLetter{Group: "other", Topic: "app.public.t", Partition: 0, Offset: 1, Target: "public.t", Error: "not ours", Class: "apply"})

	all, err := dead.List(ctx, pool, dedup.DeadLetterFilter{Group: "g", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var positions []int64
	for _, l := range all {
		positions = append(positions, l.Offset)
	}
	if !reflect.DeepEqual(positions, []int64{9, 5, 41}) {
		t.Fatalf("List(group g) offsets = %v, want [9 5 41]: this group's three dead letters, newest first, the redelivered one once", positions)
	}
	got := all[2]
	if got.ID == 0 || got.FailedAt.IsZero() || got.Group != "g" {
		t.Errorf("a listed dead letter has id %d, failed_at %v, group %q; want all three set", got.ID, got.FailedAt, got.Group)
	}
	got.ID, got.FailedAt = 0, got.FailedAt.UTC()
	refused.FailedAt = got.FailedAt
	if !reflect.DeepEqual(got, refused) {
		t.Errorf("dead letter read back as\n  %+v\nwant\n  %+v", got, refused)
	}
	if u := all[1]; u.Target != "" || u.Key != nil || u.Headers == nil || len(u.Headers) != 0 {
		t.Errorf("a record routed to no table reads back with target %q, key %q, headers %#v; want \"\", nil, empty", u.Target, u.Key, u.Headers)
	}

	for _, tc := range []struct {
		name   string
		filter dedup.DeadLetterFilter
		want   []int64 // offsets
	}{
		{"by target", dedup.DeadLetterFilter{Group: "g", Target: "public.t", Limit: 50}, []int64{9, 41}},
		{"by topic", dedup.DeadLetterFilter{Group: "g", Topic: "app.public.u", Limit: 50}, []int64{5}},
		{"target and topic", dedup.DeadLetterFilter{Group: "g", Target: "public.t", Topic: "app.public.u", Limit: 50}, nil},
		{"limit", dedup.DeadLetterFilter{Group: "g", Limit: 1}, []int64{9}},
		{"ids ignore the limit", dedup.DeadLetterFilter{Group: "g", IDs: []int64{all[0].ID, all[2].ID}, Limit: 1}, []int64{9, 41}},
		{"ids of another group", dedup.DeadLetterFilter{Group: "other", IDs: []int64{all[0].ID}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			letters, err := dead.List(ctx, pool, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, l := range letters {
				got = append(got, l.Offset)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("List(%+v) offsets = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}

	counts, err := dead.Count(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	for i := range counts {
		if counts[i].Last.IsZero() {
			t.Errorf("count %+v has no last failure time", counts[i])
		}
		counts[i].Last = time.Time{}
	}
	wantCounts := []dedup.DeadLetterCount{{Target: "", Topic: "app.public.u", Count: 1}, {Target: "public.t", Topic: "app.public.t", Count: 2}}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("Count(g) = %+v, want %+v (by target, then topic)", counts, wantCounts)
	}

	// Deleting belongs to the retry's transaction: rolled back, the dead
	// letter stays; committed, it is gone.
	id := all[2].ID
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := dead.Delete(ctx, tx, id); err != nil {
			t.Fatal(err)
		}
		return context.Canceled // roll back
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("rolled-back delete: %v", err)
	}
	if left, _ := dead.List(ctx, pool, dedup.DeadLetterFilter{Group: "g", IDs: []int64{id}}); len(left) != 1 {
		t.Fatalf("after a rolled-back delete, %d dead letters with id %d; want 1", len(left), id)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return dead.Delete(ctx, tx, id) }); err != nil {
		t.Fatal(err)
	}
	if left, _ := dead.List(ctx, pool, dedup.DeadLetterFilter{Group: "g", IDs: []int64{id}}); len(left) != 0 {
		t.Fatalf("after a committed delete, %d dead letters with id %d; want 0", len(left), id)
	}
}
