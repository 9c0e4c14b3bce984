//go:build integration

package dedup_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
)

// TestIntegrationTransactionXIDComesRound: PostgreSQL's 32-bit xid comes
// round, so a transaction may carry the id of one applied within
// retention.tombstones. Keyed by xid and commit position, its END is not
// taken for the applied one's and its records are staged (by INSERT and
// by COPY), while the applied one's re-emitted END and records are still
// recognised; a row recorded before migration 0009 (commit position 0)
// matches every END and record of its xid, as before. Before 0009 the new
// END read as applied and its records were not staged: the resolver passed
// it over, its rows lost.
func TestIntegrationTransactionXIDComesRound(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	// Transaction 7 was applied, committed at LSN 1000; transaction 9
	// was applied before the migration (commit position unknown).
	b := &pgx.Batch{}
	tx.QueueResolveAll(b, "g", []int64{7, 9}, []int64{1000, 0}, []int64{2, 1})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	progress, err := tx.ProgressAt(ctx, pool, "g", []int64{7, 9}, []int64{5000, 7777})
	if err != nil {
		t.Fatal(err)
	}
	if progress[7].Resolved || !progress[9].Resolved {
		t.Fatalf("ENDs 7:5000 and 9:7777 read as applied %v and %v; want 7:5000 new (7 came round), 9 applied (recorded without position)",
			progress[7].Resolved, progress[9].Resolved)
	}
	if progress, err = tx.ProgressAt(ctx, pool, "g", []int64{7}, []int64{1000}); err != nil || !progress[7].Resolved {
		t.Fatalf("END 7:1000 again (a re-emission): applied %v (%v), want applied", progress[7].Resolved, err)
	}

	rec := func(txID, order, lsn int64) dedup.StagedRecord {
		return dedup.StagedRecord{TxID: txID, TotalOrder: order, DataCollection: "public.a", Topic: "t", Offset: order, LSN: lsn,
			Key: []byte(`{"id":1}`), Value: []byte(`{}`)}
	}
	// The applied 7's records re-emitted (LSN below its commit) and
	// 9's: not staged. The new 7's (LSN past 1000): staged.
	stageIn(t, pool, tx, rec(7, 1, 900), rec(9, 1, 90000), rec(7, 2, 1200))
	if progress, err = tx.ProgressAt(ctx, pool, "g", []int64{7, 9}, []int64{5000, 0}); err != nil {
		t.Fatal(err)
	}
	if progress[7].Staged["public.a"] != 1 || len(progress[9].Staged) != 0 {
		t.Fatalf("staged by INSERT: 7 %v, 9 %v; want the new 7's one record (LSN 1200), none of 9", progress[7].Staged, progress[9].Staged)
	}
	// By COPY, which deletes what it staged of applied transactions.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	b = &pgx.Batch{}
	b.Queue("BEGIN")
	cp, err := tx.PrepareCopy(b, "g", []dedup.StagedRecord{rec(7, 3, 1300), rec(7, 4, 950), rec(9, 2, 90001)})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := cp.Copy(ctx, conn.Conn()); err != nil {
		t.Fatal(err)
	}
	b = &pgx.Batch{}
	cp.QueueUnstage(b, nil)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if progress, err = tx.ProgressAt(ctx, pool, "g", []int64{7, 9}, []int64{5000, 0}); err != nil {
		t.Fatal(err)
	}
	if progress[7].Staged["public.a"] != 2 || len(progress[9].Staged) != 0 {
		t.Fatalf("staged by COPY: 7 %v, 9 %v; want the new 7's records (LSN 1200 and 1300, not 950), none of 9", progress[7].Staged, progress[9].Staged)
	}
	before, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	if before.CommitLSN != 1000 || before.OldestCommitLSN != 1000 || !slices.Equal(before.Staged, []int64{7}) {
		t.Fatalf("cut before the new 7 = %+v, want commit 1000, oldest 1000 (9's row has none), 7 staged", before)
	}
	// The new 7 applied: recorded beside the old one, not refused by it.
	b = &pgx.Batch{}
	tx.QueueResolve(b, "g", 7, 5000, 2)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatalf("recording 7:5000 applied beside 7:1000: %v", err)
	}
	// A fill asks about records by their own LSN: each is of the first
	// transaction of its xid to commit after it.
	commits, err := tx.ResolvedCommits(ctx, pool, "g", dedup.TxRecords{Topic: "t", TxIDs: []int64{7, 7, 7, 9}, LSNs: []int64{900, 4000, 6000, 1}, Offsets: []int64{1, 2, 3, 4}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1000, 5000, -1, 0}; !slices.Equal(commits, want) {
		t.Fatalf("ResolvedCommits = %v, want %v", commits, want)
	}
	// A cut taken before the new 7 was applied holds the old 7 and 9 and
	// not the new 7; one taken after holds it.
	after, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range commits {
		if got, want := before.Holds(c), i == 0 || i == 3; got != want {
			t.Errorf("the cut before the new 7 holds record %d (commit %d): %v, want %v", i, c, got, want)
		}
		if got, want := after.Holds(c), i != 2; got != want {
			t.Errorf("the cut after the new 7 holds record %d (commit %d): %v, want %v", i, c, got, want)
		}
	}
}

