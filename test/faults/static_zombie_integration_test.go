//go:build integration

package faults

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFaultsStaticMemberZombie: a static member (instance.name) is paused
// with SIGSTOP — alive, holding its connections, its session not yet
// expired — and a replacement under the same name starts. The replacement
// takes every partition over at once (the broker swaps the static member,
// no session timeout to wait for; the session here is longer than the
// test's waits) and claims new epochs. Woken with SIGCONT, the zombie
// writes nothing: the offsets rows and the audit are unchanged until it has
// exited, and it exits saying its name is taken. Then the invariants.
func TestFaultsStaticMemberZombie(t *testing.T) {
	const name = "zombie-0"
	s := newScenario(t, "static member zombie", scenarioOptions{sessionMS: 120000})
	s.extraEnv = append(s.extraEnv, "PGSINK_INSTANCE_NAME="+name)
	ctx := context.Background()
	s.load.run(0, 5*time.Millisecond)
	old := s.start("old")
	epochs := map[string]int64{}
	poll(t, 90*time.Second, "the first instance owns every partition", func() (bool, string) {
		epochs = s.epochs(ctx)
		return len(epochs) == 6 && allOwnedBy(s, name), s.positions(ctx)
	})
	old.signal(syscall.SIGSTOP)
	t.Logf("old (pid %d) stopped with SIGSTOP owning epochs %v", old.cmd.Process.Pid, epochs)
	s.start("new")
	poll(t, 60*time.Second, "the replacement claimed every partition (a new epoch) before the paused member's session expired", func() (bool, string) {
		now := s.epochs(ctx)
		for k, e := range epochs {
			if now[k] <= e {
				return false, s.positions(ctx)
			}
		}
		return true, ""
	})
	s.load.halt()
	if !s.waitQuiet(3 * time.Minute) {
		t.Fatalf("the replacement did not bring the target to the source: %s", s.positions(ctx))
	}
	before := s.offsetsRows(ctx)
	old.signal(syscall.SIGCONT)
	poll(t, 90*time.Second, "the woken zombie exits", func() (bool, string) { return old.exited(), "" })
	if after := s.offsetsRows(ctx); after != before {
		t.Errorf("the zombie changed the offsets table after SIGCONT:\nbefore %s\nafter  %s", before, after)
	}
	ws, _ := old.cmd.ProcessState.Sys().(syscall.WaitStatus)
	// It says why unless an error of its own stopped it first (a
	// transaction PostgreSQL ended while it was paused): then librdkafka's
	// log line says it.
	told := strings.Contains(old.Logs(), "another process is a group member under instance.name") ||
		strings.Contains(old.Logs(), "Static consumer fenced by other consumer with same group.instance.id")
	if !ws.Exited() || ws.ExitStatus() == 0 || !told {
		t.Errorf("the zombie ended with %s, want a non-zero exit saying its name is taken; log tail:\n%s", old.cmd.ProcessState, tail(old.Logs(), 15))
	}
	t.Logf("the zombie exited (%s); its last lines:\n%s", old.cmd.ProcessState, tail(old.Logs(), 6))
	if strings.Contains(old.Logs(), "a record applied twice") {
		t.Errorf("the zombie logged an audit violation")
	}
	// Its exit is this test's expected outcome, judged above: leave it out
	// of U, which takes any non-zero exit for a failure.
	s.procs = s.procs[1:]
	s.load.run(200, 5*time.Millisecond)
	s.load.wait()
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
}

// epochs are the offsets rows' epochs by topic and partition.
func (s *scenario) epochs(ctx context.Context) map[string]int64 {
	out := map[string]int64{}
	rows, err := s.target.Query(ctx, `SELECT topic || '/' || partition, epoch FROM pgsink.offsets`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var e int64
		if err := rows.Scan(&k, &e); err != nil {
			s.t.Fatal(err)
		}
		out[k] = e
	}
	return out
}

// offsetsRows renders every offsets row whole, updated_at included: an
// apply transaction's first statement moves it.
func (s *scenario) offsetsRows(ctx context.Context) string {
	var out string
	err := s.target.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(o)::text, E'\n' ORDER BY topic, partition), '') FROM pgsink.offsets o`).Scan(&out)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func allOwnedBy(s *scenario, owner string) bool {
	var others int
	if err := s.target.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.offsets WHERE owner <> $1`, owner).Scan(&others); err != nil {
		s.t.Fatal(err)
	}
	return others == 0
}

// poll waits for cond, failing t with what and cond's state at timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting: %s; %s", what, state)
}
