//go:build integration

package faults

import (
	"context"
	"testing"
	"time"
)

// Scenario 11: the source table gains columns mid-stream (ALTER TABLE … ADD
// COLUMN between two workload transactions) and the updates from then on
// fill them; with schema.evolve: add_columns pgsink must add them to the
// target as the first event carrying them arrives, and C compares them too.
func TestFaults11AddColumn(t *testing.T) {
	long(t)
	s := newScenario(t, "11 source ADD COLUMN mid-stream (evolve: add_columns)", scenarioOptions{evolve: "add_columns"})
	s.result.FaultKinds = "ALTER TABLE ADD COLUMN note text, score numeric(10,3), seen_at timestamptz"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	time.Sleep(5 * time.Second)
	s.load.alter(`ALTER TABLE public.accounts ADD COLUMN note text, ADD COLUMN score numeric(10,3), ADD COLUMN seen_at timestamptz`,
		`, note = 'n' || seq, score = seq * 1.125, seen_at = now()`)
	s.columns = []string{"note", "score", "seen_at"}
	s.result.Faults++
	time.Sleep(10 * time.Second)
	s.load.halt()
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
	// C compares the new columns only if they carry data on both sides.
	var filled int
	if err := s.target.QueryRow(context.Background(), `SELECT count(*) FROM public.accounts WHERE note IS NOT NULL AND score IS NOT NULL AND seen_at IS NOT NULL`).Scan(&filled); err != nil {
		t.Fatalf("target after ADD COLUMN: %v", err)
	}
	if filled == 0 {
		t.Errorf("no target row carries the added columns: the scenario tested nothing")
	}
	t.Logf("%d target rows carry the added columns", filled)
}