// TestIntegrationResolvedCommitsPruned: a transaction whose tx_resolved row
// retention.tombstones pruned (with its staged records) is neither recorded
// nor staged; a record of it at or below its partition's frontier is of an
// applied transaction (commit unknown, 0), so that a fill of a topic older
// than the retention takes it. A record below the frontier whose
// transaction is staged (a later transaction's record written before an
// earlier one's re-emission, as after a Connect crash) is not applied; nor
// is one above the frontier, nor one of a partition without one. Before,
// every pruned transaction's record read as not applied: an online rebuild
// waited at the topic's first one, and its swap ended the shadow there.
func TestIntegrationResolvedCommitsPruned(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	b := &pgx.Batch{}
	tx.QueueResolve(b, "g", 5, 500, 1)
	tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: 10}})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	stageIn(t, pool, tx, dedup.StagedRecord{TxID: 8, TotalOrder: 1, DataCollection: "public.a", Topic: "t", Partition: 0, Offset: 6, Key: []byte("k"), Value: []byte("v")})
	for _, tc := range []struct {
		partition int32
		recs      dedup.TxRecords
		want      []int64
	}{
		// pruned (3), recorded (5), staged below the frontier (8), above it (11)
		{0, dedup.TxRecords{TxIDs: []int64{3, 5, 8, 11}, LSNs: []int64{100, 400, 600, 900}, Offsets: []int64{2, 4, 6, 12}}, []int64{0, 500, -1, -1}},
		{1, dedup.TxRecords{TxIDs: []int64{3}, LSNs: []int64{100}, Offsets: []int64{2}}, []int64{-1}}, // no frontier
	} {
		tc.recs.Topic, tc.recs.Partition = "t", tc.partition
		commits, err := tx.ResolvedCommits(ctx, pool, "g", tc.recs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(commits, tc.want) {
			t.Errorf("partition %d: ResolvedCommits(%v) = %v, want %v", tc.partition, tc.recs.TxIDs, commits, tc.want)
		}
	}
}

