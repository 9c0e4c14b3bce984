//go:build integration

package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestFaultsSelfTestCorruption proves each invariant check can fail: a clean
// run passes them all, then the target is corrupted by hand, one invariant
// at a time, and the matching check (or trigger) must report it.
func TestFaultsSelfTestCorruption(t *testing.T) {
	ctx := context.Background()
	s := newScenario(t, "self-test: hand-corrupted target", scenarioOptions{seedKeys: 500})
	s.result.Expect = "fail"
	s.cleanRun(150, 2*time.Millisecond)
	caught := map[string]verdict{}
	expectFail := func(name string, v verdict) {
		t.Helper()
		if v.OK {
			t.Errorf("%s: corruption not detected: %s", name, v.Detail)
			return
		}
		caught[name] = v
		t.Logf("%s caught: %s", name, v.Detail)
	}
	expectRaise := func(name, mark, sql string) {
		t.Helper()
		_, err := s.target.Exec(ctx, sql)
		if err == nil || !strings.Contains(err.Error(), mark) {
			t.Errorf("%s: %q did not raise %s: %v", name, sql, mark, err)
			return
		}
		caught[name] = fail("trigger raised: %v", err)
		t.Logf("%s caught: %v", name, err)
	}

	// C: one value changed behind pgsink's back (version untouched).
	s.exec(`UPDATE public.accounts SET balance = balance + 1 WHERE id = (SELECT min(id) FROM public.accounts)`)
	expectFail("C", s.checkC(ctx, true))
	s.exec(`UPDATE public.accounts SET balance = balance - 1 WHERE id = (SELECT min(id) FROM public.accounts)`)

	// R: a key the source does not have.
	s.exec(`INSERT INTO public.accounts VALUES (-5, 1, 0, now(), NULL, 1, 1)`)
	expectFail("R", s.checkR(ctx))
	s.exec(`DELETE FROM public.accounts WHERE id = -5`)

	// M: a position moved back in the same epoch, an epoch moved back.
	expectRaise("M", markM, `UPDATE pgsink.offsets SET next_offset = next_offset - 1 WHERE next_offset > 0`)
	expectRaise("M epoch", markM, `UPDATE pgsink.offsets SET epoch = epoch - 1`)

	// V: a row's version moved back.
	expectRaise("V", markV, `UPDATE public.accounts SET _pgsink_lsn = _pgsink_lsn - 1 WHERE id = (SELECT min(id) FROM public.accounts)`)

	// U: a record audited twice is refused by UNIQUE; a record missing from
	// the audit is a gap; an instance that exits non-zero fails U.
	_, err := s.target.Exec(ctx, `INSERT INTO pgsink.apply_audit (topic, partition, "offset") SELECT topic, partition, "offset" FROM pgsink.apply_audit LIMIT 1`)
	if err == nil || !strings.Contains(err.Error(), "23505") {
		t.Errorf("U: a duplicate audit row was accepted: %v", err)
	} else {
		caught["U duplicate"] = fail("%v", err)
	}
	s.exec(`CREATE TABLE pgsink.audit_saved AS SELECT * FROM pgsink.apply_audit WHERE "offset" = 5`)
	s.exec(`DELETE FROM pgsink.apply_audit WHERE "offset" = 5`)
	expectFail("U", s.checkU(ctx))
	s.exec(`INSERT INTO pgsink.apply_audit SELECT * FROM pgsink.audit_saved`)
	bad := s.start("bad exit", "PGSINK_TEST_BREAK=unknown-way") // refused at start: exit 1
	select {
	case <-bad.done:
	case <-time.After(30 * time.Second):
		t.Fatal("an instance with a bad PGSINK_TEST_BREAK did not exit")
	}
	expectFail("U exit", s.checkU(ctx))
	s.procs = s.procs[:len(s.procs)-1]

	// O: an event applied a second time raises; an event lost fails the
	// id comparison.
	expectRaise("O", markO, `UPDATE public.account_events SET delta = delta WHERE event_id = (SELECT event_id FROM public.account_events ORDER BY event_id LIMIT 1)`)
	s.exec(`CREATE TABLE public.events_saved AS SELECT * FROM public.account_events WHERE event_id = (SELECT event_id FROM public.account_events ORDER BY event_id LIMIT 1)`)
	s.exec(`ALTER TABLE public.account_events DISABLE TRIGGER faults_outbox_once`)
	s.exec(`DELETE FROM public.account_events WHERE event_id = (SELECT event_id FROM public.events_saved)`)
	expectFail("O lost", s.checkO(ctx))
	s.exec(`INSERT INTO public.account_events SELECT * FROM public.events_saved`)
	s.exec(`ALTER TABLE public.account_events ENABLE TRIGGER faults_outbox_once`)

	// DL: a dead letter nobody injected.
	s.exec(`INSERT INTO pgsink.dead_letters (group_id, topic, partition, "offset", error, error_class) VALUES ('g', 't', 0, 0, 'made up', 'test')`)
	expectFail("DL", s.checkDL(ctx, 0))

	s.result.Checks = caught
	s.result.FaultKinds = "hand corruption of each invariant"
	s.result.Faults = len(caught)
	for _, c := range checkOrder {
		if _, ok := caught[c]; !ok && c != "T" { // T: TestFaultsSelfTestTransactionCorruption
			t.Errorf("invariant %s: no corruption caught", c)
		}
	}
}

