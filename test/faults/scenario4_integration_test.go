//go:build integration

package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"
)

// stormDuration is how long scenario 4 bounces instances: 3 minutes, or
// PGSINK_FAULTS_STORM (a Go duration) to try it shorter.
func stormDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PGSINK_FAULTS_STORM"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PGSINK_FAULTS_STORM: %v", err)
		}
		return d
	}
	return 3 * time.Minute
}

// Scenario 4: a rebalance storm. Three instances run; every 2–6 s one of
// them, at random, is ended with SIGTERM (a clean leave) or SIGKILL (a
// crash the group notices only at its session timeout) and a new one
// started in its place, so the group rebalances continually while the
// workload runs. Then the storm stops and the survivors must converge.
func TestFaults4RebalanceStorm(t *testing.T) {
	long(t)
	stormScenario(t, inStreaming, scenarioOptions{})
}

// Scenario 4t: the storm under apply.consistency: transaction, with the
// bank workload and the T invariant: the resolver moves between instances
// and dies with them. A sixth of the storm's duration (30 s): the cheapest
// of the transaction-mode scenarios, in the short suite.
func TestFaults4tRebalanceStorm(t *testing.T) {
	stormScenario(t, inStreaming, scenarioOptions{transaction: true})
}

// Scenario 4p: the storm with apply.pipeline 2: instances die, and
// partitions move, with two transactions of a partition in flight. A
// sixth of the storm's duration, in the short suite.
func TestFaults4pRebalanceStorm(t *testing.T) {
	s := stormScenario(t, inStreaming, scenarioOptions{pipeline: 2})
	s.checkPipelined()
}

// Scenario 4s: the storm breaks out while the instances apply the initial
// snapshot, its first end at once.
func TestFaults4RebalanceStormDuringSnapshot(t *testing.T) {
	long(t)
	stormScenario(t, inSnapshot, scenarioOptions{})
}

// stormScenario runs the storm with o's mode (transaction, pipeline) and
// returns the scenario for the checks of that mode.
func stormScenario(t *testing.T, aim phase, o scenarioOptions) *scenario {
	name, storm := "4"+aim.suffix()+" rebalance storm", stormDuration(t)
	switch {
	case o.transaction:
		name, storm = "4t rebalance storm (transaction mode)", storm/6
	case o.pipeline > 1:
		name, storm = fmt.Sprintf("4p rebalance storm (apply.pipeline %d)", o.pipeline), storm/6
	}
	o.sessionMS, o.aim = 6000, aim
	s := newScenario(t, name, o)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for range 3 {
		s.start(fmt.Sprintf("i%d", len(s.procs)+1))
	}
	s.load.run(0, 4*time.Millisecond)
	s.aimFaults()
	var terms, kills int
	end := time.Now().Add(storm)
	for first := true; time.Now().Before(end); first = false {
		if !first || aim == inStreaming {
			time.Sleep(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
		}
		live := s.live()
		if len(live) > 0 {
			victim := live[rng.IntN(len(live))]
			s.scrape(victim)
			// The first two ends are one of each kind, so that a short
			// storm cannot lack either; the rest are drawn.
			term := rng.IntN(2) == 0
			if terms == 0 && kills > 0 {
				term = true
			} else if kills == 0 && terms > 0 {
				term = false
			}
			if term {
				victim.signal(syscall.SIGTERM)
				terms++
			} else {
				victim.signal(syscall.SIGKILL)
				kills++
			}
			s.fault()
		}
		// Replace it, and any instance that ended by itself (which U
		// then reports), to keep three members.
		for range 3 - len(s.live()) {
			s.start(fmt.Sprintf("i%d", len(s.procs)+1))
		}
	}
	s.result.FaultKinds = fmt.Sprintf("%d SIGTERM + %d SIGKILL over %s, %d instances in all", terms, kills, storm, len(s.procs))
	t.Log(s.result.FaultKinds)
	s.load.halt()
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
	s.checkAimed()
	if terms == 0 || kills == 0 {
		t.Errorf("the storm lacked a kind of end: %s", s.result.FaultKinds)
	}
	return s
}