// TestIntegrationCutPrunedDuringCopy: a copy (`replay --into`) takes the
// transactions its cut holds; one applied after the cut whose tx_resolved
// row retention.tombstones prunes while the copy runs (with its staged
// records) is neither recorded nor staged any more, and lies below the
// partition's frontier of now. Decided against the frontier of now, it
// read as applied before the cut: a partition reaching it after the prune
// copied it while one that reached it before (recorded, its commit past
// the cut) ended there. Decided against the cut's frontier, and the
// transactions staged at the cut, it is out of the cut in every
// partition, before the prune and after; one pruned that was applied
// before the cut stays in it.
func TestIntegrationCutPrunedDuringCopy(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	led := dedup.NewLedgers(schema)
	stage := func(txID, offset int64) {
		stageIn(t, pool, tx, dedup.StagedRecord{TxID: txID, TotalOrder: 1, DataCollection: "public.a", Topic: "t", Partition: 0,
			Offset: offset, LSN: txID * 100, Key: []byte("k"), Value: []byte("v")})
	}
	apply := func(txID, commit, offset int64) {
		t.Helper()
		b := &pgx.Batch{}
		tx.QueueResolve(b, "g", txID, commit, 1)
		tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: offset}})
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Before the cut: 5 applied (offset 10). 8's record at offset 6 was
	// staged before 5's (re-emitted at offset 10 after a Connect crash),
	// and 8 is not applied yet.
	stage(5, 10)
	stage(8, 6)
	apply(5, 500, 10)
	cut, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	if cut.CommitLSN != 500 || !slices.Equal(cut.Frontier, []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: 10}}) || !slices.Equal(cut.Staged, []int64{8}) {
		t.Fatalf("cut = %+v; want commit 500, frontier t[0] at 10, 8 staged", cut)
	}
	recs := dedup.TxRecords{Topic: "t", Partition: 0, TxIDs: []int64{5, 8, 11}, LSNs: []int64{450, 750, 1050}, Offsets: []int64{10, 6, 12}}
	held := func(when string) {
		t.Helper()
		commits, err := tx.ResolvedCommits(ctx, pool, "g", recs, &cut)
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for _, c := range commits {
			got = append(got, cut.Holds(c))
		}
		if want := []bool{true, false, false}; !slices.Equal(got, want) {
			t.Errorf("%s: the cut holds transactions 5, 8, 11: %v (commits %v), want %v (5 applied before the cut, 8 and 11 after)", when, got, commits, want)
		}
	}
	held("at the cut")
	// The copy runs; meanwhile 8 and 11 are applied (the frontier moves to
	// 12)...
	apply(8, 800, 6)
	stage(11, 12)
	apply(11, 1100, 12)
	held("8 and 11 applied after the cut")
	// ... and the retention passes over all three.
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.tx_resolved SET resolved_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	if got, err := led.Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour}); err != nil || got.TxResolved != 3 {
		t.Fatalf("Prune = %+v, %v; want transactions 5, 8 and 11 pruned", got, err)
	}
	held("5, 8 and 11 pruned during the copy")
}

// TestIntegrationCutCommitZero: an END whose id carries no LSN (Debezium
// before 2.1 wrote "<txId>" alone) is recorded with commit position 0,
// which the cut takes for a transaction applied before every recorded
// commit. One recorded so at the cut is in it; one recorded so after the
// cut is not, before it is pruned and after. Before, the second read as
// in the cut: a partition reaching it after its apply copied it, while one
// that reached it before (not applied, -1) had ended there.
func TestIntegrationCutCommitZero(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	apply := func(txID, offset int64) {
		t.Helper()
		b := &pgx.Batch{}
		tx.QueueResolve(b, "g", txID, 0, 1)
		tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: offset}})
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
	}
	recs := dedup.TxRecords{Topic: "t", Partition: 0, TxIDs: []int64{5, 8}, LSNs: []int64{450, 750}, Offsets: []int64{3, 4}}
	held := func(cut dedup.TxCut, when string, want ...bool) {
		t.Helper()
		commits, err := tx.ResolvedCommits(ctx, pool, "g", recs, &cut)
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for _, c := range commits {
			got = append(got, cut.Holds(c))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the cut holds transactions 5, 8: %v (commits %v), want %v", when, got, commits, want)
		}
	}
	empty, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	apply(5, 3)
	cut, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	held(empty, "a cut before anything was applied, 5 applied since", false, false)
	held(cut, "at the cut, 5 applied", true, false)
	apply(8, 4)
	held(cut, "8 applied after the cut", true, false)
	held(empty, "a cut before anything was applied, 5 and 8 applied since", false, false)
	if _, err := pool.Exec(ctx, `DELETE FROM `+schema+`.tx_resolved`); err != nil { // as the pruning does
		t.Fatal(err)
	}
	held(cut, "5 and 8 pruned during the copy", true, false)
}