// TestFaultsSelfTestTransactionCorruption proves T can fail: a clean run in
// transaction mode passes every check, then the target shows a reader what
// the source never committed (one side of a transfer), and then a resolved
// transaction's record goes missing; T must report each.
func TestFaultsSelfTestTransactionCorruption(t *testing.T) {
	ctx := context.Background()
	s := newScenario(t, "self-test: hand-corrupted target (transaction mode)", scenarioOptions{seedKeys: 500, transaction: true})
	s.result.Expect = "fail"
	s.cleanRun(100, 0)
	var caught []string
	expectFail := func(what string, v verdict) {
		t.Helper()
		if v.OK {
			t.Errorf("T: %s not detected: %s", what, v.Detail)
			return
		}
		caught = append(caught, what)
		t.Logf("T caught %s: %s", what, v.Detail)
	}
	// A fresh reader sees the money one side of a transfer moved.
	s.tx.reader = stacktest.StartBankReader(t, s.targetURL, txBank, 5*time.Millisecond)
	s.exec(`UPDATE public.bank SET balance = balance + 7 WHERE id = 1`)
	s.readerLooks(2)
	expectFail("a half-applied transfer", s.checkT(ctx))
	s.exec(`UPDATE public.bank SET balance = balance - 7 WHERE id = 1`)
	// A committed source transaction no longer recorded as resolved.
	s.tx.reader = stacktest.StartBankReader(t, s.targetURL, txBank, 5*time.Millisecond)
	s.readerLooks(1)
	s.exec(`DELETE FROM pgsink.tx_resolved WHERE tx_id = (SELECT min(tx_id) FROM pgsink.tx_resolved)`)
	expectFail("a transaction not resolved", s.checkT(ctx))
	s.result.Checks["T"] = fail("caught: %s", strings.Join(caught, ", "))
	s.result.FaultKinds = "hand corruption of T"
	s.result.Faults = len(caught)
}

// readerLooks waits until the bank reader has checked n more snapshots
// with every account (n >= 2: at least one begun after this call).
func (s *scenario) readerLooks(n int) {
	s.t.Helper()
	want := s.tx.reader.Seen() + n
	for deadline := time.Now().Add(30 * time.Second); s.tx.reader.Seen() < want; {
		if time.Now().After(deadline) {
			s.t.Fatalf("the bank reader checked no snapshot within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cleanRun runs one instance until the workload's transactions are
// applied, then every check, which must all pass before a self-test
// corrupts anything.
func (s *scenario) cleanRun(transactions int, pause time.Duration) {
	s.t.Helper()
	s.start("a")
	s.load.run(transactions, pause)
	s.load.wait()
	quiet := s.waitQuiet(2 * time.Minute)
	s.stopAll()
	s.evaluate(quiet, 0)
	for _, c := range s.checked() {
		if v := s.result.Checks[c]; !v.OK {
			s.t.Fatalf("clean run: %s failed before any corruption: %s", c, v.Detail)
		}
	}
}
