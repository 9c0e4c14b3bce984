package txlocal

import (
	"errors"
	"testing"
	"time"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

var part0 = dedup.PartitionID{Group: "g", Topic: "t", Partition: 0}

// items returns records of the transactions txs, one each, at offsets from.
func items(from int64, txs ...int64) ([]sink.Item, []int64) {
	var out []sink.Item
	var sizes []int64
	for i, tx := range txs {
		out = append(out, sink.Item{Record: debezium.Record{Topic: part0.Topic, Offset: from + int64(i)},
			Change: debezium.Change{Transaction: &debezium.Transaction{TxID: tx, TotalOrder: int64(i + 1)}}})
		sizes = append(sizes, 10)
	}
	return out, sizes
}

func direct(t *testing.T, max int64) (*Store, *int64) {
	t.Helper()
	s := New(max, max)
	s.SetResolver(true)
	var released int64
	if !s.Enter(dedup.Claim{PartitionID: part0, Epoch: 3, NextOffset: 100}, func(n int64) { released += n }) {
		t.Fatal("Enter refused with the resolver local")
	}
	return s, &released
}

// hold is Store.Hold's error.
func hold(s *Store, id dedup.PartitionID, its []sink.Item, sizes []int64) error {
	_, err := s.Hold(id, its, sizes)
	return err
}

// mustLeave checks that err is a *LeaveError for cause.
func mustLeave(t *testing.T, err error, cause Cause, what string) {
	t.Helper()
	var leave *LeaveError
	if !errors.As(err, &leave) {
		t.Fatalf("%s: Hold returned %v, want a *LeaveError", what, err)
	}
	if leave.Cause != cause {
		t.Fatalf("%s: leaves for %q (%s), want %q", what, leave.Cause, leave.Why, cause)
	}
}

func TestEnterNeedsTheResolver(t *testing.T) {
	s := New(1<<20, 1<<20)
	if s.Enter(dedup.Claim{PartitionID: part0}, nil) {
		t.Fatal("a partition entered the direct state with no local resolver")
	}
	s.SetResolver(true)
	if !s.Enter(dedup.Claim{PartitionID: part0}, nil) {
		t.Fatal("Enter refused with the resolver local")
	}
	s.SetResolver(false)
	if why := s.MustLeave(part0); why.Cause != CauseResolverGone {
		t.Fatal("the resolver left and the direct partition was not told to leave")
	}
	if _, _, ok := s.Direct(part0); ok {
		t.Fatal("Direct true for a partition told to leave")
	}
}

// Of records that do not all fit beside those held, the prefix that fits
// is taken and the rest waits (ErrFull); a record that can never fit makes
// the partition leave; Leave returns what was held, in order, with the
// claim.
func TestHoldOversize(t *testing.T) {
	s, released := direct(t, 35)
	its, sizes := items(100, 1, 1)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	its2, sizes2 := items(102, 2, 2)
	if n, err := s.Hold(part0, its2, sizes2); !errors.Is(err, ErrFull) || n != 1 {
		t.Fatalf("Hold over the bound beside held records: took %d, %v; want 1 taken and ErrFull", n, err)
	}
	if why := s.MustLeave(part0); why.Cause != "" {
		t.Fatalf("told to leave (%s) for records that fit once the resolver applies", why.Why)
	}
	big, bigSizes := items(102, 2)
	bigSizes[0] = 40
	s2, _ := direct(t, 35)
	mustLeave(t, hold(s2, part0, big, bigSizes), CauseBound, "a record larger than the bound with nothing held")
	left, ok := s.Leave(part0)
	claim, held := left.Claim, left.Items
	if !ok || len(held) != 3 || held[0].Record.Offset != 100 || held[2].Record.Offset != 102 {
		t.Fatalf("Leave returned %d records (ok %v), want the 3 held from 100 to 102", len(held), ok)
	}
	if claim.NextOffset != 100 || claim.Epoch != 3 {
		t.Fatalf("Leave's claim at %d epoch %d, want the row's 100 epoch 3", claim.NextOffset, claim.Epoch)
	}
	if *released != 30 {
		t.Fatalf("released %d bytes, want the 30 held", *released)
	}
}

// Records of two transactions interleaving in a partition, or a record
// without transaction metadata, make it leave.
func TestHoldRefusesInterleaving(t *testing.T) {
	s, _ := direct(t, 1<<20)
	its, sizes := items(100, 1, 1, 2)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	again, sizes := items(103, 1)
	mustLeave(t, hold(s, part0, again, sizes), CauseInterleaved, "transaction 1 after 2")

	s, _ = direct(t, 1<<20)
	within, sizes := items(100, 1, 2, 1)
	mustLeave(t, hold(s, part0, within, sizes), CauseInterleaved, "1, 2, 1 in one hand-over")

	s, _ = direct(t, 1<<20)
	plain := []sink.Item{{Record: debezium.Record{Offset: 100}}}
	mustLeave(t, hold(s, part0, plain, []int64{1}), CauseNoTransaction, "no transaction block")
}

// Take holds the prefix of the wanted transactions; Done without a commit
// keeps them; with one, drops them and moves the claim just past them.
func TestTakeDone(t *testing.T) {
	s, released := direct(t, 1<<20)
	its, sizes := items(100, 1, 1, 2, 3)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	tk := s.Take(map[int64]bool{1: true, 2: true})
	if tk == nil || len(tk.Parts) != 1 || len(tk.Parts[0].Items) != 3 {
		t.Fatalf("Take held %+v, want the 3 records of transactions 1 and 2", tk)
	}
	if s.Take(map[int64]bool{1: true}) != nil {
		t.Fatal("a second Take held records an apply holds")
	}
	tk.Keep(map[int64]bool{1: true})
	if p := tk.Applying(); len(p) != 1 || len(p[0].Items) != 2 || p[0].Next() != 102 || p[0].Claim.NextOffset != 100 {
		t.Fatalf("after Keep: %+v, want transaction 1's 2 records, from 100 to 102", p)
	}
	tk.Done(false)
	if claim, empty, ok := s.Direct(part0); !ok || empty || claim.NextOffset != 100 {
		t.Fatalf("after a rolled back apply: claim at %d, empty %v, direct %v; want 100, records kept", claim.NextOffset, empty, ok)
	}
	tk = s.Take(map[int64]bool{1: true})
	tk.Done(true)
	if claim, _, _ := s.Direct(part0); claim.NextOffset != 102 {
		t.Fatalf("after a committed apply: claim at %d, want 102", claim.NextOffset)
	}
	if *released != 20 {
		t.Fatalf("released %d bytes, want the 20 of the 2 records applied", *released)
	}
	left, _ := s.Leave(part0)
	if held := left.Items; len(held) != 2 || held[0].Record.Offset != 102 {
		t.Fatalf("left with %d records, want 2 from 102", len(left.Items))
	}
}

// A wanted transaction's records after another's: the partition is told to
// leave and nothing of it is taken.
func TestTakeRefusesOutOfOrder(t *testing.T) {
	s, _ := direct(t, 1<<20)
	its, sizes := items(100, 5, 6)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	if tk := s.Take(map[int64]bool{6: true}); tk != nil {
		t.Fatalf("Take held %+v behind a record of transaction 5", tk.Parts)
	}
	if why := s.MustLeave(part0); why.Cause != CauseOrder {
		t.Fatalf("the partition was told to leave for %q, want %q", why.Cause, CauseOrder)
	}
}

// Leave waits for the apply that holds the partition's records.
func TestLeaveWaitsForTheApply(t *testing.T) {
	s, _ := direct(t, 1<<20)
	its, sizes := items(100, 1)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	tk := s.Take(map[int64]bool{1: true})
	left := make(chan dedup.Claim)
	go func() {
		l, _ := s.Leave(part0)
		left <- l.Claim
	}()
	select {
	case <-left:
		t.Fatal("Leave returned while an apply held the partition's records")
	case <-time.After(50 * time.Millisecond):
	}
	tk.Done(true)
	if claim := <-left; claim.NextOffset != 101 {
		t.Fatalf("Leave after the commit: claim at %d, want 101", claim.NextOffset)
	}
}

// Doubt tells every partition taken from to leave, one whose records Keep
// left nothing of included: a ready transaction's records behind a later
// one's in it (the resolver's LocalOrderError) must not be retried for
// ever.
func TestDoubtReachesEmptiedParts(t *testing.T) {
	s, _ := direct(t, 1<<20)
	its, sizes := items(100, 2, 1)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	tk := s.Take(map[int64]bool{1: true, 2: true})
	if tk == nil {
		t.Fatal("nothing taken")
	}
	tk.Keep(map[int64]bool{1: true})
	if len(tk.Applying()) != 0 {
		t.Fatalf("Keep kept %+v behind transaction 2's record", tk.Applying())
	}
	tk.Doubt(Leaving{CauseOrder, "order"})
	tk.Done(false)
	if s.MustLeave(part0).Cause != CauseOrder {
		t.Fatal("the partition whose prefix Keep emptied was not told to leave")
	}
}

// Each direct partition may hold its share of the whole bound: one that
// ran ahead does not take the room of another that the resolver waits for.
func TestHoldShares(t *testing.T) {
	s := New(1<<20, 40)
	s.SetResolver(true)
	part1 := dedup.PartitionID{Group: "g", Topic: "t", Partition: 1}
	for _, id := range []dedup.PartitionID{part0, part1} {
		if !s.Enter(dedup.Claim{PartitionID: id}, nil) {
			t.Fatal("Enter refused")
		}
	}
	its, sizes := items(100, 1, 2)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	more, moreSizes := items(102, 3)
	if _, err := s.Hold(part0, more, moreSizes); !errors.Is(err, ErrFull) {
		t.Fatalf("partition 0 held %v past its share of 20 bytes", err)
	}
	lag, lagSizes := items(0, 1, 2)
	if _, err := s.Hold(part1, lag, lagSizes); err != nil {
		t.Fatalf("partition 1 refused its share: %v", err)
	}
}

// Records that write nothing after the last held record: a take of every
// record held moves the row past them; one that keeps fewer does not.
func TestPassed(t *testing.T) {
	s, _ := direct(t, 1<<20)
	its, sizes := items(100, 1, 2)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	s.Passed(part0, 105)
	tk := s.Take(map[int64]bool{1: true, 2: true})
	if n := tk.Parts[0].Next(); n != 105 {
		t.Fatalf("a take of everything held moves to %d, want 105", n)
	}
	tk.Keep(map[int64]bool{1: true})
	if n := tk.Parts[0].Next(); n != 101 {
		t.Fatalf("a take of a prefix moves to %d, want 101", n)
	}
	tk.Done(false)
}

// Stale: the oldest record held waited longer than asked and no apply holds
// it.
func TestStale(t *testing.T) {
	s, _ := direct(t, 1<<20)
	if s.Stale(part0, 0) {
		t.Fatal("stale with nothing held")
	}
	its, sizes := items(100, 1)
	if _, err := s.Hold(part0, its, sizes); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if !s.Stale(part0, time.Millisecond) {
		t.Fatal("a record held 2 ms is not stale after 1 ms")
	}
	if s.Stale(part0, time.Hour) {
		t.Fatal("stale after an hour already")
	}
	tk := s.Take(map[int64]bool{1: true})
	if s.Stale(part0, time.Millisecond) {
		t.Fatal("stale while an apply holds it")
	}
	tk.Done(true)
	if s.Stale(part0, 0) {
		t.Fatal("stale once applied")
	}
}

// Leave names the key of the record right before the row's position when
// an apply of the store moved the row just past it: the partition reads
// again from there, often from that delete's tombstone. Not when the row
// moved past tombstones read after it, nor when the worker moved the row
// itself since.
func TestLeaveNamesTheRecordBeforeTheRow(t *testing.T) {
	keyed := func(s *Store, from int64, keys string, txs ...int64) {
		t.Helper()
		its, sizes := items(from, txs...)
		for i := range its {
			its[i].Record.Key = []byte{keys[i]}
		}
		if _, err := s.Hold(part0, its, sizes); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := direct(t, 1<<20)
	keyed(s, 100, "abc", 1, 1, 2)
	s.Take(map[int64]bool{1: true}).Done(true)
	if left, _ := s.Leave(part0); left.Claim.NextOffset != 102 || string(left.Before) != "b" {
		t.Errorf("row at %d, before it %q; want 102 and the key of the record at 101, b", left.Claim.NextOffset, left.Before)
	}

	s, _ = direct(t, 1<<20)
	keyed(s, 100, "ab", 1, 1)
	s.Passed(part0, 103) // tombstones at 102
	s.Take(map[int64]bool{1: true}).Done(true)
	if left, _ := s.Leave(part0); left.Claim.NextOffset != 103 || left.Before != nil {
		t.Errorf("row at %d, before it %q; want 103 and none (a tombstone is right before it)", left.Claim.NextOffset, left.Before)
	}

	s, _ = direct(t, 1<<20)
	keyed(s, 100, "ab", 1, 1)
	s.Take(map[int64]bool{1: true}).Done(true)
	s.Moved(dedup.Claim{PartitionID: part0, Epoch: 3, NextOffset: 105})
	if left, _ := s.Leave(part0); left.Claim.NextOffset != 105 || left.Before != nil {
		t.Errorf("row at %d, before it %q; want 105 and none (the worker moved the row)", left.Claim.NextOffset, left.Before)
	}
}
