//go:build integration

package txapply_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/txapply"
	"github.com/pgsink/pgsink/txlocal"
)

// The local path (docs/transactions.md): a data partition in the direct
// state hands its transactions' records to the resolver's store instead of
// staging them; the resolver applies them with the staged ones and moves the
// partition's offsets row in its own transaction.

// localPartition claims a data partition, applies its records without
// transaction metadata before the first one with it (the snapshot) as a
// batch does, puts it in the direct state and hands the rest to store. It
// returns the records handed over.
func (tg *target) localPartition(t *testing.T, store *txlocal.Store, records []recording.Record, p dedup.PartitionID) []sink.Item {
	t.Helper()
	ctx := context.Background()
	claim, err := tg.offsets.Claim(ctx, tg.pool, p, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	dec := tg.router.NewDecoder()
	var before, held []sink.Item
	for _, r := range records {
		if r.Topic != p.Topic || r.Partition != p.Partition {
			continue
		}
		it, ok, err := tg.router.Item(ctx, dec, toRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("%s: record %d writes nothing; the bank has none such", p, r.Offset)
		}
		if it.Change.Transaction == nil && len(held) == 0 {
			before = append(before, it)
			continue
		}
		held = append(held, it)
	}
	if len(before) > 0 {
		if err := tg.apply(ctx, &claim, before, before[len(before)-1].Record.Offset+1); err != nil {
			t.Fatal(err)
		}
	}
	if !store.Enter(claim, nil) {
		t.Fatal("Enter refused with the resolver local")
	}
	if _, err := store.Hold(p, held, make([]int64, len(held))); err != nil {
		t.Fatal(err)
	}
	return held
}

// localTarget stages the bank's data partitions listed in staged and hands
// the others to a store, and claims the transaction topic's partition.
func localTarget(t *testing.T, b bank, staged func(i int) bool) (*target, *txlocal.Store, dedup.Claim, map[dedup.PartitionID][]sink.Item) {
	t.Helper()
	tg := newTarget(t, b, true)
	store := txlocal.New(1<<30, 1<<30)
	store.SetResolver(true)
	local := map[dedup.PartitionID][]sink.Item{}
	for i, p := range partitions(b) {
		if staged(i) {
			tg.applyPartition(t, b.records, p.Topic, p.Partition, 5, nil)
			continue
		}
		local[p] = tg.localPartition(t, store, b.records, p)
	}
	claim, err := tg.offsets.Claim(context.Background(), tg.pool, dedup.PartitionID{Group: group, Topic: b.txTopic(), Partition: 0}, 0, "resolver")
	if err != nil {
		t.Fatal(err)
	}
	return tg, store, claim, local
}

func (tg *target) localResolver(store *txlocal.Store, afterTake func()) *txapply.Resolver {
	return txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 7, Local: store, AfterTake: afterTake})
}

