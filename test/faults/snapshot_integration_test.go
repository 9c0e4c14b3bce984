//go:build integration

package faults

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// snapshotSeedKeys makes the initial snapshot of a scenario that faults
// during it long enough to be seen running.
const snapshotSeedKeys = 60000

// waitSnapshotRunning waits until Debezium's initial snapshot of the accounts
// table is under way: its snapshot transaction, in the source database,
// has the table's SELECT as its statement, and the table topic has
// records. Debezium's snapshot query names the table quoted; the workload
// does not.
func (s *scenario) waitSnapshotRunning(timeout time.Duration) {
	s.t.Helper()
	ctx := context.Background()
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer src.Close(ctx)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var running bool
		err := src.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
			  AND query LIKE '%FROM "public"."accounts"%')`).Scan(&running)
		if err != nil {
			s.t.Fatal(err)
		}
		if running && s.topicEnd() > 0 {
			s.t.Logf("%s: snapshot running, %d records in the topic", s.name, s.topicEnd())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s: Debezium's snapshot was not seen running within %s", s.name, timeout)
}

// sweptSnapshots lists the swept counts of the accounts table's snapshot
// ends, oldest first, and how many are pending.
func (s *scenario) sweptSnapshots(ctx context.Context) (swept []int64, pending int, err error) {
	rows, err := s.target.Query(ctx, `SELECT swept FROM pgsink.snapshots WHERE target = 'public.accounts' ORDER BY commit_lsn, lsn`)
	if err != nil {
		return nil, 0, err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[*int64])
	for _, n := range all {
		if n == nil {
			pending++
		} else {
			swept = append(swept, *n)
		}
	}
	return swept, pending, err
}

// waitSwept waits until n snapshot ends of the accounts table are swept and
// none is pending; it returns their counts.
func (s *scenario) waitSwept(n int, timeout time.Duration) []int64 {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		swept, pending, err := s.sweptSnapshots(ctx)
		if err == nil && len(swept) >= n && pending == 0 {
			return swept
		}
		last = fmt.Sprintf("swept %v, %d pending, %v", swept, pending, err)
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("%s: %d snapshot sweeps not done within %s: %s", s.name, n, timeout, last)
	return nil
}

// Scenario 5s: the Kafka broker killed with -9 while Debezium's initial
// snapshot runs (issue 29): Debezium takes the snapshot again at a new LSN
// and the rows the first, partial one emitted and the source deleted before
// the second are in no record; the sweep after the second removes them.
func TestFaults5BrokerKillDuringSnapshot(t *testing.T) {
	long(t)
	killDuringSnapshot(t, "5s Kafka broker kill -9 during the initial snapshot", "kafka")
}

// Scenario 7s: the Kafka Connect worker killed with -9 while the initial
// snapshot runs: the same retake, from Debezium's side.
func TestFaults7ConnectKillDuringSnapshot(t *testing.T) {
	long(t)
	killDuringSnapshot(t, "7s Kafka Connect kill -9 during the initial snapshot", "connect")
}

// killDuringSnapshot runs a scenario that kills service with -9 once the
// initial snapshot is seen running, restarts it, and checks every
// invariant once the retaken snapshot is swept.
func killDuringSnapshot(t *testing.T, name, service string) {
	s := newScenario(t, name, scenarioOptions{aim: inSnapshot})
	s.result.FaultKinds = service + " SIGKILL + restart during the snapshot"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	// Debezium's snapshot, not pgsink's share of it, is what the kill aims at.
	s.waitSnapshotRunning(3 * time.Minute)
	killService(t, service)
	s.fault()
	time.Sleep(5 * time.Second) // the outage
	stackUp(t)
	s.waitConnector()
	swept := s.waitSwept(1, 5*time.Minute)
	s.load.halt()
	quiet := s.waitQuiet(5 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
	s.checkAimed()
	// A topic well beyond the seed plus the workload's events means the
	// snapshot was taken twice.
	t.Logf("%s: the snapshot sweeps removed %v rows; table topic end %d for %d seeded keys and %d workload events",
		s.name, swept, s.topicEnd(), snapshotSeedKeys, s.load.Events()-snapshotSeedKeys)
}

// Scenario 13: the replication slot is lost while pgsink runs; rows are
// deleted and updated in the source while nothing streams; the same
// connector, its offsets kept, is registered again with snapshot.mode
// when_needed and snapshots at a new slot. The deletes in the gap are in no
// record: the target must still end equal to the source, and the sweep must
// count exactly them.
func TestFaults13SlotLoss(t *testing.T) {
	long(t)
	s := newScenario(t, "13 replication slot lost, re-snapshot with deletes in the gap", scenarioOptions{})
	s.result.FaultKinds = "slot dropped, connector re-registered (snapshot.mode when_needed)"
	ctx := context.Background()
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	if swept := s.waitSwept(1, 3*time.Minute); swept[0] != 0 {
		t.Errorf("the initial snapshot over an empty target swept %d rows, want 0", swept[0])
	}
	s.load.halt()
	if !s.waitQuiet(3 * time.Minute) {
		t.Fatalf("%s: no convergence before the slot loss", s.name)
	}

	if err := s.st.Connect.Delete(ctx, s.connector); err != nil {
		t.Fatal(err)
	}
	if err := s.st.LoseSlots(ctx); err != nil {
		t.Fatal(err)
	}
	s.result.Faults++
	var gapDeletes int64
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	tag, err := src.Exec(ctx, `DELETE FROM public.accounts WHERE id % 10 = 3`)
	if err != nil {
		t.Fatal(err)
	}
	gapDeletes = tag.RowsAffected()
	if _, err := src.Exec(ctx, `UPDATE public.accounts SET seq = seq + 1, balance = balance + 1 WHERE id % 10 = 5`); err != nil {
		t.Fatal(err)
	}

	cfg, err := stacktest.DebeziumPostgres(s.st.SourceURL, s.connector, s.st.TopicPrefix)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(cfg, debeziumOverrides(s.st.TopicPrefix))
	cfg["snapshot.mode"] = "when_needed"
	if err := s.st.Connect.Put(ctx, s.connector, cfg); err != nil {
		t.Fatal(err)
	}
	s.waitConnector()
	swept := s.waitSwept(2, 5*time.Minute)
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
	if swept[1] != gapDeletes {
		t.Errorf("the re-snapshot swept %d rows, want the %d deleted in the gap", swept[1], gapDeletes)
	}
	t.Logf("%s: %d rows deleted in the gap, swept %v", s.name, gapDeletes, swept)
}
