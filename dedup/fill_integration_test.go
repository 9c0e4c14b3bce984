//go:build integration

package dedup_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// Move hands a shadow's ledger entries to the table it replaces: the
// table's own go, the shadow's are renamed, its snapshot ends move to the
// instances' group; a third table's stay.
func TestIntegrationMoveLedgers(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	fill := dedup.FillGroup("g", "public.t__pgsink_shadow")
	for _, row := range []struct{ target, key, group string }{
		{"public.t", "[1]", "g"}, {"public.t__pgsink_shadow", "[2]", fill}, {"public.u", "[3]", "g"},
	} {
		for _, sql := range []string{
			`INSERT INTO pgsink.tombstones (target, key, commit_lsn, lsn) VALUES ($1, $2, 1, 1)`,
			`INSERT INTO pgsink.moved_rows (target, key, commit_lsn, lsn) VALUES ($1, $2, 1, 1)`,
			`INSERT INTO pgsink.outbox_events (target, event_id, topic, partition, "offset") VALUES ($1, $2, 'o', 0, 0)`,
		} {
			if _, err := pool.Exec(ctx, sql, row.target, row.key); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO pgsink.snapshots (group_id, target, topic, commit_lsn, lsn) VALUES ($1, $2, 'o', 1, 1)`, row.group, row.target); err != nil {
			t.Fatal(err)
		}
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return dedup.NewLedgers(schema).Move(ctx, tx, "public.t__pgsink_shadow", "public.t", fill, "g")
	})
	if err != nil {
		t.Fatal(err)
	}
	var tombstones, moved, events, snapshots string
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT string_agg(target || key::text, ',' ORDER BY target) FROM pgsink.tombstones),
		(SELECT string_agg(target || key::text, ',' ORDER BY target) FROM pgsink.moved_rows),
		(SELECT string_agg(target || event_id, ',' ORDER BY target) FROM pgsink.outbox_events),
		(SELECT string_agg(group_id || '/' || target, ',' ORDER BY target) FROM pgsink.snapshots)`).Scan(&tombstones, &moved, &events, &snapshots); err != nil {
		t.Fatal(err)
	}
	want := "public.t[2],public.u[3]"
	if tombstones != want || moved != want || events != want || snapshots != "g/public.t,g/public.u" {
		t.Fatalf("after Move: tombstones %q, moved rows %q, outbox events %q, snapshots %q; want %q in each ledger and g/public.t,g/public.u",
			tombstones, moved, events, snapshots, want)
	}
}

// A fill's positions are listed as its group, deleted with it, and an
// instance's group is never deleted that way.
func TestIntegrationFillGroups(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	offsets := dedup.NewOffsets(schema)
	fill := dedup.FillGroup("g", "public.t_at")
	for _, id := range []dedup.PartitionID{{Group: "g", Topic: "x", Partition: 0}, {Group: fill, Topic: "x", Partition: 0}, {Group: fill, Topic: "x", Partition: 1}} {
		if _, err := offsets.Claim(ctx, pool, id, 0, "me"); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := offsets.FillGroups(ctx, pool, "g")
	if err != nil || len(groups) != 1 || groups[0] != fill {
		t.Fatalf("FillGroups(g) = %v, %v; want [%s]", groups, err, fill)
	}
	if table, ok := dedup.FillTarget("g", groups[0]); !ok || table != "public.t_at" {
		t.Fatalf("FillTarget = %q, %v; want public.t_at", table, ok)
	}
	if err := offsets.DeleteGroup(ctx, pool, "g"); err == nil {
		t.Fatal("DeleteGroup of an instance's group succeeded; want a refusal")
	}
	if err := offsets.DeleteGroup(ctx, pool, fill); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT group_id FROM pgsink.offsets`)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(left) != 1 || left[0] != "g" {
		t.Fatalf("rows left: %v (%v); want the instance's only", left, err)
	}
}