// position reads a partition's offsets row.
func (tg *target) position(t *testing.T, p dedup.PartitionID) dedup.Claim {
	t.Helper()
	c, err := tg.offsets.Read(context.Background(), tg.pool, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// converged checks the target against the source's end state: every
// account, the constant total, every order with its lines, nothing left
// staged, each source transaction resolved once.
func converged(t *testing.T, tg *target, es []txapply.End) {
	t.Helper()
	ctx := context.Background()
	var n, total, orderCount, lineCount, staged, resolved int64
	if err := tg.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.accounts), (SELECT coalesce(sum(balance), 0) FROM public.accounts),
		(SELECT count(*) FROM public.orders), (SELECT count(*) FROM public.order_lines),
		(SELECT count(*) FROM pgsink.tx_staged), (SELECT count(*) FROM pgsink.tx_resolved)`).Scan(&n, &total, &orderCount, &lineCount, &staged, &resolved); err != nil {
		t.Fatal(err)
	}
	wantLines := int64(0)
	for o := 1; o <= orders; o++ {
		wantLines += int64(o + 1)
	}
	if n != accounts || total != accounts*balance || orderCount != orders || lineCount != wantLines || staged != 0 || resolved != int64(len(es)) {
		t.Fatalf("target: %d accounts totalling %d, %d orders, %d lines, %d staged, %d resolved; want %d totalling %d, %d, %d, 0 staged, %d resolved",
			n, total, orderCount, lineCount, staged, resolved, accounts, accounts*balance, orders, wantLines, len(es))
	}
	if v := violation(t, tg.pool); v != "" {
		t.Fatal(v)
	}
}

// TestIntegrationLocalPathApplies: every data partition direct, then half
// of them direct and half staged. The resolver applies each transaction
// whole, a reader never sees part of one, and each direct partition's
// offsets row moves with its records, in the resolver's transaction (I1),
// to just past the last one; the store ends empty. Checked to fail with the
// resolver's compare-and-set of the direct partitions' rows left out (the
// rows stay at the snapshot's end) and with the local records not counted
// (every END incomplete).
func TestIntegrationLocalPathApplies(t *testing.T) {
	b := recordBank(t)
	es := ends(t, b)
	for name, staged := range map[string]func(int) bool{
		"all local": func(int) bool { return false },
		"mixed":     func(i int) bool { return i%2 == 1 },
	} {
		t.Run(name, func(t *testing.T) {
			tg, store, claim, local := localTarget(t, b, staged)
			r := tg.localResolver(store, nil)
			for i := range es {
				resolve(t, r, &claim, es[i:i+1])
				if v := violation(t, tg.pool); v != "" {
					t.Fatalf("after END %s: %s", es[i].Marker.ID, v)
				}
				// The rows never run ahead of what was applied: at most
				// past the records of the transactions resolved so far.
				for p, held := range local {
					pos := tg.position(t, p).NextOffset
					for _, it := range held {
						if it.Record.Offset < pos && it.Change.Transaction.TxID != es[i].Marker.TxID && !resolvedBy(es[:i+1], it.Change.Transaction.TxID) {
							t.Fatalf("%s at %d after END %s, past record %d of a transaction not resolved", p, pos, es[i].Marker.ID, it.Record.Offset)
						}
					}
				}
			}
			converged(t, tg, es)
			for p, held := range local {
				if pos, want := tg.position(t, p).NextOffset, held[len(held)-1].Record.Offset+1; pos != want {
					t.Errorf("%s's offsets row at %d, want %d: just past its last record, applied by the resolver", p, pos, want)
				}
				if _, empty, ok := store.Direct(p); !ok || !empty {
					t.Errorf("%s: direct %v, empty %v; want direct and nothing held", p, ok, empty)
				}
			}
		})
	}
}

func resolvedBy(es []txapply.End, tx int64) bool {
	for _, e := range es {
		if e.Marker.TxID == tx {
			return true
		}
	}
	return false
}

// TestIntegrationLocalPathRowMoved: a direct partition's offsets row is not
// where the store has it (another writer put it one record back, same
// epoch: a record is then applied again, under the version guard) or
// was claimed by a new owner (a revocation during the apply, after the
// resolver took its records): the apply fails at that row's compare-and-set
// with nothing applied, the partition is told to leave, and once its
// records are staged (by its new owner) the resolver applies from staging.
// Checked to fail with the position left out of the store's claim (the
// apply then commits past the second writer's move).
func TestIntegrationLocalPathRowMoved(t *testing.T) {
	b := recordBank(t)
	es := ends(t, b)
	ctx := context.Background()
	for _, how := range []string{"moved", "revoked"} {
		t.Run(how, func(t *testing.T) {
			tg, store, claim, local := localTarget(t, b, func(int) bool { return false })
			var victim dedup.PartitionID
			for p := range local {
				if p.Topic == b.topic("accounts") {
					victim = p
					break
				}
			}
			before := tg.position(t, victim)
			interfere := func() {
				switch how {
				case "moved":
					if _, err := tg.pool.Exec(ctx, `UPDATE pgsink.offsets SET next_offset = next_offset - 1 WHERE group_id = $1 AND topic = $2 AND partition = $3`,
						victim.Group, victim.Topic, victim.Partition); err != nil {
						t.Error(err)
					}
				case "revoked":
					if _, err := tg.offsets.Claim(ctx, tg.pool, victim, 0, "new owner"); err != nil {
						t.Error(err)
					}
				}
			}
			once := false
			r := tg.localResolver(store, func() {
				if !once {
					once = true
					interfere()
				}
			})
			_, err := r.Resolve(ctx, &claim, es, es[len(es)-1].Offset+1)
			var moved *txapply.LocalMovedError
			if !errors.As(err, &moved) {
				t.Fatalf("Resolve returned %v, want a *txapply.LocalMovedError", err)
			}
			if claim.NextOffset != 0 {
				t.Fatalf("the resolver's position moved to %d with the apply failed", claim.NextOffset)
			}
			var applied int64
			if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_resolved`).Scan(&applied); err != nil {
				t.Fatal(err)
			}
			if applied != 0 {
				t.Fatalf("%d transactions resolved by a failed apply", applied)
			}
			if why := store.MustLeave(victim); why.Cause != txlocal.CauseRowMoved {
				t.Fatalf("the partition whose row moved was told to leave for %q, want %q", why.Cause, txlocal.CauseRowMoved)
			}
			// Its worker leaves (waiting for no apply now) and the
			// partition's records are staged again by its owner, from
			// the row as it stands.
			_, ok := store.Leave(victim)
			if !ok {
				t.Fatal("Leave: not direct")
			}
			stored := tg.position(t, victim)
			if how == "revoked" && stored.NextOffset != before.NextOffset {
				t.Fatalf("row moved from %d to %d by a failed apply", before.NextOffset, stored.NextOffset)
			}
			// Other partitions told to leave too (the apply cannot tell
			// whose row did not match) stage as well.
			for p := range local {
				if p != victim && store.MustLeave(p).Cause != "" {
					store.Leave(p)
					stage(t, tg, b, p)
				}
			}
			stage(t, tg, b, victim)
			for i := range es {
				resolve(t, r, &claim, es[i:i+1])
			}
			converged(t, tg, es)
		})
	}
}