// TestIntegrationCutAppliedWithLeftover: a transaction applied before the
// cut may have a record left staged (a re-emission staged while the
// resolver applied it), so it is among the transactions staged at the
// cut. It is in the cut all the same, before its row is pruned during
// the copy and after: a partition reaching it before the prune takes it
// (its commit is recorded), so one reaching it after must too, or the
// transaction is split between them.
func TestIntegrationCutAppliedWithLeftover(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	led := dedup.NewLedgers(schema)
	// Transaction 5, one record in t[0]@10 and one in t[1]@20, applied
	// at commit 500; then a duplicate of its t[1] record, staged while
	// the resolver applied it, is left staged.
	b := &pgx.Batch{}
	tx.QueueResolve(b, "g", 5, 500, 2)
	tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: 10}, {Topic: "t", Partition: 1, Offset: 20}})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+schema+`.tx_staged (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset)
		VALUES ('g', 5, 2, 'public.a', 't', 1, 25)`); err != nil {
		t.Fatal(err)
	}
	cut, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	held := func(partition int32, offset int64, when string) {
		t.Helper()
		checkCutHoldsTx5(t, ctx, pool, tx, &cut, partition, offset, when)
	}
	held(1, 20, "before the prune")
	held(0, 10, "before the prune")
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.tx_resolved SET resolved_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	if got, err := led.Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour}); err != nil || got.TxResolved != 1 {
		t.Fatalf("Prune = %+v, %v; want transaction 5 pruned", got, err)
	}
	held(0, 10, "pruned during the copy")
	held(1, 20, "pruned during the copy")
}

// TestIntegrationCutPrunedThenReemitted: a transaction applied before the
// cut, not staged at it, whose row is pruned during the copy and whose
// records Debezium then emits again (a Kafka Connect restart) is staged
// again, no longer recorded as applied. The cut decides as of itself: it
// stays in the cut in every partition, or one reaching it after the new
// staging would end there while one that reached it before took it.
func TestIntegrationCutPrunedThenReemitted(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	led := dedup.NewLedgers(schema)
	b := &pgx.Batch{}
	tx.QueueResolve(b, "g", 5, 500, 2)
	tx.QueueApplied(b, "g", []dedup.PartitionOffset{{Topic: "t", Partition: 0, Offset: 10}, {Topic: "t", Partition: 1, Offset: 20}})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	cut, err := tx.CutNow(ctx, pool, "g")
	if err != nil {
		t.Fatal(err)
	}
	held := func(partition int32, offset int64, when string) {
		t.Helper()
		checkCutHoldsTx5(t, ctx, pool, tx, &cut, partition, offset, when)
	}
	held(1, 20, "before the prune")
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.tx_resolved SET resolved_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	if got, err := led.Prune(ctx, pool, dedup.Retention{Tombstones: time.Hour}); err != nil || got.TxResolved != 1 {
		t.Fatalf("Prune = %+v, %v; want transaction 5 pruned", got, err)
	}
	stageIn(t, pool, tx, dedup.StagedRecord{TxID: 5, TotalOrder: 2, DataCollection: "public.a", Topic: "t", Partition: 1,
		Offset: 30, LSN: 450, Key: []byte("k"), Value: []byte("v")})
	if counts, err := tx.StagedCounts(ctx, pool, "g", 5); err != nil || counts["public.a"] != 1 {
		t.Fatalf("the re-emission of pruned transaction 5: staged %v, %v; the test wants it staged", counts, err)
	}
	held(0, 10, "pruned, then staged again")
}

// checkCutHoldsTx5 checks that cut holds transaction 5 (its record at
// LSN 450) at t[partition]@offset: applied before the cut.
func checkCutHoldsTx5(t *testing.T, ctx context.Context, pool *pgxpool.Pool, tx dedup.Transactions, cut *dedup.TxCut, partition int32, offset int64, when string) {
	t.Helper()
	recs := dedup.TxRecords{Topic: "t", Partition: partition, TxIDs: []int64{5}, LSNs: []int64{450}, Offsets: []int64{offset}}
	commits, err := tx.ResolvedCommits(ctx, pool, "g", recs, cut)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 1 || !cut.Holds(commits[0]) {
		t.Errorf("%s: the cut holds transaction 5 at t[%d]@%d: commits %v, want held (applied before the cut)", when, partition, offset, commits)
	}
}
