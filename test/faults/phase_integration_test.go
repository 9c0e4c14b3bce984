//go:build integration

package faults

import (
	"context"
	"time"
)

// phase is where a scenario aims its fault (issue 29): in streaming, after
// the initial snapshot is reconciled, or while pgsink applies Debezium's
// initial snapshot, before its sweep.
type phase int

const (
	inStreaming phase = iota
	inSnapshot
)

// suffix names the phase in a scenario's name and test.
func (p phase) suffix() string {
	if p == inSnapshot {
		return "s"
	}
	return ""
}

// snapshotSwept reports whether a sweep of the accounts table's snapshot has
// run: from then on pgsink has applied every snapshot record.
func (s *scenario) snapshotSwept() bool {
	s.t.Helper()
	var swept bool
	err := s.target.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT FROM pgsink.snapshots WHERE target = 'public.accounts' AND swept_at IS NOT NULL)`).Scan(&swept)
	if err != nil {
		s.t.Fatal(err)
	}
	return swept
}

// fault counts one injected fault, and whether it fell in the snapshot
// phase: the snapshot not swept yet when it was seen. Called after the
// fault, so a fault counted in the phase surely fell in it.
func (s *scenario) fault() {
	s.result.Faults++
	if s.aim == inSnapshot && !s.snapshotSwept() {
		s.faultsInSnapshot++
	}
}

// waitApplyingSnapshot waits until the instances are applying the initial
// snapshot: target rows written, nothing swept. It fails the scenario if
// the sweep came first: the seed is then too small for the fault to fall
// in the snapshot.
func (s *scenario) waitApplyingSnapshot(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var rows int
		if err := s.target.QueryRow(context.Background(), `SELECT count(*) FROM public.accounts`).Scan(&rows); err != nil {
			s.t.Fatal(err)
		}
		if s.snapshotSwept() {
			s.t.Fatalf("%s: the snapshot was applied and swept before the fault could fall in it; raise snapshotSeedKeys", s.name)
		}
		if rows > 0 {
			s.t.Logf("%s: pgsink is applying the snapshot: %d target rows, nothing swept", s.name, rows)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s: pgsink applied no snapshot record within %s", s.name, timeout)
}

// checkAimed fails a scenario aimed at the snapshot whose faults all fell
// after the sweep, and logs how many fell in it.
func (s *scenario) checkAimed() {
	s.t.Helper()
	if s.aim != inSnapshot {
		return
	}
	s.t.Logf("%s: %d of %d faults fell in the snapshot phase, before its sweep", s.name, s.faultsInSnapshot, s.result.Faults)
	if s.faultsInSnapshot == 0 {
		s.t.Errorf("%s: no fault fell in the snapshot phase, before its sweep (%d in all): the snapshot was not tested", s.name, s.result.Faults)
	}
}

// aimFaults waits for the phase the scenario's faults aim at. In streaming:
// the initial snapshot swept, by the running instances or, if none runs
// yet, by one started for it and stopped. In the snapshot: Debezium's
// snapshot running, if no instance runs yet, else the instances applying
// it.
func (s *scenario) aimFaults() {
	s.t.Helper()
	idle := len(s.live()) == 0
	switch {
	case s.aim == inSnapshot && idle:
		s.waitSnapshotRunning(3 * time.Minute)
	case s.aim == inSnapshot:
		s.waitApplyingSnapshot(3 * time.Minute)
	case idle:
		p := s.start("snapshot")
		s.waitSwept(1, 3*time.Minute)
		s.scrape(p)
		p.stop(60 * time.Second)
	default:
		s.waitSwept(1, 3*time.Minute)
	}
}