// stage stages a data partition's records of transactions from its offsets
// row's position (records below it were applied), as its owner does after
// leaving the direct state, under a new claim.
func stage(t *testing.T, tg *target, b bank, p dedup.PartitionID) {
	t.Helper()
	ctx := context.Background()
	claim, err := tg.offsets.Claim(ctx, tg.pool, p, 0, "stager")
	if err != nil {
		t.Fatal(err)
	}
	dec := tg.router.NewDecoder()
	var batch []sink.Item
	last := claim.NextOffset
	for _, r := range b.records {
		if r.Topic != p.Topic || r.Partition != p.Partition || r.Offset < claim.NextOffset {
			continue
		}
		it, ok, err := tg.router.Item(ctx, dec, toRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			batch = append(batch, it)
		}
		last = r.Offset + 1
	}
	if last > claim.NextOffset {
		if err := tg.apply(ctx, &claim, batch, last); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationLocalPathReemission: Debezium re-emits a transaction's
// events after a Connect restart. Copies of a transaction's records right
// after its own in a direct partition are taken once (by total order, as
// the staging's key keeps one); copies of a transaction resolved before,
// with its END re-emitted, are passed over; in both cases the partition's
// row moves past the copies with nothing applied twice. Checked to fail
// without the resolver's de-duplication (the END is overcounted: an
// *OverstagedError).
func TestIntegrationLocalPathReemission(t *testing.T) {
	b := recordBank(t)
	es := ends(t, b)
	ctx := context.Background()
	// One accounts partition direct, the others staged: its records are
	// handed over with copies at new offsets.
	p := dedup.PartitionID{Group: group, Topic: b.topic("accounts"), Partition: 0}
	tg, store := newTarget(t, b, true), txlocal.New(1<<30, 1<<30)
	store.SetResolver(true)
	for _, q := range partitions(b) {
		if q != p {
			tg.applyPartition(t, b.records, q.Topic, q.Partition, 5, nil)
		}
	}
	held := tg.localPartition(t, store, b.records, p)
	if len(held) < 2 {
		t.Skip("the recorded workload put fewer than 2 transaction records on accounts[0]")
	}
	// Copies of the first transaction's records right after them would
	// interleave with the next transaction's; copies of the whole
	// partition's held records after them are a Connect restart's
	// re-emission of a resolved transaction. First: the first transaction
	// twice in a row, as a re-emission within an unresolved transaction.
	store.Leave(p)
	claimP := tg.position(t, p)
	first := held[0].Change.Transaction.TxID
	var copies []sink.Item
	next := held[len(held)-1].Record.Offset + 1
	n := 0
	for _, it := range held {
		if it.Change.Transaction.TxID != first {
			break
		}
		n++
	}
	reordered := append([]sink.Item{}, held[:n]...)
	for _, it := range held[:n] {
		c := it
		c.Record.Offset = next
		next++
		copies = append(copies, c)
	}
	// Offsets must stay increasing: the originals' later records shift
	// after the copies.
	reordered = append(reordered, copies...)
	for _, it := range held[n:] {
		c := it
		c.Record.Offset = next
		next++
		reordered = append(reordered, c)
	}
	if !store.Enter(claimP, nil) {
		t.Fatal("Enter refused")
	}
	if _, err := store.Hold(p, reordered, make([]int64, len(reordered))); err != nil {
		t.Fatal(err)
	}
	claim, err := tg.offsets.Claim(ctx, tg.pool, dedup.PartitionID{Group: group, Topic: b.txTopic(), Partition: 0}, 0, "resolver")
	if err != nil {
		t.Fatal(err)
	}
	r := tg.localResolver(store, nil)
	for i := range es {
		resolve(t, r, &claim, es[i:i+1])
	}
	converged(t, tg, es)
	if pos := tg.position(t, p).NextOffset; pos != next {
		t.Fatalf("%s at %d, want %d: past the copies", p, pos, next)
	}
	// Then the whole partition re-emitted after everything was resolved,
	// its ENDs re-emitted too: passed over, the row past them.
	var again []sink.Item
	for _, it := range held {
		c := it
		c.Record.Offset = next
		next++
		again = append(again, c)
	}
	if _, err := store.Hold(p, again, make([]int64, len(again))); err != nil {
		t.Fatal(err)
	}
	claim2 := claim
	res, err := r.Resolve(ctx, &claim2, es, claim.NextOffset)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 0 {
		t.Fatalf("re-emitted transactions applied again: %d", res.Applied)
	}
	if pos := tg.position(t, p).NextOffset; pos != next {
		t.Fatalf("%s at %d after the re-emission, want %d", p, pos, next)
	}
	converged(t, tg, es)
}
